"""Call traces as designers, auditors and admins read them: a call's steps in words, its
path drawn on its flow version's diagram, and the ended calls of a flow to choose from.

Designers, auditors and admins search (by CallSid, flow, outcome and time) and open a
call's trace. Every trace read is audited with who and in what
role; nobody else reads one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..access import Viewer
from ..errors import CallflowError, Forbidden
from ..graph import mermaid_path, outline
from ..traces import describe

if TYPE_CHECKING:
    from ..service import Callflow

__all__ = ["TraceDesk"]

READERS = frozenset({"designer", "auditor", "admin"})
SEARCHERS = frozenset({"designer", "auditor", "admin"})
PAGE = 25


def _when(at: float | None) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else ""


class TraceDesk:
    """Reading call traces."""

    def __init__(self, service: Callflow) -> None:
        self.service = service

    def search(
        self,
        viewer: Viewer,
        *,
        flow: str = "",
        outcome: str = "",
        since: float | None = None,
        until: float | None = None,
        page: int = 1,
    ) -> dict[str, Any]:
        """A page of ended calls, newest first, by flow and final state within a time."""
        if viewer.role not in SEARCHERS:
            raise Forbidden("call traces are searched by designers, auditors and admins")
        page = max(1, page)
        rows = self.service.traces.search(
            flow=flow or None,
            outcome=outcome or None,
            since=since,
            until=until,
            offset=(page - 1) * PAGE,
            count=PAGE + 1,
        )
        return {
            "calls": [{**r, "when": _when(r.get("started_at"))} for r in rows[:PAGE]],
            "page": page,
            "more": len(rows) > PAGE,
            "flows": sorted(self.service.library.live_versions()),
        }

    def trace(self, viewer: Viewer, call_sid: str) -> dict[str, Any] | None:
        """One call's trace (audited as read by the viewer), with its path drawn on the
        diagram of the flow version it ran; None when none is kept."""
        if viewer.role not in READERS:
            raise Forbidden("call traces are read by designers, auditors and admins")
        svc = self.service
        found = svc.traces.get(call_sid, by=viewer.who, role=viewer.role)
        if found is None:
            return None

        diagram, states = "", []
        try:
            flow = svc.library.version(str(found.get("version") or ""))
            diagram = mermaid_path(flow, found["steps"])
            states = outline(flow)
        except CallflowError:
            pass  # a version no longer kept: the steps still tell the story
        return {
            **found,
            "when": _when(found.get("started_at")),
            "ended_when": _when((found.get("end") or {}).get("at")),
            "rows": describe(found),
            "diagram": diagram,
            "outline": states,
        }
