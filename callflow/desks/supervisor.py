"""The supervisor's desk: the floor as it is now, and today's figures.

A VSTRS team leader sees, live and by language, who is waiting and for how long, the
call-backs owed and overdue; every agent's working state and how long they have been in
it; the hand-offs under way and the grants in force across teams (team, agent,
specialist, since: never a customer, adviser or caller); the line's status; and today's
figures; and every specialist's state (available, away, their phone ringing, on a
hand-off) by team. A supervisor may set an agent Away (with a reason) and reopen a call-back that
was dropped or cancelled, both audited; everything else is read-only.

Everything here comes from indexes and counters kept as things change (ARCHITECTURE.md
rule 10): the queue's and call-backs' indexes, the live hand-offs' and active grants'
indexes, the agents' and specialists' presence records read in one go, today's audit
tally (one small hash) and the ended calls' index. Nothing lists history.

The wallboard is the same figures without names or identifiers, for a screen on the
floor.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..access import Viewer, require
from ..errors import NotFound
from ..handoff.lifecycle import holder
from ..language import NAMES as LANGUAGE_NAMES
from ..presence import AWAY_REASONS, SPECIALISTS, STATE_LABELS, current
from ..queue import assign
from ..tallies import WAIT_STEP

if TYPE_CHECKING:
    from ..service import Callflow

__all__ = ["SUPERVISORS", "SupervisorDesk", "today_figures"]

#: Who sees the floor (an admin too).
SUPERVISORS = ("supervisor", "admin")
#: A call-back is overdue once the caller first rang this long ago.
OVERDUE_SECONDS = 60 * 60
#: Answered within this many seconds: the service level the floor is held to.
SERVICE_LEVEL_SECONDS = 60
LONDON = ZoneInfo("Europe/London")
#: The order agents are listed in: those a caller is waiting on first.
STATE_ORDER = ("ringing", "on_call", "after_call", "available", "away")
LIVE_LIST = 100
#: A specialist's state on the floor, in the order they are listed.
SPECIALIST_STATES = {
    "ringing": "Phone ringing",
    "on_call": "On a hand-off",
    "available": "Available",
    "away": "Away",
}


def _utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).date().isoformat()


def _midnight(now: float) -> float:
    day = datetime.fromtimestamp(now, UTC)
    return day.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def today_figures(tally: dict[str, int], calls: int) -> dict[str, Any]:
    """Today's figures from the day's audit tally (callflow.tallies) and the count of
    calls ended today: verified and failed verifications, the hand-off share, callers who
    hung up while waiting, and the wait to an agent (average, 90th percentile and the
    share answered within the service level, each to ``WAIT_STEP`` seconds)."""
    verified = failed = handoffs = abandoned = 0
    waits: dict[str, dict[int, int]] = {}
    needs: dict[str, int] = {}
    for field, n in tally.items():
        what, _org, detail = ([*field.split("|", 2), "", ""])[:3]
        if what == "v":
            if detail == "verified":
                verified += n
            else:
                failed += n
        elif what == "ho":
            handoffs += n
        elif what == "hn":
            needs[detail] = needs.get(detail, 0) + n
        elif what == "ab":
            abandoned += n
        elif what == "w":
            language, _, bucket = detail.rpartition(":")
            if bucket.isdigit():
                per = waits.setdefault(language or "en-GB", {})
                per[int(bucket)] = per.get(int(bucket), 0) + n
    every: dict[int, int] = {}
    for counts in waits.values():
        for step, n in counts.items():
            every[step] = every.get(step, 0) + n
    return {
        "calls": calls,
        "verified": verified,
        "failed_verification": failed,
        "handoffs": handoffs,
        "handoff_share": round(handoffs / verified, 3) if verified else None,
        "handoffs_by_need": dict(sorted(needs.items(), key=lambda kv: -kv[1])),
        "abandoned": abandoned,
        "wait": _wait_figures(every),
        "wait_by_language": {lang: _wait_figures(per) for lang, per in sorted(waits.items())},
    }


def _wait_figures(buckets: dict[int, int]) -> dict[str, Any]:
    answered = sum(buckets.values())
    if not answered:
        return {"answered": 0, "average": None, "p90": None, "within_service_level": None}
    total = sum((bucket + WAIT_STEP / 2) * n for bucket, n in buckets.items())
    p90, seen = None, 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= 0.9 * answered:
            p90 = bucket + WAIT_STEP
            break
    within = sum(n for bucket, n in buckets.items() if bucket + WAIT_STEP <= SERVICE_LEVEL_SECONDS)
    return {
        "answered": answered,
        "average": round(total / answered),
        "p90": p90,
        "within_service_level": round(within / answered, 3),
    }


class SupervisorDesk:
    """The floor, for a supervisor (or an admin)."""

    def __init__(self, service: Callflow) -> None:
        self.service = service

    def _check(self, viewer: Viewer) -> str:
        return require(viewer, SUPERVISORS, "the floor view")

    # ------------------------------------------------------------ reading

    def floor(self, viewer: Viewer) -> dict[str, Any]:
        """Everything the supervisor's page shows, as it stands now."""
        self._check(viewer)
        now = self.service.clock.now()
        live = self._live_handoffs()
        return {
            "now": now,
            "languages": self.queues(now),
            "agents": self.agents(now, kept=self.kept_for_callbacks(now)),
            "specialists": self.specialists(now, live),
            "handoffs": self.handoffs(now, live),
            "grants": self.grants(now),
            "line": self.line(now),
            "today": self.today(now),
            "callbacks_closed": self.closed_callbacks(now),
            "away_reasons": AWAY_REASONS,
        }

    def wallboard(self, viewer: Viewer) -> dict[str, Any]:
        """The floor's figures for a screen everyone can see: no names, no identifiers."""
        self._check(viewer)
        now = self.service.clock.now()
        agents = self.agents(now)
        states = {state: 0 for state in STATE_ORDER}
        for agent in agents:
            states[agent["state"]] = states.get(agent["state"], 0) + 1
        return {
            "now": now,
            "languages": self.queues(now),
            "agent_states": [
                {"state": s, "label": STATE_LABELS[s], "count": states[s]} for s in STATE_ORDER
            ],
            "handoffs_live": len(self.handoffs(now)),
            "grants_active": len(self.grants(now)),
            "line": self.line(now),
            "today": self.today(now),
        }

    def queues(self, now: float) -> list[dict[str, Any]]:
        """Per language: callers waiting for an agent and the longest wait; call-backs
        owed (holding a place) and overdue (first rang more than an hour ago)."""
        store = self.service.store
        rows = []
        for language, name in LANGUAGE_NAMES.items():
            index = f"waiting:{language}"
            waiting, owed, overdue = store.index_sizes(
                [("vstrs_calls", index), ("callbacks", index)], max_score=now
            ) + store.index_sizes([("callbacks", index)], max_score=now - OVERDUE_SECONDS)
            oldest = store.indexed("vstrs_calls", index, count=1)
            since = float(oldest[0]["waiting_since"]) if oldest else None
            rows.append(
                {
                    "language": language,
                    "name": name,
                    "waiting": waiting,
                    "longest_since": since,
                    "longest": round(now - since) if since else 0,
                    "callbacks_owed": owed,
                    "callbacks_overdue": overdue,
                }
            )
        return rows

    def kept_for_callbacks(self, now: float) -> dict[str, str]:
        """Free agents the fair queue keeps for a call-back that rang first (its adviser
        being rung back and verified: no live caller is put through to them meanwhile),
        by SEES ID: the call-back's language. The same matching the hold ticks and the
        call-back worker make, from the same index heads."""
        vstrs = self.service.vstrs
        free = self.service.staff.idle_agents(now)
        if not free:
            return {}
        waiting = vstrs.waiting(len(free), free=free)
        callbacks = {w.key: w.language for w in waiting if w.kind == "callback"}
        return {
            agent.sees_id: LANGUAGE_NAMES.get(callbacks[key], callbacks[key])
            for key, agent in assign(free, waiting).items()
            if key in callbacks
        }

    def agents(self, now: float, kept: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Every active agent's working state, since when, and why (Away); ``kept``: free
        agents kept for a call-back (``kept_for_callbacks``)."""
        svc = self.service
        agents = [a for a in svc.staff.agents() if a.active]
        docs = svc.store.get_docs("presence", [a.sees_id for a in agents])
        rows = []
        for agent, doc in zip(agents, docs, strict=True):
            present = current(doc, agent.sees_id, now)
            state = present["state"]
            since = float(present.get("since") or 0)
            rows.append(
                {
                    "sees_id": agent.sees_id,
                    "name": agent.name,
                    "state": state,
                    "label": STATE_LABELS.get(state, state),
                    "since": since or None,
                    "for_seconds": round(now - since) if since else None,
                    "reason": AWAY_REASONS.get(present.get("reason") or "", ""),
                    "away_after": AWAY_REASONS.get(present.get("away_after") or "", ""),
                    "kept_for": (kept or {}).get(agent.sees_id, "") if state == "available" else "",
                    "languages": ["English", *(LANGUAGE_NAMES.get(s, s) for s in agent.skills)],
                }
            )
        rows.sort(key=lambda r: (STATE_ORDER.index(r["state"]), -(r["for_seconds"] or 0)))
        return rows

    def _live_handoffs(self) -> list[dict[str, Any]]:
        return self.service.store.indexed("handoffs", "live", count=LIVE_LIST)

    def specialists(
        self, now: float, live: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Every active specialist's state, by team: what they said (Available or Away)
        and, over it, the hand-off they are on (their phone ringing, or taken by them),
        from the live hand-offs already read; no customer."""
        svc = self.service
        people = [p for p in svc.staff.specialists() if p.active]
        team_ids = sorted({p.team for p in people})
        found = svc.store.get_docs("teams", team_ids)
        teams = {i: d["name"] for i, d in zip(team_ids, found, strict=True) if d}
        docs = svc.store.get_docs(SPECIALISTS, [p.id for p in people])
        held_by = (holder(doc, now) for doc in (self._live_handoffs() if live is None else live))
        busy = {held.specialist: held for held in held_by if held is not None}
        rows: list[dict[str, Any]] = []
        for person, presence in zip(people, docs, strict=True):
            said = (presence or {}).get("status") or "away"
            held = busy.get(person.id)
            state, since = (
                (held.state, held.since)
                if held is not None
                else (said, float((presence or {}).get("since") or 0))
            )
            rows.append(
                {
                    "id": person.id,
                    "name": person.name,
                    "team": teams.get(person.team, person.team),
                    "state": state,
                    "label": SPECIALIST_STATES[state],
                    # Available under a call: hand-offs ring them again when it ends.
                    "then": (SPECIALIST_STATES[said] if state in {"ringing", "on_call"} else ""),
                    "since": since or None,
                    "for_seconds": round(now - since) if since else None,
                    "languages": ["English", *(LANGUAGE_NAMES.get(s, s) for s in person.skills)],
                }
            )
        order = list(SPECIALIST_STATES)
        rows.sort(key=lambda r: (r["team"], order.index(r["state"]), -(r["for_seconds"] or 0)))
        return rows

    def handoffs(
        self, now: float, live: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Hand-offs under way across teams: team, agent, specialist, state, since."""
        rows = []
        for doc in self._live_handoffs() if live is None else live:
            taker = doc.get("taken_by") or {}
            rows.append(
                {
                    "id": doc["id"],
                    "team": doc.get("team_name") or doc.get("team"),
                    "agent": doc.get("agent_name") or doc.get("agent_sees_id"),
                    "specialist": taker.get("name") or "",
                    "state": doc.get("state"),
                    "since": doc.get("requested_at"),
                    "for_seconds": round(now - float(doc.get("requested_at") or now)),
                    "reason": doc.get("reason_label") or "",
                }
            )
        return rows

    def grants(self, now: float) -> list[dict[str, Any]]:
        """Disclosure grants in force: team, agent, specialist, since."""
        store = self.service.store
        live = [
            d
            for d in store.indexed("grants", "active", count=LIVE_LIST)
            if d.get("ended_at") is None
        ]
        ids = sorted({d.get("agent_sees_id", "") for d in live})
        names = {i: d["name"] for i, d in zip(ids, store.get_docs("agents", ids), strict=True) if d}
        rows = []
        for doc in live:
            rows.append(
                {
                    "team": doc.get("team_name") or doc.get("team"),
                    "agent": names.get(doc.get("agent_sees_id", ""), doc.get("agent_sees_id")),
                    "specialist": (doc.get("specialist") or {}).get("name", ""),
                    "since": doc["started_at"],
                    "for_seconds": round(now - float(doc["started_at"])),
                }
            )
        return rows

    def line(self, now: float) -> dict[str, Any]:
        """The VSTRS line: open or closed and why, and any emergency closure."""
        staff = self.service.staff
        calendar = staff.calendar("line")
        at = datetime.fromtimestamp(now, LONDON)
        closure = staff.closure(now)
        return {
            "open": closure is None and calendar.is_open(at),
            "status": calendar.describe(at),
            "closure": (
                {
                    "reason": closure.get("reason", ""),
                    "message": closure["messages"].get("en-GB", ""),
                    "until": closure.get("until"),
                    "by": closure.get("by", ""),
                }
                if closure
                else None
            ),
        }

    def today(self, now: float) -> dict[str, Any]:
        """Today's figures (the UTC day): one tally read and one index count."""
        store = self.service.store
        day = _utc_day(now)
        tally = store.audit_tallies([day]).get(day, {})
        (calls,) = store.index_sizes(
            [("traces", "flow:vstrs_inbound")], min_score=_midnight(now), max_score=now
        )
        label = datetime.fromtimestamp(now, UTC).strftime("%-d %B %Y")
        figures = today_figures(tally, calls)
        needs = self.service.handoffs.needs
        threshold = self.service.settings.handoff_share_alert
        share = figures["handoff_share"]
        return {
            "day": day,
            "day_label": label,
            **figures,
            "needs": [
                {"id": k, "label": needs.label(k), "count": n}
                for k, n in figures["handoffs_by_need"].items()
            ],
            "share_threshold": threshold,
            "share_over": share is not None and share > threshold,
        }

    def closed_callbacks(self, now: float) -> list[dict[str, Any]]:
        """Call-backs dropped or cancelled today, which a supervisor may reopen (who they
        were for is not shown: the adviser's number is the caller's identity)."""
        rows = []
        for doc in self.service.callbacks.closed_since(_midnight(now), count=LIVE_LIST):
            rows.append(
                {
                    "id": doc["id"],
                    "status": doc["status"],
                    "why": (doc.get("ended_reason") or "").replace("_", " "),
                    "language": LANGUAGE_NAMES.get(doc.get("language") or "en-GB", ""),
                    "first_rang": doc.get("arrived_at"),
                    "closed_at": doc.get("ended_at"),
                    "tries": len(doc.get("attempts", [])),
                }
            )
        return rows

    # ------------------------------------------------------------ acting

    def set_away(self, viewer: Viewer, sees_id: str, reason: str) -> dict[str, Any]:
        """Set an agent Away with a reason (after their call, if they are on one). Audited
        with the supervisor and the agent."""
        who = require(viewer, SUPERVISORS, "setting an agent Away")
        svc = self.service
        agent = svc.staff.agent(sees_id)
        if agent is None or not agent.active:

            raise NotFound(f"no active VSTRS agent with SEES ID {sees_id}")
        now = svc.clock.now()
        present = svc.staff.set_availability(sees_id, "away", now, reason)
        svc.audit.record(
            "agent.set_away",
            agent=sees_id,
            reason=reason,
            by=who,
            outcome="away_after_call" if present.get("away_after") else "away",
        )
        return present

    def reopen_callback(self, viewer: Viewer, callback_id: str) -> dict[str, Any]:
        """Reopen a dropped or cancelled call-back: it waits its turn again, its place
        kept. Audited."""
        who = require(viewer, SUPERVISORS, "reopening call-backs")
        return self.service.callbacks.reopen(callback_id, who)
