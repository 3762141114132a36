"""What guards and actions see of a call: its session, this webhook's input, the services.

A :class:`CallContext` is the model the ``transitions`` machine runs on for one webhook.
The caller's raw input (``Digits``, ``SpeechResult``) is read from :attr:`params` and
never copied into the session.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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
