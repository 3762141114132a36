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
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from callflow.config import Settings
from callflow.service import Callflow
from tests.conftest import (
    enrol,
    free_port,
    running_gunicorn,
    service_env,
)
from tests.rigs.faults import ChaosCaller

FULL = os.environ.get("CALLFLOW_FAULTS_FULL") == "1"
CALLS = 200 if FULL else 20
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
