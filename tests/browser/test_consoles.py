"""The consoles in a real browser: Debian's Chromium driven by Playwright, against the service
under gunicorn (two workers, the real Redis), with calls driven by the simulator over HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callflow.clock import ManualClock
from callflow.config import Settings
from callflow.service import Callflow
from callflow.simulator import Callee, HttpTransport, Leg, Script, Simulator
from callflow.simulator.rest import RestApi, RestServer
from tests.conftest import (
    ADVISER,
    AUTH_TOKEN,
    PIN,
    Driver,
    enrol,
    free_port,
    running_gunicorn,
    service_env,
)

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"
VSTRS = "+441632960999"
AGENT_SEES = "200001"
TEAM_NUMBER = "+441632960200"
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.fixture
def live(redis_store: object, tmp_path: Path) -> Iterator[dict[str, Any]]:
    sim = Simulator(HttpTransport(), AUTH_TOKEN, clock=ManualClock(time.time()))
    rest = RestServer(RestApi(sim)).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(
        base, tmp_path, TWILIO_ACCOUNT_SID=sim.account_sid, TWILIO_API_BASE_URL=rest.base_url
    )
    driver = Driver(sim)
    try:
        with running_gunicorn(env, port, tmp_path / "gunicorn.log", workers=2, threads=8):
            try:
                svc = Callflow(Settings.from_env(env))
                enrol(svc)
                now = svc.clock.now()
                svc.staff.add_agent(AGENT_SEES, "Alex Agent", "client:alex", now, by="tests")
                svc.staff.add_team(
                    "debt_pursuit",
                    "Debt Pursuit",
                    "debts in pursuit",
                    [TEAM_NUMBER],
                    "Mon-Sun 00:00-24:00",
                    by="tests",
                )
                svc.accounts.add(
                    "alex",
                    "Alex Agent",
                    "vstrs_agent",
                    PASSWORD,
                    now,
                    sees_id=AGENT_SEES,
                    by="tests",
                )
                svc.accounts.add(
                    "sam",
                    "Sam Specialist",
                    "specialist",
                    PASSWORD,
                    now,
                    team="debt_pursuit",
                    by="tests",
                )
                svc.accounts.add("dana", "Dana Designer", "designer", PASSWORD, now, by="tests")
                svc.accounts.add("ada", "Ada Auditor", "auditor", PASSWORD, now, by="tests")
                sim.configure_number(
                    VSTRS, f"{base}/voice/incoming", status_callback=f"{base}/voice/status"
                )
                sim.add_callee(
                    "client:alex", Callee("answered", after=2, script=Script().hang_up(after=5000))
                )
                specialist = Script().press(f"{AGENT_SEES}#").press("1").hang_up(after=5000)
                sim.add_callee(TEAM_NUMBER, Callee("answered", after=3, script=specialist))
                driver.start()
                yield {"sim": sim, "svc": svc, "base": base, "log": tmp_path / "gunicorn.log"}
            finally:
                driver.stopping.set()
    finally:
        rest.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/console/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_agent_and_specialist_consoles(live: dict[str, Any], browser: Any) -> None:
    from playwright.sync_api import expect

    sim: Simulator = live["sim"]
    base = live["base"]
    agent = browser.new_context(viewport={"width": 1200, "height": 1000}).new_page()
    sign_in(agent, base, "alex")
    expect(agent.get_by_role("heading", name="VSTRS agent console")).to_be_visible()
    agent.get_by_role("button", name="Available").click()
    expect(agent.locator("#availability")).to_have_text("available")

    script = (
        Script()
        .press(f"{ADVISER}#")
        .press(f"{PIN}#")
        .answer({"school": "Hill Top", "colour": "Blue"})
    )
    caller: Leg = sim.call(VSTRS, "+441632960001", script.hang_up(after=5000))
    expect(agent.locator("#call")).to_contain_text("Tax Aid", timeout=30_000)
    expect(agent.locator("#call")).to_contain_text("Sam Adviser")

    agent.get_by_label("Customer's name").fill("Pat Example")
    agent.get_by_label("UTR or National Insurance number").fill("12345")
    agent.get_by_label("The issue").fill("Wants time to pay")
    agent.get_by_label("Kind").select_option("signed")
    agent.get_by_label("Date given").fill("2026-11-01")
    agent.get_by_label("Their reference").fill("TA-0042")
    agent.get_by_role("button", name="Transfer").click()
    expect(agent.locator("#customer-reference-error")).to_contain_text("a UTR (10 digits)")
    expect(agent.get_by_label("UTR or National Insurance number")).to_have_attribute(
        "aria-invalid", "true"
    )
    agent.get_by_label("UTR or National Insurance number").fill("1234567890")
    agent.get_by_label("Urgent").check()
    agent.get_by_label("Turnaround").fill("2 working days")
    agent.get_by_role("button", name="Transfer").click()

    specialist = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    sign_in(specialist, base, "sam")
    expect(specialist.locator("#card")).to_contain_text("Pat Example", timeout=20_000)
    expect(specialist.locator("#card")).to_contain_text("SEES ID 200001")
    expect(specialist.locator("#banner")).not_to_have_class("banner banner-active")

    expect(agent.locator("#progress-state")).to_contain_text(
        "Specialist on the line", timeout=40_000
    )
    shot(agent, "agent-console")
    agent.get_by_role("button", name="Hand over and leave the call").click()
    expect(specialist.locator("#banner")).to_have_class("banner banner-active", timeout=10_000)
    expect(specialist.locator("#banner-text")).to_contain_text("as if a 64-8 were on record")
    shot(specialist, "specialist-console-active")

    sim.schedule(0, lambda: sim.hang_up(caller))
    hung_up = time.monotonic()
    expect(specialist.locator("#banner")).to_have_class("banner banner-ended", timeout=5_000)
    assert time.monotonic() - hung_up < 3, "the banner flips within a second or two"
    expect(specialist.locator("#banner-text")).to_contain_text("usual authority requirements apply")
    shot(specialist, "specialist-console-ended")

    refused = specialist.goto(f"{base}/console/agent")
    assert refused is not None and refused.status == 403
    expect(specialist.get_by_role("alert")).to_contain_text("not for your role")

    no_csrf = agent.request.post(f"{base}/console/agent/availability", form={"status": "away"})
    assert no_csrf.status == 403
    assert live["svc"].staff.availability(AGENT_SEES)["status"] == "available"
    assert not [e for e in sim.errors], sim.errors

    auditor = browser.new_context(viewport={"width": 1200, "height": 1000}).new_page()
    page_errors: list[str] = []
    auditor.on("console", lambda msg: page_errors.append(msg.text) if msg.type == "error" else None)
    sign_in(auditor, base, "ada")
    expect(auditor.get_by_role("heading", name="Audit and assurance")).to_be_visible()
    expect(auditor.get_by_role("img", name="Verifications per day, by outcome")).to_be_visible()
    expect(auditor.get_by_role("img", name="Hand-offs per week, by team")).to_be_visible()
    shot(auditor, "auditor")
    assert not page_errors, page_errors


def test_the_sign_in_page_looks_right(live: dict[str, Any], browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_context().new_page()
    page.goto(f"{live['base']}/console/login")
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("link", name="Skip to the main content")).to_be_focused()
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong wrong wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong username or password")
    shot(page, "sign-in")


def test_the_designer_page_and_its_softphone(live: dict[str, Any], browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1300, "height": 1100}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, live["base"], "dana")
    expect(page.get_by_role("heading", name="Call flows")).to_be_visible()
    expect(page.locator("#flows")).to_contain_text("vstrs_inbound")
    expect(page.locator("#flows")).to_contain_text("clean")
    expect(page.locator("body")).to_have_attribute("data-diagrams", "drawn", timeout=20_000)
    diagram = page.locator('pre.mermaid[data-flow="vstrs_inbound"] svg')
    expect(diagram).to_be_visible()
    expect(diagram.locator("g.node", has_text="ask_pin")).to_have_count(1)

    page.get_by_label("Flow to call").select_option("vstrs_inbound")
    page.get_by_role("button", name="Call").click()
    keys = page.get_by_label("Keys")
    expect(keys).to_be_visible()
    expect(page.locator("#phone-state")).to_have_text("ask_adviser")
    expect(diagram.locator("g.node.current-state")).to_have_text("ask_adviser")
    keys.fill("1001#")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#phone-state")).to_have_text("ask_pin")
    keys.fill("246810#")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#phone-state")).to_have_text("ask_question")
    expect(page.get_by_label("Or say")).to_be_visible()
    expect(page.locator("#phone-prompt")).not_to_contain_text("PIN")
    question = page.locator("#phone-prompt").text_content() or ""
    page.get_by_label("Or say").fill("Hill Top" if "school" in question else "Blue")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#phone-transcript")).to_contain_text(
        "You are verified as calling from Tax Aid"
    )
    # The sandbox's demo agent answers; the softphone's caller leaves after a while on hold.
    expect(page.locator("#phone-transcript")).to_contain_text("the call ended")
    expect(page.locator("#phone-demo")).to_contain_text("Adviser 1001, PIN 246810")
    shot(page, "designer")
    assert not errors, errors


def test_publishing_and_rolling_back_from_the_flow_page(live: dict[str, Any], browser: Any) -> None:
    from playwright.sync_api import expect

    svc: Callflow = live["svc"]
    page = browser.new_context(viewport={"width": 1300, "height": 1400}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live["base"], "dana")
    page.get_by_role("link", name="officer_check").click()
    expect(page.get_by_role("heading", name="Flow officer_check")).to_be_visible()
    file_version = page.locator("#live-version").text_content()
    editor = page.get_by_label("Flow (officer_check.yaml)")
    text = editor.input_value()

    # A change that breaks a test is refused with the test's diff; the edit is kept.
    editor.fill(text.replace("belongs to {officer_name}", "is {officer_name}"))
    page.get_by_role("button", name="Test and publish").click()
    expect(page.get_by_role("heading", name="Not published")).to_be_visible()
    expect(page.locator("#refused")).to_contain_text("failed its tests")
    expect(page.locator("#refused")).to_contain_text('-hear "Identity number 4 4 7 1 2 0 3')
    expect(editor).to_have_value(text.replace("belongs to {officer_name}", "is {officer_name}"))

    editor.fill(text.replace("Thank you for calling. Goodbye.", "Thank you for checking. Goodbye."))
    page.get_by_role("button", name="Test and publish").click()
    expect(page.get_by_role("status")).to_contain_text("5 tests passed")
    new_version = page.locator("#live-version").text_content()
    assert new_version != file_version
    expect(page.locator("#history")).to_contain_text(f"publish {new_version} by dana")

    page.get_by_label("From", exact=True).select_option(file_version)
    page.get_by_label("to", exact=True).select_option(new_version)
    page.get_by_role("button", name="Show the changes").click()
    expect(page.locator("#diff .add")).to_contain_text("Thank you for checking. Goodbye.")
    shot(page, "flow-publish")

    page.get_by_role("button", name=f"Make version {file_version} live again").click()
    expect(page.locator("#live-version")).to_have_text(file_version)
    # Every worker of the service serves the rolled-back version to new calls.
    time.sleep(2.5)
    release = svc.releases.release("officer_check")
    assert release is not None and release["live"] == file_version
    assert not errors, errors
