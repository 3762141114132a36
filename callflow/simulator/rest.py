"""The slice of Twilio's REST API the service uses, answered by the simulator.

Calls (create, fetch, update), Conferences (list, fetch, update) and Participants
(create, fetch, update, delete), with the paths, form fields, JSON shapes and errors of
Twilio's published API description (shared/twilio/twilio_api_v2010.json). Reach it with
the real ``twilio.rest.Client``: in this process through :class:`SimulatorHttpClient`, or
over HTTP by pointing ``client.api.base_url`` at :class:`RestServer`.

Changes the API asks for (ring a number, redirect a call, hold a participant) are put on
the simulator's event queue and happen just after the request returns, as on Twilio: the
webhook that made the request is never re-entered.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from twilio.http import HttpClient
from twilio.http.response import Response

from .core import Conference, Leg, Participant, Simulator, new_sid

__all__ = ["RestApi", "RestServer", "SimulatorHttpClient"]

log = logging.getLogger(__name__)

PREFIX = "/2010-04-01/Accounts/"
#: MachineDetection values that ask Twilio to say who answered (AnsweredBy).
MACHINE_DETECTION = frozenset({"Enable", "DetectMessageEnd"})
Form = Mapping[str, list[str]]


class ApiError(Exception):
    """A Twilio REST error: HTTP status and Twilio error code."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def _one(form: Form, name: str, default: str | None = None) -> str | None:
    values = form.get(name)
    return values[-1] if values else default


def _bool(form: Form, name: str) -> bool | None:
    value = _one(form, name)
    if value is None:
        return None
    if value.lower() not in {"true", "false"}:
        raise ApiError(400, 21610, f"{name} must be true or false")
    return value.lower() == "true"


class RestApi:
    """Twilio's REST API over the simulator's calls and conferences."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    # ------------------------------------------------------------ entry

    def handle(
        self, method: str, path: str, form: Form, auth: tuple[str, str] | None
    ) -> tuple[int, dict[str, Any] | None]:
        """Answer one request: (HTTP status, JSON body or None for 204)."""
        try:
            self._authenticate(auth)
            return self._route(method.upper(), path, form)
        except ApiError as exc:
            return exc.status, exc.body()

    def _authenticate(self, auth: tuple[str, str] | None) -> None:
        if auth is None or auth[0] != self.sim.account_sid or auth[1] != self.sim.auth_token:
            raise ApiError(401, 20003, "Authentication Error - invalid username")

    def _route(self, method: str, path: str, form: Form) -> tuple[int, dict[str, Any] | None]:
        if not path.startswith(PREFIX):
            raise ApiError(404, 20404, f"The requested resource {path} was not found")
        account, _, rest = path[len(PREFIX) :].partition("/")
        if account != self.sim.account_sid:
            raise ApiError(404, 20404, f"The requested resource {path} was not found")
        parts = rest.removesuffix(".json").split("/")
        if parts == ["Calls"] and method == "POST":
            return 201, self.create_call(form)
        if len(parts) == 2 and parts[0] == "Calls":
            leg = self._leg(parts[1])
            if method == "GET":
                return 200, self.call_json(leg)
            if method == "POST":
                return 200, self.update_call(leg, form)
        if parts == ["Conferences"] and method == "GET":
            return 200, self.list_conferences(form, path)
        if len(parts) >= 2 and parts[0] == "Conferences":
            if len(parts) == 3 and parts[2] == "Participants" and method == "POST":
                return 201, self.create_participant(parts[1], form)
            conf = self._conference(parts[1])
            if len(parts) == 2 and method == "GET":
                return 200, self.conference_json(conf)
            if len(parts) == 2 and method == "POST":
                return 200, self.update_conference(conf, form)
            if len(parts) == 3 and parts[2] == "Participants" and method == "GET":
                items = [self.participant_json(conf, p) for p in conf.participants.values()]
                return 200, self._page("participants", items, path)
            if len(parts) == 4 and parts[2] == "Participants":
                participant = self._participant(conf, parts[3])
                if method == "GET":
                    return 200, self.participant_json(conf, participant)
                if method == "POST":
                    return 200, self.update_participant(conf, participant, form)
                if method == "DELETE":
                    self.kick(conf, participant)
                    return 204, None
        raise ApiError(404, 20404, f"The requested resource {path} was not found")

    # ------------------------------------------------------------ look-ups

    def _leg(self, sid: str) -> Leg:
        leg = self.sim.legs.get(sid)
        if leg is None:
            raise ApiError(404, 20404, f"The requested resource /Calls/{sid}.json was not found")
        return leg

    def _conference(self, sid_or_name: str) -> Conference:
        for conf in self.sim.conferences.values():
            if sid_or_name in {conf.sid, conf.name}:
                return conf
        raise ApiError(
            404, 20404, f"The requested resource /Conferences/{sid_or_name}.json was not found"
        )

    def _participant(self, conf: Conference, call_sid: str) -> Participant:
        participant = conf.participants.get(call_sid)
        if participant is None:
            raise ApiError(
                404, 20404, f"The requested resource /Participants/{call_sid}.json was not found"
            )
        return participant

    # ------------------------------------------------------------ JSON shapes

    def _date(self, at: float | None) -> str | None:
        if at is None:
            return None
        return format_datetime(datetime.fromtimestamp(at, UTC))

    def _uri(self, tail: str) -> str:
        return f"{PREFIX}{self.sim.account_sid}/{tail}.json"

    def call_json(self, leg: Leg) -> dict[str, Any]:
        """A call in the shape of api.v2010.account.call."""
        duration = None
        if not leg.live and leg.answered_at is not None and leg.ended_at is not None:
            duration = str(int(leg.ended_at - leg.answered_at))
        return {
            "sid": leg.sid,
            "date_created": self._date(leg.started_at),
            "date_updated": self._date(leg.ended_at or leg.answered_at or leg.started_at),
            "parent_call_sid": leg.parent.sid if leg.parent else None,
            "account_sid": self.sim.account_sid,
            "to": leg.to,
            "to_formatted": leg.to,
            "from": leg.from_,
            "from_formatted": leg.from_,
            "phone_number_sid": None,
            "status": leg.status,
            "start_time": self._date(leg.answered_at),
            "end_time": self._date(leg.ended_at),
            "duration": duration,
            "price": None,
            "price_unit": "USD",
            "direction": leg.direction,
            "answered_by": None,
            "api_version": "2010-04-01",
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": self._uri(f"Calls/{leg.sid}"),
            "subresource_uris": {
                "notifications": self._uri(f"Calls/{leg.sid}/Notifications"),
                "recordings": self._uri(f"Calls/{leg.sid}/Recordings"),
            },
        }

    def conference_json(self, conf: Conference) -> dict[str, Any]:
        """A conference in the shape of api.v2010.account.conference."""
        body = {
            "account_sid": self.sim.account_sid,
            "date_created": self._date(conf.created_at),
            "date_updated": self._date(conf.ended_at or conf.created_at),
            "api_version": "2010-04-01",
            "friendly_name": conf.name,
            "region": "us1",
            "sid": conf.sid,
            "status": conf.status,
            "uri": self._uri(f"Conferences/{conf.sid}"),
            "subresource_uris": {
                "participants": self._uri(f"Conferences/{conf.sid}/Participants"),
                "recordings": self._uri(f"Conferences/{conf.sid}/Recordings"),
            },
            "reason_conference_ended": conf.reason_ended,
        }
        # The API description allows no null here: while a conference runs, leave it out.
        return {key: value for key, value in body.items() if value is not None}

    def participant_json(self, conf: Conference, participant: Participant) -> dict[str, Any]:
        """A participant in the shape of api.v2010.account.conference.participant."""
        leg = participant.leg
        if leg.live and leg.waiting and leg.waiting[0] == "conference":
            status = "connected"
        elif leg.status in {"queued", "ringing"}:
            status = "ringing" if leg.status == "ringing" else "queued"
        elif leg.status in {"busy", "failed", "no-answer", "canceled"}:
            status = "failed"
        else:
            status = "complete"
        return {
            "account_sid": self.sim.account_sid,
            "call_sid": leg.sid,
            "label": participant.label,
            "call_sid_to_coach": participant.coaching,
            "coaching": bool(participant.coaching),
            "conference_sid": conf.sid,
            "date_created": self._date(participant.joined_at or leg.started_at),
            "date_updated": self._date(self.sim.clock.now()),
            "end_conference_on_exit": participant.end_on_exit,
            "muted": participant.muted,
            "hold": participant.hold,
            "start_conference_on_enter": participant.start_on_enter,
            "status": status,
            "queue_time": "0",
            "uri": self._uri(f"Conferences/{conf.sid}/Participants/{leg.sid}"),
        }

    def _page(self, key: str, items: list[dict[str, Any]], path: str) -> dict[str, Any]:
        return {
            key: items,
            "end": max(len(items) - 1, 0),
            "first_page_uri": f"{path}?PageSize=50&Page=0",
            "next_page_uri": None,
            "page": 0,
            "page_size": 50,
            "previous_page_uri": None,
            "start": 0,
            "uri": f"{path}?PageSize=50&Page=0",
        }

    # ------------------------------------------------------------ calls

    def create_call(self, form: Form) -> dict[str, Any]:
        """Calls create: ring ``To`` from ``From`` and play ``Url`` or ``Twiml`` when answered."""
        to, from_ = _one(form, "To"), _one(form, "From")
        url, twiml = _one(form, "Url"), _one(form, "Twiml")
        if not to:
            raise ApiError(400, 21201, "No 'To' number is specified")
        if not from_:
            raise ApiError(400, 21603, "A 'From' phone number is required")
        if not url and not twiml:
            raise ApiError(400, 21205, "Url parameter is required")
        if url and not url.startswith(("http://", "https://")):
            raise ApiError(400, 21205, f"Url is not a valid URL: {url}")
        events = {
            e
            for value in form.get("StatusCallbackEvent", [])
            for e in value.replace(",", " ").split()
        }
        timeout = _one(form, "Timeout", "60") or "60"
        if not timeout.isdigit():
            raise ApiError(400, 21216, "Timeout must be a whole number of seconds")
        leg = self.sim.place_outbound(
            to,
            from_,
            url=url,
            twiml=twiml,
            method=(_one(form, "Method", "POST") or "POST").upper(),
            status_callback=_one(form, "StatusCallback"),
            status_events=(events or {"completed"}),
            status_method=(_one(form, "StatusCallbackMethod", "POST") or "POST").upper(),
            timeout=float(timeout),
            machine_detection=(_one(form, "MachineDetection") or "") in MACHINE_DETECTION,
        )
        return self.call_json(leg)

    def update_call(self, leg: Leg, form: Form) -> dict[str, Any]:
        """Calls update: new TwiML (Url or Twiml), or Status completed/canceled."""
        status = _one(form, "Status")
        url, twiml = _one(form, "Url"), _one(form, "Twiml")
        if status is not None and status not in {"completed", "canceled"}:
            raise ApiError(400, 21218, f"Status must be completed or canceled, not {status}")
        if status is None and not url and not twiml:
            raise ApiError(400, 21205, "Url, Twiml or Status is required")
        if not leg.live:
            raise ApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
        if status == "canceled":
            if leg.status in {"queued", "ringing"}:
                self.sim.schedule(0, lambda: self.sim.end_leg(leg, "canceled"))
        elif status == "completed":
            self.sim.schedule(0, lambda: self.sim.end_leg(leg, "completed"))
        elif twiml:
            self.sim.schedule(0, lambda: self.sim.play_twiml(leg, twiml))
        elif url:
            method = (_one(form, "Method", "POST") or "POST").upper()
            self.sim.schedule(0, lambda: self.sim.redirect(leg, url, method))
        return self.call_json(leg)

    # ------------------------------------------------------------ conferences

    def list_conferences(self, form: Form, path: str) -> dict[str, Any]:
        """Conferences list, filtered by FriendlyName and Status."""
        name, status = _one(form, "FriendlyName"), _one(form, "Status")
        items = [
            self.conference_json(c)
            for c in self.sim.conferences.values()
            if (name is None or c.name == name) and (status is None or c.status == status)
        ]
        return self._page("conferences", items, path)

    def update_conference(self, conf: Conference, form: Form) -> dict[str, Any]:
        """Conferences update: Status=completed ends it; AnnounceUrl speaks to everyone."""
        status = _one(form, "Status")
        if status is not None and status != "completed":
            raise ApiError(400, 21218, f"Status can only be completed, not {status}")
        if status == "completed":
            self.sim.schedule(0, lambda: self.sim.end_conference(conf, "conference-ended-via-api"))
        announce = _one(form, "AnnounceUrl")
        if announce:
            legs = [participant.leg for participant in conf.participants.values()]

            def announce_to_all() -> None:
                for leg in legs:
                    self.sim.announce(leg, announce)

            self.sim.schedule(0, announce_to_all)
        return self.conference_json(conf)

    def create_participant(self, conference: str, form: Form) -> dict[str, Any]:
        """Participants create: ring ``To`` and put them in the conference when they answer."""
        to, from_ = _one(form, "To"), _one(form, "From")
        if not to:
            raise ApiError(400, 21201, "No 'To' number is specified")
        if not from_:
            raise ApiError(400, 21603, "A 'From' phone number is required")
        conf = next(
            (c for c in self.sim.conferences.values() if conference in {c.sid, c.name}), None
        )
        if conf is None or conf.status == "completed":
            if conference.startswith("CF"):
                raise ApiError(
                    404, 20404, f"The requested resource /Conferences/{conference} was not found"
                )
            conf = Conference(new_sid("CF"), conference, self.sim.clock.now())
            self.sim.conferences[conference] = conf
        events = {
            e
            for value in form.get("StatusCallbackEvent", [])
            for e in value.replace(",", " ").split()
        }
        conf_events = {
            e
            for value in form.get("ConferenceStatusCallbackEvent", [])
            for e in value.replace(",", " ").split()
        }
        if _one(form, "ConferenceStatusCallback") and not conf.status_callback:
            conf.status_callback = _one(form, "ConferenceStatusCallback")
            conf.status_events = conf_events or {"start", "end"}
            conf.status_method = (
                _one(form, "ConferenceStatusCallbackMethod", "POST") or "POST"
            ).upper()
        timeout = _one(form, "Timeout", "60") or "60"
        if not timeout.isdigit():
            raise ApiError(400, 21216, "Timeout must be a whole number of seconds")
        label = _one(form, "Label")
        if label is not None and not re.fullmatch(r"[\w .:-]{1,128}", label):
            raise ApiError(400, 21610, "Label must be 1 to 128 letters, digits, spaces and ._:-")
        participant_options = {
            "start_on_enter": _bool(form, "StartConferenceOnEnter") is not False,
            "end_on_exit": bool(_bool(form, "EndConferenceOnExit")),
            "muted": bool(_bool(form, "Muted")),
            "label": label,
            "coaching": _one(form, "CallSidToCoach") if _bool(form, "Coaching") else None,
            "wait_url": _one(form, "WaitUrl"),
        }
        leg = self.sim.place_outbound(
            to,
            from_,
            status_callback=_one(form, "StatusCallback"),
            status_events=events or {"completed"},
            status_method=(_one(form, "StatusCallbackMethod", "POST") or "POST").upper(),
            timeout=float(timeout),
            join=(conf, participant_options),
        )
        placeholder = Participant(leg, **participant_options)  # type: ignore[arg-type]
        return self.participant_json(conf, placeholder)

    def update_participant(
        self, conf: Conference, participant: Participant, form: Form
    ) -> dict[str, Any]:
        """Participants update: hold (with HoldUrl), mute, announce, end-on-exit, coaching."""
        hold, muted = _bool(form, "Hold"), _bool(form, "Muted")
        end_on_exit, coaching = _bool(form, "EndConferenceOnExit"), _bool(form, "Coaching")
        hold_url, announce = _one(form, "HoldUrl"), _one(form, "AnnounceUrl")
        if coaching and not _one(form, "CallSidToCoach") and not participant.coaching:
            raise ApiError(400, 16025, "CallSidToCoach is required when Coaching is true")
        if end_on_exit is not None:
            participant.end_on_exit = end_on_exit
        if coaching is not None:
            participant.coaching = (
                (_one(form, "CallSidToCoach") or participant.coaching) if coaching else None
            )
        if hold is not None and hold != participant.hold:
            participant.hold = hold
            hold_method = (_one(form, "HoldMethod", "GET") or "GET").upper()
            self.sim.schedule(
                0, lambda: self.sim.set_hold(conf, participant, hold, hold_url, hold_method)
            )
        if muted is not None and muted != participant.muted:
            participant.muted = muted
            self.sim.schedule(0, lambda: self.sim.set_muted(conf, participant, muted))
        if announce:
            self.sim.schedule(0, lambda: self.sim.announce(participant.leg, announce))
        return self.participant_json(conf, participant)

    def kick(self, conf: Conference, participant: Participant) -> None:
        """Participants delete: the participant is taken out of the conference."""
        self.sim.schedule(0, lambda: self.sim.kick(conf, participant))


class SimulatorHttpClient(HttpClient):  # type: ignore[misc]
    """A ``twilio.http.HttpClient`` that hands requests to the simulator in this process."""

    def __init__(self, api: RestApi) -> None:
        super().__init__(logger=log, is_async=False)
        self.api = api
        self.lock = threading.Lock()

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        form: dict[str, list[str]] = {}
        for source in (params or {}, data or {}):
            for key, value in source.items():
                values = value if isinstance(value, list | tuple) else [value]
                form.setdefault(key, []).extend(str(v) for v in values)
        path = urllib.parse.urlsplit(uri).path
        with self.lock:
            status, body = self.api.handle(method, path, form, auth)
        return Response(status, json.dumps(body) if body is not None else "")


class RestServer:
    """The REST API over HTTP on a loopback port, for a service in another process."""

    def __init__(self, api: RestApi, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api = api
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                form = urllib.parse.parse_qs(body, keep_blank_values=True)
                for key, values in urllib.parse.parse_qs(parts.query).items():
                    form.setdefault(key, []).extend(values)
                with lock:
                    status, payload = api.handle(
                        self.command,
                        parts.path,
                        form,
                        _basic_auth(self.headers.get("Authorization", "")),
                    )
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("rest %s", format % args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """What to set ``client.api.base_url`` to."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RestServer:
        """Serve in a background thread."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def _basic_auth(value: str) -> tuple[str, str] | None:
    if not value.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
    except ValueError:
        return None
    return user, password
