"""Lines where a caller checks something: a rate limit per calling number, officer look-up.

The officer verification line (flows/officer_check.yaml) uses both: a customer keys the
identity number from a visiting officer's card or letter and hears whether a Debt
Management officer of that name exists and is active. Nothing else is said, no customer
data is touched, and every check is audited.
"""

from __future__ import annotations

from typing import Any

from ..context import CallContext
from ..registry import REGISTRY

__all__ = ["limit_caller_checks", "look_up_officer", "spoken_digits"]


def spoken_digits(digits: str) -> str:
    """``123456`` -> ``1 2 3 4 5 6``: text-to-speech reads each digit."""
    return " ".join(digits)


@REGISTRY.action(raises={"within_limit", "rate_limited"}, world=True)
def limit_caller_checks(ctx: CallContext) -> None:
    """Count one check for the calling number on this flow; over the limit, refuse.

    The limit is ``CALLFLOW_CALLER_CHECK_LIMIT`` checks (default 5) per
    ``CALLFLOW_CALLER_CHECK_WINDOW`` seconds (default 3600), across calls. A withheld
    number shares one allowance with every other withheld number.
    """
    settings = ctx.settings
    now = ctx.now()
    number = ctx.session.from_number or "withheld"
    key = f"{ctx.session.flow}:{number}"
    verdict: dict[str, bool] = {}

    def count(doc: dict[str, Any] | None) -> dict[str, Any]:
        if doc is None or now - doc["start"] >= settings.caller_check_window_seconds:
            doc = {"start": now, "count": 0}
        allowed = doc["count"] < settings.caller_check_limit
        verdict["allowed"] = allowed
        return {**doc, "count": doc["count"] + 1} if allowed else doc

    ctx.services.store.update_doc(
        "caller_checks", key, count, ttl_seconds=settings.caller_check_window_seconds
    )
    if verdict["allowed"]:
        ctx.raise_event("within_limit")
        return
    ctx.audit("caller.rate_limited", flow=ctx.session.flow, outcome="rate_limited")
    ctx.raise_event("rate_limited")


@REGISTRY.action(
    raises={"officer_confirmed", "officer_not_confirmed"},
    provides={"officer_name", "officer_number"},
    world=True,
)
def look_up_officer(ctx: CallContext) -> None:
    """Look up the identity number just keyed: an active Debt Management officer or not.

    Confirmed: ``{officer_name}`` and ``{officer_number}`` (digit by digit) are set.
    Unknown, inactive or malformed numbers all raise ``officer_not_confirmed``, and the
    caller hears nothing more; the audit entry says which.
    """
    keyed = ctx.digits().rstrip("#")
    officer = ctx.services.staff.officer(keyed) if keyed.isdigit() else None
    if officer is None:
        outcome = "unknown" if keyed.isdigit() else "malformed"
    else:
        outcome = "confirmed" if officer.active else "inactive"
    ctx.audit(
        "officer.check",
        officer=keyed[:12] if keyed.isdigit() else None,
        flow=ctx.session.flow,
        outcome=outcome,
    )
    ctx.values["officer_number"] = spoken_digits(keyed[:12])
    if officer is not None and officer.active:
        ctx.values["officer_name"] = officer.name
        ctx.raise_event("officer_confirmed")
    else:
        ctx.values.pop("officer_name", None)
        ctx.raise_event("officer_not_confirmed")
