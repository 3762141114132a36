"""Whole VSTRS calls driven by the simulator: in-process, with faults, and over HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from random import Random

import pytest

from callflow.clock import ManualClock
from callflow.config import Settings
from callflow.service import Callflow
from callflow.simulator import Faults, HttpTransport, Script, Simulator, WsgiTransport
from callflow.simulator.transport import HttpResult, TransportError
from callflow.store import Store
from tests.conftest import ADVISER, AUTH_TOKEN, BASE_URL, PIN, enrol, make_settings
from webhooks import create_app

VSTRS = "+441632960999"
ADVISER_PHONE = "+441632960001"
ANSWERS = {"first school": "Hill Top", "colour": "Blue"}


@pytest.fixture
def service(store: Store, clock: ManualClock) -> Callflow:
    svc = Callflow(make_settings(), store=store, clock=clock, rng=Random(11))
    enrol(svc)
    return svc


def simulator(
    service: Callflow, clock: ManualClock, faults: Faults | None = None, transport: object = None
) -> Simulator:
    app = create_app({"CALLFLOW_SERVICE": service})
    sim = Simulator(transport or WsgiTransport(app), AUTH_TOKEN, clock=clock, faults=faults)  # type: ignore[arg-type]
    sim.configure_number(
        VSTRS, f"{BASE_URL}/voice/incoming", status_callback=f"{BASE_URL}/voice/status"
    )
    return sim


def verified_script() -> Script:
    return Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(ANSWERS)


def test_verified_caller_waits_for_and_talks_to_an_agent(
    service: Callflow, clock: ManualClock
) -> None:
    sim = simulator(service, clock)
    caller = sim.call(VSTRS, ADVISER_PHONE, verified_script().hang_up(after=600).hang_up(after=600))
    assert sim.run_until(lambda: bool(sim.queues.get("vstrs_agents")))
    assert "You are verified as calling from Tax Aid" in caller.heard()[-1]
    session = service.store.get_session(caller.sid)
    assert session is not None and session.verified is not None and session.state == "connect"
    sim.dequeue("vstrs_agents", script=Script().hang_up(after=120))
    sim.run()
    assert caller.heard()[-1] == "Thank you for calling. Goodbye."
    assert caller.status == "completed" and sim.errors == []
    session = service.store.get_session(caller.sid)
    assert session is not None and session.ended and session.state == "after_agent"


def test_wrong_pins_end_the_call(service: Callflow, clock: ManualClock) -> None:
    sim = simulator(service, clock)
    script = Script()
    for _ in range(3):
        script.press(f"{ADVISER}#").press("135792#")
    caller = sim.call(VSTRS, ADVISER_PHONE, script)
    sim.run()
    assert caller.heard()[-1].startswith("We have not been able to verify you")
    assert caller.status == "completed"
    assert service.store.lock_status(ADVISER).failures == 3


def test_silence_at_every_prompt(service: Callflow, clock: ManualClock) -> None:
    sim = simulator(service, clock)
    caller = sim.call(VSTRS, ADVISER_PHONE, Script().silent().silent().silent())
    sim.run()
    assert caller.heard().count("Sorry, we did not receive anything.") == 3
    assert caller.heard()[-1].startswith("We have not been able to verify you")


def test_no_agent_answers_and_the_caller_gives_up(service: Callflow, clock: ManualClock) -> None:
    sim = simulator(service, clock)
    caller = sim.call(VSTRS, ADVISER_PHONE, verified_script().hang_up(after=90))
    sim.run()
    assert caller.status == "completed"
    session = service.store.get_session(caller.sid)
    assert session is not None and session.ended and session.state == "no_agent"


def test_lockout_expires_after_thirty_minutes(
    service: Callflow, clock: ManualClock, store: Store
) -> None:
    if store.kind != "memory":
        pytest.skip(
            "Redis keeps its own time: expiry on the virtual clock is for the embedded store"
        )
    sim = simulator(service, clock)
    for _ in range(2):
        script = Script()
        for _ in range(3):
            script.press(f"{ADVISER}#").press("135792#")
        sim.call(VSTRS, ADVISER_PHONE, script)
        sim.run()
    assert service.store.lock_status(ADVISER).locked_seconds > 0
    clock.advance(31 * 60)
    caller = sim.call(VSTRS, ADVISER_PHONE, verified_script().hang_up(after=5))
    sim.run()
    assert any("You are verified" in text for text in caller.heard())


def test_duplicate_webhooks_change_nothing(service: Callflow, clock: ManualClock) -> None:
    sim = simulator(service, clock, Faults(duplicate_webhooks=True))
    caller = sim.call(VSTRS, ADVISER_PHONE, verified_script().hang_up(after=5))
    sim.run()
    assert sim.errors == [], "every duplicate got the same TwiML"
    assert any("You are verified" in text for text in caller.heard())
    kinds = [e["kind"] for e in service.audit.entries() if e["call_sid"] == caller.sid]
    assert kinds == ["verification.pin", "verification.verified"]
    assert sum(1 for r in sim.requests if r.duplicate_of is not None) >= 4


def test_a_lost_completed_callback_leaves_the_session_to_expire(
    service: Callflow, clock: ManualClock
) -> None:
    sim = simulator(service, clock, Faults(lose_callbacks={"completed"}))
    caller = sim.call(VSTRS, ADVISER_PHONE, Script().press(f"{ADVISER}#").hang_up())
    sim.run()
    session = service.store.get_session(caller.sid)
    assert session is not None and not session.ended
    assert any(e.kind == "fault" for e in caller.log)


def test_late_callbacks_arrive_after_the_call(service: Callflow, clock: ManualClock) -> None:
    sim = simulator(service, clock, Faults(delay_callbacks=30))
    caller = sim.call(VSTRS, ADVISER_PHONE, Script().press(f"{ADVISER}#").hang_up())
    sim.run(max_seconds=10)
    session = service.store.get_session(caller.sid)
    assert session is not None and not session.ended
    sim.run()
    session = service.store.get_session(caller.sid)
    assert session is not None and session.ended


class FlakyTransport:
    """Refuses the first ``failures`` connections, then passes requests on."""

    def __init__(self, inner: WsgiTransport, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        timeout: float,
    ) -> HttpResult:
        if self.failures > 0:
            self.failures -= 1
            raise TransportError("connection refused", connect=True)
        return self.inner.request(method, url, params, headers, timeout)


def test_twilio_retries_a_refused_connection_once(service: Callflow, clock: ManualClock) -> None:
    app = create_app({"CALLFLOW_SERVICE": service})
    sim = simulator(service, clock, transport=FlakyTransport(WsgiTransport(app), failures=1))
    caller = sim.call(VSTRS, ADVISER_PHONE, Script().hang_up())
    sim.run()
    assert caller.heard()[0].startswith("Welcome") and sim.errors == []


def test_two_refusals_are_an_application_error(service: Callflow, clock: ManualClock) -> None:
    app = create_app({"CALLFLOW_SERVICE": service})
    sim = simulator(service, clock, transport=FlakyTransport(WsgiTransport(app), failures=2))
    caller = sim.call(VSTRS, ADVISER_PHONE, Script().hang_up())
    sim.run()
    assert [code for _, code, _ in sim.errors] == [11205]
    assert "application error" in caller.heard()[-1]


def test_many_calls_at_once(service: Callflow, clock: ManualClock) -> None:
    sim = simulator(service, clock)
    for n in range(5):
        enrol(service, number=f"50{n:02d}")
    callers = [
        sim.call(
            VSTRS,
            f"+4416329601{n:02d}",
            Script().press(f"50{n:02d}#").press(f"{PIN}#").answer(ANSWERS).hang_up(5),
        )
        for n in range(5)
    ]
    sim.run()
    for caller in callers:
        assert any("You are verified" in text for text in caller.heard()), caller.transcript()


# -- over HTTP, against gunicorn


def test_a_whole_call_over_http_against_gunicorn(gunicorn: tuple[str, dict[str, str]]) -> None:
    base, env = gunicorn
    settings = Settings.from_env(env)
    service = Callflow(settings)
    enrol(service)
    sim = Simulator(HttpTransport(), AUTH_TOKEN)
    sim.configure_number(VSTRS, f"{base}/voice/incoming", status_callback=f"{base}/voice/status")
    caller = sim.call(VSTRS, ADVISER_PHONE, verified_script().hang_up(after=30))
    sim.run()
    assert sim.errors == [], sim.transcript()
    assert any("You are verified as calling from Tax Aid" in text for text in caller.heard())
    session = service.store.get_session(caller.sid)
    assert session is not None and session.ended and session.verified is not None
    # Two workers served the one call: no difference to the caller.
    assert len([r for r in sim.requests if r.status == 200]) >= 5
