"""Operations: the grant sweep, retention, metrics and the store."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import CallflowError
from ..gauges import ServiceGauges
from ..metrics import serve
from ..retention import FAMILIES
from . import common
from .common import EXIT_OK, EXIT_PROBLEMS


def register(sub: Any) -> None:
    """Add this group's commands."""
    sweep = sub.add_parser("sweep", help="end grants whose call legs are over (lost callbacks)")
    sweep.add_argument("--every", type=float, default=0, help="repeat every N seconds (a worker)")
    sweep.set_defaults(handler=_sweep)

    retention = sub.add_parser("retention", help="the retention rules and how the store keeps them")
    rt = retention.add_subparsers(metavar="ACTION")
    report = rt.add_parser(
        "report", help="each key family: keys, the oldest, any key lacking its expiry or a rule"
    )
    report.add_argument("--json", action="store_true")
    report.set_defaults(handler=_retention_report)
    apply = rt.add_parser("apply", help="run the retention pass now (the worker runs it hourly)")
    apply.set_defaults(handler=_retention_apply)
    retention.set_defaults(handler=lambda _args: common.usage(retention))

    metrics = sub.add_parser(
        "metrics", help="serve /metrics on an address of its own (instead of a scrape token)"
    )
    metrics.add_argument("--bind", required=True, help="host:port, e.g. 127.0.0.1:9100")
    metrics.set_defaults(handler=_metrics)
    store = sub.add_parser("store", help="look after the shared store")
    st = store.add_subparsers(metavar="ACTION")
    reindex = st.add_parser(
        "reindex",
        help="rebuild the indexes of namespaces that grow with history from their records "
        "(an upgrade step: run it with no instance writing)",
    )
    reindex.add_argument("namespaces", nargs="*", help="default: every indexed namespace")
    reindex.set_defaults(handler=_store_reindex)
    store.set_defaults(handler=lambda _args: common.usage(store))


def _sweep(args: argparse.Namespace) -> int:
    svc = common.service()

    def round_() -> list[str]:
        lines = [f"grant {grant_id} ended: {reason}" for grant_id, reason in svc.handoffs.sweep()]
        # The worker's steady beat also records where the audit log stands, outside Redis
        # (CALLFLOW_AUDIT_CHECKPOINTS, and the log), and, at most hourly, applies the
        # retention rules (docs/retention.md).
        svc.checkpoints.write(svc.store)
        done = svc.retention.apply()
        if done.get("archived"):
            lines.append(f"retention: archived {done['archived']} audit entries")
        return lines

    return common.worker(args.every, "callflow sweep", round_)


def _retention_report(args: argparse.Namespace) -> int:

    svc = common.service()
    report = svc.retention.report()
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_PROBLEMS if report["problems"] else EXIT_OK
    rules = {f.name: f for f in FAMILIES}
    for row in report["families"]:
        family = rules[row["family"]]
        oldest = "" if row["oldest_days"] is None else f", oldest {row['oldest_days']} days"
        personal = "personal data" if family.personal else "no personal data"
        print(f"{row['family']:<20} {row['keys']:>7} keys{oldest}  [{personal}] {family.rule}")
    for problem in report["problems"]:
        print(f"PROBLEM: {problem}")
    if not report["problems"]:
        print("ok: every key is covered by a rule, and every key that should expire does")
    return EXIT_PROBLEMS if report["problems"] else EXIT_OK


def _retention_apply(_args: argparse.Namespace) -> int:
    done = common.service().retention.apply(force=True)
    print(json.dumps(done))
    return EXIT_OK


def _metrics(args: argparse.Namespace) -> int:

    host, _, port = args.bind.rpartition(":")
    if not port.isdigit():
        raise CallflowError("--bind: host:port, like 127.0.0.1:9100")
    print(f"serving /metrics on http://{host or '127.0.0.1'}:{port}/metrics", flush=True)

    svc = common.service()
    serve(args.bind, svc.store, [ServiceGauges(svc)])
    return EXIT_OK


def _store_reindex(args: argparse.Namespace) -> int:
    svc = common.service()
    known = sorted(svc.store.indexes)
    unknown = [n for n in args.namespaces if n not in known]
    if unknown:
        raise CallflowError(f"not indexed: {', '.join(unknown)} (indexed: {', '.join(known)})")
    for namespace in args.namespaces or known:
        print(f"{namespace}: {svc.store.reindex(namespace)} records indexed", flush=True)
    return EXIT_OK
