"""Who is free to take work: each VSTRS agent's working state, each specialist's availability.

An agent's working day moves through five states, declared once (``AGENT``):

    Available        waiting for the next caller (offered calls, longest idle first)
    Ringing          a caller is being put through to them
    On a call        talking to a caller (and briefing a specialist)
    After-call work  the call is over for them: they record its outcome; it ends when
                     they press Ready, or after ``CALLFLOW_WRAP_UP`` seconds
    Away             not taking calls, with a reason (break, training, meeting, other)

Away pressed while ringing or on a call takes effect after the call (``away_after``):
routing only ever offers calls to Available agents, so nobody is rung mid-call, at a
break, or while writing up the last call. The presence record keeps the state and when it
began (``since``), so every console shows how long someone has been in it; an index of
the agents free to take a call (``available``, by when they became free) is written in
the same atomic step, so routing never reads more than the agents it could ring.

An agent in after-call work is indexed as free *from* the end of their wrap-up time: the
index is asked for agents free by now, so their wrap-up ends by itself without anything
having to wake up and write it. Ringing and on a call carry the same ``until``: when the
claim that holds the agent for the call would lapse (a worker that died mid-ring never
said the ring was over), so nobody is left Ringing for ever.

Specialists are simpler: Available or Away, per team (``available:<team>``); whether one is
on a hand-off is their claim (callflow.handoff).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import DirectoryError
from .lifecycle import Lifecycle
from .store.base import Store

__all__ = ["AGENT", "AWAY_REASONS", "STATE_LABELS", "Presence"]

AGENT = Lifecycle(
    "agent",
    states=("away", "available", "ringing", "on_call", "after_call"),
    initial="away",
    moves=(
        # Available (or Ready after a call); pressed mid-call it only cancels an Away
        # waiting for the call's end.
        ("available", ("away", "available", "after_call"), "available"),
        ("available", ("ringing", "on_call"), None),
        # Away, with a reason; mid-call it waits for the call's end (``away_after``).
        ("away", ("away", "available", "after_call"), "away"),
        ("away", ("ringing", "on_call"), None),
        # Routing offered them a caller (free again if their wrap-up time is over).
        ("ring", ("available", "after_call"), "ringing"),
        ("no_answer", "ringing", "available"),
        # Twilio says they joined the caller's conference, whatever the record thought.
        ("connect", ("ringing", "available", "after_call", "away"), "on_call"),
        ("end_call", ("on_call", "ringing"), "after_call"),
        ("wrap_up_over", "after_call", "available"),
        # A ring or a call whose end was never heard (a worker died holding it) lapses
        # when its hold on the agent would have: they are free again, never stuck.
        ("lapse", ("ringing", "on_call"), "available"),
    ),
)
#: How each state reads on a console.
STATE_LABELS = {
    "available": "Available",
    "ringing": "Ringing",
    "on_call": "On a call",
    "after_call": "After-call work",
    "away": "Away",
}
AWAY_REASONS = {
    "break": "On a break",
    "training": "Training",
    "meeting": "In a meeting",
    "other": "Other",
}
AGENTS = "presence"
SPECIALISTS = "specialist_presence"


#: The states an agent leaves by themselves at ``until``.
TIMED = frozenset({"ringing", "on_call", "after_call"})


def agent_index(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """Agents free to take a call, by when they became (or become) free: longest idle
    first; one ringing, on a call or in after-call work from when that ends by itself."""
    state = doc.get("state") or doc.get("status")
    if state == "available":
        return [("available", float(doc["since"]))]
    if state in TIMED and not doc.get("away_after") and doc.get("until") is not None:
        return [("available", float(doc["until"]))]
    return []


def specialist_index(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """A team's available specialists, longest idle first."""
    if doc.get("status") == "available":
        return [(f"available:{doc['team']}", float(doc["since"]))]
    return []


def current(doc: dict[str, Any] | None, sees_id: str, now: float) -> dict[str, Any]:
    """An agent's presence as it stands at ``now``: a wrap-up whose time is over is over
    (Available, or Away when they asked to be after the call)."""
    if doc is None:
        doc = {"sees_id": sees_id, "state": "away", "since": 0.0, "reason": None}
    state = doc.get("state") or doc.get("status") or "away"
    doc = {**doc, "state": state}
    if state in TIMED and doc.get("until") is not None and now >= float(doc["until"]):
        event = "wrap_up_over" if state == "after_call" else "lapse"
        doc = _moved(doc, event, float(doc["until"]))
    doc["status"] = "away" if doc["state"] == "away" else "available"
    return doc


def _moved(doc: dict[str, Any], event: str, now: float, **fields: Any) -> dict[str, Any]:
    """``doc`` after ``event`` (the lifecycle allowed it): state, since, and an Away
    waiting for the call's end applied once the agent is free."""
    state = AGENT.after(doc["state"], event)
    assert state is not None
    new = {**doc, **fields}
    if state != doc["state"]:
        new.update(state=state, since=now)
        if state not in TIMED or "until" not in fields:
            new["until"] = None
        if state in {"available", "away"}:
            new.update(call_sid=None)
    if new["state"] == "available" and new.get("away_after"):
        new.update(state="away", reason=new["away_after"], away_after=None, since=now)
    if new["state"] != "away":
        new["reason"] = None
    new["status"] = "away" if new["state"] == "away" else "available"
    return new


class Presence:
    """Agents' working states and specialists' availability, in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.define_index(AGENTS, agent_index)
        store.define_index(SPECIALISTS, specialist_index)

    # -- agents

    def agent(self, sees_id: str, now: float) -> dict[str, Any]:
        """An agent's presence now (Away when they have never said otherwise)."""
        return current(self.store.get_doc(AGENTS, sees_id), sees_id, now)

    def move(
        self,
        sees_id: str,
        event: str,
        now: float,
        *,
        check: Callable[[dict[str, Any]], bool] | None = None,
        **fields: Any,
    ) -> tuple[bool, dict[str, Any]]:
        """Move an agent's presence by ``event`` if their lifecycle allows it from where
        they are now (and ``check`` agrees): one atomic change. Returns whether it moved,
        and the presence as it stands."""

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            present = current(doc, sees_id, now)
            if not AGENT.can(present["state"], event) or (check and not check(present)):
                return None
            return _moved(present, event, now, **fields)

        changed = self.store.change_doc(AGENTS, sees_id, change)
        if changed.after is not None:
            return True, changed.after
        return False, current(changed.before, sees_id, now)

    def set_agent(
        self, sees_id: str, status: str, now: float, reason: str | None = None
    ) -> dict[str, Any]:
        """Available or Away (with a reason). Away mid-call waits for the call's end;
        Available mid-call cancels that."""
        if status not in {"available", "away"}:
            raise DirectoryError("status: available or away")
        if status == "away":
            reason = reason or "other"
            if reason not in AWAY_REASONS:
                raise DirectoryError(f"reason: one of {', '.join(AWAY_REASONS)}")
            present = self.agent(sees_id, now)
            if present["state"] in {"ringing", "on_call"}:
                return self.move(sees_id, "away", now, away_after=reason)[1]
            return self.move(sees_id, "away", now, reason=reason, away_after=None)[1]
        return self.move(sees_id, "available", now, away_after=None)[1]

    def ready(self, sees_id: str, now: float) -> dict[str, Any]:
        """An agent ends their after-call work: Available (or Away, if they asked to be
        after the call)."""
        return self.move(sees_id, "available", now, check=lambda p: p["state"] == "after_call")[1]

    def agent_free_since(self, now: float) -> list[str]:
        """The SEES IDs of agents free to take a call now, longest idle first."""
        return [
            d["sees_id"] for d in self.store.indexed(AGENTS, "available", max_score=now)
        ]

    # -- specialists

    def specialist(self, specialist_id: str) -> dict[str, Any]:
        """A specialist's availability (Away when they have never said otherwise)."""
        return self.store.get_doc(SPECIALISTS, specialist_id) or {
            "id": specialist_id,
            "team": "",
            "status": "away",
            "since": 0.0,
        }

    def set_specialist(
        self, specialist_id: str, team: str, status: str, now: float
    ) -> dict[str, Any]:
        """A specialist says whether they can take hand-offs (the idle clock starts now)."""
        if status not in {"available", "away"}:
            raise DirectoryError("status: available or away")

        def change(doc: dict[str, Any] | None) -> dict[str, Any]:
            doc = doc or {"id": specialist_id, "team": team, "status": "away", "since": now}
            if doc["status"] != status or doc.get("team") != team:
                doc = {**doc, "team": team, "status": status, "since": now}
            return doc

        result = self.store.update_doc(SPECIALISTS, specialist_id, change)
        assert result is not None
        return result

    def specialist_idle_again(self, specialist_id: str, now: float) -> None:
        """A specialist's hand-off is over: their idle time starts now."""
        self.store.update_doc(
            SPECIALISTS,
            specialist_id,
            lambda d: {**d, "since": now} if d and d["status"] == "available" else None,
        )

    def specialists_free(self, team: str) -> list[str]:
        """The ids of a team's available specialists, longest idle first."""
        return [d["id"] for d in self.store.indexed(SPECIALISTS, f"available:{team}")]

    def forget_specialist(self, specialist_id: str) -> None:
        """A specialist removed: their availability goes too."""
        self.store.delete_doc(SPECIALISTS, specialist_id)
