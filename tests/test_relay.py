"""Relay UK calls: marked by the relay number's Voice URL (?relay=1) or the relay platform's
caller IDs; longer waits, silences that use no tries, a keyed question, and the flag on
the call record, the hand-off, the grant and every audit entry of the call."""

from __future__ import annotations

from random import Random
from typing import Any

import pytest

from callflow.clock import ManualClock
from callflow.service import Callflow
from callflow.simulator import Leg, Script
from callflow.store import Store
from tests.conftest import ADVISER, PIN, Caller, enrol, make_settings
from tests.rigs import AGENT, ANSWERS, TEAM_FIRST, VSTRS, Rig
from webhooks import create_app

RELAY_PLATFORM = "+441632960777"


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    return Rig(store, clock)


def relay_caller(rig: Rig) -> Leg:
    number = rig.sim.numbers[VSTRS]
    rig.sim.configure_number(
        VSTRS, f"{number.voice_url}?relay=1", status_callback=number.status_callback
    )
    script = Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(ANSWERS).hang_up(after=5000)
    caller = rig.sim.call(VSTRS, "+441632960001", script)
    assert rig.sim.run_until(
        lambda: (rig.svc.vstrs.get(caller.sid) or {}).get("state") == "with_agent"
    )
    return caller


def test_a_relay_call_is_flagged_through_to_the_grant_and_the_audit(rig: Rig) -> None:
    caller = relay_caller(rig)
    heard = [e.text for e in caller.log if e.kind == "hears"]
    assert heard[0].startswith("This call is through Relay UK")
    record = rig.svc.vstrs.get(caller.sid)
    assert record is not None and record["relay"] is True
    rig.specialist(TEAM_FIRST, Script().press(f"{AGENT}#").press("1").hang_up(after=5000))
    handoff: dict[str, Any] = rig.request(caller).get_json()
    assert handoff["relay"] is True, "the agent's view says a relay assistant is there"
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "briefing")
    rig.api.post(f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/complete", headers=rig.auth())
    grant = rig.grant(caller)
    assert grant["authorised"] and grant["grant"]["relay"] is True
    entries = [e for e in rig.svc.audit.entries() if e.get("call_sid") == caller.sid]
    verification = [e for e in entries if e["kind"].startswith("verification.")]
    assert verification and all(e.get("relay") is True for e in verification)
    (issued,) = [e for e in entries if e["kind"] == "grant.issued"]
    assert issued["relay"] is True and issued["language"] == "en-GB"


def test_an_ordinary_call_is_not_flagged(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    assert rig.svc.vstrs.get(caller.sid)["relay"] is False
    assert not any(e.get("relay") for e in rig.svc.audit.entries())


def test_the_relay_platforms_numbers_mark_a_call_and_it_waits_longer(
    store: Store, clock: ManualClock
) -> None:
    svc = Callflow(
        make_settings(relay_numbers=(RELAY_PLATFORM,)), store=store, clock=clock, rng=Random(3)
    )
    enrol(svc)
    client = create_app({"CALLFLOW_SERVICE": svc}).test_client()
    ordinary = Caller(client)
    ordinary.start()
    assert ordinary.last is not None
    (gather,) = ordinary.last.iter("Gather")
    assert gather.get("timeout") == "8"
    relay = Caller(client, from_number=RELAY_PLATFORM)
    relay.start()
    assert relay.last is not None
    (gather,) = relay.last.iter("Gather")
    assert gather.get("timeout") == "24", "three times the flow's 8 seconds"
    assert relay.heard[0].startswith("This call is through Relay UK")
    # Silence after silence: a relay call is not ended by them (an ordinary one after 3).
    for _ in range(5):
        relay.wait()
    assert relay.last is not None and relay.last.find("Gather") is not None
    assert not any("We have not been able to verify you" in said for said in relay.heard)
    for _ in range(3):
        ordinary.wait()
    assert any("We have not been able to verify you" in said for said in ordinary.heard)
