"""Twilio Voice webhooks: the Voice URL, the steps the service's TwiML asks for, call status.

Fixed entry points a Twilio number is configured with:
    POST /voice/incoming    Voice URL (``?flow=NAME`` picks a flow other than the default,
                            ``?lang=cy`` the language: a Welsh number's Voice URL,
                            ``?relay=1`` a Relay UK call)
    POST /voice/status      call status callback
Every other URL is one the service puts in its own TwiML (``/voice/step``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from flask import Blueprint, Response, abort, current_app, g, request
from twilio.twiml.voice_response import VoiceResponse

from callflow import budget
from callflow.engine import FINAL_STATUSES, Reply
from callflow.errors import CallflowError
from callflow.flowspec import EVENT_NAME, NAME
from callflow.links import ServiceLinks
from callflow.metrics import WEBHOOK_SECONDS, WEBHOOKS
from callflow.twiml import say_and_hang_up

from .extension import service
from .signature import signature_ok

log = logging.getLogger(__name__)

bp = Blueprint("voice", __name__, url_prefix="/voice")

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
REF = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_STEP = 1_000_000
HOLD_FALLBACK = str(VoiceResponse().pause(length=10))
BAD_REQUEST_MESSAGE = "Sorry, something went wrong with this call. Please call back. Goodbye."
CALL_STATUSES = frozenset(
    {
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "answered",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    }
)


def _twiml(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/xml")


def _links() -> ServiceLinks:
    return ServiceLinks(service().settings.public_base_url or request.host_url)


def _polite_refusal(why: str) -> Response:
    log.warning("call %s: %s %s", request.form.get("CallSid", "-")[:40], request.path, why)
    return _twiml(say_and_hang_up(BAD_REQUEST_MESSAGE))


def _answer(reply: Reply) -> Response:
    g.outcome = reply.outcome
    return _twiml(reply.twiml)


@bp.before_request
def _admit() -> None:
    """Start the clock and the time budget, then refuse (403, nothing changes) any request
    not signed by Twilio. One hook, not two: Flask's per-hook dispatch is on every webhook."""
    g.started = time.perf_counter()
    settings = service().settings
    # Twilio waits 15 s: the store refuses new round trips once this budget is spent.
    g.budget = budget.start(settings.webhook_budget_seconds)
    if not signature_ok(request, settings):
        abort(403)


@bp.teardown_request
def _stop_clock(exc: BaseException | None) -> None:
    token = g.pop("budget", None)
    if token is not None:
        budget.stop(token)


@bp.after_request
def _count(response: Response) -> Response:
    endpoint = (request.endpoint or "unknown").removeprefix("voice.")
    outcome = g.get("outcome") or f"http_{response.status_code}"
    WEBHOOKS.labels(endpoint, outcome).inc()
    if "started" in g:
        WEBHOOK_SECONDS.labels(endpoint).observe(time.perf_counter() - g.started)
    return response


def _call_sid() -> str | None:
    call_sid = request.form.get("CallSid", "")
    return call_sid if CALL_SID.match(call_sid) else None


@bp.post("/incoming")
def incoming() -> Response:
    """A new call: start the flow."""
    call_sid = _call_sid()
    if call_sid is None:
        return _polite_refusal("missing or malformed CallSid")
    flow = request.args.get("flow") or current_app.config["CALLFLOW_ENTRY_FLOW"]
    if not NAME.match(flow):
        return _polite_refusal("malformed flow name")
    ref = request.args.get("ref") or None
    if ref is not None and not REF.match(ref):
        return _polite_refusal("malformed ref")
    # ?lang=cy: the number rung is the Welsh line (a language the flow does not speak is
    # ignored: the call gets the flow's first).
    language = request.args.get("lang", "")[:8] or None
    # ?relay=1: the Relay UK number's Voice URL (a relay assistant is on the line).
    relay = request.args.get("relay") in {"1", "true", "yes"}
    return _answer(
        service().engine.incoming(call_sid, flow, request.form, _links(), ref, language, relay)
    )


@bp.post("/step")
def step() -> Response:
    """A webhook the service's TwiML asked for: gather results, timeouts, queue and dial ends."""
    call_sid = _call_sid()
    if call_sid is None:
        return _polite_refusal("missing or malformed CallSid")
    raw_step = request.args.get("s", "")
    if not raw_step.isdigit() or int(raw_step) > MAX_STEP:
        return _polite_refusal("missing or malformed step")
    event = request.args.get("e") or _input_event()
    if not EVENT_NAME.match(event):
        return _polite_refusal("malformed event")
    return _answer(service().engine.step(call_sid, int(raw_step), event, request.form, _links()))


def _input_event() -> str:
    """What a Gather's action request carries: speech, keys, or nothing."""
    if (request.form.get("SpeechResult") or "").strip():
        return "speech"
    if request.form.get("Digits"):
        return "digits"
    return "timeout"


@bp.post("/status")
def status() -> Response:
    """Call status callback: a final status ends the call's session."""
    call_sid = _call_sid()
    call_status = request.form.get("CallStatus", "")
    if call_sid is None or call_status not in CALL_STATUSES:
        log.warning("status callback refused: CallSid or CallStatus missing or malformed")
        return Response("CallSid and CallStatus are required\n", status=400, mimetype="text/plain")
    service().engine.call_status(call_sid, call_status, request.form)
    if call_status in FINAL_STATUSES:
        _quietly(lambda: service().vstrs.caller_ended(call_sid, call_status), call_sid)
    return Response("", status=204)


def _quietly(work: Callable[[], object], call_sid: str) -> bool:
    """Run callback work; a store or Twilio failure is logged, and Twilio gets its 2xx anyway."""
    try:
        work()
    except CallflowError as exc:
        log.error("call %s: %s failed: %s", call_sid, request.path, exc)
        return False
    return True


def _bad_callback(message: str) -> Response:
    log.warning("callback refused on %s: %s", request.path, message)
    return Response(message + "\n", status=400, mimetype="text/plain")


def _caller_param() -> str | None:
    call = request.args.get("call", "")
    return call if CALL_SID.match(call) else None


@bp.post("/hold")
def hold() -> Response:
    """The wait URL of a verified caller's conference: hold message, and a tick to ring agents."""
    call_sid = _caller_param()
    if call_sid is None:
        return _polite_refusal("missing or malformed call")
    try:
        return _twiml(service().vstrs.hold_tick(call_sid, _links()))
    except CallflowError as exc:
        log.error("call %s: hold tick failed: %s", call_sid, exc)
        return _twiml(HOLD_FALLBACK)


@bp.post("/conference")
def conference() -> Response:
    """Conference status callbacks for callers' conferences."""
    params = request.form.to_dict()
    if not params.get("StatusCallbackEvent") or not params.get("FriendlyName"):
        return _bad_callback("StatusCallbackEvent and FriendlyName are required")
    _quietly(lambda: service().vstrs.conference_event(params, _links()), params.get("CallSid", "-"))
    return Response("", status=204)


@bp.post("/leg")
def leg() -> Response:
    """Status callbacks of legs the service dialled for a call: agents and specialists."""
    call_sid = _caller_param()
    leg_sid = _call_sid()
    call_status = request.form.get("CallStatus", "")
    role = request.args.get("role", "")
    svc = service()
    if role in {"meeting", "callback"}:
        # An outbound call the service placed (a meeting call, a call-back): its flow's
        # session ends, and the record it was placed for hears how.
        ref = request.args.get("ref", "")
        if leg_sid is None or call_status not in CALL_STATUSES or not REF.match(ref):
            return _bad_callback("ref, CallSid and CallStatus are required")
        svc.engine.call_status(leg_sid, call_status, request.form)
        if call_status in FINAL_STATUSES:
            ended = svc.meetings.call_ended if role == "meeting" else svc.callbacks.leg_ended
            _quietly(lambda: ended(ref, leg_sid, call_status), leg_sid)
            if role == "callback":
                # A verified adviser's call-back waits for an agent like any caller.
                _quietly(lambda: svc.vstrs.caller_ended(leg_sid, call_status), leg_sid)
        return Response("", status=204)
    if call_sid is None or leg_sid is None or call_status not in CALL_STATUSES:
        return _bad_callback("call, CallSid and CallStatus are required")
    links = _links()
    if role == "agent":
        _quietly(
            lambda: svc.vstrs.agent_leg_status(call_sid, leg_sid, call_status, links), call_sid
        )
    elif role == "specialist":
        # The specialist's leg runs its own flow: a final status ends that session too.
        svc.engine.call_status(leg_sid, call_status, request.form)
        handoffs = svc.handoffs
        _quietly(
            lambda: handoffs.specialist_leg_status(call_sid, leg_sid, call_status, links), call_sid
        )
    else:
        return _bad_callback("role must be agent, specialist, meeting or callback")
    return Response("", status=204)
