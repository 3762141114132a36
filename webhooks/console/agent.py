"""The VSTRS agent's console: their working state, the call in hand, the hand-off form,
after-call work.

The form belongs to one call: it carries that call's CallSid, is kept as a draft on the
call as the agent types (a reload restores it), and a form sent for an earlier call is
refused (and cleared) rather than handed off with the next caller. A hand-off that did
not happen keeps its details in the form, with a retry when the team is still open.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for

from callflow.desks import AgentDesk
from callflow.errors import (
    CallflowError,
    DirectoryError,
    FieldErrors,
    Forbidden,
    HandOffError,
    NotFound,
)
from callflow.presence import AWAY_REASONS
from callflow.vstrs import DRAFT_FIELDS, OUTCOMES

from ..answers import status_of
from .base import _links, bp, me, service, signed_in, viewer

#: The form's fields, as the page names them.
FIELDS = ("call_sid", *DRAFT_FIELDS)
#: Where each of the service's error keys is shown: the field the summary links to.
TARGETS = {
    "team": "team",
    "customer.name": "customer_name",
    "customer.reference": "reference",
    "customer": "customer_name",
    "issue": "issue",
    "need": "need",
    "need_detail": "need_detail",
    "authorisation.type": "auth_type",
    "authorisation.date": "auth-date-day",
    "authorisation.reference": "auth_reference",
    "authorisation": "auth_type",
    "callback.turnaround": "turnaround",
    "callback.urgent": "urgent",
    "outcome": "outcome",
    "notes": "notes",
    "reason": "away-reason",
}
#: The service's field errors in the words the design system uses on a form.
MESSAGES = {
    "team": "Select the specialist team",
    "customer.name": "Enter the customer's name",
    "customer.reference": (
        "Enter a UTR (10 digits) or a National Insurance number, like AB 12 34 56 C"
    ),
    "issue": "Enter the issue the customer needs help with",
    "need": "Select why the case needs a specialist",
    "need_detail": "Say why the case needs a specialist, in 300 characters or fewer",
    "authorisation.type": "Select whether the authorisation was signed or recorded orally",
    "authorisation.date": "Enter the date the authorisation was given, today or in the past",
    "authorisation.reference": "Enter the organisation's reference for the authorisation",
    "callback.turnaround": "Turnaround must be 200 characters or fewer",
    "outcome": "Select what happened on the call",
    "notes": "Notes must be 2000 characters or fewer",
    "reason": "Select why you are going away",
}  # fmt: skip


def agent_state() -> dict[str, Any]:
    """What the agent's console shows."""
    return AgentDesk(service()).state(viewer())


@bp.get("/agent")
@signed_in("vstrs_agent")
def agent() -> Any:
    """The VSTRS agent's console."""
    return _agent_page(form=AgentDesk(service()).form_for(viewer()))


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
    outcome_form: dict[str, str] | None = None,
) -> Any:
    svc = service()
    desk = AgentDesk(svc)
    state = desk.state(viewer())
    record = desk.current_call(viewer())
    # The teams to hand off to, as the API gives them: open ones can be chosen; a closed
    # one says why and when it reopens, and is never preselected.
    teams = desk.teams(viewer())
    form = dict(form or {})
    if form.get("team") and not any(t["id"] == form["team"] and t["open"] for t in teams):
        form["team"] = ""
    shown = dict(errors or {})
    summary = [(TARGETS.get(key, ""), text) for key, text in shown.items()]
    if form_error and not summary:
        summary = [("", form_error)]
    handoff = state["handoff"]
    sent = AgentDesk.in_progress(handoff) or (
        handoff is not None and handoff["state"] == "taken_over"
    )
    return (
        render_template(
            "console/agent.html",
            me=me(),
            state=state,
            presence=state["presence"],
            availability=state["availability"],
            away_reasons=AWAY_REASONS,
            outcomes=OUTCOMES,
            teams=teams,
            needs=[(n["id"], n["label"]) for n in svc.handoffs.needs.active()],
            errors=shown,
            summary=summary,
            form_error=form_error,
            form=(handoff or {}).get("sent", form) if sent and handoff else form,
            form_locked=sent,
            outcome_form=outcome_form or {},
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
    """Available, Away (with a reason: mid-call it waits for the call's end), or Ready
    (the end of after-call work)."""
    status = request.form.get("status", "")
    svc = service()
    if status == "ready":
        svc.vstrs.set_agent_availability(me().sees_id, "ready", _links())
        return redirect(url_for("console.agent"), code=303)
    reason = request.form.get("reason", "") if status == "away" else None
    if status == "away" and reason not in AWAY_REASONS:
        return _agent_page(errors={"reason": MESSAGES["reason"]}, status=422)
    try:
        presence = svc.vstrs.set_agent_availability(me().sees_id, status, _links(), reason)
    except DirectoryError:
        return _agent_page(form_error="Choose available or away.", status=422)
    if status == "away" and presence.get("away_after"):
        flash(f"You will be away ({AWAY_REASONS[reason or 'other']}) when this call ends.")
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


@bp.post("/agent/draft")
@signed_in("vstrs_agent")
def save_draft() -> Any:
    """The hand-off form as the agent types it, kept on its call (JSON or a form post)."""
    body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    if not isinstance(body, dict):
        return jsonify(error="the body must be an object", status=400), 400
    call_sid = str(body.get("call_sid", ""))
    fields = {k: v for k, v in body.items() if k in DRAFT_FIELDS}
    try:
        draft = service().vstrs.save_draft(call_sid, viewer(), fields)
    except Forbidden as exc:
        return jsonify(error=str(exc), status=403), 403
    except DirectoryError as exc:
        return jsonify(error=str(exc), status=422), 422
    return jsonify(saved_at=draft["saved_at"])


@bp.post("/agent/handoff")
@signed_in("vstrs_agent")
def request_handoff() -> Any:
    """The hand-off form: errors are summarised at the top and shown beside each field."""
    form = {name: request.form.get(name, "") for name in FIELDS}
    desk = AgentDesk(service())
    record = desk.current_call(viewer())
    if record is None:
        return _agent_page(form_error="You have no call to hand off.", status=409)
    if form["call_sid"] != record["call_sid"]:
        # The form was filled in for an earlier call (or before this one came): nothing of
        # it goes with this caller's hand-off.
        return _agent_page(
            form=desk.form_for(viewer()),
            form_error=(
                "That form was for an earlier call, so it has been cleared. "
                "Check the details with the caller you have now."
            ),
            status=409,
        )
    svc = service()
    # What was sent is the call's draft too: a hand-off that does not happen keeps it.
    svc.vstrs.save_draft(record["call_sid"], viewer(), {k: form[k] for k in DRAFT_FIELDS})
    given, date_error = authorisation_date(request.form)
    body = {
        "team": form["team"],
        "customer": {"name": form["customer_name"], "reference": form["reference"]},
        "issue": form["issue"],
        "need": form["need"],
        "need_detail": form["need_detail"],
        "callback": {"urgent": form["urgent"] == "yes", "turnaround": form["turnaround"]},
        "authorisation": {
            "type": form["auth_type"],
            "date": given,
            "reference": form["auth_reference"],
        },
    }
    try:
        svc.handoffs.request(record["call_sid"], me().sees_id, body, _links())
    except HandOffError as exc:
        errors = {key: _message(key, text) for key, text in exc.errors.items()}
        if date_error:
            errors["authorisation.date"] = date_error
        return _agent_page(
            errors=errors, form_error=str(exc), status=status_of(exc) or 409, form=form
        )
    except CallflowError as exc:
        return _agent_page(
            form_error=f"The hand-off could not start: {exc}", status=503, form=form
        )
    return redirect(url_for("console.agent"), code=303)


@bp.post("/agent/handoff/<handoff_id>/<action>")
@signed_in("vstrs_agent")
def handoff_action(handoff_id: str, action: str) -> Any:
    """Cancel a hand-off in progress, hand over after the brief (the agent leaves), or try
    one that did not happen again with the same details."""
    svc = service()
    if action not in {"cancel", "complete", "retry"}:
        abort(404)
    try:
        if action == "cancel":
            svc.handoffs.cancel(handoff_id, me().sees_id, _links())
        elif action == "retry":
            svc.handoffs.retry(handoff_id, me().sees_id, _links())
        else:
            svc.handoffs.complete(handoff_id, _links(), agent_sees_id=me().sees_id)
    except HandOffError as exc:
        if isinstance(exc, Forbidden | NotFound):
            abort(404)  # not theirs: as if there were no such hand-off
        errors = {key: _message(key, text) for key, text in exc.errors.items()}
        form = AgentDesk(svc).form_for(viewer())
        return _agent_page(
            errors=errors, form_error=str(exc), status=status_of(exc) or 409, form=form
        )
    return redirect(url_for("console.agent"), code=303)


@bp.post("/agent/outcome")
@signed_in("vstrs_agent")
def record_outcome() -> Any:
    """After-call work: what became of the call, with notes; "Save and ready" ends it."""
    svc = service()
    call_sid = request.form.get("call_sid", "")
    code = request.form.get("outcome", "")
    notes = request.form.get("notes", "")
    try:
        svc.vstrs.record_outcome(call_sid, viewer(), code, notes)
    except Forbidden:
        abort(403, description="That call is not yours: only the agent who took it may.")
    except FieldErrors as exc:
        errors = {key: MESSAGES.get(key, text) for key, text in exc.errors.items()}
        return _agent_page(
            errors=errors, status=422, outcome_form={"outcome": code, "notes": notes}
        )
    if request.form.get("then") == "ready":
        svc.vstrs.set_agent_availability(me().sees_id, "ready", _links())
    flash("Outcome saved.")
    return redirect(url_for("console.agent"), code=303)
