"""The Flask service Twilio Voice calls: ``create_app()`` wires settings, engine and blueprints.

Run it with gunicorn (see the Procfile) or ``callflow serve``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, Request, Response, jsonify, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException

from callflow.config import Settings
from callflow.demo import DEMO_NUMBER, add_demo_adviser
from callflow.logs import configure_logging
from callflow.service import Callflow

from . import api, console, health, voice
from .extension import EXTENSION_KEY

__all__ = ["create_app"]

log = logging.getLogger(__name__)

#: Twilio's webhook bodies are a few kilobytes; the API and consoles' forms are smaller.
MAX_BODY_BYTES = voice.MAX_BODY_BYTES


class ConsoleSessions(SecureCookieSessionInterface):
    """Signed-cookie sessions for the consoles only: Twilio's webhooks, the API and health
    checks never use one, so they skip reading the cookie (a key derivation per request)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith("/console"):
            return None  # Flask hands the view a null session instead
        return super().open_session(app, request)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service. ``test_config`` may hold Flask settings, ``CALLFLOW_SETTINGS``
    (overrides of :class:`~callflow.config.Settings`) or a ready ``CALLFLOW_SERVICE``."""
    _configure_logging()
    app = Flask(__name__)
    app.session_interface = ConsoleSessions()
    app.config.from_mapping(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, CALLFLOW_ENTRY_FLOW="vstrs_inbound")
    if test_config:
        app.config.from_mapping(test_config)
    service = app.config.get("CALLFLOW_SERVICE")
    if service is None:
        settings = Settings.from_env()
        if app.config.get("CALLFLOW_SETTINGS"):
            settings = settings.with_overrides(app.config["CALLFLOW_SETTINGS"])
        service = Callflow(settings)
    app.extensions[EXTENSION_KEY] = service
    settings = service.settings
    # The console's cookie names a server-side session; it is signed with a key derived
    # from the service's secret key, HttpOnly, SameSite=Strict, Secure behind HTTPS.
    app.config.update(
        SECRET_KEY=hmac.new(settings.secret_key, b"console-cookie", hashlib.sha256).digest(),
        SESSION_COOKIE_NAME="callflow_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=bool(
            settings.public_base_url and settings.public_base_url.startswith("https://")
        ),
    )
    if os.environ.get("CALLFLOW_DEMO_ADVISER") == "1" and service.store.kind == "memory":
        add_demo_adviser(service)
        log.warning("demo adviser %s added (embedded store; its secrets are public)", DEMO_NUMBER)
    _warn_about(service)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(console.bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.add_url_rule("/", "front_door", _front_door)
    # Twilio's voice webhooks are answered in front of Flask (webhooks/voice.py).
    voice_webhooks = voice.VoiceWebhooks(app, app.wsgi_app)
    voice_webhooks.add_to_url_map()
    app.wsgi_app = voice_webhooks  # type: ignore[method-assign]
    if settings.trusted_proxies:
        # The client address (console sign-in throttling counts it) and scheme are those
        # the trusted proxies saw; X-Forwarded-For from anyone else is not believed.
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    return app


def _front_door() -> Response:
    """A person who opens the service's address: the consoles (the sign-in page first)."""
    from flask import redirect

    return redirect("/console/", code=302)  # type: ignore[return-value]


def _configure_logging() -> None:
    configure_logging()


def _warn_about(service: Callflow) -> None:
    settings = service.settings
    if not settings.signature_check:
        log.warning(
            "X-Twilio-Signature checking is OFF (CALLFLOW_SIGNATURE_CHECK=off): anyone who can "
            "reach this service can drive calls. Never run like this where Twilio reaches it."
        )
    elif not settings.twilio_auth_token:
        log.warning("TWILIO_AUTH_TOKEN is not set: every Twilio webhook will be refused with 403")
    if not settings.public_base_url:
        log.warning("PUBLIC_BASE_URL is not set: signatures are checked against the Host header")
    if settings.embedded_key_generated:
        log.warning("no CALLFLOW_SECRET_KEY: using a key for this process only (embedded store)")
    if service.store.kind == "memory":
        log.warning("REDIS_URL is not set: using the embedded in-memory store (one process only)")
    elif settings.audit_checkpoints_dir is None:
        log.warning(
            "CALLFLOW_AUDIT_CHECKPOINTS is not set: a cut-off or lost audit log cannot be "
            "detected (checkpoints go to the log only)"
        )
    if service.store.kind != "memory" and settings.audit_archive_dir is None:
        log.warning(
            "CALLFLOW_AUDIT_ARCHIVE is not set: audit entries past their retention stay in Redis"
        )
    if settings.metrics_token is None:
        log.info("CALLFLOW_METRICS_TOKEN is not set: /metrics is not served here")
    for problems in service.library.problems.values():
        for problem in problems:
            log.error("flow problem at start-up: %s", problem)


#: What a console's error page is headed, by status (anything else: "There is a problem").
CONSOLE_ERROR_TITLES = {
    400: "There is a problem with what was asked",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "This could not be done",
    413: "Too large",
    422: "There is a problem with what was asked",
    429: "Too many requests",
    500: "Sorry, there is a problem with the service",
    503: "Sorry, the service is unavailable",
}


def _console_error(code: int, message: str) -> Response:
    """A console's error as a GOV.UK page (never JSON): a person is reading it."""
    from flask import render_template

    title = CONSOLE_ERROR_TITLES.get(code, "There is a problem")
    page = render_template("console/message.html", title=title, message=message)
    response = Response(page, status=code, mimetype="text/html")
    for name, value in console.SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def _wants_page() -> bool:
    """A console page asked by a browser (a live panel's JSON state keeps JSON)."""
    return request.path.startswith("/console/") and not request.path.endswith("/state")


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    if _wants_page():
        return _console_error(code, exc.description or "")
    response = jsonify(error=exc.name, status=code)
    response.status_code = code
    return response


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    if _wants_page():
        return _console_error(
            500, "Try again in a few minutes. What you were doing has not been saved."
        )
    response = jsonify(error="Internal Server Error", status=500)
    response.status_code = 500
    return response
