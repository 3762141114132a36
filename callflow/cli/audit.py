"""The audit log: export, verify, checkpoint, archive, retally, reindex."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..audit import facets_of, verify_entries, verify_now
from ..errors import CallflowError
from ..reports import audit_csv
from ..tallies import tallies_of
from . import common
from .common import EXIT_OK, EXIT_PROBLEMS


def register(sub: Any) -> None:
    """Add this group's commands."""
    audit = sub.add_parser("audit", help="export, verify and archive the audit log")
    au = audit.add_subparsers(metavar="ACTION")
    export = au.add_parser("export", help="export entries (jsonl or csv)")
    export.add_argument("--from", dest="since", help="first day, YYYY-MM-DD (UTC)")
    export.add_argument("--to", dest="until", help="last day, YYYY-MM-DD (UTC)")
    export.add_argument("--call", help="one call's CallSid")
    export.add_argument("--org", help="one organisation (taxaid, top, litrg, citizens_advice)")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    export.set_defaults(handler=_audit_export)
    checkpoint = au.add_parser(
        "checkpoint", help="write a signed checkpoint of where the log stands (outside Redis)"
    )
    checkpoint.add_argument("--every", type=float, default=0, help="repeat every N seconds")
    checkpoint.set_defaults(handler=_audit_checkpoint)
    verify = au.add_parser(
        "verify",
        help="check every entry's hash and number, and the newest checkpoint; report the first "
        "problem",
    )
    verify.add_argument("--from", dest="since", help="first day, YYYY-MM-DD (UTC)")
    verify.add_argument("--to", dest="until", help="last day, YYYY-MM-DD (UTC)")
    verify.add_argument("--file", help="check an archive or export written by this command instead")
    verify.set_defaults(handler=_audit_verify)
    archive = au.add_parser(
        "archive", help="move entries older than the retention period to a file"
    )
    archive.add_argument(
        "--older-than",
        type=int,
        default=None,
        metavar="DAYS",
        help="default: CALLFLOW_AUDIT_RETENTION_DAYS (400)",
    )
    archive.add_argument(
        "-o", "--output", required=True, help="archive file (JSON lines, appended)"
    )
    archive.set_defaults(handler=_audit_archive)
    retally = au.add_parser(
        "retally",
        help="rebuild the daily tallies the auditor's page reads, from the log's entries "
        "(after an upgrade, or to check them)",
    )
    retally.add_argument("--from", dest="since", help="first day, YYYY-MM-DD (UTC)")
    retally.add_argument("--to", dest="until", help="last day, YYYY-MM-DD (UTC)")
    retally.add_argument(
        "--check", action="store_true", help="only compare; change nothing (exit 1 if they differ)"
    )
    retally.set_defaults(handler=_audit_retally)
    reindex = au.add_parser(
        "reindex",
        help="put every entry in the indexes the auditor's log filters by (kind, "
        "organisation, adviser, call): once, after upgrading a store written before them",
    )
    reindex.set_defaults(handler=_audit_reindex)
    audit.set_defaults(handler=lambda _args: common.usage(audit))


def _day(text: str | None, end: bool = False) -> str | None:
    if not text:
        return None
    import datetime as _dt

    try:
        day = _dt.date.fromisoformat(text)
    except ValueError as exc:
        raise CallflowError(f"dates are YYYY-MM-DD, not {text!r}") from exc
    return f"{day.isoformat()}T23:59:59.999" if end else day.isoformat()


def _in_range(entry: dict[str, Any], since: str | None, until: str | None) -> bool:
    at = str(entry.get("at", ""))
    return (since is None or at >= since) and (until is None or at[:23] <= until)


def _audit_export(args: argparse.Namespace) -> int:
    import io

    svc = common.service()
    since, until = _day(args.since), _day(args.until, end=True)
    rows = [
        e
        for e in svc.audit.all_entries()
        if _in_range(e, since, until)
        and (not args.call or e.get("call_sid") == args.call)
        and (not args.org or e.get("organisation") == args.org)
    ]
    out = io.StringIO()
    if args.format == "jsonl":
        for row in rows:
            out.write(json.dumps(row, sort_keys=True) + "\n")
    else:

        out.write(audit_csv(rows))
    if args.output:
        Path(args.output).write_text(out.getvalue(), encoding="utf-8")
        print(f"wrote {len(rows)} entries to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(out.getvalue())
    return EXIT_OK


def _audit_verify(args: argparse.Namespace) -> int:

    svc = common.service()
    note = ""
    if args.file:
        lines = Path(args.file).read_text(encoding="utf-8").splitlines()
        entries = [json.loads(line) for line in lines if line.strip()]
        first = min((e.get("seq", 1) for e in entries), default=1)
        broken, walk = verify_entries(entries, svc.audit.key, int(first) - 1)
    elif args.since or args.until:
        since, until = _day(args.since), _day(args.until, end=True)
        entries = [e for e in svc.audit.all_entries() if _in_range(e, since, until)]
        first = min((e.get("seq", 1) for e in entries), default=1)
        broken, walk = verify_entries(entries, svc.audit.key, int(first) - 1)
        if not broken:  # a period: numbers missing at its edges belong to other days
            note = " (within the period)"
    else:

        report = verify_now(svc.audit, svc.checkpoints)
        print(report["text"])
        return EXIT_OK if report["ok"] else EXIT_PROBLEMS
    if broken:
        print(f"BROKEN: {broken}")
        return EXIT_PROBLEMS
    print(f"ok: {walk.count} entries, numbers to {walk.last_seq}, none missing{note}")
    return EXIT_OK


def _audit_checkpoint(args: argparse.Namespace) -> int:
    svc = common.service()
    while True:
        checkpoint = svc.checkpoints.write(svc.store)
        where = f" in {svc.checkpoints.folder}" if svc.checkpoints.folder else " (log only)"
        print(f"checkpoint{where}: number {checkpoint['seq']} at {checkpoint['at']}", flush=True)
        if not args.every:
            return EXIT_OK
        time.sleep(args.every)


def _audit_archive(args: argparse.Namespace) -> int:
    svc = common.service()
    days = args.older_than if args.older_than is not None else svc.settings.audit_retention_days
    done = svc.retention.archive_audit(days, path=Path(args.output))
    if not done["archived"]:
        print(f"nothing older than {days} days")
        return EXIT_OK
    print(
        f"archived {done['archived']} entries to {args.output} (calling numbers and addresses "
        f"as keyed pseudonyms); the live log starts after number {done['through']}"
    )
    return EXIT_OK


def _audit_retally(args: argparse.Namespace) -> int:
    from datetime import date, timedelta


    svc = common.service()
    since, until = common.parse_date(args.since), common.parse_date(args.until)
    trimmed = svc.store.audit_state().anchor_id is not None
    entries = list(svc.audit.all_entries())
    if not entries:
        print("the live audit log is empty: nothing to tally")
        return EXIT_OK
    first = date.fromisoformat(str(entries[0]["at"])[:10])
    if trimmed:  # the first day's earlier entries were archived: its tally stays as it is
        first += timedelta(days=1)
    since = max(since or first, first)
    until = until or date.fromisoformat(str(entries[-1]["at"])[:10])
    days = [(since + timedelta(days=n)).isoformat() for n in range((until - since).days + 1)]
    wanted = set(days)
    rebuilt = tallies_of(e for e in entries if str(e.get("at", ""))[:10] in wanted)
    rebuilt = {day: rebuilt.get(day, {}) for day in days}
    stored = svc.store.audit_tallies(days)
    differ = [day for day in days if rebuilt[day] != stored.get(day, {})]
    if args.check:
        for day in differ:
            print(f"{day}: stored {stored.get(day, {})} but the log gives {rebuilt[day]}")
        print(f"{len(days)} days checked, {len(differ)} differ")
        return EXIT_PROBLEMS if differ else EXIT_OK
    svc.store.replace_tallies({day: rebuilt[day] for day in differ})
    print(f"{len(days)} days tallied from the log ({since} to {until}), {len(differ)} rewritten")
    return EXIT_OK


def _audit_reindex(_args: argparse.Namespace) -> int:

    svc = common.service()
    done = svc.store.index_audit((e, facets_of(e)) for e in svc.audit.all_entries())
    print(f"indexed {done} entries by kind, organisation, adviser and call")
    return EXIT_OK
