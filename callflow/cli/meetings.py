"""Face-to-face meetings and the calls that arrange them."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..config import parse_minutes
from ..desks import AdminDesk
from ..grades import GRADES, grade_label
from ..meetings import PLACES, RISK_OUTCOMES, held_back
from . import common
from .common import EXIT_OK


def register(sub: Any) -> None:
    """Add this group's commands."""
    meetings = sub.add_parser(
        "meetings", help="face-to-face meetings and the outbound calls that arrange them"
    )
    mt = meetings.add_subparsers(metavar="ACTION")
    meeting_add = mt.add_parser("add", help="store a meeting; its call is due at once")
    meeting_add.add_argument("--customer", required=True, help="the customer's name")
    meeting_add.add_argument("--number", required=True, help="the customer's phone number")
    meeting_add.add_argument("--reference", required=True, help="the customer's reference")
    meeting_add.add_argument(
        "--officer", required=True, help="identity number of the officer they will meet"
    )
    meeting_add.add_argument(
        "--purpose",
        required=True,
        help="what the meeting is for: one of the purposes (callflow meetings purposes list)",
    )
    meeting_add.add_argument(
        "--about", default="", help="words the customer hears about it (needed for other)"
    )
    meeting_add.add_argument(
        "--place",
        required=True,
        choices=sorted(PLACES),
        help="where it is held: customer_business and customer_home are outdoor visits "
        "(their call waits for a risk assessment)",
    )
    meeting_add.add_argument("--bring", required=True, help="what to bring or provide")
    meeting_add.add_argument(
        "--when",
        help="UK local date and time, like 2026-12-02T10:30, in the officer's working hours "
        "(held in their diary at once); leave it out and the call offers the customer up to "
        "three free times from the diary",
    )
    meeting_add.add_argument(
        "--where", required=True, help="the office, or the customer's home or business address"
    )
    meeting_add.add_argument("--date-of-birth", help="for the identity check, like 1970-03-21")
    meeting_add.add_argument("--postcode", help="for the identity check, like SW1A 2AA")
    meeting_add.add_argument(
        "--retries",
        help="minutes before each retry, like 30,120,1440 (default CALLFLOW_MEETING_RETRIES)",
    )
    meeting_add.add_argument("--flow", default="meeting_call", help="the flow the call runs")
    meeting_add.add_argument(
        "--language",
        choices=["en", "cy"],
        default="en",
        help="the language the call is made in (cy: Welsh; write the details in it too)",
    )
    meeting_add.add_argument("--call-now", action="store_true", help="place the first call at once")
    meeting_add.set_defaults(handler=_meetings_add)
    meeting_list = mt.add_parser("list", help="meetings, their state and outcome")
    meeting_list.add_argument("--json", action="store_true")
    meeting_list.set_defaults(handler=_meetings_list)
    meeting_show = mt.add_parser("show", help="one meeting and its call attempts")
    meeting_show.add_argument("id")
    meeting_show.set_defaults(handler=_meetings_show)
    meeting_call = mt.add_parser("call", help="place a meeting's call now")
    meeting_call.add_argument("id")
    meeting_call.set_defaults(handler=_meetings_call)
    risk = mt.add_parser(
        "risk-assessment",
        help="record the risk assessment an outdoor meeting needs before its call is made",
    )
    risk.add_argument("id")
    risk.add_argument("--assessor", required=True, help="who assessed the visit")
    risk.add_argument("--date", required=True, help="the day it was made, like 2026-12-01")
    risk.add_argument("--outcome", required=True, choices=sorted(RISK_OUTCOMES))
    risk.add_argument("--reference", required=True, help="the assessment's reference")
    risk.set_defaults(handler=_meetings_risk)
    start = mt.add_parser(
        "start", help="as the meeting begins: the outdoor verification checks, passed or failed"
    )
    start.add_argument("id")
    start.add_argument("--checks", required=True, choices=["passed", "failed"])
    start.add_argument("--note", default="", help="anything the officer noted")
    start.set_defaults(handler=_meetings_start)
    purposes = mt.add_parser("purposes", help="what meetings may be for (an admin's list)")
    pp = purposes.add_subparsers(metavar="ACTION")
    purpose_list = pp.add_parser("list", help="the purposes and the lowest grade of each")
    purpose_list.add_argument("--json", action="store_true")
    purpose_list.set_defaults(handler=_purposes_list)
    purpose_add = pp.add_parser("add", help="offer a purpose (an admin's act)")
    purpose_add.add_argument("id", help="lower-case letters, digits and _, like quantify_books")
    purpose_add.add_argument("--words", required=True, help="what the customer hears")
    purpose_add.add_argument("--words-cy", default="", help="what a Welsh meeting's customer hears")
    purpose_add.add_argument("--grade", required=True, choices=[c for c, _ in GRADES])
    purpose_add.set_defaults(handler=_purposes_add)
    purpose_grade = pp.add_parser("set-grade", help="the lowest grade that may hold a purpose")
    purpose_grade.add_argument("id")
    purpose_grade.add_argument("grade", choices=[c for c, _ in GRADES])
    purpose_grade.set_defaults(handler=_purposes_grade)
    purpose_retire = pp.add_parser("retire", help="no longer offered for new meetings")
    purpose_retire.add_argument("id")
    purpose_retire.set_defaults(handler=_purposes_retire)
    purposes.set_defaults(handler=lambda _args: common.usage(purposes))
    meeting_cancel = mt.add_parser("cancel", help="cancel a meeting: no more calls")
    meeting_cancel.add_argument("id")
    meeting_cancel.set_defaults(handler=_meetings_cancel)
    meeting_run = mt.add_parser("run", help="place the calls that are due (and retries)")
    meeting_run.add_argument(
        "--every", type=float, default=0, help="repeat every N seconds (a worker)"
    )
    meeting_run.set_defaults(handler=_meetings_run)
    meetings.set_defaults(handler=lambda _args: common.usage(meetings))



def _meetings_add(args: argparse.Namespace) -> int:

    svc = common.service()
    meeting = svc.meetings.add(
        customer_name=args.customer,
        customer_number=args.number,
        reference=args.reference,
        officer_number=args.officer,
        purpose=args.purpose,
        about=args.about,
        bring=args.bring,
        when=args.when,
        where=args.where,
        place=args.place,
        date_of_birth=args.date_of_birth,
        postcode=args.postcode,
        retry_minutes=parse_minutes(args.retries, "--retries") if args.retries else None,
        language={"en": "en-GB", "cy": "cy-GB"}[args.language],
        flow=args.flow,
        by=common.actor(svc, ("admin", "specialist"), "arranging meetings").who,
    )
    held = held_back(meeting)
    if held:
        print(f"meeting {meeting['id']} stored; it is not called yet: {held}")
        return EXIT_OK
    print(
        f"meeting {meeting['id']} stored; its call is due now (retries after "
        f"{', '.join(str(m) for m in meeting['retry_minutes']) or 'none'} minutes)"
    )
    if args.call_now:
        call_sid = svc.meetings.place_call(meeting["id"], svc.links())
        print(f"calling {meeting['customer_number']}: {call_sid}")
    return EXIT_OK


def _meeting_line(m: dict[str, Any]) -> str:
    tries = len(m["attempts"])
    due = f" next call {common.when_text(m['next_call_at'])}" if m["state"] == "scheduled" else ""
    if m.get("held_back"):
        due = " waits for a risk assessment"
    return (
        f"{m['id']}  {(m['when'] or 'time to agree')[:16]:<16}  {m['state']:<15} "
        f"{m['customer_name']:<20} "
        f"{m['reference']:<12} {tries} call(s){due}"
        + (f"  start line code {m['phone_code']}" if m.get("phone_code") else "")
    )


def _meetings_list(args: argparse.Namespace) -> int:
    svc = common.service()
    rows = [svc.meetings.public(m) for m in svc.meetings.all()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        print(_meeting_line(row))
    return EXIT_OK


def _meetings_show(args: argparse.Namespace) -> int:
    svc = common.service()
    meeting = svc.meetings.public(svc.meetings.require(args.id))
    print(json.dumps(meeting, indent=2))
    return EXIT_OK


def _meetings_call(args: argparse.Namespace) -> int:
    svc = common.service()
    common.actor(svc, ("admin", "specialist"), "calling for meetings")
    call_sid = svc.meetings.place_call(args.id, svc.links())
    print(f"calling: {call_sid}")
    return EXIT_OK


def _meetings_risk(args: argparse.Namespace) -> int:
    svc = common.service()
    who = common.actor(svc, ("admin", "specialist"), "arranging meetings")
    meeting = svc.meetings.record_risk_assessment(
        args.id,
        assessor=args.assessor,
        assessed_on=args.date,
        outcome=args.outcome,
        reference=args.reference,
        by=who.who,
    )
    if meeting["state"] == "not_safe":
        print(f"meeting {args.id}: not safe to visit; arrange it in an HMRC building instead")
    else:
        print(f"meeting {args.id}: risk assessment recorded; its call is due")
    return EXIT_OK


def _meetings_start(args: argparse.Namespace) -> int:
    svc = common.service()
    who = common.actor(svc, ("admin", "specialist"), "recording a meeting's start")
    meeting = svc.meetings.record_start_checks(
        args.id, passed=args.checks == "passed", how="cli", by=who.who, note=args.note
    )
    if meeting["state"] == "held":
        print(f"meeting {args.id}: checks passed; the meeting is held")
    else:
        print(f"meeting {args.id}: checks failed; ended as not verified (nothing discussed)")
    return EXIT_OK


def _purposes_list(args: argparse.Namespace) -> int:
    svc = common.service()
    rows = svc.meetings.purposes.all()
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        state = "" if row["active"] else "  (retired)"
        print(f"{row['id']:<18} {row['lowest_grade_name']:<24} {row['words']}{state}")
    return EXIT_OK


def _purposes_add(args: argparse.Namespace) -> int:
    svc = common.service()
    who = common.actor(svc, ("admin",), "changing meeting purposes")
    AdminDesk(svc).add_purpose(who, args.id, args.words, args.grade, args.words_cy)
    print(f"purpose {args.id} offered ({grade_label(args.grade)} and above)")
    return EXIT_OK


def _purposes_grade(args: argparse.Namespace) -> int:
    svc = common.service()
    who = common.actor(svc, ("admin",), "changing meeting purposes")
    AdminDesk(svc).set_purpose_grade(who, args.id, args.grade)
    print(f"purpose {args.id}: {grade_label(args.grade)} and above")
    return EXIT_OK


def _purposes_retire(args: argparse.Namespace) -> int:
    svc = common.service()
    who = common.actor(svc, ("admin",), "changing meeting purposes")
    AdminDesk(svc).retire_purpose(who, args.id)
    print(f"purpose {args.id} retired")
    return EXIT_OK


def _meetings_cancel(args: argparse.Namespace) -> int:
    svc = common.service()
    who = common.actor(svc, ("admin", "specialist"), "arranging meetings")
    svc.meetings.cancel(args.id, who.who)
    print(f"meeting {args.id} cancelled")
    return EXIT_OK


def _meetings_run(args: argparse.Namespace) -> int:
    svc = common.service()
    links = svc.links()
    return common.worker(
        args.every,
        "callflow meetings run",
        lambda: [f"meeting {m}: {result}" for m, result in svc.meetings.call_due(links)],
    )
