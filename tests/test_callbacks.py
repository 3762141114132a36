"""Call-backs that keep the caller's place (issue 17): noted when no agent could take a
verified caller, or when they ask; placed in the order callers first rang (live callers and
call-backs together) when an agent is free and the line open; rung on the adviser's
registered number; verified again before an agent joins; retried, then dropped; audited.
Both stores, through the simulator."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callflow.access import Viewer
from callflow.callbacks import dialable
from callflow.clock import ManualClock
from callflow.desks import AgentDesk
from callflow.links import ServiceLinks
from callflow.simulator import Callee, Leg, Script, Step
from callflow.store import Store
from tests.conftest import ADVISER, BASE_URL, PIN, cli_sign_in, enrol
from tests.rigs import AGENT, ANSWERS, VSTRS, Rig

LINKS = ServiceLinks(BASE_URL)
FIRST_PHONE = "+441632960501"
SECOND_PHONE = "+441632960502"


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    made = Rig(store, clock)
    made.svc.staff.set_availability(AGENT, "away", clock.now())  # nobody to take a call
    enrol(made.svc, "2002", "135792", "litrg")
    registered(made, ADVISER, FIRST_PHONE)
    registered(made, "2002", SECOND_PHONE)
    return made


def registered(rig: Rig, number: str, phone: str) -> None:
    """Give an adviser a registered phone number (what a call-back rings)."""
    directory = rig.svc.directory
    directory.update(dataclasses.replace(directory.require(number), phone=phone), 0.0)


def waiting_caller(
    rig: Rig, adviser: str, pin: str, number: str, hold: float = 5000, offered: bool = False
) -> Leg:
    """A verified caller who holds (``offered`` a call-back, they stay on the line)."""
    script = Script().press(f"{adviser}#").press(f"{pin}#").answer(ANSWERS)
    if offered:
        script.silent()
    script.hang_up(after=hold)
    caller = rig.sim.call(VSTRS, number, script)
    assert rig.sim.run_until(lambda: rig.svc.vstrs.get(caller.sid) is not None)
    return caller


def adviser_answers(adviser: str, pin: str, talk: float = 600) -> Callee:
    """The adviser at their registered phone: presses 1, verifies, then talks ``talk`` s."""
    script = Script().press("1").press(f"{adviser}#").press(f"{pin}#").answer(ANSWERS)
    return Callee("answered", after=4, script=script.hang_up(after=talk))


def stranger_answers() -> Callee:
    """Whoever answers knows the adviser number but not the PIN, on every try."""

    def ask(heard: str) -> Step:
        if "press 1" in heard:
            return Step("press", "1")
        if "adviser number" in heard:
            return Step("press", f"{ADVISER}#")
        if "PIN" in heard:
            return Step("press", "000000#")
        return Step("silent")

    return Callee("answered", after=4, script=Script(patience=30, ask=ask))


def dispatcher(rig: Rig) -> list[bool]:
    """`callflow callbacks run --every 5` beside the service; set [0] False to stop it."""
    running = [True]
    rig.sim.every(5, lambda: rig.svc.dispatcher.dispatch(LINKS), lambda: running[0])
    return running


def owed(rig: Rig, *callers: Leg) -> None:
    """Let the callers' wait run out, so each is owed a call-back."""
    rig.sim.advance(rig.svc.settings.agent_wait_seconds + 60)
    for caller in callers:
        assert rig.svc.vstrs.get(caller.sid)["callback_noted"]
        assert rig.svc.callbacks.get(caller.sid)["status"] == "to_call_back"


def legs_to(rig: Rig, phone: str) -> list[Leg]:
    return [leg for leg in rig.sim.legs.values() if leg.to == phone]


def audited(rig: Rig, kind: str) -> list[dict[str, Any]]:
    return [e for e in rig.svc.audit.entries() if e["kind"] == kind]


def test_callers_nobody_took_wait_for_a_call_back_in_the_order_they_rang(
    rig: Rig, clock: ManualClock
) -> None:
    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    rig.sim.advance(30)
    second = waiting_caller(rig, "2002", "135792", "+441632960002")
    owed(rig, first, second)
    assert "You keep your place: we will call you back on the number your organisation" in (
        first.heard()[-1]
    )
    state = AgentDesk(rig.svc).state(Viewer("vstrs_agent", sees_id=AGENT))
    assert len(state["callbacks"]) == 2 and state["callbacks_open"] == 2
    arrived = [c["arrived_at"] for c in state["callbacks"]]
    assert arrived == sorted(arrived), "their place: when they first rang"
    record = rig.svc.vstrs.get(first.sid)
    assert arrived[0] == record["arrived_at"] < record["waiting_since"]
    assert {c["organisation_name"] for c in state["callbacks"]} == {
        "Tax Aid",
        "Low Incomes Tax Reform Group",
    }
    assert {c["status_text"] for c in state["callbacks"]} == {"waiting its turn"}
    flat = repr(state["callbacks"])
    assert "+44" not in flat and "caller_number" not in flat, "never a number"
    assert len(audited(rig, "agent.none_available")) == 2
    assert [e["outcome"] for e in audited(rig, "callback.noted")] == ["to_call_back"] * 2
    from callflow.metrics import exposition
    from tests.rigs import metric

    page = exposition(rig.svc.store).decode()
    assert metric(page, "callflow_callbacks_open") == 2, "the operations dashboard sees them"


def test_call_backs_are_placed_in_order_answered_verified_again_and_connected(
    rig: Rig, clock: ManualClock
) -> None:
    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    rig.sim.advance(30)
    second = waiting_caller(rig, "2002", "135792", "+441632960002")
    owed(rig, first, second)
    rig.sim.add_callee(FIRST_PHONE, adviser_answers(ADVISER, PIN, talk=90))
    rig.sim.add_callee(SECOND_PHONE, adviser_answers("2002", "135792", talk=90))
    running = dispatcher(rig)
    rig.sim.advance(10)
    assert legs_to(rig, SECOND_PHONE) == [], "nobody is placed while no agent is free"
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    callbacks = rig.svc.callbacks
    assert rig.sim.run_until(lambda: callbacks.get(first.sid)["status"] == "done", 300)
    # One agent: the caller who rang first is called back first; the second keeps waiting.
    assert callbacks.get(second.sid)["status"] == "to_call_back"
    assert legs_to(rig, SECOND_PHONE) == []
    (rung,) = legs_to(rig, FIRST_PHONE)
    assert rung.from_ == VSTRS
    assert "+441632960001" not in {leg.to for leg in rig.sim.legs.values()}, (
        "never the number the caller rang from"
    )
    heard = " ".join(rung.heard())
    assert "returning your call" in heard and "verified as calling from Tax Aid" in heard
    call = rig.svc.vstrs.get(rung.sid)
    assert call["callback_id"] == first.sid and call["agent"]["sees_id"] == AGENT
    assert call["arrived_at"] == rig.svc.vstrs.get(first.sid)["arrived_at"], "its place kept"
    # When the agent is free again, the second call-back is placed and put through.
    assert rig.sim.run_until(lambda: callbacks.get(second.sid)["status"] == "done", 900)
    running[0] = False
    rig.sim.run(max_seconds=900)
    placed = [e["callback"] for e in audited(rig, "callback.placed")]
    assert placed == [first.sid, second.sid]
    for kind, outcome in (
        ("callback.verified", "in_queue"),
        ("callback.connected", "connected"),
    ):
        assert [e["outcome"] for e in audited(rig, kind)] == [outcome, outcome]
    assert callbacks.count_open() == 0
    assert AgentDesk(rig.svc).state(Viewer("vstrs_agent", sees_id=AGENT))["callbacks"] == []
    assert rig.sim.errors == []


def test_a_later_live_caller_waits_behind_a_call_back_that_rang_first(
    rig: Rig, clock: ManualClock
) -> None:
    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    owed(rig, first)
    running = dispatcher(rig)
    rig.sim.advance(10)
    rig.sim.add_callee(FIRST_PHONE, adviser_answers(ADVISER, PIN, talk=30))
    later = waiting_caller(rig, "2002", "135792", "+441632960002", offered=True)
    assert "All our V S T R S agents are busy" in " ".join(later.heard()), "offered, stayed"
    assert rig.svc.callbacks.get(later.sid) is None
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    callbacks = rig.svc.callbacks
    assert rig.sim.run_until(lambda: callbacks.get(first.sid)["status"] == "done", 300)
    (rung,) = legs_to(rig, FIRST_PHONE)
    ringing = [e["call_sid"] for e in audited(rig, "agent.ringing")]
    assert ringing[0] == rung.sid, "the call-back that rang first gets the free agent"
    assert later.sid not in ringing
    # The call-back's adviser finishes; the live caller is next.
    assert rig.sim.run_until(
        lambda: (rig.svc.vstrs.get(later.sid) or {}).get("state") == "with_agent", 300
    )
    running[0] = False
    rig.sim.run(max_seconds=6000)
    assert rig.sim.errors == []


def test_a_caller_who_asks_for_a_call_back_keeps_their_place(
    rig: Rig, clock: ManualClock
) -> None:
    running = dispatcher(rig)
    rig.sim.advance(1)
    script = Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(ANSWERS).press("1")
    caller = rig.sim.call(VSTRS, "+441632960001", script)
    rig.sim.run_until(lambda: not caller.live, 300)
    assert "You keep your place in the queue" in caller.heard()[-1]
    assert rig.svc.vstrs.get(caller.sid) is None, "they never waited on the line"
    note = rig.svc.callbacks.get(caller.sid)
    assert note["status"] == "to_call_back" and note["reason"] == "asked"
    assert note["arrived_at"] <= rig.sim.legs[caller.sid].log[0].at + rig.sim._epoch
    rig.sim.add_callee(FIRST_PHONE, adviser_answers(ADVISER, PIN, talk=30))
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    assert rig.sim.run_until(lambda: rig.svc.callbacks.get(caller.sid)["status"] == "done", 300)
    running[0] = False
    rig.sim.run(max_seconds=900)


def test_a_call_back_that_fails_verification_never_reaches_an_agent_and_is_dropped(
    rig: Rig, clock: ManualClock
) -> None:
    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    owed(rig, first)
    rig.sim.add_callee(FIRST_PHONE, stranger_answers())
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    running = dispatcher(rig)
    schedule = rig.svc.settings.callback_retry_minutes
    callbacks = rig.svc.callbacks
    assert rig.sim.run_until(
        lambda: callbacks.get(first.sid)["status"] == "dropped",
        sum(schedule) * 60 + 1200,
    )
    running[0] = False
    rig.sim.run(max_seconds=600)
    doc = callbacks.get(first.sid)
    tries = legs_to(rig, FIRST_PHONE)
    assert len(tries) == len(schedule) + 1 == len(doc["attempts"])
    assert {a["result"] for a in doc["attempts"]} == {"not_verified"}
    gaps = [b["at"] - a["at"] for a, b in zip(doc["attempts"], doc["attempts"][1:], strict=False)]
    for gap, minutes in zip(gaps, schedule, strict=True):
        assert minutes * 60 <= gap < minutes * 60 + 120, "retried on the schedule"
    assert doc["ended_reason"] == "retries"
    assert audited(rig, "agent.ringing") == [], "no agent was ever rung for them"
    for leg in tries:
        heard = " ".join(leg.heard())
        assert "Sam Adviser" not in heard and "Tax Aid" not in heard
        assert rig.svc.vstrs.get(leg.sid) is None
    dropped = audited(rig, "callback.dropped")
    assert [(e["callback"], e["outcome"]) for e in dropped] == [(first.sid, "retries_exhausted")]
    assert [e["next"] for e in audited(rig, "callback.attempt")] == [
        "retry_wait"
    ] * len(schedule) + ["dropped"]
    # The failures count against the number rung (the lockout), not the VSTRS number.
    pins = audited(rig, "verification.pin")
    assert {e["caller"] for e in pins if e["call_sid"] in {leg.sid for leg in tries}} == {
        FIRST_PHONE
    }
    assert callbacks.count_open() == 0


def test_call_backs_wait_while_the_line_is_closed(rig: Rig, clock: ManualClock) -> None:
    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    owed(rig, first)
    rig.sim.add_callee(FIRST_PHONE, adviser_answers(ADVISER, PIN, talk=30))
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    staff = rig.svc.staff
    staff.start_closure(
        {"en-GB": "The line is closed today."}, None, clock.now(), by="tests", reason="fire drill"
    )
    assert rig.svc.dispatcher.dispatch(LINKS) == []
    staff.end_closure(by="tests")
    # Outside the line's hours (a dated closure over now), nothing is placed either.
    here = datetime.fromtimestamp(clock.now(), ZoneInfo("Europe/London")).replace(tzinfo=None)
    closed = {
        "closed_from": (here - timedelta(hours=1)).isoformat(timespec="minutes"),
        "closed_to": (here + timedelta(hours=1)).isoformat(timespec="minutes"),
        "reason": "staff training",
    }
    staff.change_calendar("line", by="tests", add=closed)
    assert rig.svc.dispatcher.dispatch(LINKS) == []
    assert rig.svc.callbacks.get(first.sid)["status"] == "to_call_back"
    staff.change_calendar("line", by="tests", remove=1)
    placed = rig.svc.dispatcher.dispatch(LINKS)
    assert [cb for cb, _ in placed] == [first.sid] and placed[0][1].startswith("CA")
    assert rig.sim.run_until(lambda: rig.svc.callbacks.get(first.sid)["status"] == "done", 300)


def test_an_old_call_back_is_dropped_not_made(rig: Rig, clock: ManualClock) -> None:
    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    owed(rig, first)
    clock.advance(rig.svc.settings.callback_expiry_hours * 3600 + 1)
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    assert rig.svc.dispatcher.dispatch(LINKS) == [(first.sid, "dropped: expired")]
    assert legs_to(rig, FIRST_PHONE) == []
    assert [e["outcome"] for e in audited(rig, "callback.dropped")] == ["expired"]


def test_an_adviser_removed_since_is_not_rung(rig: Rig, clock: ManualClock) -> None:
    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    owed(rig, first)
    registered(rig, ADVISER, "")
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    assert rig.svc.dispatcher.dispatch(LINKS) == [(first.sid, "dropped: no registered number")]
    assert legs_to(rig, FIRST_PHONE) == []
    assert rig.svc.callbacks.get(first.sid)["ended_reason"] == "no_registered_number"


def test_no_registered_number_no_promise(rig: Rig, clock: ManualClock) -> None:
    registered(rig, ADVISER, "")
    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    rig.sim.advance(rig.svc.settings.agent_wait_seconds + 60)
    assert "we cannot call you back on this occasion" in first.heard()[-1]
    assert rig.svc.callbacks.get(first.sid) is None
    assert [e["outcome"] for e in audited(rig, "callback.not_possible")] == [
        "no_registered_number"
    ]


def test_staff_cancel_a_call_back(rig: Rig, clock: ManualClock) -> None:
    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    owed(rig, first)
    rig.svc.callbacks.cancel(first.sid, by="tester")
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    assert rig.svc.dispatcher.dispatch(LINKS) == []
    (entry,) = audited(rig, "callback.cancelled")
    assert entry["by"] == "tester" and entry["callback"] == first.sid
    with pytest.raises(Exception, match="nothing to cancel"):
        rig.svc.callbacks.cancel(first.sid, by="tester")


def test_registered_numbers_are_dialled_as_e164() -> None:
    assert dialable("+44 20 7946 0000") == "+442079460000"
    assert dialable("020 7946 0000") == "+442079460000"
    assert dialable("(020) 7946-0000") == "+442079460000"
    assert dialable("") is None and dialable("12345") is None and dialable("+0123") is None


def test_an_adviser_who_gets_through_on_a_new_call_is_not_called_back(
    rig: Rig, clock: ManualClock
) -> None:
    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    owed(rig, first)
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    # No call-back worker runs: the adviser rings in again and gets the free agent.
    again = waiting_caller(rig, ADVISER, PIN, "+441632960001", hold=60)
    assert rig.sim.run_until(
        lambda: (rig.svc.vstrs.get(again.sid) or {}).get("state") == "with_agent", 120
    )
    doc = rig.svc.callbacks.get(first.sid)
    assert doc["status"] == "dropped" and doc["ended_reason"] == "adviser_got_through"
    (entry,) = audited(rig, "callback.dropped")
    assert entry["call_sid"] == again.sid and entry["outcome"] == "adviser_got_through"
    assert rig.svc.dispatcher.dispatch(LINKS) == []


def test_call_backs_from_the_command_line(
    rig: Rig,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from callflow.cli.main import main

    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    rig.sim.advance(30)
    second = waiting_caller(rig, "2002", "135792", "+441632960002")
    owed(rig, first, second)
    monkeypatch.setattr("callflow.cli.common.service", lambda: rig.svc)
    monkeypatch.setenv("USER", "tester")
    assert main(["callbacks", "cancel", second.sid]) == 1, "cancelling needs a signed-in person"
    assert "callflow login" in capsys.readouterr().err
    cli_sign_in(monkeypatch, tmp_path, rig.svc, "vstrs_agent", sees_id=AGENT)
    assert main(["callbacks", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == [first.sid, second.sid]
    assert "waiting" not in listed[0] and "to_call_back" in listed[0] and "+44" not in listed[0]
    assert main(["callbacks", "cancel", second.sid]) == 0
    assert main(["callbacks", "cancel", second.sid]) == 1
    capsys.readouterr()
    rig.sim.add_callee(FIRST_PHONE, adviser_answers(ADVISER, PIN, talk=30))
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    assert main(["callbacks", "run"]) == 0
    assert capsys.readouterr().out.startswith(f"call-back {first.sid}: CA")
    assert main(["callbacks", "show", first.sid]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "calling" and len(shown["tries"]) == 1
    assert main(["callbacks", "list", "--json"]) == 0
    assert [c["id"] for c in json.loads(capsys.readouterr().out)] == [first.sid]


def test_a_try_whose_end_was_never_reported_is_settled_by_asking_twilio(
    rig: Rig, clock: ManualClock
) -> None:
    from callflow.callbacks import STUCK_SECONDS
    from callflow.simulator import Faults

    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    owed(rig, first)
    rig.sim.add_callee(FIRST_PHONE, Callee("no-answer"))
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    rig.sim.faults = Faults(lose_callbacks={"no-answer"})  # Twilio's callback is lost
    placed = rig.svc.dispatcher.dispatch(LINKS)
    assert [cb for cb, _ in placed] == [first.sid]
    rig.sim.advance(120)
    assert rig.svc.callbacks.get(first.sid)["status"] == "calling", "nobody told us"
    rig.sim.advance(STUCK_SECONDS)
    done = rig.svc.dispatcher.dispatch(LINKS)
    assert (first.sid, "settled: no-answer") in done
    doc = rig.svc.callbacks.get(first.sid)
    assert doc["status"] == "retry_wait" and doc["attempts"][0]["result"] == "no-answer"
    assert rig.svc.store.claimed_by(f"callback:{first.sid}") is None, "its claim is let go"


def test_live_callers_are_not_held_behind_call_backs_nobody_can_place(
    rig: Rig, clock: ManualClock
) -> None:
    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    owed(rig, first)
    callbacks = rig.svc.callbacks
    assert callbacks.holding_places("en-GB", clock.now()) == 0, "no worker runs"
    rig.svc.dispatcher.dispatch(LINKS)  # a worker's heartbeat; nobody free, nothing placed
    assert callbacks.holding_places("en-GB", clock.now()) == 1
    assert callbacks.holding_places("cy-GB", clock.now()) == 0, "each language its own queue"
    here = datetime.fromtimestamp(clock.now(), ZoneInfo("Europe/London")).replace(tzinfo=None)
    rig.svc.staff.change_calendar(
        "line",
        by="tests",
        add={
            "closed_from": (here - timedelta(minutes=1)).isoformat(timespec="minutes"),
            "closed_to": (here + timedelta(hours=1)).isoformat(timespec="minutes"),
        },
    )
    assert callbacks.holding_places("en-GB", clock.now()) == 0, "the line closed: none placed"
