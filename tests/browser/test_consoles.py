"""The consoles in a real browser: Debian's Chromium driven by Playwright, against the service
under gunicorn (two workers, the real Redis), with calls driven by the simulator over HTTP.

Every page state these tests reach is checked with axe-core (vendored from its npm release)
against WCAG 2.2 AA and axe's best practices; any violation fails the test that found it.
The agent's hand-off and the specialist's grant are also walked through by keyboard alone.
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
from tests.rigs import eventually, keys_own_sees_id

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"
VSTRS = "+441632960999"
AGENT_SEES = "200001"
TEAM_NUMBER = "+441632960200"
PASSWORD = "correct horse battery"
#: Sam, of Debt Pursuit: available, so hand-offs ring Sam's own phone first.
SAM = "300101"

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
        base,
        tmp_path,
        TWILIO_ACCOUNT_SID=sim.account_sid,
        TWILIO_API_BASE_URL=rest.base_url,
        # The agent's console warns of a caller on hold this soon (the tests see it).
        CALLFLOW_HOLD_WARNING="3",
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
                    nation="none",
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
                svc.staff.add_specialist(
                    SAM, "Sam Specialist", "debt_pursuit", "client:sam", now, by="tests"
                )
                svc.staff.set_specialist_availability(SAM, "available", now)
                svc.accounts.add(
                    "sam", "Sam Specialist", "specialist", PASSWORD, now, specialist=SAM,
                    by="tests",
                )  # fmt: skip
                svc.accounts.add("dana", "Dana Designer", "designer", PASSWORD, now, by="tests")
                svc.accounts.add("ada", "Ada Auditor", "auditor", PASSWORD, now, by="tests")
                svc.accounts.add("adam", "Adam Admin", "admin", PASSWORD, now, by="tests")
                svc.accounts.add("sue", "Sue Supervisor", "supervisor", PASSWORD, now, by="tests")
                sim.configure_number(
                    VSTRS, f"{base}/voice/incoming", status_callback=f"{base}/voice/status"
                )
                sim.add_callee(
                    "client:alex", Callee("answered", after=2, script=Script().hang_up(after=5000))
                )
                # Sam's own phone: Sam keys the SEES ID of the agent on Sam's own hand-off.
                sim.add_callee(
                    "client:sam", Callee("answered", after=3, script=keys_own_sees_id(svc, SAM))
                )
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


AXE = (
    Path(__file__).resolve().parents[2]
    / "webhooks"
    / "static"
    / "vendor"
    / "axe-core"
    / "axe.min.js"
)
#: The bar: WCAG 2.2 AA (and the A and AA rules of 2.0 and 2.1 it includes), and axe's
#: best practices (empty table headers, landmarks, headings).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def axe(page: Any, state: str) -> None:
    """Fail on any accessibility violation in the page as it is now (``state`` names it)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated by the browser's debugger, so the page's strict CSP does not apply.
        page.evaluate(AXE.read_text() + "\n;0")
    violations = page.evaluate(
        """async (tags) => (await axe.run(document, {runOnly: {type: "tag", values: tags}}))
            .violations.map((v) => ({id: v.id, help: v.help,
                nodes: v.nodes.map((n) => n.target.join(" ") + ": " + n.failureSummary)}))""",
        AXE_TAGS,
    )
    assert not violations, f"axe on {state}:\n" + "\n".join(
        f"  {v['id']} ({v['help']}):\n    " + "\n    ".join(v["nodes"]) for v in violations
    )


def test_agent_and_specialist_consoles(live: dict[str, Any], browser: Any) -> None:
    from playwright.sync_api import expect

    sim: Simulator = live["sim"]
    base = live["base"]
    # 1366x768: the call panel and the form are seen together.
    agent = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    sign_in(agent, base, "alex")
    expect(agent.get_by_role("heading", name="VSTRS agent console")).to_be_visible()
    expect(agent.locator("#availability")).to_have_text("Away")
    expect(agent.get_by_label("Customer's name")).to_be_disabled()
    axe(agent, "agent console, away, no call")
    agent.get_by_role("button", name="Available").click()
    expect(agent.locator("#availability")).to_have_text("Available")
    expect(agent.locator("#availability")).to_have_class("govuk-tag govuk-tag--green")
    expect(agent.get_by_role("button", name="Available")).to_be_hidden()
    expect(agent.get_by_role("button", name="Away")).to_be_visible()

    script = (
        Script()
        .press(f"{ADVISER}#")
        .press(f"{PIN}#")
        .answer({"school": "Hill Top", "colour": "Blue"})
    )
    caller: Leg = sim.call(VSTRS, "+441632960001", script.hang_up(after=5000))
    expect(agent.locator("#call")).to_contain_text("Tax Aid", timeout=30_000)
    expect(agent.locator("#call")).to_contain_text("Sam Adviser")
    expect(agent.locator("#announce")).to_contain_text("A call from Tax Aid")
    name = agent.get_by_label("Customer's name")
    expect(name).to_be_enabled()
    agent.screenshot(path=str(SHOTS / "agent-1366x768.png"))  # what the agent sees, unscrolled
    for locator in (agent.locator("#call"), name, agent.get_by_role("button", name="Hand off", exact=True)):
        box = locator.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 768, "all on one screen"
    axe(agent, "agent console with a call")

    # No team is chosen for the agent: a team is picked, never preselected.
    agent.get_by_label("Specialist team", exact=True).select_option("debt_pursuit")
    name.fill("Pat Example")
    agent.get_by_label("UTR or National Insurance number").fill("1234567890")
    agent.get_by_label("The issue").fill("Wants time to pay")
    agent.get_by_label("Why a specialist").select_option("time_to_pay")
    agent.get_by_label("Kind").select_option("signed")
    agent.get_by_label("Day", exact=True).fill("1")
    agent.get_by_label("Month", exact=True).fill("11")
    agent.get_by_label("Year", exact=True).fill("2026")
    agent.get_by_label("Their reference").fill("TA-0042")
    agent.get_by_role("button", name="Hand off", exact=True).click()
    summary = agent.locator(".govuk-error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("check digit does not match")
    expect(agent.locator("#reference-error")).to_contain_text("check digit")
    reference = agent.get_by_label("UTR or National Insurance number")
    expect(reference).to_have_attribute("aria-invalid", "true")
    expect(agent.get_by_label("Day", exact=True)).to_have_value("1")  # what was typed is kept
    axe(agent, "agent console, the form refused")
    summary.get_by_role("link").first.click()
    expect(reference).to_be_focused()
    reference.fill("2234567890")
    agent.get_by_label("Urgent").check()
    agent.get_by_label("Turnaround, like 2 working days").fill("2 working days")
    agent.get_by_role("button", name="Hand off", exact=True).click()

    specialist = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    sign_in(specialist, base, "sam")
    expect(specialist.locator("#signed-in-as")).to_contain_text("Debt Pursuit team")
    axe(specialist, "specialist console")
    expect(specialist.locator("#card")).to_contain_text("Pat Example", timeout=20_000)
    expect(specialist.locator("#card")).to_contain_text("given 1 November 2026")
    expect(specialist.locator("#banner")).not_to_have_class("disclosure disclosure-active")

    expect(agent.locator("#progress-state")).to_contain_text(
        "Specialist on the line", timeout=40_000
    )
    # The SEES ID shows on Sam's card once Sam has keyed it and it matched: never before.
    expect(specialist.locator("#card")).to_contain_text("SEES ID 200001")
    expect(specialist.locator("#banner-text")).to_contain_text("Agent Alex Agent, SEES ID 200001")
    axe(agent, "agent console, briefing the specialist")
    axe(specialist, "specialist console, the hand-off card")
    shot(agent, "agent-console")
    agent.get_by_role("button", name="Hand over and leave the call").click()
    expect(specialist.locator("#banner")).to_have_class(
        "disclosure disclosure-active", timeout=10_000
    )
    expect(specialist.locator("#banner-text")).to_contain_text("as if a 64-8 were on record")
    expect(specialist.locator("#announce")).to_contain_text("Disclosure authorised")
    axe(specialist, "specialist console, disclosure authorised")
    shot(specialist, "specialist-console-active")
    # The form was for that call: with it handed over, the form is closed and cleared.
    expect(agent.get_by_label("Customer's name")).to_be_disabled(timeout=10_000)
    expect(agent.get_by_label("Customer's name")).to_have_value("", timeout=10_000)

    sim.schedule(0, lambda: sim.hang_up(caller))
    hung_up = time.monotonic()
    expect(specialist.locator("#banner")).to_have_class(
        "disclosure disclosure-ended", timeout=5_000
    )
    assert time.monotonic() - hung_up < 3, "the banner flips within a second or two"
    expect(specialist.locator("#banner-text")).to_contain_text("usual authority requirements apply")
    axe(specialist, "specialist console, authority ended")
    shot(specialist, "specialist-console-ended")

    refused = specialist.goto(f"{base}/console/agent")
    assert refused is not None and refused.status == 403
    expect(specialist.get_by_role("alert")).to_contain_text("not for your role")
    axe(specialist, "a refusal page")
    specialist.goto(f"{base}/console/meetings")
    axe(specialist, "meetings")

    no_csrf = agent.request.post(f"{base}/console/agent/availability", form={"status": "away"})
    assert no_csrf.status == 403
    assert live["svc"].staff.availability(AGENT_SEES, time.time())["status"] == "available"
    assert not [e for e in sim.errors], sim.errors

    auditor = browser.new_context(viewport={"width": 1200, "height": 1000}).new_page()
    page_errors: list[str] = []
    auditor.on("console", lambda msg: page_errors.append(msg.text) if msg.type == "error" else None)
    sign_in(auditor, base, "ada")
    expect(auditor.get_by_role("heading", name="Audit and assurance")).to_be_visible()
    expect(auditor.get_by_role("img", name="Verifications per day, by outcome")).to_be_visible()
    expect(auditor.get_by_role("img", name="Hand-offs per week, by team")).to_be_visible()
    expect(auditor.locator("body")).to_contain_text("Debt Pursuit")
    axe(auditor, "auditor")
    shot(auditor, "auditor")
    auditor.get_by_role("link", name="Printable report").click()
    axe(auditor, "printable report")
    assert not page_errors, page_errors


def test_a_failed_hand_off_keeps_the_form_with_a_retry(live: dict[str, Any], browser: Any) -> None:
    from playwright.sync_api import expect

    sim: Simulator = live["sim"]
    base = live["base"]
    # Debt Pursuit does not answer this time: neither Sam's phone nor the team's number.
    sim.add_callee("client:sam", Callee("no-answer", after=3))
    sim.add_callee(TEAM_NUMBER, Callee("no-answer", after=3))
    agent = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    sign_in(agent, base, "alex")
    agent.get_by_role("button", name="Available").click()
    script = (
        Script()
        .press(f"{ADVISER}#")
        .press(f"{PIN}#")
        .answer({"school": "Hill Top", "colour": "Blue"})
    )
    caller: Leg = sim.call(VSTRS, "+441632960002", script.hang_up(after=5000))
    expect(agent.get_by_label("Customer's name")).to_be_enabled(timeout=30_000)
    agent.get_by_label("Specialist team", exact=True).select_option("debt_pursuit")
    agent.get_by_label("Customer's name").fill("Jo Sample")
    agent.get_by_label("UTR or National Insurance number").fill("AB 12 34 56 C")
    agent.get_by_label("The issue").fill("A payment plan")
    agent.get_by_label("Why a specialist").select_option("time_to_pay")
    agent.get_by_label("Day", exact=True).fill("20")
    agent.get_by_label("Month", exact=True).fill("11")
    agent.get_by_label("Year", exact=True).fill("2026")
    agent.get_by_label("Their reference").fill("TA-0043")
    agent.get_by_role("button", name="Hand off", exact=True).click()
    # The caller is on hold while nobody answers: the console says so, and says how long.
    expect(agent.locator("#hold-warning")).to_be_visible(timeout=20_000)
    expect(agent.locator("#hold-warning")).to_contain_text("on hold over")
    expect(agent.locator("#hold-timer")).not_to_have_text("")
    expect(agent.locator("#progress-state")).to_contain_text("Not handed off", timeout=90_000)
    expect(agent.locator("#announce")).to_contain_text("Not handed off")
    # The details are still there, for this call, with a retry.
    expect(agent.get_by_label("Customer's name")).to_have_value("Jo Sample")
    expect(agent.get_by_label("Day", exact=True)).to_have_value("20")
    expect(agent.get_by_label("Their reference")).to_have_value("TA-0043")
    axe(agent, "agent console, a hand-off that did not happen")
    sim.add_callee(
        "client:sam",
        Callee("answered", after=3, script=keys_own_sees_id(live["svc"], SAM)),
    )
    agent.get_by_role("button", name="Try Debt Pursuit again").click()
    expect(agent.locator("#progress-state")).to_contain_text("Specialist", timeout=40_000)
    sim.schedule(0, lambda: sim.hang_up(caller))


def test_the_sign_in_page_looks_right(live: dict[str, Any], browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_context().new_page()
    page.goto(f"{live['base']}/")
    expect(page).to_have_url(f"{live['base']}/console/login?next=/console/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    axe(page, "sign-in")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong wrong wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong username or password")
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    expect(page.get_by_label("Username")).to_have_value("nobody")
    axe(page, "sign-in refused")
    shot(page, "sign-in")


def test_keyboard_alone_hand_off_and_grant(live: dict[str, Any], browser: Any) -> None:
    """The agent's hand-off and the specialist's grant with nothing but the keyboard."""
    from playwright.sync_api import expect

    sim: Simulator = live["sim"]
    base = live["base"]

    def keyboard_sign_in(page: Any, username: str) -> None:
        page.goto(f"{base}/console/login")
        page.keyboard.press("Tab")  # the skip link
        page.keyboard.press("Enter")
        while page.evaluate("document.activeElement.id") != "username":
            page.keyboard.press("Tab")
        page.keyboard.type(username)
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")

    def tab_to(page: Any, accessible: str, limit: int = 80) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            name = page.evaluate(
                "() => { const e = document.activeElement;"
                " const label = e.labels && e.labels[0] ? e.labels[0].textContent : '';"
                " return (label || e.textContent || e.value || '').trim(); }"
            )
            if name.startswith(accessible):
                return
        raise AssertionError(f"Tab never reached {accessible!r}")

    agent = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    keyboard_sign_in(agent, "alex")
    expect(agent.get_by_role("heading", name="VSTRS agent console")).to_be_visible()
    if agent.locator("#availability").text_content() != "Available":
        tab_to(agent, "Available")
        agent.keyboard.press("Enter")
    expect(agent.locator("#availability")).to_have_text("Available")
    script = (
        Script()
        .press(f"{ADVISER}#")
        .press(f"{PIN}#")
        .answer({"school": "Hill Top", "colour": "Blue"})
    )
    caller: Leg = sim.call(VSTRS, "+441632960003", script.hang_up(after=5000))
    expect(agent.get_by_label("Customer's name")).to_be_enabled(timeout=30_000)
    tab_to(agent, "Specialist team")
    agent.keyboard.press("ArrowDown")  # "Choose a team", then Debt Pursuit
    expect(agent.get_by_label("Specialist team", exact=True)).to_have_value("debt_pursuit")
    tab_to(agent, "Why a specialist")
    agent.keyboard.press("ArrowDown")  # "Choose a reason", then the first reason
    expect(agent.get_by_label("Why a specialist")).to_have_value("time_to_pay")
    for label, text in (
        ("Customer's name", "Kim Keyboard"),
        ("UTR or National Insurance number", "2234567890"),
        ("The issue", "Time to pay"),
    ):
        tab_to(agent, label)
        agent.keyboard.type(text)
    for label, text in (
        ("Day", "3"),
        ("Month", "11"),
        ("Year", "2026"),
        ("Their reference", "TA-K1"),
    ):
        tab_to(agent, label)
        agent.keyboard.type(text)
    tab_to(agent, "Hand off")
    agent.keyboard.press("Enter")
    expect(agent.locator("#progress-state")).to_contain_text(
        "Specialist on the line", timeout=40_000
    )
    tab_to(agent, "Hand over and leave the call")
    agent.keyboard.press("Enter")

    specialist = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    keyboard_sign_in(specialist, "sam")
    expect(specialist.locator("#banner")).to_have_class(
        "disclosure disclosure-active", timeout=10_000
    )
    expect(specialist.locator("#card")).to_contain_text("Kim Keyboard")
    tab_to(specialist, "Face-to-face meetings")
    specialist.keyboard.press("Enter")
    expect(specialist.get_by_role("heading", name="Face-to-face meetings")).to_be_visible()
    sim.schedule(0, lambda: sim.hang_up(caller))


def test_the_admin_console(live: dict[str, Any], browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1300, "height": 1000}).new_page()
    sign_in(page, live["base"], "adam")
    expect(page.get_by_role("heading", name="Staff directory")).to_be_visible()
    axe(page, "admin home")
    for section in (
        "Advisers",
        "VSTRS agents",
        "Specialist teams",
        "Officers",
        "API tokens",
        "Console accounts",
    ):
        page.get_by_role("link", name=section, exact=True).first.click()
        expect(page.get_by_role("heading", name=section, level=1)).to_be_visible()
        axe(page, f"admin: {section}")
    page.get_by_role("link", name="VSTRS agents", exact=True).first.click()
    page.get_by_label("SEES ID").fill("12")
    page.get_by_label("Full name").fill("Zed Agent")
    page.get_by_label("Rung on").fill("zed")
    page.get_by_role("button", name="Register agent").click()
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    axe(page, "admin: a refused change")
    page.get_by_label("SEES ID").fill("200077")
    page.get_by_role("button", name="Register agent").click()
    expect(page.locator("#done")).to_contain_text("Agent 200077 added")
    page.get_by_role("button", name="Remove 200077").click()
    expect(page.get_by_role("heading", name="Remove agent 200077?")).to_be_visible()
    axe(page, "admin: confirm a removal")
    page.get_by_role("button", name="Yes, remove agent 200077").click()
    expect(page.locator("#done")).to_contain_text("Agent 200077 removed")
    page.get_by_role("link", name="Advisers", exact=True).first.click()
    page.get_by_label("Adviser number").first.fill("4100")
    page.get_by_label("Full name").fill("Kim Adviser")
    page.get_by_label("Organisation", exact=True).select_option("litrg")
    page.get_by_role("button", name="Register adviser").click()
    expect(page.locator("#shown-once")).to_contain_text("PIN for adviser 4100")
    axe(page, "admin: a PIN shown once")
    shot(page, "admin-advisers")


def test_the_designer_page_and_its_softphone(live: dict[str, Any], browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1300, "height": 1100}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, live["base"], "dana")
    expect(page.get_by_role("heading", name="Call flows")).to_be_visible()
    expect(page.locator("#flows")).to_contain_text("vstrs_inbound")
    expect(page.locator("#flows")).to_contain_text("Clean")
    expect(page.locator("body")).to_have_attribute("data-diagrams", "drawn", timeout=20_000)
    # The flows list at a glance: each flow's live version, what waits, a small diagram.
    row = page.locator('#flows tr[data-flow="vstrs_inbound"]')
    expect(row).to_contain_text("From the flows folder")
    expect(row).to_contain_text("Nothing")
    diagram = row.locator("pre.mermaid svg")
    expect(diagram).to_be_visible()
    expect(diagram.locator("g.node", has_text="ask_pin")).to_have_count(1)
    box = diagram.bounding_box()
    assert box is not None and box["width"] <= 222 and box["height"] <= 142, box
    tall = page.evaluate("document.documentElement.scrollHeight")
    assert tall < 3200, f"the flows page is {tall} px tall"
    axe(page, "designer")

    page.get_by_label("Flow to call").select_option("vstrs_inbound")
    page.get_by_role("button", name="Call").click()
    keys = page.get_by_label("Keys")
    expect(keys).to_be_visible()
    expect(page.locator("#phone-state")).to_have_text("greeting")
    expect(diagram.locator("g.node.current-state")).to_have_text("greeting")
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
    axe(page, "designer, after a softphone call")
    shot(page, "designer")

    # A new flow that does not parse is refused naming a file, not ".yaml".
    new = page.locator("#new-source + .cf-editor .cm-content")
    new.click()
    page.keyboard.press("Control+a")
    page.keyboard.type("name: [broken\n")
    page.get_by_label("Revision note: what the flow is for").fill("A broken flow")
    page.get_by_role("button", name="Test and publish the new flow").click()
    expect(page.locator("#new-refused")).to_contain_text("new-flow.yaml:")
    axe(page, "designer, a new flow refused")
    # The refusal's own answer (422) is the only error the browser may report.
    assert not [e for e in errors if "422" not in e], errors

    # A flow's page draws its diagram readably, in a box that zooms and pans by keyboard.
    page.goto(f"{live['base']}/console/designer")
    page.get_by_role("link", name="vstrs_inbound", exact=True).click()
    expect(page.locator("body")).to_have_attribute("data-diagrams", "drawn", timeout=20_000)
    figure = page.locator("figure.diagram").first
    port = figure.locator(".diagram-port")
    label = port.locator("g.node", has_text="ask_pin").first
    label_box = label.bounding_box()
    assert label_box is not None and label_box["height"] >= 20, f"readable: {label_box}"
    opened = float(figure.get_attribute("data-scale") or 0)
    port.focus()
    page.keyboard.press("+")
    expect(figure).not_to_have_attribute("data-scale", f"{opened:.2f}")
    assert float(figure.get_attribute("data-scale") or 0) > opened
    page.keyboard.press("0")  # fit: the whole flow in its box
    fitted = port.locator("svg").bounding_box()
    frame = port.bounding_box()
    assert fitted and frame and fitted["width"] <= frame["width"] and fitted["height"] <= frame["height"]
    figure.get_by_role("button", name="Show the diagram at full size").click()
    expect(figure).to_have_attribute("data-scale", "1.00")
    page.keyboard.press("Tab")  # the zoom buttons and the box are all on the tab path
    page.get_by_text("vstrs_inbound as a list of states and transitions").click()
    expect(page.locator("details.outline[open]").first).to_contain_text("on digits")
    axe(page, "flow page, its diagram zoomed")


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
    source = page.locator("#source")
    text = source.input_value()
    editor = page.locator("#source + .cf-editor .cm-content")
    expect(page.locator("#source + .cf-editor .cm-gutters")).to_contain_text("12")  # line numbers
    expect(editor).to_have_attribute("aria-labelledby", "source-label")
    axe(page, "flow page")

    def set_text(value: str) -> None:
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.press("Delete")
        page.keyboard.insert_text(value)

    # A problem is marked in the gutter at its line as the designer types.
    set_text(text.replace("initial:", "initial_state:", 1))
    expect(page.locator("#source-problems")).to_contain_text("line", timeout=10_000)
    page.keyboard.press("Control+Home")  # the editor draws the lines in view: the top
    expect(page.locator("#source + .cf-editor .cm-lint-marker-error").first).to_be_visible()
    set_text(text)
    expect(page.locator("#source-problems")).to_contain_text("No problems", timeout=10_000)

    # A change that breaks a test is refused with the test's diff; the edit is kept.
    set_text(text.replace("belongs to {officer_name}", "is {officer_name}"))
    page.get_by_label("Revision note: what changed and why").fill("Shorter confirmation")
    page.get_by_role("button", name="Test and publish").click()
    expect(page.get_by_role("heading", name="Not published")).to_be_visible()
    expect(page.locator("#refused")).to_contain_text("failed its tests")
    expect(page.locator("#refused")).to_contain_text('-hear "Identity number 4 4 7 1 2 0 3')
    expect(source).to_have_value(text.replace("belongs to {officer_name}", "is {officer_name}"))
    axe(page, "flow page, refused")

    set_text(text.replace("Thank you for calling. Goodbye.", "Thank you for checking. Goodbye."))
    expect(page.get_by_label("Revision note: what changed and why")).to_have_value(
        "Shorter confirmation"
    )  # kept with the refused edit
    # No note: the GOV.UK error summary says so and links to the field (the browser's own
    # "Please fill out this field" never stops the form first).
    page.get_by_label("Revision note: what changed and why").fill("")
    page.get_by_role("button", name="Test and publish").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter a revision note: what changed and why")
    axe(page, "flow page, no revision note")
    summary.get_by_role("link", name="Enter a revision note: what changed and why").click()
    expect(page.get_by_label("Revision note: what changed and why")).to_be_focused()
    page.get_by_label("Revision note: what changed and why").fill("Say checking, not calling")
    page.get_by_role("button", name="Test and publish").click()
    expect(page.locator("#done")).to_contain_text("6 tests passed")
    expect(page.locator("#versions")).to_contain_text("Say checking, not calling")
    new_version = page.locator("#live-version").text_content()
    assert new_version != file_version
    expect(page.locator("#history")).to_contain_text(f"publish {new_version} by dana")

    page.get_by_label("From", exact=True).select_option(file_version)
    page.get_by_label("To", exact=True).select_option(new_version)
    page.get_by_role("button", name="Show the changes").click()
    expect(page.locator("#diff .add")).to_contain_text("Thank you for checking. Goodbye.")
    axe(page, "flow page, a diff")
    shot(page, "flow-publish")

    # The diagram is drawn after the page loads (and its box sized then): click once it is.
    expect(page.locator("body")).to_have_attribute("data-diagrams", "drawn", timeout=20_000)
    page.get_by_role("button", name=f"make version {file_version} live again").click()
    expect(page.get_by_role("heading", name=f"Roll back to version {file_version}?")).to_be_visible(
        timeout=10_000
    )
    axe(page, "rollback confirmation")
    page.get_by_role("button", name="Yes, roll back").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter why you are rolling back")
    page.get_by_label("Why are you rolling back?").fill("Callers misheard the new goodbye")
    page.get_by_role("button", name="Yes, roll back").click()
    expect(page.locator("#done")).to_contain_text(f"Version {file_version} is live again")
    expect(page.locator("#live-version")).to_have_text(file_version)
    # The store holds the rolled-back version as live (every worker serves it to new calls
    # within its release check).
    eventually(lambda: (svc.releases.release("officer_check") or {}).get("live") == file_version)
    assert not errors, errors


def test_a_designer_and_an_auditor_read_what_happened_on_a_call(
    live: dict[str, Any], browser: Any
) -> None:
    from playwright.sync_api import expect

    sim, svc = live["sim"], live["svc"]
    script = Script().press(f"{ADVISER}#").press("000000#").hang_up()
    caller: Leg = sim.call(VSTRS, "+441632960004", script)
    deadline = time.monotonic() + 60
    while not svc.traces.search(flow="vstrs_inbound", count=5):
        assert time.monotonic() < deadline, "the call's end never reached the service"
        time.sleep(0.2)
    page = browser.new_context(viewport={"width": 1300, "height": 1000}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live["base"], "dana")
    page.get_by_role("link", name="Calls: what happened on a real call").click()
    page.get_by_label("Flow").select_option("vstrs_inbound")
    page.get_by_role("button", name="Find calls").click()
    expect(page.locator("#calls")).to_contain_text(caller.sid)
    axe(page, "calls of a flow")
    page.get_by_role("link", name=caller.sid).click()
    expect(page.get_by_role("heading", name=f"What happened on call {caller.sid}")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-diagrams", "drawn", timeout=20_000)
    expect(page.locator('figure.path svg g.node', has_text="ask_pin")).to_have_count(1)
    # The path fits its box, the state it ended in in view; zoom in for detail.
    port = page.locator("figure.path .diagram-port")
    frame, drawn = port.bounding_box(), port.locator("svg").bounding_box()
    assert frame and drawn and drawn["width"] <= frame["width"] + 1, (frame, drawn)
    ended = port.locator("g.node.s_active").first.bounding_box()
    assert ended and frame["x"] <= ended["x"] and ended["x"] + ended["width"] <= frame["x"] + frame["width"]
    assert frame["y"] <= ended["y"] and ended["y"] + ended["height"] <= frame["y"] + frame["height"]
    page.locator("figure.path").get_by_role("button", name="Zoom in").click()
    expect(page.locator("figure.path .diagram-scale")).to_contain_text("Shown at")
    expect(page.locator("#steps")).to_contain_text("keyed, hidden (decided: failed)")
    expect(page.locator("#steps")).not_to_contain_text("000000")
    axe(page, "a call's trace")
    shot(page, "call-trace")
    auditor = browser.new_context(viewport={"width": 1300, "height": 1000}).new_page()
    sign_in(auditor, live["base"], "ada")
    auditor.get_by_label("Open a call's trace (the CallSid of an audit entry)").fill(caller.sid)
    auditor.get_by_role("button", name="Open the trace").click()
    expect(auditor.locator("#steps")).to_contain_text("keyed, hidden")
    reads = [e for e in svc.audit.entries() if e["kind"] == "trace.read"]
    assert [(e["by"], e["role"]) for e in reads] == [("dana", "designer"), ("ada", "auditor")]
    assert not errors, errors


BANNER_RECORDER = """() => {
  window.__banners = [];
  const banner = document.getElementById("banner");
  const note = () => window.__banners.push(
    [banner.className, banner.dataset.handoff || "", document.getElementById("banner-text").textContent]);
  new MutationObserver(note).observe(banner, {attributes: true, childList: true, subtree: true, characterData: true});
  note();
}"""


def test_a_floor_of_people_three_overlapping_hand_offs(live: dict[str, Any], browser: Any) -> None:
    """Two agents hand off three overlapping calls to Debt Pursuit: Sam's phone takes the
    first, Kim's the second, and the third rings the team's number, taken on the console by
    Mia. Each specialist's console shows only their own call; no live banner ever flips;
    each names its customer and matter; after each call the rest of the team sees nothing
    of its customer. An agent's form survives a reload, and the caller hanging up, into
    after-call work, where the outcome is saved."""
    from playwright.sync_api import expect

    sim: Simulator = live["sim"]
    svc: Callflow = live["svc"]
    base = live["base"]
    now = time.time()
    svc.staff.add_agent("200002", "Bob Agent", "client:bob", now, by="tests")
    svc.accounts.add("bob", "Bob Agent", "vstrs_agent", PASSWORD, now, sees_id="200002", by="tests")
    sim.add_callee("client:bob", Callee("answered", after=2, script=Script().hang_up(after=5000)))
    for number, name in (("300102", "Kim Specialist"), ("300103", "Mia Specialist")):
        first = name.split()[0].lower()
        svc.staff.add_specialist(number, name, "debt_pursuit", f"client:{first}", now, by="tests")
        svc.accounts.add(first, name, "specialist", PASSWORD, now, specialist=number, by="tests")
    sim.add_callee("client:kim", Callee("answered", after=3, script=keys_own_sees_id(svc, "300102")))
    # The team's number: whoever picks it up takes the hand-off on their console (Mia).
    sim.add_callee(
        TEAM_NUMBER, Callee("answered", after=3, script=keys_own_sees_id(svc, "300103"))
    )

    def page(username: str, width: int = 1366, height: int = 900) -> Any:
        made = browser.new_context(viewport={"width": width, "height": height}).new_page()
        sign_in(made, base, username)
        return made

    alex, bob = page("alex"), page("bob")
    sam, kim, mia = page("sam", 1300), page("kim", 1300), page("mia", 1300)
    for specialist in (sam, kim, mia):
        expect(specialist.get_by_role("heading", name="Specialist console")).to_be_visible()
        specialist.evaluate(BANNER_RECORDER)
    alex.get_by_role("button", name="Available").click()
    expect(alex.locator("#availability")).to_have_text("Available")
    bob.get_by_role("button", name="Available").click()
    expect(bob.locator("#availability")).to_have_text("Available")
    kim.get_by_role("button", name="Available").click()
    expect(kim.locator("#availability")).to_have_text("Available")
    kim.evaluate(BANNER_RECORDER)  # the page was drawn again by the form's answer

    def caller(number: str, waits: float = 5000) -> Leg:
        script = Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(
            {"school": "Hill Top", "colour": "Blue"}
        )
        return sim.call(VSTRS, number, script.hang_up(after=waits))

    def fill(agent: Any, name: str, reference: str, issue: str) -> None:
        agent.get_by_label("Customer's name").fill(name)
        agent.get_by_label("UTR or National Insurance number").fill(reference)
        agent.get_by_label("The issue").fill(issue)
        agent.get_by_label("Why a specialist").select_option("time_to_pay")
        agent.get_by_label("Specialist team", exact=True).select_option("debt_pursuit")
        agent.get_by_label("Day", exact=True).fill("1")
        agent.get_by_label("Month", exact=True).fill("11")
        agent.get_by_label("Year", exact=True).fill("2026")
        agent.get_by_label("Their reference").fill("TA-1")

    def hand_off_and_over(agent: Any) -> None:
        agent.get_by_role("button", name="Hand off", exact=True).click()
        expect(agent.locator("#progress-state")).to_contain_text(
            "Specialist on the line", timeout=60_000
        )
        agent.get_by_role("button", name="Hand over and leave the call").click()

    # 1. Alex's caller: the form survives a reload (kept as a draft), then Sam takes it.
    first = caller("+441632960001")
    expect(alex.get_by_label("Customer's name")).to_be_enabled(timeout=30_000)
    alex.get_by_label("Customer's name").fill("Pat Example")
    alex.get_by_label("The issue").fill("Wants time to pay")
    alex.get_by_label("Why a specialist").select_option("time_to_pay")
    expect(alex.locator("#draft-status")).to_contain_text("Draft kept", timeout=10_000)
    alex.reload()
    expect(alex.get_by_label("Customer's name")).to_have_value("Pat Example")
    expect(alex.get_by_label("The issue")).to_have_value("Wants time to pay")
    fill(alex, "Pat Example", "2234567890", "Wants time to pay")
    hand_off_and_over(alex)
    expect(sam.locator("#banner")).to_have_class("disclosure disclosure-active", timeout=20_000)
    expect(sam.locator("#banner-text")).to_contain_text("Pat Example")
    expect(sam.locator("#banner-text")).to_contain_text("Wants time to pay")
    expect(sam.locator("#banner-text")).to_contain_text("for this call only")
    expect(sam.locator("#availability")).to_have_text("On a hand-off")
    expect(alex.locator("#after-call-panel")).to_be_visible(timeout=20_000)
    expect(alex.locator("#availability")).to_have_text("After-call work")
    expect(alex.locator("#after-call")).to_contain_text("Handed to Debt Pursuit")
    expect(alex.locator("#after-call")).to_contain_text("the specialist's authority is live")
    axe(alex, "agent console, after-call work")

    # 2. Bob's caller: Sam is on a call, so Kim's phone rings.
    second = caller("+441632960002")
    expect(bob.get_by_label("Customer's name")).to_be_enabled(timeout=30_000)
    fill(bob, "Jo Sample", "AB 12 34 56 C", "A payment plan")
    hand_off_and_over(bob)
    expect(kim.locator("#banner")).to_have_class("disclosure disclosure-active", timeout=20_000)
    expect(kim.locator("#banner-text")).to_contain_text("Jo Sample")
    expect(kim.locator("#banner-text")).to_contain_text("A payment plan")

    # 3. Alex records the first call's outcome, is ready, and takes a third caller; Sam and
    # Kim are on calls, so the team's number rings and Mia takes it on her console.
    alex.get_by_label("Notes for the call record").fill("Debt Pursuit has it")
    expect(alex.get_by_label("Handed off to a specialist team")).to_be_checked()
    alex.get_by_role("button", name="Save and take the next call").click()
    expect(alex.locator("#availability")).to_have_text("Available")
    record = svc.vstrs.get(first.sid)
    assert record is not None and record["outcome"]["code"] == "handed_off"
    assert record["outcome"]["by"] == AGENT_SEES and record["outcome"]["notes"] == "Debt Pursuit has it"
    third = caller("+441632960003")
    expect(alex.get_by_label("Customer's name")).to_be_enabled(timeout=30_000)
    fill(alex, "Chris Taxpayer", "8876543210", "Wants a refund")
    alex.get_by_role("button", name="Hand off", exact=True).click()
    # Focus on Cancel stays there as the panel redraws with every step of the hand-off.
    cancel = alex.get_by_role("button", name="Cancel the hand-off")
    cancel.focus()
    take = mia.get_by_role("button", name="Take this hand-off")
    expect(take).to_be_visible(timeout=30_000)
    axe(mia, "specialist console, a hand-off to take")
    take.click()
    expect(mia.locator("#done")).to_contain_text("You have taken the hand-off")
    mia.evaluate(BANNER_RECORDER)
    expect(alex.locator("#progress-state")).to_contain_text("Specialist on the line", timeout=90_000)
    expect(alex.get_by_role("button", name="Cancel the hand-off")).to_be_focused()
    alex.get_by_role("button", name="Hand over and leave the call").click()
    expect(mia.locator("#banner")).to_have_class("disclosure disclosure-active", timeout=20_000)
    expect(mia.locator("#banner-text")).to_contain_text("Chris Taxpayer")
    expect(mia.locator("#banner-text")).to_contain_text("Wants a refund")
    axe(mia, "specialist console, disclosure authorised")

    # All three are live: each console shows its own call, and nobody else's customer.
    customers = {
        "sam": ("Pat Example", "2234567890"),
        "kim": ("Jo Sample", "AB123456C"),
        "mia": ("Chris Taxpayer", "8876543210"),
    }
    pages = {"sam": sam, "kim": kim, "mia": mia}
    for who, shown in pages.items():
        text = shown.locator("main").inner_text()
        for other, (name, reference) in customers.items():
            if other == who:
                assert name in text, (who, name)
            else:
                assert name not in text and reference not in text, (who, name)
        expect(shown.locator("#team")).to_contain_text("Alex Agent")
    shot(sam, "floor-specialist-active")

    # Each call ends: its specialist keeps a read-only card for the wrap-up; the rest of the
    # team sees none of its customer, in the page or in the state it is drawn from.
    for leg, who in ((first, "sam"), (second, "kim"), (third, "mia")):
        sim.schedule(0, lambda leg=leg: sim.hang_up(leg))
        expect(pages[who].locator("#banner")).to_have_class(
            "disclosure disclosure-ended", timeout=10_000
        )
        expect(pages[who].locator("#banner-text")).to_contain_text("Authority ended")
        expect(pages[who].locator("#wrap-up")).to_contain_text(customers[who][0])
        for other, shown in pages.items():
            if other == who:
                continue
            state = shown.request.get(f"{base}/console/specialist/state").text()
            assert customers[who][0] not in state and customers[who][1] not in state, (who, other)
            assert customers[who][0] not in shown.locator("main").inner_text()
    axe(sam, "specialist console, wrap-up")
    shot(sam, "floor-specialist-wrap-up")

    # No live banner ever flipped to another call.
    for who, shown in pages.items():
        history = shown.evaluate("() => window.__banners")
        live_for = {h for cls, h, _text in history if cls.endswith("disclosure-active")}
        assert len(live_for) == 1, (who, history)

    # 4. Bob's next caller hangs up while Bob types: the form moves into after-call work,
    # and the outcome Bob records is saved.
    bob.get_by_role("button", name="Ready for the next call").click()
    expect(bob.locator("#availability")).to_have_text("Available")
    fourth = caller("+441632960004")
    expect(bob.get_by_label("Customer's name")).to_be_enabled(timeout=30_000)
    bob.get_by_label("Customer's name").fill("Kim Keyboard")
    expect(bob.locator("#draft-status")).to_contain_text("Draft kept", timeout=10_000)
    sim.schedule(0, lambda: sim.hang_up(fourth))
    expect(bob.locator("#after-call-panel")).to_be_visible(timeout=20_000)
    expect(bob.locator("#after-call")).to_contain_text("Kim Keyboard")
    bob.get_by_label("Caller hung up").check()
    bob.get_by_label("Notes for the call record").fill("Rang off mid-way")
    bob.get_by_role("button", name="Save and take the next call").click()
    expect(bob.locator("#availability")).to_have_text("Available")
    outcome = (svc.vstrs.get(fourth.sid) or {})["outcome"]
    assert outcome["code"] == "caller_hung_up" and outcome["notes"] == "Rang off mid-way"
    assert not sim.errors, sim.errors


def test_the_supervisor_watches_the_floor_live(live: dict[str, Any], browser: Any) -> None:
    """The floor and the wallboard update by themselves as calls move; a supervisor sets
    an agent away; every state is axe clean; other roles are refused."""
    from playwright.sync_api import expect

    sim: Simulator = live["sim"]
    base, svc = live["base"], live["svc"]
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "sue")
    expect(page.get_by_role("heading", name="The floor")).to_be_visible()
    english = page.locator("#queues tbody tr").first
    expect(english).to_contain_text("English")
    expect(page.locator("#agent-alex, #agent-200001")).to_contain_text("Away")
    expect(page.locator(f"#specialist-{SAM}")).to_contain_text("Available")
    axe(page, "supervisor, a quiet floor")

    board = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    board.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(board, base, "sue")
    board.goto(f"{base}/console/supervisor/wallboard")
    waiting_tile = board.locator(".tile", has_text="English waiting")
    expect(waiting_tile.locator(".tile-figure")).to_have_text("0")
    axe(board, "wallboard")

    # A caller verifies and waits (no agent is available): both pages show it unprompted.
    script = Script().press(f"{ADVISER}#").press(f"{PIN}#").answer({"school": "Hill Top", "colour": "Blue"})
    caller: Leg = sim.call(VSTRS, "+441632960001", script.hang_up(after=5000))
    expect(english.locator("td").first).to_have_text("1", timeout=30_000)
    expect(waiting_tile.locator(".tile-figure")).to_have_text("1", timeout=30_000)
    expect(english.locator(".timer")).not_to_have_text("0:00", timeout=5_000)
    axe(page, "supervisor, a caller waiting")
    axe(board, "wallboard, a caller waiting")
    shot(page, "supervisor")
    shot(board, "wallboard")
    body = board.locator("main").inner_text()
    assert "Alex" not in body and "Sam Adviser" not in body and "200001" not in body

    # Alex becomes available and takes the caller: the queue empties by itself.
    svc.staff.set_availability(AGENT_SEES, "available", time.time())
    expect(page.locator("#agent-200001")).to_contain_text("On a call", timeout=30_000)
    expect(english.locator("td").first).to_have_text("0", timeout=30_000)
    expect(board.locator(".tile", has_text="On a call").locator(".tile-figure")).to_have_text("1")

    # The supervisor sets Alex away: after the call, since Alex is on one.
    row = page.locator("#agent-200001")
    row.get_by_label("Why Alex Agent is away").select_option("training")
    row.get_by_role("button", name="Set away Alex Agent").click()
    expect(page.locator("#done")).to_contain_text("Agent 200001 is away (training) when their call ends.")
    expect(page.locator("#agent-200001")).to_contain_text("Away after this call: Training")
    axe(page, "supervisor, an agent set away")
    sim.schedule(0, lambda: sim.hang_up(caller))

    agent = browser.new_context().new_page()
    sign_in(agent, base, "alex")
    refused = agent.goto(f"{base}/console/supervisor")
    assert refused is not None and refused.status == 403
    assert not errors, errors


def test_the_auditors_workspace(live: dict[str, Any], browser: Any) -> None:
    """The audit log filtered and paged, the chain verified, a sample drawn, a bad period
    answered with an error summary: every state axe clean."""
    from playwright.sync_api import expect

    sim: Simulator = live["sim"]
    caller: Leg = sim.call(VSTRS, "+441632960004", Script().press(f"{ADVISER}#").press("000000#").hang_up())
    svc = live["svc"]
    deadline = time.monotonic() + 60
    while not svc.traces.search(flow="vstrs_inbound", count=5):
        assert time.monotonic() < deadline, "the call's end never reached the service"
        time.sleep(0.2)
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live["base"], "ada")
    expect(page.get_by_role("heading", name="Audit and assurance")).to_be_visible()
    expect(page.get_by_role("img", name="Hand-offs by why a specialist was needed")).to_be_visible()
    axe(page, "auditor, charts with titled axes")

    # A reversed period: an error summary linked to the field, nothing else lost.
    page.locator("#from-day").fill("7")
    page.locator("#from-month").fill("12")
    page.locator("#from-year").fill("2026")
    page.locator("#to-day").fill("1")
    page.locator("#to-month").fill("12")
    page.locator("#to-year").fill("2026")
    page.get_by_role("button", name="Show the period").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("must be the same as or after its start")
    axe(page, "auditor, a reversed period")

    page.get_by_role("link", name="The audit log").first.click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.locator("#log")).to_contain_text("verification.pin")
    # Every column is on a 1366 px screen without scrolling sideways (CallSids and the
    # details wrap); narrower screens scroll within the table's own region.
    region = page.locator("#log").locator("xpath=..")
    assert region.evaluate("e => e.scrollWidth <= e.clientWidth"), "the log is wider than the page"
    axe(page, "audit log")
    page.get_by_label("Kind of entry").select_option("verification.pin")
    page.get_by_label("CallSid").fill(caller.sid.lower())
    page.get_by_role("button", name="Show entries").click()
    expect(page.locator("#log tbody tr")).to_have_count(1)
    expect(page.locator("#log")).to_contain_text(caller.sid)
    shot(page, "audit-log")
    page.get_by_role("link", name=caller.sid).click()
    expect(page.locator("main")).to_contain_text(caller.sid)
    page.go_back()

    page.get_by_role("button", name="Verify the chain now").click()
    expect(page.locator("#done")).to_contain_text("Audit chain: ok:")
    axe(page, "audit log, the chain verified")

    page.goto(f"{live['base']}/console/auditor")
    page.locator("#draw-sample summary").click()
    page.locator("#sample-org").select_option("taxaid")
    page.get_by_label("How many hand-offs").fill("0")
    page.get_by_role("button", name="Draw the sample").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("from 1 to 500")
    axe(page, "auditor, a bad sample size")
    page.get_by_label("How many hand-offs").fill("5")
    page.get_by_role("button", name="Draw the sample").click()
    expect(page.locator("#done")).to_contain_text("Drew 0 hand-off(s) of Tax Aid")
    axe(page, "auditor, a sample drawn")

    designer = browser.new_context().new_page()
    sign_in(designer, live["base"], "dana")
    refused = designer.goto(f"{live['base']}/console/auditor/log")
    assert refused is not None and refused.status == 403
    assert not errors, errors


def test_every_role_opens_only_its_own_consoles(live: dict[str, Any], browser: Any) -> None:
    """Each role, signed in in a real browser, opens the supervisor's floor and wallboard,
    the auditor's workspace and log, the calls list and the admin's directory: its own
    open, every other answers a GOV.UK 403 page (never JSON), with no console error."""
    expected = {
        "alex": set(),
        "sam": set(),
        "sue": {"/console/supervisor", "/console/supervisor/wallboard"},
        "dana": {"/console/calls"},
        "ada": {"/console/auditor", "/console/auditor/log", "/console/calls"},
        "adam": {
            "/console/supervisor",
            "/console/supervisor/wallboard",
            "/console/auditor",
            "/console/auditor/log",
            "/console/calls",
            "/console/admin",
        },
    }
    paths = sorted(set().union(*expected.values()))
    for username, allowed in expected.items():
        context = browser.new_context()
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        sign_in(page, live["base"], username)
        for path in paths:
            answer = page.goto(f"{live['base']}{path}")
            assert answer is not None
            if path in allowed:
                assert answer.status == 200, (username, path, answer.status)
            else:
                assert answer.status == 403, (username, path, answer.status)
                assert "text/html" in (answer.headers.get("content-type") or "")
                assert page.locator("h1").first.inner_text().strip(), (username, path)
        assert not errors, (username, errors)
        context.close()


def test_a_specialist_arranges_an_outdoor_meeting_and_records_its_risk_assessment(
    live: dict[str, Any], browser: Any
) -> None:
    """DMBM510150 in the browser: a purpose above the officer's grade is refused with an
    error summary (nothing typed lost), an outdoor meeting waits for its risk assessment,
    a date after the visit is refused, then it is recorded: every state axe clean."""
    from playwright.sync_api import expect

    svc = live["svc"]
    now = svc.clock.now()
    svc.staff.add_officer("4471203", "Alex Morgan", now, grade="O", by="tests")
    svc.staff.add_officer("4471299", "Jo Junior", now, grade="AO", by="tests")
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, live["base"], "sam")
    page.goto(f"{live['base']}/console/meetings")
    expect(page.get_by_role("heading", name="Arrange a meeting")).to_be_visible()
    page.get_by_label("Customer's name").fill("Pat Example")
    page.get_by_label("Customer's phone number").fill("+447700900123")
    page.get_by_label("Customer's reference").fill("DM-2041-77")
    page.get_by_label("What the meeting is for").select_option("quantify_books")
    page.get_by_label("Officer", exact=True).select_option("4471299")
    page.get_by_label("What to bring or provide").fill("your business books")
    page.locator("#arrange-when-day").fill("4")
    page.locator("#arrange-when-month").fill("3")
    page.locator("#arrange-when-year").fill("2031")
    page.get_by_label("Time of the meeting").fill("14:00")
    page.get_by_label("Where it is held").select_option("customer_business")
    page.get_by_label("Address or office").fill("Unit 4, Mill Lane, Leeds")
    page.get_by_label("Customer's date of birth, for the identity check").fill("1970-03-21")
    page.get_by_role("button", name="Arrange meeting").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("needs an Officer or above")
    expect(page.get_by_label("Address or office")).to_have_value("Unit 4, Mill Lane, Leeds")
    axe(page, "meetings, an officer below the purpose's grade")
    summary.get_by_role("link").first.click()
    expect(page.get_by_label("Officer", exact=True)).to_be_focused()
    page.get_by_label("Officer", exact=True).select_option("4471203")
    page.get_by_role("button", name="Arrange meeting").click()
    expect(page.locator("#done")).to_contain_text("waits for a risk assessment")
    row = page.locator("#meetings tbody tr").first
    expect(row).to_contain_text("Waits for a risk assessment")
    expect(row).to_contain_text("Not until its risk assessment is recorded")
    axe(page, "meetings, one waiting for its risk assessment")

    form = page.locator("section", has=page.get_by_role("heading", name="Risk assessment for the visit to Pat Example (DM-2041-77)"))
    form.get_by_label("Who assessed the visit").fill("Alex Morgan")
    form.get_by_label("Day").fill("1")
    form.get_by_label("Month").fill("4")
    form.get_by_label("Year").fill("2031")
    form.get_by_label("What it concluded").select_option("proceed")
    form.get_by_label("The assessment's reference").fill("RA-77")
    form.get_by_role("button", name="Record risk assessment").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("must come before the visit")
    axe(page, "meetings, a risk assessment dated after the visit")
    form = page.locator("section", has=page.get_by_role("heading", name="Risk assessment for the visit to Pat Example (DM-2041-77)"))
    form.get_by_label("Year").fill("2020")
    form.get_by_role("button", name="Record risk assessment").click()
    expect(page.locator("#done")).to_contain_text("risk assessment recorded")
    expect(page.locator("#meetings tbody tr").first).to_contain_text("Risk assessed 2020-04-01 by Alex Morgan (RA-77)")
    axe(page, "meetings, risk assessed")
    assert svc.meetings.all()[0]["state"] in {"scheduled", "calling"}
    # A customer agrees a time on a call elsewhere: the open page says so at once.
    open_time = svc.meetings.add(
        customer_name="Chris Example", customer_number="+447700900124", reference="DM-2041-78",
        officer_number="4471203", purpose="time_to_pay", bring="your bank statements",
        when=None, where="the Leeds office", place="hmrc_office", date_of_birth="1980-01-15",
        by="tests",
    )  # fmt: skip
    at = svc.meetings.offer_times(open_time["id"])[0]
    svc.meetings.agree_time(open_time["id"], "CA-browser-test", at)
    changed = page.locator("#meetings-changed")
    expect(changed).to_be_visible(timeout=10_000)
    expect(changed).to_contain_text("A time has been agreed for a meeting.")
    axe(page, "meetings, a time agreed on a call meanwhile")
    changed.get_by_role("link", name="Show the meetings as they are now").click()
    row = page.locator(f"#m-{open_time['id']}")
    expect(row).to_contain_text("Agreed on the call")
    expect(row).to_contain_text(f"Start line code {open_time['phone_code']}")
    assert not errors, errors
