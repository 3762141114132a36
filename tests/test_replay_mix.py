"""The replay gate on a realistic mix of real calls (issue 31): every shipped flow's recent
calls, made through the simulator on every path (agents answering, hand-offs and the
specialists' legs, call-backs offered, booked and made, a closure, Welsh and Relay UK calls,
meeting calls and the meeting start line, the officer check line), replay on the live
version with the same path: the world each call met (the queue, the calendars, the store)
is stood in from its trace. At least 95% of each flow's calls reproduce, and a one-word
change to a prompt is reported on exactly the calls that hear it."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from callflow.clock import ManualClock
from callflow.flowspec import parse_flow
from callflow.replay import Replayer, ReplayReport
from callflow.simulator import Callee, Leg, Script
from callflow.store import Store
from tests.conftest import ADVISER, BASE_URL, FLOWS, PIN
from tests.rigs import AGENT, ANSWERS, VSTRS, Rig
from tests.rigs.meetings import CUSTOMER, OFFICER, add_meeting

WELSH_LINE = "+441632960950"
OFFICER_LINE = "+441632960951"
START_LINE = "+441632960952"
RELAY = "+441632960970"
ADVISER_PHONE = "+442079460000"
OFFICER_PIN = "48151623"
SHIPPED = ("vstrs_inbound", "vstrs_callback", "specialist_handoff", "meeting_call",
           "officer_check", "meeting_start")  # fmt: skip


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    made = Rig(store, clock, relay_numbers=(RELAY,))
    now = clock.now()
    made.svc.staff.add_officer(OFFICER, "Alex Morgan", now, grade="O", by="tests")
    made.svc.staff.set_officer_hours(OFFICER, "Mon-Sun 00:00-24:00", "none", by="tests")
    made.svc.meetings.pins.set_pin(OFFICER, OFFICER_PIN, by="tests")
    adviser = made.svc.directory.require(ADVISER)
    made.svc.directory.update(replace(adviser, phone=ADVISER_PHONE), now)
    for number, query in ((WELSH_LINE, "lang=cy"), (OFFICER_LINE, "flow=officer_check"),
                          (START_LINE, "flow=meeting_start")):  # fmt: skip
        made.sim.configure_number(
            number, f"{BASE_URL}/voice/incoming?{query}", status_callback=f"{BASE_URL}/voice/status"
        )
    return made


def verified(script: Script | None = None) -> Script:
    return (script or Script()).press(f"{ADVISER}#").press(f"{PIN}#").answer(ANSWERS)


def ring(rig: Rig, to: str, script: Script, caller: str = "+441632960001") -> Leg:
    leg = rig.sim.call(to, caller, script)
    rig.sim.run_until(lambda: not leg.live, 4 * 3600)
    rig.sim.run(max_seconds=120)
    rig.sim.advance(300)  # calls a few minutes apart
    return leg


def with_agent_then_hang_up(rig: Rig, to: str = VSTRS, caller: str = "+441632960001",
                            first: Script | None = None) -> Leg:  # fmt: skip
    leg = rig.sim.call(to, caller, verified(first).hang_up(after=90))
    rig.sim.run_until(lambda: not leg.live, 3600)
    rig.sim.run(max_seconds=120)
    rig.sim.advance(300)
    return leg


def make_the_mix(rig: Rig) -> list[Leg]:
    """A working day's calls, of every kind: the callers' legs."""
    svc, sim = rig.svc, rig.sim
    made: list[Leg] = []
    # Agents answering, in English, on the Welsh line and through Relay UK.
    for n in range(3):
        made.append(with_agent_then_hang_up(rig, caller=f"+44163296001{n}"))
    welsh = with_agent_then_hang_up(rig, to=WELSH_LINE, caller="+441632960020")
    relay = with_agent_then_hang_up(rig, caller=RELAY)
    # Not verified: a wrong PIN three times; silence.
    wrong = ring(rig, VSTRS, Script().press(f"{ADVISER}#").press("000000#").press(f"{ADVISER}#")
                 .press("000001#").press(f"{ADVISER}#").press("000002#"))  # fmt: skip
    silent = ring(rig, VSTRS, Script().silent().silent().silent().silent())
    # A hand-off, taken over by a specialist (their leg runs specialist_handoff).
    caller, _ = rig.taken_over()
    made.append(caller)
    sim.advance(60)
    sim.hang_up(caller)
    sim.run(max_seconds=600)
    sim.advance(300)
    # Every agent busy: a call-back offered and booked, then made, answered and verified.
    svc.staff.set_availability(AGENT, "away", svc.clock.now(), reason="break")
    svc.dispatcher.dispatch(svc.links(BASE_URL))  # the call-back worker is running
    booked = ring(rig, VSTRS, verified().press("1"), caller="+441632960030")
    sim.add_callee(ADVISER_PHONE, Callee("answered", 4, verified(Script().press("1")).hang_up(60)))
    svc.staff.set_availability(AGENT, "available", svc.clock.now())
    for _ in range(6):
        svc.dispatcher.dispatch(svc.links(BASE_URL))
        sim.run(max_seconds=600)
        sim.advance(120)
    # A closure at short notice: a new caller hears its message.
    now = svc.clock.now()
    svc.staff.start_closure({"en-GB": "The line is closed for a fire drill."}, now + 600, now,
                            by="tests", reason="fire drill")  # fmt: skip
    closed = ring(rig, VSTRS, Script())
    svc.staff.end_closure(by="tests")
    # The officer check line.
    ring(rig, OFFICER_LINE, Script().press(f"{OFFICER}#").press("2"))
    ring(rig, OFFICER_LINE, Script().press("1234567#").silent())
    # Meeting calls: a fixed time confirmed, a time picked from the diary, a wrong date of
    # birth, an answering machine.
    answers = [
        (None, Script().press("1").press("21031970#").press("1")),
        ("", Script().press("1").press("21031970#").press("2")),
        (None, Script().press("1").press("01011999#").hang_up()),
        (None, None),
    ]
    due = None
    for n, (when, script) in enumerate(answers):
        extra: dict[str, Any] = {"reference": f"DM-2041-{70 + n}"}
        if when == "":
            extra["when"] = None
        meeting = add_meeting(svc, **extra)
        sim.add_callee(CUSTOMER, Callee.voicemail() if script is None else Callee("answered", 3, script))
        svc.meetings.place_call(meeting["id"], svc.links(BASE_URL))
        sim.run(max_seconds=900)
        sim.advance(300)
        if n == 0:
            due = meeting
    # The meeting start line: the officer records the checks as the first meeting begins.
    assert due is not None
    svc.clock.set(svc.clock.now())  # (the meeting is days away: not due; then it is)
    ring(rig, START_LINE, Script().press(f"{OFFICER}#").press(f"{OFFICER_PIN}#")
         .press(f"{due['phone_code']}#"), caller="+447700900999")  # fmt: skip
    return [*made, welsh, relay, wrong, silent, booked, closed]


def replay_all(rig: Rig) -> dict[str, ReplayReport]:
    replayer = Replayer(rig.svc, FLOWS, rig.svc.registry)
    return {name: replayer.replay(rig.svc.library.live(name), 50) for name in SHIPPED}


def test_the_live_version_reproduces_the_real_calls_of_every_shipped_flow(rig: Rig) -> None:
    make_the_mix(rig)
    reports = replay_all(rig)
    lines = []
    for name, report in reports.items():
        outcomes = Counter(c.outcome for c in report.calls)
        lines.append(f"{name}: {len(report.calls)} calls {dict(outcomes)}")
        for call in report.calls:
            if call.outcome != "same":
                lines.append(f"  {call.call_sid} {call.outcome}: {call.why}")
                lines += [f"    {d}" for d in call.diff[:40]]
    print("\n".join(lines))
    for name, report in reports.items():
        assert report.calls, f"no calls of {name} in the mix\n" + "\n".join(lines)
        same = sum(1 for c in report.calls if c.outcome == "same")
        assert same / len(report.calls) >= 0.95, "\n".join(lines)


def test_a_one_word_change_to_a_prompt_is_caught_on_the_calls_that_hear_it(rig: Rig) -> None:
    legs = make_the_mix(rig)
    svc = rig.svc
    live = svc.library.live("vstrs_inbound")
    said = "Please hold while we connect you to a V S T R S agent."
    assert said in live.source
    candidate = parse_flow(
        live.source.replace(said, "Please wait while we connect you to a V S T R S agent."),
        "vstrs_inbound.yaml", svc.registry,
    )  # fmt: skip
    report = Replayer(svc, FLOWS, svc.registry).replay(candidate, 50)
    hearing = {leg.sid for leg in legs if any(said in h for h in leg.heard())}
    assert len(hearing) >= 4, "English calls that reached an agent"
    assert {c.call_sid for c in report.changed} == hearing, report.text()
    assert all(c.outcome == "same" for c in report.calls if c.call_sid not in hearing)
    changed = report.changed[0]
    assert any(line.startswith("-") and "Please hold" in line for line in changed.diff)
    assert any(line.startswith("+") and "Please wait" in line for line in changed.diff)
    assert PIN not in report.text(), "secrets stay stood in"
