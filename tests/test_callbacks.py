"""Call-backs owed to callers no agent could take: kept in the order the callers first
rang, and shown to every agent (issue 17, the first part of call-backs)."""

from __future__ import annotations

import pytest

from callflow.access import Viewer
from callflow.clock import ManualClock
from callflow.desks import AgentDesk
from callflow.simulator import Leg, Script
from callflow.store import Store
from tests.conftest import ADVISER, PIN, enrol
from tests.simulator.test_handoffs import AGENT, ANSWERS, VSTRS, Rig


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    made = Rig(store, clock)
    made.svc.staff.set_availability(AGENT, "away", clock.now())  # nobody to take a call
    enrol(made.svc, "2002", "135792", "litrg")
    return made


def waiting_caller(rig: Rig, adviser: str, pin: str, number: str) -> Leg:
    script = Script().press(f"{adviser}#").press(f"{pin}#").answer(ANSWERS).hang_up(after=5000)
    caller = rig.sim.call(VSTRS, number, script)
    assert rig.sim.run_until(lambda: rig.svc.vstrs.get(caller.sid) is not None)
    return caller


def test_callers_nobody_took_wait_for_a_call_back_in_the_order_they_rang(
    rig: Rig, clock: ManualClock
) -> None:
    first = waiting_caller(rig, ADVISER, PIN, "+441632960001")
    rig.sim.advance(30)
    second = waiting_caller(rig, "2002", "135792", "+441632960002")
    rig.sim.advance(rig.svc.settings.agent_wait_seconds + 60)
    assert rig.svc.vstrs.get(first.sid)["callback_noted"]
    assert rig.svc.vstrs.get(second.sid)["callback_noted"]
    state = AgentDesk(rig.svc).state(Viewer("vstrs_agent", sees_id=AGENT))
    assert len(state["callbacks"]) == 2
    arrived = [c["arrived_at"] for c in state["callbacks"]]
    assert arrived == sorted(arrived), "their place: when they first rang"
    assert arrived[0] == rig.svc.vstrs.get(first.sid)["arrived_at"] < rig.svc.vstrs.get(first.sid)["waiting_since"]
    assert {c["organisation_name"] for c in state["callbacks"]} == {
        "Tax Aid",
        "Low Incomes Tax Reform Group",
    }
    assert all("caller_number" not in c for c in state["callbacks"]), "never the number"
    kinds = [e["kind"] for e in rig.svc.audit.entries()]
    assert kinds.count("agent.none_available") == 2
