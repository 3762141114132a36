"""The VSTRS agent's console: availability, the call in hand, the hand-off form.

The form belongs to one call: it carries that call's CallSid, and a form sent for an
earlier call is refused (and cleared) rather than handed off with the next caller. A
transfer that did not happen keeps its details in the form, with a retry.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, abort, jsonify, redirect, render_template, request, url_for

from callflow.desks import AgentDesk
from callflow.errors import CallflowError, DirectoryError
from callflow.handoff import HandOffError

from . import _links, bp, me, now, service, signed_in, viewer

#: The form's fields, as the page names them.
FIELDS = (
    "call_sid",
    "team",
    "customer_name",
    "reference",
    "issue",
    "auth_type",
    "auth_day",
    "auth_month",
    "auth_year",
    "auth_reference",
    "urgent",
    "turnaround",
)
#: Where each of the service's error keys is shown: the field the summary links to.
TARGETS = {
    "team": "team",
    "customer.name": "customer_name",
    "customer.reference": "reference",
    "customer": "customer_name",
    "issue": "issue",
    "authorisation.type": "auth_type",
    "authorisation.date": "auth-date-day",
    "authorisation.reference": "auth_reference",
    "authorisation": "auth_type",
    "callback.turnaround": "turnaround",
    "callback.urgent": "urgent",
}
#: The service's field errors in the words the design system uses on a form.
MESSAGES = {
    "team": "Select the specialist team",
    "customer.name": "Enter the customer's name",
    "customer.reference": (
        "Enter a UTR (10 digits) or a National Insurance number, like AB 12 34 56 C"
    ),
    "issue": "Enter the issue the customer needs help with",
    "authorisation.type": "Select whether the authorisation was signed or recorded orally",
    "authorisation.date": "Enter the date the authorisation was given, today or in the past",
    "authorisation.reference": "Enter the organisation's reference for the authorisation",
    "callback.turnaround": "Turnaround must be 200 characters or fewer",
}  # fmt: skip


def _current_call() -> dict[str, Any] | None:
    return AgentDesk(service()).current_call(viewer())


def agent_state() -> dict[str, Any]:
    """What the agent's console shows."""
    return AgentDesk(service()).state(viewer())


@bp.get("/agent")
@signed_in("vstrs_agent")
def agent() -> Any:
    """The VSTRS agent's console."""
    return _agent_page(form=AgentDesk(service()).form_to_retry(viewer()))


def _message(key: str, text: str) -> str:
    if key == "customer.reference" and "check digit" in text:
        return "The UTR's check digit does not match: check the 10 digits with the caller"
    if key == "team" and text.startswith("closed"):
        return f"That team is {text}"
    return MESSAGES.get(key, text)


def _agent_page(
    errors: dict[str, str] | None = None,
    form_error: str = "",
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Any:
    svc = service()
    record = _current_call()
    # The teams to hand off to, as the API gives them: open ones can be chosen; a closed
    # one says why and when it reopens.
    teams = AgentDesk(svc).teams(viewer())
    shown = {k: v for k, v in (errors or {}).items()}
    summary = [(TARGETS.get(key, ""), text) for key, text in shown.items()]
    if form_error and not summary:
        summary = [("", form_error)]
    return (
        render_template(
            "console/agent.html",
            me=me(),
            availability=svc.staff.availability(me().sees_id)["status"],
            teams=teams,
            errors=shown,
            summary=summary,
            form_error=form_error,
            form=form if form is not None else {},
            call_sid=record["call_sid"] if record else "",
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


def authorisation_date(form: Any) -> tuple[str, str]:
    """The date input's day, month and year as YYYY-MM-DD, or an error in words."""
    parts = {p: form.get(f"auth_{p}", "").strip() for p in ("day", "month", "year")}
    if not any(parts.values()):
        return "", MESSAGES["authorisation.date"]
    missing = [p for p, v in parts.items() if not v]
    if missing:
        return "", f"The date the authorisation was given must include a {' and a '.join(missing)}"
    if not all(v.isdigit() for v in parts.values()) or len(parts["year"]) != 4:
        return "", "The date the authorisation was given must be a real date, like 27 3 2026"
    try:
        given = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except ValueError:
        return "", "The date the authorisation was given must be a real date, like 27 3 2026"
    return given.isoformat(), ""


@bp.post("/agent/handoff")
@signed_in("vstrs_agent")
def request_handoff() -> Any:
    """The hand-off form: errors are summarised at the top and shown beside each field."""
    form = {name: request.form.get(name, "") for name in FIELDS}
    record = _current_call()
    if record is None:
        return _agent_page(form_error="You have no call to hand off.", status=409)
    if form["call_sid"] != record["call_sid"]:
        # The form was filled in for an earlier call (or before this one came): nothing of
        # it goes with this caller's hand-off.
        return _agent_page(
            form_error=(
                "That form was for an earlier call, so it has been cleared. "
                "Check the details with the caller you have now."
            ),
            status=409,
        )
    given, date_error = authorisation_date(request.form)
    body = {
        "team": form["team"],
        "customer": {"name": form["customer_name"], "reference": form["reference"]},
        "issue": form["issue"],
        "callback": {"urgent": form["urgent"] == "yes", "turnaround": form["turnaround"]},
        "authorisation": {
            "type": form["auth_type"],
            "date": given,
            "reference": form["auth_reference"],
        },
    }
    try:
        service().handoffs.request(record["call_sid"], me().sees_id, body, _links())
    except HandOffError as exc:
        errors = {key: _message(key, text) for key, text in exc.errors.items()}
        if date_error:
            errors["authorisation.date"] = date_error
        return _agent_page(errors=errors, form_error=str(exc), status=exc.status, form=form)
    except CallflowError as exc:
        return _agent_page(form_error=f"The transfer could not start: {exc}", status=503, form=form)
    return redirect(url_for("console.agent"), code=303)


@bp.post("/agent/handoff/<handoff_id>/<action>")
@signed_in("vstrs_agent")
def handoff_action(handoff_id: str, action: str) -> Any:
    """Cancel a hand-off in progress, hand over after the brief (the agent leaves), or try a
    transfer that did not happen again with the same details."""
    svc = service()
    doc = svc.handoffs.get(handoff_id)
    allowed = {"cancel", "complete", "retry"}
    if doc is None or doc["agent_sees_id"] != me().sees_id or action not in allowed:
        abort(404)
    try:
        if action == "cancel":
            svc.handoffs.cancel(handoff_id, me().sees_id, _links())
        elif action == "retry":
            svc.handoffs.retry(handoff_id, me().sees_id, _links())
        else:
            svc.handoffs.complete(handoff_id, _links())
    except HandOffError as exc:
        errors = {key: _message(key, text) for key, text in exc.errors.items()}
        form = AgentDesk(svc).form_to_retry(viewer())
        return _agent_page(errors=errors, form_error=str(exc), status=exc.status, form=form)
    return redirect(url_for("console.agent"), code=303)
