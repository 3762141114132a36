"""Gauges read at scrape time: what the shipped alert rules watch (ops/prometheus).

Each scrape reads a few small things, never a scan: today's audit tally (one hash), the
callbacks worker's heartbeat (one key), the audit log's state against its newest
checkpoint (one read and a file). Labels carry reasons from the admin's list only.

- ``callflow_handoff_share_today``: hand-offs per verified call, the UTC day so far;
- ``callflow_handoff_share_threshold``: CALLFLOW_HANDOFF_SHARE_ALERT;
- ``callflow_handoff_share_over_threshold``: 1 when the share is over it (with at least
  ``MIN_VERIFIED`` verified calls: two hand-offs in a quiet first hour are not a trend);
- ``callflow_handoffs_today{need}``: today's hand-offs by why they needed a specialist;
- ``callflow_audit_chain_ok``: 1 when the log's state agrees with its newest checkpoint,
  0 when not, -1 when there is no checkpoint to compare with;
- ``callflow_audit_checkpoint_age_seconds``: how old the newest checkpoint is (-1: none);
- ``callflow_worker_heartbeat{worker}``: 1 while the worker's heartbeat is fresh.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily

from .callbacks import HEARTBEAT

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["MIN_VERIFIED", "ServiceGauges", "handoff_share"]

#: The share is only worth an alert once the day has this many verified calls.
MIN_VERIFIED = 20


def handoff_share(tally: dict[str, int]) -> tuple[int, int, dict[str, int]]:
    """Verified calls, hand-offs and hand-offs by reason, from a day's tally."""
    verified = handoffs = 0
    needs: dict[str, int] = {}
    for field, n in tally.items():
        what, _org, detail = ([*field.split("|", 2), "", ""])[:3]
        if what == "v" and detail == "verified":
            verified += n
        elif what == "ho":
            handoffs += n
        elif what == "hn":
            needs[detail] = needs.get(detail, 0) + n
    return verified, handoffs, needs


class ServiceGauges:
    """A Prometheus collector over the service (any object with ``store``, ``settings``,
    ``clock`` and ``audit_health``)."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        svc = self.service
        share = GaugeMetricFamily(
            "callflow_handoff_share_today", "Hand-offs per verified call, the UTC day so far"
        )
        threshold = GaugeMetricFamily(
            "callflow_handoff_share_threshold",
            "The hand-off share over which the consoles warn (CALLFLOW_HANDOFF_SHARE_ALERT)",
        )
        over = GaugeMetricFamily(
            "callflow_handoff_share_over_threshold",
            f"1 when today's hand-off share is over the threshold (with {MIN_VERIFIED} or "
            "more verified calls)",
        )
        by_need = GaugeMetricFamily(
            "callflow_handoffs_today",
            "Hand-offs today by why they needed a specialist",
            labels=["need"],
        )
        chain = GaugeMetricFamily(
            "callflow_audit_chain_ok",
            "1: the audit log agrees with its newest checkpoint; 0: it does not; -1: none",
        )
        age = GaugeMetricFamily(
            "callflow_audit_checkpoint_age_seconds",
            "Seconds since the newest audit checkpoint (-1: none)",
        )
        heartbeat = GaugeMetricFamily(
            "callflow_worker_heartbeat",
            "1 while a worker's heartbeat is fresh",
            labels=["worker"],
        )
        limit = float(svc.settings.handoff_share_alert)
        threshold.add_metric([], limit)
        now = svc.clock.now()
        try:  # a scrape never fails because the store is down: -1 says "unknown"
            day = datetime.fromtimestamp(now, UTC).date().isoformat()
            tally = svc.store.audit_tallies([day]).get(day, {})
            verified, handoffs, needs = handoff_share(tally)
            value = handoffs / verified if verified else 0.0
            share.add_metric([], round(value, 4))
            over.add_metric([], 1.0 if verified >= MIN_VERIFIED and value > limit else 0.0)
            for need, n in sorted(needs.items()):
                by_need.add_metric([need[:40]], n)

            heartbeat.add_metric(["callbacks"], 1.0 if svc.store.claimed_by(HEARTBEAT) else 0.0)
        except Exception:
            share.add_metric([], -1)
            over.add_metric([], -1)
            heartbeat.add_metric(["callbacks"], -1)
        try:
            health = svc.audit_health()
            chain.add_metric([], (1.0 if health["ok"] else 0.0) if health["checked"] else -1.0)
            newest = svc.checkpoints.newest()
            at = newest.get("at") if newest else None
            when = datetime.fromisoformat(str(at)).timestamp() if at else None
            age.add_metric([], round(now - when, 1) if when else -1.0)
        except Exception:
            chain.add_metric([], 0.0)
            age.add_metric([], -1.0)
        yield from (share, threshold, over, by_need, chain, age, heartbeat)
