"""A time budget for the work of one request, so Twilio's 15 seconds are never overrun.

Twilio waits at most 15 seconds for a webhook's answer. A slow Redis can answer every
command just inside the socket timeout and still make a webhook of twenty round trips take
far longer. So a Twilio-facing request sets a budget; the store refuses to start a new
round trip once it is spent (raising StoreUnavailable), and the engine answers with its
polite apology. The worst case is the budget plus one socket timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

_deadline: ContextVar[float | None] = ContextVar("callflow_deadline", default=None)


def start(seconds: float) -> Token[float | None]:
    """Start a budget of ``seconds`` for the current context; give the token to ``stop``."""
    return _deadline.set(time.monotonic() + seconds)


def stop(token: Token[float | None]) -> None:
    _deadline.reset(token)


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    token = start(seconds)
    try:
        yield
    finally:
        stop(token)


def remaining() -> float | None:
    """Seconds left in the current budget, or None when there is none."""
    deadline = _deadline.get()
    if deadline is None:
        return None
    return deadline - time.monotonic()


_operations: ContextVar[int] = ContextVar("callflow_store_operations", default=0)


def count_operation() -> None:
    """One more store operation in this context (a request's trace reports how many)."""
    _operations.set(_operations.get() + 1)


def operations() -> int:
    """Store operations counted so far in this context (take the difference)."""
    return _operations.get()
