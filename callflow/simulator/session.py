"""Ready-made simulator set-ups for ``callflow call`` and ``callflow demo``."""

from __future__ import annotations

import importlib
import secrets
import sys
from collections.abc import Callable
from typing import Any, TextIO

from ..clock import ManualClock
from ..config import Settings
from ..demo import DEMO_ANSWERS, DEMO_NUMBER, DEMO_PIN, add_demo_adviser
from ..service import Callflow
from ..store import MemoryStore
from .core import LogEntry, Simulator
from .script import Script, Step
from .transport import HttpTransport, WsgiTransport

VSTRS_NUMBER = "+441632960999"
CALLER_NUMBER = "+441632960001"
DEFAULT_APP = "webhooks:create_app"


def load_app_factory(spec: str = DEFAULT_APP) -> Callable[..., Any]:
    """The web app factory named ``module:function`` (loaded by name, as gunicorn does)."""
    module_name, _, attr = spec.partition(":")
    factory: Callable[..., Any] = getattr(
        importlib.import_module(module_name), attr or "create_app"
    )
    return factory


def http_simulator(base_url: str, auth_token: str) -> Simulator:
    """A simulator calling a running service at ``base_url``."""
    base = base_url.rstrip("/")
    sim = Simulator(HttpTransport(), auth_token)
    sim.configure_number(
        VSTRS_NUMBER, f"{base}/voice/incoming", status_callback=f"{base}/voice/status"
    )
    return sim


def in_process_simulator(service: Callflow, app_factory: str = DEFAULT_APP) -> Simulator:
    """A simulator driving the web app in this process, on the service's own clock."""
    app = load_app_factory(app_factory)({"CALLFLOW_SERVICE": service})
    base = service.settings.public_base_url or "http://callflow.local"
    clock = (
        service.clock
        if isinstance(service.clock, ManualClock)
        else ManualClock(service.clock.now())
    )
    sim = Simulator(WsgiTransport(app), service.settings.twilio_auth_token or "", clock=clock)
    sim.configure_number(
        VSTRS_NUMBER, f"{base}/voice/incoming", status_callback=f"{base}/voice/status"
    )
    return sim


def demo_service() -> Callflow:
    """The service on the embedded store with the demo adviser, its own keys and a virtual clock."""
    import time

    clock = ManualClock(time.time())
    settings = Settings(
        twilio_auth_token=secrets.token_hex(16),
        public_base_url="http://callflow.demo",
        secret_key=secrets.token_bytes(32),
        hash_cost=12,
    ).checked()
    service = Callflow(settings, store=MemoryStore(clock), clock=clock)
    add_demo_adviser(service)
    return service


def demo_script() -> Script:
    """The demo adviser: adviser number, PIN, the security answer, then talk to an agent."""
    answers = {
        "first school": DEMO_ANSWERS["first_school"],
        "colour": DEMO_ANSWERS["favourite_colour"],
    }
    return (
        Script()
        .press(f"{DEMO_NUMBER}#")
        .press(f"{DEMO_PIN}#")
        .answer(answers)
        .hang_up(300)
        .hang_up(600)
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
