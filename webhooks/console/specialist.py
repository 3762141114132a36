"""The specialist's console: their own hand-off, card and disclosure banner, their
wrap-up, their team's hand-offs (to take one that rang a team number), and meetings."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for

from callflow.desks import SpecialistDesk
from callflow.errors import DirectoryError, Forbidden, HandOffError, NotFound
from callflow.grades import grade_label
from callflow.meetings import PLACES, RISK_OUTCOMES

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
def meetings() -> Any:
    """Face-to-face meetings, their calls and what the customers said; arrange one; record
    the risk assessment an outdoor one waits for."""
    return _meetings_page()


def _meetings_page(
    status: int = 200,
    errors: list[tuple[str, str]] | None = None,
    values: dict[str, str] | None = None,
    form: str = "",
) -> Any:
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
    officers = [
        (o.number, f"{o.name} ({grade_label(o.grade)})")
        for o in svc.staff.officers()
        if o.active
    ]
    purposes = [
        (p["id"], f"{p['words']} ({p['lowest_grade_name']} and above)")
        for p in svc.meetings.purposes.active()
    ]
    page = render_template(
        "console/meetings.html",
        me=me(),
        meetings=rows,
        officers=officers,
        purposes=purposes,
        places=list(PLACES.items()),
        outcomes=list(RISK_OUTCOMES.items()),
        errors=errors or [],
        values=values or {},
        form=form,
    )
    return page, status


#: Where each of a meeting's fields is on the arrange form (an error links to it).
ARRANGE_FIELDS = {
    "customer": "customer_name", "number": "customer_number", "reference": "reference",
    "officer": "officer_number", "purpose": "purpose", "about": "about", "bring": "bring",
    "when": "when-day", "where": "where", "place": "place", "date_of_birth": "date_of_birth",
    "postcode": "postcode", "identity": "date_of_birth", "language": "language",
}  # fmt: skip


def _errors(exc: DirectoryError, form: str, fields: dict[str, str]) -> list[tuple[str, str]]:
    named = getattr(exc, "errors", None) or {"": str(exc)}
    found = []
    for field, text in named.items():
        target = fields.get(field, "")
        label = field.replace("_", " ")
        found.append((f"{form}-{target}" if target else "", f"{label.capitalize()}: {text}"))
    return found


@bp.post("/meetings")
@signed_in("specialist", "admin")
def arrange_meeting() -> Any:
    """Arrange a meeting from the form: its call is due at once (an outdoor one once its
    risk assessment is recorded)."""
    values = {k: request.form.get(k, "").strip() for k in request.form if k != "csrf_token"}
    day, month, year = (values.get(f"when_{p}", "") for p in ("day", "month", "year"))
    at = values.get("when_time", "")
    when: str | None = None  # all empty: the customer agrees a time on the call
    if day.isdigit() and month.isdigit() and year.isdigit() and re.fullmatch(r"\d{1,2}:\d{2}", at):
        hour, minute = at.split(":")
        when = f"{int(year):04d}-{int(month):02d}-{int(day):02d}T{int(hour):02d}:{minute}"
    elif day or month or year or at:
        when = "incomplete"  # refused in words, with a link to the date
    svc = service()
    try:
        meeting = svc.meetings.add(
            customer_name=values.get("customer_name", ""),
            customer_number=values.get("customer_number", ""),
            reference=values.get("reference", ""),
            officer_number=values.get("officer_number", ""),
            purpose=values.get("purpose", ""),
            about=values.get("about", ""),
            bring=values.get("bring", ""),
            when=when,
            where=values.get("where", ""),
            place=values.get("place", ""),
            date_of_birth=values.get("date_of_birth") or None,
            postcode=values.get("postcode") or None,
            language=values.get("language") or None,
            by=viewer().who,
        )
    except DirectoryError as exc:
        return _meetings_page(422, _errors(exc, "arrange", ARRANGE_FIELDS), values, "arrange")
    held = " It waits for a risk assessment before the customer is called." if (
        meeting["state"] == "needs_risk_assessment"
    ) else " Its call is due now."
    flash(f"Meeting {meeting['id']} with {meeting['customer_name']} arranged.{held}", "done")
    return redirect(url_for("console.meetings", _anchor=f"m-{meeting['id']}"), code=303)


@bp.post("/meetings/<meeting_id>/start")
@signed_in("specialist", "admin")
def meeting_start(meeting_id: str) -> Any:
    """As the meeting begins: the officer's outdoor verification checks, passed or failed."""
    svc = service()
    if svc.meetings.get(meeting_id) is None:
        abort(404, description="No such meeting.")
    values = {k: request.form.get(k, "").strip() for k in request.form if k != "csrf_token"}
    form = f"start-{meeting_id}"
    checks = values.get("checks", "")
    if checks not in {"passed", "failed"}:
        problem = [(f"{form}-checks", "Select whether the verification checks were passed")]
        return _meetings_page(422, problem, values, form)
    try:
        meeting = svc.meetings.record_start_checks(
            meeting_id, passed=checks == "passed", how="console", by=viewer().who,
            note=values.get("note", ""),
        )  # fmt: skip
    except DirectoryError as exc:
        return _meetings_page(422, _errors(exc, form, {"note": "note"}), values, form)
    if meeting["state"] == "held":
        flash(f"Meeting {meeting_id}: checks passed; the meeting is held.", "done")
    else:
        flash(f"Meeting {meeting_id}: checks failed; ended as not verified.", "done")
    return redirect(url_for("console.meetings", _anchor=f"m-{meeting_id}"), code=303)


#: The risk assessment form's fields.
RISK_FIELDS = {"assessor": "assessor", "date": "assessed-day", "outcome": "outcome",
               "reference": "risk_reference", "meeting": "assessor"}  # fmt: skip


@bp.post("/meetings/<meeting_id>/risk-assessment")
@signed_in("specialist", "admin")
def meeting_risk_assessment(meeting_id: str) -> Any:
    """Record the risk assessment an outdoor meeting waits for."""
    svc = service()
    if svc.meetings.get(meeting_id) is None:
        abort(404, description="No such meeting.")
    values = {k: request.form.get(k, "").strip() for k in request.form if k != "csrf_token"}
    day, month, year = (values.get(f"assessed_{p}", "") for p in ("day", "month", "year"))
    on = (
        f"{int(year):04d}-{int(month):02d}-{int(day):02d}"
        if day.isdigit() and month.isdigit() and year.isdigit()
        else ""
    )
    form = f"risk-{meeting_id}"
    try:
        meeting = svc.meetings.record_risk_assessment(
            meeting_id,
            assessor=values.get("assessor", ""),
            assessed_on=on,
            outcome=values.get("outcome", ""),
            reference=values.get("risk_reference", ""),
            by=viewer().who,
        )
    except DirectoryError as exc:
        return _meetings_page(422, _errors(exc, form, RISK_FIELDS), values, form)
    if meeting["state"] == "not_safe":
        flash(f"Meeting {meeting_id}: not safe to visit. Arrange it in an HMRC building.", "done")
    else:
        flash(f"Meeting {meeting_id}: risk assessment recorded. Its call is due now.", "done")
    return redirect(url_for("console.meetings", _anchor=f"m-{meeting_id}"), code=303)
