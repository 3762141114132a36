"""The auditor's pages: the period's charts, the assurance cases, CSV and printable reports.

What they show comes from ``callflow.desks.AuditorDesk``, read for the period asked.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for

from callflow.desks import AuditorDesk
from callflow.directory import ORGANISATIONS
from callflow.reports import today_utc

from . import bp, me, now, service, signed_in


def _period() -> tuple[date, date, str | None]:
    def parse(name: str) -> date | None:
        text = request.args.get(name, "")
        try:
            return date.fromisoformat(text) if text else None
        except ValueError:
            abort(400, description=f"{name}: a date like 2026-11-23")

    until = parse("to") or today_utc(now())
    since = parse("from") or until - timedelta(days=27)
    org = request.args.get("org") or None
    if org is not None and org not in ORGANISATIONS:
        abort(400, description="org: one of the four organisations")
    return since, until, org


def _auditor_page(printable: bool) -> Any:
    since, until, org = _period()
    number = request.args.get("cases_page", "1")
    page = AuditorDesk(service()).page(since, until, org, int(number) if number.isdigit() else 1)
    return render_template(
        "console/auditor.html",
        me=me(),
        since=since,
        until=until,
        org=org,
        organisations=ORGANISATIONS,
        org_options=[(key, o.name) for key, o in ORGANISATIONS.items()],
        charts=page["charts"],
        assurance=page["assurance"],
        cases=page["cases"],
        cases_page=page["cases_page"],
        more_cases=page["more_cases"],
        printable=printable,
    )


@bp.get("/auditor")
@signed_in("auditor", "admin")
def auditor() -> Any:
    """Charts of the period, the assurance cases, exports and printable reports."""
    return _auditor_page(printable=False)


@bp.get("/auditor/report")
@signed_in("auditor", "admin")
def auditor_report() -> Any:
    """A printable report for one organisation (or all) and a period."""
    return _auditor_page(printable=True)


@bp.get("/auditor/audit.csv")
@signed_in("auditor", "admin")
def auditor_export() -> Response:
    """The period's audit entries as CSV."""
    since, until, org = _period()
    response = Response(AuditorDesk(service()).csv(since, until, org), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{since}-{until}.csv"'
    return response


@bp.post("/auditor/case/<case_id>")
@signed_in("auditor", "admin")
def auditor_case(case_id: str) -> Any:
    """Move an assurance case on (evidence seen or missing, closed)."""
    from callflow.assurance import AssuranceError

    state = request.form.get("state", "")
    if not state:
        flash(f"Choose what was found for case {case_id}: nothing was changed.", "error")
        return redirect(url_for("console.auditor", _anchor=f"case-{case_id}"), code=303)
    try:
        service().assurance.update(case_id, state, me().username, request.form.get("note", ""))
    except AssuranceError as exc:
        abort(409, description=str(exc))
    flash(f"Case {case_id} is now {state.replace('_', ' ')}.", "done")
    return redirect(url_for("console.auditor"), code=303)

