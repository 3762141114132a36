"""Who may see what: the person asking, their relationship to a call, and each audience's view.

Every read of a call, a hand-off or a grant is scoped to the person asking (rule 9 of the
architecture): by role, and by relationship: the VSTRS agent on that call, the
specialists of that hand-off's team, an admin. Each answer carries only what that person
needs. The JSON API and the consoles both use these projections, so a hand-off reads the
same to an audience wherever it is shown.

    audience             a call's grant                 a customer's grants       a hand-off
    the agent on it      authorised?, team, times       (not theirs to ask)       its progress
    its team's specialist the grant: customer, org,     their team's grants only: the card
                          representative, agent          no name or reference back
    admin                everything                     every team's              everything
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import CallflowError

__all__ = [
    "Forbidden",
    "Viewer",
    "grant_for_viewer",
    "handoff_for_viewer",
    "may_see_call",
    "may_see_handoff",
]


class Forbidden(CallflowError):
    """The person asking may not see or do this."""


@dataclass(frozen=True)
class Viewer:
    """The person asking: their role, and the SEES ID or team that role is tied to."""

    role: str
    sees_id: str = ""
    team: str = ""
    name: str = ""
    username: str = ""

    @property
    def who(self) -> str:
        """Who this is in the audit log's ``by``: their username, else their name."""
        return self.username or self.name or self.role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def is_agent(self, sees_id: str | None) -> bool:
        """Whether this is the VSTRS agent with that SEES ID."""
        return self.role == "vstrs_agent" and bool(self.sees_id) and self.sees_id == sees_id

    def is_team(self, team: str | None) -> bool:
        """Whether this is a specialist of that team."""
        return self.role == "specialist" and bool(self.team) and self.team == team


# ---------------------------------------------------------------- calls


def may_see_call(viewer: Viewer, record: dict[str, Any]) -> bool:
    """A verified call's record: the agent connected to it now, or an admin."""
    agent = record.get("agent") or {}
    return viewer.is_admin or viewer.is_agent(agent.get("sees_id"))


def was_on_call(viewer: Viewer, record: dict[str, Any]) -> bool:
    """Whether the viewer is a VSTRS agent who took this call (now or earlier in it)."""
    return viewer.role == "vstrs_agent" and viewer.sees_id in record.get("agents", [])


# ---------------------------------------------------------------- hand-offs

#: How the service runs a transfer: never shown outside admin.
_WORKINGS = frozenset(
    {"numbers", "agent_call_sid", "conference", "conference_sid", "tried", "ringing"}
)
#: What the agent who asked sees: their request and how it is going.
_AGENT_FIELDS = (
    "id",
    "call_sid",
    "team",
    "team_name",
    "customer",
    "organisation",
    "organisation_name",
    "representative",
    "consent_to_act",
    "language",
    "relay",
    "issue",
    "callback",
    "authorisation",
    "state",
    "reason",
    "requested_at",
    "updated_at",
    "history",
)
#: What the specialists of the hand-off's team see: the card they take the call with.
_SPECIALIST_FIELDS = (*_AGENT_FIELDS, "agent_sees_id", "agent_name", "grant_id")


def may_see_handoff(viewer: Viewer, doc: dict[str, Any]) -> bool:
    """The agent who asked for it, the specialists of its team, an admin."""
    return viewer.is_admin or viewer.is_agent(doc["agent_sees_id"]) or viewer.is_team(doc["team"])


def _representative(doc: dict[str, Any]) -> dict[str, Any]:
    rep = dict(doc["representative"])
    if not doc.get("consent_to_act"):  # contact details only with consent to act
        rep = {k: rep[k] for k in ("name", "adviser_number") if k in rep}
    return rep


def handoff_for_viewer(viewer: Viewer, doc: dict[str, Any]) -> dict[str, Any]:
    """A hand-off as this person may see it (raises Forbidden when they may not)."""
    if not may_see_handoff(viewer, doc):
        raise Forbidden("this hand-off is not yours to see")
    if viewer.is_admin:
        return {k: v for k, v in doc.items() if k not in _WORKINGS}
    fields: Iterable[str] = _AGENT_FIELDS if viewer.role == "vstrs_agent" else _SPECIALIST_FIELDS
    view = {k: doc.get(k) for k in fields}
    view["representative"] = _representative(doc)
    return view


# ---------------------------------------------------------------- grants

#: The grant itself, as its team's specialists (who disclose under it) and admins see it.
_GRANT_FULL = (
    "id",
    "handoff_id",
    "call_sid",
    "customer",
    "organisation_name",
    "representative",
    "team",
    "team_name",
    "agent_sees_id",
    "language",
    "relay",
    "started_at",
    "ended_at",
    "end_reason",
    "confirmed_live_at",
)
#: What the agent on the call, or a specialist asking about a customer, sees of a grant:
#: which team holds it and when; never the customer, the adviser or the agent.
_GRANT_BRIEF = (
    "id",
    "handoff_id",
    "call_sid",
    "team",
    "team_name",
    "started_at",
    "ended_at",
    "end_reason",
    "confirmed_live_at",
)


def grant_for_viewer(
    viewer: Viewer, grant: dict[str, Any], status: dict[str, Any], *, brief: bool = False
) -> dict[str, Any]:
    """A grant's status answer, with only the grant fields this person needs."""
    full = not brief and (viewer.is_admin or viewer.is_team(grant["team"]))
    fields = _GRANT_FULL if full else _GRANT_BRIEF
    return {**status, "grant": {k: grant.get(k) for k in fields}}
