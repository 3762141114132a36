"""What guards and actions see of a call: its session, this webhook's input, the services.

A :class:`CallContext` is the model the ``transitions`` machine runs on for one webhook.
The caller's raw input (``Digits``, ``SpeechResult``) is read from :attr:`params` and
never copied into the session.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from random import Random
from typing import TYPE_CHECKING, Any

from .audit import Audit
from .clock import Clock
from .config import Settings
from .directory import Directory
from .secrets import Hasher
from .session import CallSession
from .store.base import Store

if TYPE_CHECKING:
    from collections.abc import Callable

    from .callbacks import Callbacks
    from .handoff import HandOffs
    from .meetings import Meetings
    from .staff import Staff
    from .twilio_adapter import TwilioAdapter
    from .twiml import Links
    from .vstrs import VstrsCalls

DIGITS = re.compile(r"^[0-9*#]{1,64}$")
MAX_SPEECH = 200


@dataclass(frozen=True)
class Services:
    """What every call-handling part is built on, once per process: settings, the store,
    the directory, hashing, the audit log, the clock, randomness, the staff and Twilio."""

    settings: Settings
    store: Store
    directory: Directory
    hasher: Hasher
    audit: Audit
    clock: Clock
    rng: Random
    staff: Staff
    twilio: Callable[[], TwilioAdapter]


@dataclass(frozen=True)
class CallServices(Services):
    """What a flow's guards and actions reach: the base services, and the call-handling
    parts built on them in dependency order (call-backs, then VSTRS calls, then hand-offs;
    meetings beside them). Built once, after all of them, for the engine."""

    callbacks: Callbacks
    vstrs: VstrsCalls
    handoffs: HandOffs
    meetings: Meetings


class CallContext:
    """The machine's model for one webhook of one call."""

    state: str

    def __init__(
        self,
        session: CallSession,
        params: Mapping[str, str],
        services: CallServices,
        output: list[str],
    ) -> None:
        self.session = session
        self.params = params
        self.services = services
        self.output = output
        self.state = session.state
        self.raised: list[str] = []
        self.entered: list[str] = []
        #: The flow transitions taken in this webhook, by index (see FlowMachine).
        self.taken: list[int] = []
        #: The service's URLs, for actions that hand Twilio a callback address.
        self.links: Links | None = None
        #: Every event raised in this webhook, in order (a trace keeps what a secret check
        #: decided).
        self.raised_log: list[str] = []
        #: How a trace shows this webhook's keyed input, when an action says (None: as
        #: keyed, unless a secret action read it).
        self.trace_input: str | None = None
        #: What the world decided in this webhook (world guards' answers, world actions'
        #: events), for the trace: {"guards": {name: bool}, "raised": {action: [events]}}.
        self.world: dict[str, dict[str, Any]] = {"guards": {}, "raised": {}}
        #: In a replay only: what the world decided at this step of the real call, which
        #: world guards and actions answer with instead (None: they ask the world).
        self.stand_in: Mapping[str, Any] | None = None

    @property
    def call_sid(self) -> str:
        """The call's CallSid."""
        return self.session.call_sid

    @property
    def values(self) -> dict[str, str]:
        """Values prompts may use."""
        return self.session.values

    @property
    def data(self) -> dict[str, Any]:
        """Working data of actions (never secrets)."""
        return self.session.data

    @property
    def settings(self) -> Settings:
        """The service settings."""
        return self.services.settings

    def now(self) -> float:
        """The current time."""
        return self.services.clock.now()

    def world_guard(self, name: str, ask: Callable[[], bool]) -> bool:
        """A world guard's answer: the real call's in a replay (where it was asked there),
        else the world's; noted for the trace either way."""
        given = (self.stand_in or {}).get("guards", {}).get(name)
        answer = bool(ask()) if given is None else bool(given)
        self.world["guards"][name] = answer
        return answer

    def world_events(self, name: str, run: Callable[[], None]) -> None:
        """Run a world action; in a replay, the events it raises are the real call's at
        this step (where the action ran there). Noted for the trace either way."""
        start = len(self.raised)
        logged = len(self.raised_log)
        run()
        given = (self.stand_in or {}).get("raised", {}).get(name)
        if given is not None:
            del self.raised[start:]
            del self.raised_log[logged:]
            for event in given:
                self.raise_event(event)
        self.world["raised"][name] = list(self.raised_log[logged:])

    def raise_event(self, event: str) -> None:
        """Ask the engine to fire ``event`` once the current transition is done."""
        self.raised.append(event)
        self.raised_log.append(event)

    def digits(self) -> str:
        """The keys the caller pressed in this webhook, or '' when none or malformed."""
        value = self.params.get("Digits", "")
        return value if DIGITS.match(value) else ""

    def speech(self) -> str:
        """What the caller said in this webhook (trimmed), or ''."""
        return (self.params.get("SpeechResult") or "").strip()[:MAX_SPEECH]

    def audit(self, kind: str, **fields: Any) -> str:
        """Write an audit entry for this call (with the number the call came from, and
        whether a Relay UK assistant is on the line)."""
        if self.session.data.get("relay"):
            fields.setdefault("relay", True)
        return self.services.audit.record(
            kind,
            call_sid=self.call_sid,
            # On a call the service placed (a call-back), the caller is the number it rang.
            caller=self.session.data.get("remote") or self.session.from_number,
            **fields,
        )


class ServiceUser:
    """Base of the engine's call-handling parts: their services, the time, the audit log."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self.staff = services.staff
        self.settings = services.settings

    def now(self) -> float:
        """The current time."""
        return self.services.clock.now()

    def _audit(self, kind: str, call_sid: str, **fields: Any) -> None:
        self.services.audit.record(kind, call_sid=call_sid, **fields)
