"""The flow designer's desk: every flow with its version, problems and diagram; one flow's
versions, the live one, what waits for approval, and a diff between two."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..allowlists import destination_problems
from ..errors import CallflowError, FlowValidationError
from ..flowspec import parse_flow
from ..graph import mermaid, outline

if TYPE_CHECKING:
    from ..service import Callflow


def when(at: float | None) -> str:
    """A time as the designer's pages show it."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC") if at else ""


class DesignerDesk:
    """What a designer (or an admin) sees of the flows."""

    def __init__(self, service: Callflow) -> None:
        self.service = service

    def flows(self) -> list[dict[str, Any]]:
        """Every flow the service serves, with its version, problems and diagram."""

        svc = self.service
        library = svc.library
        library.refresh()
        rows: list[dict[str, Any]] = []
        for name, version in library.live_versions().items():
            flow = library.version(version)
            # One read of the flow's release record: what is live, by whom, what waits.
            release: Mapping[str, Any] = svc.releases.release(name) or {}
            went_live = next(
                (e for e in reversed(release.get("history", [])) if e["version"] == version),
                None,
            )
            rows.append(
                {
                    "name": name,
                    "version": version,
                    "published": release.get("live") == version,
                    # Who made the live version live, and when (None: the flows folder's).
                    "live_since": (
                        {
                            "by": went_live["by"],
                            "when": when(went_live.get("at")),
                            "action": went_live["action"],
                        }
                        if went_live
                        else None
                    ),
                    "pending": [
                        {
                            "version": e["version"],
                            "author": e.get("author") or e.get("by", ""),
                            "when": when(e.get("at")),
                            "message": e.get("message", ""),
                        }
                        for e in release.get("pending", [])
                    ],
                    "path": flow.path,
                    "description": flow.description,
                    "states": len(flow.states),
                    "problems": [str(p) for p in library.problems.get(flow.path, [])],
                    "diagram": mermaid(flow),
                }
            )
        live_paths = {row["path"] for row in rows}
        for path, problems in sorted(library.problems.items()):
            if path not in live_paths:
                rows.append(
                    {
                        "name": path.rsplit("/", 1)[-1],
                        "version": None,
                        "published": False,
                        "path": path,
                        "description": "",
                        "states": 0,
                        "problems": [str(p) for p in problems],
                        "diagram": "",
                        "live_since": None,
                        "pending": [],
                    }
                )
        return rows

    def flow(self, name: str, old: str = "", new: str = "") -> dict[str, Any] | None:
        """One flow's page: None when there is no such flow."""
        svc = self.service
        library = svc.library
        library.refresh()
        library.check_releases(force=True)
        live = library.live_versions().get(name)
        if live is None:
            return None
        diff, diff_error = "", ""
        if old and new:
            try:
                diff = svc.releases.diff(name, old, new) or "The two versions are the same."
            except CallflowError as exc:
                diff_error = str(exc)

        released = svc.releases.release(name)
        flow = library.version(live)
        return {
            "name": name,
            "live": live,
            "description": flow.description,
            "diagram": mermaid(flow),
            "outline": outline(flow),
            "protected": svc.releases.is_protected(name),
            "pending": [{**r, "when": when(r.get("at"))} for r in svc.releases.pending(name)],
            "published": bool(released and released["live"] == live),
            "versions": [{**r, "when": when(r.get("at"))} for r in svc.releases.versions(name)],
            "history": list(reversed(released["history"])) if released else [],
            "source": svc.releases.source(name, live),
            "tests": svc.releases.tests_source(name, live) or "",
            "diff": diff,
            "diff_error": diff_error,
            "check_seconds": svc.settings.flow_release_check_seconds,
        }

    def lint(self, source: str, label: str) -> list[dict[str, Any]]:
        """A flow's text checked as publishing checks it (problems and destinations outside
        the allow-lists), each problem at its line: what the editor marks as the designer
        types. Its tests are not run here (publishing runs them)."""

        svc = self.service
        try:
            flow = parse_flow(source, label, svc.registry)
        except FlowValidationError as exc:
            problems = exc.problems
        else:
            problems = destination_problems(flow, svc.allowlists.snapshot())
        return [{"file": p.path, "line": p.line, "message": p.message} for p in problems]

