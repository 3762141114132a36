"""Whole VSTRS calls through the signed webhooks, on the real Redis and the embedded store."""

from __future__ import annotations

from flask.testing import FlaskClient

from callflow.service import Callflow
from tests.conftest import ADVISER, ANSWERS, PIN, Caller, enrol

NOT_RECOGNISED = "Sorry, we could not verify those details."
GOODBYE_START = "We have not been able to verify you on this call."


def kinds(service: Callflow, call_sid: str) -> list[tuple[str, str]]:
    return [
        (e["kind"], e.get("outcome", ""))
        for e in service.audit.entries()
        if e["call_sid"] == call_sid
    ]


def test_success_connects_to_the_agent_queue(caller: Caller, service: Callflow) -> None:
    root = caller.start()
    assert caller.says()[0].startswith("Welcome to the H M R C Voluntary Sector")
    assert root.find("Gather").attrib["input"] == "dtmf"  # type: ignore[union-attr]
    caller.press(ADVISER)
    assert "PIN" in caller.question()
    caller.press(PIN)
    assert caller.last.find("Gather").attrib["input"] == "dtmf speech"  # type: ignore[union-attr]
    root = caller.say(caller.answer_for_question())
    spoken = " ".join(caller.says())
    assert "Thank you, Sam Adviser. You are verified as calling from Tax Aid." in spoken
    conference = root.find("Dial/Conference")
    assert conference is not None and conference.text == f"vstrs-{caller.call_sid}"
    assert (
        conference.attrib["waitUrl"] == f"https://callflow.test/voice/hold?call={caller.call_sid}"
    )
    assert conference.attrib["startConferenceOnEnter"] == "false"
    assert conference.attrib["endConferenceOnExit"] == "true"
    assert conference.attrib["statusCallback"] == "https://callflow.test/voice/conference"
    session = service.store.get_session(caller.call_sid)
    assert session is not None and session.verified is not None
    assert session.verified["organisation"] == "taxaid"
    assert session.verified["method"] == "speech"
    assert kinds(service, caller.call_sid)[:2] == [
        ("verification.pin", "accepted"),
        ("verification.verified", "verified"),
    ]


def test_speech_answer_is_normalised(caller: Caller, service: Callflow) -> None:
    caller.start()
    caller.press(ADVISER)
    caller.press(PIN)
    answer = caller.answer_for_question()
    caller.say(f"  {answer.upper()}!! ")
    assert caller.last.find("Dial/Conference") is not None  # type: ignore[union-attr]


def test_keypad_answer(client: FlaskClient, service: Callflow) -> None:
    now = service.clock.now()
    service.directory.add("2002", "Kim Keys", "litrg", now=now, by="tests")
    service.directory.set_pin("2002", "731904", now, by="tests")
    service.directory.set_answers(
        "2002",
        {"memorable_number": "4417", "memorable_date": "01/02/1970"},
        now,
        by="tests",
    )
    caller = Caller(client)
    caller.start()
    caller.press("2002")
    caller.press("731904")
    answer = "4417" if "memorable number" in caller.question() else "01021970"
    caller.press(answer)
    assert "Low Incomes Tax Reform Group" in " ".join(caller.says())
    session = service.store.get_session(caller.call_sid)
    assert (
        session is not None
        and session.verified is not None
        and session.verified["method"] == "keypad"
    )


def test_unknown_adviser_hears_exactly_what_a_wrong_pin_hears(
    client: FlaskClient, service: Callflow
) -> None:
    unknown, wrong = Caller(client), Caller(client)
    for caller, number, pin in ((unknown, "9999", PIN), (wrong, ADVISER, "135792")):
        caller.start()
        caller.press(number)
        caller.press(pin)
    assert unknown.says() == wrong.says()
    assert unknown.says()[0] == NOT_RECOGNISED
    assert [
        e.get("adviser") for e in service.audit.entries() if e["call_sid"] == unknown.call_sid
    ] == [None]


def test_wrong_pin_three_times_ends_the_call_politely(caller: Caller, service: Callflow) -> None:
    caller.start()
    for _ in range(3):
        caller.press(ADVISER)
        caller.press("135792")
    assert caller.says()[0] == NOT_RECOGNISED
    assert caller.says()[1].startswith(GOODBYE_START)
    assert caller.last.find("Hangup") is not None  # type: ignore[union-attr]
    assert caller.last.find("Gather") is None  # type: ignore[union-attr]
    assert service.store.lock_status(ADVISER, service.clock.now()).failures == 3
    session = service.store.get_session(caller.call_sid)
    assert session is not None and session.verified is None


def test_wrong_answer_is_not_verified(caller: Caller, service: Callflow) -> None:
    caller.start()
    caller.press(ADVISER)
    caller.press(PIN)
    caller.say("purple elephant")
    assert caller.says()[0] == NOT_RECOGNISED
    assert caller.last.find("Gather") is not None  # type: ignore[union-attr]
    assert kinds(service, caller.call_sid)[-1] == ("verification.answer", "failed")
    assert service.store.lock_status(ADVISER, service.clock.now()).failures == 1


def test_no_input_three_times_ends_the_call(caller: Caller) -> None:
    caller.start()
    caller.wait()
    assert caller.says()[0] == "Sorry, we did not receive anything."
    caller.press(ADVISER)
    caller.wait()  # silence at the PIN prompt counts too
    caller.wait()
    assert caller.says()[1].startswith(GOODBYE_START)
    assert caller.last.find("Hangup") is not None  # type: ignore[union-attr]


def test_empty_speech_is_no_input(caller: Caller) -> None:
    caller.start()
    caller.press(ADVISER)
    caller.press(PIN)
    caller.say("   ")
    assert caller.says()[0] == "Sorry, we did not receive anything."


def test_lockout_across_calls_and_unlock(client: FlaskClient, service: Callflow) -> None:
    usual = Caller(client, from_number="+441632960111")
    usual.verify()  # the adviser's usual line: known from now on
    usual.hang_up()
    threshold = service.settings.lockout_threshold
    strangers = [Caller(client, from_number=f"+4477009{n:05d}") for n in range(threshold // 3)]
    for stranger in strangers:
        stranger.start()
        for _ in range(3):
            stranger.press(ADVISER)
            stranger.press("135792")
    assert service.store.lock_status(ADVISER, service.clock.now()).locked_seconds > 29 * 60
    lockouts = [e for e in service.audit.entries() if e["kind"] == "verification.lockout"]
    assert len(lockouts) == 1 and lockouts[0]["call_sid"] == strangers[-1].call_sid

    locked = Caller(client, from_number="+447700900999")
    locked.start()
    locked.press(ADVISER)
    locked.press(PIN)  # the right PIN, but the adviser is locked to unknown numbers
    assert locked.says()[0] == NOT_RECOGNISED
    assert kinds(service, locked.call_sid) == [("verification.pin", "locked")]
    again = Caller(client, from_number="+441632960111")
    again.verify()
    assert again.last.find("Dial/Conference") is not None, "the usual line still gets through"  # type: ignore[union-attr]

    # Verifying from a known line clears the count and the lock; strangers start again.
    assert service.store.lock_status(ADVISER, service.clock.now()).locked_seconds == 0
    for n in range(threshold // 3):
        stranger = Caller(client, from_number=f"+4477008{n:05d}")
        stranger.start()
        for _ in range(3):
            stranger.press(ADVISER)
            stranger.press("135792")
    assert service.store.lock_status(ADVISER, service.clock.now()).locked_seconds > 0
    service.unlock_adviser(ADVISER, by="tester")
    assert ("adviser.unlocked", "unlocked") in [
        (e["kind"], e["outcome"]) for e in service.audit.entries()
    ]
    after = Caller(client, from_number="+447700900999")
    after.verify()
    assert after.last.find("Dial/Conference") is not None  # type: ignore[union-attr]


def test_success_resets_the_failure_count(client: FlaskClient, service: Callflow) -> None:
    caller = Caller(client)
    caller.start()
    caller.press(ADVISER)
    caller.press("135792")
    assert service.store.lock_status(ADVISER, service.clock.now()).failures == 1
    caller.press(ADVISER)
    caller.press(PIN)
    caller.say(caller.answer_for_question())
    assert service.store.lock_status(ADVISER, service.clock.now()).failures == 0


def test_each_organisation_is_named(client: FlaskClient, service: Callflow) -> None:
    names = {
        "top": "Tax Help for Older People",
        "litrg": "Low Incomes Tax Reform Group",
        "citizens_advice": "Citizens Advice",
    }
    for index, (org, name) in enumerate(names.items()):
        number = f"300{index}"
        enrol(service, number=number, org=org)
        caller = Caller(client)
        caller.verify(adviser=number)
        assert f"calling from {name}." in " ".join(caller.says())


def test_no_secret_reaches_twiml_audit_or_session(caller: Caller, service: Callflow) -> None:
    caller.verify()
    caller.hang_up()
    session = service.store.get_session(caller.call_sid)
    blob = repr(session) + repr(service.audit.entries()) + " ".join(caller.heard)
    for secret in (PIN, *ANSWERS.values(), "hilltop"):
        assert secret not in blob
    adviser = service.store.get_adviser(ADVISER)
    assert adviser is not None and PIN not in repr(adviser) and "Hill Top" not in repr(adviser)


def test_hangup_ends_the_session(caller: Caller, service: Callflow) -> None:
    caller.start()
    caller.press(ADVISER)
    caller.hang_up()
    session = service.store.get_session(caller.call_sid)
    assert session is not None and session.ended and session.end_reason == "completed"
    # A late gather result after the end hangs up and changes nothing.
    response = caller.post(caller.gather_url(), Digits=PIN)
    assert response.status_code == 200 and b"<Hangup" in response.data
    assert kinds(service, caller.call_sid) == []
