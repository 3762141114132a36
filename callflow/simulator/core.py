"""The simulator: Twilio's Voice side, run on a virtual clock against the real service.

It places calls into the service (signed webhooks with Twilio's parameters), plays the
TwiML it gets back as Twilio does, and sends the callbacks Twilio would send. Several
calls, each with several legs, run at once on one event queue ordered by a virtual clock,
so timeouts and waits take no real time. Faults can be injected on demand.

Behaviour follows Twilio's documentation; the notes in each verb's handler say which part.
"""

from __future__ import annotations

import heapq
import itertools
import re
import secrets
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from ..clock import ManualClock
from .script import Callee, Script
from .transport import HttpResult, Transport, TransportError, sign
from .twiml import TwimlError, parse_twiml

__all__ = ["Conference", "Faults", "Leg", "LogEntry", "Simulator"]

API_VERSION = "2010-04-01"
APPLICATION_ERROR = "We are sorry, an application error has occurred. Goodbye."
FINAL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
_WORDS_PER_SECOND = 2.5


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


#: A language as Twilio's <Say> and <Gather> take it: "en-GB", "cy-GB" ("en" alone is not).
_LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}-[A-Za-z]{2,4}$")


@dataclass(frozen=True)
class LogEntry:
    """One line of a transcript: when, which leg, what happened."""

    at: float
    leg: str
    kind: str
    text: str

    def __str__(self) -> str:
        return f"{self.at:7.1f}s  {self.leg:<10} {self.kind:<9} {self.text}"


@dataclass
class Faults:
    """Faults to inject, Twilio-side.

    duplicate_webhooks: deliver each TwiML request twice (the second answer is compared).
    lose_callbacks: status callback kinds never delivered (e.g. {"completed"}).
    delay_callbacks: seconds of virtual time before each status callback is delivered.
    reorder_callbacks: hold callbacks for this many seconds, then deliver them newest first.
    duplicate_callbacks: deliver every status callback twice.
    """

    duplicate_webhooks: bool = False
    lose_callbacks: set[str] = field(default_factory=set)
    delay_callbacks: float = 0.0
    reorder_callbacks: float = 0.0
    duplicate_callbacks: bool = False


@dataclass
class NumberConfig:
    """A Twilio phone number's voice settings."""

    number: str
    voice_url: str
    voice_method: str = "POST"
    fallback_url: str | None = None
    status_callback: str | None = None


@dataclass
class Leg:
    """One call leg (one CallSid)."""

    sid: str
    label: str
    from_: str
    to: str
    direction: str
    script: Script
    started_at: float
    parent: Leg | None = None
    status: str = "queued"
    answered_at: float | None = None
    ended_at: float | None = None
    url: str = ""
    verbs: list[ET.Element] = field(default_factory=list)
    pc: int = 0
    generation: int = 0
    status_callback: str | None = None
    status_events: set[str] = field(default_factory=lambda: {"completed"})
    status_method: str = "POST"
    sequence: itertools.count[int] = field(default_factory=itertools.count)
    #: What it waits on: ("queue", name), ("dial", child), ("bridge", leg), ("conference", room).
    waiting: tuple[str, Any] | None = None
    queue_return: dict[str, Any] | None = None
    #: While waiting: the wait URL, its method, and the parameters to send with it.
    wait_loop: tuple[str, str, Callable[[], dict[str, str]]] | None = None
    dial_return: dict[str, Any] | None = None
    bridged_with: Leg | None = None
    #: With machine detection: who answered (human, machine_start, fax, unknown).
    answered_by: str | None = None
    log: list[LogEntry] = field(default_factory=list)
    #: The language of each <Say> heard on the leg, in order (as Twilio's TTS took it).
    heard_languages: list[str] = field(default_factory=list)

    @property
    def live(self) -> bool:
        """Whether the leg is still up."""
        return self.status not in FINAL

    def heard(self) -> list[str]:
        """Everything said or played to this leg, in order."""
        return [e.text for e in self.log if e.kind in {"hears", "plays"}]

    def transcript(self) -> str:
        """The leg's transcript as text."""
        return "\n".join(str(e) for e in self.log)


@dataclass
class Participant:
    """A leg in a conference."""

    leg: Leg
    start_on_enter: bool = True
    end_on_exit: bool = False
    muted: bool = False
    hold: bool = False
    label: str | None = None
    coaching: str | None = None
    wait_url: str | None = None
    joined_at: float = 0.0


@dataclass
class Conference:
    """A named conference room."""

    sid: str
    name: str
    created_at: float
    status: str = "init"
    participants: dict[str, Participant] = field(default_factory=dict)
    reason_ended: str | None = None
    status_callback: str | None = None
    status_events: set[str] = field(default_factory=set)
    status_method: str = "POST"
    sequence: itertools.count[int] = field(default_factory=itertools.count)
    ended_at: float | None = None


@dataclass
class RequestRecord:
    """A request the simulator made, and what came back."""

    at: float
    url: str
    params: dict[str, str]
    status: int | None
    body: bytes
    duplicate_of: int | None = None
    #: Real seconds the service took to answer (for benchmarks).
    elapsed: float = 0.0


class Simulator:
    """Twilio's Voice side against a service, on a virtual clock."""

    def __init__(
        self,
        transport: Transport | None,
        auth_token: str,
        *,
        clock: ManualClock | None = None,
        account_sid: str | None = None,
        faults: Faults | None = None,
        default_callee: Callee | None = None,
    ) -> None:
        #: How requests reach the service (may be set after construction, once the app exists).
        self.transport = transport
        self.auth_token = auth_token
        self.clock = clock or ManualClock()
        self.account_sid = account_sid or new_sid("AC")
        self.faults = faults or Faults()
        self.default_callee = default_callee or Callee("no-answer")
        self.numbers: dict[str, NumberConfig] = {}
        self.callees: dict[str, Callee] = {}
        self.legs: dict[str, Leg] = {}
        self.queues: dict[str, list[Leg]] = {}
        self.queue_sids: dict[str, str] = {}
        self.conferences: dict[str, Conference] = {}
        self.errors: list[tuple[str, int, str]] = []
        self.requests: list[RequestRecord] = []
        self.log: list[LogEntry] = []
        #: Called with every transcript line as it happens (``callflow call`` prints them).
        self.listeners: list[Callable[[LogEntry], None]] = []
        self._held_callbacks: list[Callable[[], None]] = []
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        # The REST server hands work in from its own thread; the event queue is shared.
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._epoch = self.clock.now()

    # ------------------------------------------------------------ set-up

    def configure_number(
        self,
        number: str,
        voice_url: str,
        *,
        status_callback: str | None = None,
        fallback_url: str | None = None,
        voice_method: str = "POST",
    ) -> None:
        """Point a phone number's Voice URL (and status callback) at the service."""
        self.numbers[number] = NumberConfig(
            number, voice_url, voice_method, fallback_url, status_callback
        )

    def add_callee(self, number: str, callee: Callee) -> None:
        """How a number or client identity answers when dialled."""
        self.callees[number] = callee

    # ------------------------------------------------------------ the event queue

    def now(self) -> float:
        """Virtual seconds since the simulator started."""
        return self.clock.now() - self._epoch

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay`` virtual seconds."""
        with self._lock:
            heapq.heappush(
                self._events, (self.clock.now() + max(delay, 0.0), next(self._seq), action)
            )

    def every(
        self, seconds: float, work: Callable[[], object], while_: Callable[[], bool]
    ) -> None:
        """Run ``work`` now and every ``seconds`` of virtual time while ``while_()`` holds (a
        worker beside the service: the call-back dispatcher, say). It stops by itself, so
        :meth:`run` still comes to an end."""

        def tick() -> None:
            if not while_():
                return
            work()
            self.schedule(seconds, tick)

        self.schedule(0, tick)

    def _later(self, leg: Leg, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` for ``leg`` unless the leg has moved on (hung up, redirected) by then."""
        generation = leg.generation

        def guarded() -> None:
            if leg.live and leg.generation == generation:
                action()

        self.schedule(delay, guarded)

    def _next_event(self, limit: float) -> Callable[[], None] | None:
        with self._lock:
            if not self._events or self._events[0][0] > limit:
                return None
            at, _, action = heapq.heappop(self._events)
        if at > self.clock.now():
            self.clock.advance(at - self.clock.now())
        return action

    def run(self, max_seconds: float = 4 * 3600) -> None:
        """Process events until none are left or ``max_seconds`` of virtual time pass."""
        limit = self.clock.now() + max_seconds
        while (action := self._next_event(limit)) is not None:
            action()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass, processing whatever happens meanwhile."""
        target = self.clock.now() + seconds
        self.run(max_seconds=seconds)
        if target > self.clock.now():
            self.clock.advance(target - self.clock.now())

    def run_until(self, done: Callable[[], bool], max_seconds: float = 4 * 3600) -> bool:
        """Process events until ``done()`` holds; True if it did."""
        limit = self.clock.now() + max_seconds
        while not done() and (action := self._next_event(limit)) is not None:
            action()
        return done()

    # ------------------------------------------------------------ transcript

    def note(self, leg: Leg, kind: str, text: str) -> None:
        """Add a line to the leg's transcript (and the simulator's log)."""
        entry = LogEntry(round(self.now(), 1), leg.label, kind, text)
        leg.log.append(entry)
        self.log.append(entry)
        for listener in self.listeners:
            listener(entry)

    def transcript(self) -> str:
        """Every leg's transcript, interleaved in time."""
        return "\n".join(str(e) for e in self.log)

    # ------------------------------------------------------------ HTTP to the service

    def _params(self, leg: Leg, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": leg.sid,
            "CallStatus": leg.status,
            "Called": leg.to,
            "Caller": leg.from_,
            "Direction": leg.direction,
            "From": leg.from_,
            "To": leg.to,
        }
        if leg.parent is not None:
            params["ParentCallSid"] = leg.parent.sid
        if leg.answered_by is not None and leg.answered_at is not None:
            params["AnsweredBy"] = leg.answered_by
        params.update(extra or {})
        return params

    def _send(self, url: str, method: str, params: dict[str, str]) -> HttpResult:
        """One request as Twilio makes it: signed, with its connection overrides and retries.

        Overrides come in the URL fragment (``#ct=..&rt=..&tt=..&rc=..&rp=..``); by default
        Twilio waits 15 s in all and retries once, on a failed connection only.
        """
        base, _, fragment = url.partition("#")
        overrides = dict(urllib.parse.parse_qsl(fragment))
        retries = int(overrides.get("rc", "1"))
        policy = set(overrides.get("rp", "ct").split(","))
        timeout = min(int(overrides.get("rt", "15000")), int(overrides.get("tt", "15000"))) / 1000
        signed_url = (
            base
            if method == "POST"
            else base + ("&" if "?" in base else "?") + urllib.parse.urlencode(params)
        )
        headers = {
            "X-Twilio-Signature": sign(
                self.auth_token, signed_url, params if method == "POST" else {}
            ),
            "User-Agent": "TwilioProxy/1.1 (callflow simulator)",
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        attempt = 0
        while True:
            try:
                if self.transport is None:
                    raise TransportError(
                        "the simulator has no transport to the service", connect=True
                    )
                result = self.transport.request(method, base, params, headers, timeout)
            except TransportError as exc:
                retry = (
                    ("ct" in policy and exc.connect)
                    or ("rt" in policy and not exc.connect)
                    or "all" in policy
                )
                if attempt < retries and retry:
                    attempt += 1
                    continue
                self.requests.append(RequestRecord(self.now(), base, params, None, b""))
                raise
            self.requests.append(
                RequestRecord(
                    self.now(), base, params, result.status, result.body, None, result.elapsed
                )
            )
            retry = (
                ("5xx" in policy and result.status >= 500)
                or ("4xx" in policy and 400 <= result.status < 500)
                or ("all" in policy and result.status >= 400)
            )
            if attempt < retries and retry:
                attempt += 1
                continue
            return result

    def _fetch(
        self,
        leg: Leg,
        url: str,
        method: str = "POST",
        extra: Mapping[str, str] | None = None,
        fallback: str | None = None,
    ) -> list[ET.Element] | None:
        """Request TwiML for ``leg``; None (after reporting the error) when there is none."""
        params = self._params(leg, extra)
        method = (method or "POST").upper()
        try:
            result = self._send(url, method, params)
        except TransportError as exc:
            return self._fetch_failed(
                leg, 11205, f"HTTP connection failure: {exc}", fallback, params
            )
        if self.faults.duplicate_webhooks:
            index = len(self.requests) - 1
            try:
                again = self._send(url, method, params)
            except TransportError:
                again = None
            self.requests[-1].duplicate_of = index
            if again is not None and again.body != result.body:
                self.error(leg, 0, f"duplicate delivery to {url} got a different answer")
        if result.status >= 400:
            return self._fetch_failed(
                leg,
                11200,
                f"HTTP retrieval failure: {url} answered {result.status}",
                fallback,
                params,
            )
        if result.content_type not in {"text/xml", "application/xml", "text/html"}:
            self.error(leg, 12300, f"Invalid Content-Type {result.content_type!r} from {url}")
            return None
        try:
            verbs = parse_twiml(result.body)
        except TwimlError as exc:
            self.error(leg, exc.code, exc.message)
            return None
        leg.url = url.partition("#")[0]
        return verbs

    def _fetch_failed(
        self, leg: Leg, code: int, message: str, fallback: str | None, params: dict[str, str]
    ) -> list[ET.Element] | None:
        self.error(leg, code, message)
        if fallback:
            self.note(leg, "twilio", f"trying the fallback URL {fallback}")
            params = {**params, "ErrorCode": str(code), "ErrorUrl": leg.url}
            try:
                result = self._send(fallback, "POST", params)
                if result.status < 400:
                    return parse_twiml(result.body)
            except (TransportError, TwimlError) as exc:
                self.error(leg, 11200, f"fallback failed too: {exc}")
        return None

    def error(self, leg: Leg, code: int, message: str) -> None:
        """Record an error as Twilio's debugger would."""
        self.errors.append((leg.sid, code, message))
        self.note(leg, "error", f"{code} {message}" if code else message)

    # ------------------------------------------------------------ callbacks

    def _callback(self, leg: Leg, event: str) -> None:
        """A call status callback for ``event`` (initiated, ringing, answered, completed)."""
        if not leg.status_callback or event not in leg.status_events:
            return
        status = {"initiated": "queued", "answered": "in-progress"}.get(event, leg.status)
        extra = {
            "CallStatus": status,
            "Timestamp": format_datetime(
                datetime.fromtimestamp(self.clock.now(), UTC), usegmt=True
            ),
            "SequenceNumber": str(next(leg.sequence)),
            "CallbackSource": "call-progress-events",
        }
        if status in FINAL:
            duration = int(
                (leg.ended_at or self.clock.now()) - (leg.answered_at or self.clock.now())
            )
            extra["CallDuration"] = str(max(duration, 0))
            extra["Duration"] = str(max(duration // 60 + (1 if duration % 60 else 0), 0))
        self._deliver(leg, leg.status_callback, leg.status_method, self._params(leg, extra), status)

    def _deliver(self, leg: Leg, url: str, method: str, params: dict[str, str], kind: str) -> None:
        if kind in self.faults.lose_callbacks:
            self.note(leg, "fault", f"{kind} callback lost")
            return

        def send() -> None:
            for _ in range(2 if self.faults.duplicate_callbacks else 1):
                try:
                    self._send(url, method.upper(), params)
                except TransportError as exc:
                    self.error(leg, 11205, f"callback to {url} failed: {exc}")

        if self.faults.reorder_callbacks:
            self._held_callbacks.append(send)
            if len(self._held_callbacks) == 1:
                self.schedule(self.faults.reorder_callbacks, self._release_callbacks)
        elif self.faults.delay_callbacks:
            self.schedule(self.faults.delay_callbacks, send)
        else:
            send()

    def _release_callbacks(self) -> None:
        held, self._held_callbacks = self._held_callbacks, []
        for send in reversed(held):
            send()

    def _conference_callback(
        self, conf: Conference, event: str, participant: Participant | None = None, **extra: str
    ) -> None:
        # statusCallbackEvent names a family: "hold" covers hold and unhold, "mute" unmute.
        short = event.removeprefix("participant-").removeprefix("conference-").removeprefix("un")
        if not conf.status_callback or short not in conf.status_events:
            return
        params = {
            "AccountSid": self.account_sid,
            "ConferenceSid": conf.sid,
            "FriendlyName": conf.name,
            "StatusCallbackEvent": event,
            "Timestamp": format_datetime(
                datetime.fromtimestamp(self.clock.now(), UTC), usegmt=True
            ),
            "SequenceNumber": str(next(conf.sequence)),
            **extra,
        }
        if participant is not None:
            params.update(
                {
                    "CallSid": participant.leg.sid,
                    "Muted": str(participant.muted).lower(),
                    "Hold": str(participant.hold).lower(),
                    "Coaching": str(bool(participant.coaching)).lower(),
                    "EndConferenceOnExit": str(participant.end_on_exit).lower(),
                    "StartConferenceOnEnter": str(participant.start_on_enter).lower(),
                }
            )
            if participant.label:
                params["ParticipantLabel"] = participant.label
            if participant.coaching:
                params["CallSidToCoach"] = participant.coaching
        leg = participant.leg if participant else next(iter(self.legs.values()))
        self._deliver(leg, conf.status_callback, conf.status_method, params, event)

    # ------------------------------------------------------------ calls

    def call(self, to: str, from_: str, script: Script | None = None, label: str = "caller") -> Leg:
        """A call comes in to one of the configured numbers; it starts at once."""
        number = self.numbers.get(to)
        if number is None:
            raise KeyError(f"{to} is not configured: use configure_number")
        leg = Leg(new_sid("CA"), label, from_, to, "inbound", script or Script(), self.clock.now())
        leg.status = "ringing"
        leg.status_callback = number.status_callback
        self.legs[leg.sid] = leg
        self.note(leg, "call", f"{from_} calls {to}")

        def start() -> None:
            verbs = self._fetch(
                leg, number.voice_url, number.voice_method, fallback=number.fallback_url
            )
            self._begin(leg, verbs)

        self.schedule(0, start)
        return leg

    def _begin(self, leg: Leg, verbs: list[ET.Element] | None) -> None:
        """Answer (or reject) the call with its first document."""
        if verbs is None:
            self._application_error(leg)
            return
        if verbs and verbs[0].tag == "Reject":
            reason = verbs[0].get("reason", "rejected")
            self.note(leg, "rejected", f"the call is rejected ({reason})")
            self._end(leg, "busy" if reason == "busy" else "no-answer")
            return
        self._answer(leg)
        self._play(leg, verbs)

    def _answer(self, leg: Leg) -> None:
        leg.status = "in-progress"
        leg.answered_at = self.clock.now()
        self._callback(leg, "answered")

    def _application_error(self, leg: Leg) -> None:
        if leg.status == "ringing":
            self._answer(leg)
        self.note(leg, "hears", APPLICATION_ERROR)
        self._end(leg, "completed")

    def end_leg(self, leg: Leg, status: str) -> None:
        """End a leg from outside (the REST API's Status=completed or canceled)."""
        if leg.live:
            self.note(leg, "twilio", f"call {status} via the API")
            self._end(leg, status)

    def hang_up(self, leg: Leg) -> None:
        """The person on ``leg`` hangs up."""
        if leg.live:
            self.note(leg, "hangs up", "")
            self._end(leg, "completed")

    def end_wait(self, leg: Leg) -> None:
        """The world ends what ``leg`` waits on: its conference ends, or the party it dialled
        or is bridged to hangs up (a replay standing in for what ended a real call's wait)."""
        if not leg.live or leg.waiting is None:
            return
        kind, what = leg.waiting
        if kind == "conference":
            conf = self.conferences.get(what)
            if conf is not None:
                self.end_conference(conf, "participant-with-end-conference-on-exit-left")
        elif kind == "dial" and isinstance(what, Leg):
            self.hang_up(what)
        elif kind == "bridge":
            other = self.legs.get(what) if isinstance(what, str) else what
            if isinstance(other, Leg):
                self.hang_up(other)

    def _end(self, leg: Leg, status: str) -> None:
        """The leg is over: leave any queue, bridge or conference, then call back."""
        if not leg.live:
            return
        leg.generation += 1
        leg.status = status
        leg.ended_at = self.clock.now()
        self.note(leg, "ended", status)
        waiting, leg.waiting = leg.waiting, None
        if waiting:
            kind, what = waiting
            if kind == "queue":
                self._leave_queue(leg, what, "hangup")
            elif kind == "dial":
                self._end(what, "completed" if what.status == "in-progress" else "canceled")
            elif kind == "conference":
                self._leave_conference(leg, what, "participant_hung_up")
        if leg.bridged_with is not None:
            other, leg.bridged_with = leg.bridged_with, None
            other.bridged_with = None
            self._bridge_ended(other)
        if leg.dial_return is not None and "bridge_to" in leg.dial_return:
            parent: Leg = leg.dial_return.pop("bridge_to")
            if parent.live and parent.waiting == ("dial", leg):
                self.note(parent, "dial", f"{leg.label} hung up before being connected")
                self._dial_done(parent, "completed", leg, 0)
        self._callback(leg, "completed")

    # ------------------------------------------------------------ playing TwiML

    def _play(self, leg: Leg, verbs: list[ET.Element] | None) -> None:
        """Start a new document on the leg."""
        if verbs is None:
            self._application_error(leg)
            return
        leg.generation += 1
        leg.verbs, leg.pc = verbs, 0
        self._step(leg)

    def _step(self, leg: Leg) -> None:
        """Run verbs until one makes the leg wait; the end of the document hangs up."""
        while leg.live:
            if leg.pc >= len(leg.verbs):
                if leg.wait_loop is not None:
                    self._wait_again(leg)
                    return
                if leg.dial_return is not None and "bridge_to" in leg.dial_return:
                    self._whisper_done(leg)
                    return
                if leg.waiting is not None:
                    return  # parked: in a queue, conference or call, nothing left to play
                self.note(leg, "twilio", "end of TwiML: the call ends")
                self._end(leg, "completed")
                return
            verb = leg.verbs[leg.pc]
            leg.pc += 1
            handler = getattr(self, f"_verb_{verb.tag.lower()}")
            if handler(leg, verb):
                return

    def _continue_after(self, leg: Leg, seconds: float) -> bool:
        self._later(leg, seconds, lambda: self._step(leg))
        return True

    def _url(self, leg: Leg, value: str | None) -> str:
        return urllib.parse.urljoin(leg.url, value) if value else leg.url

    def _say_seconds(self, text: str) -> float:
        return max(1.0, len(text.split()) / _WORDS_PER_SECOND)

    def _prompt(self, leg: Leg, verb: ET.Element) -> float:
        """Say/Play/Pause: note it; return how long it takes."""
        loops = max(int(verb.get("loop", "1")), 1)
        if verb.tag == "Say":
            text = " ".join("".join(verb.itertext()).split())
            if not text:
                self.error(leg, 13520, "Say: Invalid text (empty)")
            language = verb.get("language", "en-US")
            if not _LANGUAGE_TAG.match(language):
                self.error(leg, 13520, f"Say: invalid language {language!r} (like en-GB, cy-GB)")
            self.note(leg, "hears", text)
            leg.heard_languages.append(language)
            return self._say_seconds(text) * loops
        if verb.tag == "Play":
            if verb.get("digits"):
                self.note(leg, "sends", f"tones {verb.get('digits')}")
                return 1.0
            self.note(leg, "plays", (verb.text or "").strip())
            return 5.0 * loops
        length = float(verb.get("length", "1"))
        self.note(leg, "pause", f"{length:g}s")
        return length

    def _verb_say(self, leg: Leg, verb: ET.Element) -> bool:
        return self._continue_after(leg, self._prompt(leg, verb))

    _verb_play = _verb_say
    _verb_pause = _verb_say

    def _verb_hangup(self, leg: Leg, verb: ET.Element) -> bool:
        self.note(leg, "twilio", "<Hangup>")
        self._end(leg, "completed")
        return True

    def _verb_reject(self, leg: Leg, verb: ET.Element) -> bool:
        # Only a first verb can refuse a call; later, Reject just ends it.
        self.note(leg, "twilio", "<Reject> after the call was answered: the call ends")
        self._end(leg, "completed")
        return True

    def _verb_redirect(self, leg: Leg, verb: ET.Element) -> bool:
        url = self._url(leg, (verb.text or "").strip())
        self._play(leg, self._fetch(leg, url, verb.get("method", "POST")))
        return True

    def _verb_gather(self, leg: Leg, verb: ET.Element) -> bool:
        """Gather: prompts play while Twilio listens.

        Keys end on numDigits, on finishOnKey, or ``timeout`` seconds after the last key.
        No input, or only the finish key, falls through to the next verb unless
        actionOnEmptyResult is true (then the action is requested with nothing).
        """
        heard = []
        prompt_seconds = 0.0
        language = verb.get("language")
        if language is not None and not _LANGUAGE_TAG.match(language):
            # Twilio's warning 13512: "en" is invalid, "en-US" valid; speech then fails.
            self.error(leg, 13512, f"Gather element has an invalid language value {language!r}")
        for child in verb:
            prompt_seconds += self._prompt(leg, child)
            if child.tag == "Say":
                heard.append(" ".join("".join(child.itertext()).split()))
        inputs = set(verb.get("input", "dtmf").split())
        timeout = float(verb.get("timeout", "5"))
        num_digits = int(verb.get("numDigits", "0") or 0)
        finish = verb.get("finishOnKey", "#")
        action = self._url(leg, verb.get("action"))
        method = verb.get("method", "POST")
        on_empty = verb.get("actionOnEmptyResult") == "true"
        step = leg.script.next_for_gather(" ".join(heard))
        if step is None:
            self._later(leg, min(prompt_seconds, 1.0), lambda: self.hang_up(leg))
            return True
        if step.kind == "hangup":
            self._later(leg, min(prompt_seconds, 1.0), lambda: self.hang_up(leg))
            return True
        if step.kind == "press" and "dtmf" in inputs:
            collected, finished_on = "", ""
            for key in step.value:
                if finish and key == finish:
                    finished_on = key
                    break
                collected += key
                if num_digits and len(collected) >= num_digits:
                    break
            complete = bool(finished_on) or bool(num_digits and len(collected) >= num_digits)
            delay = 1.0 + 0.3 * len(step.value) + (0.0 if complete else timeout)

            def pressed() -> None:
                self.note(leg, "presses", step.value)
                if collected:
                    extra = {"Digits": collected, "FinishedOnKey": finished_on}
                    self._play(leg, self._fetch(leg, action, method, extra))
                else:
                    self._empty_gather(leg, action, method, on_empty)

            self._later(leg, delay, pressed)
            return True
        if step.kind == "say" and "speech" in inputs:
            delay = self._say_seconds(step.value) + 1.0

            def spoke() -> None:
                self.note(leg, "says", step.value)
                extra = {"SpeechResult": step.value, "Confidence": f"{step.confidence:.2f}"}
                self._play(leg, self._fetch(leg, action, method, extra))

            self._later(leg, delay, spoke)
            return True
        # Silence, or input this gather does not take: Twilio hears nothing.

        def silent() -> None:
            self.note(
                leg,
                "silent",
                step.describe() if step.kind != "silent" else f"{timeout:g}s of silence",
            )
            self._empty_gather(leg, action, method, on_empty)

        self._later(leg, prompt_seconds + timeout, silent)
        return True

    def _empty_gather(self, leg: Leg, action: str, method: str, on_empty: bool) -> None:
        if on_empty:
            self._play(leg, self._fetch(leg, action, method, {"Digits": "", "FinishedOnKey": ""}))
        else:
            self._step(leg)

    # -- queues

    def _queue_sid(self, name: str) -> str:
        return self.queue_sids.setdefault(name, new_sid("QU"))

    def _verb_enqueue(self, leg: Leg, verb: ET.Element) -> bool:
        """Enqueue: wait in a named queue, looping over waitUrl's TwiML until dequeued."""
        name = (verb.text or "").strip()
        members = self.queues.setdefault(name, [])
        members.append(leg)
        leg.queue_return = {
            "name": name,
            "action": self._url(leg, verb.get("action")) if verb.get("action") else None,
            "method": verb.get("method", "POST"),
            "wait_url": self._url(leg, verb.get("waitUrl")) if verb.get("waitUrl") else None,
            "wait_method": verb.get("waitUrlMethod", "POST"),
            "since": self.clock.now(),
            "url": leg.url,
            "verbs": leg.verbs,
            "pc": leg.pc,
        }
        leg.waiting = ("queue", name)
        self.note(leg, "queue", f"waits in queue {name} (position {len(members)})")
        self._hang_up_after_patience(leg)
        info = leg.queue_return

        def queue_params() -> dict[str, str]:
            position = members.index(leg) + 1 if leg in members else 0
            return {
                "QueuePosition": str(position),
                "QueueSid": self._queue_sid(name),
                "QueueTime": str(int(self.clock.now() - info["since"])),
                "AvgQueueTime": "0",
                "CurrentQueueSize": str(len(members)),
                "MaxQueueSize": "100",
            }

        if info["wait_url"]:
            self._start_wait_loop(leg, info["wait_url"], info["wait_method"], queue_params)
        else:
            leg.verbs, leg.pc = [], 0  # Twilio's own hold music: nothing for the service to do
        return True

    # -- waiting (a queue's or a conference's waitUrl, played in a loop)

    def _start_wait_loop(
        self, leg: Leg, url: str, method: str, params: Callable[[], dict[str, str]]
    ) -> None:
        leg.wait_loop = (url, method, params)
        self._wait_again(leg)

    def _wait_again(self, leg: Leg) -> None:
        """Fetch the wait URL again and play it (Twilio loops it while the caller waits)."""
        if leg.wait_loop is None or not leg.live:
            return
        url, method, params = leg.wait_loop
        verbs = self._fetch(leg, url, method, params())
        if verbs is None or leg.wait_loop is None:
            leg.wait_loop = None
            leg.verbs, leg.pc = [], 0
            return
        leg.verbs, leg.pc = verbs, 0
        self._later(leg, 0.5, lambda: self._step(leg))

    def _stop_wait_loop(self, leg: Leg) -> None:
        if leg.wait_loop is not None:
            leg.wait_loop = None
            leg.verbs, leg.pc = [], 0

    def _verb_leave(self, leg: Leg, verb: ET.Element) -> bool:
        if not leg.queue_return:
            self.error(leg, 12200, "<Leave> outside a queue's waitUrl")
            return False
        self._leave_queue(leg, leg.queue_return["name"], "leave")
        return True

    def _leave_queue(self, leg: Leg, name: str, result: str) -> None:
        """The leg leaves its queue: request the Enqueue action with QueueResult."""
        members = self.queues.get(name, [])
        if leg in members:
            members.remove(leg)
        info, leg.queue_return = leg.queue_return, None
        self._stop_wait_loop(leg)
        if leg.waiting and leg.waiting[0] == "queue":
            leg.waiting = None
        if info is None:
            return
        self.note(leg, "queue", f"leaves queue {name} ({result})")
        extra = {
            "QueueResult": result,
            "QueueSid": self._queue_sid(name),
            "QueueTime": str(int(self.clock.now() - info["since"])),
        }
        if info["action"]:
            verbs = self._fetch(leg, info["action"], info["method"], extra)
            if leg.live:
                self._play(leg, verbs)
        elif leg.live:
            leg.url, leg.verbs, leg.pc = info["url"], info["verbs"], info["pc"]
            leg.generation += 1
            self._step(leg)

    def dequeue(self, name: str, label: str = "agent", script: Script | None = None) -> Leg | None:
        """Someone takes the first caller off a queue (as ``<Dial><Queue>`` does) and talks."""
        members = self.queues.get(name)
        if not members:
            return None
        caller = members.pop(0)
        agent = Leg(
            new_sid("CA"),
            label,
            "client:" + label,
            name,
            "outbound-api",
            script or Script(),
            self.clock.now(),
        )
        agent.status = "in-progress"
        agent.answered_at = self.clock.now()
        self.legs[agent.sid] = agent
        self._bridge(caller, agent)
        return agent

    # -- dial

    def _verb_dial(self, leg: Leg, verb: ET.Element) -> bool:
        """Dial: ring a number or client, join a conference, or take a caller from a queue."""
        nouns = list(verb)
        noun = nouns[0] if nouns else None
        leg.dial_return = {
            "action": self._url(leg, verb.get("action")) if verb.get("action") else None,
            "method": verb.get("method", "POST"),
            "started": self.clock.now(),
        }
        if noun is not None and noun.tag == "Conference":
            return self._join_conference(leg, noun)
        if noun is not None and noun.tag == "Queue":
            name = (noun.text or "").strip()
            members = self.queues.get(name)
            if not members:
                self.note(leg, "dial", f"queue {name} is empty")
                self._dial_done(leg, "completed", None, 0)
                return True
            caller = members.pop(0)
            self.note(leg, "dial", f"takes the first caller from queue {name}")
            self._bridge(caller, leg)
            return True
        target = (noun.text or "").strip() if noun is not None else (verb.text or "").strip()
        if noun is not None and noun.tag == "Client":
            target = "client:" + target
        callee = self.callees.get(target, self.default_callee)
        timeout = float(verb.get("timeout", "30"))
        child = Leg(
            new_sid("CA"),
            target,
            leg.to,
            target,
            "outbound-dial",
            callee.script,
            self.clock.now(),
            parent=leg,
        )
        if noun is not None and noun.get("statusCallback"):
            # <Number>/<Client> statusCallback: the dialled leg's own progress callbacks.
            child.status_callback = self._url(leg, noun.get("statusCallback"))
            events = noun.get("statusCallbackEvent", "completed").replace(",", " ").split()
            child.status_events = set(events)
            child.status_method = noun.get("statusCallbackMethod", "POST").upper()
        self.legs[child.sid] = child
        self._callback(child, "initiated")
        child.status = "ringing"
        self._callback(child, "ringing")
        leg.waiting = ("dial", child)
        self.note(leg, "dial", f"rings {target}")
        whisper = noun.get("url") if noun is not None else None
        if callee.outcome != "answered":
            delay = timeout if callee.outcome == "no-answer" else min(callee.after, timeout)
            self._later(leg, delay, lambda: self._dial_failed(leg, child, callee.outcome))
        elif callee.after > timeout:
            self._later(leg, timeout, lambda: self._dial_failed(leg, child, "no-answer"))
        else:
            self._later(leg, callee.after, lambda: self._dial_answered(leg, child, whisper))
        return True

    def _dial_failed(self, leg: Leg, child: Leg, outcome: str) -> None:
        leg.waiting = None
        self._end(child, outcome if outcome != "no-answer" else "no-answer")
        self.note(leg, "dial", f"{child.label}: {outcome}")
        self._dial_done(leg, outcome, child, 0)

    def _dial_answered(self, leg: Leg, child: Leg, whisper: str | None) -> None:
        self._answer(child)
        self.note(child, "answers", f"call from {leg.from_}")
        if whisper:
            child.dial_return = {"bridge_to": leg}
            self._play(child, self._fetch(child, self._url(leg, whisper)))
            return
        leg.waiting = None
        if leg.dial_return is not None:
            leg.dial_return["child"] = child
        self._bridge(leg, child)

    def _whisper_done(self, child: Leg) -> None:
        """The dialled party's whisper TwiML finished: connect them to the caller."""
        info, child.dial_return = child.dial_return or {}, None
        parent: Leg = info["bridge_to"]
        if not parent.live:
            self._end(child, "completed")
            return
        parent.waiting = None
        if parent.dial_return is not None:
            parent.dial_return["child"] = child
        self._bridge(parent, child)

    def _bridge(self, a: Leg, b: Leg) -> None:
        """Connect two legs; each waits until the other hangs up."""
        for side in (a, b):
            self._stop_wait_loop(side)
        a.bridged_with, b.bridged_with = b, a
        for side in (a, b):
            if side.dial_return is not None:
                side.dial_return["bridged"] = self.clock.now()
        a.generation += 1
        b.generation += 1
        self.note(a, "connected", f"to {b.label}")
        self.note(b, "connected", f"to {a.label}")
        for leg in (a, b):
            leg.waiting = ("bridge", leg.bridged_with)
            self._hang_up_after_patience(leg)

    def _hang_up_after_patience(self, leg: Leg) -> None:
        self._later(leg, leg.script.wait_limit(), lambda: self.hang_up(leg))

    def _bridge_ended(self, leg: Leg) -> None:
        """The other side of ``leg``'s bridge hung up; ``leg`` carries on."""
        if not leg.live:
            return
        leg.generation += 1
        leg.waiting = None
        if leg.queue_return is not None:
            self._leave_queue(leg, leg.queue_return["name"], "bridged")
        elif leg.dial_return is not None and "started" in leg.dial_return:
            child = leg.dial_return.get("child")
            since = (
                child.answered_at
                if child is not None and child.answered_at
                else leg.dial_return["bridged"]
            )
            self._dial_done(leg, "completed", child, int(self.clock.now() - since))
        else:
            self.note(leg, "twilio", "the other side hung up: the call ends")
            self._end(leg, "completed")

    def _dial_done(self, leg: Leg, status: str, child: Leg | None, duration: int) -> None:
        info, leg.dial_return = leg.dial_return or {}, None
        leg.waiting = None
        if not leg.live:
            return
        leg.generation += 1
        if info.get("action"):
            extra = {"DialCallStatus": status, "DialCallDuration": str(duration)}
            if child is not None:
                extra["DialCallSid"] = child.sid
            extra["DialBridged"] = str(status == "completed" and duration > 0).lower()
            self._play(leg, self._fetch(leg, info["action"], info["method"], extra))
        else:
            self._step(leg)

    # -- conferences

    def _join_conference(self, leg: Leg, noun: ET.Element) -> bool:
        name = (noun.text or "").strip()
        conf = self.conferences.get(name)
        if conf is None or conf.status == "completed":
            conf = Conference(new_sid("CF"), name, self.clock.now())
            self.conferences[name] = conf
        if noun.get("statusCallback") and not conf.status_callback:
            conf.status_callback = self._url(leg, noun.get("statusCallback"))
            conf.status_events = set(
                noun.get("statusCallbackEvent", "start end").replace(",", " ").split()
            )
            conf.status_method = noun.get("statusCallbackMethod", "POST")
        participant = Participant(
            leg,
            start_on_enter=noun.get("startConferenceOnEnter", "true") == "true",
            end_on_exit=noun.get("endConferenceOnExit", "false") == "true",
            muted=noun.get("muted", "false") == "true",
            label=noun.get("participantLabel"),
            coaching=noun.get("coach"),
            wait_url=self._url(leg, noun.get("waitUrl")) if noun.get("waitUrl") else None,
            joined_at=self.clock.now(),
        )
        self.add_participant(conf, participant)
        return True

    def add_participant(self, conf: Conference, participant: Participant) -> None:
        """Put a leg into a conference (from TwiML or the REST API)."""
        leg = participant.leg
        conf.participants[leg.sid] = participant
        leg.waiting = ("conference", conf.name)
        self.note(
            leg, "conference", f"joins {conf.name}" + (" (muted)" if participant.muted else "")
        )
        self._conference_callback(conf, "participant-join", participant)
        starter = any(p.start_on_enter for p in conf.participants.values())
        if conf.status == "init" and starter and len(conf.participants) >= 2:
            conf.status = "in-progress"
            self._conference_callback(conf, "conference-start")
            for other in conf.participants.values():
                self._stop_wait_loop(other.leg)
                self.note(other.leg, "conference", f"{conf.name} starts")
        elif conf.status == "init":
            self.note(leg, "conference", "waits for the conference to start")
            if participant.wait_url:

                def conference_params() -> dict[str, str]:
                    return {"ConferenceSid": conf.sid, "FriendlyName": conf.name}

                self._start_wait_loop(leg, participant.wait_url, "POST", conference_params)
        patience = leg.script.wait_limit()
        self._later(leg, patience, lambda: self.hang_up(leg))

    def _leave_conference(self, leg: Leg, name: str, reason: str) -> None:
        conf = self.conferences.get(name)
        if conf is None:
            return
        participant = conf.participants.pop(leg.sid, None)
        if participant is None:
            return
        self._stop_wait_loop(leg)
        self._conference_callback(
            conf, "participant-leave", participant, ReasonParticipantLeft=reason
        )
        if conf.status == "completed":
            return
        if participant.end_on_exit:
            kicked = reason == "participant_updated_via_api"
            self.end_conference(
                conf,
                "participant-with-end-conference-on-exit-kicked"
                if kicked
                else "participant-with-end-conference-on-exit-left",
            )
        elif not conf.participants:
            self.end_conference(
                conf,
                "last-participant-kicked"
                if reason == "participant_updated_via_api"
                else "last-participant-left",
            )

    def end_conference(self, conf: Conference, reason: str) -> None:
        """End a conference: every participant leaves and carries on after its Dial."""
        if conf.status == "completed":
            return
        conf.status = "completed"
        conf.reason_ended = reason
        conf.ended_at = self.clock.now()
        for participant in list(conf.participants.values()):
            conf.participants.pop(participant.leg.sid, None)
            leg = participant.leg
            self._conference_callback(
                conf, "participant-leave", participant, ReasonParticipantLeft="conference_ended"
            )
            if leg.live and leg.waiting and leg.waiting[0] == "conference":
                self.note(leg, "conference", f"{conf.name} ends")
                self._after_conference(leg, participant)
        self._conference_callback(conf, "conference-end", ReasonConferenceEnded=reason)

    def _after_conference(self, leg: Leg, participant: Participant) -> None:
        """Out of the conference: a <Dial> carries on; a participant added by the API hangs up."""
        leg.waiting = None
        if leg.dial_return is not None:
            self._dial_done(leg, "completed", None, int(self.clock.now() - participant.joined_at))
        else:
            self._end(leg, "completed")

    def kick(self, conf: Conference, participant: Participant) -> None:
        """Take a participant out of a conference (Participants delete)."""
        leg = participant.leg
        if conf.participants.get(leg.sid) is not participant:
            return
        self.note(leg, "conference", f"removed from {conf.name}")
        leg.generation += 1
        self._leave_conference(leg, conf.name, "participant_updated_via_api")
        if leg.live and leg.waiting and leg.waiting[0] == "conference":
            self._after_conference(leg, participant)

    def set_hold(
        self,
        conf: Conference,
        participant: Participant,
        hold: bool,
        hold_url: str | None,
        method: str = "GET",
    ) -> None:
        """Put a participant on hold (hearing ``hold_url``) or take them off."""
        participant.hold = hold
        leg = participant.leg
        self.note(leg, "conference", "on hold" if hold else "off hold")
        self._conference_callback(
            conf, "participant-hold" if hold else "participant-unhold", participant
        )
        if hold and hold_url:
            self.announce(leg, hold_url, method=method, kind="hold music")

    def set_muted(self, conf: Conference, participant: Participant, muted: bool) -> None:
        """Mute or unmute a participant."""
        participant.muted = muted
        self.note(participant.leg, "conference", "muted" if muted else "unmuted")
        self._conference_callback(
            conf, "participant-mute" if muted else "participant-unmute", participant
        )

    def announce(
        self, leg: Leg, url: str, method: str = "POST", kind: str = "announcement"
    ) -> None:
        """Play the TwiML at ``url`` to a leg without taking it out of what it is in."""
        if not leg.live:
            return
        params = self._params(leg)
        try:
            result = self._send(url, method.upper(), params)
            verbs = parse_twiml(result.body) if result.status < 400 else None
        except (TransportError, TwimlError) as exc:
            self.error(leg, 11200, f"{kind} from {url} failed: {exc}")
            return
        if verbs is None:
            self.error(leg, 11200, f"{kind} from {url} answered {result.status}")
            return
        for verb in verbs:
            if verb.tag in {"Say", "Play", "Pause"}:
                self._prompt(leg, verb)

    # -- leg control (the REST API uses these)

    def redirect(self, leg: Leg, url: str, method: str = "POST") -> None:
        """Take the leg out of whatever it is doing and play the TwiML at ``url``."""
        self._detach(leg, "participant_updated_via_api")
        self._play(leg, self._fetch(leg, url, method))

    def play_twiml(self, leg: Leg, twiml: str) -> None:
        """Take the leg out of whatever it is doing and play this TwiML."""
        self._detach(leg, "participant_updated_via_api")
        try:
            verbs = parse_twiml(twiml.encode())
        except TwimlError as exc:
            self.error(leg, exc.code, exc.message)
            verbs = None
        self._play(leg, verbs)

    def _detach(self, leg: Leg, reason: str) -> None:
        waiting, leg.waiting = leg.waiting, None
        leg.generation += 1
        if not waiting:
            return
        kind, what = waiting
        self._stop_wait_loop(leg)
        if kind == "queue":
            members = self.queues.get(what, [])
            if leg in members:
                members.remove(leg)
            leg.queue_return = None
        elif kind == "conference":
            self._leave_conference(leg, what, reason)
        elif kind == "dial":
            self._end(what, "canceled")
        if leg.bridged_with is not None:
            other, leg.bridged_with = leg.bridged_with, None
            other.bridged_with = None
            self._bridge_ended(other)

    def place_outbound(
        self,
        to: str,
        from_: str,
        *,
        url: str | None = None,
        twiml: str | None = None,
        method: str = "POST",
        status_callback: str | None = None,
        status_events: set[str] | None = None,
        status_method: str = "POST",
        label: str | None = None,
        timeout: float = 60,
        join: tuple[Conference, dict[str, Any]] | None = None,
        machine_detection: bool = False,
    ) -> Leg:
        """An outbound API call: ring ``to``; when answered play the TwiML or join a conference.

        It starts on the event queue, just after the request that asked for it returns.
        """
        callee = self.callees.get(to, self.default_callee)
        leg = Leg(
            new_sid("CA"), label or to, from_, to, "outbound-api", callee.script, self.clock.now()
        )
        leg.status_callback = status_callback
        leg.status_events = status_events or {"completed"}
        leg.status_method = status_method
        if machine_detection:
            leg.answered_by = callee.answered_by
        self.legs[leg.sid] = leg

        def answered() -> None:
            self._answer(leg)
            self.note(leg, "answers", f"call from {from_}")
            if join is not None:
                conf, options = join
                self.add_participant(conf, Participant(leg, joined_at=self.clock.now(), **options))
            elif twiml is not None:
                self.play_twiml(leg, twiml)
            elif url is not None:
                self._play(leg, self._fetch(leg, url, method))

        def start() -> None:
            if not leg.live:
                return
            self._callback(leg, "initiated")
            leg.status = "ringing"
            self.note(leg, "call", f"{from_} rings {to}")
            self._callback(leg, "ringing")
            if callee.outcome == "answered" and callee.after <= timeout:
                self._later(leg, callee.after, answered)
            else:
                outcome = "no-answer" if callee.outcome == "answered" else callee.outcome
                delay = timeout if outcome == "no-answer" else callee.after
                self._later(leg, delay, lambda: self._end(leg, outcome))

        self.schedule(0, start)
        return leg
