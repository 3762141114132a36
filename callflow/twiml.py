"""TwiML for a flow's states, built with the twilio library's ``VoiceResponse``.

The engine does not know the service's URLs; it is handed :class:`Links`, which turns
"the next step of this call, with this event" into a URL.

A state's TwiML depends only on the state, the prompt values it uses, the service's base
URL and the step number its URLs carry. Each state is rendered once per distinct set of
those (with a stand-in step number, swapped for the real one) and kept as an XML
fragment: on the hot path a webhook joins strings instead of building and serialising an
element tree.
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

    def incoming(self, flow: str, ref: str, language: str | None = None) -> str:
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


XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
#: The step number fragments are rendered with; swapped for the call's real step.
STAND_IN_STEP = 9876543219876
_STAND_IN = f"?s={STAND_IN_STEP}"
#: Fragments kept per flow version; past this the cache starts again (values vary per call).
MAX_FRAGMENTS = 4096


def response_xml(fragments: list[str]) -> str:
    """A whole TwiML document from the fragments of the states a webhook entered."""
    body = "".join(fragments)
    return f"{XML_HEAD}<Response>{body}</Response>" if body else f"{XML_HEAD}<Response />"


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _factor(values: Mapping[str, str]) -> int:
    """How many times longer a gather waits on this call (a Relay UK call: 3 by default)."""
    text = values.get("timeout_factor", "")
    return int(text) if text.isdigit() and 1 <= int(text) <= 10 else 1


def _speaks(verb: Verb) -> bool:
    """Whether a verb (or a gather's prompt) says or listens for words."""
    return verb.kind in {"say", "gather"} or any(_speaks(p) for p in verb.options.get("prompt", ()))


class Renderer:
    """Renders a state's verbs as a TwiML fragment (cached per state, values and base URL)."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.voice = {**DEFAULT_VOICE, **flow.defaults}
        self._uses = {name: self._values_used(state) for name, state in flow.states.items()}
        self._fragments: dict[tuple[Any, ...], str] = {}

    @staticmethod
    def _values_used(state: FlowState) -> tuple[str, ...]:
        """The prompt values a state's TwiML reads (call_sid for a hold URL)."""
        used: set[str] = set()

        def visit(verb: Verb) -> None:
            for key in ("text", "queue", "number", "client", "conference"):
                if isinstance(verb.options.get(key), str):
                    used.update(_fields(verb.options[key]))
                elif isinstance(verb.options.get(key), dict):
                    for text in verb.options[key].values():
                        used.update(_fields(text))
            if verb.kind == "dial" and verb.options.get("hold"):
                used.add("call_sid")
            for prompt in verb.options.get("prompt", ()):
                visit(prompt)

        for verb in state.verbs:
            visit(verb)
        if "language" not in used and any(_speaks(v) for v in state.verbs):
            used.add("language")  # what it says depends on the call's language
        if any(v.kind == "gather" for v in state.verbs):
            used.add("timeout_factor")  # a relay call waits longer
        return tuple(sorted(used))

    def render(
        self,
        state: FlowState,
        out: list[str],
        values: Mapping[str, str],
        links: Links,
        step: int,
    ) -> None:
        """Add ``state``'s TwiML to ``out``; ``step`` is the number its URLs carry."""
        if not state.verbs:
            return
        base = getattr(links, "base", None)
        if base is None:  # links with no stable base (an ended call's): no caching
            out.append(self._fragment(state, values, links, step))
            return
        key = (state.name, base, *(values.get(name, "") for name in self._uses[state.name]))
        fragment = self._fragments.get(key)
        if fragment is None:
            fragment = self._fragment(state, values, links, STAND_IN_STEP)
            if len(self._fragments) >= MAX_FRAGMENTS:
                self._fragments.clear()
            self._fragments[key] = fragment
        out.append(fragment.replace(_STAND_IN, f"?s={step}"))

    def language(self, values: Mapping[str, str]) -> str:
        """The call's language, if the flow speaks it; else the flow's first."""
        chosen = values.get("language", "")
        return chosen if chosen in self.flow.languages else self.flow.default_language

    def _fragment(
        self, state: FlowState, values: Mapping[str, str], links: Links, step: int
    ) -> str:
        response = VoiceResponse()
        for verb in state.verbs:
            self._verb(verb, response, values, links, step)
        xml = str(response)
        start = xml.find("<Response>")
        if start < 0:  # nothing rendered: <Response />
            return ""
        return xml[start + len("<Response>") : xml.rindex("</Response>")]

    def _prompt(
        self, verb: Verb, parent: VoiceResponse | Gather, values: Mapping[str, str]
    ) -> None:
        opts = verb.options
        if verb.kind == "say":
            language = opts.get("language") or self.language(values)
            texts: dict[str, str] = opts["text"]
            text = texts.get(language) or texts.get(self.flow.default_language) or ""
            if not text:
                language, text = next(iter(texts.items()))
            voice = opts.get("voice") or self.flow.languages.get(language) or self.voice["voice"]
            parent.say(fill(text, values), loop=opts.get("loop"), voice=voice, language=language)
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
                timeout=opts.get("timeout", 5) * _factor(values),
                num_digits=opts.get("num_digits"),
                finish_on_key=opts.get("finish_on_key"),
                hints=opts.get("hints"),
                speech_timeout=opts.get("speech_timeout"),
                language=opts.get("language") or self.language(values),
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
