"""A call session: everything the service keeps about one call between webhooks.

It never holds a PIN, a security answer or the digits a caller keyed for them: those
live only in the parameters of the webhook that carries them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

#: How many recent replies are kept, so a repeated webhook gets the same TwiML back.
REPLIES_KEPT = 4


@dataclass
class CallSession:
    """The state of one call (one CallSid) in its flow."""

    call_sid: str
    flow: str
    flow_version: str
    state: str
    started_at: float
    from_number: str = ""
    to_number: str = ""
    #: Webhooks handled so far; each TwiML URL the service hands out names the step it answers.
    step: int = 0
    #: The store's revision of this record, for compare-and-set.
    rev: int = 0
    status: str = "active"
    ended_at: float | None = None
    end_reason: str = ""
    #: Values prompts may use (adviser_name, organisation_name, ...): never secrets.
    values: dict[str, str] = field(default_factory=dict)
    #: Working data of actions (tries, the adviser number keyed, the question asked).
    data: dict[str, Any] = field(default_factory=dict)
    #: The verified identity of the caller, once verification succeeds.
    verified: dict[str, Any] | None = None
    #: The TwiML answered for the last few steps, by step number.
    replies: dict[str, str] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        """Whether the call is over."""
        return self.status == "ended"

    def remember_reply(self, step: int, twiml: str) -> None:
        """Keep the reply to a step, dropping the oldest beyond REPLIES_KEPT."""
        self.replies[str(step)] = twiml
        for key in sorted(self.replies, key=int)[:-REPLIES_KEPT]:
            del self.replies[key]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: a new top-level dict whose nested dicts are the session's own.

        Not ``dataclasses.asdict``: its deep copy was the largest single cost of saving a
        session on the webhook path. Serialise it or deep-copy it before the session
        changes again (the stores do).
        """
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallSession:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**data)


_FIELDS = tuple(f.name for f in fields(CallSession))
