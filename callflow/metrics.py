"""Prometheus metrics: what an operations team watches.

Counters and histograms live in prometheus_client's default registry. Under gunicorn set
``PROMETHEUS_MULTIPROC_DIR`` (an empty folder, the same for every worker) so workers add
up: :func:`exposition` then merges every worker's files. Labels never carry personal data
or secrets: endpoints, outcomes, audit kinds, flow and state names only.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from .store.base import Store

__all__ = ["CONTENT_TYPE_LATEST", "exposition", "labelled"]

_Metric = TypeVar("_Metric", Counter, Histogram)


@functools.lru_cache(maxsize=4096)
def labelled(metric: _Metric, *values: str) -> _Metric:
    """``metric.labels(*values)``, kept: prometheus_client checks the values and takes a
    lock on each call, and the webhooks count with the same few labels all day. The labels
    here are bounded (endpoints, outcomes, flow and state names)."""
    return metric.labels(*values)

WEBHOOKS = Counter("callflow_webhooks_total", "Twilio webhooks answered", ["endpoint", "outcome"])
WEBHOOK_SECONDS = Histogram(
    "callflow_webhook_seconds",
    "Time to answer a Twilio webhook",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
AUDIT_EVENTS = Counter(
    "callflow_audit_events_total",
    "Security-relevant events (verification outcomes, lockouts, hand-offs, grants ended by reason)",
    ["kind", "outcome"],
)
ADVISER_LOCKOUTS = Counter(
    "callflow_adviser_lockouts_total",
    "Advisers locked (or kept locked) after repeated failed verifications: an alert",
)
CALLS = Counter("callflow_calls_total", "New calls by flow", ["flow"])
STATES = Counter("callflow_states_entered_total", "Flow states entered", ["flow", "state"])
STORE_ERRORS = Counter("callflow_store_errors_total", "Webhooks that met a store failure")
SIGNATURE_FAILURES = Counter(
    "callflow_signature_failures_total", "Requests refused for their signature"
)


#: Verification outcomes a metric may show: why one failed (unknown adviser, wrong PIN or
#: answer, locked, not enrolled) is one outcome, so no scrape can tell an adviser number
#: that exists from one that does not; the audit log keeps the detail.
_VERIFICATION_SHOWN = frozenset({"accepted", "verified"})
#: Audit kinds never counted in metrics: a lockout happens only to a real adviser.
_NOT_COUNTED = frozenset({"verification.lockout"})


def count_audit_event(kind: str, outcome: str) -> None:
    """Count an audit entry in ``callflow_audit_events_total``, without anything that
    tells why a verification failed."""
    if kind in _NOT_COUNTED:
        return
    if kind.startswith("verification.") and outcome not in _VERIFICATION_SHOWN:
        outcome = "not_verified"
    AUDIT_EVENTS.labels(kind, outcome[:40]).inc()


class _ActiveGrants:
    """Active grants: the size of their index, kept as grants start and end."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("callflow_active_grants", "Disclosure grants active now")
        waiting = GaugeMetricFamily(
            "callflow_callbacks_open",
            "Call-backs owed to advisers and not settled yet (waiting, ringing, retrying)",
        )
        try:  # the indexes' sizes in one round trip: counts, never a scan
            active, owed = self.store.index_sizes([("grants", "active"), ("callbacks", "open")])
        except Exception:  # a scrape must never fail because the store is down
            active = owed = -1
        gauge.add_metric([], active)
        waiting.add_metric([], owed)
        yield gauge
        yield waiting


def exposition(store: Store, extra_collectors: Iterable[Any] = ()) -> bytes:
    """The metrics page (every worker's, when PROMETHEUS_MULTIPROC_DIR is set), with any
    collectors read at scrape time (callflow.gauges)."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    extra = CollectorRegistry(auto_describe=False)
    extra.register(_ActiveGrants(store))
    for collector in extra_collectors:
        extra.register(collector)
    return generate_latest(registry) + generate_latest(extra)


def serve(  # pragma: no cover - a process of its own
    bind: str, store: Store, extra_collectors: Iterable[Any] = ()
) -> None:
    """Serve ``/metrics`` on ``bind`` (host:port) alone: for a private address the web
    service's callers cannot reach, instead of a scrape token. Same-host workers' figures
    are merged through ``PROMETHEUS_MULTIPROC_DIR``."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIServer, make_server

    host, _, port = bind.rpartition(":")

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])  # type: ignore[operator]
            return [b"only /metrics here\n"]
        body = exposition(store, extra_collectors)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])  # type: ignore[operator]
        return [body]

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    with make_server(host or "127.0.0.1", int(port), app, server_class=Server) as server:
        server.serve_forever()
