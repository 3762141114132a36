"""Whole VSTRS calls driven by the simulator: in-process, with faults, and over HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from random import Random
from typing import Any

import pytest
from twilio.rest import Client

from callflow.clock import ManualClock
from callflow.config import Settings
from callflow.service import Callflow
from callflow.simulator import Callee, Faults, HttpTransport, Script, Simulator, WsgiTransport
from callflow.simulator.rest import RestApi, SimulatorHttpClient
from callflow.simulator.transport import HttpResult, TransportError
from callflow.store import Store
from tests.conftest import ADVISER, AUTH_TOKEN, BASE_URL, PIN, enrol, make_settings
from webhooks import create_app

VSTRS = "+441632960999"
ADVISER_PHONE = "+441632960001"
ANSWERS = {"first school": "Hill Top", "colour": "Blue"}


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> tuple[Simulator, Callflow]:
    """The service and the simulator in this process, each reaching the other."""
    sim = Simulator(None, AUTH_TOKEN, clock=clock)
    client = Client(sim.account_sid, AUTH_TOKEN, http_client=SimulatorHttpClient(RestApi(sim)))
    svc = Callflow(
        make_settings(agent_wait_seconds=120),
        store=store,
        clock=clock,
        rng=Random(11),
        twilio_client=client,
    )
    enrol(svc)
    sim.transport = WsgiTransport(create_app({"CALLFLOW_SERVICE": svc}))
    sim.configure_number(
        VSTRS, f"{BASE_URL}/voice/incoming", status_callback=f"{BASE_URL}/voice/status"
    )
    return sim, svc


@pytest.fixture
def service(rig: tuple[Simulator, Callflow]) -> Callflow:
    return rig[1]


def simulator(
    rig: tuple[Simulator, Callflow], faults: Faults | None = None, wrap: Any = None
) -> Simulator:
    """The rig's simulator, with faults or a transport wrapper."""
    sim, _ = rig
    if faults is not None:
        sim.faults = faults
    if wrap is not None:
        sim.transport = wrap(sim.transport)
    return sim


def add_agent(
    sim: Simulator,
    svc: Callflow,
    sees_id: str,
    *,
    answer: str = "answered",
    after: float = 5,
    talk: float = 60,
) -> str:
    """An available VSTRS agent on a client identity, answering as told."""
    reach = f"client:agent_{sees_id}"
    svc.staff.add_agent(sees_id, f"Agent {sees_id}", reach, svc.clock.now(), by="tests")
    svc.staff.set_availability(sees_id, "available", svc.clock.now())
    sim.add_callee(reach, Callee(answer, after=after, script=Script().hang_up(after=talk)))  # type: ignore[arg-type]
    return reach


def verified_script() -> Script:
    return Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(ANSWERS)


def audit_kinds(svc: Callflow, call_sid: str) -> list[tuple[str, str, str]]:
    return [
        (e["kind"], e.get("agent", ""), e.get("outcome", ""))
        for e in svc.audit.entries()
        if e["call_sid"] == call_sid and e["kind"].startswith(("agent.", "call."))
    ]


def test_verified_caller_is_connected_to_the_longest_idle_agent(
    rig: tuple[Simulator, Callflow],
) -> None:
    sim, svc = rig
    add_agent(sim, svc, "200001", talk=60)
    svc.clock.advance(1)  # type: ignore[attr-defined]
    add_agent(sim, svc, "200002", talk=60)
    caller = sim.call(VSTRS, ADVISER_PHONE, verified_script().hang_up(after=600).hang_up(after=600))
    sim.run()
    assert "You are verified as calling from Tax Aid" in " ".join(caller.heard())
    record = svc.vstrs.get(caller.sid)
    assert record is not None
    assert record["agent"]["sees_id"] == "200001", "the agent idle the longest is rung first"
    assert record["agent"]["left_at"] is not None and record["state"] == "ended"
    assert audit_kinds(svc, caller.sid)[:2] == [
        ("agent.ringing", "200001", "ringing"),
        ("agent.connected", "200001", "connected"),
    ]
    assert caller.heard()[-1].startswith("The V S T R S agent has left the call")
    assert sim.conferences[f"vstrs-{caller.sid}"].status == "completed"
    assert svc.staff.idle_agents(svc.clock.now())[0].sees_id == "200002", (
        "200001 was just on a call: now the least idle"
    )
    assert sim.errors == []


def test_an_agent_who_does_not_answer_is_passed_over(rig: tuple[Simulator, Callflow]) -> None:
    sim, svc = rig
    add_agent(sim, svc, "200001", answer="no-answer")
    svc.clock.advance(1)  # type: ignore[attr-defined]
    add_agent(sim, svc, "200002", talk=30)
    caller = sim.call(VSTRS, ADVISER_PHONE, verified_script().hang_up(after=600).hang_up(after=600))
    sim.run()
    assert audit_kinds(svc, caller.sid)[:4] == [
        ("agent.ringing", "200001", "ringing"),
        ("agent.no_answer", "200001", "no-answer"),
        ("agent.ringing", "200002", "ringing"),
        ("agent.connected", "200002", "connected"),
    ]
    record = svc.vstrs.get(caller.sid)
    assert record is not None and record["agent"]["sees_id"] == "200002"


def test_no_agent_free_ends_politely_with_a_callback_note(rig: tuple[Simulator, Callflow]) -> None:
    sim, svc = rig
    add_agent(sim, svc, "200001", answer="busy", after=2)
    caller = sim.call(VSTRS, ADVISER_PHONE, verified_script().hang_up(after=900))
    sim.run()
    assert (
        caller.heard().count("Thank you for holding. A V S T R S agent will be with you shortly.")
        >= 2
    )
    assert "You keep your place: we will call you back on the number your organisation" in (
        caller.heard()[-1]
    )
    note = svc.callbacks.get(caller.sid)
    assert (
        note is not None and note["adviser_number"] == ADVISER and note["status"] == "to_call_back"
    )
    kinds = [k for k, _, _ in audit_kinds(svc, caller.sid)]
    assert "agent.none_available" in kinds and kinds.count("agent.ringing") >= 2
    assert caller.log[-1].at >= 120


def test_the_caller_hangs_up_while_the_agent_rings(rig: tuple[Simulator, Callflow]) -> None:
    sim, svc = rig
    add_agent(sim, svc, "200001", after=15)
    caller = sim.call(VSTRS, ADVISER_PHONE, verified_script().hang_up(after=3))
    sim.run()
    agent_leg = next(leg for leg in sim.legs.values() if leg.to == "client:agent_200001")
    assert agent_leg.status == "completed" and agent_leg.answered_at is None
    record = svc.vstrs.get(caller.sid)
    assert record is not None and record["state"] == "ended" and record["agent"] is None
    assert svc.staff.idle_agents(svc.clock.now())[0].sees_id == "200001", "the agent is free again"


def test_one_agent_two_callers(rig: tuple[Simulator, Callflow]) -> None:
    sim, svc = rig
    add_agent(sim, svc, "200001", talk=40)
    first = sim.call(VSTRS, ADVISER_PHONE, verified_script().hang_up(after=600).hang_up(after=600))
    sim.advance(5)
    second = sim.call(
        VSTRS, "+441632960002", verified_script().hang_up(after=600).hang_up(after=600)
    )
    sim.run()
    first_record, second_record = svc.vstrs.get(first.sid), svc.vstrs.get(second.sid)
    assert first_record is not None and second_record is not None
    assert first_record["agent"]["sees_id"] == second_record["agent"]["sees_id"] == "200001"
    assert second_record["agent"]["joined_at"] >= first_record["agent"]["left_at"], (
        "never two calls at once"
    )


def test_away_and_inactive_agents_are_not_rung(rig: tuple[Simulator, Callflow]) -> None:
    sim, svc = rig
    add_agent(sim, svc, "200001")
    add_agent(sim, svc, "200002")
    svc.staff.set_availability("200001", "away", svc.clock.now())
    svc.staff.set_agent_active("200002", False, by="tests")
    caller = sim.call(VSTRS, ADVISER_PHONE, verified_script().hang_up(after=900))
    sim.run()
    assert not [k for k, _, _ in audit_kinds(svc, caller.sid) if k == "agent.ringing"]
    assert "call you back" in caller.heard()[-1]


def test_wrong_pins_end_the_call(rig: tuple[Simulator, Callflow], service: Callflow) -> None:
    sim = simulator(rig)
    script = Script()
    for _ in range(3):
        script.press(f"{ADVISER}#").press("135792#")
    caller = sim.call(VSTRS, ADVISER_PHONE, script)
    sim.run()
    assert caller.heard()[-1].startswith("We have not been able to verify you")
    assert caller.status == "completed"
    assert service.store.lock_status(ADVISER, service.clock.now()).failures == 3


def test_silence_at_every_prompt(rig: tuple[Simulator, Callflow], service: Callflow) -> None:
    sim = simulator(rig)
    caller = sim.call(VSTRS, ADVISER_PHONE, Script().silent().silent().silent())
    sim.run()
    assert caller.heard().count("Sorry, we did not receive anything.") == 3
    assert caller.heard()[-1].startswith("We have not been able to verify you")


def test_no_agent_answers_and_the_caller_gives_up(
    rig: tuple[Simulator, Callflow], service: Callflow
) -> None:
    sim = simulator(rig)
    caller = sim.call(VSTRS, ADVISER_PHONE, verified_script().hang_up(after=90))
    sim.run()
    assert caller.status == "completed"
    session = service.store.get_session(caller.sid)
    assert session is not None and session.ended and session.state == "connect"
    record = service.vstrs.get(caller.sid)
    assert record is not None and record["state"] == "ended"
    # Whichever callback came first: the caller's status or their conference ending.
    assert record["end_reason"] in {"completed", "participant-with-end-conference-on-exit-left"}


def test_lockout_expires_after_thirty_minutes(
    rig: tuple[Simulator, Callflow], service: Callflow, clock: ManualClock, store: Store
) -> None:
    if store.kind != "memory":
        pytest.skip(
            "Redis keeps its own time: expiry on the virtual clock is for the embedded store"
        )
    sim = simulator(rig)
    guard = service.settings.guard
    for n in range(guard.adviser_threshold // 3):  # strangers' numbers, three tries each
        script = Script()
        for _ in range(3):
            script.press(f"{ADVISER}#").press("135792#")
        sim.call(VSTRS, f"+4477009{n:05d}", script)
        sim.run()
    assert service.store.lock_status(ADVISER, service.clock.now()).locked_seconds > 0
    refused = sim.call(VSTRS, "+447700999999", verified_script().hang_up(after=5))
    sim.run()
    assert not any("You are verified" in text for text in refused.heard())
    clock.advance(31 * 60)
    caller = sim.call(VSTRS, "+447700999998", verified_script().hang_up(after=5))
    sim.run()
    assert any("You are verified" in text for text in caller.heard())


def test_duplicate_webhooks_change_nothing(
    rig: tuple[Simulator, Callflow], service: Callflow
) -> None:
    sim = simulator(rig, Faults(duplicate_webhooks=True))
    caller = sim.call(VSTRS, ADVISER_PHONE, verified_script().hang_up(after=5))
    sim.run()
    assert sim.errors == [], "every duplicate got the same TwiML"
    assert any("You are verified" in text for text in caller.heard())
    kinds = [e["kind"] for e in service.audit.entries() if e["call_sid"] == caller.sid]
    assert kinds == ["verification.pin", "verification.verified", "call.ended"]
    assert sum(1 for r in sim.requests if r.duplicate_of is not None) >= 4


def test_a_lost_completed_callback_leaves_the_session_to_expire(
    rig: tuple[Simulator, Callflow], service: Callflow
) -> None:
    sim = simulator(rig, Faults(lose_callbacks={"completed"}))
    caller = sim.call(VSTRS, ADVISER_PHONE, Script().press(f"{ADVISER}#").hang_up())
    sim.run()
    session = service.store.get_session(caller.sid)
    assert session is not None and not session.ended
    assert any(e.kind == "fault" for e in caller.log)


def test_late_callbacks_arrive_after_the_call(
    rig: tuple[Simulator, Callflow], service: Callflow
) -> None:
    sim = simulator(rig, Faults(delay_callbacks=30))
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


def test_twilio_retries_a_refused_connection_once(
    rig: tuple[Simulator, Callflow], service: Callflow
) -> None:
    sim = simulator(rig, wrap=lambda inner: FlakyTransport(inner, failures=1))
    caller = sim.call(VSTRS, ADVISER_PHONE, Script().hang_up())
    sim.run()
    assert caller.heard()[0].startswith("Welcome") and sim.errors == []


def test_two_refusals_are_an_application_error(
    rig: tuple[Simulator, Callflow], service: Callflow
) -> None:
    sim = simulator(rig, wrap=lambda inner: FlakyTransport(inner, failures=2))
    caller = sim.call(VSTRS, ADVISER_PHONE, Script().hang_up())
    sim.run()
    assert [code for _, code, _ in sim.errors] == [11205]
    assert "application error" in caller.heard()[-1]


def test_many_calls_at_once(rig: tuple[Simulator, Callflow], service: Callflow) -> None:
    sim = simulator(rig)
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


def test_metrics_add_up_across_gunicorn_workers(gunicorn: tuple[str, dict[str, str]]) -> None:
    import urllib.request

    base, env = gunicorn
    enrol(Callflow(Settings.from_env(env)))
    sim = Simulator(HttpTransport(), AUTH_TOKEN)
    sim.configure_number(VSTRS, f"{base}/voice/incoming", status_callback=f"{base}/voice/status")
    for n in range(6):
        sim.call(VSTRS, f"+4416329604{n:02d}", Script().press(f"{ADVISER}#").hang_up())
    sim.run()
    scrape = urllib.request.Request(  # noqa: S310
        f"{base}/metrics", headers={"Authorization": f"Bearer {env['CALLFLOW_METRICS_TOKEN']}"}
    )
    page = urllib.request.urlopen(scrape, timeout=10).read().decode()  # noqa: S310
    line = next(
        x for x in page.splitlines() if x.startswith('callflow_calls_total{flow="vstrs_inbound"}')
    )
    assert float(line.rsplit(" ", 1)[1]) == 6.0, "six calls, whichever worker took each"
