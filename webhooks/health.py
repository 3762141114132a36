"""``GET /healthz``: is the store reachable, which flows are live."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from .extension import service

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """200 when the store answers, 503 when it does not."""
    svc = service()
    reachable = svc.store.ping()
    body = {
        "status": "ok" if reachable else "store unreachable",
        "store": svc.store.kind,
        "store_reachable": reachable,
        "flows": svc.library.live_versions(),
        "flow_problems": sum(len(p) for p in svc.library.problems.values()),
    }
    response = jsonify(body)
    response.status_code = 200 if reachable else 503
    return response


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics (no personal data in any label)."""
    from callflow.metrics import CONTENT_TYPE_LATEST, exposition

    return Response(exposition(service().store), mimetype=CONTENT_TYPE_LATEST.split(";")[0])
