"""Who may see what: the person asking, their relationship to a call, and each audience's view.

Every read of a call, a hand-off or a grant is scoped to the person asking (rule 9 of the
architecture): by role, and by relationship: the VSTRS agent on that call, the specialist
who took that hand-off, the other specialists of its team, an admin. Each answer carries
only what that person needs. The JSON API and the consoles both use these projections, so
a hand-off reads the same to an audience wherever it is shown.

    audience                 a hand-off                    a call's grant
    the agent who asked      their request, its progress   authorised?, team, times
    the specialist who       the card: customer, adviser,  the grant in full: who they
      took it                 issue, call-back, the agent   may disclose about, the matter
                              (SEES ID once checked)
    ... after the call       the card, read-only, for      the grant in full
                              their wrap-up time
    ... after their wrap-up  the team's label              authorised?, team, times
    the rest of the team     the team's label: state,      403
                              agent, organisation, who
                              took it; no customer
    another team             403                           403
    admin                    everything                    everything

A specialist asking about a customer (``GET /api/grants?customer=``) hears only of the
grants they hold themselves, with no name or reference back (they sent it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Forbidden
from .records import CallRecord, Grant, HandOff

__all__ = [
    "ROLE_NAMES",
    "Viewer",
    "grant_for_viewer",
    "handoff_for_viewer",
    "holds_card",
    "may_see_call",
    "may_see_handoff",
]


@dataclass(frozen=True)
class Viewer:
    """The person asking: their role, and the SEES ID, team and staff number that role is
    tied to."""

    role: str
    sees_id: str = ""
    team: str = ""
    name: str = ""
    username: str = ""
    #: A specialist's staff number: the person, not just their team.
    specialist: str = ""
    #: How they are acting when not by a console session: "API token 1a2b3c4d".
    via: str = ""

    @property
    def account(self) -> str:
        """The account (or staff record) acting: what two-person rules compare."""
        return self.username or self.name or self.role

    @property
    def who(self) -> str:
        """Who this is in the audit log's ``by``: their account, and how they acted."""
        return f"{self.account} ({self.via})" if self.via else self.account

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def is_agent(self, sees_id: str | None) -> bool:
        """Whether this is the VSTRS agent with that SEES ID."""
        return self.role == "vstrs_agent" and bool(self.sees_id) and self.sees_id == sees_id

    def is_team(self, team: str | None) -> bool:
        """Whether this is a specialist of that team."""
        return self.role == "specialist" and bool(self.team) and self.team == team

    def is_specialist(self, specialist_id: str | None) -> bool:
        """Whether this is the specialist with that staff number."""
        return (
            self.role == "specialist"
            and bool(self.specialist)
            and self.specialist == specialist_id
        )


#: Each role as the service names it to people.
ROLE_NAMES = {
    "vstrs_agent": "a VSTRS agent",
    "specialist": "a specialist",
    "supervisor": "a supervisor",
    "designer": "a call-flow designer",
    "auditor": "an auditor",
    "admin": "an admin",
}


def require(viewer: Viewer, roles: Iterable[str], doing: str) -> str:
    """Check the person acting has one of ``roles`` (Forbidden, saying who may, if not);
    returns who they are, for the audit log's ``by``."""
    allowed = list(roles)
    if viewer.role not in allowed:
        names = [ROLE_NAMES.get(r, r) for r in allowed]
        who = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 2 else names)
        raise Forbidden(f"{doing} is for {who}: you are signed in as {viewer.who} ({viewer.role})")
    return viewer.who


# ---------------------------------------------------------------- calls


def may_see_call(viewer: Viewer, record: CallRecord) -> bool:
    """A verified call's record: the agent connected to it now, or an admin."""
    agent = record.get("agent") or {}
    return viewer.is_admin or viewer.is_agent(agent.get("sees_id"))


def was_on_call(viewer: Viewer, record: CallRecord) -> bool:
    """Whether the viewer is a VSTRS agent who took this call (now or earlier in it)."""
    return viewer.role == "vstrs_agent" and viewer.sees_id in record.get("agents", [])


# ---------------------------------------------------------------- hand-offs

#: How the service runs a hand-off: never shown outside admin.
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
    "adviser",
    "consent_to_act",
    "language",
    "relay",
    "issue",
    "need",
    "callback",
    "authorisation",
    "state",
    "reason",
    "requested_at",
    "updated_at",
    "history",
    "taken_by",
)
#: What the specialist who took it sees: the card they take the call with.
_CARD_FIELDS = (*_AGENT_FIELDS, "agent_sees_id", "agent_name", "grant_id")
#: What the rest of the team sees: which hand-off, how far it has gone, who has it;
#: nothing that identifies the customer or the adviser.
_TEAM_FIELDS = (
    "id",
    "call_sid",
    "team",
    "team_name",
    "organisation",
    "organisation_name",
    "language",
    "relay",
    "state",
    "reason",
    "requested_at",
    "updated_at",
    "agent_name",
    "taken_by",
)
#: Before the SEES ID check passes, the specialist must key the ID the agent gives them:
#: the card never gives it away.
_UNCHECKED = frozenset({"requested", "ringing", "checking"})


def may_see_handoff(viewer: Viewer, doc: HandOff) -> bool:
    """The agent who asked for it, the specialists of its team, an admin."""
    return viewer.is_admin or viewer.is_agent(doc["agent_sees_id"]) or viewer.is_team(doc["team"])


def adviser_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The adviser on a hand-off or grant (stored as ``representative`` before), with
    contact details only when the organisation has consent to act."""
    adviser = dict(doc.get("adviser") or doc.get("representative") or {})
    if not doc.get("consent_to_act"):
        adviser = {k: adviser[k] for k in ("name", "adviser_number") if k in adviser}
    return adviser


def ended_at(doc: HandOff) -> float | None:
    """When a hand-off was over (ended or failed), else None."""
    if doc["state"] in {"ended", "failed"}:
        return float(doc.get("updated_at") or doc["requested_at"])
    return None


def holds_card(viewer: Viewer, doc: HandOff, now: float, wrap_up: float) -> bool:
    """Whether this specialist took the hand-off and may still see its customer: while it
    lasts and for their wrap-up time after."""
    taker = (doc.get("taken_by") or {}).get("id")
    if not viewer.is_specialist(taker):
        return False
    over = ended_at(doc)
    return over is None or now < over + wrap_up


def _withheld(viewer: Viewer, doc: HandOff) -> str:
    taker = doc.get("taken_by") or {}
    if viewer.is_specialist(taker.get("id")):
        return "your wrap-up time after this call is over: its customer is no longer shown"
    if taker:
        return f"taken by {taker.get('name') or 'another specialist'}: only they see the customer"
    return "not taken yet: the specialist who takes it sees the customer"


def handoff_for_viewer(
    viewer: Viewer, doc: HandOff, now: float, wrap_up: float
) -> dict[str, Any]:
    """A hand-off as this person may see it (raises Forbidden when they may not)."""
    if not may_see_handoff(viewer, doc):
        raise Forbidden("this hand-off is for another team")
    if viewer.is_admin:
        view = {k: v for k, v in doc.items() if k not in _WORKINGS and k != "representative"}
        view["adviser"] = adviser_of(doc)
        return view
    if viewer.role == "specialist" and not holds_card(viewer, doc, now, wrap_up):
        view = {k: doc.get(k) for k in _TEAM_FIELDS}
        view["taken_by"] = _taker(doc)
        view["withheld"] = _withheld(viewer, doc)
        return view
    fields: Iterable[str] = _AGENT_FIELDS if viewer.role == "vstrs_agent" else _CARD_FIELDS
    view = {k: doc.get(k) for k in fields}
    view["adviser"] = adviser_of(doc)
    view["taken_by"] = _taker(doc)
    if viewer.role == "specialist" and doc["state"] in _UNCHECKED:
        view["agent_sees_id"] = None
    return view


def _taker(doc: HandOff) -> dict[str, Any] | None:
    taker = doc.get("taken_by")
    if not taker:
        return None
    return {k: taker.get(k) for k in ("id", "name", "how", "at")}


# ---------------------------------------------------------------- grants

#: The grant itself, as the specialist who holds it (who discloses under it) and admins
#: see it.
_GRANT_FULL = (
    "id",
    "handoff_id",
    "call_sid",
    "customer",
    "matter",
    "organisation_name",
    "adviser",
    "team",
    "team_name",
    "specialist",
    "agent_sees_id",
    "language",
    "relay",
    "started_at",
    "ended_at",
    "end_reason",
    "confirmed_live_at",
)
#: What the agent on the call, the specialist after their wrap-up, or a specialist asking
#: about a customer, sees of a grant: which team holds it and when; never the customer,
#: the adviser or the agent.
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


def holds_grant(viewer: Viewer, grant: Grant, now: float, wrap_up: float) -> bool:
    """Whether this is the specialist the grant authorises, within its life and their
    wrap-up time after it."""
    holder = (grant.get("specialist") or {}).get("id")
    if not viewer.is_specialist(holder):
        return False
    over = grant.get("ended_at")
    return over is None or now < float(over) + wrap_up


def grant_for_viewer(
    viewer: Viewer,
    grant: Grant,
    status: dict[str, Any],
    now: float,
    wrap_up: float,
    *,
    brief: bool = False,
) -> dict[str, Any]:
    """A grant's status answer, with only the grant fields this person needs."""
    full = not brief and (viewer.is_admin or holds_grant(viewer, grant, now, wrap_up))
    fields = _GRANT_FULL if full else _GRANT_BRIEF
    view = {k: grant.get(k) for k in fields}
    if full:
        view["adviser"] = {
            k: v
            for k, v in (grant.get("adviser") or grant.get("representative") or {}).items()
            if k in {"name", "adviser_number"}
        }
    return {**status, "grant": view}
