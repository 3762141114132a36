"""The supervisor's floor: live queues by language, agents' states, hand-offs and grants
across teams, the line, today's figures; the wallboard; setting an agent Away and
reopening a call-back; and who may see any of it. Both stores, through the simulator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from callflow.clock import ManualClock
from callflow.desks import Feed, SupervisorDesk
from callflow.desks.supervisor import today_figures
from callflow.simulator import Leg, Script
from callflow.store import Store
from tests.conftest import ADVISER, PIN
from tests.rigs import (
    AGENT,
    ANSWERS,
    CUSTOMER,
    KIM,
    PASSWORD,
    SUE,
    TEAM_FIRST,
    VSTRS,
    Rig,
    accepting,
    csrf_from,
    sign_in,
)

PEOPLE = {
    "sue": ("supervisor", {}),
    "ada": ("admin", {}),
    "alex": ("vstrs_agent", {"sees_id": AGENT}),
    "kim": ("specialist", {"specialist": KIM}),
    "dana": ("designer", {}),
    "amy": ("auditor", {}),
}


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    rig = Rig(store, clock)
    now = clock.now()
    for username, (role, extra) in PEOPLE.items():
        rig.svc.accounts.add(username, username.title(), role, PASSWORD, now, by="tests", **extra)
    return rig


def browser(rig: Rig, username: str) -> FlaskClient:
    client = rig.app.test_client()
    assert sign_in(client, username).status_code == 303
    return client


def waiting(rig: Rig, number: str, hold: float = 5000) -> Leg:
    script = Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(ANSWERS).hang_up(after=hold)
    caller = rig.sim.call(VSTRS, number, script)
    assert rig.sim.run_until(lambda: (rig.svc.vstrs.get(caller.sid) or {}).get("state") == "waiting")
    return caller


def busy_floor(rig: Rig) -> dict[str, Any]:
    """Alex takes a caller and hands them off to Debt Pursuit (Kim takes it, a grant in
    force), then goes on a break; a caller hangs up while waiting; another waits about 40
    seconds."""
    caller, handoff = rig.taken_over(accepting())
    # Alex, handed over, takes a break: the next callers wait.
    rig.svc.staff.set_availability(AGENT, "away", rig.svc.clock.now(), "break")
    gone = waiting(rig, "+441632960003", hold=20)
    rig.sim.run_until(lambda: not gone.live, 120)
    second = waiting(rig, "+441632960002")
    rig.sim.advance(40)
    return {"caller": caller, "handoff": handoff, "waiting": second, "gone": gone}


def test_the_floor_shows_queues_agents_handoffs_grants_and_today(rig: Rig) -> None:
    floor_calls = busy_floor(rig)
    floor = SupervisorDesk(rig.svc).floor(SUE)
    english = next(q for q in floor["languages"] if q["language"] == "en-GB")
    assert english["waiting"] == 1 and 40 <= english["longest"] <= 60, english
    welsh = next(q for q in floor["languages"] if q["language"] == "cy-GB")
    assert welsh["waiting"] == 0
    states = {a["sees_id"]: (a["state"], a["reason"]) for a in floor["agents"]}
    assert states == {AGENT: ("away", "On a break"), "200002": ("away", "")}
    (handoff,) = floor["handoffs"]
    assert (handoff["team"], handoff["agent"], handoff["specialist"]) == (
        "Debt Pursuit",
        "Alex Agent",
        "Kim Specialist",
    )
    (grant,) = floor["grants"]
    assert (grant["team"], grant["agent"], grant["specialist"]) == (
        "Debt Pursuit",
        "Alex Agent",
        "Kim Specialist",
    )
    today = floor["today"]
    assert today["verified"] == 3 and today["handoffs"] == 1
    assert today["handoff_share"] == round(1 / 3, 3)
    assert today["abandoned"] == 1
    assert today["wait"]["answered"] == 1 and today["wait"]["within_service_level"] == 1.0
    assert floor["line"]["open"] and floor["line"]["closure"] is None
    # Never a customer, an adviser or a caller.
    shown = json.dumps(floor)
    for secret in (CUSTOMER["name"], CUSTOMER["reference"], ADVISER, "Sam Adviser", "+44163296000"):
        assert secret not in shown, secret
    assert floor_calls["caller"].sid not in shown


def test_today_figures_from_a_tally() -> None:
    tally = {
        "v|taxaid|verified": 8,
        "v|top|verified": 2,
        "v|taxaid|wrong PIN": 3,
        "ho|taxaid|debt_pursuit": 2,
        "ab||en-GB": 1,
        "w|taxaid|en-GB:0": 5,
        "w|taxaid|en-GB:50": 3,
        "w|taxaid|cy-GB:120": 2,
    }
    figures = today_figures(tally, calls=14)
    assert figures["verified"] == 10 and figures["failed_verification"] == 3
    assert figures["handoff_share"] == 0.2 and figures["abandoned"] == 1
    wait = figures["wait"]
    assert wait["answered"] == 10
    assert wait["within_service_level"] == 0.8, "buckets below 60 s: 5 + 3"
    assert wait["average"] == round((5 * 2.5 + 3 * 52.5 + 2 * 122.5) / 10)
    assert wait["p90"] == 125
    assert figures["wait_by_language"]["cy-GB"]["answered"] == 2
    assert today_figures({}, 0)["wait"]["average"] is None


def test_every_role_but_supervisors_and_admins_is_refused(rig: Rig) -> None:
    now = rig.svc.clock.now()
    tokens = {
        "sue": rig.svc.staff.issue_token("supervisor", "sue", "Sue", now, by="tests"),
        "ada": rig.admin_token("ada"),
        "alex": rig.agent_token,
        "kim": rig.specialist_token,
        "dana": rig.svc.staff.issue_token("designer", "dana", "Dana", now, by="tests"),
        "amy": rig.svc.staff.issue_token("auditor", "amy", "Amy", now, by="tests"),
    }
    for username in PEOPLE:
        allowed = username in {"sue", "ada"}
        client = browser(rig, username)
        for path in (
            "/console/supervisor",
            "/console/supervisor/panel",
            "/console/supervisor/wallboard",
            "/console/supervisor/wallboard/panel",
        ):
            assert client.get(path).status_code == (200 if allowed else 403), (username, path)
        api = rig.api.get("/api/floor", headers={"Authorization": f"Bearer {tokens[username]}"})
        assert api.status_code == (200 if allowed else 403), username
        away = rig.api.post(
            "/api/agents/200002/away",
            json={"reason": "training"},
            headers={"Authorization": f"Bearer {tokens[username]}"},
        )
        assert away.status_code == (200 if allowed else 403), username
    assert browser(rig, "sue").get("/console/").headers["Location"].endswith("/console/supervisor")


def test_a_supervisor_sets_an_agent_away_and_it_is_audited(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    sue = browser(rig, "sue")
    page = sue.get("/console/supervisor")
    token = csrf_from(page.data)
    refused = sue.post("/console/supervisor/agents/200002/away", data={"csrf_token": token, "reason": "nap"})
    assert refused.status_code == 303
    assert rig.svc.staff.availability("200002", rig.svc.clock.now())["reason"] is None
    done = sue.post(
        "/console/supervisor/agents/200002/away", data={"csrf_token": token, "reason": "training"}
    )
    assert done.status_code == 303
    assert "Agent 200002 is away (training)." in sue.get(done.headers["Location"]).get_data(as_text=True)
    present = rig.svc.staff.availability("200002", rig.svc.clock.now())
    assert present["state"] == "away" and present["reason"] == "training"
    # Alex is on a call: Away takes effect when it ends.
    sue.post("/console/supervisor/agents/200001/away", data={"csrf_token": token, "reason": "break"})
    alex = rig.svc.staff.availability(AGENT, rig.svc.clock.now())
    assert alex["state"] == "on_call" and alex["away_after"] == "break"
    entries = [e for e in rig.svc.audit.entries() if e["kind"] == "agent.set_away"]
    assert [(e["agent"], e["by"], e["outcome"]) for e in entries] == [
        ("200002", "sue", "away"),
        (AGENT, "sue", "away_after_call"),
    ]
    missing = sue.post("/console/supervisor/agents/999999/away", data={"csrf_token": token, "reason": "break"})
    assert missing.status_code == 404
    no_csrf = sue.post("/console/supervisor/agents/200002/away", data={"reason": "break"})
    assert no_csrf.status_code == 403
    rig.sim.hang_up(caller)


def test_a_supervisor_reopens_a_call_back_with_its_place_kept(rig: Rig) -> None:
    rig.svc.staff.set_availability(AGENT, "away", rig.svc.clock.now(), "break")
    first = waiting(rig, "+441632960001")
    rig.sim.advance(rig.svc.settings.agent_wait_seconds + 60)
    doc = rig.svc.callbacks.get(first.sid)
    assert doc is not None and doc["status"] == "to_call_back"
    rig.svc.callbacks.cancel(first.sid, "tests")
    sue = browser(rig, "sue")
    page = sue.get("/console/supervisor").get_data(as_text=True)
    assert first.sid in page and "Reopen" in page
    token = csrf_from(page.encode())
    done = sue.post(f"/console/supervisor/callbacks/{first.sid}/reopen", data={"csrf_token": token})
    assert done.status_code == 303
    reopened = rig.svc.callbacks.get(first.sid)
    assert reopened is not None and reopened["status"] == "to_call_back"
    assert reopened["arrived_at"] == doc["arrived_at"], "its place in the queue is kept"
    again = sue.post(f"/console/supervisor/callbacks/{first.sid}/reopen", data={"csrf_token": token})
    assert "only a dropped or cancelled call-back is reopened" in sue.get(
        again.headers["Location"]
    ).get_data(as_text=True)
    assert sue.post("/console/supervisor/callbacks/CB-none/reopen", data={"csrf_token": token}).status_code == 404
    (entry,) = [e for e in rig.svc.audit.entries() if e["kind"] == "callback.reopened"]
    assert entry["by"] == "sue" and entry["was"] == "cancelled"


def test_the_wallboard_shows_figures_and_no_names(rig: Rig) -> None:
    busy_floor(rig)
    board = browser(rig, "sue").get("/console/supervisor/wallboard").get_data(as_text=True)
    assert "English waiting" in board and "On a call" in board
    assert "Hand-offs under way" in board and "Answered within 60 s today" in board
    for name in ("Alex Agent", "Kim Specialist", AGENT, KIM, "Debt Pursuit", CUSTOMER["name"]):
        assert name not in board.split('id="main-content"')[1], name


def test_a_line_closure_shows_on_every_console(rig: Rig) -> None:
    now = rig.svc.clock.now()
    rig.svc.staff.start_closure(
        {"en-GB": "The line is closed today."}, None, now, by="ada", reason="fire alarm"
    )
    rig.svc.staff._line_docs.clear()
    pages = {
        "alex": "/console/agent",
        "kim": "/console/specialist",
        "dana": "/console/designer",
        "amy": "/console/auditor",
        "ada": "/console/admin",
        "sue": "/console/supervisor",
    }
    for username, path in pages.items():
        html = browser(rig, username).get(path).get_data(as_text=True)
        assert 'id="line-closure"' in html and "closed to new calls: fire alarm" in html, username
    board = browser(rig, "sue").get("/console/supervisor/wallboard").get_data(as_text=True)
    assert "LINE CLOSED: fire alarm" in board
    rig.svc.staff.end_closure(by="ada")
    rig.svc.staff._line_docs.clear()
    assert 'id="line-closure"' not in browser(rig, "alex").get("/console/agent").get_data(as_text=True)


def test_a_supervisors_event_stream_says_what_changed_never_whose_call(rig: Rig) -> None:
    feed = Feed.start(rig.svc, SUE, None)
    caller = rig.caller_with_agent()
    notes = [note for _id, note in feed.next(0) if note is not None]
    assert notes and {n["kind"] for n in notes} >= {"agent.ringing", "agent.connected"}
    assert all(set(n) == {"kind", "outcome", "at"} for n in notes)
    assert caller.sid not in json.dumps(notes)
    # Directory changes are not the floor's.
    rig.svc.staff.add_officer("4471203", "Alex Morgan", rig.svc.clock.now(), by="tests")
    assert all(note is None for _id, note in feed.next(0))


def test_hand_off_states_leave_the_floor_when_the_call_ends(rig: Rig) -> None:
    caller, _handoff = rig.taken_over(accepting())
    assert len(SupervisorDesk(rig.svc).floor(SUE)["handoffs"]) == 1
    rig.sim.hang_up(caller)
    rig.sim.run(max_seconds=60)
    floor = SupervisorDesk(rig.svc).floor(SUE)
    assert floor["handoffs"] == [] and floor["grants"] == []
    assert TEAM_FIRST not in json.dumps(floor)


def test_every_specialist_is_on_the_floor_with_the_hand_off_they_are_on(rig: Rig) -> None:
    """A team leader sees each specialist by team: Available or Away as they said, their
    phone ringing, or on a hand-off (and what they go back to after it); never whose call."""
    desk = SupervisorDesk(rig.svc)

    def kim() -> dict[str, Any]:
        return next(p for p in desk.floor(SUE)["specialists"] if p["id"] == KIM)

    assert kim()["state"] == "away", "a specialist who never said otherwise is Away"
    rig.own_phone(KIM, after=6)
    assert (kim()["state"], kim()["team"], kim()["then"]) == ("available", "Debt Pursuit", "")
    caller = rig.caller_with_agent()
    handoff = rig.request(caller).get_json()
    seen: list[str] = []

    def watch() -> bool:
        seen.append(kim()["state"])
        return rig.handoff(handoff["id"])["state"] == "briefing"

    assert rig.sim.run_until(watch)
    assert "ringing" in seen and "available" not in seen[seen.index("ringing") :]
    on = kim()
    assert (on["label"], on["then"]) == ("On a hand-off", "Available")
    assert on["for_seconds"] is not None and on["for_seconds"] < 30
    shown = json.dumps(desk.floor(SUE)["specialists"])
    for secret in (CUSTOMER["name"], CUSTOMER["reference"], ADVISER, caller.sid):
        assert secret not in shown, secret
    page = browser(rig, "sue").get("/console/supervisor").get_data(as_text=True)
    assert 'id="specialist-' + KIM + '"' in page and "On a hand-off" in page
    rig.sim.hang_up(caller)
    rig.sim.run(max_seconds=60)
    assert kim()["state"] == "available", "back to what Kim said, once the call is over"
    other = browser(rig, "kim").get("/console/supervisor")
    assert other.status_code == 403


def test_a_free_agent_kept_for_a_call_back_says_so_on_the_floor(rig: Rig) -> None:
    """A call-back that rang first keeps the free agent the queue gives it while its
    adviser is rung back: the floor says why that agent is Available and not taking the
    caller who is waiting; with no call-back worker running, nobody is kept."""
    rig.svc.staff.set_availability(AGENT, "away", rig.svc.clock.now(), "break")
    first = waiting(rig, "+441632960001")
    rig.sim.advance(rig.svc.settings.agent_wait_seconds + 60)
    assert (rig.svc.callbacks.get(first.sid) or {}).get("status") == "to_call_back"
    desk = SupervisorDesk(rig.svc)

    def alex() -> dict[str, Any]:
        return next(a for a in desk.floor(SUE)["agents"] if a["sees_id"] == AGENT)

    rig.svc.staff.set_availability(AGENT, "available", rig.svc.clock.now())
    assert alex()["kept_for"] == "", "no worker places call-backs: nobody is kept for one"
    rig.svc.callbacks.beat()
    assert (alex()["state"], alex()["kept_for"]) == ("available", "English")
    page = browser(rig, "sue").get("/console/supervisor").get_data(as_text=True)
    assert "Kept for a call-back that rang first (English)" in page
    assert first.sid not in page.split('id="agents"')[1].split("</section>")[0]
    rig.svc.staff.set_availability(AGENT, "away", rig.svc.clock.now(), "break")
    assert alex()["kept_for"] == ""
