"""Outbound meeting calls: the meeting, who answered, the identity check, the outcome.

The call is about one meeting (the ``ref`` of its Voice URL, see callflow/meetings.py).
Nothing personal is said before the identity check passes: ``tell_meeting`` refuses to
provide the meeting's details until it has, whatever order a flow puts states in.
"""

from __future__ import annotations

from datetime import datetime

from ..context import CallContext
from ..errors import FlowError
from ..meetings import IDENTITY_CHECKS, Meetings, spoken_when
from ..records import Meeting
from ..registry import REGISTRY

__all__ = ["answered_by_machine", "tell_meeting"]


def _meetings(ctx: CallContext) -> Meetings:
    return ctx.services.meetings


def _meeting(ctx: CallContext) -> Meeting | None:
    ref = str(ctx.data.get("ref", ""))
    return _meetings(ctx).get(ref) if ref else None


@REGISTRY.action(raises={"meeting_found", "meeting_gone"}, pure=True)
def load_meeting(ctx: CallContext) -> None:
    """The meeting this call is about; ``meeting_gone`` when it is unknown or no longer open."""
    meeting = _meeting(ctx)
    if meeting is None or meeting["state"] != "calling":
        ctx.raise_event("meeting_gone")
        return
    ctx.raise_event("meeting_found")


@REGISTRY.guard()
def answered_by_machine(ctx: CallContext) -> bool:
    """True when Twilio's answering machine detection says a machine or fax answered."""
    answered_by = ctx.params.get("AnsweredBy", "")
    return answered_by.startswith("machine") or answered_by == "fax"


def _identity_check(check: str) -> None:
    def action(ctx: CallContext) -> None:
        meeting = _meeting(ctx)
        if meeting is None:
            ctx.raise_event("identity_failed")
            return
        tries = int(ctx.data.get("identity_tries", 0)) + 1
        ctx.data["identity_tries"] = tries
        matched = _meetings(ctx).identity_matches(meeting, check, ctx.digits().rstrip("#"))
        if matched:
            ctx.data["identity_confirmed"] = True
            outcome = "confirmed"
        elif matched is None:
            outcome = "no_such_check"
        elif tries >= ctx.settings.max_tries_per_call:
            outcome = "failed"
        else:
            outcome = "mismatch"
        ctx.audit(
            "meeting.identity_check",
            meeting=meeting["id"],
            check=check,
            attempt=tries,
            outcome=outcome,
        )
        if matched:
            ctx.raise_event("identity_confirmed")
        elif outcome == "mismatch":
            ctx.raise_event("identity_mismatch")
        else:
            ctx.raise_event("identity_failed")

    action.__name__ = f"check_{check}"
    action.__doc__ = (
        f"Check the keyed {IDENTITY_CHECKS[check]} against the meeting's "
        "(3 tries a call by default, then identity_failed)."
    )
    REGISTRY.action(
        f"check_{check}",
        raises={"identity_confirmed", "identity_mismatch", "identity_failed"},
        secret=True,
    )(action)


_identity_check("date_of_birth")
_identity_check("postcode")


@REGISTRY.action(
    provides={
        "meeting_purpose",
        "meeting_bring",
        "meeting_when",
        "meeting_where",
        "officer_name",
        "customer_name",
    }
)
def tell_meeting(ctx: CallContext) -> None:
    """The meeting's details for prompts; only once the identity check has passed."""
    if not ctx.data.get("identity_confirmed"):
        raise FlowError("tell_meeting before the identity check passed: nothing is said")
    meeting = _meeting(ctx)
    if meeting is None:
        raise FlowError("the meeting is gone")
    ctx.values.update(
        meeting_purpose=meeting["purpose"],
        meeting_bring=meeting["bring"],
        meeting_when=spoken_when(
            datetime.fromisoformat(meeting["when"]), ctx.values.get("language")
        ),
        meeting_where=meeting["where"],
        officer_name=meeting["officer_name"],
        customer_name=meeting["customer_name"],
    )


def _outcome(outcome: str, doc: str) -> None:
    def action(ctx: CallContext) -> None:
        ref = str(ctx.data.get("ref", ""))
        _meetings(ctx).record_outcome(ref, ctx.call_sid, outcome)

    action.__name__ = f"meeting_{outcome}"
    action.__doc__ = doc
    REGISTRY.action(f"meeting_{outcome}")(action)


_outcome("confirmed", "Record that the customer confirmed the meeting.")
_outcome("rearrange", "Record that the customer wants to rearrange: staff call them back.")
_outcome(
    "identity_failed",
    "Record that the identity check failed: no more calls; staff write to the customer.",
)
