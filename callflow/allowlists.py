"""Allow-lists: where flows may send callers and what they may play (ARCHITECTURE.md rule 11).

Designers change what callers hear, not where calls go. Every number or client a flow
may dial, every caller ID it may present, every conference or queue name it may put a
caller in and every media URL it may play comes from lists an admin keeps
(``callflow allow add|remove|list``, audited). Lint reports anything else with file and
line; publishing and approving refuse it; the service will not make such a version live.

A destination the service itself chooses for each call (the ``{conference}`` value: the
caller's own conference) needs no entry: it is not the designer's to choose.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import DirectoryError, Problem

if TYPE_CHECKING:
    from .audit import Audit
    from .clock import Clock
    from .flowspec import Flow, Verb
    from .store.base import Store

__all__ = [
    "KINDS",
    "SERVICE_CHOSEN",
    "AllowLists",
    "Allowed",
    "destination_problems",
    "normalise_url",
    "remove_dot_segments",
]

NAMESPACE = "allowlists"
DOC = "current"
#: Each list, what an entry looks like, and how it reads in a problem.
KINDS: dict[str, tuple[re.Pattern[str], str]] = {
    "number": (re.compile(r"^\+[1-9][0-9]{6,14}$"), "a number to dial, like +441632960200"),
    "client": (re.compile(r"^[A-Za-z0-9_.-]{1,64}$"), "a Twilio client identity"),
    "caller_id": (re.compile(r"^\+[1-9][0-9]{6,14}$"), "a caller ID to present, E.164"),
    "conference": (re.compile(r"^[A-Za-z0-9_.-]{1,64}$"), "a conference name"),
    "queue": (re.compile(r"^[A-Za-z0-9_.-]{1,64}$"), "a queue name"),
    "media": (
        re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s?#]*)?$"),
        "an https:// URL, or a prefix of them ending in /",
    ),
}
#: Values the service fills in itself for each call: never the designer's choice.
SERVICE_CHOSEN = frozenset({"conference"})


@dataclass(frozen=True)
class Allowed:
    """A snapshot of the allow-lists."""

    entries: dict[str, frozenset[str]] = field(default_factory=dict)
    #: A sandbox (flow tests, the softphone) reaches nothing real: everything is allowed.
    everything: bool = False

    @classmethod
    def in_sandbox(cls) -> Allowed:
        """For a sandboxed service, whose calls all stay inside the simulator."""
        return cls(everything=True)

    def has(self, kind: str, value: str) -> bool:
        """Whether ``value`` is allowed as a ``kind``."""
        if self.everything:
            return True
        listed = self.entries.get(kind, frozenset())
        if kind != "media":
            return value in listed
        # A media URL is compared normalised (RFC 3986), as the fetcher will see it; one
        # that cannot be normalised safely is never allowed. An entry is a URL, or a prefix
        # ending in "/" (so https://a.example/ never lets https://a.example.evil.test in).
        try:
            url = normalise_url(value)
        except ValueError:
            return False
        return any(
            url == entry or (entry.endswith("/") and url.startswith(entry)) for entry in listed
        )

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> Allowed:
        lists = (doc or {}).get("lists", {})
        entries = {}
        for kind in KINDS:
            values = [e["value"] for e in lists.get(kind, [])]
            if kind == "media":
                values = [v for v in map(_normalised_or_none, values) if v]
            entries[kind] = frozenset(values)
        return cls(entries)


#: Unreserved characters (RFC 3986 2.3): their percent-encodings mean the same URL.
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
#: Encoded in a path they hide a segment boundary or a dot-segment from a prefix check.
_HIDING = {"2f": "an encoded slash (%2F)", "2e": "an encoded dot (%2E)",
           "5c": "an encoded backslash (%5C)"}  # fmt: skip


def remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4: ``/a/b/../c/./d`` is ``/a/c/d``; ``..`` never climbs above ``/``."""
    out: list[str] = []
    rest = path
    while rest:
        if rest.startswith("../"):
            rest = rest[3:]
        elif rest.startswith(("./", "/./")):
            rest = rest[2:]
        elif rest == "/.":
            rest = "/"
        elif rest.startswith("/../"):
            rest = rest[3:]
            if out:
                out.pop()
        elif rest == "/..":
            rest = "/"
            if out:
                out.pop()
        elif rest in {".", ".."}:
            rest = ""
        else:
            start = 1 if rest.startswith("/") else 0
            end = rest.find("/", start)
            end = len(rest) if end < 0 else end
            out.append(rest[:end])
            rest = rest[end:]
    return "".join(out)


def normalise_url(url: str) -> str:
    """A media URL as the fetcher will see it (RFC 3986 6.2.2): scheme and host in lower
    case, the default port dropped, unreserved characters decoded, other escapes in upper
    case, dot-segments removed. ValueError, saying why, for what is refused: not https,
    userinfo, an encoded slash, dot or backslash (or a backslash) in the path, a query or
    fragment, a malformed escape."""
    from urllib.parse import urlsplit

    text = (url or "").strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc})") from None
    if parts.scheme.lower() != "https":
        raise ValueError("not an https:// URL")
    if "@" in parts.netloc:
        raise ValueError("it carries userinfo (user@host)")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise ValueError("it has a query or fragment")
    host = (parts.hostname or "").lower()
    if not host or not re.fullmatch(r"[a-z0-9.-]+", host):
        raise ValueError("no host name")
    path = parts.path or "/"
    if "\\" in path:
        raise ValueError("a backslash in the path")
    if "%" in path and not all(
        len(chunk) >= 2 and re.fullmatch(r"[0-9A-Fa-f]{2}", chunk[:2])
        for chunk in path.split("%")[1:]
    ):
        raise ValueError("a malformed percent-escape in the path")

    def escape(match: re.Match[str]) -> str:
        code = match.group(1).lower()
        if code in _HIDING:
            raise ValueError(f"{_HIDING[code]} in the path")
        char = chr(int(code, 16))
        return char if char in _UNRESERVED else "%" + code.upper()

    path = remove_dot_segments(_PERCENT.sub(escape, path)) or "/"
    netloc = host if port in (None, 443) else f"{host}:{port}"
    return f"https://{netloc}{path}"


def _normalised_or_none(url: str) -> str | None:
    try:
        return normalise_url(url)
    except ValueError:
        return None


def _fields(text: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError:
        return ["?"]


def _verbs(flow: Flow) -> Iterator[Verb]:
    for state in flow.states.values():
        for verb in state.verbs:
            yield verb
            yield from verb.options.get("prompt", ()) or ()


def destination_problems(flow: Flow, allowed: Allowed) -> list[Problem]:
    """Every destination or media URL in ``flow`` that is not allow-listed, with its line."""
    problems: list[Problem] = []

    def check(kind: str, value: Any, verb: Verb, what: str) -> None:
        if not isinstance(value, str):
            return
        names = _fields(value)
        if names:
            own = kind in {"conference", "queue"} and names[0] in SERVICE_CHOSEN
            if own and value.strip() == "{" + names[0] + "}":
                return  # the service's own per-call name
            problems.append(
                Problem(
                    flow.path,
                    verb.line,
                    f"{what} {value!r} is built from call values: write the {kind} out "
                    "(an admin allow-lists it: callflow allow add "
                    f"{kind} VALUE)",
                )
            )
            return
        if kind == "media" and not allowed.everything:
            try:
                normalise_url(value)
            except ValueError as exc:
                problems.append(
                    Problem(flow.path, verb.line, f"{what} {value!r} is refused: {exc}")
                )
                return
        if not allowed.has(kind, value):
            problems.append(
                Problem(
                    flow.path,
                    verb.line,
                    f"{what} {value!r} is not on the {kind} allow-list (an admin adds it: "
                    f"callflow allow add {kind} {value})",
                )
            )

    for verb in _verbs(flow):
        options = verb.options
        if verb.kind == "play" and "url" in options:
            check("media", options["url"], verb, "play url")
        elif verb.kind == "enqueue":
            check("queue", options.get("queue"), verb, "enqueue queue")
            if "wait_url" in options:
                check("media", options["wait_url"], verb, "enqueue wait_url")
        elif verb.kind == "dial":
            for option, kind in (
                ("number", "number"),
                ("client", "client"),
                ("conference", "conference"),
                ("queue", "queue"),
                ("caller_id", "caller_id"),
                ("wait_url", "media"),
            ):
                if option in options:
                    check(kind, options[option], verb, f"dial {option}")
    return problems


class AllowLists:
    """The allow-lists in the store: one document, changed atomically, every change audited."""

    def __init__(self, store: Store, audit: Audit, clock: Clock) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock

    def snapshot(self) -> Allowed:
        """The lists as they are now."""
        return Allowed.from_doc(self.store.get_doc(NAMESPACE, DOC))

    def revision(self) -> int:
        """A number that changes with every change to the lists."""
        return int((self.store.get_doc(NAMESPACE, DOC) or {}).get("revision", 0))

    def entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The entries (of one list, or all), each with its kind, who added it and why."""
        lists = (self.store.get_doc(NAMESPACE, DOC) or {}).get("lists", {})
        kinds: Iterable[str] = [kind] if kind else KINDS
        return [{"kind": k, **e} for k in kinds for e in lists.get(k, [])]

    @staticmethod
    def check(kind: str, value: str) -> str:
        """An entry, checked (raises DirectoryError saying what one looks like)."""
        if kind not in KINDS:
            raise DirectoryError(f"kind: one of {', '.join(KINDS)}")
        pattern, looks = KINDS[kind]
        value = (value or "").strip()
        if not pattern.match(value):
            raise DirectoryError(f"{kind}: {looks}")
        if kind == "media":
            try:
                value = normalise_url(value)
            except ValueError as exc:
                raise DirectoryError(f"media: {exc}") from None
        return value

    def add(self, kind: str, value: str, by: str, note: str = "") -> dict[str, Any]:
        """Allow one more destination or media URL (audited)."""
        value = self.check(kind, value)
        entry = {"value": value, "by": by, "at": self.clock.now(), "note": note[:200]}

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            doc = doc or {"lists": {}, "revision": 0}
            current = doc["lists"].get(kind, [])
            if any(e["value"] == value for e in current):
                return None
            lists = {**doc["lists"], kind: [*current, entry]}
            return {"lists": lists, "revision": doc["revision"] + 1}

        if not self.store.change_doc(NAMESPACE, DOC, change).written:
            raise DirectoryError(f"{kind} {value} is allowed already")
        self.audit.record("allowlist.added", list=kind, value=value, by=by, outcome="added")
        return entry

    def remove(self, kind: str, value: str, by: str) -> None:
        """Take an entry off a list (audited). Versions already live keep it until replaced."""
        value = self.check(kind, value)

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None:
                return None
            current = doc["lists"].get(kind, [])
            kept = [e for e in current if e["value"] != value]
            if len(kept) == len(current):
                return None
            return {"lists": {**doc["lists"], kind: kept}, "revision": doc["revision"] + 1}

        if not self.store.change_doc(NAMESPACE, DOC, change).written:
            raise DirectoryError(f"{kind} {value} is not on the allow-list")
        self.audit.record("allowlist.removed", list=kind, value=value, by=by, outcome="removed")
