"""Checking ``X-Twilio-Signature`` on every Twilio-facing request.

The URL signed is the one Twilio requested: PUBLIC_BASE_URL (when the service sits
behind a proxy or tunnel) plus the path and query string of this request.
"""

from __future__ import annotations

import hmac
import logging

from flask import Request
from twilio.request_validator import RequestValidator

from callflow.config import Settings
from callflow.metrics import SIGNATURE_FAILURES

log = logging.getLogger(__name__)


def public_url(req: Request, settings: Settings) -> str:
    """The full URL Twilio used for this request."""
    base = (settings.public_base_url or req.host_url).rstrip("/")
    query = req.query_string.decode("latin-1")
    return f"{base}{req.path}" + (f"?{query}" if query else "")


def signature_ok(req: Request, settings: Settings) -> bool:
    """Whether the request carries a valid Twilio signature (or checking is off)."""
    if not settings.signature_check:
        return True
    signature = req.headers.get("X-Twilio-Signature", "")
    call_sid = req.form.get("CallSid", "-")[:40]
    if not signature:
        log.warning("call %s: refused %s: no X-Twilio-Signature", call_sid, req.path)
        SIGNATURE_FAILURES.inc()
        return False
    if not settings.twilio_auth_token:
        log.warning("call %s: refused %s: TWILIO_AUTH_TOKEN is not set", call_sid, req.path)
        return False
    validator = RequestValidator(settings.twilio_auth_token)
    url = public_url(req, settings)
    # The URL as requested first: one HMAC. twilio's validate() always computes two (with
    # and without an explicit port); it is only needed when the first does not match.
    expected = validator.compute_signature(url, req.form)
    given = signature.encode("utf-8", "replace")
    if hmac.compare_digest(expected.encode(), given):
        return True
    if validator.validate(url, req.form, signature):
        return True
    log.warning("call %s: refused %s: X-Twilio-Signature does not match", call_sid, req.path)
    SIGNATURE_FAILURES.inc()
    return False
