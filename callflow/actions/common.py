"""Generic guards and actions any flow may use."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from ..context import CallContext
from ..registry import REGISTRY


@REGISTRY.action(provides={"tries_left"}, pure=True)
def reset_tries(ctx: CallContext) -> None:
    """Start counting this call's tries from zero."""
    ctx.data["tries"] = 0
    ctx.values["tries_left"] = str(ctx.settings.max_tries_per_call)


@REGISTRY.action(provides={"tries_left"}, pure=True)
def count_try(ctx: CallContext) -> None:
    """Count one used try on this call (a failed attempt or no input)."""
    ctx.data["tries"] = int(ctx.data.get("tries", 0)) + 1
    ctx.values["tries_left"] = str(max(ctx.settings.max_tries_per_call - ctx.data["tries"], 0))


@REGISTRY.action(provides={"tries_left"}, pure=True)
def count_silence(ctx: CallContext) -> None:
    """Count a silence (no input) as a try, except on a Relay UK call: there the relay
    assistant may need the time, so silences use up no tries until there have been
    relay_max_silences of them."""
    if ctx.data.get("relay"):
        ctx.data["silences"] = int(ctx.data.get("silences", 0)) + 1
        if ctx.data["silences"] < ctx.settings.relay_max_silences:
            return
        ctx.data["tries"] = ctx.settings.max_tries_per_call
        ctx.values["tries_left"] = "0"
        return
    count_try(ctx)


@REGISTRY.guard()
def on_relay(ctx: CallContext) -> bool:
    """True when a Relay UK assistant is on the line (the relay number or ?relay=1)."""
    return bool(ctx.data.get("relay"))


@REGISTRY.guard()
def tries_left(ctx: CallContext) -> bool:
    """True while the call has tries left (3 per call by default)."""
    return int(ctx.data.get("tries", 0)) < ctx.settings.max_tries_per_call


@REGISTRY.guard(world=True)
def was_bridged(ctx: CallContext) -> bool:
    """True when the caller left the queue because they were connected to someone."""
    return ctx.params.get("QueueResult", "") in {"bridged", "redirected-from-bridged"}


@REGISTRY.guard(world=True)
def dial_answered(ctx: CallContext) -> bool:
    """True when the dialled party answered (DialCallStatus completed or answered)."""
    return ctx.params.get("DialCallStatus", "") in {"completed", "answered"}


def _pressed(key: str) -> None:
    def guard(ctx: CallContext) -> bool:
        return ctx.digits() == key

    guard.__doc__ = f"True when the caller pressed {key} (and nothing else)."
    name = {"*": "star", "#": "hash"}.get(key, key)
    REGISTRY.guard(f"pressed_{name}")(guard)


for _key in "0123456789*#":
    _pressed(_key)


@REGISTRY.action(pure=True)
def use_welsh(ctx: CallContext) -> None:
    """Serve the rest of the call in Welsh (a caller who pressed for Welsh)."""
    ctx.values["language"] = "cy-GB"


@REGISTRY.action(pure=True)
def use_english(ctx: CallContext) -> None:
    """Serve the rest of the call in English."""
    ctx.values["language"] = "en-GB"


@REGISTRY.guard()
def in_welsh(ctx: CallContext) -> bool:
    """True when the call is being served in Welsh."""
    return ctx.values.get("language") == "cy-GB"


_LONDON = ZoneInfo("Europe/London")
#: Weekday names as said after "eto" (soft mutation: ddydd Llun).
_DAYS_CY = ["ddydd Llun", "ddydd Mawrth", "ddydd Mercher", "ddydd Iau", "ddydd Gwener",
            "ddydd Sadwrn", "ddydd Sul"]  # fmt: skip


@REGISTRY.guard(world=True)
def line_open(ctx: CallContext) -> bool:
    """True while the VSTRS line is open (its hours, bank holidays and closures)."""
    now = datetime.fromtimestamp(ctx.now(), _LONDON)
    return ctx.services.staff.calendar("line").is_open(now)


@REGISTRY.action(provides={"line_reopens"}, pure=True)
def note_line_hours(ctx: CallContext) -> None:
    """When the VSTRS line opens again, in words for a prompt, in the call's language."""
    now = datetime.fromtimestamp(ctx.now(), _LONDON)
    reopens = ctx.services.staff.calendar("line").next_open(now)
    if reopens is None:
        ctx.values["line_reopens"] = ""
    elif ctx.values.get("language") == "cy-GB":
        ctx.values["line_reopens"] = (
            f"{_DAYS_CY[reopens.weekday()]} am {reopens.hour % 12 or 12}"
            f"{reopens.strftime(':%M') if reopens.minute else ''}"
            f" {'y bore' if reopens.hour < 12 else 'y prynhawn'}"
        )
    else:
        minutes = reopens.strftime(":%M") if reopens.minute else ""
        suffix = "am" if reopens.hour < 12 else "pm"
        ctx.values["line_reopens"] = f"{reopens:%A} at {reopens.hour % 12 or 12}{minutes}{suffix}"


@REGISTRY.guard(world=True)
def line_closure_on(ctx: CallContext) -> bool:
    """True while the line is closed at short notice (`callflow closure start`)."""
    return ctx.services.staff.closure(ctx.now()) is not None


@REGISTRY.action(provides={"closure_message"}, pure=True)
def note_closure(ctx: CallContext) -> None:
    """The closure's message for the prompt, in the call's language (else English)."""
    closure = ctx.services.staff.closure(ctx.now()) or {}
    messages = closure.get("messages", {})
    language = ctx.values.get("language") or "en-GB"
    ctx.values["closure_message"] = messages.get(language) or messages.get("en-GB", "")


def caller_number(ctx: CallContext) -> str:
    """The caller's number the lockout counts attempts against (on a call the service
    placed, such as a call-back, the number it rang)."""
    return (ctx.data.get("remote") or ctx.session.from_number or "unknown")[:32]


def relayed(ctx: CallContext) -> bool:
    """Whether the caller ID is the relay platform's (CALLFLOW_RELAY_NUMBERS): shared by
    every Relay UK user, so the lockout never throttles it as one caller, nor knows it
    (docs/lockout.md, the relay row)."""
    if ctx.data.get("remote"):
        return False  # a call the service placed: the number it rang
    return bool(ctx.session.from_number) and ctx.session.from_number in ctx.settings.relay_numbers
