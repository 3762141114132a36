"""The specialist's desk: their own hand-off and grant, their wrap-up, and their team's.

A specialist's console follows *their* call, never "the team's newest" (ARCHITECTURE.md
rule 12): the hand-off ringing their own phone or taken by them, its card, and the
disclosure banner for it. While that call is live its banner is never replaced by
another's (the oldest live one of theirs is shown; the claims keep a specialist to one
hand-off at a time). After the call the specialist keeps a read-only card, "Authority
ended at ...", for their wrap-up time (``CALLFLOW_SPECIALIST_WRAP_UP``); then the
customer goes from their view too. The team view lists the team's hand-offs under way
and its live authorities, each labelled, with no customer identifiers, and offers the
ones that rang a team number to be taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..access import Viewer, ended_at, grant_for_viewer, handoff_for_viewer, holds_card
from ..handoff import LIVE, end_reason_text
from ..handoff.lifecycle import WAITING_FOR_SPECIALIST, holder
from ..records import HandOff

if TYPE_CHECKING:
    from ..service import Callflow

__all__ = ["STATE_TEXT", "SpecialistDesk"]

#: A hand-off's state in a specialist's words.
STATE_TEXT = {
    "requested": "Requested",
    "ringing": "Ringing",
    "checking": "Keying the agent's SEES ID",
    "accepted": "SEES ID confirmed: joining",
    "briefing": "Agent briefing the specialist",
    "taken_over": "Taken over: authority live",
    "ended": "Call ended",
    "failed": "Did not happen",
}
REFERENCE = {"utr": "UTR", "nino": "National Insurance number"}
FAILED = {
    "no_answer": "nobody answered",
    "busy": "the line was busy",
    "failed": "the call could not be made",
    "declined": "it was declined",
    "sees_id_mismatch": "the SEES ID check failed",
    "cancelled": "the agent cancelled it",
    "specialist_hung_up": "your leg ended",
    "specialist_gone": "your leg ended during the brief",
    "caller_hung_up": "the caller hung up",
    "agent_left": "the agent left the call",
}


#: What a specialist is doing, in their words (the tag on their console).
WORKING = {
    "available": "Available",
    "away": "Away",
    "ringing": "Your phone is ringing",
    "on_call": "On a hand-off",
}


def working_state(
    availability: Mapping[str, Any] | None, mine: HandOff | None, now: float
) -> dict[str, Any] | None:
    """A specialist's state as their console shows it: what they said (Available or Away)
    and, over it, the hand-off they are on (``holder``: ringing their phone, or theirs),
    so nobody on a call reads "Available". Routing already passes over a specialist held
    for a hand-off; this says so to them."""
    if availability is None:
        return None
    status = availability["status"]
    held = holder(mine, now) if mine is not None else None
    state = held.state if held is not None else status
    return {
        "status": status,
        "since": availability["since"],
        "state": state,
        "label": WORKING[state],
        # What happens when this hand-off ends: Available rings them again; Away not.
        "after": (
            None
            if mine is None
            else ("Hand-offs ring you again when this one ends." if status == "available"
                  else "You stay Away when this one ends.")
        ),
    }


class SpecialistDesk:
    """What one specialist sees: their own hand-offs and grants, their team's in outline."""

    def __init__(self, service: Callflow) -> None:
        self.service = service

    def _mine(self, viewer: Viewer) -> tuple[HandOff | None, list[HandOff]]:
        """The specialist's live hand-off (ringing their phone, or theirs), and those they
        took that ended within their wrap-up time, newest first."""
        svc = self.service
        now, wrap = svc.clock.now(), svc.handoffs.wrap_up
        live: list[HandOff] = []
        ended: list[HandOff] = []
        for doc in svc.handoffs.of_specialist(viewer.specialist, count=10):
            taker = (doc.get("taken_by") or {}).get("id")
            held = holder(doc, now)
            if doc["state"] in LIVE and held is not None and held.specialist == viewer.specialist:
                live.append(doc)
            elif taker == viewer.specialist and holds_card(viewer, doc, now, wrap):
                ended.append(doc)
        live.sort(key=lambda d: d["requested_at"])  # the oldest: never replaced by a newer
        return (live[0] if live else None), ended

    def state(self, viewer: Viewer) -> dict[str, Any]:
        """The specialist console's live state: their card and banner, their wrap-up, and
        their team's hand-offs."""
        svc = self.service
        now, wrap = svc.clock.now(), svc.handoffs.wrap_up
        if viewer.role != "specialist":
            return {"now": now, "handoff": None, "grant": None, "banner": _banner(None, None),
                    "wrap_up": [], "team": [], "availability": None}  # fmt: skip
        mine, ended = self._mine(viewer) if viewer.specialist else (None, [])
        grant = self._grant(viewer, mine)
        wrap_up: list[dict[str, Any]] = []
        for doc in ended:
            stored = svc.handoffs.grants.get(doc.get("grant_id"))
            over = ended_at(doc) or now
            status = svc.handoffs.grant_status(stored) if stored is not None else None
            wrap_up.append(
                {
                    "handoff": handoff_for_viewer(viewer, doc, now, wrap),
                    "grant": (
                        grant_for_viewer(viewer, stored, status, now, wrap)
                        if stored is not None and status is not None
                        else None
                    ),
                    "ended_at": (stored["ended_at"] if stored else None) or over,
                    "until": over + wrap,
                    "banner": _banner(doc, stored),
                }
            )
        banner = _banner(mine, grant)
        if mine is None and wrap_up:
            banner = wrap_up[0]["banner"]
        availability = (
            svc.staff.presence.specialist(viewer.specialist) if viewer.specialist else None
        )
        return {
            "now": now,
            "wrap_up_seconds": wrap,
            "availability": working_state(availability, mine, now),
            "handoff": handoff_for_viewer(viewer, mine, now, wrap) if mine else None,
            "grant": grant,
            "banner": banner,
            "wrap_up": wrap_up,
            "team": self.team(viewer),
        }

    def _grant(self, viewer: Viewer, mine: HandOff | None) -> dict[str, Any] | None:
        """The grant of the specialist's own live hand-off, as they may see it."""
        svc = self.service
        if mine is None or not mine.get("grant_id"):
            return None
        stored = svc.handoffs.grants.get(mine["grant_id"])
        if stored is None:
            return None
        status = svc.handoffs.grant_status(stored)
        return grant_for_viewer(viewer, stored, status, svc.clock.now(), svc.handoffs.wrap_up)

    def team(self, viewer: Viewer) -> list[dict[str, Any]]:
        """The team's hand-offs under way and its live authorities, labelled, oldest first:
        no customer identifiers (only the specialist who takes one sees its customer)."""
        svc = self.service
        if viewer.role != "specialist" or not viewer.team:
            return []
        rows = []
        for doc in svc.handoffs.live_for_team(viewer.team):
            if doc["state"] not in LIVE:
                continue
            taker = doc.get("taken_by") or {}
            ringing = doc.get("ringing") or {}
            on_number = doc["state"] == "ringing" and not ringing.get("specialist")
            can_take = bool(
                viewer.specialist
                and doc["state"] in WAITING_FOR_SPECIALIST
                and not taker
                and not ringing.get("specialist")
            )
            rows.append(
                {
                    "id": doc["id"],
                    "label": f"{doc['organisation_name']}, agent {doc['agent_name']}",
                    "agent_name": doc["agent_name"],
                    "organisation_name": doc["organisation_name"],
                    "language": doc.get("language") or "en-GB",
                    "relay": bool(doc.get("relay")),
                    "state": doc["state"],
                    "state_text": STATE_TEXT.get(doc["state"], doc["state"]),
                    "requested_at": doc["requested_at"],
                    "since": doc.get("updated_at") or doc["requested_at"],
                    "taken_by": taker.get("name"),
                    "ringing": (
                        "the team's number"
                        if on_number
                        else (ringing.get("specialist") or {}).get("name")
                        if doc["state"] == "ringing"
                        else None
                    ),
                    "mine": viewer.is_specialist(taker.get("id")),
                    "can_take": can_take,
                }
            )
        return rows


def _customer(doc: HandOff) -> str:
    customer = doc["customer"]
    kind = REFERENCE.get(customer.get("reference_type") or "", "reference")
    return f"{customer['name']} ({kind} {customer['reference']})"


def _banner(doc: HandOff | None, grant: Mapping[str, Any] | None) -> dict[str, Any]:
    """The disclosure banner, in the specialist's words, for their hand-off ``doc`` (with
    its grant's status answer, or the stored grant once over)."""
    none = {
        "kind": "none",
        "text": "No handed-off call: the usual authority requirements apply.",
        "handoff_id": None,
        "since": None,
    }
    if doc is None:
        return none
    base = {"handoff_id": doc["id"], "since": None}
    agent = f"Agent {doc['agent_name']}"
    state = doc["state"]
    if state == "ringing":
        return {**base, "kind": "incoming", "text": (
            f"Your phone is ringing: a hand-off from {agent} (an adviser from "
            f"{doc['organisation_name']}). Nothing may be disclosed yet."
        )}  # fmt: skip
    if state == "checking":
        return {**base, "kind": "checking", "text": (
            f"Key the agent's SEES ID on your phone: {agent} will give it to you. "
            "Nothing may be disclosed yet."
        )}  # fmt: skip
    if state == "accepted":
        return {**base, "kind": "checking", "text": (
            "SEES ID confirmed: joining the call. Nothing may be disclosed yet."
        )}  # fmt: skip
    if state == "briefing":
        sees = doc.get("agent_sees_id") or ""
        return {**base, "kind": "briefing", "text": (
            f"{agent}, SEES ID {sees}, is briefing you. The caller is on hold: nothing may "
            "be disclosed yet."
        )}  # fmt: skip
    if state == "taken_over" and grant is not None and grant.get("authorised"):
        return {
            **base,
            "kind": "active",
            "since": grant.get("since"),
            "text": (
                f"Disclosure authorised for this call only: {_customer(doc)}, about "
                f"\u201c{doc.get('issue') or ''}\u201d. You may disclose as if a 64-8 were on "
                "record, until the call ends."
            ),
            "relay": bool(doc.get("relay")),
        }
    if state == "taken_over":
        why = (grant or {}).get("reason") or "the grant could not be read"
        return {**base, "kind": "paused", "text": f"Not authorised now: {why}."}
    if state == "ended":
        reason = (grant or {}).get("end_reason") or doc.get("reason")
        at = (grant or {}).get("ended_at") or doc.get("updated_at")
        return {
            **base,
            "kind": "ended",
            "ended_at": at,
            "text": (
                f"Authority ended ({end_reason_text(reason)}) for {_customer(doc)}: the usual "
                "authority requirements apply. This card is read-only for your wrap-up."
            ),
        }
    why = FAILED.get(doc.get("reason") or "", (doc.get("reason") or "").replace("_", " "))
    return {
        **base,
        "kind": "ended",
        "ended_at": doc.get("updated_at"),
        "text": f"The hand-off did not happen ({why}): nothing was authorised.",
    }
