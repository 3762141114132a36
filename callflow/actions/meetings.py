"""Outbound meeting calls: the meeting, who answered, the identity check, the outcome.

The call is about one meeting (the ``ref`` of its Voice URL, see callflow/meetings.py).
Nothing personal is said before the identity check passes: ``tell_meeting`` refuses to
provide the meeting's details until it has, whatever order a flow puts states in.
"""

from __future__ import annotations

import logging
from datetime import datetime

from ..context import CallContext
from ..errors import DirectoryError, FlowError
from ..meetings import IDENTITY_CHECKS, Meetings, spoken_choices, spoken_offer, spoken_when
from ..records import Meeting
from ..registry import REGISTRY
from .common import caller_number, relayed

log = logging.getLogger(__name__)

__all__ = [
    "answered_by_machine",
    "book_offered_time",
    "meeting_has_time",
    "offer_meeting_times",
    "offer_more_meeting_times",
    "tell_meeting",
]


def _meetings(ctx: CallContext) -> Meetings:
    return ctx.services.meetings


def _meeting(ctx: CallContext) -> Meeting | None:
    ref = str(ctx.data.get("ref", ""))
    return _meetings(ctx).get(ref) if ref else None


@REGISTRY.action(raises={"meeting_found", "meeting_gone"}, pure=True, world=True)
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
    when = meeting.get("when")
    ctx.values.update(
        meeting_purpose=meeting["purpose"],
        meeting_bring=meeting["bring"],
        # Empty while the customer has still to agree a time (meeting_has_time is false).
        meeting_when=spoken_when(datetime.fromisoformat(when), ctx.values.get("language"))
        if when
        else "",
        meeting_where=meeting["where"],
        officer_name=meeting["officer_name"],
        customer_name=meeting["customer_name"],
    )


@REGISTRY.guard(world=True)
def meeting_has_time(ctx: CallContext) -> bool:
    """True when the meeting already has its time (staff set it); false when the customer
    is to agree one on this call, from the officer's diary."""
    meeting = _meeting(ctx)
    return bool(meeting and meeting.get("when"))


def _offer(ctx: CallContext, more: bool) -> None:
    if not ctx.data.get("identity_confirmed"):
        raise FlowError("times offered before the identity check passed: nothing is said")
    ref = str(ctx.data.get("ref", ""))
    offered = [datetime.fromisoformat(t) for t in ctx.data.get("offered", [])]
    after = offered[-1] if more and offered else None
    times = _meetings(ctx).offer_times(ref, 3, after=after)
    if not times:
        ctx.raise_event("no_more_times" if more else "no_times")
        return
    ctx.data["offered"] = [t.isoformat() for t in times]
    ctx.values["time_choices"] = spoken_choices(times, ctx.values.get("language"))
    ctx.audit(
        "meeting.times_offered",
        meeting=ref,
        times=[t.isoformat(timespec="minutes") for t in times],
        outcome="offered",
    )
    ctx.raise_event("times_offered")


@REGISTRY.action(raises={"times_offered", "no_times"}, provides={"time_choices"}, world=True)
def offer_meeting_times(ctx: CallContext) -> None:
    """Up to three free times from the officer's diary in the next
    CALLFLOW_MEETING_HORIZON_DAYS working days, each with its key (``time_choices``);
    ``no_times`` when the diary has none."""
    _offer(ctx, more=False)


@REGISTRY.action(
    raises={"times_offered", "no_more_times"}, provides={"time_choices"}, world=True
)
def offer_more_meeting_times(ctx: CallContext) -> None:
    """The next few free times, after the last one offered; ``no_more_times`` when there
    are none (the times offered before stay on offer)."""
    _offer(ctx, more=True)


@REGISTRY.action(
    raises={"time_booked", "time_taken", "not_offered"}, provides={"meeting_when"}, world=True
)
def book_offered_time(ctx: CallContext) -> None:
    """Book the time the customer keyed (1 for the first offered, and so on) in the
    officer's diary and confirm the meeting for it (``time_booked``); ``time_taken`` when
    another call booked it first, ``not_offered`` for keys that pick no time offered:
    nothing is booked either way."""
    offered = ctx.data.get("offered", [])
    key = ctx.digits()
    if not key.isdigit() or not 1 <= int(key) <= len(offered):
        ctx.raise_event("not_offered")
        return
    at = datetime.fromisoformat(offered[int(key) - 1])
    ref = str(ctx.data.get("ref", ""))
    try:
        _meetings(ctx).agree_time(ref, ctx.call_sid, at)
    except DirectoryError as exc:
        ctx.audit("meeting.time_taken", meeting=ref, at=offered[int(key) - 1], outcome="taken")
        log.info("call %s: %s", ctx.call_sid, exc)
        ctx.data["offered"] = []
        ctx.raise_event("time_taken")
        return
    ctx.values["meeting_when"] = spoken_offer(at, ctx.values.get("language"))
    ctx.raise_event("time_booked")


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


# -- the meeting start line: an officer records the outdoor verification checks by phone


@REGISTRY.action(raises={"number_noted"}, pure=True)
def note_officer_number(ctx: CallContext) -> None:
    """Keep the identity number just keyed, for the PIN check that follows."""
    ctx.data["officer_keyed"] = ctx.digits().rstrip("#")[:12]
    ctx.data.pop("officer_verified", None)
    ctx.raise_event("number_noted")


@REGISTRY.action(raises={"officer_verified", "officer_refused", "officer_locked"}, secret=True)
def check_officer_pin(ctx: CallContext) -> None:
    """Check the PIN keyed in this webhook against the officer's (``callflow officers
    set-pin``): counted by the lockout advisers have, as slow and as silent for an unknown
    officer as for a wrong PIN. Audits ``officer.pin``."""
    number = str(ctx.data.get("officer_keyed", ""))
    check = _meetings(ctx).pins.check(
        number, ctx.digits().rstrip("#"), caller_number(ctx), relay=relayed(ctx)
    )
    ctx.audit("officer.pin", officer=number or None, outcome=check.outcome, lock=check.lock or None)
    if check.lock:
        log.error("call %s: officer %s: %s after failed PINs", ctx.call_sid, number, check.lock)
    if check.outcome == "verified":
        ctx.data["officer_verified"] = number
        ctx.raise_event("officer_verified")
    elif check.outcome == "locked":
        ctx.raise_event("officer_locked")
    else:
        ctx.raise_event("officer_refused")


def _verified_officer(ctx: CallContext) -> str:
    officer = str(ctx.data.get("officer_verified") or "")
    if not officer:
        raise FlowError("a meeting looked up before the officer's PIN was checked")
    return officer


@REGISTRY.action(
    raises={"meeting_due", "meeting_unknown", "meeting_not_due"},
    provides={"customer_name", "meeting_when", "meeting_problem"},
    world=True,
)
def find_officer_meeting(ctx: CallContext) -> None:
    """The verified officer's meeting with the six-digit code just keyed: ``meeting_due``
    when it is confirmed and starts within the hour (or started within the day);
    ``meeting_unknown`` for a code of no meeting of theirs; ``meeting_not_due`` otherwise,
    with why in ``{meeting_problem}``."""
    officer = _verified_officer(ctx)
    meeting = _meetings(ctx).for_code(officer, ctx.digits().rstrip("#"))
    if meeting is None:
        ctx.audit("meeting.start_lookup", officer=officer, outcome="unknown")
        ctx.raise_event("meeting_unknown")
        return
    language = ctx.values.get("language")
    problem = _meetings(ctx).start_problem(meeting, language)
    if problem:
        ctx.values["meeting_problem"] = problem
        ctx.audit("meeting.start_lookup", meeting=meeting["id"], officer=officer,
                  outcome="not_due")  # fmt: skip
        ctx.raise_event("meeting_not_due")
        return
    ctx.data["starting"] = meeting["id"]
    ctx.values.update(
        customer_name=meeting["customer_name"],
        meeting_when=spoken_when(datetime.fromisoformat(str(meeting["when"])), language),
    )
    ctx.raise_event("meeting_due")


def _start_checks(passed: bool) -> None:
    def action(ctx: CallContext) -> None:
        officer = _verified_officer(ctx)
        meeting_id = str(ctx.data.get("starting") or "")
        try:
            _meetings(ctx).record_start_checks(
                meeting_id, passed=passed, how="phone", by=f"officer {officer} (phone)"
            )
        except DirectoryError as exc:  # it changed meanwhile (cancelled, started on the console)
            log.info("call %s: start checks not recorded: %s", ctx.call_sid, exc)
            found = _meetings(ctx).get(meeting_id)
            language = ctx.values.get("language")
            problem = _meetings(ctx).start_problem(found, language) if found else None
            ctx.values["meeting_problem"] = problem or ""
            ctx.raise_event("not_recorded")
            return
        ctx.raise_event("recorded")

    name = "record_checks_passed" if passed else "record_checks_failed"
    action.__name__ = name
    action.__doc__ = (
        "Record that the outdoor verification checks passed: the meeting is held."
        if passed
        else "Record that the outdoor verification checks failed: the meeting ends as "
        "not verified (audited)."
    )
    REGISTRY.action(
        name, raises={"recorded", "not_recorded"}, provides={"meeting_problem"}, world=True
    )(action)


_start_checks(True)
_start_checks(False)
