"""Twilio Voice webhooks: the Voice URL, the steps the service's TwiML asks for, call status.

Fixed entry points a Twilio number is configured with:
    POST /voice/incoming    Voice URL (``?flow=NAME`` picks a flow other than the default,
                            ``?lang=cy`` the language: a Welsh number's Voice URL,
                            ``?relay=1`` a Relay UK call)
    POST /voice/status      call status callback
Every other URL is one the service puts in its own TwiML (``/voice/step``, ``/voice/hold``,
``/voice/conference``, ``/voice/leg``).

The voice channel is answered here, at the WSGI layer in front of Flask
(:class:`VoiceWebhooks`, installed by ``create_app()``): every one of these requests is on a
live call's path, and Flask's request context, its hooks and werkzeug's form parsing cost
more than the engine's own work on a new call (bench/README.md). A request under
``/voice/`` never reaches Flask; everything else (the API, the consoles, health) does.
The same rules hold as for any view: the body is at most 64 KB, every request is signed by
Twilio (403 otherwise, nothing changes), Twilio always gets valid TwiML, and any failure
is a polite goodbye, never a 500.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Response, request
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.http import HTTP_STATUS_CODES as REASONS
from werkzeug.wsgi import get_host

from callflow import budget
from callflow.config import Settings
from callflow.engine import Reply
from callflow.errors import CallflowError, Malformed
from callflow.flowspec import EVENT_NAME, NAME
from callflow.links import ServiceLinks
from callflow.metrics import WEBHOOK_SECONDS, WEBHOOKS, labelled
from callflow.service import Callflow
from callflow.twiml import POLITE_APOLOGY, say_and_hang_up

from .extension import EXTENSION_KEY
from .signature import signature_ok

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

log = logging.getLogger(__name__)

PREFIX = "/voice/"
#: Twilio's webhook bodies are a few kilobytes; anything far larger is not Twilio.
MAX_BODY_BYTES = 64 * 1024
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
XML = "text/xml; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


@dataclass(slots=True)
class Hook:
    """One Twilio request, as the handlers read it."""

    path: str
    args: dict[str, str]  # the query string (the first value of each name)
    form: dict[str, str]  # the form Twilio posted (the first value of each name)
    links: ServiceLinks

    def call_sid(self) -> str | None:
        """The request's own CallSid, when it is well formed."""
        call_sid = self.form.get("CallSid", "")
        return call_sid if CALL_SID.match(call_sid) else None

    def caller(self) -> str | None:
        """``?call=``: the caller's CallSid a leg or a wait URL is about."""
        call = self.args.get("call", "")
        return call if CALL_SID.match(call) else None


@dataclass(frozen=True, slots=True)
class Answer:
    """What goes back to Twilio: a status, a body and its type, and (for the metrics) how
    the webhook turned out."""

    status: int
    body: str = ""
    content_type: str = XML
    outcome: str | None = None


def twiml(body: str, outcome: str | None = None) -> Answer:
    return Answer(200, body, XML, outcome)


NO_CONTENT = Answer(204, "", TEXT)


def polite_refusal(hook: Hook, why: str) -> Answer:
    log.warning("call %s: %s %s", hook.form.get("CallSid", "-")[:40], hook.path, why)
    return twiml(say_and_hang_up(BAD_REQUEST_MESSAGE))


def bad_callback(hook: Hook, message: str) -> Answer:
    log.warning("callback refused on %s: %s", hook.path, message)
    return Answer(400, message + "\n", TEXT)


def reply(answer: Reply) -> Answer:
    return twiml(answer.twiml, answer.outcome)


def quietly(hook: Hook, work: Callable[[], object], call_sid: str) -> bool:
    """Run callback work; a store or Twilio failure is logged, and Twilio gets its 2xx anyway."""
    try:
        work()
    except CallflowError as exc:
        log.error("call %s: %s failed: %s", call_sid, hook.path, exc)
        return False
    return True


# -- the handlers


def incoming(svc: Callflow, hook: Hook, entry_flow: str) -> Answer:
    """A new call: start the flow."""
    call_sid = hook.call_sid()
    if call_sid is None:
        return polite_refusal(hook, "missing or malformed CallSid")
    flow = hook.args.get("flow") or entry_flow
    if not NAME.match(flow):
        return polite_refusal(hook, "malformed flow name")
    ref = hook.args.get("ref") or None
    if ref is not None and not REF.match(ref):
        return polite_refusal(hook, "malformed ref")
    # ?lang=cy: the number rung is the Welsh line (a language the flow does not speak is
    # ignored: the call gets the flow's first).
    language = hook.args.get("lang", "")[:8] or None
    # ?relay=1: the Relay UK number's Voice URL (a relay assistant is on the line).
    relay = hook.args.get("relay") in {"1", "true", "yes"}
    return reply(svc.engine.incoming(call_sid, flow, hook.form, hook.links, ref, language, relay))


def step(svc: Callflow, hook: Hook, entry_flow: str) -> Answer:
    """A webhook the service's TwiML asked for: gather results, timeouts, queue and dial ends."""
    call_sid = hook.call_sid()
    if call_sid is None:
        return polite_refusal(hook, "missing or malformed CallSid")
    raw_step = hook.args.get("s", "")
    if not raw_step.isdigit() or int(raw_step) > MAX_STEP:
        return polite_refusal(hook, "missing or malformed step")
    event = hook.args.get("e") or input_event(hook.form)
    if not EVENT_NAME.match(event):
        return polite_refusal(hook, "malformed event")
    return reply(svc.engine.step(call_sid, int(raw_step), event, hook.form, hook.links))


def input_event(form: dict[str, str]) -> str:
    """What a Gather's action request carries: speech, keys, or nothing."""
    if (form.get("SpeechResult") or "").strip():
        return "speech"
    if form.get("Digits"):
        return "digits"
    return "timeout"


def status(svc: Callflow, hook: Hook, entry_flow: str) -> Answer:
    """A call's status callback: what its end means is the service's to decide."""
    call_sid = hook.call_sid()
    call_status = hook.form.get("CallStatus", "")
    if call_sid is None or call_status not in CALL_STATUSES:
        log.warning("status callback refused: CallSid or CallStatus missing or malformed")
        return Answer(400, "CallSid and CallStatus are required\n", TEXT)
    svc.ends.call_status(call_sid, call_status, hook.form)
    return NO_CONTENT


def hold(svc: Callflow, hook: Hook, entry_flow: str) -> Answer:
    """The wait URL of a verified caller's conference: hold message, and a tick to ring agents."""
    call_sid = hook.caller()
    if call_sid is None:
        return polite_refusal(hook, "missing or malformed call")
    try:
        return twiml(svc.vstrs.hold_tick(call_sid, hook.links))
    except CallflowError as exc:
        log.error("call %s: hold tick failed: %s", call_sid, exc)
        return twiml(HOLD_FALLBACK)


def conference(svc: Callflow, hook: Hook, entry_flow: str) -> Answer:
    """Conference status callbacks for callers' conferences."""
    params = dict(hook.form)
    if not params.get("StatusCallbackEvent") or not params.get("FriendlyName"):
        return bad_callback(hook, "StatusCallbackEvent and FriendlyName are required")
    quietly(
        hook,
        lambda: svc.ends.conference_event(params, hook.links),
        params.get("CallSid", "-"),
    )
    return NO_CONTENT


def leg(svc: Callflow, hook: Hook, entry_flow: str) -> Answer:
    """Status callbacks of legs the service dialled for a call or placed itself: checked
    here, and what they mean decided by the service (``callflow.call_ends``)."""
    leg_sid = hook.call_sid()
    call_status = hook.form.get("CallStatus", "")
    ref = hook.args.get("ref") or None
    if leg_sid is None or call_status not in CALL_STATUSES or (ref and not REF.match(ref)):
        return bad_callback(hook, "CallSid and CallStatus are required, and ref well formed")
    try:
        svc.ends.leg_status(
            hook.args.get("role", ""),
            leg_sid,
            call_status,
            hook.form,
            hook.links,
            call_sid=hook.caller(),
            ref=ref,
        )
    except Malformed as exc:
        return bad_callback(hook, str(exc))
    return NO_CONTENT


Handler = Callable[[Callflow, Hook, str], Answer]

#: path -> (the endpoint's name in the metrics, its handler)
ROUTES: dict[str, tuple[str, Handler]] = {
    "/voice/incoming": ("incoming", incoming),
    "/voice/step": ("step", step),
    "/voice/status": ("status", status),
    "/voice/hold": ("hold", hold),
    "/voice/conference": ("conference", conference),
    "/voice/leg": ("leg", leg),
}


# -- the WSGI layer


def first_values(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A form or query string as a dict of each name's first value (as werkzeug's
    MultiDict.get reads it)."""
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in values:
            values[name] = value
    return values


class VoiceWebhooks:
    """WSGI middleware: answers every request under ``/voice/`` and hands the rest to
    ``fallback`` (Flask's own ``wsgi_app``)."""

    def __init__(
        self,
        app: Flask,
        fallback: WSGIApplication,
        routes: dict[str, tuple[str, Handler]] | None = None,
    ) -> None:
        self.app = app
        self.fallback = fallback
        #: path -> (the endpoint's name in the metrics, its handler): ROUTES unless given.
        self.routes = ROUTES if routes is None else routes

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return self.fallback(environ, start_response)
        route = self.routes.get(path)
        method = environ.get("REQUEST_METHOD", "GET")
        headers: list[tuple[str, str]] = []
        if route is None:
            answer = self._refused(method, path, 404)
        elif method != "POST":
            answer = self._refused(method, path, 405)
            headers.append(("Allow", "POST"))
        else:
            answer = self._answer(route, environ, path)
        body = answer.body.encode("utf-8")
        headers += [("Content-Type", answer.content_type), ("Content-Length", str(len(body)))]
        if method == "HEAD":  # the headers a GET would have, and no body
            body = b""
        start_response(f"{answer.status} {REASONS.get(answer.status, '')}".rstrip(), headers)
        return [body]

    def add_to_url_map(self) -> None:
        """List every voice route in the app's ``url_map`` (``flask routes`` shows them, as
        ``voice_incoming`` and so on). This layer answers them before Flask sees them;
        should one reach Flask all the same (a WSGI stack that puts something else in
        front), its view answers it exactly as this layer would."""
        for path, route in self.routes.items():
            self.app.add_url_rule(
                path, endpoint=f"voice_{route[0]}", view_func=self._view(path, route),
                methods=["POST"],
            )

    def _view(self, path: str, route: tuple[str, Handler]) -> Callable[[], Response]:
        def answer_in_flask() -> Response:
            answer = self._answer(route, request.environ, path)
            return Response(answer.body, answer.status, content_type=answer.content_type)

        answer_in_flask.__doc__ = route[1].__doc__
        return answer_in_flask

    @staticmethod
    def _refused(method: str, path: str, code: int) -> Answer:
        log.warning("voice %s %s: %s %s", method, path[:200], code, REASONS[code])
        return Answer(code, say_and_hang_up(POLITE_APOLOGY))

    def _answer(self, route: tuple[str, Handler], environ: WSGIEnvironment, path: str) -> Answer:
        """Read, check and answer one request; counted in the metrics however it ends."""
        started = time.perf_counter()
        endpoint, handler = route
        svc: Callflow = self.app.extensions[EXTENSION_KEY]
        settings = svc.settings
        # Twilio waits 15 s: the store refuses new round trips once this budget is spent.
        token = budget.start(settings.webhook_budget_seconds)
        try:
            answer = self._checked(svc, settings, handler, environ, path)
        finally:
            budget.stop(token)
        labelled(WEBHOOKS, endpoint, answer.outcome or f"http_{answer.status}").inc()
        labelled(WEBHOOK_SECONDS, endpoint).observe(time.perf_counter() - started)
        return answer

    def _checked(
        self,
        svc: Callflow,
        settings: Settings,
        handler: Handler,
        environ: WSGIEnvironment,
        path: str,
    ) -> Answer:
        try:
            body = self._body(environ)
            if body is None:
                log.warning("voice POST %s: 413 %s", path, REASONS[413])
                return Answer(413, say_and_hang_up(POLITE_APOLOGY))
            pairs = form_pairs(environ, body)
            query = environ.get("QUERY_STRING", "")
            args = (
                first_values(urllib.parse.parse_qsl(query, keep_blank_values=True)) if query else {}
            )
            # The address Twilio was given: PUBLIC_BASE_URL, or else the one asked for.
            links = svc.links(
                None
                if settings.public_base_url
                else f"{environ.get('wsgi.url_scheme', 'http')}://{get_host(environ)}"
            )
            hook = Hook(path, args, first_values(pairs), links)
            base = links.base
            url = f"{base}{path}?{query}" if query else base + path
            signature = environ.get("HTTP_X_TWILIO_SIGNATURE", "")
            if not signature_ok(settings, url, pairs, signature, hook.form, path):
                log.warning("voice POST %s: 403 %s", path, REASONS[403])
                return Answer(403, say_and_hang_up(POLITE_APOLOGY))
            return handler(svc, hook, self.app.config["CALLFLOW_ENTRY_FLOW"])
        except Exception:
            log.exception("unhandled error on POST %s", path)
            # Twilio plays its own "application error" on a 5xx: a polite goodbye is kinder.
            return twiml(say_and_hang_up(POLITE_APOLOGY), "error")

    @staticmethod
    def _body(environ: WSGIEnvironment) -> bytes | None:
        """The request body, or None when it is over the limit."""
        stream: Any = environ.get("wsgi.input")
        raw_length = environ.get("CONTENT_LENGTH") or ""
        if raw_length:
            try:
                length = int(raw_length)
            except ValueError:
                length = 0
            if length > MAX_BODY_BYTES:
                return None
            return stream.read(length) if stream is not None and length > 0 else b""
        if stream is None or not environ.get("wsgi.input_terminated"):
            return b""  # no length and no end marked: nothing is read (as werkzeug does)
        data: bytes = stream.read(MAX_BODY_BYTES + 1)
        return None if len(data) > MAX_BODY_BYTES else data


def form_pairs(environ: WSGIEnvironment, body: bytes) -> list[tuple[str, str]]:
    """The form Twilio posted, as name-value pairs in order (a body of another type, or
    one that is not UTF-8, is an empty form: werkzeug's rule too)."""
    content_type = environ.get("CONTENT_TYPE", "")
    if not body or content_type.split(";", 1)[0].strip().lower() != (
        "application/x-www-form-urlencoded"
    ):
        return []
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return []
    return urllib.parse.parse_qsl(text, keep_blank_values=True, errors="replace")
