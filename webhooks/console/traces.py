"""Call traces: find a call, and read what happened on it (designers, auditors and
admins). Built by ``callflow.desks.TraceDesk``; every read audited."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, redirect, render_template, request, url_for

from callflow.desks import TraceDesk
from callflow.desks.auditor import CALL_SID, call_sid

from .auditor import _period
from .base import bp, me, service, signed_in, viewer
from .designer import DESIGNER_CSP

STATE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@bp.get("/calls")
@signed_in("designer", "auditor", "admin")
def calls() -> Any:
    """Find a call: by its CallSid, or the ended calls of a flow, an outcome and a period
    (designers, auditors and admins). Bad input gets its field's error, never a raw one."""
    from datetime import time


    errors: list[tuple[str, str]] = []
    typed = request.args.get("call", "").strip()
    if typed:
        found_sid = call_sid(typed)
        if found_sid:
            return redirect(url_for("console.call_trace", call_sid=found_sid), code=303)
        errors.append(("call", "A CallSid is CA followed by 32 letters and digits"))
    flow = request.args.get("flow", "").strip()
    outcome = request.args.get("outcome", "").strip()
    flows = sorted(service().library.live_versions())
    if flow and flow not in flows:
        errors.append(("flow", "Choose a flow from the list"))
        flow = ""
    if outcome and not STATE.match(outcome):
        errors.append(("outcome", "A state's name: lower-case letters, digits and _, like connect"))
        outcome = ""
    asked = any(request.args.get(k) for k in ("from_day", "from", "to_day", "to"))
    period = _period(default_days=6)
    errors += period.errors
    number = request.args.get("page", "1")
    found: dict[str, Any] = {"calls": [], "page": 1, "more": False, "flows": flows}
    if not errors:
        since = datetime.combine(period.since, time.min, UTC).timestamp() if asked else None
        until = datetime.combine(period.until, time.max, UTC).timestamp() if asked else None
        found = TraceDesk(service()).search(
            viewer(),
            flow=flow,
            outcome=outcome,
            since=since,
            until=until,
            page=int(number) if number.isdigit() else 1,
        )
    html = render_template(
        "console/calls.html",
        me=me(),
        flow=flow,
        outcome=outcome,
        values={**period.values, "call": typed} if asked else {"call": typed},
        period=period,
        asked=asked,
        errors=errors,
        field_errors=dict(errors),
        retention_days=service().settings.trace_retention_days,
        flow_options=[(f, f) for f in flows],
        **found,
    )
    return html, 400 if errors else 200


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

