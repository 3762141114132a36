"""What the end of a call, or of a leg the service placed or dialled, means: decided here.

Twilio tells the service a call's status on two URLs: ``/voice/status`` for a call that
came in (and every flow's own session), ``/voice/leg?role=...`` for a leg the service
dialled for a call (an agent's, a specialist's) or placed itself (a meeting call, a
call-back); and a caller's conference's events on ``/voice/conference``. The voice edge
checks each request is well formed and signed, then calls one method here; who hears of
the event, and in what order, is this module's business. It stands above the VSTRS calls
and the hand-offs, so neither needs the other to know what the end of a call means:

=============  ==========================================================================
a call         its flow's session ends; a VSTRS caller's call ends (their queue place,
               their agent's after-call work, any hand-off and its grant)
agent          the agent's leg: ringing answered or not, joined, left (the VSTRS call)
specialist     the specialist's leg runs its own flow (its session ends too); the hand-off
               hears how it went (answered, not answered, gone: the grant ends with it)
meeting        the meeting call's flow session ends; the meeting hears how the call went
callback       the call-back's flow session ends; the call-back hears how the call went,
               and, as a verified adviser waiting for an agent, so does the VSTRS call
conference     a join of the caller or an agent is the VSTRS call's, a specialist's the
               hand-off's; an agent leaving settles the hand-off under way (hand-over
               after the brief, else failed) or lets a lone caller go; its end ends the call
=============  ==========================================================================

Work after the flow's own session is done "quietly": a store or Twilio failure is logged
and the next party still hears of the end (Twilio gets its 2xx either way, and the sweep
and the stale-try settling put right what a lost callback leaves behind).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .engine import FINAL_STATUSES
from .errors import CallflowError, Malformed
from .links import ServiceLinks
from .vstrs import AgentLeft, VstrsCalls, caller_of

if TYPE_CHECKING:
    from .callbacks import Callbacks
    from .engine import CallEngine
    from .handoff import HandOffs
    from .meetings import Meetings

__all__ = ["LEG_ROLES", "CallEnds"]

log = logging.getLogger(__name__)

#: The legs the service dials for a call (``call`` names it) or places (``ref`` names the
#: record it was placed for).
DIALLED_FOR_A_CALL = frozenset({"agent", "specialist"})
PLACED = frozenset({"meeting", "callback"})
LEG_ROLES = DIALLED_FOR_A_CALL | PLACED


class CallEnds:
    """The one place a call's or a leg's status is turned into what it means."""

    def __init__(
        self,
        engine: CallEngine,
        vstrs: VstrsCalls,
        handoffs: HandOffs,
        meetings: Meetings,
        callbacks: Callbacks,
    ) -> None:
        self.engine = engine
        self.vstrs = vstrs
        self.handoffs = handoffs
        self.meetings = meetings
        self.callbacks = callbacks

    def call_status(self, call_sid: str, status: str, form: Mapping[str, str]) -> None:
        """A call's status callback: a final status ends its flow's session and, where it
        is a VSTRS caller's call, the call (queue place, agent, hand-off, grant)."""
        self.engine.call_status(call_sid, status, form)
        if status in FINAL_STATUSES:
            self._quietly(call_sid, "caller ended", lambda: self.caller_ended(call_sid, status))

    def caller_ended(self, call_sid: str, reason: str) -> None:
        """A VSTRS caller's leg or conference is over: the call ends (ringing stops, the
        agent goes into after-call work), then its hand-offs stop and any grant ends."""
        before = self.vstrs.caller_ended(call_sid, reason)
        if before is not None:
            self.handoffs.call_ended(call_sid, reason, links=None, record=before)

    def conference_event(self, params: dict[str, str], links: ServiceLinks) -> None:
        """A status callback of a caller's conference. A join of the caller or an agent is
        the VSTRS call's; a specialist's join is the hand-off's; an agent's leaving and the
        conference's end are settled here, across both."""
        call_sid = caller_of(params.get("FriendlyName", ""))
        if call_sid is None:
            return
        event = params.get("StatusCallbackEvent", "")
        leg = params.get("CallSid", "")
        label = params.get("ParticipantLabel")
        if event == "participant-join" and label == "specialist" and leg != call_sid:
            self.handoffs.specialist_joined(call_sid, leg)
        elif event == "participant-join":
            self.vstrs.joined(call_sid, leg, label, params, links)
        elif event == "participant-leave" and label == "agent":
            if params.get("ReasonParticipantLeft") == "conference_ended":
                return  # the caller went: conference-end (next) settles everything
            self._agent_left(call_sid, self.vstrs.agent_left(call_sid, leg))
        elif event == "conference-end":
            self.caller_ended(call_sid, params.get("ReasonConferenceEnded", "conference-ended"))

    def _agent_left(self, call_sid: str, left: AgentLeft | None) -> None:
        """An agent left a call (their after-call work has begun): a caller who had gone
        first ends the call; a hand-off under way settles what becomes of the caller;
        otherwise a caller left alone is told and let go."""
        if left is None:
            return
        if left.active_handoff and left.caller_gone:
            # The agent was let go because the caller hung up: that is what ended it.
            self.caller_ended(call_sid, "completed")
            return
        if not left.active_handoff:
            self.vstrs.let_caller_go(call_sid, left.record)  # the record just written
        elif not self.handoffs.agent_left(left.active_handoff):
            self.vstrs.let_caller_go(call_sid)  # the hand-off moved the call: read it again

    def leg_status(
        self,
        role: str,
        leg_sid: str,
        status: str,
        form: Mapping[str, str],
        links: ServiceLinks,
        *,
        call_sid: str | None = None,
        ref: str | None = None,
    ) -> None:
        """A leg's status callback. ``role`` says whose leg: an ``agent``'s or a
        ``specialist``'s dialled for the caller's ``call_sid``, or a ``meeting`` or
        ``callback`` call placed for the record ``ref``. Raises :class:`Malformed` for a
        role it does not know or one without what it needs (nothing is changed then)."""
        if role in PLACED:
            if not ref:
                raise Malformed("ref, CallSid and CallStatus are required")
            self._placed_leg(role, ref, leg_sid, status, form)
        elif role in DIALLED_FOR_A_CALL:
            if not call_sid:
                raise Malformed("call, CallSid and CallStatus are required")
            if role == "agent":
                self._quietly(
                    call_sid,
                    "agent leg",
                    lambda: self._agent_left(
                        call_sid, self.vstrs.agent_leg_status(call_sid, leg_sid, status, links)
                    ),
                )
            else:
                # The specialist's leg runs its own flow: a final status ends that session too.
                self.engine.call_status(leg_sid, status, form)
                self._quietly(
                    call_sid,
                    "specialist leg",
                    lambda: self.handoffs.specialist_leg_status(call_sid, leg_sid, status, links),
                )
        else:
            raise Malformed(f"role must be one of {', '.join(sorted(LEG_ROLES))}")

    def _placed_leg(
        self, role: str, ref: str, leg_sid: str, status: str, form: Mapping[str, str]
    ) -> None:
        """A call the service placed: its flow's session ends, and the record it was placed
        for hears how (a call-back's adviser also as a caller waiting for an agent)."""
        self.engine.call_status(leg_sid, status, form)
        if status not in FINAL_STATUSES:
            return
        owner = self.meetings if role == "meeting" else self.callbacks
        self._quietly(leg_sid, f"{role} leg ended", lambda: owner.leg_ended(ref, leg_sid, status))
        if role == "callback":
            self._quietly(leg_sid, "caller ended", lambda: self.caller_ended(leg_sid, status))

    @staticmethod
    def _quietly(call_sid: str, what: str, work: Callable[[], object]) -> bool:
        """Run ``work``; a store or Twilio failure is logged and the end goes on."""
        try:
            work()
        except CallflowError as exc:
            log.error("call %s: %s failed: %s", call_sid, what, exc)
            return False
        return True
