"""A tiny TwiML app for pinning the simulator's behaviour, verb by verb."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator

from callflow.clock import ManualClock
from callflow.simulator import Script, Simulator, WsgiTransport

TOKEN = "test-auth-token-0123456789abcdef"
BASE = "https://app.test"
NUMBER = "+441632960999"
CALLER = "+441632960001"

Page = str | Callable[[dict[str, str]], str | tuple[str, int]]


@dataclass
class TwimlApp:
    """Serves TwiML per path and records every request (checking its signature)."""

    pages: dict[str, Page] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    bad_signatures: int = 0

    def wsgi(self) -> Flask:
        app = Flask("twiml-test")
        validator = RequestValidator(TOKEN)

        @app.route("/<path:path>", methods=["GET", "POST"])
        def serve(path: str) -> Any:
            params = request.form.to_dict() if request.method == "POST" else {}
            url = f"{BASE}/{path}" + (
                f"?{request.query_string.decode()}" if request.query_string else ""
            )
            if not validator.validate(url, params, request.headers.get("X-Twilio-Signature", "")):
                self.bad_signatures += 1
            if request.method == "GET":
                params = request.args.to_dict()
            self.requests.append((f"/{path}", params))
            page = self.pages.get(f"/{path}")
            if page is None:
                return Response("", status=204)
            result = page(params) if callable(page) else page
            body, status = result if isinstance(result, tuple) else (result, 200)
            return Response(body, status=status, mimetype="text/xml")

        return app

    def twiml(self, path: str, body: str) -> None:
        self.pages[path] = f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'

    def got(self, path: str) -> list[dict[str, str]]:
        return [params for p, params in self.requests if p == path]


@pytest.fixture
def twiml_app() -> TwimlApp:
    return TwimlApp()


@pytest.fixture
def sim(twiml_app: TwimlApp) -> Simulator:
    simulator = Simulator(
        WsgiTransport(twiml_app.wsgi()), TOKEN, clock=ManualClock(1_800_000_000.0)
    )
    simulator.configure_number(NUMBER, f"{BASE}/voice", status_callback=f"{BASE}/status")
    return simulator


def place(sim: Simulator, script: Script | None = None) -> Any:
    leg = sim.call(NUMBER, CALLER, script or Script())
    sim.run()
    return leg
