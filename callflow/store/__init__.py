"""Where call sessions, the directory, lockout counters, audit entries and flows are kept.

:class:`Store` is the interface; :class:`MemoryStore` is the embedded default (one
process only) and :class:`RedisStore` the real one. :func:`open_store` picks by settings.
"""

from __future__ import annotations

from .base import Lease, LockStatus, Store
from .breaker import CircuitBreaker
from .memory import MemoryStore
from .redis import RedisStore

__all__ = ["Lease", "LockStatus", "MemoryStore", "Store", "open_store"]


def open_store(
    redis_url: str | None,
    *,
    socket_timeout: float = 2.0,
    breaker_threshold: int = 5,
    breaker_cooldown: float = 5.0,
) -> Store:
    """The Redis store for ``redis_url``, or the in-memory store when it is None."""
    if not redis_url:
        return MemoryStore()

    breaker = CircuitBreaker(breaker_threshold, breaker_cooldown)
    return RedisStore.from_url(redis_url, socket_timeout=socket_timeout, breaker=breaker)
