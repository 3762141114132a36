"""Calls the service places itself (a meeting call, a call-back), placed one way.

A record that owes a call (a meeting, a call-back) keeps its tries in ``attempts``, each
``{"call_sid", "at", "result", "claim"}``; its status is "calling" while the newest try
rings or talks. Placing and settling a try is the same for every kind of record:

1. **claim** the record (``<kind>:<ref>``), so only one worker rings it at a time;
2. **create** the call through the Twilio adapter, with answering-machine detection, the
   record's own Voice URL and status callback, and a ring timeout;
3. on failure, **let go** of the claim (the error goes on up: nothing was placed);
4. the record **records the try** (:func:`attempt`) in its own atomic change;
5. when the leg ends (``CallEnds`` hears it), the record lets go of the try's claim
   (:meth:`OutboundCalls.leg_ended`);
6. a try whose end never came is **settled by asking Twilio** (:meth:`settle_stale`).

What a try's end means to its record (a retry, a drop, a meeting arranged) stays with the
record's own service; "the leg ended" is one name everywhere: ``leg_ended``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .errors import CallflowError
from .records import Attempt
from .store import Store
from .twilio_adapter import FINAL_CALL_STATUSES, TwilioAdapter

__all__ = ["OutboundCalls", "Placed", "attempt"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placed:
    """A call just placed: its CallSid, when, and the claim that keeps other workers off
    the record until the leg ends."""

    call_sid: str
    at: float
    claim: str


def attempt(placed: Placed) -> Attempt:
    """The try a record keeps for ``placed`` (its result comes when the leg ends)."""
    return {"call_sid": placed.call_sid, "at": placed.at, "result": None, "claim": placed.claim}


class OutboundCalls:
    """Claim, create with answering-machine detection, let go; settle stale tries."""

    def __init__(self, store: Store, twilio: Callable[[], TwilioAdapter], clock: Clock) -> None:
        self.store = store
        self.twilio = twilio
        self.clock = clock

    def place(
        self,
        kind: str,
        ref: str,
        *,
        to: str,
        from_: str,
        url: str,
        status_callback: str,
        ring_seconds: int,
        claim_seconds: int,
    ) -> Placed:
        """Ring ``to`` for the record ``kind``/``ref``. Raises CallflowError when another
        worker is placing it already, or when Twilio refuses (the claim let go)."""
        owner = secrets.token_hex(8)
        if not self.store.claim(f"{kind}:{ref}", owner, claim_seconds):
            raise CallflowError(f"{kind} {ref} is being called already")
        try:
            call_sid = self.twilio().create_call(
                to=to,
                from_=from_,
                url=url,
                status_callback=status_callback,
                timeout=ring_seconds,
                machine_detection=True,
            )
        except CallflowError:
            self.store.release(f"{kind}:{ref}", owner)
            raise
        return Placed(call_sid, self.clock.now(), owner)

    def let_go(self, kind: str, ref: str, placed: Placed, *, hang_up: bool = False) -> None:
        """The record would not take the try (it changed meanwhile): let go of the claim,
        and hang the call up so it reaches nobody."""
        self.store.release(f"{kind}:{ref}", placed.claim)
        if hang_up:
            try:
                self.twilio().hang_up(placed.call_sid)
            except CallflowError as exc:
                log.info("%s %s: leg %s already gone: %s", kind, ref, placed.call_sid, exc)

    def leg_ended(self, kind: str, ref: str, tried: Attempt) -> None:
        """A try's leg ended: its claim goes, and the record may be called again."""
        self.store.release(f"{kind}:{ref}", tried.get("claim", ""))

    def settle_stale(
        self,
        kind: str,
        stale: list[dict[str, Any]],
        still_calling: Callable[[dict[str, Any]], bool],
        leg_ended: Callable[[str, str, str], object],
    ) -> list[tuple[str, str]]:
        """Records whose newest try's end never came (``stale``, from the record's index of
        calls in progress since long enough): ask Twilio how each call is, and settle
        those it says are over through ``leg_ended(ref, call_sid, status)``.

        Returns (record id, the status Twilio gave) for each one settled."""
        settled = []
        for doc in stale:
            if not still_calling(doc) or not doc.get("attempts"):
                continue
            leg = doc["attempts"][-1]["call_sid"]
            try:
                status = self.twilio().call_status(leg)
            except CallflowError as exc:
                log.warning("%s %s: call status unknown (%s)", kind, doc["id"], exc)
                continue
            if status in FINAL_CALL_STATUSES:
                log.warning(
                    "call %s: %s %s never heard the call end; Twilio says %s",
                    leg,
                    kind,
                    doc["id"],
                    status,
                )
                leg_ended(doc["id"], leg, status)
                settled.append((doc["id"], status))
        return settled
