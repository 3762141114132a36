"""The lockout model (docs/lockout.md): strangers cannot lock an adviser out of their usual
line, guessing across many numbers is stopped within the documented bound, a hang-up
counts once and only for its window, and concurrency stays exact."""

from __future__ import annotations

from collections import Counter

from flask import Flask
from flask.testing import FlaskClient

from callflow.clock import ManualClock
from callflow.service import Callflow
from callflow.store import Store
from tests.conftest import ADVISER, PIN, Caller
from tests.rigs import run_together

USUAL = "+441632960111"
NOT_RECOGNISED = "Sorry, we could not verify those details."


def pin_outcomes(service: Callflow) -> Counter[str]:
    return Counter(e["outcome"] for e in service.audit.all_entries() if e["kind"] == "verification.pin")


def verifies(client: FlaskClient, number: str) -> bool:
    """The adviser calls from ``number`` with the right PIN and answer: put through?"""
    caller = Caller(client, from_number=number)
    caller.start()
    caller.press(ADVISER)
    caller.press(PIN)
    if caller.says()[0] == NOT_RECOGNISED:
        return False
    caller.say(caller.answer_for_question())
    return caller.last is not None and caller.last.find("Dial/Conference") is not None


def wrong_pins(client: FlaskClient, number: str, tries: int) -> Caller:
    caller = Caller(client, from_number=number)
    caller.start()
    for _ in range(tries):
        caller.press(ADVISER)
        caller.press("135792")
    return caller


def test_the_two_call_attack_no_longer_locks_the_adviser_out(
    client: FlaskClient, service: Callflow
) -> None:
    assert verifies(client, USUAL)
    wrong_pins(client, "+447700900001", 3)  # a stranger who knows only the adviser number
    wrong_pins(client, "+447700900001", 2)
    assert verifies(client, USUAL), "their usual line"
    assert verifies(client, "+441632960222"), "a line they never used: no lock yet either"
    # The stranger's own number waits out its window, even with the right PIN.
    stranger = Caller(client, from_number="+447700900001")
    stranger.start()
    stranger.press(ADVISER)
    stranger.press(PIN)
    assert stranger.says()[0] == NOT_RECOGNISED
    assert pin_outcomes(service)["throttled"] == 1
    assert not any(e["kind"] == "verification.lockout" for e in service.audit.all_entries())


def test_guessing_across_many_numbers_is_stopped_within_the_bound(
    client: FlaskClient, service: Callflow, clock: ManualClock
) -> None:
    """A new number every ten minutes for three days, one wrong PIN each: at most the
    threshold plus one a lock period in a day, and never more than the hard limit."""
    settings = service.settings
    assert verifies(client, USUAL)
    checks_by_day: Counter[int] = Counter()
    start = clock.now()
    for n in range(3 * 24 * 6):
        day = int((clock.now() - start) // 86400)
        before = pin_outcomes(service)["failed"]
        wrong_pins(client, f"+4477{n:08d}", 1).hang_up()
        checks_by_day[day] += pin_outcomes(service)["failed"] - before
        clock.advance(600)
    per_day = settings.lockout_threshold + 86400 // settings.lockout_seconds
    assert checks_by_day[0] <= per_day, checks_by_day
    assert sum(checks_by_day.values()) == settings.lockout_hard_limit, checks_by_day
    assert service.store.lock_status(ADVISER, clock.now()).hard_locked
    lockouts = Counter(
        e["outcome"] for e in service.audit.all_entries() if e["kind"] == "verification.lockout"
    )
    assert lockouts["hard_locked"] == 1 and lockouts["locked"] >= 1
    assert not verifies(client, "+441632960333"), "a new number: locked out"
    assert verifies(client, USUAL), "the usual line gets through, and clears the lock"
    assert verifies(client, "+441632960333")


def test_hanging_up_at_the_question_counts_once_and_only_for_its_window(
    client: FlaskClient, service: Callflow, clock: ManualClock
) -> None:
    for _ in range(service.settings.number_attempts):
        caller = Caller(client, from_number="+441632960444")
        caller.start()
        caller.press(ADVISER)
        caller.press(PIN)  # right PIN: the question is asked, and the caller hangs up
        caller.hang_up()
    refused = Caller(client, from_number="+441632960444")
    refused.start()
    refused.press(ADVISER)
    refused.press(PIN)
    assert refused.says()[0] == NOT_RECOGNISED
    assert pin_outcomes(service)["throttled"] == 1, "audited: the number waits, and why"
    status = service.adviser_lockout(ADVISER)
    (line,) = [w for w in status["why"] if "+441632960444" in w]
    assert "WAITING 15 min" in line
    assert not status["hard_locked"] and status["locked_seconds"] == 0
    assert verifies(client, "+441632960555"), "another number is not held up"
    clock.advance(service.settings.number_window_seconds)
    assert verifies(client, "+441632960444"), "the window over, not 24 hours"


def test_fifty_calls_at_once_stay_exact(app: Flask, service: Callflow) -> None:
    threshold = service.settings.lockout_threshold
    callers = [Caller(app.test_client(), from_number=f"+4477009{n:05d}") for n in range(50)]
    for caller in callers:
        caller.start()
        caller.press(ADVISER)
    run_together([lambda c=caller: c.press("135792") for caller in callers])
    outcomes = pin_outcomes(service)
    assert outcomes["failed"] == threshold, outcomes
    assert outcomes["locked"] == 50 - threshold
    lockouts = [e for e in service.audit.all_entries() if e["kind"] == "verification.lockout"]
    assert len(lockouts) == 1
    one_number = [Caller(app.test_client(), from_number=USUAL) for _ in range(20)]
    service.unlock_adviser(ADVISER, by="tester")
    for caller in one_number:
        caller.start()
        caller.press(ADVISER)
    run_together([lambda c=caller: c.press("135792") for caller in one_number])
    after = pin_outcomes(service)
    assert after["failed"] - outcomes["failed"] == service.settings.number_attempts, (outcomes, after)


RELAY_PLATFORM = "+441632960777"


def relay_service(store: Store, clock: ManualClock) -> tuple[Callflow, Flask]:
    from random import Random

    from tests.conftest import enrol, make_settings
    from webhooks import create_app

    svc = Callflow(
        make_settings(relay_numbers=(RELAY_PLATFORM,)), store=store, clock=clock, rng=Random(5)
    )
    enrol(svc)
    return svc, create_app({"CALLFLOW_SERVICE": svc})


def test_one_relay_user_cannot_lock_out_another(store: Store, clock: ManualClock) -> None:
    """Relay UK calls all arrive from the platform's caller IDs: five wrong PINs through
    relay once locked every relay caller of that adviser out for 15 minutes."""
    svc, app = relay_service(store, clock)
    client = app.test_client()
    wrong_pins(client, RELAY_PLATFORM, 3).hang_up()
    wrong_pins(client, RELAY_PLATFORM, 3).hang_up()  # six: past one number's five
    assert verifies(client, RELAY_PLATFORM), "the genuine relay caller gets through"
    assert pin_outcomes(svc)["throttled"] == 0
    status = svc.store.lock_status(ADVISER, clock.now())
    assert RELAY_PLATFORM not in status.known, "the platform's number is never known"
    assert RELAY_PLATFORM not in status.numbers


def test_guessing_through_relay_stays_within_the_unknown_numbers_figures(
    store: Store, clock: ManualClock
) -> None:
    svc, app = relay_service(store, clock)
    client = app.test_client()
    assert verifies(client, USUAL)
    settings = svc.settings
    for _ in range(settings.lockout_threshold // 3 + 1):
        wrong_pins(client, RELAY_PLATFORM, 3).hang_up()
    outcomes = pin_outcomes(svc)
    assert outcomes["failed"] == settings.lockout_threshold, outcomes
    assert outcomes["locked"] == 3 * (settings.lockout_threshold // 3 + 1) - settings.lockout_threshold
    assert not verifies(client, RELAY_PLATFORM), "locked like any unknown number"
    assert verifies(client, USUAL), "the adviser's own line is not locked out"
    assert verifies(client, RELAY_PLATFORM), "and that verification clears the count"


def test_concurrent_relay_calls_are_counted_exactly(store: Store, clock: ManualClock) -> None:
    svc, app = relay_service(store, clock)
    threshold = svc.settings.lockout_threshold
    callers = [Caller(app.test_client(), from_number=RELAY_PLATFORM) for _ in range(40)]
    for caller in callers:
        caller.start()
        caller.press(ADVISER)
    run_together([lambda c=caller: c.press("135792") for caller in callers])
    outcomes = pin_outcomes(svc)
    assert outcomes["failed"] == threshold and outcomes["locked"] == 40 - threshold, outcomes
    assert outcomes["throttled"] == 0, "never throttled as one number"
