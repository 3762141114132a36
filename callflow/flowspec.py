"""Flow files: loading YAML, checking everything, and the compiled flow.

A flow is data a call-flow designer edits (see docs/flows.md). Loading one checks the
YAML and every rule of the format, and reports *all* problems at once, each with the
file and line it is on, as a :class:`~callflow.errors.FlowValidationError`. A loaded
flow carries a version: the first 12 hex digits of the SHA-256 of its text.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml

from .allowlists import Allowed, destination_problems
from .errors import FlowValidationError, Problem
from .language import DEFAULT as DEFAULT_LANGUAGE
from .language import LANGUAGE, VOICES
from .registry import ActionSpec, Registry, default_registry

__all__ = [
    "EVENT_NAME",
    "Flow",
    "FlowState",
    "Transition",
    "Verb",
    "lint_paths",
    "load_flow",
    "parse_flow",
]

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
EVENT_NAME = NAME
START_STATE = "_start"
START_EVENT = "start"

#: Verbs after which Twilio waits for the caller, a callback or the end of the call:
#: nothing may follow them in a state, and the state cannot use ``next``.
WAITING_VERBS = frozenset({"gather", "enqueue", "dial", "redirect", "hangup", "reject"})
#: The events the engine raises itself; actions raise the rest.
INPUT_EVENTS = frozenset({"digits", "speech", "timeout"})
BUILTIN_EVENTS = INPUT_EVENTS | {"hangup", "next", "dequeued", "dial_ended"}

_TOP_KEYS = {"flow", "description", "initial", "defaults", "languages", "routing", "states"}
_DEFAULTS_KEYS = {"voice", "language"}
_STATE_KEYS = {"description", "enter", "twiml", "events"}
_TRANSITION_KEYS = {"to", "if", "unless", "actions", "description"}
_PROMPT_VERBS = frozenset({"say", "play", "pause"})
_VERB_OPTIONS: dict[str, dict[str, str]] = {
    # option -> type: text (may use {values}), str, int, bool, url, list
    "say": {"text": "text", "voice": "str", "language": "str", "loop": "int"},
    "play": {"url": "url", "loop": "int", "digits": "digits"},
    "pause": {"length": "int"},
    "gather": {
        "input": "input",
        "num_digits": "int",
        "timeout": "int",
        "finish_on_key": "key",
        "hints": "str",
        "speech_timeout": "speech_timeout",
        "language": "str",
        "prompt": "prompt",
        "secret": "bool",
    },
    "enqueue": {"queue": "text", "wait_url": "url"},
    "dial": {
        "number": "text",
        "client": "text",
        "conference": "text",
        "queue": "text",
        "timeout": "int",
        "caller_id": "str",
        "time_limit": "int",
        "start_conference_on_enter": "bool",
        "end_conference_on_exit": "bool",
        "wait_url": "url",
        "hold": "bool",
        "label": "str",
        "beep": "str",
    },
    "redirect": {"event": "event"},
    "hangup": {},
    "reject": {"reason": "reason"},
}
#: The option a verb's short form (``say: "Hello"``) sets.
_SHORT_FORM = {"say": "text", "play": "url", "pause": "length", "redirect": "event"}
_INT_RANGES = {
    "loop": (0, 100),
    "length": (1, 600),
    "num_digits": (1, 64),
    "timeout": (1, 600),
    "time_limit": (1, 14400),
}
_DIAL_TARGETS = ("number", "client", "conference", "queue")


@dataclass(frozen=True)
class Verb:
    """One TwiML verb of a state, with its options (prompt verbs nested for gather)."""

    kind: str
    options: dict[str, Any]
    line: int


@dataclass(frozen=True)
class Transition:
    """Where an event takes the call, under which guards, running which actions."""

    event: str
    source: str
    dest: str
    if_guards: tuple[str, ...]
    unless_guards: tuple[str, ...]
    actions: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class FlowState:
    """A state: actions run on entry, what the caller hears, and the events it handles."""

    name: str
    description: str
    enter: tuple[str, ...]
    verbs: tuple[Verb, ...]
    events: dict[str, tuple[Transition, ...]]
    line: int

    @property
    def gather(self) -> Verb | None:
        """The state's gather verb, if it has one."""
        return next((v for v in self.verbs if v.kind == "gather"), None)

    @property
    def secret_prompt(self) -> bool:
        """Whether the state's gather is marked ``secret``: what the caller gives there is
        never kept (session, trace, log or audit), whatever it is and whichever event."""
        gather = self.gather
        return bool(gather is not None and gather.options.get("secret"))


@dataclass(frozen=True)
class Flow:
    """A validated flow, ready to build a machine from."""

    name: str
    description: str
    version: str
    path: str
    initial: str
    defaults: dict[str, str]
    states: dict[str, FlowState]
    source: str = field(repr=False)
    #: The languages the flow speaks, each with its voice, in order: the first is the
    #: language a call gets when nothing chose another.
    languages: dict[str, str] = field(default_factory=lambda: {"en-GB": "Polly.Amy"})
    #: What to do when no free agent speaks a caller's language: ``language_wait``
    #: seconds, then ``then`` (english, wait or callback). Empty: the service's defaults.
    routing: dict[str, Any] = field(default_factory=dict)

    @property
    def default_language(self) -> str:
        """The language a call on this flow is served in unless it chose another."""
        return next(iter(self.languages))

    def transitions(self) -> Iterator[Transition]:
        """Every transition of the flow, state by state."""
        for state in self.states.values():
            for options in state.events.values():
                yield from options

    @cached_property
    def numbered(self) -> tuple[Transition, ...]:
        """The transitions in order: the machine, flow-test coverage and a call's trace
        each name a transition by its place here."""
        return tuple(self.transitions())

    def events(self) -> set[str]:
        """Every event name the flow handles somewhere."""
        return {t.event for t in self.transitions()}


# ---------------------------------------------------------------- YAML with line numbers


class _LineMap(dict[Any, Any]):
    line: int
    key_lines: dict[Any, int]


class _LineList(list[Any]):
    line: int
    item_lines: list[int]


#: A flow is a few hundred lines: anything far larger or deeper is not one.
MAX_SOURCE_BYTES = 512 * 1024
MAX_DEPTH = 40
MAX_NODES = 50_000


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping key and list item.

    It refuses what no flow needs and could exhaust the service: anchors and aliases
    (a few lines can expand to millions of nodes), nesting deeper than ``MAX_DEPTH``, more
    than ``MAX_NODES`` nodes. Each refusal is a YAML error with its line, never a crash.
    """

    problems: list[tuple[int, str]]
    _depth = 0
    _nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (*name) are not allowed in flows", mark
            )
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH or self._nodes > MAX_NODES:
                what = (
                    f"nested more than {MAX_DEPTH} levels deep"
                    if self._depth > MAX_DEPTH
                    else f"more than {MAX_NODES} items"
                )
                raise yaml.composer.ComposerError(
                    None, None, f"too large for a flow: {what}", self.peek_event().start_mark  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[_LineMap]:
    loader.flatten_mapping(node)
    data = _LineMap()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        key = loader.construct_object(key_node, deep=True)
        value = loader.construct_object(value_node, deep=True)
        if not isinstance(key, str):
            loader.problems.append(
                (
                    line,
                    f"key {key!r} must be a name (quote it: YAML reads it as {type(key).__name__})",
                )
            )
            key = str(key)
        if key in data:
            loader.problems.append(
                (line, f"duplicate key {key!r} (first on line {data.key_lines[key]})")
            )
            continue
        data[key] = value
        data.key_lines[key] = line


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[_LineList]:
    data = _LineList()
    data.line = node.start_mark.line + 1
    data.item_lines = []
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=True))
        data.item_lines.append(item.start_mark.line + 1)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _line_of(container: Any, key: Any, default: int) -> int:
    if isinstance(container, _LineMap):
        return container.key_lines.get(key, container.line)
    if (
        isinstance(container, _LineList)
        and isinstance(key, int)
        and key < len(container.item_lines)
    ):
        return container.item_lines[key]
    return default


# ---------------------------------------------------------------- checking


class _Checker:
    """Walks a parsed flow document, collecting every problem and the compiled parts."""

    def __init__(self, path: str, registry: Registry) -> None:
        self.path = path
        self.registry = registry
        self.problems: list[Problem] = []
        self.values = registry.known_values()
        #: The flow's languages (every prompt gives a text for each).
        self.languages: list[str] = ["en-GB"]

    def err(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    def unknown_keys(self, mapping: _LineMap, allowed: Iterable[str], where: str) -> None:
        allowed = set(allowed)
        for key in mapping:
            if key not in allowed:
                self.err(
                    _line_of(mapping, key, mapping.line),
                    f"unknown key {key!r} in {where} (allowed: {', '.join(sorted(allowed))})",
                )

    def names(self, value: Any, line: int, what: str) -> tuple[str, ...]:
        """A name or a list of names (guards, actions)."""
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            self.err(line, f"{what} must be a name or a list of names")
            return ()
        return tuple(items)

    def template(self, text: str, line: int) -> None:
        """Check that a prompt only uses known values, with plain ``{name}`` fields."""
        try:
            fields = list(string.Formatter().parse(text))
        except ValueError as exc:
            self.err(
                line, f"prompt {text!r} has a stray brace ({exc}); write {{{{ or }}}} for a brace"
            )
            return
        for _, name, spec, conversion in fields:
            if name is None:
                continue
            if spec or conversion or not NAME.match(name):
                self.err(
                    line, f"prompt value {{{name}}} must be a plain name like {{adviser_name}}"
                )
            elif name not in self.values:
                known = ", ".join(sorted(self.values))
                self.err(line, f"prompt uses unknown value {{{name}}} (known: {known})")

    # -- verbs

    def verb(self, item: Any, line: int, *, prompt_only: bool = False) -> Verb | None:
        if isinstance(item, str):
            kind, raw = item, None
        elif isinstance(item, dict) and len(item) == 1:
            kind, raw = next(iter(item.items()))
            line = _line_of(item, kind, line)
        else:
            self.err(line, 'a TwiML step is one verb, like `- say: "Hello"` or `- hangup`')
            return None
        allowed_kinds = _PROMPT_VERBS if prompt_only else set(_VERB_OPTIONS)
        if kind not in allowed_kinds:
            where = "a gather prompt" if prompt_only else "twiml"
            self.err(
                line,
                f"unknown verb {kind!r} in {where} (allowed: {', '.join(sorted(allowed_kinds))})",
            )
            return None
        spec = _VERB_OPTIONS[kind]
        if kind == "say" and isinstance(raw, dict) and raw and all(
            isinstance(key, str) and LANGUAGE.match(key) for key in raw
        ):
            # `say: {en-GB: "...", cy-GB: "..."}`: a text per language.
            wrapped = _LineMap({"text": raw})
            wrapped.line = getattr(raw, "line", line)
            wrapped.key_lines = {"text": wrapped.line}
            raw = wrapped
        if raw is None or raw is True:
            options: dict[str, Any] = {}
        elif isinstance(raw, dict):
            options = dict(raw)
            self.unknown_keys(raw, spec, f"{kind}")  # type: ignore[arg-type]
        elif kind in _SHORT_FORM and isinstance(raw, str | int) and not isinstance(raw, bool):
            options = {_SHORT_FORM[kind]: raw}
        else:
            self.err(line, f"{kind} takes a mapping of options ({', '.join(sorted(spec))})")
            return None
        clean: dict[str, Any] = {}
        for key, value in options.items():
            if key not in spec:
                continue
            checked = self.option(kind, key, spec[key], value, _line_of(raw, key, line))
            if checked is not None:
                clean[key] = checked
        self.required_options(kind, clean, line)
        if kind == "say" and "text" in clean:
            clean["text"] = self.texts(clean["text"], clean.get("language"), line)
        return Verb(kind, clean, line)

    def texts(self, text: Any, pinned: str | None, line: int) -> dict[str, str]:
        """A say's text as {language: text}, every flow language given (or one pinned)."""
        if isinstance(text, str):
            if pinned:
                return {pinned: text}
            if len(self.languages) == 1:
                return {self.languages[0]: text}
            self.err(
                line,
                f"say needs a text for each of the flow's languages ({', '.join(self.languages)})"
                ": write `say: {" + ", ".join(f"{lang}: ..." for lang in self.languages) + "}`"
                ", or pin one language with `language:`",
            )
            return {self.languages[0]: text}
        texts = dict(text)
        missing = [lang for lang in self.languages if lang not in texts]
        if missing and not (pinned and pinned in texts):
            self.err(
                line,
                f"say has no {' or '.join(missing)} text (the flow speaks "
                f"{', '.join(self.languages)})",
            )
        return texts

    def required_options(self, kind: str, options: dict[str, Any], line: int) -> None:
        if kind == "say" and "text" not in options:
            self.err(line, "say needs text")
        elif kind == "play" and "url" not in options and "digits" not in options:
            self.err(line, "play needs a url (or digits)")
        elif kind == "enqueue" and "queue" not in options:
            self.err(line, "enqueue needs a queue name")
        elif kind == "dial":
            targets = [t for t in _DIAL_TARGETS if t in options]
            if len(targets) != 1:
                self.err(line, f"dial needs exactly one of {', '.join(_DIAL_TARGETS)}")
            conference_only = {
                "start_conference_on_enter",
                "end_conference_on_exit",
                "wait_url",
                "hold",
                "label",
                "beep",
            }
            if "conference" not in options and conference_only & set(options):
                self.err(
                    line,
                    f"{', '.join(sorted(conference_only & set(options)))} only fit a conference",
                )
        elif kind == "gather" and "prompt" not in options:
            self.err(line, "gather needs a prompt: what the caller hears while it listens")

    def option(self, kind: str, key: str, kind_of: str, value: Any, line: int) -> Any:
        bad = f"{kind} {key}"
        if kind == "say" and key == "text" and isinstance(value, dict):
            texts: dict[str, str] = {}
            for language, text in value.items():
                at = _line_of(value, language, line)
                if not isinstance(language, str) or not LANGUAGE.match(language):
                    self.err(at, f"say text: {language!r} is not a language like en-GB or cy-GB")
                elif language not in self.languages:
                    self.err(
                        at,
                        f"say text in {language}, which the flow does not speak (add it to "
                        f"`languages:`; the flow speaks {', '.join(self.languages)})",
                    )
                elif not isinstance(text, str) or not text.strip():
                    self.err(at, f"say text in {language} must be non-empty text")
                else:
                    self.template(text, at)
                    texts[language] = text
            return texts or None
        if key == "language":
            if not isinstance(value, str) or not LANGUAGE.match(value):
                self.err(line, f"{kind} language must be a language like en-GB or cy-GB")
                return None
            return value
        if kind_of in {"text", "str", "url"}:
            if not isinstance(value, str) or not value.strip():
                self.err(line, f"{bad} must be non-empty text")
                return None
            if kind_of == "text":
                self.template(value, line)
            if kind_of == "url" and not value.startswith(("http://", "https://", "/")):
                self.err(line, f"{bad} must be an http(s) URL or a path starting with /")
            return value
        if kind_of == "int":
            low, high = _INT_RANGES.get(key, (0, 10_000))
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                self.err(line, f"{bad} must be a whole number from {low} to {high}")
                return None
            return value
        if kind_of == "bool":
            if not isinstance(value, bool):
                self.err(line, f"{bad} must be true or false")
                return None
            return value
        if kind_of == "input":
            parts = value.split() if isinstance(value, str) else []
            if not parts or not set(parts) <= {"dtmf", "speech"} or len(parts) != len(set(parts)):
                self.err(line, f"{bad} must be dtmf, speech or 'dtmf speech'")
                return None
            return " ".join(sorted(parts))
        if kind_of == "key":
            text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
            if not isinstance(text, str) or (text != "" and not re.fullmatch(r"[0-9#*]", text)):
                self.err(line, f"{bad} must be one key: 0-9, # or *, or '' for none")
                return None
            return text
        if kind_of == "speech_timeout":
            if value == "auto" or (
                isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 60
            ):
                return value
            self.err(line, f"{bad} must be 'auto' or seconds from 1 to 60")
            return None
        if kind_of == "digits":
            if not isinstance(value, str) or not re.fullmatch(r"[0-9#*w]{1,64}", value):
                self.err(line, f"{bad} must be keypad digits (0-9, #, *, w)")
                return None
            return value
        if kind_of == "event":
            if not isinstance(value, str) or not EVENT_NAME.match(value):
                self.err(line, f"{bad} must be an event name")
                return None
            return value
        if kind_of == "reason":
            if value not in {"rejected", "busy"}:
                self.err(line, f"{bad} must be rejected or busy")
                return None
            return value
        if kind_of == "prompt":
            items = value if isinstance(value, list) else [value]
            verbs = []
            for index, item in enumerate(items):
                verb = self.verb(item, _line_of(value, index, line), prompt_only=True)
                if verb:
                    verbs.append(verb)
            return tuple(verbs)
        raise AssertionError(kind_of)

    # -- states and transitions

    def transitions(self, state: str, event: str, value: Any, line: int) -> tuple[Transition, ...]:
        items = value if isinstance(value, list) else [value]
        result: list[Transition] = []
        unconditional_line = 0
        for index, item in enumerate(items):
            item_line = _line_of(value, index, line) if isinstance(value, list) else line
            if unconditional_line:
                self.err(
                    item_line,
                    f"this {event} transition is never used: the one on line "
                    f"{unconditional_line} has no guard and always wins",
                )
            if isinstance(item, str):
                item = {"to": item}
            if not isinstance(item, dict):
                self.err(item_line, f"event {event!r} must name a state or give `to:` with guards")
                continue
            item_line = getattr(item, "line", item_line)
            self.unknown_keys(item, _TRANSITION_KEYS, "a transition")  # type: ignore[arg-type]
            dest = item.get("to")
            if not isinstance(dest, str):
                self.err(item_line, f"transition on {event!r} needs `to:` with a state name")
                continue
            if_guards = self.names(item.get("if"), _line_of(item, "if", item_line), "`if`")
            unless = self.names(item.get("unless"), _line_of(item, "unless", item_line), "`unless`")
            actions = self.names(
                item.get("actions"), _line_of(item, "actions", item_line), "actions"
            )
            known_guards = self.registry.guards
            for guard in if_guards + unless:
                if guard not in self.registry.guards:
                    self.err(
                        item_line,
                        f"unknown guard {guard!r} (known: {', '.join(sorted(known_guards))})",
                    )
            for action in actions:
                self.action_ref(action, item_line, on_transition=True)
            if not if_guards and not unless:
                unconditional_line = item_line
            result.append(Transition(event, state, dest, if_guards, unless, actions, item_line))
        return tuple(result)

    def action_ref(self, name: str, line: int, *, on_transition: bool) -> ActionSpec | None:
        spec = self.registry.actions.get(name)
        if spec is None:
            self.err(
                line, f"unknown action {name!r} (known: {', '.join(sorted(self.registry.actions))})"
            )
            return None
        if on_transition and spec.raises:
            self.err(line, f"action {name!r} raises events, so it belongs in a state's `enter`")
        return spec

    def state(self, name: Any, body: Any, line: int) -> FlowState | None:
        if not isinstance(name, str) or not NAME.match(name):
            self.err(line, f"state name {name!r} must be lower_case letters, digits and _")
            return None
        if body is None:
            body = _LineMap()
            body.line, body.key_lines = line, {}
        if not isinstance(body, dict):
            self.err(line, f"state {name!r} must be a mapping (enter, twiml, events)")
            return None
        self.unknown_keys(body, _STATE_KEYS, f"state {name!r}")  # type: ignore[arg-type]
        enter = self.names(body.get("enter"), _line_of(body, "enter", line), "enter")
        raised: set[str] = set()
        for action in enter:
            spec = self.action_ref(action, _line_of(body, "enter", line), on_transition=False)
            if spec:
                raised |= spec.raises
        verbs: list[Verb] = []
        twiml = body.get("twiml")
        if twiml is not None and not isinstance(twiml, list):
            self.err(_line_of(body, "twiml", line), "twiml must be a list of verbs")
            twiml = []
        for index, item in enumerate(twiml or []):
            verb = self.verb(item, _line_of(twiml, index, line))
            if verb:
                verbs.append(verb)
        for verb in verbs[:-1]:
            if verb.kind in WAITING_VERBS:
                self.err(
                    verb.line,
                    f"{verb.kind} must be the last verb of state {name!r}: "
                    "Twilio does not come back to what follows it",
                )
        raw_events = body.get("events")
        events: dict[str, tuple[Transition, ...]] = {}
        if raw_events is not None and not isinstance(raw_events, dict):
            self.err(_line_of(body, "events", line), "events must map event names to transitions")
            raw_events = None
        for event, value in (raw_events or {}).items():
            ev_line = _line_of(raw_events, event, line)
            if not EVENT_NAME.match(event):
                self.err(ev_line, f"event name {event!r} must be lower_case letters, digits and _")
                continue
            events[event] = self.transitions(name, event, value, ev_line)
        self.event_rules(name, line, verbs, raised, events, raw_events)
        description = body.get("description", "")
        return FlowState(name, str(description), enter, tuple(verbs), events, line)

    def event_rules(
        self,
        name: str,
        line: int,
        verbs: list[Verb],
        raised: set[str],
        events: dict[str, tuple[Transition, ...]],
        raw_events: Any,
    ) -> None:
        """Which events the state must handle, and which it cannot receive."""
        needed: dict[str, str] = {event: "an enter action raises it" for event in raised}
        last = verbs[-1] if verbs else None
        for verb in verbs:
            if verb.kind == "gather":
                inputs = verb.options.get("input", "dtmf").split()
                if "dtmf" in inputs:
                    needed["digits"] = "the gather takes keypad input"
                if "speech" in inputs:
                    needed["speech"] = "the gather takes speech"
                needed["timeout"] = "the caller may say or press nothing"
            elif verb.kind == "enqueue":
                needed["dequeued"] = "the caller leaves the queue"
            elif verb.kind == "dial":
                needed["dial_ended"] = "the dialled call ends"
            elif verb.kind == "redirect":
                needed[verb.options.get("event", "redirect")] = "the redirect raises it"
        for event, why in sorted(needed.items()):
            if event not in events:
                self.err(line, f"state {name!r} has no handler for {event!r} ({why})")
        possible = set(needed) | {"hangup"}
        waiting = last is not None and last.kind in WAITING_VERBS
        if not waiting:
            possible.add("next")
        for event in events:
            if event not in possible:
                ev_line = _line_of(raw_events, event, line)
                if event == "next":
                    self.err(
                        ev_line,
                        f"state {name!r} cannot use `next` after {last.kind if last else ''}: "
                        "the call waits there",
                    )
                else:
                    self.err(
                        ev_line,
                        f"state {name!r} handles {event!r} but nothing in it raises that event",
                    )
        ends = last is not None and last.kind in {"hangup", "reject"}
        if not ends and not (set(events) - {"hangup"}):
            self.err(line, f"state {name!r} has no way out: give it events or end it with hangup")


def read_yaml(source: str, path: str, what: str = "a flow") -> tuple[Any, list[tuple[int, str]]]:
    """YAML text with the line of every key and item, and the problems met reading it
    (duplicate keys, ...). Raises FlowValidationError, with a line where there is one, for
    text that is not YAML or is too large or deep for ``what``: never anything else."""
    if len(source.encode("utf-8", "replace")) > MAX_SOURCE_BYTES:
        raise FlowValidationError(
            [Problem(path, 1, f"too large for {what}: more than {MAX_SOURCE_BYTES // 1024} KB")]
        )
    try:
        loader = _LineLoader(source)
    except yaml.YAMLError as exc:  # the reader refuses control characters at once
        raise FlowValidationError([Problem(path, 1, f"YAML: {exc}")]) from None
    loader.problems = []
    try:
        return loader.get_single_data(), loader.problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        message = " ".join(filter(None, [exc.context, exc.problem]))
        raise FlowValidationError([Problem(path, line, f"YAML syntax: {message}")]) from None
    except yaml.YAMLError as exc:
        raise FlowValidationError([Problem(path, 1, f"YAML: {exc}")]) from None
    except RecursionError:
        raise FlowValidationError([Problem(path, 1, "YAML: nested too deeply")]) from None
    finally:
        loader.dispose()


def parse_flow(source: str, path: str = "<flow>", registry: Registry | None = None) -> Flow:
    """Check a flow's text and compile it; raise FlowValidationError listing every problem.

    The same text at the same path with the same registry compiles once: every sandbox (a
    flow test, a softphone call, a replay) loads the same files again, and reading YAML is
    most of the cost. A Flow is immutable, so sharing it is safe."""
    return _parse_flow(source, path, registry or default_registry())


@lru_cache(maxsize=256)
def _parse_flow(source: str, path: str, registry: Registry) -> Flow:
    checker = _Checker(path, registry)
    document, yaml_problems = read_yaml(source, path)
    for line, message in yaml_problems:
        checker.err(line, message)
    if not isinstance(document, dict):
        checker.err(1, "a flow file is a mapping with flow, initial and states")
        raise FlowValidationError(checker.problems)
    checker.unknown_keys(document, _TOP_KEYS, "the flow")  # type: ignore[arg-type]
    top_line = getattr(document, "line", 1)
    name = document.get("flow")
    if not isinstance(name, str) or not NAME.match(name):
        checker.err(
            _line_of(document, "flow", top_line), "`flow:` must name the flow in lower_case"
        )
        name = "unnamed"
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        checker.err(
            _line_of(document, "defaults", top_line), "defaults must be a mapping (voice, language)"
        )
        defaults = {}
    else:
        checker.unknown_keys(defaults, _DEFAULTS_KEYS, "defaults")  # type: ignore[arg-type]
        for key, value in defaults.items():
            if not isinstance(value, str):
                checker.err(_line_of(defaults, key, top_line), f"defaults {key} must be text")
    languages = _languages(document, defaults if isinstance(defaults, dict) else {}, checker)
    checker.languages = list(languages)
    routing = _routing(document, checker)
    raw_states = document.get("states")
    states: dict[str, FlowState] = {}
    if not isinstance(raw_states, dict) or not raw_states:
        checker.err(
            _line_of(document, "states", top_line), "`states:` must list at least one state"
        )
        raw_states = {}
    for state_name, body in raw_states.items():
        compiled = checker.state(state_name, body, _line_of(raw_states, state_name, top_line))
        if compiled:
            states[compiled.name] = compiled
    initial = document.get("initial")
    initial_line = _line_of(document, "initial", top_line)
    if not isinstance(initial, str):
        checker.err(initial_line, "`initial:` must name the state a call starts in")
        initial = ""
    elif raw_states and initial not in raw_states:
        checker.err(initial_line, f"initial state {initial!r} is not defined")
    for state in states.values():
        for transitions in state.events.values():
            for tr in transitions:
                if tr.dest not in raw_states:
                    checker.err(tr.line, f"transition to unknown state {tr.dest!r}")
    if initial in states:
        reached = {initial}
        todo = [initial]
        while todo:
            current = states.get(todo.pop())
            for transitions in current.events.values() if current else ():
                for tr in transitions:
                    if tr.dest in states and tr.dest not in reached:
                        reached.add(tr.dest)
                        todo.append(tr.dest)
        for state in states.values():
            if state.name not in reached:
                checker.err(state.line, f"state {state.name!r} cannot be reached from {initial!r}")
    for problem in _spinning_loops(states, registry, path):
        checker.problems.append(problem)
    for problem in _unmarked_secret_prompts(states, registry, path):
        checker.problems.append(problem)
    for state in states.values():
        for transitions in state.events.values():
            for tr in transitions:
                target = states.get(tr.dest)
                if "tries_left" in tr.if_guards and target and "reset_tries" in target.enter:
                    checker.err(
                        tr.line,
                        f"state {tr.dest!r} resets the tries on entry (reset_tries), so this "
                        "tries_left transition never runs out: reset them in an earlier state",
                    )
    if checker.problems:
        raise FlowValidationError(checker.problems)
    version = hashlib.sha256(source.encode()).hexdigest()[:12]
    return Flow(
        name=name,
        description=str(document.get("description", "")),
        version=version,
        path=path,
        initial=initial,
        defaults={k: str(v) for k, v in defaults.items()},
        states=states,
        source=source,
        languages=languages,
        routing=routing,
    )


def _routing(document: Any, checker: _Checker) -> dict[str, Any]:
    """``routing: {language_wait: 60, then: english|wait|callback}``, checked."""
    raw = document.get("routing")
    if raw is None:
        return {}
    line = _line_of(document, "routing", getattr(document, "line", 1))
    if not isinstance(raw, dict):
        checker.err(line, "routing must be a mapping: {language_wait: 60, then: english}")
        return {}
    checker.unknown_keys(raw, {"language_wait", "then"}, "routing")  # type: ignore[arg-type]
    routing: dict[str, Any] = {}
    wait = raw.get("language_wait", 60)
    if isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= 3600:
        checker.err(
            _line_of(raw, "language_wait", line), "routing language_wait: 0 to 3600 seconds"
        )
    else:
        routing["language_wait"] = wait
    then = raw.get("then", "english")
    if then not in {"english", "wait", "callback"}:
        checker.err(_line_of(raw, "then", line), "routing then: english, wait or callback")
    else:
        routing["then"] = then
    return routing


def _languages(document: Any, defaults: dict[str, Any], checker: _Checker) -> dict[str, str]:
    """``languages:`` as {language: voice}, in order; without it, the defaults' one."""
    top_line = getattr(document, "line", 1)
    raw = document.get("languages")
    if raw is None:
        language = str(defaults.get("language") or DEFAULT_LANGUAGE)
        return {language: str(defaults.get("voice") or VOICES.get(language, "Polly.Amy"))}
    line = _line_of(document, "languages", top_line)
    if not isinstance(raw, dict) or not raw:
        checker.err(
            line,
            "languages must map each language to its voice, like "
            "`languages: {en-GB: Polly.Amy, cy-GB: Polly.Gwyneth}`",
        )
        return {DEFAULT_LANGUAGE: VOICES[DEFAULT_LANGUAGE]}
    languages: dict[str, str] = {}
    for language, voice in raw.items():
        at = _line_of(raw, language, line)
        if not isinstance(language, str) or not LANGUAGE.match(language):
            checker.err(at, f"{language!r} is not a language like en-GB or cy-GB")
            continue
        if voice is None:
            voice = VOICES.get(language)
        if not isinstance(voice, str) or not voice.strip():
            checker.err(at, f"language {language} needs a voice, like Polly.Gwyneth")
            continue
        languages[language] = voice
    return languages or {DEFAULT_LANGUAGE: VOICES[DEFAULT_LANGUAGE]}


#: Verbs that make a call wait (for the caller, a timer or another party) or end it.
_WAITS = frozenset({"gather", "pause", "hangup", "reject", "dial", "enqueue"})


def _spinning_loops(
    states: dict[str, FlowState], registry: Registry, path: str
) -> list[Problem]:
    """Loops a call could go round for ever without waiting for anyone.

    From a state, ``next``, its redirect's event and the events its enter actions raise
    all move the call on at once. A cycle of such moves in which no state gathers, pauses,
    dials, queues or hangs up would spin (a redirect loop: Twilio fetching again and again).
    """
    moves: dict[str, set[str]] = {}
    for state in states.values():
        immediate = {"next"}
        for verb in state.verbs:
            if verb.kind == "redirect":
                immediate.add(verb.options.get("event", "redirect"))
        for action in state.enter:
            spec = registry.actions.get(action)
            if spec is not None:
                immediate |= set(spec.raises)
        moves[state.name] = {
            tr.dest
            for event, transitions in state.events.items()
            if event in immediate
            for tr in transitions
            if tr.dest in states
        }
    problems = []
    for component in _cycles(moves):
        if any(v.kind in _WAITS for name in component for v in states[name].verbs):
            continue
        first = min(component, key=lambda name: states[name].line)
        loop = " -> ".join([*sorted(component, key=lambda n: states[n].line), first])
        problems.append(
            Problem(
                path,
                states[first].line,
                f"states {loop} loop for ever without waiting: give one of them a gather, "
                "a pause or a hangup",
            )
        )
    return problems


#: Events that arrive with a later webhook: a secret action they lead to reads that
#: webhook's input, not the prompt's.
_LATER_EVENTS = INPUT_EVENTS | {"hangup", "dial_ended", "dequeued"}


def _unmarked_secret_prompts(
    states: dict[str, FlowState], registry: Registry, path: str
) -> list[Problem]:
    """Every gather whose input reaches an action that reads a secret (in the same
    webhook: the transitions it takes, the states they enter and what those move on to at
    once) must be marked ``secret: true``."""
    secret = {name for name, spec in registry.actions.items() if spec.secret}
    problems = []
    for state in states.values():
        gather = state.gather
        if gather is None or gather.options.get("secret"):
            continue
        reached: list[str] = []
        seen: set[str] = set()
        todo = [tr for ev in ("digits", "speech") for tr in state.events.get(ev, ())]
        while todo:
            tr = todo.pop()
            reached += sorted(secret & set(tr.actions))
            dest = states.get(tr.dest)
            if dest is None or dest.name in seen:
                continue
            seen.add(dest.name)
            reached += sorted(secret & set(dest.enter))
            if dest.gather is None:
                todo += [t for ev, ts in dest.events.items() if ev not in _LATER_EVENTS for t in ts]
        if reached:
            actions = ", ".join(dict.fromkeys(reached))
            problems.append(
                Problem(
                    path,
                    gather.line,
                    f"the gather in state {state.name!r} takes input that {actions} reads as "
                    "a secret: mark it `secret: true` (then nothing the caller gives there "
                    "is kept)",
                )
            )
    return problems


def _cycles(moves: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of ``moves`` that contain a cycle (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(moves.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in moves.get(node, ()):
                found.append(component)

    for node in sorted(moves):
        if node not in index:
            visit(node)
    return found


def load_flow(path: str | Path, registry: Registry | None = None) -> Flow:
    """Read and check one flow file."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowValidationError([Problem(str(path), 1, f"cannot read: {exc}")]) from None
    return parse_flow(source, str(path), registry)


#: Flow tests sit beside their flow: ``officer_check.yaml`` and ``officer_check.test.yaml``.
TEST_SUFFIXES = (".test.yaml", ".test.yml")


def is_test_file(path: str | Path) -> bool:
    """Whether a file holds flow tests rather than a flow."""
    return str(path).endswith(TEST_SUFFIXES)


def flow_files(path: str | Path) -> list[Path]:
    """The flow files at a path: the file itself, or every *.yaml/*.yml in a folder
    (flow tests, ``*.test.yaml``, excepted)."""
    path = Path(path)
    if path.is_dir():
        return sorted(
            p
            for p in path.iterdir()
            if p.suffix in {".yaml", ".yml"} and p.is_file() and not is_test_file(p)
        )
    return [path]


def lint_paths(
    paths: Iterable[str | Path], registry: Registry | None = None, allowed: Any = None
) -> list[Problem]:
    """Every problem in every flow file under the given paths; with ``allowed`` (an
    :class:`~callflow.allowlists.Allowed`), every destination that is not allow-listed too."""

    allowed = allowed if allowed is not None else Allowed()
    problems: list[Problem] = []
    names: dict[str, str] = {}
    for root in paths:
        files = flow_files(root)
        if not files:
            problems.append(Problem(str(root), 1, "no flow files (*.yaml) here"))
        for file in files:
            try:
                flow = load_flow(file, registry)
            except FlowValidationError as exc:
                problems.extend(exc.problems)
                continue
            problems.extend(destination_problems(flow, allowed))
            if flow.name in names:
                problems.append(
                    Problem(
                        str(file), 1, f"flow {flow.name!r} is also defined in {names[flow.name]}"
                    )
                )
            names[flow.name] = str(file)
    return problems
