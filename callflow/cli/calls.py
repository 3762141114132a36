"""Simulated calls: ``callflow call`` and ``callflow demo``."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from datetime import datetime
from typing import Any

from ..access import Viewer
from ..audit import outcome_text
from ..config import Settings
from ..demo import (
    DEMO_ADVISER_TEXT,
    DEMO_AGENT_SEES_ID,
    DEMO_SPECIALIST,
    DEMO_TEAM,
    add_demo_adviser,
    add_demo_agent,
)
from ..errors import CallflowError
from ..flowspec import NAME
from ..meetings import spoken_when
from ..service import Callflow
from ..simulator import Callee, Script
from ..simulator.session import (
    CALLER_NUMBER,
    VSTRS_NUMBER,
    demo_rig,
    demo_script,
    http_simulator,
    in_process,
    interactive_asker,
    nobody_answered,
    printer,
)
from ..store import MemoryStore
from . import common
from .common import EXIT_OK, EXIT_PROBLEMS

#: The customer the meeting demo rings.
DEMO_CUSTOMER = "+447700900123"


def register(sub: Any) -> None:
    """Add this group's commands."""
    call = sub.add_parser(
        "call", help="place a simulated call: to a running service URL, or in this process"
    )
    call.add_argument("url", nargs="?", help="the service's base URL (default: in this process)")
    call.add_argument("--token", help="auth token to sign with (default: TWILIO_AUTH_TOKEN)")
    call.add_argument("--from", dest="from_", default="+441632960001", help="the caller's number")
    call.add_argument(
        "--press",
        action=_StepAction,
        dest="steps",
        metavar="KEYS",
        help="keys at the next gather, e.g. 1001# (repeatable, in order)",
    )
    call.add_argument(
        "--say",
        action=_StepAction,
        dest="steps",
        metavar="WORDS",
        help="words at the next gather (repeatable, in order)",
    )
    call.add_argument(
        "--silent", action=_StepAction, dest="steps", nargs=0, help="say nothing at the next gather"
    )
    call.add_argument(
        "--answer",
        action=_StepAction,
        dest="steps",
        metavar="KEYWORD=WORDS",
        help="at the next gather, answer whichever question mentions KEYWORD "
        "(several with commas: 'first school=Hill Top,colour=blue')",
    )
    call.add_argument(
        "--hold",
        type=float,
        default=30.0,
        help="seconds to wait on hold (in a queue) before hanging up",
    )
    call.add_argument(
        "--demo-adviser",
        action="store_true",
        help="in this process: add the demo adviser to the embedded store first",
    )
    call.add_argument("--flow", help="call this flow (default: the Voice URL's, vstrs_inbound)")
    call.add_argument(
        "--app",
        default=None,
        help="web app factory, module:function (in process; default: the package's own)",
    )
    call.add_argument(
        "--agent-after",
        type=float,
        default=15.0,
        help="with --demo-adviser: seconds before the demo agent answers",
    )
    call.add_argument(
        "--talk", type=float, default=60.0, help="with --demo-adviser: seconds the demo agent talks"
    )
    call.add_argument("-v", "--verbose", action="store_true", help="the service's log lines too")
    call.set_defaults(handler=_call)

    demo = sub.add_parser("demo", help="play a whole scripted VSTRS call on the embedded store")
    demo.add_argument(
        "--agent-after",
        type=float,
        default=20.0,
        help="seconds in the queue before a VSTRS agent picks up",
    )
    demo.add_argument(
        "--talk",
        type=float,
        default=60.0,
        help="seconds the agent talks before asking for the hand-off",
    )
    demo.add_argument("-v", "--verbose", action="store_true", help="the service's log lines too")
    demo.add_argument(
        "--welsh",
        action="store_true",
        help="the adviser rings the Welsh line: the whole story in Welsh, hand-off included",
    )
    demo.add_argument(
        "--meeting",
        action="store_true",
        help="instead: a meeting call that agrees a time from the officer's diary (with "
        "--welsh, in Welsh); prints the time booked",
    )
    demo.set_defaults(handler=_demo)


class _StepAction(argparse.Action):
    """Collect --press/--say/--silent/--answer in the order given."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        steps = list(getattr(namespace, self.dest, None) or [])
        steps.append((option_string or "", values))
        setattr(namespace, self.dest, steps)


def _script_from(args: argparse.Namespace) -> Any:

    steps = getattr(args, "steps", None) or []
    if not steps:
        if not sys.stdin.isatty():
            raise CallflowError(
                "give --press/--say steps, or run in a terminal to answer as you go"
            )
        return Script(ask=interactive_asker(sys.stdin, sys.stdout), patience=args.hold)
    script = Script(patience=args.hold)
    for option, value in steps:
        if option == "--press":
            script.press(value)
        elif option == "--say":
            script.say(value)
        elif option == "--silent":
            script.silent()
        else:
            pairs = [part.split("=", 1) for part in value.split(",")]
            if any(len(pair) != 2 for pair in pairs):
                raise CallflowError(f"--answer takes KEYWORD=WORDS, not {value!r}")
            script.answer({key.strip(): words.strip() for key, words in pairs})
    return script


def _call(args: argparse.Namespace) -> int:

    common.quiet_logs(args.verbose)
    script = _script_from(args)
    kinds: Any = None  # the audit entries' kinds, when the service is in this process
    if args.url:
        token = args.token or os.environ.get("TWILIO_AUTH_TOKEN")
        if not token:
            raise CallflowError(
                "give --token or set TWILIO_AUTH_TOKEN: requests are signed with it"
            )
        sim = http_simulator(args.url, token)
    else:

        settings = Settings.from_env()
        token = settings.twilio_auth_token or secrets.token_hex(16)
        settings = settings.with_overrides(
            {
                "twilio_auth_token": token,
                "public_base_url": settings.public_base_url or "http://callflow.local",
            }
        )
        if args.demo_adviser and settings.redis_url:
            raise CallflowError("--demo-adviser is for the embedded store (unset REDIS_URL)")

        def make(client: Any, clock: Any) -> Callflow:
            store = None if settings.redis_url else MemoryStore(clock)
            service = Callflow(settings, store=store, clock=clock, twilio_client=client)
            if args.demo_adviser:
                add_demo_adviser(service)
            return service

        sim, service = in_process(make, token, args.app)
        if args.demo_adviser:
            add_demo_agent(service, sim, answer_after=args.agent_after, talk=args.talk)

        def kinds(sid: str) -> list[str]:
            return [e["kind"] for e in service.audit.entries() if e.get("call_sid") == sid]

    return _play_call(sim, script, args.from_, printer(sys.stdout), args.flow, kinds)


def _play_call(
    sim: Any, script: Any, from_: str, show: Any, flow: str | None = None, kinds: Any = None
) -> int:

    if flow is not None:
        if not NAME.match(flow):
            raise CallflowError(f"--flow: a flow name like officer_check, not {flow!r}")
        number = sim.numbers[VSTRS_NUMBER]
        sim.configure_number(
            VSTRS_NUMBER,
            f"{number.voice_url}?flow={flow}",
            status_callback=number.status_callback,
        )
    sim.listeners.append(show)
    leg = sim.call(VSTRS_NUMBER, from_, script)
    sim.run()
    for sid, code, message in sim.errors:
        print(f"error on {sid}: {code} {message}", file=sys.stderr)
    print(f"call {leg.sid} ended: {leg.status} after {leg.log[-1].at:.0f}s")
    unanswered = nobody_answered(leg, kinds(leg.sid) if kinds else None)
    if unanswered:
        print(unanswered)
    return EXIT_OK if not sim.errors else EXIT_PROBLEMS


def _demo_meeting(args: argparse.Namespace) -> int:
    """A meeting arranged with no time: the call offers the customer three free times
    from the officer's diary, they pick the second, and it is booked and said back."""
    sim, service = demo_rig(agent_after=args.agent_after, talk=3600)
    links = service.links("http://callflow.demo")
    now = service.clock.now()
    welsh = bool(args.welsh)
    service.staff.add_officer("300001", "Olive Officer", now, grade="O", by="demo")
    meeting = service.meetings.add(
        customer_name="Jo Sample",
        customer_number=DEMO_CUSTOMER,
        reference="DM-2026-0042",
        officer_number="300001",
        purpose="time_to_pay",
        bring="eich tri datganiad banc diwethaf" if welsh else "your last three bank statements",
        when=None,
        where="swyddfa Caerdydd, 1 Stryd y Parc" if welsh else "the Wolverhampton office",
        place="hmrc_office",
        date_of_birth="1970-03-21",
        language="cy-GB" if welsh else None,
        by="demo",
    )
    print("callflow demo --meeting: a meeting call on the embedded store, through the simulator")
    print(
        f"meeting {meeting['id']} with Jo Sample and Olive Officer (Mon-Fri 09:00-17:00): no "
        "time yet; the customer picks one of the times the call offers"
    )
    print()
    sim.listeners.append(printer(sys.stdout))
    customer = Script().press("1").press("21031970#").press("2")
    sim.add_callee(DEMO_CUSTOMER, Callee("answered", after=3, script=customer))
    service.meetings.place_call(meeting["id"], links)
    sim.run()
    booked = service.meetings.require(meeting["id"])
    print()
    if booked["state"] != "confirmed" or not booked["when"]:
        print(f"no time was booked: the meeting is {booked['state']}")
        return EXIT_PROBLEMS
    at = datetime.fromisoformat(booked["when"])
    print(f"time booked: {spoken_when(at)} ({booked['when']}) with Olive Officer")
    print(f"in Olive Officer's diary: {service.meetings.diary.holder('300001', at)}")
    for entry in service.audit.entries():
        if entry.get("meeting") == meeting["id"]:
            print(f"  {entry['kind']:<24} {outcome_text(entry.get('outcome', ''))}")
    return EXIT_OK if not sim.errors else EXIT_PROBLEMS


def _demo(args: argparse.Namespace) -> int:

    common.quiet_logs(args.verbose)
    if args.meeting:
        return _demo_meeting(args)
    sim, service = demo_rig(agent_after=args.agent_after, talk=3600)
    links = service.links("http://callflow.demo")
    print("callflow demo: the service on the embedded store, driven by the local Twilio simulator")
    print(DEMO_ADVISER_TEXT)
    print(
        f"demo VSTRS agent {DEMO_AGENT_SEES_ID} (Alex Agent) is available; in team {DEMO_TEAM}, "
        f"{DEMO_SPECIALIST[1]} ({DEMO_SPECIALIST[0]}) answers"
    )
    print()
    sim.listeners.append(printer(sys.stdout))
    if args.welsh:
        # The demo agent speaks Welsh, so the Welsh caller is offered to them at once.
        service.staff.set_agent_skills(DEMO_AGENT_SEES_ID, ["cy-GB"], by="demo")
        number = sim.numbers[VSTRS_NUMBER]
        sim.configure_number(
            VSTRS_NUMBER, f"{number.voice_url}?lang=cy", status_callback=number.status_callback
        )
    caller = sim.call(VSTRS_NUMBER, CALLER_NUMBER, demo_script())

    def state() -> str:
        record = service.vstrs.get(caller.sid)
        return record["state"] if record else ""

    if not sim.run_until(lambda: state() == "with_agent" or not caller.live):
        print("the caller was never connected to an agent")
        return EXIT_PROBLEMS
    sim.advance(args.talk)
    body = {
        "team": DEMO_TEAM,
        "customer": {"name": "Pat Example", "reference": "2234567890"},
        "issue": "Wants to agree time to pay on a debt in pursuit",
        "need": "time_to_pay",
        "authorisation": {"type": "recorded_oral", "date": "2026-11-20", "reference": "TA-DEMO-1"},
        "callback": {"urgent": False, "turnaround": "2 working days"},
    }
    print("\n--- the agent hands off to Debt Pursuit (POST .../handoffs): Kim's phone rings")
    handoff = service.handoffs.request(caller.sid, DEMO_AGENT_SEES_ID, body, links)

    def handoff_state() -> str:
        now = service.handoffs.get(handoff["id"])
        return now["state"] if now else ""

    if not sim.run_until(lambda: handoff_state() in {"briefing", "failed"}):
        return EXIT_PROBLEMS
    sim.advance(20)
    print("--- the agent has briefed the specialist and hands over (.../complete)")
    service.handoffs.complete(handoff["id"], links, agent_sees_id=DEMO_AGENT_SEES_ID)
    sim.advance(5)
    # The demo asks as Kim, the specialist who took the call, would.
    specialist = Viewer("specialist", team=DEMO_TEAM, specialist=DEMO_SPECIALIST[0])
    grant = service.handoffs.grant_for_call(caller.sid, specialist)
    team = grant.get("to", {}).get("team_name")
    print(f"--- disclosure grant: authorised={grant['authorised']}, to {team}")
    sim.advance(60)
    print("--- the caller hangs up")
    sim.hang_up(caller)
    sim.run()
    after = service.handoffs.grant_for_call(caller.sid, specialist)
    print(f"--- disclosure grant: authorised={after['authorised']}: {after.get('reason')}")
    print()
    print("audit log:")
    for entry in service.audit.entries():
        print(f"  {entry['at']}  {entry['kind']:<24} {outcome_text(entry.get('outcome', ''))}")
    for sid, code, message in sim.errors:
        print(f"error on {sid}: {code} {message}", file=sys.stderr)
    story = grant["authorised"] and not after["authorised"] and not sim.errors
    return EXIT_OK if story else EXIT_PROBLEMS
