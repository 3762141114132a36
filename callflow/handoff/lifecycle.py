"""A hand-off's lifecycle: its states and the events that move it, declared once.

Every change to a hand-off (callflow.handoff.service) names one of these events and asks
this table whether it may happen from the state the hand-off is in; docs/architecture.md
draws its diagram from the same table (``HANDOFF.mermaid()``, checked by a test).

    requested  the agent asked; the caller is being put on hold
    ringing    a specialist's own phone, or a team number, is ringing
    checking   the leg answered: the specialist keys the agent's SEES ID
    accepted   the SEES ID matched and the specialist accepted: joining the call
    briefing   the specialist is in the call with the agent; the caller is held
    taken_over the agent handed over: the caller is with the specialist, the grant live
    ended      the handed-off call is over: the grant ended with it
    failed     it did not happen (``reason``): the caller is back with the agent

``take`` binds the specialist who takes the hand-off (the person whose own phone
answered, or the one who claims a team number's call on the console) before the SEES ID
check completes; it leaves the state as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ..lifecycle import Lifecycle

__all__ = [
    "FAILURE_REASONS",
    "HANDOFF",
    "IN_PROGRESS",
    "LIVE",
    "WAITING_FOR_SPECIALIST",
    "Holder",
    "holder",
]

HANDOFF = Lifecycle(
    "hand-off",
    states=(
        "requested",
        "ringing",
        "checking",
        "accepted",
        "briefing",
        "taken_over",
        "ended",
        "failed",
    ),
    initial="requested",
    moves=(
        # A specialist's own phone, or the team's next number, rings (again after one
        # that went unanswered).
        ("ring", ("requested", "ringing"), "ringing"),
        ("answer", "ringing", "checking"),
        # The specialist who takes it is bound: it stays where it is.
        ("take", ("ringing", "checking"), None),
        # The SEES ID matched and they pressed 1 (the flow may get there before Twilio's
        # "answered" callback does).
        ("accept", ("ringing", "checking"), "accepted"),
        ("join", "accepted", "briefing"),
        ("take_over", "briefing", "taken_over"),
        ("end", "taken_over", "ended"),
        ("fail", ("requested", "ringing", "checking", "accepted", "briefing"), "failed"),
    ),
    final=("ended", "failed"),
)

#: Still under way: the caller is held, nothing granted yet.
IN_PROGRESS = HANDOFF.sources("fail")
#: Under way or taken over: the call is live with VSTRS or the specialist.
LIVE = IN_PROGRESS | HANDOFF.sources("end")
#: Waiting for a specialist to answer or take it.
WAITING_FOR_SPECIALIST = HANDOFF.sources("take")
#: Why a hand-off failed (``reason``).
FAILURE_REASONS = frozenset(
    {
        "no_answer",
        "busy",
        "failed",
        "declined",
        "sees_id_mismatch",
        "cancelled",
        "specialist_hung_up",
        "specialist_gone",
        "caller_hung_up",
        "agent_left",
    }
)


class Holder(NamedTuple):
    """The specialist a live hand-off holds, how, and since when."""

    specialist: str
    #: ``on_call``: they took it; ``ringing``: their own phone is ringing with it.
    state: str
    since: float


def holder(doc: Mapping[str, Any], now: float) -> Holder | None:
    """Who a live hand-off holds: the specialist who took it (on the call from when they
    took it), or, before anyone has, the specialist whose own phone it is ringing; None
    while it rings a team's number or nobody yet. The specialist's console and the
    supervisor's floor both read a specialist's state from this."""
    taken = doc.get("taken_by") or {}
    if taken.get("id"):
        return Holder(taken["id"], "on_call", float(taken.get("at") or now))
    ringing = doc.get("ringing") or {}
    rung = (ringing.get("specialist") or {}).get("id")
    if doc.get("state") == "ringing" and rung:
        return Holder(rung, "ringing", float(ringing.get("since") or now))
    return None
