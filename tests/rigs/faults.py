"""Rigs for fault tests: a slow proxy in front of Redis, a transport that alternates
between workers, a caller who misbehaves, and the worker processes of a gunicorn."""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import redis

from callflow.simulator import HttpTransport
from callflow.simulator.transport import HttpResult
from tests.conftest import (
    PIN,
    TEST_REDIS_URL,
    sign,
)

ANSWERS = {"school": "Hill Top", "colour": "Blue"}
HANG_UP = b'<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'


@dataclass
class Delivery:
    kind: str
    status: int
    body: bytes




def gather_action(body: bytes) -> str:
    gather = ET.fromstring(body).find("Gather")
    assert gather is not None, body
    return gather.attrib["action"]


@dataclass
class ChaosCaller:
    base: str
    number: str
    adviser: str
    rng: random.Random
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    deliveries: list[Delivery] = field(default_factory=list)
    late: list[threading.Thread] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ended_at: float | None = None

    def params(self, **extra: str) -> dict[str, str]:
        return {
            "CallSid": self.call_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.number,
            "To": "+441632960999",
            "CallStatus": "in-progress",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            **extra,
        }

    def post(
        self, url: str, params: dict[str, str], kind: str, *, forged: bool = False, pad: int = 0
    ) -> Delivery:
        signature = sign(url, params)
        if forged:
            signature = sign(url, params, token=secrets.token_hex(16))
        data = urlencode({**params, **({"Padding": "x" * pad} if pad else {})}).encode()
        headers = {"X-Twilio-Signature": signature}
        request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
                delivery = Delivery(kind, response.status, response.read())
        except urllib.error.HTTPError as exc:
            delivery = Delivery(kind, exc.code, exc.read())
        self.deliveries.append(delivery)
        return delivery

    def twice_at_once(self, url: str, params: dict[str, str], kind: str) -> bytes:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(lambda _: self.post(url, params, kind), range(2))
        if first.body != second.body:
            self.problems.append(f"{kind}: two simultaneous deliveries answered differently")
        return first.body

    def later(self, url: str, params: dict[str, str], kind: str, expected: bytes) -> None:
        """Deliver this step again after a while, when later steps have been answered.

        While the call lives the late copy must get the very same TwiML; once the call has
        ended (its end may overtake the copy) a plain hang-up is the right answer too.
        Either way nothing runs again: the test counts verifications and checks the chain.
        """

        def deliver() -> None:
            again = self.post(url, params, kind + " (late)")
            answered = time.monotonic()
            if again.status == 200 and again.body == expected:
                return
            ended = self.ended_at is not None and answered > self.ended_at
            if again.status == 200 and ended and again.body == HANG_UP:
                return
            self.problems.append(
                f"{kind}: a late delivery got another answer: {again.status} {again.body!r}"
            )

        timer = threading.Timer(self.rng.uniform(0.2, 1.5), deliver)
        timer.start()
        self.late.append(timer)

    def run(self) -> None:
        incoming = f"{self.base}/voice/incoming"
        body = self.twice_at_once(incoming, self.params(CallStatus="ringing"), "incoming")
        # 1. The adviser number: once now, once late.
        action = gather_action(body)
        params = self.params(Digits=self.adviser, FinishedOnKey="#")
        body = self.post(action, params, "adviser").body
        self.later(action, params, "adviser", body)
        # 2. The PIN: a forged copy and an oversized one first, then two at once.
        action = gather_action(body)
        params = self.params(Digits=PIN, FinishedOnKey="#")
        if self.post(action, params, "pin", forged=True).status != 403:
            self.problems.append("a forged PIN delivery was not refused")
        if self.post(action, params, "pin", pad=100_000).status != 413:
            self.problems.append("an oversized PIN delivery was not refused")
        body = self.twice_at_once(action, params, "pin")
        # 3. The answer: once, then replayed straight away.
        question = " ".join(s.text or "" for s in ET.fromstring(body).iter("Say"))
        answer = ANSWERS["school"] if "school" in question else ANSWERS["colour"]
        action = gather_action(body)
        params = self.params(SpeechResult=answer, Confidence="0.9")
        body = self.post(action, params, "answer").body
        if self.post(action, params, "answer (replay)").body != body:
            self.problems.append("a replayed answer got another answer")
        conference = ET.fromstring(body).find("Dial/Conference")
        if conference is None:
            self.problems.append(f"not put through to the conference: {body!r}")
            return
        # 4. The end of the call arrives first, the conference's events after, all twice.
        events = {
            "FriendlyName": conference.text or "",
            "ConferenceSid": "CF" + secrets.token_hex(16),
            "AccountSid": "AC" + "0" * 32,
        }
        callbacks = [
            (f"{self.base}/voice/status", self.params(CallStatus="completed", CallDuration="9")),
            (
                f"{self.base}/voice/conference",
                {
                    **events,
                    "StatusCallbackEvent": "conference-end",
                    "ReasonConferenceEnded": "last-participant-left",
                },
            ),
            (
                f"{self.base}/voice/conference",
                {**events, "StatusCallbackEvent": "participant-join", "CallSid": self.call_sid},
            ),
        ]
        self.ended_at = time.monotonic()
        for url, params in callbacks + callbacks:
            self.post(url, params, "callback")

    def finish(self) -> None:
        for timer in self.late:
            timer.join()

class Alternating(HttpTransport):
    """Sends each request to the next instance in turn, as a round-robin balancer would."""

    def __init__(self, public: str, instances: list[str]) -> None:
        self.public = public
        self.instances = instances
        self.served: list[str] = []

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        timeout: float,
    ) -> HttpResult:
        target = self.instances[len(self.served) % len(self.instances)]
        self.served.append(target)
        return super().request(
            method, url.replace(self.public, target, 1), params, headers, timeout
        )

def workers(master: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                children.append(int(entry))
    return children

class SlowProxy:
    """Forwards loopback TCP to Redis, delaying each client-to-server chunk by ``delay``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.delay = 0.0
        self.chunks = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if slow:
                    self.chunks += 1
                    if self.delay:
                        time.sleep(self.delay)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        # shutdown() wakes the thread blocked in accept(); close() alone would leave the
        # port listening until that accept returned.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

def redis_db() -> int:
    return int(redis.connection.parse_url(TEST_REDIS_URL).get("db", 0))
