"""``GET /healthz``: is the store reachable, which flows are live."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, abort, jsonify, request

from .extension import service

log = logging.getLogger(__name__)

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
    """Prometheus metrics (no personal data in any label), for a scraper with the token.

    Without ``CALLFLOW_METRICS_TOKEN`` the web service does not serve them at all (404):
    ``callflow metrics --bind ADDR`` serves them on an address of their own.
    """
    from callflow.metrics import CONTENT_TYPE_LATEST, exposition

    token = service().settings.metrics_token
    if token is None:
        abort(404)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        log.warning("metrics scrape refused: no or wrong bearer token")
        response = Response("a bearer token is required\n", status=401, mimetype="text/plain")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return Response(exposition(service().store), mimetype=CONTENT_TYPE_LATEST.split(";")[0])
