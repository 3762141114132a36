"""The benchmark's baseline: a bare Flask endpoint answering constant TwiML."""

from __future__ import annotations

from flask import Flask, Response

TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/step?s=1" input="dtmf">'
    "<Say>Please key your adviser number, then press the hash key.</Say></Gather></Response>"
)


def create_app() -> Flask:
    """The bare app."""
    app = Flask(__name__)

    @app.post("/voice/incoming")
    def incoming() -> Response:
        return Response(TWIML, mimetype="text/xml")

    return app
