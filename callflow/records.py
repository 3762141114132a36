"""The shapes of the documents the store keeps, one ``TypedDict`` each.

Each record is written by the one service that owns it (named below), in the same atomic
step as its index entries; what a person may see of it is a projection in
``callflow.access``. A key marked ``NotRequired`` is absent from records written before
it existed (or, for a few, until the thing it records happens): read it with ``.get``.

==================  ===========================  ========================================
record              owner                        namespace, key
==================  ===========================  ========================================
CallRecord          vstrs.VstrsCalls             ``vstrs_calls``, the caller's CallSid
HandOff             handoff.HandOffs             ``handoffs``, ``H…``
Grant               handoff.Grants               ``grants``, ``GR…``
Callback            callbacks.Callbacks          ``callbacks``, the first call's CallSid
Meeting             meetings.Meetings            ``meetings``, ``m-…``
TraceSummary        traces.Traces                ``traces``, the CallSid (at the call's end)
Release             releases.FlowReleases        ``flow_releases``, the flow's name
==================  ===========================  ========================================
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

__all__ = [
    "Attempt",
    "CallRecord",
    "Callback",
    "Grant",
    "HandOff",
    "Meeting",
    "Release",
    "ReleaseEntry",
    "TraceSummary",
]


class Attempt(TypedDict):
    """One try of a call the service placed (``callflow.outbound``)."""

    call_sid: str
    at: float
    result: str | None
    claim: str


class CallRecord(TypedDict):
    """A verified VSTRS caller's call: waiting, with an agent, handed off, ended."""

    call_sid: str
    conference: str
    conference_sid: str | None
    #: Who was verified and how: adviser number and name, organisation, consent to act.
    verified: dict[str, Any]
    caller_number: str
    language: str
    relay: bool
    routing: dict[str, Any]
    #: waiting, with_agent, handed_off, ended (the CALL lifecycle).
    state: str
    waiting_since: float
    arrived_at: float
    callback_id: str | None
    #: The agent being rung now: SEES ID, leg CallSid, since.
    ringing: dict[str, Any] | None
    tried: list[str]
    #: The agent on the call: SEES ID, name, leg CallSid, joined, left.
    agent: dict[str, Any] | None
    agents: list[str]
    handoffs: list[str]
    ended_at: float | None
    end_reason: str | None
    active_handoff: NotRequired[str | None]
    draft: NotRequired[dict[str, Any]]
    outcome: NotRequired[dict[str, Any]]
    language_fallback: NotRequired[Any]
    early_joins: NotRequired[list[Any]]
    callback_noted: NotRequired[bool]
    #: Every agent leg rung for the call: leg CallSid -> SEES ID.
    rung: NotRequired[dict[str, str]]
    handed_over_at: NotRequired[float]
    #: The agent whose after-call work this call is, and since when.
    after_call: NotRequired[dict[str, Any]]


class HandOff(TypedDict):
    """A warm transfer of a verified call to a specialist team, and what became of it."""

    id: str
    call_sid: str
    conference: str
    conference_sid: str | None
    team: str
    team_name: str
    numbers: list[str]
    agent_sees_id: str
    agent_name: str
    agent_call_sid: str
    #: The customer's name and reference (UTR or NINO).
    customer: dict[str, Any]
    organisation: str
    organisation_name: str
    #: The representative: name, adviser number, and contact details where consent to act.
    adviser: dict[str, Any]
    consent_to_act: bool
    language: str
    relay: bool
    issue: str
    need: dict[str, Any] | None
    callback: dict[str, Any]
    authorisation: dict[str, Any]
    #: requested, ringing, checking, briefing, taken_over, failed, ended (HANDOFF).
    state: str
    reason: str | None
    requested_at: float
    updated_at: float
    ringing: dict[str, Any] | None
    tried: list[Any]
    specialist_call_sid: str | None
    taken_by: dict[str, Any] | None
    grant_id: str | None
    history: list[dict[str, Any]]
    representative: NotRequired[dict[str, Any]]
    ended_at: NotRequired[float | None]


class Grant(TypedDict):
    """Disclosure authority for one handed-off call, to the specialist who took it."""

    id: str
    handoff_id: str
    call_sid: str
    specialist_call_sid: str | None
    conference: str
    customer: dict[str, Any]
    matter: str
    organisation: str
    organisation_name: str
    adviser: dict[str, Any]
    team: str
    team_name: str
    specialist: dict[str, Any]
    agent_sees_id: str
    language: str
    relay: bool
    started_at: float
    max_until: float
    ended_at: float | None
    end_reason: str | None
    confirmed_live_at: float | None
    unconfirmed_since: NotRequired[float | None]
    #: The adviser, as grants stored before it was called ``adviser`` name them.
    representative: NotRequired[dict[str, Any]]


class Callback(TypedDict):
    """A call-back owed to a verified adviser, keeping the place they had in the queue."""

    id: str
    call_sid: str
    adviser_number: str
    adviser_name: str
    organisation: str
    organisation_name: str
    language: str
    relay: bool
    routing: dict[str, Any]
    arrived_at: float
    noted_at: float
    reason: str
    #: to_call_back, calling, in_queue, connected, dropped, cancelled.
    status: str
    attempts: list[Attempt]
    next_attempt_at: float | None
    expires_at: float
    ended_reason: str | None
    ended_at: NotRequired[float | None]
    retry_base: NotRequired[int]


class Meeting(TypedDict):
    """A face-to-face meeting and the outbound calls that arrange it."""

    id: str
    customer_name: str
    customer_number: str
    reference: str
    officer_number: str
    officer_name: str
    purpose: str
    bring: str
    #: UK local time; None until the customer agrees one on the call.
    when: str | None
    where: str
    #: Keyed hashes of what the customer is asked to confirm (never the values).
    identity: dict[str, str]
    flow: str
    language: str
    retry_minutes: list[int]
    #: needs_risk_assessment, scheduled, calling, confirmed, rearrange, identity_failed,
    #: unreachable, not_safe, cancelled; then held or not_verified (the start's checks).
    state: str
    next_call_at: float | None
    attempts: list[Attempt]
    outcome: str | None
    created_at: float
    created_by: str
    #: The admin's purpose it was arranged for, the words added, the officer's grade then.
    purpose_id: NotRequired[str]
    purpose_detail: NotRequired[str]
    officer_grade: NotRequired[str]
    #: hmrc_office, customer_business or customer_home (meetings.PLACES).
    place: NotRequired[str]
    #: Who assessed an outdoor visit, when, the outcome and reference (None: not yet).
    risk_assessment: NotRequired[dict[str, Any] | None]
    #: When its first call was asked for (None: as soon as it may be made).
    call_at: NotRequired[float | None]
    #: The outdoor call verification checks as it began: passed, how, by, at, note.
    start_checks: NotRequired[dict[str, Any]]
    #: Six digits the officer keys on the meeting start line (meetings before it: none).
    phone_code: NotRequired[str]
    #: When and by whom its time was booked in the officer's diary.
    time_agreed_at: NotRequired[float]
    time_agreed_by: NotRequired[str]
    #: Set with the outcome: a customer asked to be called back to agree a time.
    callback_needed: NotRequired[bool]
    outcome_at: NotRequired[float]


class TraceSummary(TypedDict):
    """What makes an ended call findable (never a number or an input)."""

    call_sid: str
    flow: str
    version: str
    started_at: float
    ended_at: float | None
    status: str
    state: str
    steps: int
    language: str


class ReleaseEntry(TypedDict):
    """One publish, approval or rollback in a flow's history (or a version pending)."""

    version: str
    action: str
    by: str
    at: float
    message: str
    coverage: NotRequired[dict[str, Any]]
    tests: NotRequired[int]
    replay: NotRequired[dict[str, Any]]
    replay_changed: NotRequired[int]


class Release(TypedDict):
    """A flow's releases: the live version, its history, what waits for approval."""

    name: str
    live: str | None
    history: list[dict[str, Any]]
    pending: NotRequired[list[dict[str, Any]]]
    protected: NotRequired[bool]
