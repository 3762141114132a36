"""The sandbox that flow tests, replays and the softphone share: a service of its own on a
fresh embedded store, with the local simulator standing in for Twilio, the web app
between them, and a folder of flows in which the version being tried stands in for its
namesake.

It never names the service or the web app: both factories are handed in by whoever
composes the product (the service hands itself in as the service factory; the web app
factory comes from the caller, or from the package's ``callflow.web`` entry point, which
pyproject.toml points at ``webhooks:create_app``). So this module sits below the service
and below the web layer, and nothing here imports either (ARCHITECTURE.md rule 13).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from random import Random
from typing import Any

from .clock import ManualClock
from .config import Settings
from .errors import CallflowError, FlowValidationError
from .flowspec import Flow, flow_files, parse_flow
from .registry import Registry
from .simulator.core import Simulator
from .simulator.rest import RestApi, SimulatorHttpClient
from .simulator.transport import WsgiTransport
from .store.memory import MemoryStore

__all__ = [
    "WEB_ENTRY_POINT",
    "AppFactory",
    "Sandbox",
    "quiet",
    "web_app_factory",
    "web_app_spec",
]

#: The entry point group and name the web app factory is found under.
WEB_ENTRY_POINT = ("callflow.web", "app")
#: The VSTRS line's number in a sandbox.
SANDBOX_NUMBER = "+441632960999"

#: Builds a service: (settings, store=, clock=, registry=, rng=, twilio_client=, sandbox=).
ServiceFactory = Callable[..., Any]
#: Builds the web app around a service: factory({"CALLFLOW_SERVICE": service}).
AppFactory = Callable[[dict[str, Any]], Any]


def web_app_spec() -> str:
    """The web app factory the installed package declares (the ``callflow.web`` entry
    point), as ``module:function``: what gunicorn is told to run."""
    from importlib.metadata import entry_points

    group, name = WEB_ENTRY_POINT
    found = [e for e in entry_points(group=group) if e.name == name]
    if not found:
        raise CallflowError(
            "the web app's entry point is missing: install the package "
            "(pip install -e .), which declares callflow.web = webhooks:create_app"
        )
    return str(found[0].value)


def web_app_factory(spec: str | None = None) -> AppFactory:
    """The web app factory ``spec`` names (``module:function``; None: the package's entry
    point): how the command line and a service built without one find the web layer."""
    import importlib

    module_name, _, attr = (spec or web_app_spec()).partition(":")
    factory: AppFactory = getattr(importlib.import_module(module_name), attr or "create_app")
    return factory


_QUIET_THREADS: set[int] = set()


class _QuietFilter(logging.Filter):
    """Drops log records from threads running sandboxed calls (their calls are not real)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in _QUIET_THREADS


_QUIET_FILTER = _QuietFilter()


@contextmanager
def quiet() -> Iterator[None]:
    """Sandboxed services' log lines stay out of the real service's log (this thread only)."""
    ident = threading.get_ident()
    for handler in logging.getLogger().handlers:
        if _QUIET_FILTER not in handler.filters:
            handler.addFilter(_QUIET_FILTER)
    _QUIET_THREADS.add(ident)
    try:
        yield
    finally:
        _QUIET_THREADS.discard(ident)


class Sandbox:
    """Makes sandboxed worlds. ``make_service`` builds a service (the product's service
    class); ``make_app`` builds the web app around one (None: the entry point's, found
    when first needed)."""

    def __init__(self, make_service: ServiceFactory, make_app: AppFactory | None = None) -> None:
        self.make_service = make_service
        self._make_app = make_app

    @property
    def make_app(self) -> AppFactory:
        if self._make_app is None:
            self._make_app = web_app_factory()
        return self._make_app

    @contextmanager
    def folder(self, flow: Flow, flows_dir: Path, registry: Registry) -> Iterator[Path]:
        """A folder with every flow of ``flows_dir``, ``flow`` standing in for its
        namesake; removed afterwards."""
        folder = Path(tempfile.mkdtemp(prefix="callflow-sandbox-"))
        try:
            for other in flow_files(flows_dir) if flows_dir.is_dir() else []:
                try:
                    text = other.read_text(encoding="utf-8")
                    if parse_flow(text, str(other), registry).name == flow.name:
                        continue
                except (FlowValidationError, OSError):
                    continue
                shutil.copy(other, folder / other.name)
            (folder / f"{flow.name}.yaml").write_text(flow.source, encoding="utf-8")
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def world(
        self,
        flows_dir: Path,
        registry: Registry,
        *,
        base_url: str = "http://callflow.test",
        start: float | None = None,
        **settings: Any,
    ) -> tuple[Simulator, Any]:
        """A service of its own on a fresh embedded store, serving the flows in
        ``flows_dir``, wired both ways to a simulator on a virtual clock (starting now, or
        at ``start``): a flow test's world, a replayed call's, a softphone call's."""
        from twilio.rest import Client  # the REST client: an optional weight, loaded here

        token = secrets.token_hex(16)
        checked = Settings(
            twilio_auth_token=token,
            public_base_url=base_url,
            secret_key=secrets.token_bytes(32),
            hash_cost=10,
            flows_dir=flows_dir,
            **settings,
        ).checked()
        clock = ManualClock(time.time() if start is None else start)
        sim = Simulator(None, token, clock=clock)
        client = Client(sim.account_sid, token, http_client=SimulatorHttpClient(RestApi(sim)))
        service = self.make_service(
            checked,
            store=MemoryStore(clock),
            clock=clock,
            registry=registry,
            rng=Random(7),
            twilio_client=client,
            sandbox=True,
        )
        sim.transport = WsgiTransport(self.make_app({"CALLFLOW_SERVICE": service}))
        links = service.links()
        sim.configure_number(SANDBOX_NUMBER, links.voice_url(), status_callback=links.call_status())
        return sim, service
