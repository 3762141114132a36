"""Per-call traces: ``callflow trace CALLSID`` (what happened on a call), or a list of calls
by flow and outcome. Each trace read is audited with who."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from ..errors import CallflowError
from ..traces import text
from . import common
from .common import EXIT_OK


def register(sub: Any) -> None:
    """Add this group's commands."""
    trace = sub.add_parser(
        "trace",
        help="what happened on a call, step by step (or a list of calls by flow and outcome)",
    )
    trace.add_argument("call_sid", nargs="?", help="the call's CallSid (CA...)")
    trace.add_argument("--flow", help="list the ended calls of this flow, newest first")
    trace.add_argument("--outcome", help="only calls that ended in this state")
    trace.add_argument("--since", help="only calls started since, like 2026-11-30T09:00 (UTC)")
    trace.add_argument("--count", type=int, default=25, help="how many to list (default 25)")
    trace.add_argument("--json", action="store_true", help="the trace as JSON")
    trace.set_defaults(handler=_trace)


def _trace(args: argparse.Namespace) -> int:
    svc = common.service()
    if args.call_sid:
        who = common.actor(svc, ("designer", "auditor", "admin"), "reading call traces")
        found = svc.traces.get(args.call_sid, by=who.who, role=who.role)
        if found is None:
            raise CallflowError(
                f"no trace for {args.call_sid}: traces are kept "
                f"{svc.settings.trace_retention_days} days"
            )
        print(json.dumps(found, indent=2) if args.json else text(found), end="")
        return EXIT_OK
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since).replace(tzinfo=UTC).timestamp()
        except ValueError as exc:
            raise CallflowError("--since: a time like 2026-11-30T09:00") from exc
    common.actor(svc, ("designer", "admin"), "searching call traces")
    rows = svc.traces.search(
        flow=args.flow, outcome=args.outcome, since=since, count=max(1, min(args.count, 500))
    )
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no ended calls match")
    for row in rows:
        print(
            f"{row['call_sid']}  {common.when_text(row['started_at'])}  "
            f"{row['flow']}@{row['version']}  ended {row['status']} in {row['state']}  "
            f"{row['steps']} step(s)"
        )
    return EXIT_OK
