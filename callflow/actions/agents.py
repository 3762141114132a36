"""Connecting a verified VSTRS caller to a VSTRS agent (see callflow.vstrs)."""

from __future__ import annotations

from ..context import CallContext
from ..registry import REGISTRY
from ..vstrs import conference_name


@REGISTRY.action(provides={"conference"})
def connect_to_agent(ctx: CallContext) -> None:
    """Open the caller's own conference and ring the longest-idle available VSTRS agent."""
    vstrs = ctx.services.vstrs
    name = conference_name(ctx.call_sid)
    ctx.values["conference"] = name
    if vstrs is None or ctx.links is None or ctx.session.verified is None:
        return
    vstrs.start(
        ctx.call_sid,
        ctx.session.verified,
        ctx.session.from_number,
        ctx.links,
        ctx.values.get("language") or "en-GB",
        relay=bool(ctx.data.get("relay")),
        routing=ctx.data.get("routing"),
    )
