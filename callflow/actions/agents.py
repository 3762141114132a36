"""Connecting a verified VSTRS caller to a VSTRS agent (see callflow.vstrs)."""

from __future__ import annotations

from ..context import CallContext
from ..registry import REGISTRY
from ..vstrs import conference_name


@REGISTRY.action(provides={"conference"}, connects=True)
def connect_to_agent(ctx: CallContext) -> None:
    """Open the caller's own conference and ring the longest-idle available VSTRS agent."""
    vstrs = ctx.services.vstrs
    name = conference_name(ctx.call_sid)
    ctx.values["conference"] = name
    verified = ctx.session.verified
    if ctx.links is None or verified is None:
        return
    # Their place in the queue: when they first rang (on a call-back's call, when they
    # first rang before it).
    arrived_at, callback_id = ctx.session.started_at, None
    ref = ctx.data.get("callback")
    if ref:
        queued = ctx.services.callbacks.in_queue(
            str(ref), ctx.call_sid, verified["adviser_number"]
        )
        if queued is not None:
            arrived_at, callback_id = float(queued["arrived_at"]), queued["id"]
    vstrs.start(
        ctx.call_sid,
        verified,
        ctx.data.get("remote") or ctx.session.from_number,
        ctx.links,
        ctx.values.get("language") or "en-GB",
        relay=bool(ctx.data.get("relay")),
        routing=ctx.data.get("routing"),
        arrived_at=arrived_at,
        callback_id=callback_id,
    )
