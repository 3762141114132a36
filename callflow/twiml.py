"""TwiML for a flow's states, built with the twilio library's ``VoiceResponse``.

The engine does not know the service's URLs; it is handed :class:`Links`, which turns
"the next step of this call, with this event" into a URL.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, Protocol

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from .flowspec import Flow, FlowState, Verb

POLITE_APOLOGY = (
    "Sorry, we are having a technical problem and cannot take your call right now. "
    "Please call back later. Goodbye."
)
CALL_NOT_FOUND = "Sorry, we could not find your call. Please call back. Goodbye."
DEFAULT_VOICE = {"voice": "Polly.Amy", "language": "en-GB"}


class Links(Protocol):
    """The URLs the service hands to Twilio."""

    def step(self, step: int, event: str | None = None) -> str:
        """The URL for the call's next webhook, optionally naming the event."""
        ...

    def conference_events(self) -> str:
        """Where Twilio sends a conference's status callbacks."""
        ...

    def leg_status(self, role: str, call_sid: str) -> str:
        """Where Twilio sends status callbacks of a leg the service dialled for ``call_sid``."""
        ...

    def hold(self, call_sid: str) -> str:
        """The wait URL a waiting caller's conference plays (and ticks the service with)."""
        ...

    def incoming(self, flow: str, ref: str) -> str:
        """The Voice URL for an outbound leg that runs ``flow`` about record ``ref``."""
        ...


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def fill(text: str, values: Mapping[str, str]) -> str:
    """Put call values into a prompt; a value not set yet reads as nothing."""
    return string.Formatter().vformat(text, (), _Values(values))


def say_and_hang_up(message: str, defaults: Mapping[str, str] | None = None) -> str:
    """A complete, polite TwiML answer that speaks and ends the call."""
    response = VoiceResponse()
    response.say(message, **dict(defaults or DEFAULT_VOICE))
    response.hangup()
    return str(response)


def hang_up() -> str:
    """TwiML that ends the call at once."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


class Renderer:
    """Appends a state's verbs to a response."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.voice = {**DEFAULT_VOICE, **flow.defaults}

    def render(
        self,
        state: FlowState,
        out: VoiceResponse,
        values: Mapping[str, str],
        links: Links,
        step: int,
    ) -> None:
        """Add ``state``'s TwiML to ``out``; ``step`` is the number its URLs carry."""
        for verb in state.verbs:
            self._verb(verb, out, values, links, step)

    def _prompt(
        self, verb: Verb, parent: VoiceResponse | Gather, values: Mapping[str, str]
    ) -> None:
        opts = verb.options
        if verb.kind == "say":
            voice = {k: opts.get(k, self.voice[k]) for k in ("voice", "language")}
            parent.say(fill(opts["text"], values), loop=opts.get("loop"), **voice)
        elif verb.kind == "play":
            parent.play(opts.get("url"), loop=opts.get("loop"), digits=opts.get("digits"))
        elif verb.kind == "pause":
            parent.pause(length=opts.get("length", 1))

    def _verb(
        self, verb: Verb, out: VoiceResponse, values: Mapping[str, str], links: Links, step: int
    ) -> None:
        opts: dict[str, Any] = verb.options
        kind = verb.kind
        if kind in {"say", "play", "pause"}:
            self._prompt(verb, out, values)
        elif kind == "gather":
            gather = out.gather(
                input=opts.get("input", "dtmf"),
                action=links.step(step),
                method="POST",
                timeout=opts.get("timeout", 5),
                num_digits=opts.get("num_digits"),
                finish_on_key=opts.get("finish_on_key"),
                hints=opts.get("hints"),
                speech_timeout=opts.get("speech_timeout"),
                language=opts.get("language", self.voice["language"]),
                action_on_empty_result=False,
            )
            for prompt in opts.get("prompt", ()):
                self._prompt(prompt, gather, values)
            # Twilio falls through to the next verb when the caller gives nothing.
            out.redirect(links.step(step, "timeout"), method="POST")
        elif kind == "enqueue":
            out.enqueue(
                fill(opts["queue"], values),
                action=links.step(step, "dequeued"),
                method="POST",
                wait_url=opts.get("wait_url"),
            )
        elif kind == "dial":
            self._dial(opts, out, values, links, step)
        elif kind == "redirect":
            out.redirect(links.step(step, opts.get("event", "redirect")), method="POST")
        elif kind == "hangup":
            out.hangup()
        elif kind == "reject":
            out.reject(reason=opts.get("reason"))

    def _dial(
        self,
        opts: dict[str, Any],
        out: VoiceResponse,
        values: Mapping[str, str],
        links: Links,
        step: int,
    ) -> None:
        dial: Dial = out.dial(
            action=links.step(step, "dial_ended"),
            method="POST",
            timeout=opts.get("timeout"),
            caller_id=opts.get("caller_id"),
            time_limit=opts.get("time_limit"),
        )
        if "number" in opts:
            dial.number(fill(opts["number"], values))
        elif "client" in opts:
            dial.client(fill(opts["client"], values))
        elif "queue" in opts:
            dial.queue(fill(opts["queue"], values))
        elif "conference" in opts:
            # hold: the service's own wait URL, which also keeps ringing agents while it plays.
            wait_url = (
                links.hold(values.get("call_sid", "")) if opts.get("hold") else opts.get("wait_url")
            )
            dial.conference(
                fill(opts["conference"], values),
                start_conference_on_enter=opts.get("start_conference_on_enter"),
                end_conference_on_exit=opts.get("end_conference_on_exit"),
                wait_url=wait_url,
                wait_method="POST" if wait_url else None,
                beep=opts.get("beep"),
                participant_label=opts.get("label"),
                status_callback=links.conference_events(),
                status_callback_event="start end join leave hold",
                status_callback_method="POST",
            )
