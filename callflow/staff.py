"""HMRC staff: VSTRS agents, specialist teams and their specialists, visiting officers,
availability, API tokens.

A VSTRS agent is known by their SEES ID code (digits, so a specialist can key it on the
phone), rung on a phone number or a Twilio client identity. A specialist team has opening
hours and its specialists: people, each known by their staff number and reached at their
own number or Twilio client; a hand-off rings the team's available specialists first
(longest idle first), then the team's own numbers, kept for people not yet registered.
Staff reach the JSON API with tokens that carry a role and name a person; a token is
stored only as a keyed hash. A Debt Management officer who
visits or meets customers is known by the identity number on their card or letter, so a
customer can check on the officer verification line that the officer is real and active.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .errors import DirectoryError
from .grades import grade_problem
from .hours import NATIONS, Calendar, parse_week
from .presence import Presence
from .store.base import Store

if TYPE_CHECKING:
    from .audit import Audit

__all__ = [
    "ROLES",
    "Agent",
    "Officer",
    "Specialist",
    "Staff",
    "StaffMember",
    "Team",
    "parse_hours",
]

#: The roles a personal API token may carry: each names a person (an agent's SEES ID, a
#: specialist's staff number, or the username of a console account of that role).
ROLES = frozenset({"vstrs_agent", "specialist", "supervisor", "designer", "auditor", "admin"})
ACCOUNT_ROLES = frozenset({"supervisor", "designer", "auditor", "admin"})
SEES_ID = re.compile(r"^[0-9]{6,10}$")
#: A specialist's staff number.
STAFF_NUMBER = re.compile(r"^[0-9]{6,10}$")
OFFICER_ID = re.compile(r"^[0-9]{6,10}$")
TEAM_ID = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
CLIENT = re.compile(r"^client:[A-Za-z0-9_.-]{1,64}$")
#: A skill: a language (cy-GB) or a name (debt_pursuit).
SKILL = re.compile(r"^([a-z]{2,3}-[A-Z]{2}|[a-z][a-z0-9_]{1,39})$")
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")
LONDON = ZoneInfo("Europe/London")
#: How long an agent is held for a call they joined (its end is normally heard long before).
CALL_HOLD_SECONDS = 4 * 3600
#: How long a process keeps the VSTRS line's calendar (every worker sees a change this soon).
LINE_CACHE_SECONDS = 10.0
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@dataclass
class Agent:
    """A VSTRS agent."""

    sees_id: str
    name: str
    reach: str  # E.164 number or client:identity
    active: bool = True
    created_at: float = 0.0
    #: What the agent can do beyond English: the languages they serve (cy-GB), and any
    #: other skill a routing rule may ask for.
    skills: list[str] = field(default_factory=list)

    def speaks(self, language: str | None) -> bool:
        """Whether the agent can serve a call in ``language`` (everyone serves English)."""
        return not language or language == "en-GB" or language in self.skills

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass
class Specialist:
    """A Debt Management specialist: a person in a specialist team, who takes hand-offs."""

    id: str  # their staff number
    name: str
    team: str
    reach: str  # E.164 number or client:identity: their own phone
    active: bool = True
    created_at: float = 0.0
    #: The languages they serve beyond English (cy-GB): a Welsh hand-off rings them first.
    skills: list[str] = field(default_factory=list)

    def speaks(self, language: str | None) -> bool:
        """Whether they can take a hand-off in ``language`` (everyone takes English)."""
        return not language or language == "en-GB" or language in self.skills

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass
class Officer:
    """A Debt Management officer who visits or meets customers (field force, collectors)."""

    number: str  # the identity number on the officer's card or letter
    name: str  # the name the officer gives the customer
    active: bool = True
    created_at: float = 0.0
    #: Their Debt Management grade (callflow.grades; "" until recorded): a meeting's
    #: purpose needs its lowest grade or above.
    grade: str = ""
    #: Their working hours and the nation whose bank holidays they keep: the times their
    #: diary offers for meetings (callflow.diary).
    hours: str = "Mon-Fri 09:00-17:00"
    nation: str = "england-and-wales"

    def calendar(self) -> Calendar:
        """Their working calendar."""
        return Calendar(self.hours, self.nation)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass
class Team:
    """A specialist team of Debt Management."""

    id: str
    name: str
    handles: str
    numbers: list[str]
    hours: str = "Mon-Fri 08:30-17:00"
    active: bool = True
    #: The languages each number's people serve beyond English ({number: [cy-GB]}): a
    #: hand-off in that language rings those numbers first.
    languages: dict[str, list[str]] = field(default_factory=dict)
    #: Whose bank holidays close it (england-and-wales, scotland, northern-ireland).
    nation: str = "england-and-wales"
    #: Dated closures and extra openings (callflow.hours.Calendar).
    exceptions: list[dict[str, Any]] = field(default_factory=list)

    def numbers_for(self, language: str | None) -> list[str]:
        """The numbers to ring, in order, for a call in ``language``: those whose people
        speak it first, then the rest in their own order."""
        if not language or language == "en-GB":
            return list(self.numbers)
        speaking = [n for n in self.numbers if language in self.languages.get(n, [])]
        return speaking + [n for n in self.numbers if n not in speaking]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    def calendar(self) -> Calendar:
        """The team's opening hours, its nation's bank holidays and its exceptions."""
        return Calendar(self.hours, self.nation, list(self.exceptions))

    def is_open(self, when: float) -> bool:
        """Whether the team is open at ``when`` (UK time, bank holidays and exceptions too)."""
        return self.calendar().is_open(datetime.fromtimestamp(when, LONDON))

    def status_text(self, when: float) -> str:
        """``open until 17:00`` or ``closed: bank holiday (Christmas Day); reopens ...``."""
        return self.calendar().describe(datetime.fromtimestamp(when, LONDON))


def _line_calendar(doc: dict[str, Any] | None) -> Calendar:
    """The VSTRS line's calendar from its stored document (open all hours, no bank
    holidays, until an admin sets it)."""
    doc = doc or {}
    return Calendar(
        doc.get("week", "Mon-Sun 00:00-24:00"),
        doc.get("nation", "none"),
        list(doc.get("exceptions", [])),
    )


def _calendar_doc(calendar: Calendar, week_field: str) -> dict[str, Any]:
    """A calendar's stored fields (a team keeps its week as ``hours``, the line as ``week``)."""
    return {
        week_field: calendar.week,
        "nation": calendar.nation,
        "exceptions": list(calendar.exceptions),
    }


@dataclass(frozen=True)
class StaffMember:
    """Who an API token belongs to (a specialist's ``team`` is their team's id)."""

    staff_id: str
    role: str
    name: str
    token_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    team: str = ""


def parse_hours(text: str) -> tuple[set[str], int, int]:
    """``Mon-Fri 08:30-17:00`` -> (days, start minute, end minute)."""
    match = re.fullmatch(
        r"\s*([A-Za-z]{3})(?:-([A-Za-z]{3}))?\s+(\d\d):(\d\d)-(\d\d):(\d\d)\s*", text or ""
    )
    if not match:
        raise DirectoryError("hours: like 'Mon-Fri 08:30-17:00'")
    first, last = match.group(1).lower(), (match.group(2) or match.group(1)).lower()
    if first not in DAYS or last not in DAYS:
        raise DirectoryError("hours: days are Mon, Tue, Wed, Thu, Fri, Sat, Sun")
    i, j = DAYS.index(first), DAYS.index(last)
    days = set(DAYS[i : j + 1]) if i <= j else set(DAYS[i:] + DAYS[: j + 1])
    start = int(match.group(3)) * 60 + int(match.group(4))
    end = int(match.group(5)) * 60 + int(match.group(6))
    if not 0 <= start < end <= 24 * 60:
        raise DirectoryError("hours: the end must come after the start, within one day")
    return days, start, end


def token_index(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """Tokens by their id (what is typed to revoke one), and all of them."""
    return [(f"id:{doc['token_id']}", doc["created_at"]), ("all", doc["created_at"])]


class Staff:
    """Agents, teams, officers, availability and tokens in the store.

    Every change to the directory is audited here, with who made it (``by``), so the
    CLI, the admin console and the API make the same entries.
    """

    def __init__(self, store: Store, key: bytes, audit: Audit) -> None:
        self.store = store
        self._key = key
        self.audit = audit
        self._line_docs: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self.presence = Presence(store)
        #: An active console account's role by username (set by the service once the
        #: accounts exist): tokens for designers, auditors and admins name an account.
        self.account_role: Callable[[str], str | None] = lambda _username: None
        store.define_index("tokens", token_index)

    # -- agents

    def add_agent(self, sees_id: str, name: str, reach: str, now: float, *, by: str) -> Agent:
        """Register a VSTRS agent."""
        errors = []
        if not SEES_ID.match(sees_id or ""):
            errors.append("sees_id: 6 to 10 digits")
        if not (name or "").strip() or len(name) > 100:
            errors.append("name: 1 to 100 characters")
        if not (PHONE.match(reach or "") or CLIENT.match(reach or "")):
            errors.append("reach: a number like +441632960100 or client:identity")
        if errors:
            raise DirectoryError("; ".join(errors))
        agent = Agent(sees_id, name.strip(), reach, True, now)
        if not self.store.add_doc("agents", sees_id, agent.to_dict()):
            raise DirectoryError(f"sees_id: agent {sees_id} already exists")
        self.audit.record("staff.agent_added", agent=sees_id, by=by, outcome="added")
        return agent

    def agent(self, sees_id: str) -> Agent | None:
        """The agent with that SEES ID, or None."""
        if not SEES_ID.match(sees_id or ""):
            return None
        doc = self.store.get_doc("agents", sees_id)
        return Agent(**doc) if doc else None

    def agents(self) -> list[Agent]:
        """Every agent, by SEES ID."""
        return sorted((Agent(**d) for d in self.store.list_docs("agents")), key=lambda a: a.sees_id)

    def set_agent_active(self, sees_id: str, active: bool, *, by: str) -> Agent:
        """Activate or deactivate an agent (a deactivated agent is never rung or accepted)."""
        doc = self.store.update_doc(
            "agents", sees_id, lambda d: {**d, "active": active} if d else None
        )
        if doc is None:
            raise DirectoryError(f"no agent {sees_id}")
        if not active:
            self.presence.move(sees_id, "away", 0.0, reason="other", away_after=None)
        kind = "staff.agent_activated" if active else "staff.agent_deactivated"
        self.audit.record(kind, agent=sees_id, by=by, outcome="done")
        return Agent(**doc)

    def set_agent_skills(self, sees_id: str, skills: list[str], *, by: str) -> Agent:
        """Replace an agent's skills (languages like cy-GB, or other skill names)."""
        clean = sorted({s.strip() for s in skills if s.strip()})
        bad = [s for s in clean if not SKILL.match(s)]
        if bad:
            raise DirectoryError(
                f"skills: {', '.join(bad)} is not a language like cy-GB or a skill name"
            )
        doc = self.store.update_doc(
            "agents", sees_id, lambda d: {**d, "skills": clean} if d else None
        )
        if doc is None:
            raise DirectoryError(f"no agent {sees_id}")
        self.audit.record(
            "staff.agent_skills_set", agent=sees_id, skills=clean, by=by, outcome="set"
        )
        return Agent(**doc)

    # -- calendars: a team's, or the VSTRS line's ("line")

    def calendar(self, owner: str) -> Calendar:
        """The calendar of a team, or of the VSTRS line (``line``: open all hours until an
        admin sets its hours)."""
        if owner == "line":
            # Asked at the start of every call: kept a few seconds in this process.
            return _line_calendar(self._line_doc("line"))
        team = self.team(owner)
        if team is None:
            raise DirectoryError(f"no team {owner} (or `line` for the VSTRS line)")
        return team.calendar()

    def change_calendar(
        self,
        owner: str,
        *,
        by: str,
        week: str | None = None,
        nation: str | None = None,
        add: dict[str, Any] | None = None,
        remove: int | None = None,
    ) -> Calendar:
        """Change a calendar: its weekly hours, its nation, or add or remove an exception
        (a dated closure or an extra opening). One atomic change of the stored calendar, so
        two admins' changes at once both stand. Audited with who."""

        def changed(current: Calendar) -> Calendar:
            exceptions = list(current.exceptions)
            if add is not None:
                exceptions.append(current.check_exception(add))
            if remove is not None:
                if not 1 <= remove <= len(exceptions):
                    raise DirectoryError(f"exception: 1 to {len(exceptions)} (see `hours show`)")
                exceptions.pop(remove - 1)
            return Calendar(
                week if week is not None else current.week,
                nation if nation is not None else current.nation,
                exceptions,
            )

        def change_team(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None:
                return None
            return {**doc, **_calendar_doc(changed(Team(**doc).calendar()), "hours")}

        if owner == "line":
            line = self.store.change_doc(
                "calendars", "line", lambda doc: _calendar_doc(changed(_line_calendar(doc)), "week")
            )
            self._line_docs.pop("line", None)
            updated = _line_calendar(line.after)
        else:
            team = self.store.change_doc("teams", owner, change_team).after
            if team is None:
                raise DirectoryError(f"no team {owner} (or `line` for the VSTRS line)")
            updated = Team(**team).calendar()
        if week is not None:
            what = "week"
        elif nation is not None:
            what = "nation"
        elif add is not None:
            what = "closure added" if "closed_from" in add else "opening added"
        else:
            what = "exception removed"
        self.audit.record(
            "staff.calendar_changed", calendar=owner, change=what, by=by, outcome="changed"
        )
        return updated

    # -- emergency closure of the VSTRS line

    def _line_doc(self, key: str) -> dict[str, Any] | None:
        """The line's calendar or closure document, kept LINE_CACHE_SECONDS in this process
        (both are read at the start of every call)."""
        cached = self._line_docs.get(key)
        if cached is not None and time.monotonic() - cached[0] < LINE_CACHE_SECONDS:
            return cached[1]
        doc = self.store.get_doc("calendars", key)
        self._line_docs[key] = (time.monotonic(), doc)
        return doc

    def closure(self, now: float) -> dict[str, Any] | None:
        """The line's emergency closure, while it lasts (new calls hear its message)."""
        doc = self._line_doc("closure")
        if doc is None or (doc.get("until") is not None and now >= float(doc["until"])):
            return None
        return doc

    @staticmethod
    def closure_doc(
        messages: dict[str, str], until: float | None, now: float, reason: str, by: str
    ) -> dict[str, Any]:
        """An emergency closure as it would be kept, checked (a field error otherwise)."""
        clean = {lang: " ".join(text.split()) for lang, text in messages.items() if text.strip()}
        errors = []
        if not clean.get("en-GB"):
            errors.append("message: the English message is needed")
        if any(len(text) > 1000 for text in clean.values()):
            errors.append("message: up to 1000 characters")
        if until is not None and until <= now:
            errors.append("until: a time after now")
        why = " ".join((reason or "").split())
        if not why:
            errors.append("reason: why the line is closing (kept in the audit log)")
        elif len(why) > 300:
            errors.append("reason: up to 300 characters")
        if errors:
            raise DirectoryError("; ".join(errors))
        return {"messages": clean, "until": until, "by": by, "started_at": now, "reason": why}

    def start_closure(
        self,
        messages: dict[str, str],
        until: float | None,
        now: float,
        *,
        by: str,
        reason: str,
    ) -> dict[str, Any]:
        """Close the line at short notice: new calls hear ``messages`` (by language; English
        required) and end politely; calls in progress go on. Audited with who and why."""
        doc = self.closure_doc(messages, until, now, reason, by)
        self.store.put_doc("calendars", "closure", doc)
        self._line_docs.pop("closure", None)
        self.audit.record(
            "line.closure_started",
            until=until,
            languages=sorted(doc["messages"]),
            reason=doc["reason"],
            by=by,
            outcome="closed",
        )
        return doc

    def end_closure(self, *, by: str) -> bool:
        """Open the line again (before its closure's end time); False when none was on."""
        ended = self.store.delete_doc("calendars", "closure")
        self._line_docs.pop("closure", None)
        if ended:
            self.audit.record("line.closure_ended", by=by, outcome="reopened")
        return ended

    def set_team_languages(
        self, team_id: str, languages: dict[str, list[str]], *, by: str
    ) -> Team:
        """Which of a team's numbers are answered in which languages beyond English."""
        team = self.team(team_id)
        if team is None:
            raise DirectoryError(f"no team {team_id}")
        unknown = [n for n in languages if n not in team.numbers]
        if unknown:
            raise DirectoryError(f"numbers: {', '.join(unknown)} is not one of the team's numbers")
        clean = {n: sorted(set(langs)) for n, langs in languages.items() if langs}
        bad = [lang for langs in clean.values() for lang in langs if not LANGUAGE_TAG.match(lang)]
        if bad:
            raise DirectoryError(f"languages: {', '.join(bad)} is not a language like cy-GB")
        doc = self.store.update_doc(
            "teams", team_id, lambda d: {**d, "languages": clean} if d else None
        )
        assert doc is not None
        self.audit.record(
            "staff.team_languages_set", team=team_id, languages=clean, by=by, outcome="set"
        )
        return Team(**doc)

    def remove_agent(self, sees_id: str, *, by: str) -> bool:
        """Remove an agent and their availability."""
        self.store.delete_doc("presence", sees_id)
        if not self.store.delete_doc("agents", sees_id):
            return False
        self.audit.record("staff.agent_removed", agent=sees_id, by=by, outcome="removed")
        return True

    # -- visiting officers

    def add_officer(
        self, number: str, name: str, now: float, *, grade: str = "", by: str
    ) -> Officer:
        """Register a Debt Management officer by the identity number on their card, with
        their grade (an officer registered before grades were kept has none until set)."""
        errors = []
        if not OFFICER_ID.match(number or ""):
            errors.append("number: the identity number, 6 to 10 digits")
        if not (name or "").strip() or len(name) > 100:
            errors.append("name: 1 to 100 characters")
        if grade and grade_problem(grade):
            errors.append(f"grade: {grade_problem(grade)}")
        if errors:
            raise DirectoryError("; ".join(errors))
        officer = Officer(number, " ".join(name.split()), True, now, grade)
        if not self.store.add_doc("officers", number, officer.to_dict()):
            raise DirectoryError(f"number: officer {number} already exists")
        self.audit.record("staff.officer_added", officer=number, by=by, outcome="added")
        return officer

    def officer(self, number: str) -> Officer | None:
        """The officer with that identity number, or None."""
        if not OFFICER_ID.match(number or ""):
            return None
        doc = self.store.get_doc("officers", number)
        return Officer(**doc) if doc else None

    def officers(self) -> list[Officer]:
        """Every officer, by identity number."""
        return sorted(
            (Officer(**d) for d in self.store.list_docs("officers")), key=lambda o: o.number
        )

    def set_officer_active(self, number: str, active: bool, *, by: str) -> Officer:
        """Activate or deactivate an officer (the verification line confirms active ones only)."""
        doc = self.store.update_doc(
            "officers", number, lambda d: {**d, "active": active} if d else None
        )
        if doc is None:
            raise DirectoryError(f"no officer {number}")
        outcome = "activated" if active else "deactivated"
        self.audit.record("staff.officer_" + outcome, officer=number, by=by, outcome=outcome)
        return Officer(**doc)

    def set_officer_grade(self, number: str, grade: str, *, by: str) -> Officer:
        """Record an officer's grade (meetings arranged already keep their officer)."""
        problem = grade_problem(grade)
        if problem:
            raise DirectoryError(f"grade: {problem}")
        doc = self.store.update_doc(
            "officers", number, lambda d: {**d, "grade": grade} if d else None
        )
        if doc is None:
            raise DirectoryError(f"no officer {number}")
        self.audit.record("staff.officer_grade", officer=number, grade=grade, by=by, outcome="set")
        return Officer(**doc)

    def set_officer_hours(self, number: str, hours: str, nation: str, *, by: str) -> Officer:
        """An officer's working hours (like ``Mon-Fri 09:00-17:00``) and nation: what their
        diary offers for meetings."""
        Calendar(hours, nation)  # refuses bad hours or an unknown nation, in words
        doc = self.store.update_doc(
            "officers", number,
            lambda d: {**d, "hours": hours, "nation": nation} if d else None,
        )  # fmt: skip
        if doc is None:
            raise DirectoryError(f"no officer {number}")
        self.audit.record("staff.officer_hours", officer=number, by=by, outcome="set")
        return Officer(**doc)

    def remove_officer(self, number: str, *, by: str) -> bool:
        """Remove an officer."""
        if not self.store.delete_doc("officers", number):
            return False
        self.audit.record("staff.officer_removed", officer=number, by=by, outcome="removed")
        return True

    # -- availability: the agent's working state (callflow.presence)

    def set_availability(
        self, sees_id: str, status: str, now: float, reason: str | None = None
    ) -> dict[str, Any]:
        """``available`` or ``away`` (with a reason); becoming available starts the idle
        clock. Away pressed mid-call takes effect when the call is over."""
        return self.presence.set_agent(sees_id, status, now, reason)

    def availability(self, sees_id: str, now: float) -> dict[str, Any]:
        """An agent's presence: ``state`` (available, ringing, on_call, after_call, away),
        since when, and ``status`` (available or away, as they asked)."""
        return self.presence.agent(sees_id, now)

    def ready(self, sees_id: str, now: float) -> dict[str, Any]:
        """The agent ends their after-call work."""
        return self.presence.ready(sees_id, now)

    def idle_agents(
        self, now: float, exclude: set[str] | frozenset[str] = frozenset()
    ) -> list[Agent]:
        """Available, active agents not on a call, longest idle first: the index of agents
        free by now (already in that order), their records in one read, their claims in
        another."""
        available = [s for s in self.presence.agent_free_since(now) if s not in exclude]
        agents = [
            Agent(**doc)
            for doc in self.store.get_docs("agents", available)
            if doc is not None and doc["active"]
        ]
        # Whether each is on a call: one round trip for all of them.
        held = self.store.claimed(f"agent:{agent.sees_id}" for agent in agents)
        return [agent for agent in agents if f"agent:{agent.sees_id}" not in held]

    def offer_agent(self, sees_id: str, call_sid: str, seconds: int, now: float) -> bool:
        """Hold an agent for one call, so no other call rings them, and mark them Ringing;
        False when they are held already or no longer free (they went Away meanwhile)."""
        if not self.store.claim(f"agent:{sees_id}", call_sid, seconds):
            return False
        moved, _ = self.presence.move(
            sees_id, "ring", now, call_sid=call_sid, until=now + seconds
        )
        if not moved:
            self.store.release(f"agent:{sees_id}", call_sid)
        return moved

    def agent_connected(self, sees_id: str, call_sid: str, now: float) -> None:
        """The agent joined the caller: held for the call (hours, not the ring's seconds)."""
        self.store.claim(f"agent:{sees_id}", call_sid, CALL_HOLD_SECONDS)
        self.presence.move(
            sees_id, "connect", now, call_sid=call_sid, until=now + CALL_HOLD_SECONDS
        )

    def ring_over(self, sees_id: str, call_sid: str, now: float) -> None:
        """A ring for ``call_sid`` ended before the agent talked to anyone: free again,
        their idle time from now."""
        self.store.release(f"agent:{sees_id}", call_sid)
        self.presence.move(
            sees_id, "no_answer", now, check=lambda p: p.get("call_sid") in {None, call_sid}
        )

    def call_over(self, sees_id: str, call_sid: str, now: float, wrap_up: float) -> None:
        """The agent's part in ``call_sid`` is over: after-call work for ``wrap_up``
        seconds (then free: see callflow.presence)."""
        self.store.release(f"agent:{sees_id}", call_sid)
        self.presence.move(
            sees_id,
            "end_call",
            now,
            check=lambda p: p.get("call_sid") in {None, call_sid},
            call_sid=call_sid,
            until=now + wrap_up,
        )

    # -- specialists

    def add_specialist(
        self, specialist_id: str, name: str, team: str, reach: str, now: float, *, by: str
    ) -> Specialist:
        """Register a specialist in a team, reached at their own number or client."""
        errors = []
        if not STAFF_NUMBER.match(specialist_id or ""):
            errors.append("staff_number: 6 to 10 digits")
        if not (name or "").strip() or len(name) > 100:
            errors.append("name: 1 to 100 characters")
        if self.team(team) is None:
            errors.append(f"team: no specialist team {team!r}")
        if not (PHONE.match(reach or "") or CLIENT.match(reach or "")):
            errors.append("reach: a number like +441632960200 or client:identity")
        if errors:
            raise DirectoryError("; ".join(errors))
        specialist = Specialist(specialist_id, " ".join(name.split()), team, reach, True, now)
        if not self.store.add_doc("specialists", specialist_id, specialist.to_dict()):
            raise DirectoryError(f"staff_number: specialist {specialist_id} already exists")
        self.audit.record(
            "staff.specialist_added", specialist=specialist_id, team=team, by=by, outcome="added"
        )
        return specialist

    def specialist(self, specialist_id: str) -> Specialist | None:
        """The specialist with that staff number, or None."""
        if not STAFF_NUMBER.match(specialist_id or ""):
            return None
        doc = self.store.get_doc("specialists", specialist_id)
        return Specialist(**doc) if doc else None

    def specialists(self, team: str | None = None) -> list[Specialist]:
        """Every specialist (of ``team``), by staff number (a directory bounded by headcount)."""
        every = (Specialist(**d) for d in self.store.list_docs("specialists"))
        return sorted(
            (s for s in every if team is None or s.team == team), key=lambda s: s.id
        )

    def update_specialist(
        self,
        specialist_id: str,
        *,
        by: str,
        team: str | None = None,
        reach: str | None = None,
        active: bool | None = None,
        skills: list[str] | None = None,
    ) -> Specialist:
        """Move a specialist to another team, change their phone, (de)activate them, or set
        the languages they serve. Audited with what changed."""
        errors = []
        if team is not None and self.team(team) is None:
            errors.append(f"team: no specialist team {team!r}")
        if reach is not None and not (PHONE.match(reach) or CLIENT.match(reach)):
            errors.append("reach: a number like +441632960200 or client:identity")
        clean_skills = None
        if skills is not None:
            clean_skills = sorted({s.strip() for s in skills if s.strip()})
            bad = [s for s in clean_skills if not LANGUAGE_TAG.match(s)]
            if bad:
                errors.append(f"skills: {', '.join(bad)} is not a language like cy-GB")
        if errors:
            raise DirectoryError("; ".join(errors))
        changes: dict[str, Any] = {
            k: v
            for k, v in {
                "team": team, "reach": reach, "active": active, "skills": clean_skills
            }.items()
            if v is not None
        }  # fmt: skip
        doc = self.store.update_doc(
            "specialists", specialist_id, lambda d: {**d, **changes} if d else None
        )
        if doc is None:
            raise DirectoryError(f"no specialist {specialist_id}")
        if team is not None or active is False:
            # A new team, or no longer taking hand-offs: away until they say otherwise.
            self.presence.set_specialist(specialist_id, doc["team"], "away", 0.0)
        self.audit.record(
            "staff.specialist_changed",
            specialist=specialist_id,
            fields=sorted(changes),
            team=doc["team"],
            by=by,
            outcome="changed",
        )
        return Specialist(**doc)

    def remove_specialist(self, specialist_id: str, *, by: str) -> bool:
        """Remove a specialist and their availability."""
        self.presence.forget_specialist(specialist_id)
        if not self.store.delete_doc("specialists", specialist_id):
            return False
        self.audit.record(
            "staff.specialist_removed", specialist=specialist_id, by=by, outcome="removed"
        )
        return True

    def set_specialist_availability(
        self, specialist_id: str, status: str, now: float
    ) -> dict[str, Any]:
        """A specialist says whether they can take hand-offs."""
        specialist = self.specialist(specialist_id)
        if specialist is None:
            raise DirectoryError(f"no specialist {specialist_id}")
        return self.presence.set_specialist(specialist_id, specialist.team, status, now)

    def idle_specialists(
        self, team: str, language: str | None, exclude: set[str] | frozenset[str] = frozenset()
    ) -> list[Specialist]:
        """A team's available, active specialists not on a hand-off: those who speak the
        call's language first, then the rest, each longest idle first."""
        wanted = [s for s in self.presence.specialists_free(team) if s not in exclude]
        people = [
            Specialist(**doc)
            for doc in self.store.get_docs("specialists", wanted)
            if doc is not None and doc["active"] and doc["team"] == team
        ]
        held = self.store.claimed(f"specialist:{p.id}" for p in people)
        free = [p for p in people if f"specialist:{p.id}" not in held]
        return [p for p in free if p.speaks(language)] + [
            p for p in free if not p.speaks(language)
        ]

    def claim_specialist(self, specialist_id: str, handoff_id: str, seconds: int) -> bool:
        """Hold a specialist for one hand-off (rung, or taking it), so no other rings them."""
        return self.store.claim(f"specialist:{specialist_id}", handoff_id, seconds)

    def specialist_held_by(self, specialist_id: str) -> str | None:
        """The hand-off a specialist is held for, if any."""
        return self.store.claimed_by(f"specialist:{specialist_id}")

    def release_specialist(self, specialist_id: str, handoff_id: str, now: float) -> None:
        """The specialist is free again: their idle time starts now."""
        self.store.release(f"specialist:{specialist_id}", handoff_id)
        self.presence.specialist_idle_again(specialist_id, now)

    # -- teams

    def add_team(
        self,
        team_id: str,
        name: str,
        handles: str,
        numbers: list[str],
        hours: str,
        *,
        by: str,
        nation: str = "england-and-wales",
    ) -> Team:
        """Register a specialist team (closed on its nation's bank holidays)."""
        errors = []
        if not TEAM_ID.match(team_id or ""):
            errors.append("id: lower_case letters, digits and _")
        self._check_team(name, numbers, hours, errors)
        if errors:
            raise DirectoryError("; ".join(errors))
        if nation not in NATIONS:
            errors.append(f"nation: one of {', '.join(NATIONS)}")
            raise DirectoryError("; ".join(errors))
        team = Team(team_id, name.strip(), handles.strip(), list(numbers), hours.strip())
        team.nation = nation
        if not self.store.add_doc("teams", team_id, team.to_dict()):
            raise DirectoryError(f"id: team {team_id} already exists")
        self.audit.record("staff.team_added", team=team_id, by=by, outcome="added")
        return team

    def update_team(
        self, team_id: str, name: str, handles: str, numbers: list[str], hours: str, *, by: str
    ) -> Team:
        """Change a team's name, what it handles, its numbers (rung in order) or its hours."""
        errors: list[str] = []
        self._check_team(name, numbers, hours, errors)
        if errors:
            raise DirectoryError("; ".join(errors))
        changes = {
            "name": name.strip(),
            "handles": handles.strip(),
            "numbers": list(numbers),
            "hours": hours.strip(),
        }
        def change(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if d is None:
                return None
            # A number no longer the team's keeps no languages.
            kept = {n: langs for n, langs in d.get("languages", {}).items() if n in numbers}
            return {**d, **changes, "languages": kept}

        doc = self.store.update_doc("teams", team_id, change)
        if doc is None:
            raise DirectoryError(f"no team {team_id}")
        self.audit.record(
            "staff.team_changed", team=team_id, fields=sorted(changes), by=by, outcome="changed"
        )
        return Team(**doc)

    @staticmethod
    def _check_team(name: str, numbers: list[str], hours: str, errors: list[str]) -> None:
        if not (name or "").strip():
            errors.append("name: required")
        if not numbers or not all(PHONE.match(n) or CLIENT.match(n) for n in numbers):
            errors.append("numbers: one or more numbers like +441632960200 (rung in order)")
        try:
            parse_week(hours)
        except DirectoryError as exc:
            errors.append(str(exc))

    def team(self, team_id: str) -> Team | None:
        """The team, or None."""
        if not TEAM_ID.match(team_id or ""):
            return None
        doc = self.store.get_doc("teams", team_id)
        return Team(**doc) if doc else None

    def teams(self) -> list[Team]:
        """Every team."""
        return sorted((Team(**d) for d in self.store.list_docs("teams")), key=lambda t: t.id)

    def remove_team(self, team_id: str, *, by: str) -> bool:
        """Remove a team."""
        if not self.store.delete_doc("teams", team_id):
            return False
        self.audit.record("staff.team_removed", team=team_id, by=by, outcome="removed")
        return True

    # -- tokens

    def _token_key(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    def issue_token(self, role: str, staff_id: str, name: str, now: float, *, by: str) -> str:
        """A new API token for a member of staff; shown once, stored hashed."""
        if role not in ROLES:
            raise DirectoryError(f"role: one of {', '.join(sorted(ROLES))}")
        if role == "vstrs_agent" and self.agent(staff_id) is None:
            raise DirectoryError(f"staff: no VSTRS agent with SEES ID {staff_id}")
        if role == "specialist" and self.specialist(staff_id) is None:
            raise DirectoryError(
                f"staff: no specialist with staff number {staff_id} (a token is a person's: "
                "register them first, `callflow specialists add`)"
            )
        if role in ACCOUNT_ROLES and self.account_role(staff_id) != role:
            raise DirectoryError(
                f"staff: no active {role} account {staff_id!r} (a token is a person's: it "
                "names the username of their console account)"
            )
        # The id (the first 8 characters after cf_) is typed on command lines: it never
        # starts with "-", which argparse would take for an option.
        token = "cf_" + secrets.token_hex(4) + secrets.token_urlsafe(28)
        token_id = token[3:11]
        key = self._token_key(token)
        doc = {
            "key": key,
            "token_id": token_id,
            "role": role,
            "staff_id": staff_id,
            "name": name,
            "created_at": now,
        }
        self.store.put_doc("tokens", key, doc)
        self.audit.record(
            "staff.token_issued",
            staff=staff_id,
            role=role,
            token=token_id,
            by=by,
            outcome="issued",
        )
        return token

    def authenticate(self, token: str) -> StaffMember | None:
        """Who a token belongs to, or None."""
        if not token.startswith("cf_") or len(token) > 100:
            return None
        doc = self.store.get_doc("tokens", self._token_key(token))
        if doc is None:
            return None
        team = ""
        if doc["role"] in ACCOUNT_ROLES and self.account_role(doc["staff_id"]) != doc["role"]:
            return None  # the account is gone, inactive, or no longer of that role
        if doc["role"] == "specialist":
            specialist = self.specialist(doc["staff_id"])
            if specialist is None or not specialist.active:
                # A token issued to a team (before specialists were people), or to someone
                # removed or deactivated: it no longer acts for anyone.
                return None
            team = specialist.team
        return StaffMember(doc["staff_id"], doc["role"], doc["name"], doc["token_id"], team=team)

    def counts(self) -> dict[str, int]:
        """How many agents, teams, officers and API tokens there are (never a read of them)."""
        store = self.store
        return {
            "agents": store.count_docs("agents"),
            "teams": store.count_docs("teams"),
            "specialists": store.count_docs("specialists"),
            "officers": store.count_docs("officers"),
            "tokens": store.index_size("tokens", "all"),
        }

    def tokens(self) -> list[dict[str, Any]]:
        """Every token's owner and id (never the token)."""
        docs = self.store.indexed("tokens", "all")
        return [{k: v for k, v in d.items() if k != "key"} for d in docs]

    def revoke_token(self, token_id: str, *, by: str) -> int:
        """Revoke tokens by their id (the 8 characters after ``cf_``); returns how many."""
        revoked = 0
        for doc in self.store.indexed("tokens", f"id:{token_id}"):
            revoked += int(self.store.delete_doc("tokens", doc["key"]))
        if revoked:
            self.audit.record("staff.token_revoked", token=token_id, by=by, outcome="revoked")
        return revoked
