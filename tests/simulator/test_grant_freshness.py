"""Bounded freshness: "authorised" is never based on leg liveness older than
CALLFLOW_GRANT_FRESHNESS seconds. Lost callbacks, an unreachable Twilio and a slow one all
answer "not authorised" rather than an authority the call may no longer carry."""

from __future__ import annotations

import time
from typing import Any

import pytest

from callflow.clock import ManualClock
from callflow.handoff import CANNOT_CONFIRM
from callflow.simulator import Faults
from callflow.simulator.rest import RestApi
from callflow.store import Store
from tests.rigs import Rig


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    return Rig(store, clock)


def rest_api(rig: Rig) -> RestApi:
    api: RestApi = rig.svc.twilio().client.http_client.api
    return api


def fetches(rig: Rig, calls: list[str]) -> None:
    """Count the leg fetches the service makes (GET .../Calls/CA...)."""
    api = rest_api(rig)
    original = api.handle

    def counting(method: str, path: str, form: Any, auth: Any) -> Any:
        if method == "GET" and "/Calls/CA" in path:
            calls.append(path.rsplit("/", 1)[-1].removesuffix(".json"))
        return original(method, path, form, auth)

    api.handle = counting  # type: ignore[method-assign]


def twilio_down(rig: Rig) -> None:
    api = rest_api(rig)

    def refuse(method: str, path: str, form: Any, auth: Any) -> Any:
        raise OSError("connection refused")

    api.handle = refuse  # type: ignore[method-assign]


def grant_id(rig: Rig, caller: Any) -> str:
    record = rig.svc.vstrs.get(caller.sid)
    assert record is not None
    handoff = rig.svc.handoffs.get(record["handoffs"][-1])
    assert handoff is not None
    return str(handoff["grant_id"])


def test_a_fresh_confirmation_is_used_and_a_stale_one_asks_twilio_for_both_legs(rig: Rig) -> None:
    caller, handoff = rig.taken_over()
    calls: list[str] = []
    fetches(rig, calls)
    first = rig.grant(caller)
    assert first["authorised"] and first["confirmed_live_at"] is not None
    assert rig.svc.clock.now() - first["confirmed_live_at"] <= 10
    rig.sim.advance(rig.svc.settings.grant_freshness_seconds + 1)
    calls.clear()
    second = rig.grant(caller)
    assert second["authorised"]
    assert sorted(calls) == sorted([caller.sid, rig.handoff(handoff["id"])["specialist_call_sid"]])
    assert second["confirmed_live_at"] == pytest.approx(rig.svc.clock.now())
    calls.clear()
    assert rig.grant(caller)["authorised"] and calls == [], "a fresh confirmation is reused"


def test_lost_hang_up_callbacks_end_the_grant_at_the_next_question(rig: Rig) -> None:
    caller, _ = rig.taken_over()
    rig.sim.faults = Faults(lose_callbacks={"completed", "conference-end", "participant-leave"})
    rig.sim.hang_up(caller)
    rig.sim.run()
    rig.sim.advance(rig.svc.settings.grant_freshness_seconds + 1)
    answer = rig.grant(caller)  # no sweep has run
    assert answer["authorised"] is False
    assert "the caller's call leg ended" in answer["reason"]
    assert ("grant.ended", "checked_caller_leg_completed") in rig.kinds(caller)
    assert rig.svc.handoffs.sweep() == []


def test_twilio_unreachable_means_not_authorised_and_the_grant_waits(rig: Rig) -> None:
    caller, _ = rig.taken_over()
    rig.sim.advance(rig.svc.settings.grant_freshness_seconds + 1)
    api = rest_api(rig)
    working = api.handle
    twilio_down(rig)
    answer = rig.grant(caller)
    assert answer == {
        "authorised": False,
        "reason": CANNOT_CONFIRM,
        "confirmed_live_at": answer["confirmed_live_at"],
        "grant": answer["grant"],
    }
    assert rig.svc.store.get_doc("grants", grant_id(rig, caller))["ended_at"] is None  # type: ignore[index]
    api.handle = working  # type: ignore[method-assign]
    assert rig.grant(caller)["authorised"], "Twilio answers again: the call is live"


def test_a_slow_twilio_is_not_waited_for_beyond_the_budget(store: Store, clock: ManualClock) -> None:
    rig = Rig(store, clock, grant_check_budget_seconds=0.3)
    assert rig.svc.handoffs.grants.settings.grant_check_budget_seconds == 0.3
    caller, _ = rig.taken_over()
    rig.sim.advance(rig.svc.settings.grant_freshness_seconds + 1)
    api = rest_api(rig)
    original = api.handle

    def slow(method: str, path: str, form: Any, auth: Any) -> Any:
        time.sleep(1.5)
        return original(method, path, form, auth)

    api.handle = slow  # type: ignore[method-assign]
    started = time.monotonic()
    answer = rig.grant(caller)
    elapsed = time.monotonic() - started
    api.handle = original  # type: ignore[method-assign]
    assert answer["authorised"] is False and answer["reason"] == CANNOT_CONFIRM
    assert elapsed < 1.2, elapsed


def test_the_sweep_raises_doubt_when_it_cannot_check_a_grant(rig: Rig) -> None:
    caller, _ = rig.taken_over()
    api = rest_api(rig)
    working = api.handle
    twilio_down(rig)
    assert rig.svc.handoffs.sweep() == []
    grant = rig.svc.store.get_doc("grants", grant_id(rig, caller))
    assert grant is not None and grant["unconfirmed_since"] and grant["confirmed_live_at"] is None
    assert rig.grant(caller)["authorised"] is False
    rig.svc.handoffs.sweep()
    assert rig.kinds(caller).count(("grant.unconfirmed", "cannot_check")) == 1, "audited once"
    api.handle = working  # type: ignore[method-assign]
    assert rig.grant(caller)["authorised"]
    grant = rig.svc.store.get_doc("grants", grant_id(rig, caller))
    assert grant is not None and grant["unconfirmed_since"] is None
