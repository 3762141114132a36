"""Face-to-face meetings with customers, and the outbound calls that arrange them.

Debt Management's guidance (DMBM510150) says both sides of a meeting should be clear on
what it is about, what to bring or provide, when and where it is, and the name of the
officer the customer will meet. A meeting is stored here; an outbound call (through the
Twilio adapter, so the simulator stands in) runs a flow (``meeting_call`` by default)
that checks it is the right person before anything personal is said, tells them, and
records what they want: confirmed, or rearrange (a callback). An attempt that reaches
nobody (no answer, busy, an answering machine, silence) is retried on a schedule; when
the schedule runs out the meeting is marked unreachable for staff to write instead.

States: ``scheduled`` (a call is due at ``next_call_at``) -> ``calling`` -> ``confirmed``
| ``rearrange`` | ``identity_failed`` | ``unreachable`` | back to ``scheduled``;
``cancelled`` from any open state. Every change is audited.

The identity check values (date of birth, postcode digits) are kept only as keyed hashes,
compared in constant time, and never shown anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from .context import Services, ServiceUser
from .diary import Diary
from .errors import CallflowError, DirectoryError, FieldErrors
from .grades import at_least, grade_label
from .library import FlowLibrary
from .links import ServiceLinks
from .officer_pins import OfficerPins
from .outbound import OutboundCalls, attempt
from .purposes import MeetingPurposes
from .records import Meeting

__all__ = [
    "IDENTITY_CHECKS",
    "OPEN_STATES",
    "OUTDOORS",
    "PLACES",
    "RISK_OUTCOMES",
    "Meetings",
    "held_back",
    "spoken_choices",
    "spoken_offer",
    "spoken_when",
]

log = logging.getLogger(__name__)

LONDON = ZoneInfo("Europe/London")
MEETING_ID = re.compile(r"^m-[0-9a-f]{12}$")
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
REFERENCE = re.compile(r"^[A-Za-z0-9/ -]{1,30}$")
POSTCODE = re.compile(r"^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}$")
OPEN_STATES = frozenset({"needs_risk_assessment", "scheduled", "calling"})
#: Where a meeting is held; the last two are outdoor visits (DMBM510150: "a risk
#: assessment prior to any outdoor visit").
PLACES = {
    "hmrc_office": "an HMRC building",
    "customer_business": "the customer's business address",
    "customer_home": "the customer's home address",
}
OUTDOORS = frozenset({"customer_business", "customer_home"})
#: How an officer records the checks at the start of a meeting.
START_CHECK_WAYS = ("console", "phone", "cli", "api")
#: When a meeting's start may be recorded: from an hour before its time to a day after.
START_EARLY_SECONDS = 3600
START_LATE_SECONDS = 24 * 3600
#: What a risk assessment may conclude.
RISK_OUTCOMES = {
    "proceed": "Go ahead",
    "proceed_with_precautions": "Go ahead with the precautions recorded",
    "do_not_visit": "Do not visit: meet in an HMRC building instead",
}
#: How long a meeting's record (the customer's name and number) is kept: while it is open,
#: at most a year (a backstop); once it is settled (confirmed, rearrange, identity failed,
#: unreachable, cancelled), CALLFLOW_MEETING_RETENTION_DAYS (90) from then. See
#: docs/retention.md.
OPEN_TTL = 366 * 24 * 3600
FINAL_OUTCOMES = frozenset({"confirmed", "rearrange", "identity_failed"})
#: Ends of a meeting that will not take place: its time goes back to the officer's diary.
GIVES_TIME_BACK = frozenset(
    {"cancelled", "not_safe", "identity_failed", "unreachable", "rearrange"}
)
#: The identity checks a meeting flow may use, and how the customer keys each.
IDENTITY_CHECKS = {
    "date_of_birth": "date of birth (eight digits: day, month, year)",
    "postcode": "numbers in the postcode (SW1A 2AA: 12)",
}
#: How long one meeting call may hold the meeting before another worker may try.
CALL_CLAIM_SECONDS = 120
RING_SECONDS = 30
#: A call still "calling" after this long with no word from Twilio: ask Twilio how it ended.
STUCK_SECONDS = 15 * 60


WELSH_DAYS = ["Dydd Llun", "Dydd Mawrth", "Dydd Mercher", "Dydd Iau", "Dydd Gwener",
              "Dydd Sadwrn", "Dydd Sul"]  # fmt: skip
WELSH_MONTHS = ["Ionawr", "Chwefror", "Mawrth", "Ebrill", "Mai", "Mehefin", "Gorffennaf",
                "Awst", "Medi", "Hydref", "Tachwedd", "Rhagfyr"]  # fmt: skip


def _clock(when: datetime) -> str:
    """The hour on a 12-hour clock, with its minutes when there are any: ``10:30``, ``2``."""
    return f"{when.hour % 12 or 12}" + (f":{when.minute:02d}" if when.minute else "")


def _welsh(when: datetime, year: bool) -> str:
    """``Dydd Mercher 2 Rhagfyr [2026] am 10:30 y bore``."""
    part = "y bore" if when.hour < 12 else "y prynhawn" if when.hour < 18 else "yr hwyr"
    day, month = WELSH_DAYS[when.weekday()], WELSH_MONTHS[when.month - 1]
    return f"{day} {when.day} {month}{f' {when.year}' if year else ''} am {_clock(when)} {part}"


def spoken_when(when: datetime, language: str | None = None) -> str:
    """``Wednesday 2 December 2026 at 10:30am`` (in Welsh ``Dydd Mercher 2 Rhagfyr 2026 am
    10:30 y bore``): how a prompt says a meeting's time."""
    if language == "cy-GB":
        return _welsh(when, year=True)
    suffix = "am" if when.hour < 12 else "pm"
    return f"{when:%A} {when.day} {when:%B %Y} at {_clock(when)}{suffix}"


def spoken_offer(when: datetime, language: str | None = None) -> str:
    """A time offered on the call, as people say one: ``Tuesday 8 December at 10:30 in the
    morning`` (in Welsh ``Dydd Mawrth 8 Rhagfyr am 10:30 y bore``); within the next few
    weeks, so no year."""
    if language == "cy-GB":
        return _welsh(when, year=False)
    if when.hour == 12 and not when.minute:
        part = "noon"
    else:
        part = (
            "in the morning" if when.hour < 12
            else "in the afternoon" if when.hour < 18 else "in the evening"
        )  # fmt: skip
    return f"{when:%A} {when.day} {when:%B} at {_clock(when)} {part}"


#: How the call offers times, key by key, in each language.
OFFER_WORDS = {"en-GB": "For {when}, press {key}.", "cy-GB": "Ar gyfer {when}, pwyswch {key}."}


def spoken_choices(times: list[datetime], language: str | None = None) -> str:
    """``For Tuesday 8 December at 10:30 in the morning, press 1. For ...``: the times on
    offer, each with its key."""
    words = OFFER_WORDS.get(language or "en-GB", OFFER_WORDS["en-GB"])
    return " ".join(
        words.format(when=spoken_offer(at, language), key=n) for n, at in enumerate(times, 1)
    )


def _field_errors(errors: list[str]) -> FieldErrors:
    """Lines like "officer: what is wrong" as a FieldErrors naming each field once."""
    named: dict[str, str] = {}
    for line in errors:
        field, _, text = line.partition(": ")
        key = field.replace(" ", "_")
        named[key] = f"{named[key]}; {text}" if key in named else text
    return FieldErrors(named)


def _a(noun: str) -> str:
    """A grade with its article ("an Administrative Officer"), or "of no recorded grade"."""
    if noun.startswith("grade not"):
        return "of no recorded grade"
    return ("an " if noun[0] in "AEIOU" else "a ") + noun


def postcode_digits(postcode: str) -> str:
    """The digits of a UK postcode, in order: ``SW1A 2AA`` -> ``12``."""
    return "".join(ch for ch in postcode if ch.isdigit())


def held_back(meeting: Mapping[str, Any]) -> str | None:
    """Why a meeting's call is not made yet, in words (None when nothing holds it back)."""
    if meeting["state"] == "needs_risk_assessment":
        return (
            f"a visit to {PLACES[meeting['place']]} needs a risk assessment before the "
            f"customer is called: record one (callflow meetings risk-assessment {meeting['id']})"
        )
    return None


def meeting_index(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """A meeting's index entries: by its time; due calls; calls in progress."""
    try:
        when = datetime.fromisoformat(doc["when"])
        at = when.timestamp() if when.tzinfo else when.replace(tzinfo=UTC).timestamp()
    except (KeyError, TypeError, ValueError):
        at = float(doc.get("created_at", 0))
    entries = [("when", at)]
    if doc["state"] == "scheduled" and doc.get("next_call_at") is not None:
        entries.append(("due", doc["next_call_at"]))
    if doc["state"] == "calling" and doc["attempts"]:
        entries.append(("calling", doc["attempts"][-1]["at"]))
    return entries


class Meetings(ServiceUser):
    """Meetings in the store, their calls, retries and outcomes."""

    def __init__(self, services: Services, library: FlowLibrary | None = None) -> None:
        super().__init__(services)
        #: What a meeting may be for, each with the lowest grade that may hold it.
        self.purposes = MeetingPurposes(services.store, services.audit, services.clock)
        #: Officers' free times, and the claims that book them.
        self.diary = Diary(services.store, services.clock)
        #: Officers' PINs for the meeting start line (the checks recorded by phone).
        self.pins = OfficerPins(services)
        #: The flows, to check a meeting gives what its flow checks (None: not checked).
        self.library = library
        self.outbound = OutboundCalls(services.store, services.twilio, services.clock)
        self.store.define_index("meetings", meeting_index, keep_seconds=2 * OPEN_TTL)

    def _flow_checks(self, flow_name: str) -> set[str] | None:
        """The identity checks a meeting flow runs (None when the flow is not known here)."""
        if self.library is None:
            return None
        try:
            flow = self.library.live(flow_name)
        except CallflowError:
            return None
        actions = {a for state in flow.states.values() for a in state.enter}
        return {check for check in IDENTITY_CHECKS if f"check_{check}" in actions}

    # -- the identity check

    def _identity_hash(self, check: str, digits: str) -> str:
        key = self.settings.secret_key
        return hmac.new(
            key, f"meeting-identity:{check}:{digits}".encode(), hashlib.sha256
        ).hexdigest()

    def identity_matches(self, meeting: Meeting, check: str, digits: str) -> bool | None:
        """Whether keyed digits match the meeting's check (None: the meeting has no such check)."""
        stored = meeting.get("identity", {}).get(check)
        if not stored:
            return None
        return hmac.compare_digest(stored, self._identity_hash(check, digits))

    # -- records

    def add(
        self,
        *,
        customer_name: str,
        customer_number: str,
        reference: str,
        officer_number: str,
        purpose: str,
        bring: str,
        when: str | None,
        where: str,
        place: str,
        about: str = "",
        date_of_birth: str | None = None,
        postcode: str | None = None,
        retry_minutes: tuple[int, ...] | None = None,
        flow: str = "meeting_call",
        call_at: float | None = None,
        language: str | None = None,
        by: str,
    ) -> dict[str, Any]:
        """Store a meeting; its first call is due at ``call_at`` (default: now).

        ``purpose`` is one of the admin's purposes (``about`` adds words; "other" needs
        them), held only by an officer of its lowest grade or above. ``place`` is where
        it is held (PLACES); one outdoors (the customer's business or home) waits for a
        recorded risk assessment before its call is made. ``when``: a time in the officer's
        working hours, held in their diary at once; empty, the call offers the customer
        times from the diary and books the one they pick."""
        now = self.now()
        errors: list[str] = []
        if not (customer_name or "").strip() or len(customer_name) > 100:
            errors.append("customer: 1 to 100 characters")
        if not PHONE.match(customer_number or ""):
            errors.append("number: the customer's phone number like +447700900123")
        if not REFERENCE.match(reference or ""):
            errors.append("reference: up to 30 letters, digits, spaces, / or -")
        officer = self.staff.officer(officer_number)
        if officer is None or not officer.active:
            errors.append(f"officer: no active officer with identity number {officer_number}")
        chosen, purpose_errors = self.purposes.check(purpose, about, language)
        errors += purpose_errors
        if chosen is not None and officer is not None and officer.active:
            lowest = chosen["lowest_grade"]
            if not at_least(officer.grade, lowest):
                held = grade_label(officer.grade)
                errors.append(
                    f"officer: {officer.name} is {_a(held)}; a meeting for "
                    f"{chosen['id'].replace('_', ' ')} needs {_a(grade_label(lowest))} or above"
                    + (" (record their grade first)" if not officer.grade else "")
                )
        if place not in PLACES:
            errors.append(f"place: one of {', '.join(PLACES)}")
        for label, text in (("bring", bring), ("where", where)):
            if not (text or "").strip() or len(text) > 300:
                errors.append(f"{label}: 1 to 300 characters")
        meeting_at: datetime | None = None
        if (when or "").strip():  # else the customer agrees a time on the call
            try:
                parsed = datetime.fromisoformat(when.strip())  # type: ignore[union-attr]
                # A time with no offset is UK local time; one with an offset is converted.
                meeting_at = (
                    parsed.replace(tzinfo=LONDON)
                    if parsed.tzinfo is None
                    else parsed.astimezone(LONDON)
                )
                if meeting_at.timestamp() <= now:
                    errors.append("when: the meeting must be in the future")
                elif (
                    officer is not None
                    and officer.active
                    and not self.diary.is_working_time(officer.calendar(), meeting_at)
                ):
                    errors.append(
                        f"when: {officer.name} does not work at {spoken_when(meeting_at)}: "
                        f"their hours are {officer.hours}, not on bank holidays, and a "
                        "meeting starts on the hour or half hour and lasts an hour (or leave "
                        "the time empty for the customer to choose on the call)"
                    )
            except (TypeError, ValueError):
                errors.append("when: a UK local date and time like 2026-12-02T10:30")
        identity: dict[str, str] = {}
        if date_of_birth:
            try:
                born = date.fromisoformat(date_of_birth)
                identity["date_of_birth"] = self._identity_hash("date_of_birth", f"{born:%d%m%Y}")
            except ValueError:
                errors.append("date of birth: like 1970-03-21")
        if postcode:
            if POSTCODE.match(postcode.strip()):
                identity["postcode"] = self._identity_hash(
                    "postcode", postcode_digits(postcode.strip())
                )
            else:
                errors.append("postcode: a UK postcode like SW1A 2AA")
        if not identity:
            errors.append(
                "identity: give the date of birth or the postcode: the call checks one "
                "before saying anything personal"
            )
        checks = self._flow_checks(flow)
        if self.library is not None and checks is None:
            errors.append(f"flow: no flow named {flow!r}")
        elif checks is not None and identity and not checks & set(identity):
            wanted = " or ".join(c.replace("_", " ") for c in sorted(checks)) or "nothing"
            errors.append(
                f"identity: flow {flow} checks the {wanted}; give that, or the call could "
                "never say what the meeting is"
            )
        if language is not None and language not in {"en-GB", "cy-GB"}:
            errors.append("language: en-GB or cy-GB (a meeting arranged in Welsh)")
        schedule = self.settings.meeting_retry_minutes if retry_minutes is None else retry_minutes
        if errors:
            raise _field_errors(errors)
        assert officer is not None and chosen is not None
        meeting_id = "m-" + secrets.token_hex(6)
        phone_code = self._issue_code(officer.number, meeting_id)
        if meeting_at is not None and not self.diary.book(officer.number, meeting_at, meeting_id):
            raise FieldErrors(
                {
                    "when": f"{officer.name} already has a meeting at {spoken_when(meeting_at)}: "
                    "choose another time, or leave it for the customer to choose on the call"
                }
            )
        # Outdoors: no call until a risk assessment is recorded (DMBM510150).
        waits = place in OUTDOORS
        meeting: dict[str, Any] = {
            "id": meeting_id,
            "customer_name": " ".join(customer_name.split()),
            "customer_number": customer_number,
            "reference": reference.strip(),
            "officer_number": officer.number,
            "officer_name": officer.name,
            "purpose": chosen["said"],
            "purpose_id": chosen["id"],
            "purpose_detail": chosen["detail"],
            "officer_grade": officer.grade,
            "place": place,
            "risk_assessment": None,
            "bring": " ".join(bring.split()),
            # None until the customer agrees one on the call.
            "when": meeting_at.isoformat(timespec="minutes") if meeting_at else None,
            "where": " ".join(where.split()),
            "identity": identity,
            # What the officer keys on the meeting start line (with their PIN first).
            "phone_code": phone_code,
            "flow": flow,
            # The call is made in it (a meeting arranged in Welsh: ?lang=cy-GB).
            "language": language or "en-GB",
            "retry_minutes": list(schedule),
            "state": "needs_risk_assessment" if waits else "scheduled",
            "next_call_at": None if waits else (now if call_at is None else call_at),
            "call_at": call_at,
            "attempts": [],
            "outcome": None,
            "created_at": now,
            "created_by": by,
        }
        self.store.put_doc("meetings", meeting_id, meeting, ttl_seconds=self._ttl(meeting))
        self.services.audit.record(
            "meeting.added",
            meeting=meeting["id"],
            reference=meeting["reference"],
            purpose=chosen["id"],
            officer=officer.number,
            place=place,
            by=by,
            outcome=meeting["state"],
        )
        return meeting

    def _issue_code(self, officer: str, meeting_id: str) -> str:
        """A six-digit code for the meeting, unique among its officer's: what they key on
        the meeting start line (after their identity number and PIN)."""
        for _ in range(50):
            code = f"{secrets.randbelow(10**6):06d}"
            if self.store.claim(f"meeting-code:{officer}:{code}", meeting_id, OPEN_TTL):
                return code
        raise DirectoryError(f"officer {officer} has too many meetings to give this one a code")

    def set_phone_code(self, meeting_id: str, code: str, *, by: str) -> Meeting:
        """Give the meeting a code of staff's choosing (a flow test's known one): refused
        when another of the officer's meetings has it. The old code stops working."""
        meeting = self.require(meeting_id)
        officer = meeting["officer_number"]
        if not re.fullmatch(r"\d{6}", code or ""):
            raise DirectoryError("code: six digits")
        if not self.store.claim(f"meeting-code:{officer}:{code}", meeting_id, OPEN_TTL):
            raise DirectoryError(f"code: another of officer {officer}'s meetings has {code}")
        old = meeting.get("phone_code")
        doc = self.store.update_doc(
            "meetings", meeting_id, lambda d: {**d, "phone_code": code} if d else None,
            ttl_seconds=self._ttl,
        )  # fmt: skip
        if old and old != code:
            self.store.release(f"meeting-code:{officer}:{old}", meeting_id)
        self.services.audit.record("meeting.code_set", meeting=meeting_id, by=by, outcome="set")
        return cast(Meeting, doc)

    def for_code(self, officer: str, code: str) -> Meeting | None:
        """The officer's meeting with that phone code, if any (never another officer's)."""
        if not re.fullmatch(r"\d{6}", code or ""):
            return None
        meeting_id = self.store.claimed_by(f"meeting-code:{officer}:{code}")
        meeting = self.get(meeting_id) if meeting_id else None
        if meeting is None or meeting["officer_number"] != officer:
            return None
        return meeting

    def _give_back(self, doc: Mapping[str, Any] | None) -> None:
        """A meeting that will not take place gives its time back to the officer's diary."""
        if doc and doc.get("when") and doc["state"] in GIVES_TIME_BACK:
            self.diary.release(
                doc["officer_number"], datetime.fromisoformat(doc["when"]), doc["id"]
            )

    def _ttl(self, meeting: dict[str, Any]) -> int:
        """A meeting's lifetime from now: a year while open, the retention once settled."""
        if meeting["state"] in OPEN_STATES:
            return OPEN_TTL
        return self.settings.meeting_retention_days * 24 * 3600

    def get(self, meeting_id: str) -> Meeting | None:
        """A meeting, or None."""
        if not MEETING_ID.match(meeting_id or ""):
            return None
        return cast("Meeting | None", self.store.get_doc("meetings", meeting_id))

    def require(self, meeting_id: str) -> Meeting:
        """A meeting, or a clear error."""
        meeting = self.get(meeting_id)
        if meeting is None:
            raise DirectoryError(f"no meeting {meeting_id}")
        return meeting

    def all(self, offset: int = 0, count: int | None = None) -> list[dict[str, Any]]:
        """Meetings still kept, soonest first (a page at a time)."""
        return self.store.indexed("meetings", "when", offset=offset, count=count)

    @staticmethod
    def public(meeting: Mapping[str, Any]) -> dict[str, Any]:
        """A meeting as staff see it: no identity hashes."""
        shown = {k: v for k, v in meeting.items() if k != "identity"}
        shown["identity_checks"] = sorted(meeting.get("identity", {}))
        shown["held_back"] = held_back(meeting)
        shown["place_words"] = PLACES.get(meeting.get("place") or "", "")
        agreed_by = str(meeting.get("time_agreed_by") or "")
        shown["time_agreed"] = (
            "to be agreed on the call" if not meeting.get("when")
            else "agreed on the call" if agreed_by.startswith("customer on call")
            else f"booked by {agreed_by}" if agreed_by
            else "set when arranged"
        )  # fmt: skip
        return shown

    def cancel(self, meeting_id: str, by: str) -> dict[str, Any]:
        """Cancel an open meeting: no more calls."""

        cancelled: dict[str, Any] = {}

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            cancelled.clear()
            if doc is None or doc["state"] not in OPEN_STATES:
                cancelled["state"] = doc and doc["state"]
                return None
            return {**doc, "state": "cancelled", "next_call_at": None}

        self.require(meeting_id)
        doc = self.store.update_doc("meetings", meeting_id, change, ttl_seconds=self._ttl)
        if doc is None or "state" in cancelled:
            raise DirectoryError(
                f"meeting {meeting_id} is not open (it is {cancelled.get('state')})"
            )
        self._give_back(doc)
        self.services.audit.record(
            "meeting.cancelled", meeting=meeting_id, by=by, outcome="cancelled"
        )
        return doc

    # -- before an outdoor meeting

    def record_risk_assessment(
        self,
        meeting_id: str,
        *,
        assessor: str,
        assessed_on: str,
        outcome: str,
        reference: str,
        by: str,
    ) -> Meeting:
        """Record the risk assessment an outdoor meeting needs before its call is made
        (who assessed it, on what date, what they concluded, the assessment's reference).
        "Go ahead" (with precautions or not) lets the call be made; "do not visit" ends
        the meeting as ``not_safe`` (arrange it in an HMRC building instead)."""
        meeting = self.require(meeting_id)
        errors = []
        if meeting["place"] not in OUTDOORS:
            errors.append(
                f"meeting: it is in {PLACES.get(meeting['place'], 'an HMRC building')}: no "
                "risk assessment is needed"
            )
        if not (assessor or "").strip() or len(assessor) > 100:
            errors.append("assessor: who assessed the visit, 1 to 100 characters")
        # A meeting whose time is still to be agreed is at the earliest tomorrow.
        when = meeting["when"]
        held_on = datetime.fromisoformat(when).date() if when else None
        try:
            day = date.fromisoformat(assessed_on)
            if held_on is not None and day > held_on:
                errors.append(
                    f"date: the assessment must come before the visit ({held_on:%d %B %Y}), "
                    f"not {day:%d %B %Y}"
                )
            elif day > datetime.fromtimestamp(self.now(), LONDON).date():
                errors.append("date: an assessment already made, not one to come")
        except (TypeError, ValueError):
            errors.append("date: the day it was made, like 2026-12-01")
        if outcome not in RISK_OUTCOMES:
            errors.append(f"outcome: one of {', '.join(RISK_OUTCOMES)}")
        if not REFERENCE.match(reference or ""):
            errors.append("reference: the assessment's reference, up to 30 letters and digits")
        if errors:
            raise _field_errors(errors)
        now = self.now()
        record = {
            "assessor": " ".join(assessor.split()),
            "assessed_on": assessed_on,
            "outcome": outcome,
            "reference": reference.strip(),
            "recorded_by": by,
            "recorded_at": now,
        }
        found: dict[str, Any] = {}

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            found.clear()
            if doc is None or doc["state"] not in {"needs_risk_assessment", "scheduled"}:
                found["state"] = doc and doc["state"]
                return None
            moved: dict[str, Any]
            if outcome == "do_not_visit":
                moved = {"state": "not_safe", "next_call_at": None, "outcome": "not_safe"}
            elif doc["state"] == "needs_risk_assessment":
                moved = {"state": "scheduled", "next_call_at": doc.get("call_at") or now}
            else:
                moved = {}
            return {**doc, "risk_assessment": record, **moved}

        doc = self.store.update_doc("meetings", meeting_id, change, ttl_seconds=self._ttl)
        if doc is None or "state" in found:
            raise DirectoryError(
                f"meeting {meeting_id} is {found.get('state')}: too late for a risk assessment"
            )
        self._give_back(doc)
        self.services.audit.record(
            "meeting.risk_assessed",
            meeting=meeting_id,
            reference=record["reference"],
            assessor=record["assessor"],
            by=by,
            outcome=outcome,
        )
        return cast(Meeting, doc)

    # -- a time agreed with the customer

    def offer_times(
        self, meeting_id: str, count: int = 3, after: datetime | None = None
    ) -> list[datetime]:
        """Up to ``count`` free times in the meeting's officer's diary, in their next
        CALLFLOW_MEETING_HORIZON_DAYS working days (one a day, bank holidays and booked
        times skipped); ``after``: only on days after that one (the next few, when the
        customer asks for others)."""
        meeting = self.require(meeting_id)
        officer = self.staff.officer(meeting["officer_number"])
        if officer is None or not officer.active:
            return []
        return self.diary.free_times(
            officer.number,
            officer.calendar(),
            working_days=self.settings.meeting_horizon_days,
            count=count,
            beyond=after,
        )

    def book_time(self, meeting_id: str, at: datetime, *, by: str) -> Meeting:
        """Agree ``at`` for the meeting: held in the officer's diary in one atomic step (a
        time another meeting took is refused, and nothing changes), then the meeting's
        time is set and it is confirmed; the time it held before is given back."""
        meeting = self.require(meeting_id)
        officer = meeting["officer_number"]
        if not self.diary.book(officer, at, meeting_id):
            raise DirectoryError(
                f"time: {spoken_when(at)} has just been taken; choose another"
            )
        previous = meeting["when"]
        when = at.astimezone(LONDON).isoformat(timespec="minutes")

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None or doc["state"] in {"cancelled", "held", "not_verified", "not_safe"}:
                return None
            return {**doc, "when": when, "time_agreed_at": self.now(), "time_agreed_by": by}

        doc = self.store.update_doc("meetings", meeting_id, change, ttl_seconds=self._ttl)
        if doc is None or doc["when"] != when:
            self.diary.release(officer, at, meeting_id)
            raise DirectoryError(f"meeting {meeting_id} is {meeting['state']}: no time is booked")
        if previous and previous != when:
            self.diary.release(officer, datetime.fromisoformat(previous), meeting_id, keep=at)
        self.services.audit.record(
            "meeting.time_booked", meeting=meeting_id, officer=officer, at=when, by=by,
            outcome="booked",
        )  # fmt: skip
        return cast(Meeting, doc)

    def agree_time(self, meeting_id: str, call_sid: str, at: datetime) -> Meeting:
        """The customer picked ``at`` on the meeting's call: booked in the officer's diary
        (DirectoryError if another call took it first: nothing changes), and the meeting
        is confirmed for that time. The officer sees it on the meetings page; the audit
        entry (meeting.time_booked) is the event their console hears."""
        self.book_time(meeting_id, at, by=f"customer on call {call_sid}")
        self.record_outcome(meeting_id, call_sid, "confirmed")
        return self.require(meeting_id)

    # -- at the start of the meeting

    def _not_startable(self, meeting: Mapping[str, Any]) -> tuple[str, datetime | None]:
        """Why a meeting's start cannot be recorded now: ``("state", None)`` (not confirmed,
        or no time agreed), ``("time", its time)`` (not from an hour before it to a day
        after), or ``("", None)``: it can."""
        when = meeting.get("when")
        if meeting["state"] != "confirmed" or not when:
            return "state", None
        at = datetime.fromisoformat(str(when))
        begins = at.timestamp()
        if begins - START_EARLY_SECONDS <= self.now() <= begins + START_LATE_SECONDS:
            return "", None
        return "time", at

    def start_problem(self, meeting: Mapping[str, Any], language: str | None = None) -> str | None:
        """Why a meeting's start cannot be recorded now, as the meeting start line says it
        (None: it can)."""
        why, at = self._not_startable(meeting)
        welsh = language == "cy-GB"
        if why == "state":
            if welsh:
                return (
                    "Ni ellir dechrau'r cyfarfod hwnnw: dim ond cyfarfod a gadarnhawyd gan y "
                    "cwsmer sy'n cael ei ddechrau."
                )
            state = str(meeting["state"]).replace("_", " ")
            return f"That meeting is {state}: only a meeting the customer confirmed is started."
        if at is None:
            return None
        if welsh:
            return (
                f"Mae'r cyfarfod hwnnw ar {spoken_when(at, language)}: mae ei wiriadau'n cael "
                "eu cofnodi wrth iddo ddechrau."
            )
        return f"That meeting is on {spoken_when(at)}: its checks are recorded as it begins."

    def record_start_checks(
        self, meeting_id: str, *, passed: bool, how: str, by: str, note: str = ""
    ) -> Meeting:
        """The officer did the outdoor call verification checks as the meeting began
        (DMBM510150, the card at DMBM513110): passed, the meeting is ``held``; failed, it
        ends ``not_verified`` and nothing is discussed. Only a meeting the customer
        confirmed, from an hour before its time to a day after. A meeting is marked held
        this way only: never without its checks."""
        meeting = self.require(meeting_id)
        errors = []
        if how not in START_CHECK_WAYS:
            errors.append(f"how: one of {', '.join(START_CHECK_WAYS)}")
        if len(" ".join((note or "").split())) > 300:
            errors.append("note: up to 300 characters")
        now = self.now()
        why, at = self._not_startable(meeting)
        if why == "state":
            errors.append(
                f"meeting: it is {meeting['state'].replace('_', ' ')}: only a meeting the "
                "customer confirmed is started"
            )
        elif at is not None:
            errors.append(
                f"meeting: it is at {at.astimezone(LONDON):%d %B %Y %H:%M}: its checks are "
                "recorded as it begins"
            )
        if errors:
            raise _field_errors(errors)
        checks = {"passed": passed, "how": how, "by": by, "at": now,
                  "note": " ".join((note or "").split())}  # fmt: skip
        state = "held" if passed else "not_verified"
        moved: dict[str, Any] = {}

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            moved.clear()
            if doc is None or doc["state"] != "confirmed":
                moved["state"] = doc and doc["state"]
                return None
            return {**doc, "state": state, "outcome": state, "start_checks": checks}

        doc = self.store.update_doc("meetings", meeting_id, change, ttl_seconds=self._ttl)
        if doc is None or "state" in moved:
            raise DirectoryError(f"meeting {meeting_id} is {moved.get('state')}: not started")
        self.services.audit.record(
            "meeting.started" if passed else "meeting.not_verified",
            meeting=meeting_id,
            reference=meeting["reference"],
            officer=meeting["officer_number"],
            how=how,
            by=by,
            outcome=state,
        )
        return cast(Meeting, doc)

    # -- calls

    def due(self) -> list[dict[str, Any]]:
        """Scheduled meetings whose next call is due (the due index: never a scan)."""
        return [
            m
            for m in self.store.indexed("meetings", "due", max_score=self.now())
            if m["state"] == "scheduled" and m["next_call_at"] is not None
        ]

    def place_call(self, meeting_id: str, links: ServiceLinks) -> str:
        """Ring the customer now; the new CallSid. Only one worker calls a meeting at once."""
        meeting = self.require(meeting_id)
        held = held_back(meeting)
        if held:
            raise DirectoryError(f"meeting {meeting_id} is not called yet: {held}")
        if meeting["state"] != "scheduled":
            raise DirectoryError(f"meeting {meeting_id} is {meeting['state']}, not scheduled")
        placed = self.outbound.place(
            "meeting",
            meeting_id,
            to=meeting["customer_number"],
            from_=self.settings.outbound_number,
            url=links.incoming(meeting["flow"], meeting_id, meeting.get("language") or None),
            status_callback=links.meeting_status(meeting_id),
            ring_seconds=RING_SECONDS,
            claim_seconds=CALL_CLAIM_SECONDS,
        )
        call_sid = placed.call_sid

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None:
                return None
            tried = attempt(placed)
            return {**doc, "state": "calling", "attempts": [*doc["attempts"], tried]}

        self.store.update_doc("meetings", meeting_id, change, ttl_seconds=self._ttl)
        self.services.audit.record(
            "meeting.call_placed",
            call_sid=call_sid,
            meeting=meeting_id,
            attempt=len(meeting["attempts"]) + 1,
            outcome="placed",
        )
        return call_sid

    def recover_stuck(self) -> list[tuple[str, str]]:
        """Meetings whose call's final status callback never came: ask Twilio, settle them
        (the index of calls in progress, for those started long enough ago).

        Returns (meeting id, the status Twilio gave) for each one settled.
        """
        now = self.now()

        def still_calling(meeting: dict[str, Any]) -> bool:
            newest = meeting["attempts"][-1] if meeting["attempts"] else None
            return (
                meeting["state"] == "calling"
                and newest is not None
                and newest["result"] is None
                and now - newest["at"] >= STUCK_SECONDS
            )

        stale = self.store.indexed("meetings", "calling", max_score=now - STUCK_SECONDS)
        return self.outbound.settle_stale("meeting", stale, still_calling, self.leg_ended)

    def call_due(self, links: ServiceLinks) -> list[tuple[str, str]]:
        """Settle calls whose end was never reported, then place every due call.

        Returns (meeting id, CallSid or what happened) for each.
        """
        # A settled meeting's next call is its retry minutes away: never due in this round.
        placed = [(m, f"settled: {status}") for m, status in self.recover_stuck()]
        for meeting in self.due():
            try:
                placed.append((meeting["id"], self.place_call(meeting["id"], links)))
            except CallflowError as exc:
                log.error("meeting %s: call not placed: %s", meeting["id"], exc)
                placed.append((meeting["id"], f"error: {exc}"))
        return placed

    def record_outcome(self, meeting_id: str, call_sid: str, outcome: str) -> dict[str, Any]:
        """What the customer chose on the call (confirmed, rearrange) or identity_failed."""
        if outcome not in FINAL_OUTCOMES:
            raise ValueError(f"unknown meeting outcome {outcome!r}")
        now = self.now()

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None:
                return None
            attempts = [
                {**a, "result": outcome} if a["call_sid"] == call_sid else a
                for a in doc["attempts"]
            ]
            state = outcome if doc["state"] in OPEN_STATES else doc["state"]
            return {
                **doc,
                "attempts": attempts,
                "state": state,
                "outcome": outcome,
                "outcome_at": now,
                "next_call_at": None,
                "callback_needed": outcome == "rearrange",
            }

        doc = self.store.update_doc("meetings", meeting_id, change, ttl_seconds=self._ttl)
        if doc is None:
            raise DirectoryError(f"no meeting {meeting_id}")
        self._give_back(doc)
        self.services.audit.record(
            "meeting.outcome", call_sid=call_sid, meeting=meeting_id, outcome=outcome
        )
        return doc

    def leg_ended(self, meeting_id: str, call_sid: str, status: str) -> Meeting | None:
        """A meeting call's leg ended: with no outcome, the attempt failed; retry or give up."""
        meeting = self.get(meeting_id)
        if meeting is None:
            log.warning("call %s: status %s for unknown meeting %s", call_sid, status, meeting_id)
            return None
        tried = next((a for a in meeting["attempts"] if a["call_sid"] == call_sid), None)
        if tried is None or tried["result"] is not None:
            return meeting  # a repeat callback, or an outcome already recorded
        now = self.now()
        result = "no_person" if status == "completed" else status
        decided: dict[str, Any] = {}

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            decided.clear()  # this may run again when the meeting changed under us
            if doc is None:
                return None
            attempts = [
                {**a, "result": result} if a["call_sid"] == call_sid and a["result"] is None else a
                for a in doc["attempts"]
            ]
            if doc["state"] != "calling":
                return {**doc, "attempts": attempts}
            tried = len(attempts)
            schedule = doc["retry_minutes"]
            if tried <= len(schedule):
                decided.update(state="scheduled", next_call_at=now + schedule[tried - 1] * 60)
            else:
                decided.update(state="unreachable", next_call_at=None, outcome="unreachable")
            return {**doc, "attempts": attempts, **decided}

        doc = self.store.update_doc("meetings", meeting_id, change, ttl_seconds=self._ttl)
        if decided.get("state") == "unreachable":
            self._give_back(doc)
        self.outbound.leg_ended("meeting", meeting_id, tried)
        self.services.audit.record(
            "meeting.attempt",
            call_sid=call_sid,
            meeting=meeting_id,
            outcome=result,
            next=decided.get("state", "unchanged"),
        )
        return cast("Meeting | None", doc)
