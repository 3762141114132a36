"""Advisers of the four organisations: register, PINs, answers, lockouts.

An admin's to keep: each command acts as the signed-in account through the admin desk
(the admin console's own methods), which checks the role and audits with who.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..desks import AdminDesk
from ..directory import ORGANISATIONS, QUESTIONS
from ..errors import CallflowError
from . import common
from .common import EXIT_OK


def register(sub: Any) -> None:
    """Add this group's commands."""
    advisers = sub.add_parser(
        "advisers", help="manage VCS advisers, their PINs and security answers"
    )
    adv = advisers.add_subparsers(metavar="ACTION")
    add = adv.add_parser("add", help="register an adviser; their PIN is issued and shown once")
    add.add_argument("--number", required=True, help="adviser number, 4 to 10 digits")
    add.add_argument("--name", required=True)
    add.add_argument("--org", required=True, choices=sorted(ORGANISATIONS))
    add.add_argument("--phone", default="")
    add.add_argument("--email", default="")
    add.add_argument(
        "--consent-to-act",
        action="store_true",
        help="the organisation holds consent to act, so contact details may be passed on",
    )
    add.set_defaults(handler=_advisers_add)
    set_pin = adv.add_parser("set-pin", help="set a PIN (read without echo) or issue a new one")
    set_pin.add_argument("number")
    set_pin.add_argument("--issue", action="store_true", help="issue a random PIN and show it once")
    set_pin.set_defaults(handler=_advisers_set_pin)
    set_answers = adv.add_parser(
        "set-answers", help="register security answers (read without echo)"
    )
    set_answers.add_argument("number")
    set_answers.add_argument(
        "--question",
        action="append",
        dest="questions",
        choices=sorted(QUESTIONS),
        help="a question to register (repeat; default: asks which)",
    )
    set_answers.set_defaults(handler=_advisers_set_answers)
    status = adv.add_parser(
        "status", help="an adviser's throttled numbers, locks and known numbers, and why"
    )
    status.add_argument("number")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_advisers_status)
    unlock = adv.add_parser("unlock", help="lift a lockout and every number's throttle")
    unlock.add_argument("number")
    unlock.set_defaults(handler=_advisers_unlock)
    listing = adv.add_parser("list", help="list advisers (never secrets)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_advisers_list)
    remove = adv.add_parser("remove", help="remove an adviser")
    remove.add_argument("number")
    remove.set_defaults(handler=_advisers_remove)
    questions = adv.add_parser(
        "questions", help="list the security questions advisers can register"
    )
    questions.set_defaults(handler=_advisers_questions)
    advisers.set_defaults(handler=lambda _args: common.usage(advisers))


def _desk() -> tuple[Any, AdminDesk, Any]:
    """The service, the admin's desk, and the signed-in person acting (refused at once
    when they are not an admin: before any secret is asked for)."""
    svc = common.service()
    desk, who = AdminDesk(svc), common.actor(svc)
    desk.overview(who)
    return svc, desk, who


def _advisers_add(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    adviser, pin = desk.add_adviser(
        who, args.number, args.name, args.org, args.phone, args.email, args.consent_to_act
    )
    print(
        f"added adviser {adviser['number']} ({adviser['name']}, "
        f"{adviser['organisation_name']})"
    )
    print(f"PIN (shown once, give it to the adviser securely): {pin}")
    print(f"next: callflow advisers set-answers {adviser['number']}")
    return EXIT_OK


def _advisers_set_pin(args: argparse.Namespace) -> int:
    svc, desk, who = _desk()
    svc.directory.require(args.number)
    if args.issue:
        pin = desk.issue_pin(who, args.number)
        print(f"new PIN for {args.number} (shown once): {pin}")
    else:
        desk.set_pin(who, args.number, common.read_secret(f"new PIN for {args.number}"))
        print(f"PIN set for {args.number}")
    return EXIT_OK


def _advisers_set_answers(args: argparse.Namespace) -> int:
    svc, desk, who = _desk()
    svc.directory.require(args.number)
    chosen = args.questions
    if not chosen:
        if not sys.stdin.isatty():
            raise CallflowError("name the questions with --question when answers come from a pipe")
        for qid, question in QUESTIONS.items():
            print(f"  {qid}: {question.prompt}")
        chosen = input("questions to register (space separated ids): ").split()
    unknown = [q for q in chosen if q not in QUESTIONS]
    if unknown:
        raise CallflowError(f"unknown questions: {', '.join(unknown)}")
    answers = {
        qid: common.read_secret(f"answer to {qid} ({QUESTIONS[qid].prompt})") for qid in chosen
    }
    desk.set_answers(who, args.number, answers)
    print(f"{len(answers)} security answers registered for {args.number}")
    return EXIT_OK


def _advisers_unlock(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    desk.unlock_adviser(who, args.number)
    print(f"adviser {args.number} unlocked")
    return EXIT_OK


def _advisers_status(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    status = desk.lockout(who, args.number)
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    for line in status["why"]:
        print(line)
    return EXIT_OK


def _advisers_list(args: argparse.Namespace) -> int:
    svc = _desk()[0]
    rows = []
    for adviser in svc.directory.list():
        status = svc.store.lock_status(adviser.number, svc.clock.now())
        rows.append(
            {
                **adviser.public(),
                "failures": status.failures,
                "locked_minutes": round(status.locked_seconds / 60, 1),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no advisers registered")
    for row in rows:
        lock = (
            f"LOCKED {row['locked_minutes']} min"
            if row["locked_minutes"]
            else f"{row['failures']} failures"
        )
        consent = "consent to act" if row["consent_to_act"] else "no consent to act"
        print(
            f"{row['number']:>10}  {row['name']:<24} {row['organisation_name']:<30} "
            f"{consent:<18} questions: {len(row['questions'])}  {lock}"
        )
    return EXIT_OK


def _advisers_remove(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    desk.remove_adviser(who, args.number)
    print(f"adviser {args.number} removed")
    return EXIT_OK


def _advisers_questions(_args: argparse.Namespace) -> int:
    for qid, question in QUESTIONS.items():
        print(f"{qid:<18} {question.prompt}")
    return EXIT_OK
