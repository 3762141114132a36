"""How the simulator reaches the service: in-process (any WSGI app) or over HTTP.

Both sign requests exactly as Twilio does (``X-Twilio-Signature``: HMAC-SHA1 over the
URL and the sorted POST parameters, from the twilio library's ``RequestValidator``).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from twilio.request_validator import RequestValidator

__all__ = ["HttpResult", "HttpTransport", "Transport", "TransportError", "WsgiTransport", "sign"]


@dataclass(frozen=True)
class HttpResult:
    """The service's answer to one request."""

    status: int
    body: bytes
    content_type: str
    elapsed: float


class TransportError(Exception):
    """The request got no answer: connection refused, reset, or timed out."""

    def __init__(self, message: str, *, connect: bool) -> None:
        super().__init__(message)
        self.connect = connect


class Transport(Protocol):
    """Something that delivers one HTTP request to the service."""

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        timeout: float,
    ) -> HttpResult:
        """Send it; raise TransportError when there is no answer."""
        ...


def sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send for this URL and POST parameters."""
    signature: str = RequestValidator(auth_token).compute_signature(url, dict(params))
    return signature


class HttpTransport:
    """Real HTTP, for a service running elsewhere (gunicorn, a tunnel)."""

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        timeout: float,
    ) -> HttpResult:
        data = urllib.parse.urlencode(params).encode() if method == "POST" else None
        if method == "GET" and params:
            url = url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))  # noqa: S310
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                body = response.read()
                return HttpResult(
                    response.status,
                    body,
                    response.headers.get_content_type(),
                    time.monotonic() - started,
                )
        except urllib.error.HTTPError as exc:
            return HttpResult(
                exc.code, exc.read(), exc.headers.get_content_type(), time.monotonic() - started
            )
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            connect = isinstance(reason, ConnectionRefusedError | ConnectionResetError)
            raise TransportError(str(reason), connect=connect) from exc


class WsgiTransport:
    """Straight into a WSGI app in this process (Flask's or any other), no sockets."""

    def __init__(self, app: Callable[..., Any]) -> None:
        from werkzeug.test import Client

        self.client = Client(app)

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        timeout: float,
    ) -> HttpResult:
        parts = urllib.parse.urlsplit(url)
        path = parts.path or "/"
        base = f"{parts.scheme}://{parts.netloc}"
        started = time.monotonic()
        if method == "POST":
            response = self.client.post(
                path,
                query_string=parts.query,
                data=dict(params),
                headers=dict(headers),
                base_url=base,
            )
        else:
            query = (
                parts.query
                + ("&" if parts.query and params else "")
                + urllib.parse.urlencode(params)
            )
            response = self.client.get(
                path, query_string=query, headers=dict(headers), base_url=base
            )
        return HttpResult(
            response.status_code,
            response.get_data(),
            response.mimetype or "",
            time.monotonic() - started,
        )
