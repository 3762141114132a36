"""The supervisor's pages: the floor live, the wallboard, and the two acts a supervisor
may take (an agent Away, a call-back reopened). Built by ``callflow.desks.SupervisorDesk``.

Each page is drawn on the server; its live part (``.../panel``) is drawn again when the
event stream says the floor changed, and every 15 seconds whatever happens.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from callflow.desks import SupervisorDesk
from callflow.errors import Conflict, NotFound
from callflow.presence import AWAY_REASONS

from .base import bp, me, service, signed_in, viewer

SUPERVISORS = ("supervisor", "admin")


def _desk() -> SupervisorDesk:
    return SupervisorDesk(service())


@bp.get("/supervisor")
@signed_in(*SUPERVISORS)
def supervisor() -> Any:
    """The floor: queues by language, agents, hand-offs and grants, the line, today."""
    return render_template("console/supervisor.html", me=me(), floor=_desk().floor(viewer()))


@bp.get("/supervisor/panel")
@signed_in(*SUPERVISORS)
def supervisor_panel() -> Any:
    """The floor's live part alone, drawn again as it changes."""
    return render_template("console/_floor.html", me=me(), floor=_desk().floor(viewer()))


@bp.get("/supervisor/wallboard")
@signed_in(*SUPERVISORS)
def wallboard() -> Any:
    """The floor's figures in large type for a screen: no names, no identifiers."""
    return render_template("console/wallboard.html", me=me(), board=_desk().wallboard(viewer()))


@bp.get("/supervisor/wallboard/panel")
@signed_in(*SUPERVISORS)
def wallboard_panel() -> Any:
    """The wallboard's figures alone, drawn again as they change."""
    return render_template("console/_wallboard.html", board=_desk().wallboard(viewer()))


@bp.post("/supervisor/agents/<sees_id>/away")
@signed_in(*SUPERVISORS)
def supervisor_agent_away(sees_id: str) -> Any:
    """Set an agent Away with a reason (after their call, if they are on one)."""
    reason = request.form.get("reason", "")
    if reason not in AWAY_REASONS:
        flash(f"Choose why agent {sees_id} is away: nothing was changed.", "error")
        return redirect(url_for("console.supervisor", _anchor="agents"), code=303)
    try:
        present = _desk().set_away(viewer(), sees_id, reason)
    except NotFound as exc:
        abort(404, description=str(exc))
    later = " when their call ends" if present.get("away_after") else ""
    flash(f"Agent {sees_id} is away ({AWAY_REASONS[reason].lower()}){later}.", "done")
    return redirect(url_for("console.supervisor", _anchor="agents"), code=303)


@bp.post("/supervisor/callbacks/<callback_id>/reopen")
@signed_in(*SUPERVISORS)
def supervisor_reopen_callback(callback_id: str) -> Any:
    """Reopen a dropped or cancelled call-back: it waits its turn again, its place kept."""
    try:
        _desk().reopen_callback(viewer(), callback_id)
    except NotFound as exc:
        abort(404, description=str(exc))
    except Conflict as exc:
        flash(str(exc).capitalize() + ".", "error")
        return redirect(url_for("console.supervisor", _anchor="callbacks"), code=303)
    flash(f"Call-back {callback_id} is waiting its turn again, with its place kept.", "done")
    return redirect(url_for("console.supervisor", _anchor="callbacks"), code=303)
