"""Call-backs owed to verified advisers: the queue, the worker that places them, cancelling."""

from __future__ import annotations

import argparse
import json
from typing import Any

from . import common
from .common import EXIT_OK


def register(sub: Any) -> None:
    """Add this group's commands."""
    callbacks = sub.add_parser(
        "callbacks", help="call-backs owed to advisers: the queue, placing them, cancelling"
    )
    cb = callbacks.add_subparsers(metavar="ACTION")
    listing = cb.add_parser("list", help="call-backs not settled yet, in their callers' order")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)
    show = cb.add_parser("show", help="one call-back and its tries")
    show.add_argument("id")
    show.set_defaults(handler=_show)
    run = cb.add_parser(
        "run",
        help="place call-backs whose turn it is (an agent free, the line open); retry, drop",
    )
    run.add_argument("--every", type=float, default=0, help="repeat every N seconds (a worker)")
    run.set_defaults(handler=_run)
    cancel = cb.add_parser("cancel", help="settle a call-back by hand: it is not made")
    cancel.add_argument("id")
    cancel.set_defaults(handler=_cancel)


def _line(c: dict[str, Any]) -> str:
    nxt = f" next try {common.when_text(c['next_attempt_at'])}" if c["next_attempt_at"] else ""
    return (
        f"{c['id']}  rang {common.when_text(c['arrived_at'])}  {c['status']:<12} "
        f"{c['adviser_number']:<8} {c['adviser_name']:<20} {c['organisation_name']:<30} "
        f"{c['language']}  {c['attempts']} tr{'y' if c['attempts'] == 1 else 'ies'}{nxt}"
    )


def _list(args: argparse.Namespace) -> int:
    svc = common.service()
    rows = [svc.callbacks.public(c) for c in svc.callbacks.open(count=200)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no call-backs waiting")
    for row in rows:
        print(_line(row))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    svc = common.service()
    doc = svc.callbacks.require(args.id)
    shown = svc.callbacks.public(doc) | {
        "tries": [{k: a[k] for k in ("call_sid", "at", "result")} for a in doc["attempts"]]
    }
    print(json.dumps(shown, indent=2))
    return EXIT_OK


def _cancel(args: argparse.Namespace) -> int:
    svc = common.service()
    svc.callbacks.cancel(
        args.id, common.actor(svc, ("admin", "vstrs_agent"), "cancelling call-backs").who
    )
    print(f"call-back {args.id} cancelled")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:

    svc = common.service()
    links = svc.links()
    return common.worker(
        args.every,
        "callflow callbacks run",
        lambda: [f"call-back {cb}: {result}" for cb, result in svc.dispatcher.dispatch(links)],
    )
