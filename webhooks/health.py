"""``GET /healthz``: is the store reachable, which flows are live."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, abort, jsonify, request

from callflow.errors import CallflowError
from callflow.gauges import ServiceGauges
from callflow.metrics import CONTENT_TYPE_LATEST, exposition

from .extension import service

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """200 when the store answers and the audit log is whole against its newest checkpoint;
    503 when the store does not answer, or the log is behind its checkpoint (cut off, or a
    store that came back empty)."""
    svc = service()
    reachable = svc.store.ping()
    audit: dict[str, object] = {"checked": False, "ok": True, "why": "store unreachable"}
    if reachable:
        try:
            audit = svc.audit_health()
        except CallflowError as exc:
            audit = {"checked": False, "ok": True, "why": str(exc)}
    status = "ok" if reachable else "store unreachable"
    if reachable and not audit["ok"]:
        status = "audit log damaged"
    body = {
        "status": status,
        "store": svc.store.kind,
        "store_reachable": reachable,
        "audit": audit,
        "flows": svc.library.live_versions(),
        "flow_problems": sum(len(p) for p in svc.library.problems.values()),
    }
    response = jsonify(body)
    response.status_code = 200 if status == "ok" else 503
    return response


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics (no personal data in any label), for a scraper with the token.

    Without ``CALLFLOW_METRICS_TOKEN`` the web service does not serve them at all (404):
    ``callflow metrics --bind ADDR`` serves them on an address of their own.
    """

    token = service().settings.metrics_token
    if token is None:
        abort(404)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        log.warning("metrics scrape refused: no or wrong bearer token")
        response = Response("a bearer token is required\n", status=401, mimetype="text/plain")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response

    body = exposition(service().store, [ServiceGauges(service())])
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0])
