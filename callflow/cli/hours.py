"""Opening hours: ``callflow hours show | set | close | open | clear``.

A calendar belongs to a specialist team (by its id) or to the VSTRS line (``line``).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..desks import AdminDesk
from ..errors import CallflowError
from ..hours import NATIONS
from . import common
from .common import EXIT_OK

LONDON = ZoneInfo("Europe/London")


def register(sub: Any) -> None:
    """Add this group's commands."""
    hours = sub.add_parser(
        "hours", help="opening hours: weekly ranges, bank holidays, closures, extra openings"
    )
    hr = hours.add_subparsers(metavar="ACTION")
    show = hr.add_parser("show", help="open or closed, and why; the hours and exceptions")
    show.add_argument("owner", nargs="?", default="line", help="a team's id, or line (default)")
    show.add_argument("--at", help="a UK local time like 2026-12-25T10:00 (default: now)")
    show.set_defaults(handler=_show)
    set_ = hr.add_parser("set", help="the weekly hours and the nation whose bank holidays close it")
    set_.add_argument("owner")
    set_.add_argument("--week", help="like 'Mon-Fri 08:30-12:30,13:30-17:00; Sat 09:00-12:00'")
    set_.add_argument("--nation", choices=sorted(NATIONS))
    set_.set_defaults(handler=_set)
    close = hr.add_parser("close", help="a dated closure (an afternoon, a training day)")
    close.add_argument("owner")
    close.add_argument(
        "--from", dest="from_", required=True, help="UK local time, 2026-12-24T12:00"
    )
    close.add_argument("--to", required=True, help="UK local time, 2026-12-24T23:59")
    close.add_argument("--reason", default="")
    close.set_defaults(handler=_close)
    open_ = hr.add_parser("open", help="an extra opening on a date (a Saturday, a holiday)")
    open_.add_argument("owner")
    open_.add_argument("--on", required=True, help="the date, 2026-12-27")
    open_.add_argument("--hours", required=True, help="like 10:00-14:00 (several with commas)")
    open_.add_argument("--reason", default="")
    open_.set_defaults(handler=_open)
    clear = hr.add_parser("clear", help="remove an exception by its number in `hours show`")
    clear.add_argument("owner")
    clear.add_argument("number", type=int)
    clear.set_defaults(handler=_clear)
    hours.set_defaults(handler=lambda _args: common.usage(hours))

    closure = sub.add_parser(
        "closure", help="close the VSTRS line at short notice: new callers hear a message"
    )
    cl = closure.add_subparsers(metavar="ACTION")
    start = cl.add_parser(
        "start", help="new calls hear the message and end; calls in progress go on"
    )
    start.add_argument("--message-file", required=True, help="the message, in English")
    start.add_argument("--welsh-file", help="the message in Welsh, for Welsh callers")
    start.add_argument("--until", help="UK local time it ends by itself, 2026-12-01T14:00")
    start.add_argument(
        "--reason", required=True, help="why the line is closing (kept in the audit log)"
    )
    start.add_argument("--yes", action="store_true", help="do not ask to confirm")
    start.set_defaults(handler=_closure_start)
    end = cl.add_parser("end", help="open the line again now")
    end.set_defaults(handler=_closure_end)
    show_ = cl.add_parser(
        "show", help="whether the line is closed at short notice, and the message"
    )
    show_.set_defaults(handler=_closure_show)
    closure.set_defaults(handler=lambda _args: common.usage(closure))


def _at(text: str | None) -> datetime:
    if not text:
        return datetime.now(LONDON)
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CallflowError(f"--at: a UK local time like 2026-12-25T10:00, not {text!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=LONDON)


def _show(args: argparse.Namespace) -> int:
    svc = common.service()
    calendar = svc.staff.calendar(args.owner)
    at = _at(args.at)
    print(f"{args.owner} at {at:%a %d %b %Y %H:%M} (UK time): {calendar.describe(at)}")
    print(f"  hours: {calendar.week}; bank holidays: {calendar.nation}")
    for number, exception in enumerate(calendar.exceptions, 1):
        if "closed_from" in exception:
            what = f"closed {exception['closed_from']} to {exception['closed_to']}"
        else:
            what = f"open on {exception['open_on']} {exception['hours']}"
        reason = f" ({exception['reason']})" if exception.get("reason") else ""
        print(f"  {number}. {what}{reason}")
    return EXIT_OK


def _done(args: argparse.Namespace, calendar: Any) -> int:
    print(f"{args.owner}: {calendar.describe(datetime.now(LONDON))}")
    return EXIT_OK


def _change(args: argparse.Namespace, action: str, form: dict[str, str]) -> int:
    """One change to a calendar, as the signed-in admin (the admin console's own method)."""
    svc = common.service()
    AdminDesk(svc).change_calendar(common.actor(svc), args.owner, action, form)
    return _done(args, svc.staff.calendar(args.owner))


def _set(args: argparse.Namespace) -> int:
    if args.week is None and args.nation is None:
        raise CallflowError("give --week and/or --nation")
    svc = common.service()
    current = svc.staff.calendar(args.owner)
    return _change(
        args,
        "week",
        {"week": args.week or current.week, "nation": args.nation or current.nation},
    )


def _close(args: argparse.Namespace) -> int:
    return _change(
        args, "closure", {"closed_from": args.from_, "closed_to": args.to, "reason": args.reason}
    )


def _open(args: argparse.Namespace) -> int:
    return _change(
        args, "opening", {"open_on": args.on, "hours": args.hours, "reason": args.reason}
    )


def _clear(args: argparse.Namespace) -> int:
    return _change(args, "remove", {"number": str(args.number)})


def _read(path: str) -> str:
    from pathlib import Path

    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CallflowError(f"cannot read {path}: {exc.strerror}") from exc


def _closure_start(args: argparse.Namespace) -> int:
    svc = common.service()
    desk, who = AdminDesk(svc), common.actor(svc)
    english = _read(args.message_file)
    welsh = _read(args.welsh_file) if args.welsh_file else ""
    closure = desk.check_closure(who, english, welsh, args.until or "", args.reason)
    ends = f" until {_at(args.until):%a %d %b %H:%M}" if args.until else " until `closure end`"
    if not args.yes:
        print(f"New callers will hear: {closure['messages']['en-GB']}")
        print(f"Why: {closure['reason']}; closed{ends}.")
        if not common.confirm("Close the VSTRS line to new calls now?"):
            print("not closed")
            return common.EXIT_PROBLEMS
    desk.start_closure(who, english, welsh, args.until or "", args.reason)
    print(f"the line is closed to new calls{ends}; calls in progress go on")
    return EXIT_OK


def _closure_end(_args: argparse.Namespace) -> int:
    svc = common.service()
    AdminDesk(svc).end_closure(common.actor(svc))
    print("the line is open to new calls again (its usual hours apply)")
    return EXIT_OK


def _closure_show(_args: argparse.Namespace) -> int:
    svc = common.service()
    closure = svc.staff.closure(svc.clock.now())
    if closure is None:
        print("no closure: the line's usual hours apply")
        return EXIT_OK
    until = closure.get("until")
    when = datetime.fromtimestamp(until, LONDON).strftime("%a %d %b %H:%M") if until else "ended"
    print(f"closed to new calls by {closure['by']}, until {when if until else '`closure end`'}")
    if closure.get("reason"):
        print(f"  why: {closure['reason']}")
    for language, text in sorted(closure["messages"].items()):
        print(f"  {language}: {text}")
    return EXIT_OK
