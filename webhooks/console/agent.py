"""The VSTRS agent's console: availability, the call in hand, the hand-off form."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, jsonify, redirect, render_template, request, url_for

from callflow.desks import AgentDesk
from callflow.errors import CallflowError, DirectoryError
from callflow.handoff import HandOffError

from . import _links, bp, me, now, service, signed_in, viewer


def _current_call() -> dict[str, Any] | None:
    return AgentDesk(service()).current_call(viewer())


def agent_state() -> dict[str, Any]:
    """What the agent's console shows."""
    return AgentDesk(service()).state(viewer())


@bp.get("/agent")
@signed_in("vstrs_agent")
def agent() -> Any:
    """The VSTRS agent's console."""
    return _agent_page()


def _agent_page(
    errors: dict[str, str] | None = None, form_error: str = "", status: int = 200
) -> Any:
    svc = service()
    return (
        render_template(
            "console/agent.html",
            me=me(),
            availability=svc.staff.availability(me().sees_id)["status"],
            teams=[t for t in svc.staff.teams() if t.active],
            errors=errors or {},
            form_error=form_error,
            form=request.form if request.method == "POST" else {},
        ),
        status,
    )


@bp.get("/agent/state")
@signed_in("vstrs_agent")
def agent_state_json() -> Response:
    return jsonify(agent_state())


@bp.post("/agent/availability")
@signed_in("vstrs_agent")
def set_availability() -> Any:
    status = request.form.get("status", "")
    try:
        service().staff.set_availability(me().sees_id, status, now())
    except DirectoryError:
        return _agent_page(form_error="Choose available or away.", status=422)
    return redirect(url_for("console.agent"), code=303)



@bp.post("/agent/handoff")
@signed_in("vstrs_agent")
def request_handoff() -> Any:
    """The hand-off form: field errors are shown beside each field."""
    record = _current_call()
    if record is None:
        return _agent_page(form_error="You have no call to hand off.", status=409)
    form = request.form
    body = {
        "team": form.get("team", ""),
        "customer": {"name": form.get("customer_name", ""), "reference": form.get("reference", "")},
        "issue": form.get("issue", ""),
        "callback": {
            "urgent": form.get("urgent") == "yes",
            "turnaround": form.get("turnaround", ""),
        },
        "authorisation": {
            "type": form.get("auth_type", ""),
            "date": form.get("auth_date", ""),
            "reference": form.get("auth_reference", ""),
        },
    }
    try:
        service().handoffs.request(record["call_sid"], me().sees_id, body, _links())
    except HandOffError as exc:
        return _agent_page(errors=exc.errors, form_error=str(exc), status=exc.status)
    except CallflowError as exc:
        return _agent_page(form_error=f"The transfer could not start: {exc}", status=503)
    return redirect(url_for("console.agent"), code=303)


@bp.post("/agent/handoff/<handoff_id>/<action>")
@signed_in("vstrs_agent")
def handoff_action(handoff_id: str, action: str) -> Any:
    """Cancel a hand-off in progress, or hand over after the brief (the agent leaves)."""
    svc = service()
    doc = svc.handoffs.get(handoff_id)
    if doc is None or doc["agent_sees_id"] != me().sees_id or action not in {"cancel", "complete"}:
        abort(404)
    try:
        if action == "cancel":
            svc.handoffs.cancel(handoff_id, me().sees_id, _links())
        else:
            svc.handoffs.complete(handoff_id, _links())
    except HandOffError as exc:
        return _agent_page(form_error=str(exc), status=exc.status)
    return redirect(url_for("console.agent"), code=303)

