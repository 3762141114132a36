"""The specialist's console: the hand-off card, the disclosure banner, meetings."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, render_template

from callflow.desks import SpecialistDesk

from . import bp, me, service, signed_in, viewer


def specialist_state() -> dict[str, Any]:
    """What the specialist's console shows: the latest hand-off to the team, and the banner."""
    return SpecialistDesk(service()).state(viewer())


@bp.get("/specialist")
@signed_in("specialist")
def specialist() -> Any:
    """The specialist's console."""
    team = service().staff.team(me().team)
    return render_template("console/specialist.html", me=me(), team=team)


@bp.get("/specialist/state")
@signed_in("specialist")
def specialist_state_json() -> Response:
    return jsonify(specialist_state())



# ---------------------------------------------------------------- meetings


@bp.get("/meetings")
@signed_in("specialist", "admin")
def meetings() -> str:
    """Face-to-face meetings, their calls and what the customers said."""
    from datetime import UTC, datetime

    def when(at: float | None) -> str:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC") if at else ""

    svc = service()
    rows = []
    for meeting in svc.meetings.all():
        shown = svc.meetings.public(meeting)
        shown["next_call"] = when(meeting.get("next_call_at"))
        shown["calls"] = [
            {"at": when(a["at"]), "result": a["result"] or "in progress"}
            for a in meeting["attempts"]
        ]
        rows.append(shown)
    return render_template("console/meetings.html", me=me(), meetings=rows)

