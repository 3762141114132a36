"""The live event feed: what changed that this person may know of, from the audit log.

Each member of staff hears only of their own calls (an agent) or their own team (a
specialist, who also hears that a meeting changed, as the meetings page shows them all); a
supervisor that the floor changed (the kind of change and when, never the
call); an admin of everything; others of nothing. A note carries the kind of change,
the call, the hand-off, the outcome and the time: never more. Ids are audit entry ids, so
a reconnecting browser resumes where it left off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..access import Viewer

if TYPE_CHECKING:
    from ..service import Callflow

NOTE_FIELDS = ("kind", "call_sid", "handoff", "outcome", "at")
#: What a supervisor's floor view changes with: they hear that it changed, never of whom.
FLOOR_KINDS = ("agent.", "call.", "handoff.", "grant.", "callback.", "line.", "verification.")
FLOOR_NOTE_FIELDS = ("kind", "outcome", "at")
#: What the meetings page changes with: any specialist or admin sees every meeting there,
#: so they hear that one changed (the kind of change and when, never the call).
MEETING_KINDS = ("meeting.",)


@dataclass
class Feed:
    """One person's place in the audit log, and what they may hear of it."""

    service: Callflow
    viewer: Viewer
    cursor: str
    _calls: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def start(cls, service: Callflow, viewer: Viewer, last_id: str | None) -> Feed:
        """From the entry after ``last_id``, or from now."""
        return cls(service, viewer, last_id or service.store.last_audit_id())

    def next(self, wait_ms: int) -> list[tuple[str, dict[str, Any] | None]]:
        """The entries since the cursor (waiting up to ``wait_ms`` for one): each entry's id,
        with a note when this person may hear of it (None: the id alone, to move on)."""
        found = []
        for entry in self.service.store.audit_after(self.cursor, block_ms=wait_ms):
            self.cursor = entry["id"]
            outline = self.viewer.role == "supervisor" or (
                self.viewer.role == "specialist"
                and str(entry.get("kind", "")).startswith(MEETING_KINDS)
            )
            fields = FLOOR_NOTE_FIELDS if outline else NOTE_FIELDS
            note = {k: entry.get(k) for k in fields} if self._visible(entry) else None
            found.append((entry["id"], note))
        return found

    def _visible(self, entry: dict[str, Any]) -> bool:
        viewer = self.viewer
        if viewer.role == "specialist":
            if str(entry.get("kind", "")).startswith(MEETING_KINDS):
                return True  # the meetings page: every meeting, to every specialist
            return bool(entry.get("team")) and viewer.is_team(entry.get("team"))
        if viewer.role == "vstrs_agent":
            call_sid = entry.get("call_sid")
            if not call_sid:
                return False
            if call_sid not in self._calls:
                record = self.service.vstrs.get(call_sid)
                self._calls[call_sid] = bool(record and viewer.sees_id in record.get("agents", []))
            return self._calls[call_sid] or viewer.is_agent(entry.get("agent"))
        if viewer.role == "supervisor":
            return str(entry.get("kind", "")).startswith(FLOOR_KINDS)
        return viewer.is_admin
