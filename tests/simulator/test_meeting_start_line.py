"""The meeting start line (flows/meeting_start.yaml): an officer records the outdoor call
verification checks by phone, with their identity number, their PIN and the meeting's
code. PINs are kept apart from the officer's record, locked as advisers' are (a stranger's
run of failures never locks the officer's own phone), and a code finds only the officer's
own meeting. Through the simulator, on both stores."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from callflow.cli.main import main
from callflow.errors import CallflowError
from callflow.hours import LONDON
from callflow.service import Callflow
from callflow.simulator import Leg, Script, Simulator
from callflow.store import Store
from tests.conftest import cli_sign_in
from tests.rigs.meetings import OFFICER, add_meeting, meeting_world

START_LINE = "+441632960950"
OWN_PHONE = "+447700900999"
PIN = "48151623"
MEETING_AT = datetime(2027, 1, 5, 10, 0, tzinfo=LONDON)  # a Tuesday
OTHER = "4471299"


@pytest.fixture
def world(store: Store) -> tuple[Simulator, Callflow]:
    sim, service = meeting_world(store, MEETING_AT.timestamp() - 30 * 24 * 3600)
    now = service.clock.now()
    service.staff.add_officer(OFFICER, "Alex Morgan", now, grade="O", by="tests")
    service.staff.add_officer(OTHER, "Jo Other", now, grade="O", by="tests")
    service.meetings.pins.set_pin(OFFICER, PIN, by="ada")
    sim.configure_number(
        START_LINE,
        service.links().voice_url(flow="meeting_start"),
        status_callback=service.links().call_status(),
    )
    return sim, service


def confirmed(sim: Simulator, service: Callflow, **extra: Any) -> dict[str, Any]:
    meeting = add_meeting(service, when=MEETING_AT.strftime("%Y-%m-%dT%H:%M"), **extra)
    return service.meetings.record_outcome(meeting["id"], "CA-confirmed", "confirmed")


def ring(sim: Simulator, *keys: str, caller: str = OWN_PHONE) -> Leg:
    script = Script()
    for key in keys:
        script.press(key)
    leg = sim.call(START_LINE, caller, script.hang_up())
    sim.run()
    return leg


def test_the_checks_are_recorded_by_phone(world: tuple[Simulator, Callflow]) -> None:
    sim, service = world
    meeting = confirmed(sim, service)
    code = meeting["phone_code"]
    assert len(code) == 6 and code.isdigit()
    early = ring(sim, f"{OFFICER}#", f"{PIN}#", f"{code}#")
    assert "its checks are recorded as it begins" in " ".join(early.heard())
    assert service.meetings.require(meeting["id"])["state"] == "confirmed"
    service.clock.set(MEETING_AT.timestamp() - 600)  # at the door
    leg = ring(sim, f"{OFFICER}#", f"{PIN}#", f"{code}#", "1")
    said = " ".join(leg.heard())
    assert "The meeting with Pat Example on Tuesday 5 January 2027 at 10am" in said
    assert "the meeting is recorded as started" in said
    held = service.meetings.require(meeting["id"])
    assert held["state"] == "held"
    assert held["start_checks"]["how"] == "phone"
    assert held["start_checks"]["by"] == f"officer {OFFICER} (phone)"
    started = [e for e in service.audit.entries() if e["kind"] == "meeting.started"]
    assert [e["how"] for e in started] == ["phone"]
    # Never the PIN, in the audit log or the trace.
    assert PIN not in repr(service.audit.entries())
    trace = service.traces.get(leg.sid, by="tests", role="admin")
    assert trace is not None and PIN not in repr(trace)


def test_failed_checks_end_the_meeting_as_not_verified(world: tuple[Simulator, Callflow]) -> None:
    sim, service = world
    meeting = confirmed(sim, service)
    service.clock.set(MEETING_AT.timestamp())
    ring(sim, f"{OFFICER}#", f"{PIN}#", f"{meeting['phone_code']}#", "2")
    ended = service.meetings.require(meeting["id"])
    assert ended["state"] == "not_verified" and ended["start_checks"]["passed"] is False
    assert [e["kind"] for e in service.audit.entries() if e["kind"].startswith("meeting.not_")] == [
        "meeting.not_verified"
    ]


def test_a_code_finds_only_the_officers_own_meeting(world: tuple[Simulator, Callflow]) -> None:
    sim, service = world
    service.meetings.pins.set_pin(OTHER, "27182818", by="ada")
    mine = confirmed(sim, service)
    theirs = confirmed(sim, service, officer_number=OTHER, reference="DM-2041-78",
                       customer_name="Chris Example")  # fmt: skip
    service.meetings.set_phone_code(theirs["id"], mine["phone_code"], by="ada")  # same digits
    assert service.meetings.for_code(OFFICER, mine["phone_code"])["id"] == mine["id"]  # type: ignore[index]
    assert service.meetings.for_code(OTHER, mine["phone_code"])["id"] == theirs["id"]  # type: ignore[index]
    with pytest.raises(CallflowError, match="another of officer"):
        service.meetings.set_phone_code(
            add_meeting(service, when=None, reference="DM-2041-79")["id"],
            mine["phone_code"], by="ada",
        )  # fmt: skip
    service.clock.set(MEETING_AT.timestamp())
    leg = ring(sim, f"{OTHER}#", "27182818#", f"{mine['phone_code']}#", "1")
    said = " ".join(leg.heard())
    assert "The meeting with Chris Example" in said and "Pat Example" not in said
    assert service.meetings.require(mine["id"])["state"] == "confirmed", "not theirs to start"
    assert service.meetings.require(theirs["id"])["state"] == "held"


def test_a_strangers_wrong_pins_never_lock_the_officers_own_phone(
    world: tuple[Simulator, Callflow],
) -> None:
    sim, service = world
    meeting = confirmed(sim, service)
    # The officer verifies once from their own phone: it is known to the lockout.
    ring(sim, f"{OFFICER}#", f"{PIN}#", caller=OWN_PHONE)
    guard = service.settings.guard
    for n in range(guard.hard_limit + 2):
        ring(sim, f"{OFFICER}#", "11111111#", caller=f"+4479460{n:05d}")
    refused = [e["outcome"] for e in service.audit.entries() if e["kind"] == "officer.pin"]
    assert "locked" in refused, "the strangers' numbers are locked out"
    # Another stranger, even with the right PIN, is refused now.
    stranger = ring(sim, f"{OFFICER}#", f"{PIN}#", caller="+447946000001")
    assert "we cannot check your PIN on this line now" in " ".join(stranger.heard())
    service.clock.set(MEETING_AT.timestamp())
    leg = ring(sim, f"{OFFICER}#", f"{PIN}#", f"{meeting['phone_code']}#", "1", caller=OWN_PHONE)
    assert "the meeting is recorded as started" in " ".join(leg.heard()), "their own phone"


def test_an_unknown_officer_and_one_with_no_pin_sound_like_a_wrong_pin(
    world: tuple[Simulator, Callflow],
) -> None:
    sim, service = world
    for number in ("9999999", OTHER):  # unknown; no PIN set
        leg = ring(sim, f"{number}#", f"{PIN}#")
        assert "that identity number and PIN do not match our records" in " ".join(leg.heard())
    assert not service.meetings.pins.has_pin(OTHER) and service.meetings.pins.has_pin(OFFICER)
    # The PIN is not on the officer's record, which consoles and the API show.
    officer = service.staff.officer(OFFICER)
    assert officer is not None and "pin" not in repr(officer.to_dict()).lower()


def test_the_cli_sets_an_officers_pin(
    world: tuple[Simulator, Callflow], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _sim, service = world
    monkeypatch.setattr("callflow.cli.common.service", lambda: service)
    assert main(["officers", "set-pin", OTHER, "--issue"]) == 1, "an admin's act"
    cli_sign_in(monkeypatch, tmp_path, service, "admin")
    assert main(["officers", "set-pin", OTHER, "--issue"]) == 0
    out = capsys.readouterr().out
    pin = out.rsplit(": ", 1)[1].strip()
    assert pin.isdigit() and len(pin) == 8 and service.meetings.pins.has_pin(OTHER)
    assert service.meetings.pins.check(OTHER, pin, OWN_PHONE).outcome == "verified"
    entries = [e for e in service.audit.entries() if e["kind"] == "staff.officer_pin"]
    assert entries[-1]["outcome"] == "issued" and pin not in repr(entries)
