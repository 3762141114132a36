"""Call traces: find a call (designers and admins), and read what happened on it
(designers, auditors and admins). Built by ``callflow.desks.TraceDesk``; every read audited."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from flask import Response, abort, redirect, render_template, request, url_for

from callflow.desks import TraceDesk

from . import bp, me, service, signed_in, viewer
from .designer import DESIGNER_CSP

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
STATE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _day(name: str) -> float | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        abort(400, description=f"{name}: a date like 2026-11-30")
    start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    return start + (86400 if name == "to" else 0)


@bp.get("/calls")
@signed_in("designer", "auditor", "admin")
def calls() -> Any:
    """Find a call: by CallSid (anyone who reads traces), or by flow, outcome and day
    (designers and admins)."""
    call = request.args.get("call", "").strip()
    if call:
        if not CALL_SID.match(call):
            abort(400, description="call: a CallSid like CA followed by 32 letters and digits")
        return redirect(url_for("console.call_trace", call_sid=call), code=303)
    if me().role == "auditor":
        abort(403, description="Auditors open a call's trace by its CallSid.")
    flow = request.args.get("flow", "").strip()
    outcome = request.args.get("outcome", "").strip()
    if (flow and not STATE.match(flow)) or (outcome and not STATE.match(outcome)):
        abort(400, description="flow and outcome: names like vstrs_inbound and connect")
    number = request.args.get("page", "1")
    found = TraceDesk(service()).search(
        viewer(),
        flow=flow,
        outcome=outcome,
        since=_day("from"),
        until=_day("to"),
        page=int(number) if number.isdigit() else 1,
    )
    return render_template(
        "console/calls.html",
        me=me(),
        flow=flow,
        outcome=outcome,
        since=request.args.get("from", ""),
        until=request.args.get("to", ""),
        retention_days=service().settings.trace_retention_days,
        **found,
    )


@bp.get("/calls/<call_sid>")
@signed_in("designer", "auditor", "admin")
def call_trace(call_sid: str) -> Any:
    """What happened on one call: each webhook, and its path on the flow's diagram."""
    if not CALL_SID.match(call_sid):
        abort(404, description="There is no such call.")
    trace = TraceDesk(service()).trace(viewer(), call_sid)
    if trace is None:
        abort(
            404,
            description=(
                f"No trace is kept for {call_sid}: traces are kept "
                f"{service().settings.trace_retention_days} days."
            ),
        )
    page = render_template("console/trace.html", me=me(), trace=trace)
    response = Response(page)
    response.headers["Content-Security-Policy"] = DESIGNER_CSP
    return response

