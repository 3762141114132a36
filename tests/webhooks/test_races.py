"""Retried, repeated and racing webhooks for one CallSid: nothing lost, nothing done twice."""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient

from callflow.service import Callflow
from tests.conftest import ADVISER, PIN, Caller
from tests.rigs import run_together


def test_a_repeated_webhook_gets_the_same_answer_and_does_not_advance(
    caller: Caller, service: Callflow
) -> None:
    caller.start()
    caller.press(ADVISER)
    url = caller.gather_url()
    first = caller.post(url, Digits="135792")
    again = caller.post(url, Digits="135792")
    assert first.data == again.data
    session = service.store.get_session(caller.call_sid)
    assert session is not None and session.step == 3
    failures = [e for e in service.audit.entries() if e["kind"] == "verification.pin"]
    assert len(failures) == 1, "the PIN was checked once, not twice"
    assert service.store.lock_status(ADVISER, service.clock.now()).failures == 1


def test_a_repeated_voice_url_request_does_not_restart_the_call(
    caller: Caller, service: Callflow
) -> None:
    first = caller.start()
    caller.press(ADVISER)
    again = caller.post("https://callflow.test/voice/incoming", CallStatus="ringing")
    assert again.status_code == 200
    session = service.store.get_session(caller.call_sid)
    assert session is not None and session.state == "ask_pin"
    from xml.etree import ElementTree as ET

    assert ET.tostring(ET.fromstring(again.data)) == ET.tostring(first)


def test_racing_duplicates_run_the_step_once(app: Flask, service: Callflow) -> None:
    caller = Caller(app.test_client())
    caller.start()
    caller.press(ADVISER)
    url = caller.gather_url()
    call_sid = caller.call_sid

    def deliver() -> bytes:
        twin = Caller(app.test_client(), call_sid=call_sid)
        return bytes(twin.post(url, Digits="135792").data)

    answers = run_together([deliver] * 8)
    assert len(set(answers)) == 1, "every delivery got the same TwiML"
    pin_checks = [e for e in service.audit.entries() if e["kind"] == "verification.pin"]
    assert len(pin_checks) == 1
    session = service.store.get_session(call_sid)
    assert session is not None and session.step == 3 and session.data["tries"] == 1


def test_a_gather_result_racing_the_status_callback_loses_neither(
    app: Flask, service: Callflow
) -> None:
    for _ in range(5):
        caller = Caller(app.test_client())
        caller.start()
        caller.press(ADVISER)
        url = caller.gather_url()
        twin = Caller(app.test_client(), call_sid=caller.call_sid)
        run_together([lambda c=caller, u=url: c.post(u, Digits=PIN), lambda t=twin: t.hang_up()])
        session = service.store.get_session(caller.call_sid)
        assert session is not None
        assert session.ended, "the hang-up was not lost"
        pin_checks = [e for e in service.audit.entries() if e["call_sid"] == caller.call_sid]
        # Either the PIN step ran before the hang-up (one check, state moved on) or after it
        # (no check: the call was over). Never lost, never twice.
        if pin_checks:
            assert len(pin_checks) == 1 and session.state == "ask_question"
        else:
            assert session.state == "ask_pin"


def test_concurrent_wrong_pins_from_one_number_never_exceed_its_attempts(
    app: Flask, service: Callflow
) -> None:
    callers = [Caller(app.test_client()) for _ in range(12)]  # all from one number
    for caller in callers:
        caller.start()
        caller.press(ADVISER)
    run_together([lambda c=caller: c.press("135792") for caller in callers])
    outcomes = [e["outcome"] for e in service.audit.entries() if e["kind"] == "verification.pin"]
    assert outcomes.count("failed") == service.settings.number_attempts, outcomes
    assert outcomes.count("throttled") == 12 - service.settings.number_attempts
    status = service.store.lock_status(ADVISER, service.clock.now())
    assert status.locked_seconds == 0, "one number's guesses never lock the adviser"


def test_a_new_call_takes_one_round_trip_on_a_pure_flow(
    client: FlaskClient, service: Callflow
) -> None:
    calls: list[str] = []
    store = service.store
    for name in ("lease_session", "save_session", "create_session"):
        original = getattr(store, name)

        def spy(*args: object, _name: str = name, _original: object = original) -> object:
            calls.append(_name)
            return _original(*args)  # type: ignore[operator]

        setattr(store, name, spy)
    caller = Caller(client)
    caller.start()
    assert calls == ["create_session"]
    calls.clear()
    caller.press("1001#")
    assert calls == ["lease_session", "save_session"]


def test_a_voice_url_while_the_call_is_held_waits_for_it(
    client: FlaskClient, service: Callflow
) -> None:
    caller = Caller(client)
    assert service.store.lease_session(caller.call_sid, "someone", 3000).held
    letting_go = threading.Timer(0.3, service.store.release_session, (caller.call_sid, "someone"))
    letting_go.start()
    started = time.monotonic()
    twiml = caller.start()
    assert time.monotonic() - started >= 0.25, "it waited for the other webhook to let go"
    assert twiml.find("Gather") is not None
    session = service.store.get_session(caller.call_sid)
    assert session is not None and session.step == 1


def test_a_flow_whose_start_is_not_pure_is_leased(
    client: FlaskClient, service: Callflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    import textwrap

    from callflow.flowspec import parse_flow
    from callflow.machine import FlowMachine

    impure = parse_flow(
        textwrap.dedent(
            """\
            flow: impure
            initial: hello
            states:
              hello:
                enter: [decline_handoff]
                twiml: [hangup]
            """
        ),
        "impure.yaml",
    )
    assert not FlowMachine(impure, service.registry).start_is_pure
    for name in ("vstrs_inbound", "officer_check", "meeting_call", "specialist_handoff"):
        assert service.library.machine(service.library.live(name)).start_is_pure, name

    machine = service.library.machine(service.library.live("vstrs_inbound"))
    monkeypatch.setattr(machine, "start_is_pure", False)
    calls: list[str] = []
    for name in ("lease_session", "save_session", "create_session"):
        original = getattr(service.store, name)

        def spy(*args: object, _name: str = name, _original: object = original) -> object:
            calls.append(_name)
            return _original(*args)  # type: ignore[operator]

        monkeypatch.setattr(service.store, name, spy)
    Caller(client).start()
    assert calls == ["lease_session", "save_session"]
