"""HMRC staff: VSTRS agents, specialist teams, specialists and visiting officers.

Each is an admin's to keep: every command acts as the signed-in account (``callflow
login``) through the admin desk, the same methods as the admin console, which check the
role and audit the change with who made it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..desks import AdminDesk
from ..errors import CallflowError
from ..grades import GRADES, grade_label
from ..hours import NATIONS
from . import common
from .common import EXIT_OK


def register(sub: Any) -> None:
    """Add this group's commands."""
    officers = sub.add_parser(
        "officers", help="manage Debt Management officers (the officer verification line)"
    )
    of = officers.add_subparsers(metavar="ACTION")
    officer_add = of.add_parser("add", help="register an officer by their card's identity number")
    officer_add.add_argument("number", help="the identity number (6 to 10 digits)")
    officer_add.add_argument("--name", required=True, help="the name they give customers")
    officer_add.add_argument(
        "--grade", required=True, choices=[c for c, _ in GRADES],
        help="their grade: " + ", ".join(f"{c} {n}" for c, n in GRADES),
    )  # fmt: skip
    officer_add.set_defaults(handler=_officers_add)
    officer_grade = of.add_parser("set-grade", help="record an officer's grade")
    officer_grade.add_argument("number")
    officer_grade.add_argument("grade", choices=[c for c, _ in GRADES])
    officer_grade.set_defaults(handler=_officers_grade)
    officer_pin = of.add_parser(
        "set-pin", help="the officer's PIN for the meeting start line (read without echo)"
    )
    officer_pin.add_argument("number")
    officer_pin.add_argument(
        "--issue", action="store_true", help="issue a random PIN and show it once"
    )
    officer_pin.set_defaults(handler=_officers_pin)
    officer_hours = of.add_parser(
        "hours", help="an officer's working hours: the meeting times their diary offers"
    )
    officer_hours.add_argument("number")
    officer_hours.add_argument("hours", help='like "Mon-Fri 09:00-12:30,13:30-17:00"')
    officer_hours.add_argument(
        "--nation", default="england-and-wales", choices=sorted(NATIONS),
        help="whose bank holidays they keep",
    )  # fmt: skip
    officer_hours.set_defaults(handler=_officers_hours)
    officer_list = of.add_parser("list", help="list officers")
    officer_list.add_argument("--json", action="store_true")
    officer_list.set_defaults(handler=_officers_list)
    for verb, active in (("activate", True), ("deactivate", False)):
        toggle = of.add_parser(verb, help=f"{verb} an officer")
        toggle.add_argument("number")
        toggle.set_defaults(handler=_officers_active, active=active)
    officer_remove = of.add_parser("remove", help="remove an officer")
    officer_remove.add_argument("number")
    officer_remove.set_defaults(handler=_officers_remove)
    officers.set_defaults(handler=lambda _args: common.usage(officers))
    reasons = sub.add_parser(
        "handoff-reasons", help="why a hand-off needs a specialist: the list agents choose from"
    )
    rs = reasons.add_subparsers(metavar="ACTION")
    reason_list = rs.add_parser("list", help="every reason, offered or retired")
    reason_list.set_defaults(handler=_reasons_list)
    reason_add = rs.add_parser("add", help="offer a reason (or bring a retired one back)")
    reason_add.add_argument("id", help="lower-case letters, digits and _, like time_to_pay")
    reason_add.add_argument("--label", required=True, help="what agents see")
    reason_add.set_defaults(handler=_reasons_add)
    reason_retire = rs.add_parser("retire", help="stop offering a reason (hand-offs keep it)")
    reason_retire.add_argument("id")
    reason_retire.set_defaults(handler=_reasons_retire)
    reasons.set_defaults(handler=lambda _args: common.usage(reasons))
    agents = sub.add_parser("agents", help="manage VSTRS agents")
    ag = agents.add_subparsers(metavar="ACTION")
    agent_add = ag.add_parser("add", help="register a VSTRS agent")
    agent_add.add_argument(
        "--sees-id", required=True, help="the agent's SEES ID code (6 to 10 digits)"
    )
    agent_add.add_argument("--name", required=True)
    reach = agent_add.add_mutually_exclusive_group(required=True)
    reach.add_argument("--phone", help="the number to ring, like +441632960100")
    reach.add_argument("--client", help="a Twilio client identity to ring")
    agent_add.add_argument(
        "--skill",
        action="append",
        default=[],
        help="a language they serve beyond English (cy-GB) or a skill (repeatable)",
    )
    agent_add.set_defaults(handler=_agents_add)
    agent_skills = ag.add_parser(
        "skills", help="set what an agent serves beyond English (none: English only)"
    )
    agent_skills.add_argument("sees_id")
    agent_skills.add_argument("skills", nargs="*", help="like cy-GB")
    agent_skills.set_defaults(handler=_agents_skills)
    agent_list = ag.add_parser("list", help="list agents and their availability")
    agent_list.add_argument("--json", action="store_true")
    agent_list.set_defaults(handler=_agents_list)
    for action, text in (
        ("activate", "let an agent take calls again"),
        ("deactivate", "stop ringing an agent"),
    ):
        parser_ = ag.add_parser(action, help=text)
        parser_.add_argument("sees_id")
        parser_.set_defaults(handler=_agents_active, active=action == "activate")
    agent_remove = ag.add_parser("remove", help="remove an agent")
    agent_remove.add_argument("sees_id")
    agent_remove.set_defaults(handler=_agents_remove)
    agents.set_defaults(handler=lambda _args: common.usage(agents))

    teams = sub.add_parser("teams", help="manage specialist teams")
    tm = teams.add_subparsers(metavar="ACTION")
    team_add = tm.add_parser("add", help="register a specialist team")
    team_add.add_argument("--id", required=True, help="short id, like debt_pursuit")
    team_add.add_argument("--name", required=True)
    team_add.add_argument("--handles", default="", help="what the team handles")
    team_add.add_argument(
        "--number", action="append", required=True, help="a number to ring (repeat, in order)"
    )
    team_add.add_argument("--hours", default="Mon-Fri 08:30-17:00", help="opening hours, UK time")
    team_add.set_defaults(handler=_teams_add)
    team_list = tm.add_parser("list", help="list teams")
    team_list.add_argument("--json", action="store_true")
    team_list.set_defaults(handler=_teams_list)
    team_update = tm.add_parser(
        "update", help="change a team's name, what it handles, its numbers or its hours"
    )
    team_update.add_argument("id")
    team_update.add_argument("--name")
    team_update.add_argument("--handles")
    team_update.add_argument(
        "--number", action="append", help="the numbers to ring, in order (repeat; replaces them)"
    )
    team_update.add_argument("--hours", help="opening hours, UK time, like Mon-Fri 08:30-17:00")
    team_update.add_argument(
        "--welsh",
        action="append",
        metavar="NUMBER",
        help="a team number answered in Welsh, rung first for Welsh calls (repeat; replaces)",
    )
    team_update.set_defaults(handler=_teams_update)
    team_remove = tm.add_parser("remove", help="remove a team")
    team_remove.add_argument("id")
    team_remove.set_defaults(handler=_teams_remove)
    teams.set_defaults(handler=lambda _args: common.usage(teams))

    people = sub.add_parser(
        "specialists", help="manage specialists: the people in specialist teams"
    )
    sp = people.add_subparsers(metavar="ACTION")
    person_add = sp.add_parser("add", help="register a specialist in a team")
    person_add.add_argument("staff_number", help="their staff number (6 to 10 digits)")
    person_add.add_argument("--name", required=True)
    person_add.add_argument("--team", required=True, help="their team's id")
    person_reach = person_add.add_mutually_exclusive_group(required=True)
    person_reach.add_argument("--phone", help="their own number, like +441632960201")
    person_reach.add_argument("--client", help="their Twilio client identity")
    person_add.add_argument(
        "--language", action="append", default=[], help="a language they serve beyond English"
    )
    person_add.set_defaults(handler=_specialists_add)
    person_list = sp.add_parser("list", help="list specialists (of a team) and their availability")
    person_list.add_argument("--team", help="only this team's")
    person_list.add_argument("--json", action="store_true")
    person_list.set_defaults(handler=_specialists_list)
    person_update = sp.add_parser(
        "update", help="move a specialist to another team, or change their phone or languages"
    )
    person_update.add_argument("staff_number")
    person_update.add_argument("--team")
    update_reach = person_update.add_mutually_exclusive_group()
    update_reach.add_argument("--phone")
    update_reach.add_argument("--client")
    person_update.add_argument(
        "--language", action="append", help="languages beyond English (repeat; replaces them)"
    )
    person_update.set_defaults(handler=_specialists_update)
    for action, text in (
        ("activate", "let a specialist take hand-offs again"),
        ("deactivate", "stop ringing a specialist (their sign-ins and tokens stop working)"),
    ):
        person_toggle = sp.add_parser(action, help=text)
        person_toggle.add_argument("staff_number")
        person_toggle.set_defaults(handler=_specialists_active, active=action == "activate")
    person_remove = sp.add_parser("remove", help="remove a specialist")
    person_remove.add_argument("staff_number")
    person_remove.set_defaults(handler=_specialists_remove)
    people.set_defaults(handler=lambda _args: common.usage(people))


def _desk() -> tuple[Any, AdminDesk, Any]:
    """The service, the admin's desk, and the signed-in person acting."""
    svc = common.service()
    return svc, AdminDesk(svc), common.actor(svc)


def _officers_add(args: argparse.Namespace) -> int:
    svc, desk, who = _desk()
    desk.add_officer(who, args.number, args.name, args.grade)
    officer = svc.staff.officer(args.number)
    print(f"added officer {officer.number} ({officer.name}, {grade_label(officer.grade)})")
    return EXIT_OK


def _officers_hours(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    desk.set_officer_hours(who, args.number, args.hours, args.nation)
    print(f"officer {args.number} works {args.hours} ({args.nation} bank holidays off)")
    return EXIT_OK


def _officers_grade(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    desk.set_officer_grade(who, args.number, args.grade)
    print(f"officer {args.number} is now {grade_label(args.grade)}")
    return EXIT_OK


def _officers_pin(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    if args.issue:
        pin = desk.set_officer_pin(who, args.number, None)
        print(f"new meeting start line PIN for officer {args.number} (shown once): {pin}")
    else:
        desk.set_officer_pin(who, args.number, common.read_secret(f"new PIN for {args.number}"))
        print(f"PIN set for officer {args.number}")
    return EXIT_OK


def _officers_list(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    rows = desk.section(who, "officers")
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        state = "active" if row["active"] else "inactive"
        print(f"{row['number']:<12} {row['name']:<30} {grade_label(row['grade']):<26} {state}")
    return EXIT_OK


def _officers_active(args: argparse.Namespace) -> int:
    svc, desk, who = _desk()
    desk.set_officer_active(who, args.number, args.active)
    officer = svc.staff.officer(args.number)
    outcome = "activated" if args.active else "deactivated"
    print(f"officer {officer.number} ({officer.name}) {outcome}")
    return EXIT_OK


def _officers_remove(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    desk.remove_officer(who, args.number)
    print(f"removed officer {args.number}")
    return EXIT_OK


def _agents_add(args: argparse.Namespace) -> int:
    svc, desk, who = _desk()
    reach = args.phone or f"client:{args.client}"
    desk.add_agent(who, args.sees_id, args.name, reach)
    if args.skill:
        desk.set_agent_skills(who, args.sees_id, args.skill)
    agent = svc.staff.agent(args.sees_id)
    skills = f", serves {', '.join(agent.skills)}" if agent.skills else ""
    print(f"added VSTRS agent {agent.sees_id} ({agent.name}), rung on {agent.reach}{skills}")
    return EXIT_OK


def _agents_skills(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    agent = desk.set_agent_skills(who, args.sees_id, args.skills)
    print(f"agent {agent.sees_id} serves English{''.join(', ' + s for s in agent.skills)}")
    return EXIT_OK


def _agents_list(args: argparse.Namespace) -> int:
    svc, desk, who = _desk()
    desk.overview(who)  # the directory is an admin's to read
    now = svc.clock.now()
    rows = [
        {**a.to_dict(), "availability": svc.staff.availability(a.sees_id, now)}
        for a in svc.staff.agents()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no agents registered")
    for row in rows:
        active = "active" if row["active"] else "INACTIVE"
        print(
            f"{row['sees_id']:>10}  {row['name']:<24} {row['reach']:<28} {active:<9} "
            f"{row['availability']['state']:<10} {' '.join(row.get('skills') or [])}"
        )
    return EXIT_OK


def _agents_active(args: argparse.Namespace) -> int:
    svc, desk, who = _desk()
    desk.set_agent_active(who, args.sees_id, args.active)
    agent = svc.staff.agent(args.sees_id)
    print(f"agent {agent.sees_id} is {'active' if agent.active else 'inactive'}")
    return EXIT_OK


def _agents_remove(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    desk.remove_agent(who, args.sees_id)
    print(f"agent {args.sees_id} removed")
    return EXIT_OK


def _teams_add(args: argparse.Namespace) -> int:
    svc, desk, who = _desk()
    desk.add_team(who, args.id, args.name, args.handles, " ".join(args.number), args.hours)
    team = svc.staff.team(args.id)
    print(
        f"added team {team.id} ({team.name}), rung on {', '.join(team.numbers)}, open {team.hours}"
    )
    return EXIT_OK


def _teams_list(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    rows = desk.section(who, "teams")
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no teams registered")
    for row in rows:
        print(f"{row['id']:<20} {row['name']:<30} {row['hours']:<20} {', '.join(row['numbers'])}")
    return EXIT_OK


def _teams_update(args: argparse.Namespace) -> int:
    svc, desk, who = _desk()
    desk.overview(who)
    team = svc.staff.team(args.id)
    if team is None:
        raise CallflowError(f"no team {args.id} (see `callflow teams list`)")
    welsh = args.welsh if args.welsh is not None else [
        n for n, langs in team.languages.items() if "cy-GB" in langs
    ]  # fmt: skip
    desk.update_team(
        who,
        team.id,
        team.name if args.name is None else args.name,
        team.handles if args.handles is None else args.handles,
        " ".join(args.number or team.numbers),
        args.hours or team.hours,
        " ".join(welsh),
    )
    team = svc.staff.team(args.id)
    welsh = [n for n, langs in team.languages.items() if "cy-GB" in langs]
    in_welsh = f" (in Welsh: {', '.join(welsh)})" if welsh else ""
    print(
        f"team {team.id} ({team.name}): rung on {', '.join(team.numbers)}{in_welsh}, "
        f"open {team.hours}"
    )
    return EXIT_OK


def _teams_remove(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    desk.remove_team(who, args.id)
    print(f"team {args.id} removed")
    return EXIT_OK


def _specialists_add(args: argparse.Namespace) -> int:
    svc, desk, who = _desk()
    reach = args.phone or f"client:{args.client}"
    desk.add_specialist(who, args.staff_number, args.name, args.team, reach, welsh=False)
    if args.language:
        desk.update_specialist(who, args.staff_number, skills=args.language)
    person = svc.staff.specialist(args.staff_number)
    print(f"added specialist {person.id} ({person.name}) to {person.team}, rung on {person.reach}")
    return EXIT_OK


def _specialists_list(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    rows = [r for r in desk.section(who, "specialists") if not args.team or r["team"] == args.team]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no specialists registered")
    for row in rows:
        active = "active" if row["active"] else "INACTIVE"
        print(
            f"{row['id']:>10}  {row['name']:<24} {row['team']:<16} {row['reach']:<26} "
            f"{active:<9} {row['availability']:<10} {' '.join(row.get('skills') or [])}"
        )
    return EXIT_OK


def _specialists_update(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    reach = args.phone or (f"client:{args.client}" if args.client else None)
    person = desk.update_specialist(
        who, args.staff_number, team=args.team, reach=reach, skills=args.language
    )
    print(f"specialist {person.id} ({person.name}): {person.team}, rung on {person.reach}")
    return EXIT_OK


def _specialists_active(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    person = desk.update_specialist(who, args.staff_number, active=args.active)
    print(f"specialist {person.id} is {'active' if person.active else 'inactive'}")
    return EXIT_OK


def _specialists_remove(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    desk.remove_specialist(who, args.staff_number)
    print(f"specialist {args.staff_number} removed")
    return EXIT_OK


def _reasons_list(_args: argparse.Namespace) -> int:
    for need in common.service().handoffs.needs.all():
        state = "offered" if need["active"] else "retired"
        print(f"{need['id']:<20} {state:<8} {need['label']}")
    return EXIT_OK


def _reasons_add(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    added = desk.add_need(who, args.id, args.label)
    print(f"reason {added['id']} offered: {added['label']}")
    return EXIT_OK


def _reasons_retire(args: argparse.Namespace) -> int:
    _svc, desk, who = _desk()
    desk.retire_need(who, args.id)
    print(f"reason {args.id} retired: agents no longer choose it")
    return EXIT_OK
