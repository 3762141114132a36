"""Assurance: sampling hand-offs and following up their authorisations."""

from __future__ import annotations

import argparse
import secrets
from typing import Any

from ..directory import ORGANISATIONS
from . import common
from .common import EXIT_OK


def register(sub: Any) -> None:
    """Add this group's commands."""
    assurance = sub.add_parser(
        "assurance", help="sample hand-offs and track HMRC's assurance cases"
    )
    asr = assurance.add_subparsers(metavar="ACTION")
    sample = asr.add_parser("sample", help="draw a reproducible random sample of hand-offs")
    sample.add_argument("--org", required=True, choices=sorted(ORGANISATIONS))
    sample.add_argument("--from", dest="since", required=True, help="first day, YYYY-MM-DD (UTC)")
    sample.add_argument("--to", dest="until", required=True, help="last day, YYYY-MM-DD (UTC)")
    sample.add_argument("--size", type=int, required=True)
    sample.add_argument(
        "--seed", type=int, default=None, help="default: a new random seed (printed)"
    )
    sample.set_defaults(handler=_assurance_sample)
    case_update = asr.add_parser("update", help="move a case on")
    case_update.add_argument("case")
    case_update.add_argument(
        "--state", required=True, choices=["evidence_seen", "evidence_missing", "closed"]
    )
    case_update.add_argument("--note", default="")
    case_update.set_defaults(handler=_assurance_update)
    case_list = asr.add_parser("list", help="list cases")
    case_list.add_argument("--org", choices=sorted(ORGANISATIONS))
    case_list.add_argument(
        "--state", choices=["requested", "evidence_seen", "evidence_missing", "closed"]
    )
    case_list.set_defaults(handler=_assurance_list)
    report = asr.add_parser(
        "report", help="per organisation: hand-offs, sampled, passed, failed, outstanding"
    )
    report.add_argument("--org", choices=sorted(ORGANISATIONS))
    report.add_argument("--from", dest="since")
    report.add_argument("--to", dest="until")
    report.add_argument("--format", choices=["text", "csv"], default="text")
    report.set_defaults(handler=_assurance_report)
    assurance.set_defaults(handler=lambda _args: common.usage(assurance))


def _assurance_sample(args: argparse.Namespace) -> int:
    svc = common.service()
    seed = args.seed if args.seed is not None else secrets.randbelow(10**9)
    cases = svc.assurance.sample(
        args.org,
        common.parse_date(args.since),
        common.parse_date(args.until),
        args.size,
        seed,
        common.actor(svc, ("auditor", "admin"), "sampling hand-offs").who,
    )
    period = f"{args.since} to {args.until}"
    print(f"sample of {len(cases)} hand-offs for {args.org}, {period}, seed {seed}")
    for case in cases:
        auth = case.get("authorisation") or {}
        held = f"{auth.get('type')} {auth.get('date')} ref {auth.get('reference')}"
        print(f"  {case['id']}  {case['state']:<16} authorisation {held}")
    return EXIT_OK


def _assurance_update(args: argparse.Namespace) -> int:
    svc = common.service()
    case = svc.assurance.update(
        args.case, args.state, common.actor(svc, ("auditor", "admin"), "assurance").who, args.note
    )
    print(
        f"case {case['id']} is {case['state']}"
        + (f" ({case['outcome']})" if case["outcome"] else "")
    )
    return EXIT_OK


def _assurance_list(args: argparse.Namespace) -> int:
    svc = common.service()
    cases = svc.assurance.cases(args.org, args.state)
    if not cases:
        print("no cases")
    for case in cases:
        print(
            f"{case['id']}  {case['organisation']:<16} {case['state']:<16} {case['outcome'] or ''}"
        )
    return EXIT_OK


def _assurance_report(args: argparse.Namespace) -> int:
    svc = common.service()
    rows = svc.assurance.report(
        args.org, common.parse_date(args.since), common.parse_date(args.until)
    )
    columns = ["organisation", "handoffs", "sampled", "passed", "failed", "outstanding"]
    if args.format == "csv":
        print(",".join(columns))
        for row in rows:
            print(",".join(str(row[c]) for c in columns))
        return EXIT_OK
    print(
        f"{'organisation':<32}{'hand-offs':>10}{'sampled':>9}{'passed':>8}{'failed':>8}{'outstanding':>13}"
    )
    for row in rows:
        print(
            f"{row['organisation_name']:<32}{row['handoffs']:>10}{row['sampled']:>9}{row['passed']:>8}"
            f"{row['failed']:>8}{row['outstanding']:>13}"
        )
    return EXIT_OK
