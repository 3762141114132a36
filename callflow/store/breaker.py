"""A circuit breaker for the store client.

When Redis stops answering, every webhook would otherwise spend a whole socket timeout
finding that out, and pile up threads while it does. After ``threshold`` consecutive
failures to reach Redis the breaker opens: calls fail at once (StoreUnavailable, so the
caller hears the apology straight away) for ``cooldown`` seconds. Then one call is let
through as a probe (half-open); if it reaches Redis the breaker closes, if not it opens
again for another cooldown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

from ..errors import StoreUnavailable

log = logging.getLogger(__name__)

BREAKER_OPEN = Gauge(
    "callflow_store_breaker_open",
    "1 while the store's circuit breaker is open (Redis unreachable), else 0",
    multiprocess_mode="max",
)
BREAKER_TRIPS = Counter(
    "callflow_store_breaker_trips_total", "Times the store's circuit breaker opened"
)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1 or cooldown <= 0:
            raise ValueError("the breaker needs threshold >= 1 and cooldown > 0")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._listeners: list[Callable[[], None]] = []

    def on_recover(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the first success after any failure (the store is back).

        It runs on the thread whose call succeeded, after that call; what it does with the
        store goes through the breaker like any other call.
        """
        self._listeners.append(callback)

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return CLOSED
            if self._clock() - self._opened_at < self.cooldown or self._probing:
                return OPEN
            return HALF_OPEN

    def before(self) -> None:
        """Raise StoreUnavailable at once while open; let one probe through when half-open."""
        if self._opened_at is None:  # closed: the common case needs no lock
            return
        with self._lock:
            if self._opened_at is None:
                return
            waited = self._clock() - self._opened_at
            if waited < self.cooldown:
                raise StoreUnavailable(
                    f"Redis circuit open (retrying in {self.cooldown - waited:.1f}s)"
                )
            if self._probing:
                raise StoreUnavailable("Redis circuit half-open; a probe is under way")
            self._probing = True

    def success(self) -> None:
        """Redis answered (with a result or a Redis error: either way it is there)."""
        if not self._failures and self._opened_at is None:  # nothing to reset: no lock
            return
        with self._lock:
            recovered = self._failures > 0
            if self._opened_at is not None:
                log.warning("store: Redis answers again; circuit closed")
                BREAKER_OPEN.set(0)
            self._failures = 0
            self._opened_at = None
            self._probing = False
        if recovered:
            for listener in self._listeners:
                try:
                    listener()
                except Exception:  # one listener's trouble must not fail the call that succeeded
                    log.exception("store: a recovery listener failed")

    def failure(self) -> None:
        """Redis could not be reached or did not answer in time."""
        with self._lock:
            self._failures += 1
            was_probe = self._probing
            self._probing = False
            if was_probe or (self._opened_at is None and self._failures >= self.threshold):
                if self._opened_at is None:
                    BREAKER_TRIPS.inc()
                    log.error(
                        "store: %d failures in a row reaching Redis; circuit open for %.1fs",
                        self._failures,
                        self.cooldown,
                    )
                self._opened_at = self._clock()
                BREAKER_OPEN.set(1)
