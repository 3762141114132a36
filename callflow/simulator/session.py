"""Ready-made simulator set-ups for ``callflow call``, ``callflow demo`` and tests.

In process, the service and the simulator are wired both ways: the simulator's webhooks go
straight into the web app, and the service's Twilio REST calls go through the real
``twilio.rest.Client`` into the simulator.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable
from typing import TextIO

from twilio.rest import Client

from ..clock import ManualClock
from ..config import Settings
from ..demo import (
    DEMO_ANSWERS,
    DEMO_NUMBER,
    DEMO_PIN,
    add_demo_adviser,
    add_demo_agent,
    add_demo_team,
)
from ..links import ServiceLinks
from ..sandbox import web_app_factory
from ..service import Callflow
from ..store import MemoryStore
from .core import Leg, LogEntry, Simulator
from .rest import RestApi, SimulatorHttpClient
from .script import Script, Step
from .transport import HttpTransport, WsgiTransport

VSTRS_NUMBER = "+441632960999"
CALLER_NUMBER = "+441632960001"

#: Builds the service given the Twilio client (wired to the simulator) and the virtual clock.
ServiceFactory = Callable[[Client, ManualClock], Callflow]


def http_simulator(base_url: str, auth_token: str) -> Simulator:
    """A simulator calling a running service at ``base_url``."""
    links = ServiceLinks.at(None, base_url)
    sim = Simulator(HttpTransport(), auth_token)
    sim.configure_number(VSTRS_NUMBER, links.voice_url(), status_callback=links.call_status())
    return sim


def in_process(
    make_service: ServiceFactory,
    auth_token: str,
    app_factory: str | None = None,
    start: float | None = None,
) -> tuple[Simulator, Callflow]:
    """A simulator and a service in this process, each reaching the other, on a virtual
    clock that starts now (or at ``start``)."""
    clock = ManualClock(time.time() if start is None else start)
    sim = Simulator(None, auth_token, clock=clock)
    client = Client(sim.account_sid, auth_token, http_client=SimulatorHttpClient(RestApi(sim)))
    service = make_service(client, clock)
    app = web_app_factory(app_factory)({"CALLFLOW_SERVICE": service})
    sim.transport = WsgiTransport(app)
    links = service.links("http://callflow.local")
    sim.configure_number(VSTRS_NUMBER, links.voice_url(), status_callback=links.call_status())
    return sim, service


def demo_rig(agent_after: float = 20.0, talk: float = 90.0) -> tuple[Simulator, Callflow]:
    """The demo: embedded store, the demo adviser, one available VSTRS agent, fresh keys."""
    token = secrets.token_hex(16)

    def make(client: Client, clock: ManualClock) -> Callflow:
        settings = Settings(
            twilio_auth_token=token,
            public_base_url="http://callflow.demo",
            secret_key=secrets.token_bytes(32),
            hash_cost=12,
        ).checked()
        service = Callflow(settings, store=MemoryStore(clock), clock=clock, twilio_client=client)
        add_demo_adviser(service)
        return service

    sim, service = in_process(make, token)
    add_demo_agent(service, sim, answer_after=agent_after, talk=talk)
    add_demo_team(service, sim)
    return sim, service


def demo_script() -> Script:
    """The demo adviser: adviser number, PIN, the security answer, then talk to an agent
    (answering the question in English or in Welsh, whichever is asked)."""
    answers = {
        "first school": DEMO_ANSWERS["first_school"],
        "colour": DEMO_ANSWERS["favourite_colour"],
        "ysgol gyntaf": DEMO_ANSWERS["first_school"],
        "hoff liw": DEMO_ANSWERS["favourite_colour"],
    }
    return (
        Script()
        .press(f"{DEMO_NUMBER}#")
        .press(f"{DEMO_PIN}#")
        .answer(answers)
        .hang_up(600)
        .hang_up(900)
    )


def interactive_asker(stdin: TextIO, stdout: TextIO) -> Callable[[str], Step | None]:
    """Ask the person at the terminal what to do at each gather."""

    def ask(heard: str) -> Step | None:
        stdout.write("  your turn: keys (e.g. 1001#), words, blank for silence, or 'hangup': ")
        stdout.flush()
        line = stdin.readline()
        if not line or line.strip().lower() == "hangup":
            return Step("hangup")
        text = line.strip()
        if not text:
            return Step("silent")
        if all(ch in "0123456789*#" for ch in text):
            return Step("press", text)
        return Step("say", text)

    return ask


def printer(stream: TextIO = sys.stdout) -> Callable[[LogEntry], None]:
    """Print transcript lines as they happen."""

    def show(entry: LogEntry) -> None:
        stream.write(f"{entry}\n")
        stream.flush()

    return show


def nobody_answered(leg: Leg, kinds: list[str] | None = None) -> str | None:
    """What to tell someone whose verified call waited on hold and ended with no agent.

    ``kinds`` are the call's audit entry kinds when the service ran in this process (so
    whether any agent was rung is known); None for a service elsewhere.
    """
    joined = next(
        (e for e in leg.log if e.kind == "conference" and e.text.startswith("joins")), None
    )
    started = any(e.kind == "conference" and e.text.endswith(" starts") for e in leg.log)
    if joined is None or started:
        return None
    waited = (leg.log[-1].at if leg.log else joined.at) - joined.at
    if kinds is None:
        why = (
            "no VSTRS agent joined. Is one available? `callflow agents list` shows who is; "
            "the service's log says why it rang nobody"
        )
    elif "agent.ringing" not in kinds:
        why = (
            "no VSTRS agent was free to ring (none is registered and available: "
            "`callflow agents list`, or --demo-adviser for the demo agent)"
        )
    else:
        rung = kinds.count("agent.ringing")
        why = f"{rung} agent(s) were rung and none answered"
    return f"nobody answered: the caller waited {waited:.0f}s on hold; {why}"
