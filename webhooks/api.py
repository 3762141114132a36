"""The JSON API for staff: who am I, availability, calls, hand-offs, grants, counts.

Every request needs ``Authorization: Bearer <token>`` (tokens from ``callflow tokens
issue``); each endpoint names the roles it serves. Errors are JSON: ``{"error": ...,
"status": ...}``, with ``errors`` naming each bad field on a 422; the status of each kind
of error is in one table, ``webhooks.answers.STATUS``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, Response, g, jsonify, request

from callflow.access import Viewer, handoff_for_viewer, may_see_call
from callflow.desks import AgentDesk, SupervisorDesk
from callflow.errors import (
    CallflowError,
    DirectoryError,
    FieldErrors,
    Forbidden,
    Invalid,
    Malformed,
    NotFound,
    StoreUnavailable,
    Unauthenticated,
)
from callflow.links import ServiceLinks
from callflow.presence import AWAY_REASONS
from callflow.records import HandOff
from callflow.staff import StaffMember

from .answers import PUBLIC_WORDS, status_of
from .extension import service
from .voice import CALL_SID

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

P = ParamSpec("P")
R = TypeVar("R")


@bp.errorhandler(CallflowError)
def _refused(exc: CallflowError) -> Response:
    status = status_of(exc)
    if status is None:
        raise exc  # not one the API answers: the app's 500 page (and the log)
    member = g.get("staff")
    who = f"{member.role} {member.staff_id}" if member else "-"
    if status == 503 and request.endpoint in GRANT_ENDPOINTS:
        log.error("api %s: store unavailable: %s", request.path, exc)
        return _not_authorised_503()
    log.warning("api %s: %s refused (%s): %s", request.path, who, status, exc)
    body: dict[str, Any] = {"error": PUBLIC_WORDS.get(status, str(exc)), "status": status}
    errors = getattr(exc, "errors", None)
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="callflow"'
    return response


#: Endpoints that answer "may someone disclose?": every failure answers no, in so many words.
GRANT_ENDPOINTS = frozenset({"api.call_grant", "api.customer_grants"})


@bp.before_request
def authenticate() -> None:
    """Every API request carries a staff token."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthenticated("a bearer token is required")
    member = service().staff.authenticate(header[7:].strip())
    if member is None:
        log.warning("api %s: refused an unknown token", request.path)
        raise Unauthenticated("unknown or revoked token")
    g.staff = member


def requires(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Allow only staff with one of ``roles``."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            member: StaffMember = g.staff
            if member.role not in roles:
                log.warning("api %s: %s %s refused", request.path, member.role, member.staff_id)
                raise Forbidden(f"this needs the role {' or '.join(roles)}")
            return view(*args, **kwargs)

        return wrapper

    return decorate


def me() -> StaffMember:
    """The member of staff making this request."""
    member: StaffMember = g.staff
    return member


def viewer() -> Viewer:
    """The person asking, as the read models scope answers to them."""
    member = me()
    return Viewer(
        role=member.role,
        sees_id=member.staff_id if member.role == "vstrs_agent" else "",
        team=member.team if member.role == "specialist" else "",
        name=member.name,
        username=member.staff_id,
        specialist=member.staff_id if member.role == "specialist" else "",
        via=f"API token {member.token_id}",
    )


def links() -> ServiceLinks:
    """The service's URLs (for callbacks the API hands Twilio)."""
    return service().links(request.host_url)


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Malformed("the body must be a JSON object")
    return body


def call_sid_or_404(call_sid: str) -> str:
    if not CALL_SID.match(call_sid):
        raise NotFound("no such call")
    return call_sid


@bp.get("/me")
def whoami() -> Response:
    """Who the token belongs to."""
    member = me()
    return jsonify(staff_id=member.staff_id, role=member.role, name=member.name)


@bp.put("/agents/me/availability")
@requires("vstrs_agent")
def set_availability() -> Response:
    """A VSTRS agent says whether they can take calls: ``{"status": "available"}``,
    ``{"status": "away", "reason": "break"|"training"|"meeting"|"other"}`` (mid-call: after
    the call), or ``{"status": "ready"}`` (the end of their after-call work)."""
    body = json_body()
    status, reason = body.get("status"), body.get("reason")
    svc = service()
    if status == "away" and reason not in AWAY_REASONS:
        raise Invalid("invalid availability", {"reason": f"one of {', '.join(AWAY_REASONS)}"}
        )
    try:
        state = svc.vstrs.set_agent_availability(
            me().staff_id, str(status), links(), str(reason) if reason else None
        )
    except DirectoryError as exc:
        raise Invalid("invalid availability", {"status": "available, away or ready"}
        ) from exc
    return jsonify(state)


@bp.put("/specialists/me/availability")
@requires("specialist")
def set_specialist_availability() -> Response:
    """A specialist says whether they can take hand-offs: ``{"status": "available"|"away"}``."""
    status = json_body().get("status")
    svc = service()
    try:
        state = svc.staff.set_specialist_availability(
            me().staff_id, str(status), svc.clock.now()
        )
    except DirectoryError as exc:
        raise Invalid("invalid availability", {"status": "available or away"}) from exc
    return jsonify(state)


@bp.get("/agents")
@requires("admin", "vstrs_agent")
def agents() -> Response:
    """Agents and their availability."""
    svc = service()
    now = svc.clock.now()
    if me().role == "admin":
        return jsonify(
            agents=[
                {**a.to_dict(), "availability": svc.staff.availability(a.sees_id, now)}
                for a in svc.staff.agents()
            ]
        )
    # A colleague sees who is free, never how an agent is reached.
    return jsonify(
        agents=[
            {
                "sees_id": a.sees_id,
                "name": a.name,
                "active": a.active,
                "availability": {"status": svc.staff.availability(a.sees_id, now)["status"]},
            }
            for a in svc.staff.agents()
        ]
    )


@bp.get("/teams")
@requires("admin", "vstrs_agent")
def teams() -> Response:
    """The teams to hand off to: open or closed now, and when a closed one reopens."""
    return jsonify(teams=AgentDesk(service()).teams(viewer()))


@bp.get("/calls/<call_sid>")
@requires("vstrs_agent", "admin")
def call(call_sid: str) -> Response:
    """A verified call: who is calling, how verified, the agent, the hand-offs."""
    record = service().vstrs.get(call_sid_or_404(call_sid))
    if record is None:
        raise NotFound("no such call")
    if not may_see_call(viewer(), record):
        raise Forbidden("only the VSTRS agent on this call may see it")
    return jsonify(service().vstrs.public_view(record))


# ---------------------------------------------------------------- hand-offs


def _handoff_or_404(call_sid: str, handoff_id: str) -> HandOff:
    doc = service().handoffs.get(handoff_id)
    if doc is None or doc["call_sid"] != call_sid_or_404(call_sid):
        raise NotFound("no such hand-off on this call")
    member = me()
    if member.role == "vstrs_agent" and doc["agent_sees_id"] != member.staff_id:
        raise Forbidden("only the VSTRS agent who asked may see this hand-off")
    if member.role == "specialist" and doc["team"] != member.team:
        raise Forbidden("this hand-off is for another team")
    return doc


def _handoff_view(doc: HandOff) -> dict[str, Any]:
    svc = service()
    return handoff_for_viewer(viewer(), doc, svc.clock.now(), svc.handoffs.wrap_up)


@bp.post("/calls/<call_sid>/handoffs")
@requires("vstrs_agent")
def request_handoff(call_sid: str) -> tuple[Response, int]:
    """The agent on a call hands it off to a specialist team."""
    body = json_body()
    svc = service()
    sid = call_sid_or_404(call_sid)
    doc = svc.handoffs.request(sid, me().staff_id, body, links())
    return jsonify(_handoff_view(doc)), 201


@bp.get("/calls/<call_sid>/handoffs/<handoff_id>")
@requires("vstrs_agent", "specialist", "admin")
def get_handoff(call_sid: str, handoff_id: str) -> Response:
    """A hand-off: what the specialist sees, and how it is going."""
    return jsonify(_handoff_view(_handoff_or_404(call_sid, handoff_id)))


@bp.delete("/calls/<call_sid>/handoffs/<handoff_id>")
@requires("vstrs_agent")
def cancel_handoff(call_sid: str, handoff_id: str) -> Response:
    """The agent cancels a hand-off in progress: the caller comes back to them."""
    _handoff_or_404(call_sid, handoff_id)
    svc = service()
    doc = svc.handoffs.cancel(handoff_id, me().staff_id, links())
    return jsonify(_handoff_view(doc))


@bp.post("/calls/<call_sid>/handoffs/<handoff_id>/complete")
@requires("vstrs_agent")
def complete_handoff(call_sid: str, handoff_id: str) -> Response:
    """The agent has briefed the specialist: the caller comes off hold, the agent leaves."""
    _handoff_or_404(call_sid, handoff_id)
    svc = service()
    doc = svc.handoffs.complete(handoff_id, links(), agent_sees_id=me().staff_id)
    return jsonify(_handoff_view(doc))


@bp.post("/calls/<call_sid>/handoffs/<handoff_id>/take")
@requires("specialist")
def take_handoff(call_sid: str, handoff_id: str) -> Response:
    """A specialist of the team takes a hand-off that rang the team's number, before the
    SEES ID check completes (one wins; a hand-off someone else took is 409)."""
    _handoff_or_404(call_sid, handoff_id)
    who = viewer()
    doc = service().handoffs.take(handoff_id, who)
    return jsonify(_handoff_view(doc))


# ---------------------------------------------------------------- the agent's work on a call


@bp.put("/calls/<call_sid>/draft")
@requires("vstrs_agent")
def save_draft(call_sid: str) -> Response:
    """The agent's hand-off form, kept on the call as they type (the console's fields)."""
    body = json_body()
    try:
        draft = service().vstrs.save_draft(call_sid_or_404(call_sid), viewer(), body)
    except DirectoryError as exc:
        raise Invalid(str(exc)) from exc
    return jsonify(draft)


@bp.post("/calls/<call_sid>/outcome")
@requires("vstrs_agent")
def record_outcome(call_sid: str) -> Response:
    """What became of the call (after-call work): ``{"outcome": ..., "notes": ...}``."""
    body = json_body()
    try:
        outcome = service().vstrs.record_outcome(
            call_sid_or_404(call_sid),
            viewer(),
            str(body.get("outcome", "")),
            body.get("notes", "") if isinstance(body.get("notes", ""), str) else None,  # type: ignore[arg-type]
        )
    except FieldErrors as exc:
        raise Invalid("the outcome has errors", exc.errors) from exc
    return jsonify(outcome)


# ---------------------------------------------------------------- grants


def _not_authorised_503() -> Response:
    response = jsonify(
        authorised=False,
        reason="cannot be checked now: not authorised",
        error="the store is unavailable; try again shortly",
        status=503,
    )
    response.status_code = 503
    return response


def _not_authorised_when_down(work: Callable[[], dict[str, Any]]) -> Response:
    """Fail closed: if the answer cannot be had, it is 'not authorised'."""
    try:
        return jsonify(work())
    except StoreUnavailable as exc:
        log.error("api %s: store unavailable, answering not authorised: %s", request.path, exc)
        return _not_authorised_503()


@bp.get("/calls/<call_sid>/grant")
@requires("specialist", "vstrs_agent", "admin")
def call_grant(call_sid: str) -> Response:
    """Whether disclosure on this handed-off call is authorised now."""
    sid = call_sid_or_404(call_sid)
    who = viewer()
    return _not_authorised_when_down(lambda: service().handoffs.grant_for_call(sid, who))


@bp.get("/grants")
@requires("specialist", "admin")
def customer_grants() -> Response:
    """Whether anyone may disclose about a customer now: ``?customer=<UTR or NINO>``."""
    reference = request.args.get("customer", "")
    if not reference.strip():
        raise Invalid("customer is required", {"customer": "a UTR or National Insurance number"}
        )
    who = viewer()
    return _not_authorised_when_down(
        lambda: service().handoffs.grants_for_customer(reference, who)
    )


@bp.get("/stats/handoffs")
@requires("admin", "vstrs_agent", "specialist")
def handoff_stats() -> Response:
    """Hand-offs by organisation and their share of verified calls; by agent and team as
    the asker may see them (an agent their own count, a specialist their team's)."""
    return jsonify(service().handoffs.stats(viewer()))


# ---------------------------------------------------------------- the floor (supervisors)


@bp.get("/floor")
@requires("supervisor", "admin")
def floor() -> Response:
    """The floor now, as the supervisor's console shows it: queues by language, agents'
    states, hand-offs and grants across teams (no customer identifiers), the line, and
    today's figures."""
    return jsonify(SupervisorDesk(service()).floor(viewer()))


@bp.post("/agents/<sees_id>/away")
@requires("supervisor", "admin")
def agent_away(sees_id: str) -> Response:
    """A supervisor sets an agent Away: ``{"reason": "break"|"training"|"meeting"|"other"}``
    (mid-call: after the call). Audited."""
    reason = json_body().get("reason")
    if reason not in AWAY_REASONS:
        raise Invalid("invalid reason", {"reason": f"one of {', '.join(AWAY_REASONS)}"})
    try:
        state = SupervisorDesk(service()).set_away(viewer(), sees_id, str(reason))
    except DirectoryError as exc:
        raise NotFound(str(exc)) from exc
    return jsonify(state)


@bp.post("/callbacks/<callback_id>/reopen")
@requires("supervisor", "admin")
def reopen_callback(callback_id: str) -> Response:
    """A supervisor reopens a dropped or cancelled call-back: it waits its turn again with
    the place it had. Audited."""
    doc = SupervisorDesk(service()).reopen_callback(viewer(), callback_id)
    return jsonify(service().callbacks.public(doc))


# ---------------------------------------------------------------- meetings

#: The fields a meeting is arranged with (the JSON body of POST /api/meetings): those it
#: must have, and those it may.
MEETING_NEEDS = (
    "customer_name", "customer_number", "reference", "officer_number", "purpose", "bring",
    "where", "place",
)  # fmt: skip
#: ``when`` left out: the customer agrees a time on the call, from the officer's diary.
MEETING_MAY = ("about", "date_of_birth", "postcode", "language", "when")


@bp.get("/meetings")
@requires("specialist", "admin")
def meetings() -> Response:
    """Face-to-face meetings: each as staff see it (no identity values), and what holds
    back its call, if anything."""
    svc = service()
    return jsonify(meetings=[svc.meetings.public(m) for m in svc.meetings.all()])


@bp.post("/meetings")
@requires("specialist", "admin")
def arrange_meeting() -> tuple[Response, int]:
    """Arrange a meeting: one of the admin's purposes, an officer of its grade or above, a
    place; an outdoor one waits for a risk assessment before its call is made. With a
    ``when``, it is held in the officer's diary at once; without, the call offers times."""
    body = json_body()
    problems = {k: "required" for k in MEETING_NEEDS if not body.get(k)}
    problems |= {
        k: "must be text"
        for k in (*MEETING_NEEDS, *MEETING_MAY)
        if body.get(k) is not None and not isinstance(body.get(k), str)
    }
    if problems:
        raise Invalid("the meeting has errors", problems)
    text = {k: str(body[k]) for k in (*MEETING_NEEDS, *MEETING_MAY) if body.get(k)}
    svc = service()
    meeting = svc.meetings.add(
        customer_name=text["customer_name"],
        customer_number=text["customer_number"],
        reference=text["reference"],
        officer_number=text["officer_number"],
        purpose=text["purpose"],
        about=text.get("about", ""),
        bring=text["bring"],
        when=text.get("when"),
        where=text["where"],
        place=text["place"],
        date_of_birth=text.get("date_of_birth"),
        postcode=text.get("postcode"),
        language=text.get("language"),
        by=viewer().who,
    )
    return jsonify(svc.meetings.public(meeting)), 201


@bp.post("/meetings/<meeting_id>/risk-assessment")
@requires("specialist", "admin")
def meeting_risk_assessment(meeting_id: str) -> Response:
    """Record the risk assessment an outdoor meeting needs: ``{"assessor", "assessed_on",
    "outcome", "reference"}``."""
    body = json_body()
    svc = service()
    if svc.meetings.get(meeting_id) is None:
        raise NotFound("no such meeting")
    fields = ("assessor", "assessed_on", "outcome", "reference")
    values = {k: body.get(k) for k in fields}
    missing = {k: "required" for k, v in values.items() if not isinstance(v, str) or not v}
    if missing:
        raise Invalid("the risk assessment has errors", missing)
    meeting = svc.meetings.record_risk_assessment(
        meeting_id, by=viewer().who, **values  # type: ignore[arg-type]
    )
    return jsonify(svc.meetings.public(meeting))


@bp.post("/meetings/<meeting_id>/start")
@requires("specialist", "admin")
def meeting_start(meeting_id: str) -> Response:
    """As the meeting begins: ``{"checks": "passed"|"failed", "note": ...}`` for the outdoor
    call verification checks; passed, it is held; failed, it ends not verified."""
    body = json_body()
    svc = service()
    if svc.meetings.get(meeting_id) is None:
        raise NotFound("no such meeting")
    checks, note = body.get("checks"), body.get("note", "")
    if checks not in {"passed", "failed"} or not isinstance(note, str):
        raise Invalid("the checks have errors", {"checks": "passed or failed"})
    meeting = svc.meetings.record_start_checks(
        meeting_id, passed=checks == "passed", how="api", by=viewer().who, note=note
    )
    return jsonify(svc.meetings.public(meeting))
