"""The specialist's console: their own hand-off, card and disclosure banner, their
wrap-up, their team's hand-offs (to take one that rang a team number), and meetings."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for

from callflow.desks import SpecialistDesk
from callflow.errors import DirectoryError, Forbidden, HandOffError, NotFound

from ..answers import status_of
from .base import bp, me, now, service, signed_in, viewer


def specialist_state() -> dict[str, Any]:
    """What the specialist's console shows: their own hand-off and banner, their team's."""
    return SpecialistDesk(service()).state(viewer())


@bp.get("/specialist")
@signed_in("specialist")
def specialist() -> Any:
    """The specialist's console."""
    svc = service()
    team = svc.staff.team(me().team)
    person = svc.staff.specialist(me().specialist) if me().specialist else None
    state = specialist_state()
    return render_template(
        "console/specialist.html", me=me(), team=team, person=person, state=state
    )


@bp.get("/specialist/state")
@signed_in("specialist")
def specialist_state_json() -> Response:
    return jsonify(specialist_state())


@bp.post("/specialist/availability")
@signed_in("specialist")
def specialist_availability() -> Any:
    """Available for hand-offs, or Away."""
    if not me().specialist:
        abort(403, description="Your account is not a registered specialist's.")
    try:
        service().staff.set_specialist_availability(
            me().specialist, request.form.get("status", ""), now()
        )
    except DirectoryError:
        abort(422, description="Choose available or away.")
    return redirect(url_for("console.specialist"), code=303)


@bp.post("/specialist/handoff/<handoff_id>/take")
@signed_in("specialist")
def take_handoff(handoff_id: str) -> Any:
    """Take a hand-off that rang the team's number (before the SEES ID check completes):
    one specialist wins; a hand-off someone else took is a conflict (409)."""
    wants_json = request.accept_mimetypes.best == "application/json"
    try:
        service().handoffs.take(handoff_id, viewer())
    except (Forbidden, HandOffError) as exc:
        status = status_of(exc) or 409
        if wants_json:
            return jsonify(error=str(exc), status=status), status
        if isinstance(exc, Forbidden | NotFound):
            abort(status, description=str(exc))
        flash(f"Not taken: {exc}.", "error")
        return redirect(url_for("console.specialist"), code=303)
    if wants_json:
        return jsonify(taken=handoff_id)
    flash("You have taken the hand-off: key the agent's SEES ID on your phone.", "done")
    return redirect(url_for("console.specialist"), code=303)


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
