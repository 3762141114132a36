"""The auditor's pages: the period's charts, the assurance cases (a sample drawn and each
case's outcome recorded here), the audit log with its filters, the chain verified on
demand, CSV and printable reports.

What they show comes from ``callflow.desks.AuditorDesk``. Every bad input gets a GOV.UK
error summary with the field it is about, never a raw error.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for

from callflow.desks import AuditorDesk
from callflow.desks.auditor import LogQuery, call_sid
from callflow.directory import ORGANISATIONS
from callflow.errors import AssuranceError
from callflow.reports import today_utc

from .base import bp, me, now, service, signed_in, viewer

#: The longest period one page may ask for.
MAX_DAYS = 3 * 366


@dataclass
class Period:
    """A period asked for on a page: its days, the organisation, the values as typed (to
    show again) and what was wrong with them."""

    since: date
    until: date
    org: str | None
    values: dict[str, str] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)


def _date(source: Any, prefix: str, label: str, period: Period) -> date | None:
    """A GOV.UK date input's three fields (``from_day``...), or an ISO date (``from``, from
    a link); a field error when it is incomplete or not a real date."""
    parts = {p: str(source.get(f"{prefix}_{p}", "")).strip() for p in ("day", "month", "year")}
    period.values.update({f"{prefix}_{p}": v for p, v in parts.items()})
    if not any(parts.values()):
        text = str(source.get(prefix, "")).strip()
        if not text:
            return None
        try:
            found = date.fromisoformat(text)
        except ValueError:
            period.errors.append((prefix, f"{label} must be a real date, like 27 3 2026"))
            return None
        period.values.update(
            {f"{prefix}_day": str(found.day), f"{prefix}_month": str(found.month),
             f"{prefix}_year": str(found.year)}
        )  # fmt: skip
        return found
    missing = [p for p, v in parts.items() if not v]
    if missing:
        period.errors.append((prefix, f"{label} must include a {' and '.join(missing)}"))
        return None
    if not all(v.isdigit() for v in parts.values()) or len(parts["year"]) != 4:
        period.errors.append((prefix, f"{label} must be a real date, like 27 3 2026"))
        return None
    try:
        return date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except ValueError:
        period.errors.append((prefix, f"{label} must be a real date, like 27 3 2026"))
        return None


def _period(source: Any = None, default_days: int = 27) -> Period:
    """The period (and organisation) a page asks for; the last four weeks by default. A
    reversed, impossible or too long period is an error on its field."""
    source = request.args if source is None else source
    today = today_utc(now())
    period = Period(today - timedelta(days=default_days), today, None)
    since = _date(source, "from", "The start of the period", period)
    until = _date(source, "to", "The end of the period", period)
    org = str(source.get("org", "") or "")
    if org and org not in ORGANISATIONS:
        period.errors.append(("org", "Choose one of the four organisations"))
        org = ""
    period.org = org or None
    if period.errors:
        return period
    period.until = until or today
    period.since = since or period.until - timedelta(days=default_days)
    if period.until < period.since:
        period.errors.append(("to", "The end of the period must be the same as or after its start"))
    elif (period.until - period.since).days > MAX_DAYS:
        period.errors.append(("to", "The period can be at most three years"))
    if period.errors:
        period.since, period.until = today - timedelta(days=default_days), today
    return period


def _auditor_page(printable: bool, status: int = 200, **extra: Any) -> Any:
    period = extra.pop("period", None) or _period()
    number = request.args.get("cases_page", "1")
    desk = AuditorDesk(service())
    page = desk.page(period.since, period.until, period.org, int(number) if number.isdigit() else 1)
    errors = [*period.errors, *extra.pop("errors", [])]
    html = render_template(
        "console/auditor.html",
        me=me(),
        since=period.since,
        until=period.until,
        org=period.org,
        values=period.values,
        errors=errors,
        field_errors=dict(errors),
        organisations=ORGANISATIONS,
        org_options=[(key, o.name) for key, o in ORGANISATIONS.items()],
        charts=page["charts"],
        share_over=page["share_over"],
        share_threshold=page["share_threshold"],
        assurance=page["assurance"],
        cases=page["cases"],
        cases_page=page["cases_page"],
        more_cases=page["more_cases"],
        printable=printable,
        sample=extra.pop("sample", {}),
    )
    return html, 400 if errors else status


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
def auditor_export() -> Any:
    """The period's audit entries as CSV."""
    period = _period()
    if period.errors:
        return _auditor_page(printable=False, period=period)
    since, until = period.since, period.until
    body = AuditorDesk(service()).csv(since, until, period.org)
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{since}-{until}.csv"'
    return response


@bp.post("/auditor/case/<case_id>")
@signed_in("auditor", "admin")
def auditor_case(case_id: str) -> Any:
    """Move an assurance case on (evidence seen or missing, closed)."""
    state = request.form.get("state", "")
    if not state:
        flash(f"Choose what was found for case {case_id}: nothing was changed.", "error")
        return redirect(url_for("console.auditor", _anchor=f"case-{case_id}"), code=303)
    try:
        AuditorDesk(service()).update_case(viewer(), case_id, state, request.form.get("note", ""))
    except AssuranceError as exc:
        flash(f"Case {case_id}: {exc}. Nothing was changed.", "error")
        return redirect(url_for("console.auditor", _anchor=f"case-{case_id}"), code=303)
    flash(f"Case {case_id} is now {state.replace('_', ' ')}.", "done")
    return redirect(url_for("console.auditor", _anchor=f"case-{case_id}"), code=303)


@bp.post("/auditor/sample")
@signed_in("auditor", "admin")
def auditor_sample() -> Any:
    """Draw a reproducible random sample of an organisation's hand-offs for assurance."""
    form = request.form
    period = _period(form, default_days=27)
    errors: list[tuple[str, str]] = []
    if not period.org:
        errors.append(("org", "Choose the organisation to sample"))
    size_text, seed_text = form.get("size", "").strip(), form.get("seed", "").strip()
    if not size_text.isdigit() or not 1 <= int(size_text) <= 500:
        errors.append(("size", "The sample size must be a whole number from 1 to 500"))
    if seed_text and not seed_text.isdigit():
        errors.append(("seed", "The seed must be a whole number (or leave it blank)"))
    sample = {"size": size_text, "seed": seed_text}
    if errors or period.errors:
        return _auditor_page(printable=False, period=period, errors=errors, sample=sample)
    assert period.org is not None
    seed = int(seed_text) if seed_text else secrets.randbelow(10**9)
    try:
        cases = AuditorDesk(service()).sample(
            viewer(), period.org, period.since, period.until, int(size_text), seed
        )
    except AssuranceError as exc:
        return _auditor_page(printable=False, period=period, errors=[("", str(exc))], sample=sample)
    name = ORGANISATIONS[period.org].name
    flash(
        f"Drew {len(cases)} hand-off(s) of {name} from {period.since:%-d %B %Y} to "
        f"{period.until:%-d %B %Y} (seed {seed}: the same seed draws the same sample).",
        "done",
    )
    return redirect(url_for("console.auditor", _anchor="cases"), code=303)


@bp.post("/auditor/verify")
@signed_in("auditor", "admin")
def auditor_verify() -> Any:
    """Check the whole audit chain now: the same check as ``callflow audit verify``."""
    report = AuditorDesk(service()).verify(viewer())
    flash(f"Audit chain: {report['text']}", "done" if report["ok"] else "error")
    return redirect(url_for("console.auditor_log"), code=303)


@bp.get("/auditor/log")
@signed_in("auditor", "admin")
def auditor_log() -> Any:
    """The audit log: filtered by period, kind, organisation, adviser and call, a page at a
    time, newest first; each entry links to its call's trace."""
    desk = AuditorDesk(service())
    period = _period(default_days=6)
    errors = list(period.errors)
    kind = request.args.get("kind", "").strip()
    choices = desk.log_choices(viewer())
    if kind and kind not in choices["kinds"]:
        errors.append(("kind", "Choose a kind of entry from the list"))
        kind = ""
    adviser = request.args.get("adviser", "").strip()
    if adviser and not (adviser.isdigit() and 4 <= len(adviser) <= 10):
        errors.append(("adviser", "An adviser number is 4 to 10 digits"))
        adviser = ""
    typed_call = request.args.get("call", "").strip()
    call = call_sid(typed_call) if typed_call else ""
    if call is None:
        errors.append(("call", "A CallSid is CA followed by 32 letters and digits"))
        call = ""
    cursor = {k: request.args.get(k, "") for k in ("before", "after")}
    for key, value in cursor.items():
        if value and not all(part.isdigit() for part in value.split("-", 1)):
            cursor[key] = ""
    page: dict[str, Any] = {"entries": [], "newer": "", "older": "", "total": None}
    if not errors:
        query = LogQuery(
            period.since, period.until, kind, period.org or "", adviser, call, **cursor
        )
        page = desk.log(viewer(), query)
    filters = {
        "from": period.since.isoformat(),
        "to": period.until.isoformat(),
        "kind": kind,
        "org": period.org or "",
        "adviser": adviser,
        "call": call or "",
    }
    html = render_template(
        "console/audit_log.html",
        me=me(),
        period=period,
        values={**period.values, "kind": kind, "adviser": adviser, "call": typed_call},
        errors=errors,
        field_errors=dict(errors),
        choices=choices,
        filters={k: v for k, v in filters.items() if v},
        **page,
    )
    return html, 400 if errors else 200
