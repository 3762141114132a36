"""The call-back worker's pass: call-backs placed in their turn by the fair queue.

A call-back's turn comes when the fair queue (``callflow.queue``), live callers and
call-backs together by when each first rang, offers it a free agent. So the pass needs the
queue of VSTRS calls and the call-backs both, and stands above them: ``VstrsCalls`` reads
the call-backs holding their places; the call-backs never read the calls.
"""

from __future__ import annotations

from .callbacks import Callbacks
from .links import ServiceLinks
from .queue import assign
from .vstrs import VstrsCalls

__all__ = ["CallbackDispatcher"]


class CallbackDispatcher:
    """One pass of the call-back worker (``callflow callbacks run``)."""

    def __init__(self, vstrs: VstrsCalls, callbacks: Callbacks) -> None:
        self.vstrs = vstrs
        self.callbacks = callbacks

    def dispatch(self, links: ServiceLinks) -> list[tuple[str, str]]:
        """Settle lost calls, bring due retries back to their place, ring free agents for
        the live callers the queue offers them, and place every call-back whose turn it
        is. Returns (call-back id, what happened). No call-back is placed while the line
        is closed (callers already waiting are still answered)."""
        callbacks = self.callbacks
        callbacks.beat()
        done = callbacks.settle_and_promote()
        # Live callers first: an agent free since the last pass (after-call work over,
        # say) is rung for the caller the queue offers them, not left to a hold tick.
        self.vstrs.offer_free_agents(links)
        now = callbacks.now()
        if not callbacks.line_open(now):
            return done
        free = callbacks.staff.idle_agents(now)
        if not free:
            return done
        waiting = self.vstrs.waiting(len(free), free=free)
        offered = {w.key for w in waiting if w.kind == "callback"}
        matched = assign(free, waiting)
        for key in sorted(k for k in matched if k in offered):
            placed = callbacks.place_in_turn(key, links)
            if placed is not None:
                done.append(placed)
        return done
