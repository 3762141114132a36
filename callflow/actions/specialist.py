"""The specialist's side of a hand-off (flows/specialist_handoff.yaml).

The specialist hears who is calling, keys the SEES ID the VSTRS agent gives them, then
accepts or declines. The hand-off they are about is the record named in the call's
``ref`` (put in the Voice URL when the service rang them).
"""

from __future__ import annotations

from ..context import CallContext
from ..handoff import HandOffs
from ..registry import REGISTRY

MAX_SEES_TRIES = 3


def _handoffs(ctx: CallContext) -> HandOffs:
    return ctx.services.handoffs


def _ref(ctx: CallContext) -> str:
    return str(ctx.data.get("ref", ""))


@REGISTRY.action(
    raises={"ready", "gone"}, provides={"organisation_name", "team_name"}, pure=True, world=True
)
def load_handoff(ctx: CallContext) -> None:
    """Find the hand-off this leg was rung for; ``gone`` if it is no longer waiting."""
    handoff = _handoffs(ctx).for_specialist(_ref(ctx))
    if handoff is None:
        ctx.raise_event("gone")
        return
    ctx.values["organisation_name"] = handoff["organisation_name"]
    ctx.values["team_name"] = handoff["team_name"]
    ctx.data["sees_tries"] = 0
    ctx.raise_event("ready")


@REGISTRY.action(
    raises={"matched", "mismatch", "too_many", "unclaimed"}, secret=True, world=True
)
def check_sees_id(ctx: CallContext) -> None:
    """Check the SEES ID keyed against the agent on the call (3 tries, then the hand-off
    fails). ``unclaimed``: it rang a team number and no specialist has taken it on their
    console yet (the check needs to know who is taking the call; not a try)."""
    outcome = _handoffs(ctx).check_sees_id(_ref(ctx), ctx.digits(), ctx.call_sid)
    if outcome == "unclaimed":
        ctx.raise_event("unclaimed")
        return
    tries = int(ctx.data.get("sees_tries", 0)) + 1
    ctx.data["sees_tries"] = tries
    if outcome == "match":
        ctx.raise_event("matched")
    elif tries >= MAX_SEES_TRIES:
        _handoffs(ctx).fail(_ref(ctx), "sees_id_mismatch", ctx.links)
        ctx.raise_event("too_many")
    else:
        ctx.raise_event("mismatch")


@REGISTRY.action(raises={"joined", "gone"}, provides={"conference"}, connects=True, world=True)
def accept_handoff(ctx: CallContext) -> None:
    """The specialist accepts: they join the caller's conference (the caller still held)."""
    handoff = _handoffs(ctx).accept(_ref(ctx), ctx.call_sid)
    if handoff is None:
        ctx.raise_event("gone")
        return
    ctx.values["conference"] = handoff["conference"]
    ctx.raise_event("joined")


@REGISTRY.action()
def decline_handoff(ctx: CallContext) -> None:
    """The specialist declines (or gives no answer): the caller goes back to the agent."""
    _handoffs(ctx).fail(_ref(ctx), "declined", ctx.links)
