"""The demo adviser: known, published secrets for trying the service on the embedded store.

Only ever added to the embedded in-memory store (``callflow serve --demo-adviser``),
never to Redis: these secrets are in the README.
"""

from __future__ import annotations

from typing import Any

from .service import Callflow
from .simulator import Callee, Script, Step

DEMO_NUMBER = "1001"
DEMO_PIN = "246810"
DEMO_ANSWERS = {"first_school": "Hill Top", "favourite_colour": "blue"}
DEMO_ADVISER_TEXT = (
    f"demo adviser {DEMO_NUMBER} (Tax Aid): PIN {DEMO_PIN}, "
    "first school 'Hill Top', favourite colour 'blue' (embedded store only)"
)


def add_demo_adviser(service: Callflow) -> None:
    """Register the demo adviser on an embedded store."""
    if service.store.kind != "memory":
        raise ValueError("the demo adviser is only for the embedded store")
    now = service.clock.now()
    if service.directory.get(DEMO_NUMBER) is None:
        service.directory.add(
            DEMO_NUMBER, "Sam Demo", "taxaid", consent_to_act=True, now=now, by="demo"
        )
    service.directory.set_pin(DEMO_NUMBER, DEMO_PIN, now, by="demo")
    service.directory.set_answers(DEMO_NUMBER, DEMO_ANSWERS, now, by="demo")


DEMO_AGENT_SEES_ID = "100001"
DEMO_AGENT_CLIENT = "client:demo_agent"


def add_demo_agent(service: Callflow, sim: Any, *, answer_after: float, talk: float) -> None:
    """Register an available demo VSTRS agent who answers (in the simulator) and talks a while."""

    if service.store.kind != "memory":
        raise ValueError("the demo agent is only for the embedded store")
    now = service.clock.now()
    if service.staff.agent(DEMO_AGENT_SEES_ID) is None:
        service.staff.add_agent(DEMO_AGENT_SEES_ID, "Alex Agent", DEMO_AGENT_CLIENT, now, by="demo")
    service.staff.set_availability(DEMO_AGENT_SEES_ID, "available", now)
    sim.add_callee(
        DEMO_AGENT_CLIENT,
        Callee("answered", after=answer_after, script=Script().hang_up(after=talk)),
    )


DEMO_TEAM = "debt_pursuit"
DEMO_TEAM_NUMBER = "+441632960200"
DEMO_SPECIALIST = ("400001", "Kim Specialist", "client:demo_specialist")


def add_demo_team(service: Callflow, sim: Any) -> None:
    """A specialist team with one available specialist, Kim, whose phone is answered: she
    keys the demo agent's SEES ID and accepts."""

    now = service.clock.now()
    if service.staff.team(DEMO_TEAM) is None:
        service.staff.add_team(
            DEMO_TEAM,
            "Debt Pursuit",
            "debts in pursuit",
            [DEMO_TEAM_NUMBER],
            "Mon-Sun 00:00-24:00",
            by="demo",
            nation="none",
        )
    number, name, reach = DEMO_SPECIALIST
    if service.staff.specialist(number) is None:
        service.staff.add_specialist(number, name, DEMO_TEAM, reach, now, by="demo")
    service.staff.set_specialist_availability(number, "available", now)

    def kim(heard: str) -> Any:
        if "SEES I D code" in heard or "cod SEES I D" in heard:
            return Step("press", f"{DEMO_AGENT_SEES_ID}#")
        if "Press 1 to accept" in heard or "Pwyswch 1 i dderbyn" in heard:
            return Step("press", "1")
        return Step("silent")

    sim.add_callee(reach, Callee("answered", after=6, script=Script(patience=3600, ask=kim)))
