"""Checking ``X-Twilio-Signature`` on every Twilio-facing request.

The URL signed is the one Twilio requested: PUBLIC_BASE_URL (when the service sits
behind a proxy or tunnel) plus the path and query string of this request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping

from flask import Request
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from callflow.config import Settings
from callflow.metrics import SIGNATURE_FAILURES

log = logging.getLogger(__name__)


def public_url(req: Request, settings: Settings) -> str:
    """The full URL Twilio used for this request."""
    base = (settings.public_base_url or req.host_url).rstrip("/")
    query = req.query_string.decode("latin-1")
    return f"{base}{req.path}" + (f"?{query}" if query else "")


def expected_signature(
    token: str, url: str, params: MultiDict[str, str] | Mapping[str, str]
) -> str:
    """Twilio's signature of a request (HMAC-SHA1 of the URL and the parameters, sorted by
    name then value, base64), as twilio's RequestValidator.compute_signature computes it,
    without its per-parameter look-ups: one join and one HMAC on the webhook path."""
    if isinstance(params, MultiDict):
        pairs = sorted({(k, v) for k, vs in params.lists() for v in vs})
    else:
        pairs = sorted(params.items())
    text = url + "".join(k + v for k, v in pairs)
    mac = hmac.new(token.encode("utf-8"), text.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


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
    url = public_url(req, settings)
    # The URL as requested first: one HMAC. twilio's validate() always computes two (with
    # and without an explicit port); it is only needed when the first does not match.
    expected = expected_signature(settings.twilio_auth_token, url, req.form)
    given = signature.encode("utf-8", "replace")
    if hmac.compare_digest(expected.encode(), given):
        return True
    if RequestValidator(settings.twilio_auth_token).validate(url, req.form, signature):
        return True
    log.warning("call %s: refused %s: X-Twilio-Signature does not match", call_sid, req.path)
    SIGNATURE_FAILURES.inc()
    return False
