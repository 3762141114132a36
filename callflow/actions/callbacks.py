"""Call-backs (callflow/callbacks.py): offering one to a verified caller who would wait, and
the call-back's own call, which verifies the adviser again before they join the queue.

The call-back's call is about one call-back (the ``ref`` of its Voice URL). It is honoured
only while it is that call-back's current try, and only the adviser it is for can be
verified on it (any other adviser number fails like an unknown one: nothing tells the
person who answered which numbers exist).
"""

from __future__ import annotations

from ..callbacks import Callbacks, dialable
from ..context import CallContext
from ..language import DEFAULT
from ..records import Callback
from ..registry import REGISTRY

__all__ = ["agents_busy", "can_call_back", "load_callback", "request_callback"]


def _callbacks(ctx: CallContext) -> Callbacks:
    return ctx.services.callbacks


def _current(ctx: CallContext) -> Callback | None:
    ref = str(ctx.data.get("ref", ""))
    return _callbacks(ctx).current(ref, ctx.call_sid) if ref else None


@REGISTRY.action(raises={"callback_found", "callback_gone"}, pure=True, world=True)
def load_callback(ctx: CallContext) -> None:
    """The call-back this call was placed for; ``callback_gone`` when it is not this call's
    to make (unknown, cancelled, settled, or another try's)."""
    doc = _current(ctx)
    if doc is None or doc["status"] != "calling":
        ctx.raise_event("callback_gone")
        return
    ctx.data["callback"] = doc["id"]
    # Only this adviser can be verified on the call.
    ctx.data["callback_for"] = doc["adviser_number"]
    # The number rung (the adviser's registered one): the lockout counts attempts against it.
    ctx.data["remote"] = ctx.session.to_number
    ctx.raise_event("callback_found")


@REGISTRY.action()
def callback_not_verified(ctx: CallContext) -> None:
    """Whoever answered the call-back was not verified: this try failed (retried later)."""
    ref = ctx.data.get("callback")
    if ref:
        _callbacks(ctx).not_verified(str(ref), ctx.call_sid)
        ctx.audit("callback.not_verified", callback=ref, outcome="not_verified")


@REGISTRY.action()
def callback_machine(ctx: CallContext) -> None:
    """An answering machine took the call-back: nothing is said; this try failed."""
    ref = ctx.data.get("callback")
    if ref:
        _callbacks(ctx).machine(str(ref), ctx.call_sid)


@REGISTRY.guard(world=True)
def agents_busy(ctx: CallContext) -> bool:
    """True when a verified caller would wait: no agent who speaks the call's language is
    free for them, counting the callers who rang before them."""
    vstrs = ctx.services.vstrs
    language = ctx.values.get("language") or DEFAULT
    return vstrs.would_wait(ctx.call_sid, language, ctx.session.started_at)


@REGISTRY.guard(world=True)
def can_call_back(ctx: CallContext) -> bool:
    """True when the verified caller can be offered a call-back: call-backs are being
    placed (their worker runs), and the adviser has a registered number to ring."""
    callbacks = ctx.services.callbacks
    verified = ctx.session.verified
    if verified is None or ctx.data.get("callback"):
        return False
    if not callbacks.dispatcher_running():
        return False
    adviser = ctx.services.directory.get(verified["adviser_number"])
    return adviser is not None and dialable(adviser.phone) is not None


@REGISTRY.action(raises={"booked", "not_booked"}, connects=True, world=True)
def request_callback(ctx: CallContext) -> None:
    """The verified caller asked for a call-back: note it, keeping their place (when they
    first rang); ``not_booked`` when one cannot be made."""
    verified = ctx.session.verified
    if verified is None:
        ctx.raise_event("not_booked")
        return
    noted = _callbacks(ctx).note(
        ctx.call_sid,
        verified,
        arrived_at=ctx.session.started_at,
        language=ctx.values.get("language") or DEFAULT,
        relay=bool(ctx.data.get("relay")),
        routing=ctx.data.get("routing"),
        reason="asked",
    )
    ctx.raise_event("booked" if noted is not None else "not_booked")
