"""Many calls at once over HTTP against gunicorn, with Twilio misbehaving on every step.

Each call's webhooks are delivered twice at the same moment, late (after later steps were
answered), out of order (the call's end before the conference's events), replayed, and
mixed with forged and oversized copies. The service must answer every genuine delivery
of a step with the same TwiML, refuse the bad ones without a change, verify each caller
exactly once and keep the audit chain whole.

Fast in CI (20 calls); ``CALLFLOW_FAULTS_FULL=1`` runs 200.
"""

from __future__ import annotations

import os
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from callflow.config import Settings
from callflow.service import Callflow
from tests.conftest import (
    PIN,
    enrol,
    free_port,
    running_gunicorn,
    service_env,
    sign,
)

FULL = os.environ.get("CALLFLOW_FAULTS_FULL") == "1"
CALLS = 200 if FULL else 20
ANSWERS = {"school": "Hill Top", "colour": "Blue"}
HANG_UP = b'<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'


@dataclass
class Delivery:
    kind: str
    status: int
    body: bytes


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
        action = _gather_action(body)
        params = self.params(Digits=self.adviser, FinishedOnKey="#")
        body = self.post(action, params, "adviser").body
        self.later(action, params, "adviser", body)
        # 2. The PIN: a forged copy and an oversized one first, then two at once.
        action = _gather_action(body)
        params = self.params(Digits=PIN, FinishedOnKey="#")
        if self.post(action, params, "pin", forged=True).status != 403:
            self.problems.append("a forged PIN delivery was not refused")
        if self.post(action, params, "pin", pad=100_000).status != 413:
            self.problems.append("an oversized PIN delivery was not refused")
        body = self.twice_at_once(action, params, "pin")
        # 3. The answer: once, then replayed straight away.
        question = " ".join(s.text or "" for s in ET.fromstring(body).iter("Say"))
        answer = ANSWERS["school"] if "school" in question else ANSWERS["colour"]
        action = _gather_action(body)
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


def _gather_action(body: bytes) -> str:
    gather = ET.fromstring(body).find("Gather")
    assert gather is not None, body
    return gather.attrib["action"]


def test_bulk_duplicated_late_reordered_forged_and_oversized_webhooks(
    redis_store: object, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(base, tmp_path)
    settings = Settings.from_env(env)
    service = Callflow(settings)
    for n in range(CALLS):
        enrol(service, number=f"{6000 + n}")
    rng = random.Random(11)
    callers = [
        ChaosCaller(base, f"+4416329{n:05d}", f"{6000 + n}", random.Random(rng.random()))
        for n in range(CALLS)
    ]

    with running_gunicorn(env, port, tmp_path / "gunicorn.log", workers=2, threads=8):
        with ThreadPoolExecutor(min(CALLS, 50)) as pool:
            list(pool.map(lambda c: c.run(), callers))
        for caller in callers:
            caller.finish()

    problems = [f"{c.call_sid}: {p}" for c in callers for p in c.problems]
    assert problems == [], problems[:10]
    statuses = Counter(d.status for c in callers for d in c.deliveries)
    assert set(statuses) <= {200, 204, 403, 413}, statuses
    assert statuses[403] == statuses[413] == CALLS
    for delivery in (d for c in callers for d in c.deliveries if d.status == 200 and d.body):
        assert ET.fromstring(delivery.body).tag == "Response"

    verified = Counter(
        e["call_sid"] for e in service.audit.all_entries() if e["kind"] == "verification.verified"
    )
    assert verified == Counter({c.call_sid: 1 for c in callers}), "each caller verified once"
    for caller in callers:
        session = service.store.get_session(caller.call_sid)
        assert session is not None and session.ended and session.verified is not None
    assert service.audit.verify() is None, "the audit chain is whole"
