"""The VSTRS agent's desk: their working state, the call in hand, its hand-off, their
after-call work, the call-backs waiting and their recent calls.

The hand-off form belongs to its call and is kept as a draft on the call's record, so a
reload restores it, the caller hanging up moves it into after-call work rather than
away, and what was sent stays on view, read-only, while the hand-off goes on. Timers come
from the records themselves: on the call since the agent joined, on hold since the
hand-off was asked for, in the current step since the hand-off last moved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..access import Viewer, handoff_for_viewer
from ..errors import Forbidden
from ..handoff import IN_PROGRESS
from ..presence import AWAY_REASONS, STATE_LABELS
from ..records import CallRecord, HandOff
from ..vstrs import DRAFT_FIELDS, OUTCOMES

if TYPE_CHECKING:
    from ..service import Callflow

__all__ = ["CALLBACK_STATES", "AgentDesk"]

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

    def current_call(self, viewer: Viewer) -> CallRecord | None:
        """The call this agent is connected to now, if any."""
        svc = self.service
        call_sid = svc.store.claimed_by(f"agent:{viewer.sees_id}")
        record = svc.vstrs.get(call_sid) if call_sid else None
        agent = (record["agent"] if record else None) or {}
        if record is not None and viewer.is_agent(agent.get("sees_id")) and not agent.get(
            "left_at"
        ):
            return record
        return None

    def after_call_record(
        self, viewer: Viewer, presence: dict[str, Any] | None = None
    ) -> CallRecord | None:
        """The call whose after-call work the agent is doing, if they are."""
        svc = self.service
        presence = presence or svc.staff.availability(viewer.sees_id, svc.clock.now())
        if presence["state"] != "after_call" or not presence.get("call_sid"):
            return None
        record = svc.vstrs.get(presence["call_sid"])
        if record is None or viewer.sees_id not in record.get("agents", []):
            return None
        return record

    def form_for(self, viewer: Viewer) -> dict[str, str]:
        """The hand-off form for the call in hand: the agent's draft (kept as they type),
        else what they last sent when that hand-off did not happen; else nothing."""
        record = self.current_call(viewer)
        if record is None:
            return {}
        draft = record.get("draft") or {}
        if draft:
            return {"call_sid": record["call_sid"], **{k: draft.get(k, "") for k in DRAFT_FIELDS}}
        return self.form_to_retry(viewer)

    def form_to_retry(self, viewer: Viewer) -> dict[str, str]:
        """The hand-off form as the agent last sent it, when that hand-off did not happen on
        the call in hand (so a failed hand-off keeps its details); else nothing."""
        record = self.current_call(viewer)
        if record is None or not record["handoffs"]:
            return {}
        doc = self.service.handoffs.get(record["handoffs"][-1])
        if doc is None or doc["state"] != "failed" or not viewer.is_agent(doc["agent_sees_id"]):
            return {}
        return {"call_sid": record["call_sid"], **sent_form(doc)}

    def _handoff(self, viewer: Viewer, record: CallRecord | None) -> dict[str, Any] | None:
        """The latest hand-off of a call, as its agent sees it, with its timers."""
        svc = self.service
        if record is None or not record["handoffs"]:
            return None
        doc = svc.handoffs.get(record["handoffs"][-1])
        if doc is None or not viewer.is_agent(doc["agent_sees_id"]):
            return None
        view = handoff_for_viewer(viewer, doc, svc.clock.now(), svc.handoffs.wrap_up)
        # The caller is on hold from the request until the take-over (or the failure).
        released = next(
            (h["at"] for h in doc["history"] if h["state"] in {"taken_over", "failed", "ended"}),
            None,
        )
        team = svc.staff.team(doc["team"])
        view.update(
            step_since=doc.get("updated_at") or doc["requested_at"],
            held_since=doc["requested_at"],
            held_until=released,
            sent=sent_form(doc),
            # Whether "Try again" may be offered: the team is open now.
            team_open=bool(team and team.active and team.is_open(svc.clock.now())),
        )
        if doc["state"] in {"taken_over", "ended"}:
            grant = svc.handoffs.grants.get(doc.get("grant_id"))
            live = grant is not None and grant["ended_at"] is None
            view["handed_over"] = {
                "team_name": doc["team_name"],
                "at": next(
                    (h["at"] for h in doc["history"] if h["state"] == "taken_over"), None
                ),
                "taken_by": (doc.get("taken_by") or {}).get("name"),
                "authority_live": live,
            }
        return view

    def state(self, viewer: Viewer) -> dict[str, Any]:
        """The agent console's live state."""
        svc = self.service
        now = svc.clock.now()
        sees_id = viewer.sees_id
        presence = svc.staff.availability(sees_id, now)
        record = self.current_call(viewer)
        wrapping = self.after_call_record(viewer, presence) if record is None else None
        mine = svc.vstrs.recent_for_agent(sees_id, count=10)
        history = [
            {
                "call_sid": r["call_sid"],
                "started": r["waiting_since"],
                "organisation_name": r["verified"]["organisation_name"],
                "adviser_name": r["verified"]["adviser_name"],
                "state": r["state"],
                "handoffs": len(r["handoffs"]),
                "outcome": OUTCOMES.get((r.get("outcome") or {}).get("code", ""), ""),
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
        call = None
        if record is not None:
            call = {
                **svc.vstrs.public_view(record),
                "connected_at": (record.get("agent") or {}).get("joined_at"),
            }
        after_call = None
        if wrapping is not None:
            after_call = {
                "call": svc.vstrs.public_view(wrapping),
                "handoff": self._handoff(viewer, wrapping),
                "draft": {k: (wrapping.get("draft") or {}).get(k, "") for k in DRAFT_FIELDS},
                "until": presence.get("until"),
                "since": presence.get("since"),
            }
        return {
            "now": now,
            "hold_warning_seconds": svc.settings.hold_warning_seconds,
            "wrap_up_seconds": svc.settings.agent_wrap_up_seconds,
            "presence": {
                "state": presence["state"],
                "label": STATE_LABELS[presence["state"]],
                "since": presence.get("since"),
                "reason": presence.get("reason"),
                "reason_label": AWAY_REASONS.get(presence.get("reason") or "", ""),
                "away_after": presence.get("away_after"),
                "away_after_label": AWAY_REASONS.get(presence.get("away_after") or "", ""),
                "until": presence.get("until"),
            },
            "availability": presence["status"],
            "callbacks": callbacks,
            "callbacks_open": svc.callbacks.count_open(),
            "call": call,
            "handoff": self._handoff(viewer, record),
            "after_call": after_call,
            "outcomes": OUTCOMES,
            "away_reasons": AWAY_REASONS,
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

    @staticmethod
    def in_progress(handoff: dict[str, Any] | None) -> bool:
        """Whether a hand-off (as the desk shows it) is still under way."""
        return handoff is not None and handoff["state"] in IN_PROGRESS


def sent_form(doc: HandOff) -> dict[str, str]:
    """A hand-off's request, as the form's fields."""
    given = str(doc["authorisation"]["date"] or "")
    year, month, day = [*given.split("-"), "", "", ""][:3]
    return {
        "team": doc["team"],
        "customer_name": doc["customer"]["name"],
        "reference": doc["customer"]["reference"],
        "issue": doc["issue"],
        "need": (doc.get("need") or {}).get("id", ""),
        "need_detail": (doc.get("need") or {}).get("detail", ""),
        "auth_type": doc["authorisation"]["type"],
        "auth_day": day.lstrip("0"),
        "auth_month": month.lstrip("0"),
        "auth_year": year,
        "auth_reference": doc["authorisation"]["reference"],
        "urgent": "yes" if doc["callback"]["urgent"] else "",
        "turnaround": doc["callback"]["turnaround"],
    }
