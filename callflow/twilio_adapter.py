"""The one way the service reaches Twilio's REST API (rule 5 of the architecture).

Everything goes through the real ``twilio.rest.Client``; tests, demos and designers hand
in a client wired to the local simulator instead (``callflow.simulator.rest``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from .errors import TwilioError

log = logging.getLogger(__name__)

__all__ = ["FINAL_CALL_STATUSES", "TwilioAdapter",]

#: Twilio CallStatus values that mean the call leg is over.
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


class TwilioAdapter:
    """Calls, conferences and participants, as the service uses them."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _do(self, what: str, action: Any) -> Any:
        from twilio.base.exceptions import TwilioException

        try:
            return action()
        except TwilioException as exc:
            log.warning("twilio %s failed: %s", what, exc)
            raise TwilioError(f"{what}: {exc}") from exc
        except OSError as exc:
            log.warning("twilio %s unreachable: %s", what, exc)
            raise TwilioError(f"{what}: {exc}") from exc

    def add_participant(
        self,
        conference: str,
        *,
        to: str,
        from_: str,
        label: str,
        status_callback: str,
        events: Iterable[str] = ("initiated", "ringing", "answered", "completed"),
        conference_status_callback: str | None = None,
        start_conference_on_enter: bool = True,
        end_conference_on_exit: bool = False,
        timeout: int = 20,
    ) -> str:
        """Ring ``to`` and put them in ``conference`` when they answer; the new leg's CallSid."""
        extra: dict[str, Any] = {}
        if conference_status_callback:
            extra = {
                "conference_status_callback": conference_status_callback,
                "conference_status_callback_event": ["start", "end", "join", "leave", "hold"],
            }
        participant = self._do(
            "add participant",
            lambda: self.client.conferences(conference).participants.create(
                from_=from_,
                to=to,
                label=label,
                status_callback=status_callback,
                status_callback_event=list(events),
                start_conference_on_enter=start_conference_on_enter,
                end_conference_on_exit=end_conference_on_exit,
                timeout=timeout,
                **extra,
            ),
        )
        return str(participant.call_sid)

    def hold(
        self, conference_sid: str, call_sid: str, hold: bool, hold_url: str | None = None
    ) -> None:
        """Put a participant on hold (hearing ``hold_url``) or take them off."""
        kwargs: dict[str, Any] = {"hold": hold}
        if hold and hold_url:
            kwargs.update(hold_url=hold_url, hold_method="POST")
        self._do(
            "hold",
            lambda: self.client.conferences(conference_sid).participants(call_sid).update(**kwargs),
        )

    def remove_participant(self, conference_sid: str, call_sid: str) -> None:
        """Take a participant out of a conference."""
        self._do(
            "remove participant",
            lambda: self.client.conferences(conference_sid).participants(call_sid).delete(),
        )

    def play(self, call_sid: str, twiml: str) -> None:
        """Replace what a live call is doing with this TwiML."""
        self._do("update call", lambda: self.client.calls(call_sid).update(twiml=twiml))

    def hang_up(self, call_sid: str) -> None:
        """End a call."""
        self._do("hang up", lambda: self.client.calls(call_sid).update(status="completed"))

    def create_call(
        self,
        *,
        to: str,
        from_: str,
        url: str,
        status_callback: str,
        timeout: int = 30,
        machine_detection: bool = False,
    ) -> str:
        """Ring ``to`` and run the TwiML at ``url`` when they answer; the new CallSid.

        With ``machine_detection`` Twilio tells the first webhook whether a person or an
        answering machine picked up (``AnsweredBy``).
        """
        extra = {"machine_detection": "Enable"} if machine_detection else {}
        call = self._do(
            "create call",
            lambda: self.client.calls.create(
                to=to,
                from_=from_,
                url=url,
                status_callback=status_callback,
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                timeout=timeout,
                **extra,
            ),
        )
        return str(call.sid)

    def call_status(self, call_sid: str) -> str:
        """A call's current status (queued, ringing, in-progress, completed, ...)."""
        return str(self._do("fetch call", lambda: self.client.calls(call_sid).fetch()).status)
