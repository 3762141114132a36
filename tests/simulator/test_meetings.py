"""Meeting arrangement calls: outbound through the Twilio adapter, retries, outcomes, audit."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from callflow.cli.main import main
from callflow.config import Settings
from callflow.errors import CallflowError, DirectoryError
from callflow.links import ServiceLinks
from callflow.service import Callflow
from callflow.simulator import Callee, Script, Simulator
from callflow.simulator.session import in_process
from callflow.store import MemoryStore
from tests.conftest import FLOWS
from tests.rigs.meetings import CUSTOMER, OFFICER, add_meeting


@pytest.fixture
def rig() -> tuple[Simulator, Callflow]:
    token = secrets.token_hex(16)

    def make(client: Any, clock: Any) -> Callflow:
        settings = Settings(
            twilio_auth_token=token,
            public_base_url="http://callflow.test",
            secret_key=secrets.token_bytes(32),
            hash_cost=10,
            flows_dir=FLOWS,
            meeting_retry_minutes=(30, 120),
        ).checked()
        return Callflow(settings, store=MemoryStore(clock), clock=clock, twilio_client=client)

    sim, service = in_process(make, token)
    service.staff.add_officer(OFFICER, "Alex Morgan", service.clock.now(), by="tests")
    return sim, service




LINKS = ServiceLinks("http://callflow.test")


def call_once(sim: Simulator, service: Callflow, meeting_id: str, callee: Callee) -> Any:
    sim.add_callee(CUSTOMER, callee)
    call_sid = service.meetings.place_call(meeting_id, LINKS)
    sim.run()
    return sim.legs[call_sid]


def test_retries_follow_the_schedule_then_the_meeting_is_unreachable(
    rig: tuple[Simulator, Callflow],
) -> None:
    sim, service = rig
    meeting = add_meeting(service)
    assert [m["id"] for m in service.meetings.due()] == [meeting["id"]]
    leg = call_once(sim, service, meeting["id"], Callee("no-answer"))
    assert leg.status == "no-answer"
    after_one = service.meetings.require(meeting["id"])
    assert after_one["state"] == "scheduled"
    assert after_one["next_call_at"] == pytest.approx(service.clock.now() + 30 * 60, abs=5)
    assert service.meetings.due() == []
    # Not due yet; then due after 30 minutes: the runner places it (an answering machine).
    sim.add_callee(CUSTOMER, Callee.voicemail())
    sim.advance(30 * 60)
    placed = service.meetings.call_due(LINKS)
    assert [m for m, _ in placed] == [meeting["id"]]
    sim.run()
    second = sim.legs[placed[0][1]]
    assert second.heard() == []  # a machine hears nothing at all
    assert service.meetings.require(meeting["id"])["state"] == "scheduled"
    sim.advance(120 * 60)
    sim.add_callee(CUSTOMER, Callee("busy", after=2))
    service.meetings.call_due(LINKS)
    sim.run()
    final = service.meetings.require(meeting["id"])
    assert final["state"] == "unreachable" and final["next_call_at"] is None
    assert [a["result"] for a in final["attempts"]] == ["no-answer", "no_person", "busy"]
    attempts = [e for e in service.audit.entries() if e["kind"] == "meeting.attempt"]
    assert [(e["outcome"], e["next"]) for e in attempts] == [
        ("no-answer", "scheduled"),
        ("no_person", "scheduled"),
        ("busy", "unreachable"),
    ]
    with pytest.raises(DirectoryError, match="is unreachable, not scheduled"):
        service.meetings.place_call(meeting["id"], LINKS)


def test_a_meeting_must_give_what_its_flow_checks(rig: tuple[Simulator, Callflow]) -> None:
    _, service = rig
    with pytest.raises(DirectoryError, match="flow meeting_call checks the date of birth"):
        add_meeting(service, date_of_birth=None, postcode="LS1 4AP")
    with pytest.raises(DirectoryError, match="flow: no flow named 'nope'"):
        add_meeting(service, flow="nope")


def test_a_meeting_without_the_flows_check_fails_closed(rig: tuple[Simulator, Callflow]) -> None:
    sim, service = rig
    service.meetings.library = None  # as if the flow changed after the meeting was stored
    meeting = add_meeting(service, date_of_birth=None, postcode="LS1 4AP")
    script = Script().press("1").press("14#").press("1")
    leg = call_once(sim, service, meeting["id"], Callee("answered", after=3, script=script))
    # The default flow asks for a date of birth, which this meeting does not have.
    assert any("We will write to you instead" in h for h in leg.heard())
    assert service.meetings.require(meeting["id"])["state"] == "identity_failed"
    checks = [e for e in service.audit.entries() if e["kind"] == "meeting.identity_check"]
    assert checks[-1]["outcome"] == "no_such_check"


def test_the_customer_confirms(rig: tuple[Simulator, Callflow]) -> None:
    sim, service = rig
    meeting = add_meeting(service)
    script = Script().press("1").press("21031970#").press("1")
    leg = call_once(sim, service, meeting["id"], Callee("answered", after=3, script=script))
    heard = " ".join(leg.heard())
    assert "Tuesday 4 March 2031 at 2pm" in heard and "Alex Morgan" in heard
    done = service.meetings.require(meeting["id"])
    assert done["state"] == "confirmed" and done["outcome"] == "confirmed"
    assert done["attempts"][0]["result"] == "confirmed"
    sim.advance(24 * 3600)
    assert service.meetings.call_due(LINKS) == []


def test_meeting_records_are_checked(rig: tuple[Simulator, Callflow]) -> None:
    _, service = rig
    with pytest.raises(DirectoryError) as bad:
        add_meeting(
            service,
            customer_number="07700",
            officer_number="999999",
            when="2020-01-01T10:00",
            date_of_birth=None,
        )
    text = str(bad.value)
    assert "number: the customer's phone number" in text
    assert "officer: no active officer with identity number 999999" in text
    assert "when: the meeting must be in the future" in text
    assert "identity: give the date of birth or the postcode" in text
    service.staff.set_officer_active(OFFICER, False, by="tests")
    with pytest.raises(DirectoryError, match="no active officer"):
        add_meeting(service)


def test_identity_values_are_never_shown(rig: tuple[Simulator, Callflow]) -> None:
    _, service = rig
    meeting = add_meeting(service, postcode="LS1 4AP")
    shown = json.dumps(service.meetings.public(service.meetings.require(meeting["id"])))
    # The year of birth on its own, not digits inside a timestamp (1796636022.5619702).
    assert not re.search(r"(?<!\d)1970(?!\d)", shown), shown
    assert "21031970" not in shown and "LS1" not in shown
    assert meeting["identity"]["date_of_birth"] not in shown
    assert service.meetings.public(meeting)["identity_checks"] == ["date_of_birth", "postcode"]


def test_cancelled_meetings_are_not_called(rig: tuple[Simulator, Callflow]) -> None:
    _, service = rig
    meeting = add_meeting(service)
    service.meetings.cancel(meeting["id"], "tester")
    assert service.meetings.due() == []
    with pytest.raises(DirectoryError, match="is not open"):
        service.meetings.cancel(meeting["id"], "tester")
    with pytest.raises(CallflowError):
        service.meetings.place_call(meeting["id"], LINKS)


def test_the_meeting_status_callback_refuses_bad_input(rig: tuple[Simulator, Callflow]) -> None:
    sim, _ = rig
    result = sim.transport.request(  # type: ignore[union-attr]
        "POST",
        "http://callflow.test/voice/leg?role=meeting&ref=../x",
        {"CallSid": "CA" + "0" * 32, "CallStatus": "completed"},
        {},
        5,
    )
    assert result.status == 403  # unsigned: refused before anything is read


def test_the_cli_adds_lists_and_shows_meetings(
    monkeypatch: pytest.MonkeyPatch,
    redis_store: object,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from callflow.config import Settings
    from tests.conftest import TEST_REDIS_URL, cli_sign_in

    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setenv("CALLFLOW_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("CALLFLOW_HASH_COST", "10")
    monkeypatch.setenv("USER", "tester")
    assert main(["officers", "add", OFFICER, "--name", "Alex Morgan", "--grade", "O"]) == 1
    assert "callflow login" in capsys.readouterr().err, "an admin's act: sign in first"
    cli_sign_in(monkeypatch, tmp_path, Callflow(Settings.from_env()), "admin")
    assert main(["officers", "add", OFFICER, "--name", "Alex Morgan", "--grade", "AO"]) == 0
    assert main(["officers", "list"]) == 0
    assert "4471203      Alex Morgan                    Administrative Officer" in (
        capsys.readouterr().out
    )
    args = [
        "meetings", "add", "--customer", "Pat Example", "--number", CUSTOMER,
        "--reference", "DM-1", "--officer", OFFICER, "--purpose", "time_to_pay",
        "--bring", "bank statements", "--when", "2031-03-04T14:00", "--place", "hmrc_office",
        "--where", "the Leeds office", "--date-of-birth", "1970-03-21", "--retries", "15,60",
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "stored; its call is due now (retries after 15, 60 minutes)" in out
    assert main(["meetings", "list"]) == 0
    line = capsys.readouterr().out
    assert "scheduled" in line and "Pat Example" in line
    meeting_id = line.split()[0]
    assert main(["meetings", "show", meeting_id]) == 0
    shown = capsys.readouterr().out
    assert '"identity_checks": [\n    "date_of_birth"\n  ]' in shown and "1970" not in shown
    assert main(["meetings", "cancel", meeting_id]) == 0
    assert main(["officers", "deactivate", OFFICER]) == 0
    assert main(["meetings", "add", *args[2:]]) == 1
    assert "no active officer" in capsys.readouterr().err


def test_a_call_whose_end_was_never_reported_is_settled(rig: tuple[Simulator, Callflow]) -> None:
    sim, service = rig
    sim.faults.lose_callbacks = {"completed", "no-answer", "busy", "failed"}
    meeting = add_meeting(service)
    call_once(sim, service, meeting["id"], Callee("no-answer"))
    assert service.meetings.require(meeting["id"])["state"] == "calling"
    assert service.meetings.call_due(LINKS) == []  # too soon to ask Twilio
    sim.advance(16 * 60)
    assert service.meetings.call_due(LINKS) == [(meeting["id"], "settled: no-answer")]
    settled = service.meetings.require(meeting["id"])
    assert settled["state"] == "scheduled" and settled["attempts"][0]["result"] == "no-answer"


def test_a_time_with_an_offset_is_converted_to_uk_time(rig: tuple[Simulator, Callflow]) -> None:
    _, service = rig
    meeting = add_meeting(service, when="2031-07-01T09:30+00:00")
    assert meeting["when"] == "2031-07-01T10:30+01:00"
