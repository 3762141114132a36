"""The demo world behind ``callflow serve --demo``: live work on every console in a minute.

One process holds it all: the service on the embedded store, the local Twilio simulator
standing in for Twilio (the service reaches it through its REST API, by the one adapter,
exactly as it reaches Twilio), the simulator's clock kept in step with the wall clock, and
the people of a working day:

- the four organisations' advisers, whose secrets the scripted callers know;
- VSTRS agents: Alex, whose console a person drives in the browser, and Robin, whom the
  demo drives (answers; hands off to Debt Pursuit when a specialist there is free, else
  resolves the call; briefs, hands over, records the outcome and is ready again);
- specialists, each reached on a phone of their own: in Debt Pursuit, Sam (whose console
  the person at the browser watches) and Kim; in Insolvency, Lee. Each phone is answered
  by the simulator, keying the SEES ID of the agent on *that specialist's own* hand-off;
- an officer and a face-to-face meeting;
- console accounts for every role, sharing one password made at start and printed;
- scripted callers ringing the VSTRS number every so often.

Only ever on the embedded store (its secrets are printed and in the README), never Redis.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .access import Viewer
from .callbacks import dialable
from .clock import ManualClock
from .config import Settings
from .demo import DEMO_ANSWERS, DEMO_NUMBER, DEMO_PIN
from .handoff import IN_PROGRESS
from .sandbox import web_app_factory
from .service import Callflow
from .simulator import Callee, Script, Simulator, Step, WsgiTransport
from .simulator.rest import RestApi, SimulatorHttpClient
from .store import MemoryStore

__all__ = ["ACCOUNTS", "DemoWorld"]

log = logging.getLogger(__name__)

VSTRS_NUMBER = "+441632960999"
#: The Welsh line: the same flow, in Welsh from the first word (?lang=cy).
WELSH_NUMBER = "+441632960998"
BY = "demo"

#: (number, name, organisation): every adviser shares the demo PIN and answers.
ADVISERS = [
    (DEMO_NUMBER, "Sam Demo", "taxaid"),
    ("1002", "Toni Older", "top"),
    ("1003", "Lou Reform", "litrg"),
    ("1004", "Cam Advice", "citizens_advice"),
]
HUMAN_AGENT = ("100001", "Alex Agent", "client:alex")
ROBOT_AGENT = ("100002", "Robin Agent", "client:robin")
TEAMS = [
    ("debt_pursuit", "Debt Pursuit", "debts in pursuit", "+441632960200"),
    ("insolvency", "Insolvency", "insolvency and bankruptcy", "+441632960210"),
]
#: (staff number, name, team, phone): the specialists, each on a phone of their own.
SPECIALISTS = [
    ("400101", "Sam Specialist", "debt_pursuit", "client:sam"),
    ("400102", "Kim Specialist", "debt_pursuit", "client:kim"),
    ("400201", "Lee Specialist", "insolvency", "client:lee"),
]
#: (username, name, role, SEES ID or staff number): one account per role.
ACCOUNTS = [
    ("alex", "Alex Agent", "vstrs_agent", HUMAN_AGENT[0]),
    ("sam", "Sam Specialist", "specialist", SPECIALISTS[0][0]),
    ("sue", "Sue Supervisor", "supervisor", ""),
    ("dana", "Dana Designer", "designer", ""),
    ("audrey", "Audrey Auditor", "auditor", ""),
    ("ada", "Ada Admin", "admin", ""),
]
CONSOLES = {
    "vstrs_agent": "the agent console: press Available to take the next caller",
    "specialist": "Sam in Debt Pursuit: Sam's own hand-offs (Kim takes the others)",
    "supervisor": "the floor live, and the wallboard (/console/supervisor/wallboard)",
    "designer": "flows, their tests and the softphone",
    "auditor": "figures, assurance and the audit log",
    "admin": "the staff directory",
}
CUSTOMERS = [
    ("Pat Example", "3234567880"),
    ("Jo Sample", "AB123456C"),
    ("Chris Taxpayer", "8876543210"),
]


@dataclass
class _RobotCall:
    """A call the robot agent is on, and how far its hand-off has gone."""

    call_sid: str
    connected_at: float
    handoff_id: str = ""
    briefing_since: float = 0.0
    done: bool = False
    resolved: bool = False


def _adviser(number: str, *, asks_callback: bool) -> Callable[[str], Any]:
    """A demo adviser on the phone: answers whatever the flow asks (the VSTRS line or a
    call-back), and takes the call-back offer when ``asks_callback``."""

    def ask(heard: str) -> Any:
        lowered = heard.lower()
        if "be called back" in lowered or "chael galwad yn ôl" in lowered:
            return Step("press", "1") if asks_callback else Step("silent")
        if "press 1" in lowered or "pwyswch 1" in lowered:
            return Step("press", "1")
        if "adviser number" in lowered or "rhif cynghorydd" in lowered:
            return Step("press", f"{number}#")
        if re.search(r"\bpin\b", lowered):
            return Step("press", f"{DEMO_PIN}#")
        if "first school" in lowered or "ysgol gyntaf" in lowered:
            return Step("say", DEMO_ANSWERS["first_school"])
        if "colour" in lowered or "hoff liw" in lowered:
            return Step("say", DEMO_ANSWERS["favourite_colour"])
        return Step("silent")

    return ask


@dataclass
class DemoWorld:
    """The service, the simulator and the demo's people, ready to serve at ``base_url``."""

    base_url: str
    caller_every: float = 20.0
    #: How long a scripted caller stays on the line from joining the queue: long enough for
    #: the longest wait for an agent (CALLFLOW_AGENT_WAIT) and then a hand-off.
    talk: float = 360.0
    max_callers: int = 3
    password: str = field(default_factory=lambda: "demo-" + secrets.token_urlsafe(9))
    say: Callable[[str], None] = print

    def __post_init__(self) -> None:
        from twilio.rest import Client


        token = secrets.token_hex(16)
        self.clock = ManualClock(time.time())
        self.sim = Simulator(None, token, clock=self.clock)
        client = Client(
            self.sim.account_sid, token, http_client=SimulatorHttpClient(RestApi(self.sim))
        )
        settings = (
            Settings.from_env()
            .with_overrides(
                {
                    "redis_url": "",
                    "twilio_auth_token": token,
                    "public_base_url": self.base_url,
                    "secret_key": secrets.token_bytes(32),
                }
            )
            .checked()
        )
        self.service = Callflow(
            settings, store=MemoryStore(self.clock), clock=self.clock, twilio_client=client
        )
        self.app = web_app_factory()({"CALLFLOW_SERVICE": self.service})
        self.sim.transport = WsgiTransport(self.app)
        self.links = self.service.links()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._robot: dict[str, _RobotCall] = {}
        self._callers: list[Any] = []
        self._next_caller = 0
        self._last_dispatch = 0.0

    # ------------------------------------------------------------ the people

    def seed(self) -> None:
        """Advisers, agents, teams, an officer, a meeting, accounts and the VSTRS number."""

        svc, now = self.service, self.clock.now()
        for number, name, org in ADVISERS:
            svc.directory.add(
                number,
                name,
                org,
                phone=f"+44 20 7946 {number}",
                email=f"{name.split()[0].lower()}@{org.replace('_', '')}.example.org",
                consent_to_act=True,
                now=now,
                by=BY,
            )
            svc.directory.set_pin(number, DEMO_PIN, now, by=BY)
            svc.directory.set_answers(number, DEMO_ANSWERS, now, by=BY)
            # The adviser's registered phone: a call-back is answered, and they verify.
            phone = dialable(f"+44 20 7946 {number}")
            assert phone is not None
            script = Script(patience=self.talk, ask=_adviser(number, asks_callback=False))
            self.sim.add_callee(phone, Callee("answered", after=6, script=script))
        for sees_id, name, reach in (HUMAN_AGENT, ROBOT_AGENT):
            svc.staff.add_agent(sees_id, name, reach, now, by=BY)
            # An agent's phone: answered after a moment; the caller ends the call.
            talk = Script(patience=4 * 3600, ask=lambda _heard: Step("silent"))
            self.sim.add_callee(reach, Callee("answered", after=3, script=talk))
        svc.staff.set_availability(ROBOT_AGENT[0], "available", now)
        # Alex speaks Welsh: a Welsh caller is offered to Alex first (routing by skill).
        svc.staff.set_agent_skills(HUMAN_AGENT[0], ["cy-GB"], by=BY)
        for team_id, name, handles, number in TEAMS:
            svc.staff.add_team(
                team_id, name, handles, [number], "Mon-Sun 00:00-24:00", by=BY, nation="none"
            )
            # The team's own number is not staffed in the demo: its people have phones.
            self.sim.add_callee(number, Callee("no-answer"))
        for staff_number, name, team_id, reach in SPECIALISTS:
            svc.staff.add_specialist(staff_number, name, team_id, reach, now, by=BY)
            svc.staff.set_specialist_availability(staff_number, "available", now)
            answers = Script(patience=4 * 3600, ask=self._specialist(staff_number))
            self.sim.add_callee(reach, Callee("answered", after=3, script=answers))
        svc.staff.add_officer("300001", "Olive Officer", now, grade="O", by=BY)
        svc.meetings.add(
            customer_name="Jo Sample",
            customer_number="+447700900123",
            reference="DM-2026-0042",
            officer_number="300001",
            purpose="time_to_pay",
            bring="your last three bank statements",
            when=None,  # the call offers Jo times from Olive's diary
            where="the Wolverhampton office, 2 Broad Street",
            place="hmrc_office",
            date_of_birth="1970-03-21",
            call_at=now + 2 * 86400 - 3600,
            by=BY,
        )
        for username, name, role, tie in ACCOUNTS:
            svc.accounts.add(
                username,
                name,
                role,
                self.password,
                now,
                sees_id=tie if role == "vstrs_agent" else "",
                specialist=tie if role == "specialist" else "",
                by=BY,
            )
        for number, language in ((VSTRS_NUMBER, None), (WELSH_NUMBER, "cy")):
            self.sim.configure_number(
                number,
                self.links.voice_url(language=language),
                status_callback=self.links.call_status(),
            )

    def _specialist(self, staff_number: str) -> Callable[[str], Any]:
        """A specialist on their own phone: keys the SEES ID of the agent on the hand-off
        they are taking (their own, never the team's newest), then accepts."""

        def ask(heard: str) -> Any:
            if "SEES I D code" in heard or "cod SEES I D" in heard:
                mine = [
                    d
                    for d in self.service.handoffs.of_specialist(staff_number, count=5)
                    if d["state"] in {"ringing", "checking"}
                    and (d.get("taken_by") or {}).get("id") == staff_number
                ]
                sees_id = mine[0]["agent_sees_id"] if mine else ""
                return Step("press", f"{sees_id}#")
            if "Press 1 to accept" in heard or "Pwyswch 1 i dderbyn" in heard:
                return Step("press", "1")
            return Step("silent")

        return ask

    def _caller(self) -> None:
        """The next scripted caller rings the VSTRS number (unless enough are waiting)."""

        self._callers = [leg for leg in self._callers if leg.live]
        if len(self._callers) >= self.max_callers:
            return
        number, _name, _org = ADVISERS[self._next_caller % len(ADVISERS)]
        self._next_caller += 1
        # Every other caller asks for a call-back when every agent is busy; the rest hold.
        # On the line this long from joining the call's conference (waiting for an agent
        # included): whoever has the call then, the caller ends it.
        asks = self._next_caller % 2 == 0
        script = Script(patience=self.talk, ask=_adviser(number, asks_callback=asks))
        caller_id = f"+4416329600{10 + self._next_caller % 80:02d}"
        # Every fourth caller rings the Welsh line.
        line = WELSH_NUMBER if self._next_caller % 4 == 0 else VSTRS_NUMBER
        self._callers.append(self.sim.call(line, caller_id, script))

    def _robot_step(self) -> None:
        """Robin, the demo's own agent: a hand-off to Debt Pursuit when one of its
        specialists is free (else Robin resolves the call), the hand-over, and the outcome
        recorded in after-call work."""
        svc, now = self.service, self.clock.now()
        robin = Viewer("vstrs_agent", sees_id=ROBOT_AGENT[0], name=ROBOT_AGENT[1])
        for record in svc.vstrs.recent_for_agent(ROBOT_AGENT[0], count=3):
            sid = record["call_sid"]
            if record.get("state") == "with_agent" and sid not in self._robot:
                self._robot[sid] = _RobotCall(sid, now)
        for call in list(self._robot.values()):
            if call.done:
                continue
            if not call.handoff_id and now - call.connected_at >= 8:
                if not svc.staff.idle_specialists("debt_pursuit", None):
                    self._resolve(call)
                    continue
                name, reference = CUSTOMERS[len(self._robot) % len(CUSTOMERS)]
                body = {
                    "team": "debt_pursuit",
                    "customer": {"name": name, "reference": reference},
                    "issue": "Wants to agree time to pay on a debt in pursuit",
                    "need": "time_to_pay",
                    "authorisation": {
                        "type": "recorded_oral",
                        "date": datetime.fromtimestamp(now).strftime("%Y-%m-%d"),
                        "reference": f"DEMO-{len(self._robot)}",
                    },
                    "callback": {"urgent": False, "turnaround": "2 working days"},
                }
                try:
                    handoff = svc.handoffs.request(call.call_sid, ROBOT_AGENT[0], body, self.links)
                    call.handoff_id = handoff["id"]
                except Exception as exc:  # the call may have ended meanwhile
                    log.info("demo: Robin's hand-off on %s: %s", call.call_sid, exc)
                    call.done = True
                continue
            if call.handoff_id:
                now_handoff = svc.handoffs.get(call.handoff_id)
                state = now_handoff["state"] if now_handoff else ""
                if state == "briefing" and not call.briefing_since:
                    call.briefing_since = now
                elif state == "briefing" and now - call.briefing_since >= 8:
                    try:
                        svc.handoffs.complete(
                            call.handoff_id, self.links, agent_sees_id=ROBOT_AGENT[0]
                        )
                    except Exception as exc:
                        log.info("demo: Robin's hand-over on %s: %s", call.call_sid, exc)
                    call.done = True
                elif state not in IN_PROGRESS:
                    call.done = True
        presence = svc.staff.availability(ROBOT_AGENT[0], now)
        if presence["state"] == "after_call" and now - float(presence["since"]) >= 5:
            wrapped = presence.get("call_sid")
            if wrapped:
                wrapped_record = svc.vstrs.get(wrapped)
                outcome = wrapped_record.get("outcome") if wrapped_record else None
                code = (outcome or {}).get("code") or "resolved"
                try:
                    svc.vstrs.record_outcome(wrapped, robin, code, "Recorded by the demo.")
                except Exception as exc:
                    log.info("demo: Robin's outcome on %s: %s", wrapped, exc)
            svc.vstrs.set_agent_availability(ROBOT_AGENT[0], "ready", self.links)

    def _resolve(self, call: _RobotCall) -> None:
        """No specialist free: Robin resolves the call with the adviser and leaves it."""
        record = self.service.vstrs.get(call.call_sid)
        leg = ((record["agent"] if record else None) or {}).get("call_sid")
        call.done = call.resolved = True
        if leg and leg in self.sim.legs:
            robin = self.sim.legs[leg]
            # On the simulator's own thread: its clock loop runs the events.
            self.sim.schedule(0, lambda: self.sim.hang_up(robin))

    # ------------------------------------------------------------ running

    def start(self) -> None:
        """Seed the world, then keep its clock, callers and Robin going in the background."""
        self.seed()
        self._spawn(self._clock_loop, "demo clock")
        self._spawn(self._people_loop, "demo people")

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=2)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _clock_loop(self) -> None:
        """The simulator's clock follows the wall clock (events run as they fall due)."""
        while not self._stopping.wait(0.1):
            behind = time.time() - self.clock.now()
            if behind > 0:
                self.sim.advance(behind)

    def _people_loop(self) -> None:
        first = time.time() + 2
        next_call = first
        while not self._stopping.wait(0.5):
            try:
                if time.time() >= next_call:
                    self._caller()
                    next_call = time.time() + self.caller_every
                self._robot_step()
                self.workers()
            except Exception:  # the demo carries on; the log says what went wrong
                log.exception("demo: a scripted step failed")

    def workers(self) -> None:
        """What the Procfile's workers do, on the demo's clock: call-backs every 5 s."""
        now = self.clock.now()
        if now - self._last_dispatch >= 5:
            self._last_dispatch = now
            self.service.dispatcher.dispatch(self.links)

    def banner(self) -> str:
        """What the person who started the demo needs: where to go and how to sign in."""
        lines = [
            f"callflow demo on {self.base_url}/  (embedded store; the local Twilio simulator "
            "stands in for Twilio)",
            "",
            f"Sign in at {self.base_url}/console/login, password for every account: "
            f"{self.password}",
        ]
        for username, name, role, _tie in ACCOUNTS:
            lines.append(f"  {username:<8} {name:<16} {CONSOLES[role]}")
        people = ", ".join(
            f"{name} ({team.replace('_', ' ')})" for _n, name, team, _r in SPECIALISTS
        )
        lines.append(f"  specialists, each on a phone of their own (answered for them): {people}")
        lines += [
            "",
            f"A scripted caller rings every {self.caller_every:g} s (the first in 2 s; every "
            "fourth on the Welsh line); Robin takes calls and hands them to Debt Pursuit when "
            "Sam or Kim is free; Alex speaks Welsh. When every agent is busy, every other "
            "caller asks for a call-back: it is placed to their registered phone when it is "
            "their turn, and they verify again.",
            f"Advisers {', '.join(a[0] for a in ADVISERS)}: PIN {DEMO_PIN}, first school "
            f"'{DEMO_ANSWERS['first_school']}', favourite colour "
            f"'{DEMO_ANSWERS['favourite_colour']}' (demo secrets, embedded store only).",
            f"Call in yourself: callflow call {self.base_url} --token "
            f"{self.service.settings.twilio_auth_token} --press {DEMO_NUMBER}# "
            f"--press {DEMO_PIN}# --answer 'school=Hill Top,colour=blue'",
        ]
        return "\n".join(lines)
