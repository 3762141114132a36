"""The service facade: builds the store, directory, audit, flow library and engine once.

The webhooks and the CLI both start here, so they share one wiring.
"""

from __future__ import annotations

import logging
from random import Random, SystemRandom

from .audit import Audit
from .clock import Clock, SystemClock
from .config import Settings
from .context import Services
from .directory import Directory
from .engine import CallEngine
from .library import FlowLibrary
from .registry import Registry, default_registry
from .secrets import Hasher
from .store import Store, open_store

log = logging.getLogger(__name__)


class Callflow:
    """One process's callflow: settings, store, directory, audit, flows, engine."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        registry: Registry | None = None,
        rng: Random | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.store = store or open_store(
            settings.redis_url, socket_timeout=settings.redis_socket_timeout
        )
        self.registry = registry or default_registry()
        self.hasher = Hasher(settings.secret_key, settings.hash_cost)
        self.audit = Audit(self.store, self.clock)
        self.directory = Directory(self.store, self.hasher)
        self.services = Services(
            settings=settings,
            store=self.store,
            directory=self.directory,
            hasher=self.hasher,
            audit=self.audit,
            clock=self.clock,
            rng=rng or SystemRandom(),
        )
        self.library = FlowLibrary(settings.flows_dir, self.store, self.registry, self.clock)
        self.engine = CallEngine(self.services, self.library)

    @classmethod
    def from_env(cls) -> Callflow:
        """Built from environment variables (see callflow.config)."""
        return cls(Settings.from_env())

    def unlock_adviser(self, number: str, by: str) -> None:
        """Lift an adviser's lockout, and audit who did it."""
        self.directory.require(number)
        self.store.unlock(number)
        self.audit.record("adviser.unlocked", adviser=number, by=by, outcome="unlocked")
