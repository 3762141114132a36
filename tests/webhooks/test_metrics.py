"""Metrics tell operations what they need and nothing an attacker could use: /metrics only
for a scraper with the token (or on an address of its own), and no label that tells an
unknown adviser from a wrong PIN, a wrong answer, a lockout or a missing enrolment."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from random import Random

from flask.testing import FlaskClient

from callflow.clock import ManualClock
from callflow.service import Callflow
from callflow.store import MemoryStore, Store
from tests.conftest import ADVISER, METRICS_TOKEN, Caller, enrol, free_port, make_settings
from webhooks import create_app

SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def verification_series(page: str) -> set[str]:
    return {
        line.split(" ")[0]
        for line in page.splitlines()
        if line.startswith("callflow_audit_events_total{") and "verification" in line
    }


def test_metrics_need_the_scrape_token(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    refused = client.get("/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"})
    assert refused.status_code == 401 and "Bearer" in refused.headers["WWW-Authenticate"]
    assert client.get("/metrics", headers=SCRAPE).status_code == 200


def test_without_a_token_the_web_service_serves_no_metrics(clock: ManualClock) -> None:
    svc = Callflow(make_settings(metrics_token=None), store=MemoryStore(clock), clock=clock)
    client = create_app({"CALLFLOW_SERVICE": svc}).test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=SCRAPE).status_code == 404


def test_no_metric_tells_why_a_verification_failed(store: Store, clock: ManualClock) -> None:
    settings = make_settings(number_attempts=2, lockout_threshold=4, lockout_hard_limit=10)
    svc = Callflow(settings, store=store, clock=clock, rng=Random(3))
    enrol(svc)
    svc.directory.add(
        "2002", "Not Enrolled", "top", now=clock.now(), by="tests"
    )  # no PIN, no answers
    client = create_app({"CALLFLOW_SERVICE": svc}).test_client()
    attempts = [("9999", "111111"), (ADVISER, "999999"), ("2002", "123456")]
    for n in range(6):  # the real adviser is locked out on the way, and one number waits
        for number, pin in attempts:
            caller = Caller(client, from_number=f"+44770090{n % 4:04d}")
            caller.start()
            caller.press(number)
            caller.press(pin)
    enrol(svc, "1003")
    Caller(client).verify("1003")
    after = client.get("/metrics", headers=SCRAPE).get_data(as_text=True)
    shown = verification_series(after)
    outcomes = {s.split('outcome="')[1].split('"')[0] for s in shown}
    assert outcomes <= {"not_verified", "accepted", "verified"}, shown
    assert {"not_verified", "accepted", "verified"} <= outcomes
    assert 'kind="verification.lockout"' not in after
    assert any(e["kind"] == "verification.lockout" for e in svc.audit.entries())
    kinds = {e["outcome"] for e in svc.audit.entries() if e["kind"] == "verification.pin"}
    assert {"unknown_adviser", "failed", "not_enrolled", "locked"} <= kinds, "the audit keeps it"
    assert "callflow_adviser_lockouts_total" in after, "a lockout is an alert for operations"


def test_metrics_on_an_address_of_their_own(clock: ManualClock) -> None:
    from callflow.metrics import serve

    store = MemoryStore(clock)
    port = free_port()
    threading.Thread(target=serve, args=(f"127.0.0.1:{port}", store), daemon=True).start()
    deadline = time.monotonic() + 10
    while True:
        try:
            page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
            break
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert "callflow_active_grants" in page.read().decode()
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
        raise AssertionError("only /metrics is served")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
