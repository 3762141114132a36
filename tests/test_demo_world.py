"""`callflow serve --demo`: a newcomer signs in as each role and sees live work at once.

The world is driven here on the simulator's virtual clock (fast and deterministic); one
test starts the real command and opens the front door.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from callflow.cli.main import main
from callflow.demo_world import ACCOUNTS, DemoWorld
from tests.conftest import TEST_REDIS_URL, free_port

ROOT = Path(__file__).resolve().parent.parent


def sign_in(world: DemoWorld, username: str) -> FlaskClient:
    browser = world.app.test_client()
    page = browser.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    answer = browser.post(
        "/console/login",
        data={"username": username, "password": world.password, "csrf_token": token.group(1)},
    )
    assert answer.status_code == 303, (username, answer.get_data(as_text=True)[:300])
    return browser


def run_world(world: DemoWorld, seconds: float, step: float = 1.0) -> None:
    """The world's people on its virtual clock: callers as due, Robin every step."""
    next_caller = world.clock.now()
    end = world.clock.now() + seconds
    while world.clock.now() < end:
        if world.clock.now() >= next_caller:
            world._caller()
            next_caller += world.caller_every
        world._robot_step()
        world.workers()
        world.sim.advance(step)


@pytest.fixture
def world() -> DemoWorld:
    made = DemoWorld("http://127.0.0.1:8000", caller_every=45.0, say=lambda _text: None)
    made.seed()
    return made


def test_every_role_has_an_account_and_lands_on_its_console(world: DemoWorld) -> None:
    homes = {
        "vstrs_agent": "/console/agent",
        "specialist": "/console/specialist",
        "supervisor": "/console/supervisor",
        "designer": "/console/designer",
        "auditor": "/console/auditor",
        "admin": "/console/admin",
    }
    assert {role for _u, _n, role, _t in ACCOUNTS} == set(homes)
    for username, _name, role, _tie in ACCOUNTS:
        browser = sign_in(world, username)
        landed = browser.get("/console/")
        assert landed.headers["Location"].endswith(homes[role])
        assert browser.get(homes[role]).status_code == 200
    front = world.app.test_client().get("/")
    assert front.status_code == 302 and front.headers["Location"].endswith("/console/")
    assert world.app.test_client().get("/console/").headers["Location"].startswith("/console/login")


def test_the_specialist_sees_a_live_hand_off_within_a_minute(world: DemoWorld) -> None:
    specialist = sign_in(world, "sam")
    run_world(world, 60)
    state = specialist.get("/console/specialist/state").get_json()
    assert state["handoff"] is not None, "a hand-off reached Debt Pursuit within a minute"
    authorised = []
    for _ in range(10):
        run_world(world, 5)
        state = specialist.get("/console/specialist/state").get_json()
        if state["grant"] is not None and state["grant"]["authorised"]:
            authorised.append(state)
    assert authorised, "the specialist saw a live grant within 110 s"
    assert authorised[0]["handoff"]["organisation_name"]
    # The caller hangs up in the end: the authority goes with the call.
    run_world(world, world.talk + 30)
    kinds = [e["kind"] for e in world.service.audit.all_entries()]
    assert "grant.issued" in kinds and "grant.ended" in kinds, [
        k for k in kinds if "grant" in k or "handoff" in k
    ]
    assert not world.sim.errors


def test_the_human_agent_takes_the_next_caller(world: DemoWorld) -> None:
    agent = sign_in(world, "alex")
    page = agent.get("/console/agent").get_data(as_text=True)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert csrf
    # Robin is on a call; Alex becomes available and the next caller comes to Alex.
    run_world(world, 30)
    made = agent.post(
        "/console/agent/availability", data={"status": "available", "csrf_token": csrf.group(1)}
    )
    assert made.status_code in {200, 303}
    run_world(world, 90)
    state = agent.get("/console/agent/state").get_json()
    assert state["call"] is not None, state


def test_the_admin_and_auditor_see_the_world(world: DemoWorld) -> None:
    admin = sign_in(world, "ada")
    advisers = admin.get("/console/admin/advisers").get_data(as_text=True)
    for number in ("1001", "1002", "1003", "1004"):
        assert f'data-row="{number}"' in advisers
    teams = admin.get("/console/admin/teams").get_data(as_text=True)
    assert "Debt Pursuit" in teams and "Insolvency" in teams
    assert sign_in(world, "audrey").get("/console/auditor").status_code == 200
    assert len(world.service.meetings.all()) == 1


def test_demo_refuses_redis_and_other_hosts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    assert main(["serve", "--demo"]) == 1
    assert "unset REDIS_URL" in capsys.readouterr().err
    monkeypatch.delenv("REDIS_URL")
    assert main(["serve", "--demo", "--host", "192.0.2.1"]) == 1
    assert "this machine only" in capsys.readouterr().err


def test_the_command_serves_the_demo_and_is_quiet() -> None:
    """The real command: it prints every account, the supervisor sees its first caller
    verified within seconds of starting, and nothing but the banner is printed."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "PORT"}}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "callflow.cli", "serve", "--demo", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner: list[str] = []
    try:
        assert process.stdout is not None
        while not any("Ctrl-C stops it" in line for line in banner):
            line = process.stdout.readline()
            assert line, "the demo ended before its banner: " + "".join(banner)
            banner.append(line)
        password = re.search(r"password for every account: (demo-\S+)", "".join(banner))
        assert password, banner
        base = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        deadline = time.monotonic() + 30
        while True:
            try:
                with opener.open(f"{base}/console/login") as page:
                    login = page.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.2)
        token = re.search(r'name="csrf_token" value="([^"]+)"', login)
        assert token and "Sign in" in login
        form = {"username": "sue", "password": password.group(1), "csrf_token": token.group(1)}
        opener.open(f"{base}/console/login", urllib.parse.urlencode(form).encode()).close()
        # The first caller rings 2 s in: the supervisor's floor shows them verified.
        while True:
            with opener.open(f"{base}/console/supervisor/panel") as answer:
                panel = answer.read().decode()
            verified = re.search(r"Verified\s*</dt>\s*<dd[^>]*>\s*(\d+)", panel)
            assert verified, panel[:2000]
            if int(verified.group(1)) >= 1:
                break
            assert time.monotonic() < deadline, "no caller verified in the demo's first 30 s"
            time.sleep(0.2)
    finally:
        process.terminate()
        rest, _ = process.communicate(timeout=10)
    output = "".join(banner) + rest
    assert "password for every account: demo-" in output
    for username, *_ in ACCOUNTS:
        assert f"  {username} " in output
    assert "INFO" not in output and "Traceback" not in output, output


def test_every_fourth_caller_rings_the_welsh_line(world: DemoWorld) -> None:
    from callflow.demo_world import ROBOT_AGENT

    run_world(world, 600)
    calls = world.service.vstrs.recent_for_agent(ROBOT_AGENT[0], count=20)
    welsh = [c for c in calls if c.get("language") == "cy-GB"]
    assert welsh, "a Welsh caller reached Robin after the minute no Welsh speaker was free"
    kinds = [e["kind"] for e in world.service.audit.all_entries()]
    assert "agent.language_fallback" in kinds


def test_an_adviser_who_asks_for_a_call_back_is_rung_back_verified_and_put_through(
    world: DemoWorld,
) -> None:
    from callflow.demo_world import ROBOT_AGENT

    svc = world.service
    # Robin is away: nobody is free, so callers are offered a call-back; the second caller
    # (every other one) takes it.
    svc.staff.set_availability(ROBOT_AGENT[0], "away", world.clock.now())
    run_world(world, 100)
    asked = [
        e
        for e in svc.audit.all_entries()
        if e["kind"] == "callback.noted" and e["reason"] == "asked"
    ]
    assert asked, [e["kind"] for e in svc.audit.all_entries()][-20:]
    callback_id = asked[0]["callback"]
    assert svc.callbacks.get(callback_id)["status"] == "to_call_back"
    agent = sign_in(world, "alex")
    waiting = agent.get("/console/agent/state").get_json()["callbacks"]
    assert [c["status"] for c in waiting][:1] == ["to_call_back"]
    # Robin is back: the call-back is placed to the adviser's registered phone, they verify
    # again, and Robin takes the call.
    svc.staff.set_availability(ROBOT_AGENT[0], "available", world.clock.now())
    for _ in range(60):
        run_world(world, 5)
        if svc.callbacks.get(callback_id)["status"] == "done":
            break
    done = svc.callbacks.get(callback_id)
    assert done["status"] == "done", done
    leg_sid = done["attempts"][-1]["call_sid"]
    leg = world.sim.legs[leg_sid]
    assert leg.to.startswith("+44207946") and "returning your call" in " ".join(leg.heard())
    assert svc.vstrs.get(leg_sid)["agent"]["sees_id"] == ROBOT_AGENT[0]
    assert not world.sim.errors


def test_the_demo_is_a_floor_and_no_hand_off_fails_for_a_demo_reason() -> None:
    """A caller every 20 s for ten minutes: Robin hands off whenever Sam or Kim is free;
    each specialist's phone keys the SEES ID of the agent on *their own* hand-off, so
    overlapping hand-offs all get through, each taken by the person it rang."""
    from callflow.demo_world import SPECIALISTS

    world = DemoWorld("http://127.0.0.1:8000", caller_every=20.0, say=lambda _text: None)
    world.seed()
    run_world(world, 600)
    svc = world.service
    handoffs = svc.store.indexed("handoffs", "team:debt_pursuit")
    assert len(handoffs) >= 4, [h["state"] for h in handoffs]
    failed = [(h["id"], h["reason"]) for h in handoffs if h["state"] == "failed"]
    assert failed == [], failed
    takers = {h["taken_by"]["id"] for h in handoffs if h.get("taken_by")}
    assert takers == {SPECIALISTS[0][0], SPECIALISTS[1][0]}, "Sam's and Kim's phones both"
    for h in handoffs:
        assert h["tried"] == [f"specialist:{h['taken_by']['id']}"], "taken by whoever it rang"
    checks = [e["outcome"] for e in svc.audit.all_entries() if e["kind"] == "handoff.sees_check"]
    assert checks and set(checks) == {"match"}, "every SEES ID keyed was the right one"
    overlapping = any(
        a["id"] != b["id"]
        and a["requested_at"] <= b["requested_at"]
        and (svc.handoffs.grants.get(a["grant_id"]) or {}).get("ended_at", 0) is not None
        and b["requested_at"]
        < float((svc.handoffs.grants.get(a["grant_id"]) or {}).get("ended_at") or 1e18)
        for a in handoffs
        for b in handoffs
        if a.get("grant_id")
    )
    assert overlapping, "two hand-offs were live at once"
    assert not world.sim.errors
