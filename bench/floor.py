"""The floors the saturation runs are measured against, to say where a webhook's time goes.

Each is served by gunicorn under the Procfile's settings, like the baseline and the
service, and driven by the same signed Voice URL requests:

- :func:`constant`: a bare WSGI callable that reads the body and answers the baseline's
  constant TwiML: what gunicorn itself costs a request (its HTTP parsing, threads, access
  log), the floor under every figure;
- :func:`voice_layer`: the service as built by ``create_app()``, with the Voice URL's
  handler answering constant TwiML: the voice layer's own work (the body read and parsed,
  the signature checked, the webhook budget, the metrics), without the engine or a store
  round trip.

bench/run.py subtracts them: the baseline minus ``constant`` is Flask's share; the Voice
URL minus ``voice_layer`` is the engine's and the store's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from bench.baseline import TWIML
from webhooks import create_app
from webhooks.voice import ROUTES, Answer, Hook, VoiceWebhooks, twiml

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from flask import Flask

    from callflow.service import Callflow

BODY = TWIML.encode("utf-8")
HEADERS = [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(BODY)))]


def _constant_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("200 OK", HEADERS)
    return [BODY]


def constant() -> object:
    """gunicorn's floor: no framework, no work."""
    return _constant_app


def _answer_constant(svc: Callflow, hook: Hook, entry_flow: str) -> Answer:
    return twiml(TWIML, "ok")


def voice_layer() -> Flask:
    """The service with the Voice URL answering constant TwiML once the request is read
    and its signature checked."""
    app = create_app()
    layer = app.wsgi_app
    if not isinstance(layer, VoiceWebhooks):
        raise SystemExit("bench/floor.py: the voice layer is not the app's outer WSGI layer")
    layer.routes = {**ROUTES, "/voice/incoming": ("incoming", _answer_constant)}
    return app
