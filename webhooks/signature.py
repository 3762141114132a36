"""Checking ``X-Twilio-Signature`` on every Twilio-facing request.

The URL signed is the one Twilio requested: PUBLIC_BASE_URL (when the service sits
behind a proxy or tunnel) plus the path and query string of this request (the voice
webhooks build it: webhooks/voice.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping, Sequence

from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from callflow.config import Settings
from callflow.metrics import SIGNATURE_FAILURES

log = logging.getLogger(__name__)


def expected_signature(
    token: str,
    url: str,
    params: MultiDict[str, str] | Mapping[str, str] | Sequence[tuple[str, str]],
) -> str:
    """Twilio's signature of a request (HMAC-SHA1 of the URL and the parameters, sorted by
    name then value, base64), as twilio's RequestValidator.compute_signature computes it,
    without its per-parameter look-ups: one join and one HMAC on the webhook path."""
    if isinstance(params, MultiDict):
        pairs = sorted({(k, v) for k, vs in params.lists() for v in vs})
    elif isinstance(params, Mapping):
        pairs = sorted(params.items())
    else:  # name-value pairs as posted: a value repeated under one name counts once
        pairs = sorted(set(params))
    text = url + "".join(k + v for k, v in pairs)
    mac = hmac.new(token.encode("utf-8"), text.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def signature_ok(
    settings: Settings,
    url: str,
    pairs: Sequence[tuple[str, str]],
    signature: str,
    form: Mapping[str, str],
    path: str,
) -> bool:
    """Whether a request to ``url`` with the form ``pairs`` carries a valid Twilio
    ``signature`` (or checking is off); ``form`` and ``path`` name it in the log."""
    if not settings.signature_check:
        return True
    call_sid = form.get("CallSid", "-")[:40]
    if not signature:
        log.warning("call %s: refused %s: no X-Twilio-Signature", call_sid, path)
        SIGNATURE_FAILURES.inc()
        return False
    if not settings.twilio_auth_token:
        log.warning("call %s: refused %s: TWILIO_AUTH_TOKEN is not set", call_sid, path)
        return False
    # The URL as requested first: one HMAC. twilio's validate() always computes two (with
    # and without an explicit port); it is only needed when the first does not match.
    expected = expected_signature(settings.twilio_auth_token, url, pairs)
    if hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return True
    if RequestValidator(settings.twilio_auth_token).validate(url, MultiDict(pairs), signature):
        return True
    log.warning("call %s: refused %s: X-Twilio-Signature does not match", call_sid, path)
    SIGNATURE_FAILURES.inc()
    return False
