"""The VSTRS agent's desk: availability, the call in hand, its hand-off, recent calls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..access import Forbidden, Viewer, handoff_for_viewer

if TYPE_CHECKING:
    from ..service import Callflow


#: A call-back's status as the agents' console says it.
CALLBACK_STATES = {
    "to_call_back": "waiting its turn",
    "calling": "ringing the adviser, or verifying them",
    "in_queue": "verified, waiting for an agent",
    "retry_wait": "no answer: trying again later",
}


class AgentDesk:
    """What one VSTRS agent sees: only their own calls and hand-offs."""

    def __init__(self, service: Callflow) -> None:
        self.service = service

    def current_call(self, viewer: Viewer) -> dict[str, Any] | None:
        """The call this agent is connected to now, if any."""
        svc = self.service
        call_sid = svc.store.claimed_by(f"agent:{viewer.sees_id}")
        record = svc.vstrs.get(call_sid) if call_sid else None
        if record is not None and viewer.is_agent((record.get("agent") or {}).get("sees_id")):
            return record
        return None

    def form_to_retry(self, viewer: Viewer) -> dict[str, str]:
        """The hand-off form as the agent last sent it, when that transfer did not happen on
        the call in hand (so a failed transfer keeps its details); else nothing."""
        record = self.current_call(viewer)
        if record is None or not record["handoffs"]:
            return {}
        doc = self.service.handoffs.get(record["handoffs"][-1])
        if doc is None or doc["state"] != "failed" or not viewer.is_agent(doc["agent_sees_id"]):
            return {}
        given = str(doc["authorisation"]["date"] or "")
        year, month, day = [*given.split("-"), "", "", ""][:3]
        return {
            "call_sid": record["call_sid"],
            "team": doc["team"],
            "customer_name": doc["customer"]["name"],
            "reference": doc["customer"]["reference"],
            "issue": doc["issue"],
            "auth_type": doc["authorisation"]["type"],
            "auth_day": day.lstrip("0"),
            "auth_month": month.lstrip("0"),
            "auth_year": year,
            "auth_reference": doc["authorisation"]["reference"],
            "urgent": "yes" if doc["callback"]["urgent"] else "",
            "turnaround": doc["callback"]["turnaround"],
        }

    def state(self, viewer: Viewer) -> dict[str, Any]:
        """The agent console's live state."""
        svc = self.service
        sees_id = viewer.sees_id
        record = self.current_call(viewer)
        handoff = None
        if record is not None and record["handoffs"]:
            doc = svc.handoffs.get(record["handoffs"][-1])
            if doc is not None and viewer.is_agent(doc["agent_sees_id"]):
                handoff = handoff_for_viewer(viewer, doc)
        mine = svc.vstrs.recent_for_agent(sees_id, count=10)
        history = [
            {
                "call_sid": r["call_sid"],
                "started": r["waiting_since"],
                "organisation_name": r["verified"]["organisation_name"],
                "adviser_name": r["verified"]["adviser_name"],
                "state": r["state"],
                "handoffs": len(r["handoffs"]),
            }
            for r in mine
        ]
        # Call-backs owed to callers no agent could take, in the order they first rang:
        # what any agent sees (who to ring back is the service's to do; never the number).
        callbacks = [
            {
                "adviser_name": c["adviser_name"],
                "organisation_name": c["organisation_name"],
                "language": c["language"],
                "relay": c["relay"],
                "arrived_at": c["arrived_at"],
                "noted_at": c["noted_at"],
                "status": c["status"],
                "status_text": CALLBACK_STATES.get(c["status"], c["status"]),
                "attempts": c["attempts"],
                "next_attempt_at": c["next_attempt_at"],
            }
            for c in map(svc.callbacks.public, svc.callbacks.open(count=10))
        ]
        return {
            "now": svc.clock.now(),
            "callbacks": callbacks,
            "callbacks_open": svc.callbacks.count_open(),
            "availability": svc.staff.availability(sees_id)["status"],
            "call": svc.vstrs.public_view(record) if record else None,
            "handoff": handoff,
            "history": history,
        }

    def teams(self, viewer: Viewer) -> list[dict[str, Any]]:
        """The teams a hand-off may go to: each open or closed now, and why (a closed one
        says when it reopens: hours, bank holidays, closures)."""
        if not (viewer.is_admin or viewer.role == "vstrs_agent"):
            raise Forbidden("the teams are for VSTRS agents to hand off to")
        now = self.service.clock.now()
        return [
            {
                "id": team.id,
                "name": team.name,
                "handles": team.handles,
                "open": team.is_open(now),
                "status": team.status_text(now),
            }
            for team in self.service.staff.teams()
            if team.active
        ]
