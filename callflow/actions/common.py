"""Generic guards and actions any flow may use."""

from __future__ import annotations

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


@REGISTRY.guard()
def was_bridged(ctx: CallContext) -> bool:
    """True when the caller left the queue because they were connected to someone."""
    return ctx.params.get("QueueResult", "") in {"bridged", "redirected-from-bridged"}


@REGISTRY.guard()
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
