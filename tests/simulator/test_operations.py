"""Metrics, JSON logs, and scans: no secret anywhere, no personal data kept for ever."""

from __future__ import annotations

import json
import logging
import pathlib
import random
import re
from typing import Any

import pytest

from callflow.clock import ManualClock
from callflow.logs import JsonFormatter
from callflow.simulator import Script
from callflow.store import Store
from callflow.store.redis import RedisStore
from tests.conftest import ADVISER, ANSWERS, METRICS_TOKEN, PIN
from tests.rigs import Rig, metric


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    return Rig(store, clock)




SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def test_metrics_reflect_a_call(rig: Rig) -> None:
    before = rig.api.get("/metrics", headers=SCRAPE).get_data(as_text=True)
    caller, _ = rig.taken_over()
    page = rig.api.get("/metrics", headers=SCRAPE)
    assert page.status_code == 200 and page.mimetype == "text/plain"
    after = page.get_data(as_text=True)

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("callflow_webhooks_total", endpoint="incoming", outcome="ok") >= 1
    assert grew("callflow_webhooks_total", endpoint="step", outcome="ok") >= 3
    assert grew("callflow_calls_total", flow="vstrs_inbound") >= 1
    assert grew("callflow_states_entered_total", flow="vstrs_inbound", state="ask_pin") >= 1
    assert (
        grew("callflow_audit_events_total", kind="verification.verified", outcome="verified") >= 1
    )
    assert grew("callflow_audit_events_total", kind="handoff.sees_check", outcome="match") >= 1
    assert grew("callflow_audit_events_total", kind="grant.issued", outcome="active") >= 1
    assert metric(after, "callflow_active_grants") == 1
    assert "callflow_webhook_seconds_bucket" in after
    rig.sim.hang_up(caller)
    rig.sim.run()
    ended = rig.api.get("/metrics", headers=SCRAPE).get_data(as_text=True)
    assert metric(ended, "callflow_active_grants") == 0
    assert metric(ended, "callflow_audit_events_total", kind="grant.ended") >= 1


def test_json_logs_carry_the_call_sid() -> None:
    record = logging.LogRecord(
        "callflow.engine",
        logging.INFO,
        __file__,
        1,
        "call %s: digits -> ask_pin (step 2)",
        ("CA" + "a" * 32,),
        None,
    )
    line = json.loads(JsonFormatter().format(record))
    assert (
        line["call_sid"] == "CA" + "a" * 32
        and line["level"] == "info"
        and line["logger"] == "callflow.engine"
    )


@pytest.mark.parametrize(
    "message",
    [
        "call CA" + "b" * 32 + ": new call on flow vstrs_inbound@3: start -> greeting (step 1)",
        'quote " backslash \\ newline \n tab \t Welsh \u0175 emoji \U0001f642 NUL \x00 \u2028',
        "",
    ],
)
def test_json_log_lines_are_what_json_dumps_writes(message: str) -> None:
    """The hand-built line is json.dumps's text for the same fields, timestamp included."""
    from datetime import UTC, datetime

    formatter = JsonFormatter()
    for created in (1_795_000_000.0, 1_795_000_000.5, 1_795_000_001.25, 1_795_000_000.999):
        record = logging.LogRecord(
            "callflow.engine", logging.WARNING, __file__, 1, message, (), None
        )
        record.created = created
        expected: dict[str, str] = {
            "ts": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
            "level": "warning",
            "logger": "callflow.engine",
            "message": message,
        }
        if "CA" + "b" * 32 in message:
            expected["call_sid"] = "CA" + "b" * 32
        assert formatter.format(record) == json.dumps(expected, ensure_ascii=False)
    try:
        raise ValueError("the store said no")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "webhooks", logging.ERROR, __file__, 1, message, (), sys.exc_info()
        )
    assert json.loads(formatter.format(record))["error"] == "ValueError: the store said no"


def test_log_lines_from_many_threads_arrive_whole(tmp_path: pathlib.Path) -> None:
    """The line handler writes each record with one write(2) and no lock: lines from
    threads at once never interleave (short ones whole by the pipe's rule, a long
    traceback under the lock), and a record still says which process wrote it (gunicorn's
    own log lines print it)."""
    import os
    import threading

    from callflow.logs import LineHandler, configure_logging

    configure_logging()
    path = tmp_path / "log"
    with path.open("a") as stream:
        handler = LineHandler(stream)
        handler.setFormatter(JsonFormatter())
        logger = logging.getLogger("callflow.test_lines")
        logger.propagate = False
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        long_text = "x" * 10_000

        def work(n: int) -> None:
            for i in range(300):
                logger.info("call %s: line %s of thread %s", "CA" + "c" * 32, i, n)
                if i % 100 == 0:
                    logger.info("long %s %s", n, long_text)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        logger.removeHandler(handler)
    lines = path.read_text().splitlines()
    assert len(lines) == 8 * 303
    entries = [json.loads(line) for line in lines]
    assert sum(1 for e in entries if e["message"].startswith("long ")) == 24
    assert all(len(e["message"]) > 10_000 for e in entries if e["message"].startswith("long "))
    record = logging.getLogger("gunicorn.error").makeRecord(
        "gunicorn.error", logging.INFO, __file__, 1, "Booting worker", (), None
    )
    assert record.process == os.getpid()


def redis_dump(store: RedisStore) -> str:
    """Every value in the tests' Redis database, as text."""
    client = store.client
    parts = []
    for key in client.keys("*"):
        kind = client.type(key)
        if kind == "string":
            parts.append(client.get(key))
        elif kind == "hash":
            parts.append(json.dumps(client.hgetall(key)))
        elif kind == "set":
            parts.append(json.dumps(sorted(client.smembers(key))))
        elif kind == "stream":
            parts.append(json.dumps(client.xrange(key)))
        elif kind == "list":
            parts.append(json.dumps(client.lrange(key, 0, -1)))
        parts.append(key)
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_no_pin_or_answer_anywhere_after_a_fuzzed_run(
    rig: Rig, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    chooser = random.Random(20261123)
    answers = {"school": ANSWERS["first_school"], "colour": ANSWERS["favourite_colour"]}
    for n in range(2):  # some get all the way through
        rig.sim.call(
            "+441632960999",
            f"+4416329603{n:02d}",
            Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(answers).hang_up(after=20),
        )
    for n in range(12):
        script = Script()
        for _ in range(chooser.randint(1, 7)):
            pick = chooser.random()
            if pick < 0.25:
                script.press(f"{ADVISER}#")
            elif pick < 0.45:
                script.press(f"{PIN}#")
            elif pick < 0.6:
                script.press(
                    "".join(chooser.choice("0123456789*#") for _ in range(chooser.randint(1, 12)))
                )
            elif pick < 0.75:
                script.say(chooser.choice([*ANSWERS.values(), "hill top", "BLUE!", "no idea"]))
            elif pick < 0.85:
                script.answer(
                    {"school": ANSWERS["first_school"], "colour": ANSWERS["favourite_colour"]}
                )
            else:
                script.silent()
        rig.sim.call("+441632960999", f"+4416329602{n:02d}", script.hang_up(after=30))
    rig.sim.run()
    assert any(e["kind"] == "verification.verified" for e in rig.svc.audit.entries()), (
        "some calls got through"
    )
    from callflow.cli.main import main

    export = tmp_path / "audit.jsonl"
    from callflow.cli import common as cli_common

    original = cli_common.service
    cli_common.service = lambda: rig.svc  # type: ignore[assignment]
    try:
        assert main(["audit", "export", "-o", str(export)]) == 0
    finally:
        cli_common.service = original
    assert isinstance(rig.svc.store, RedisStore)
    haystacks = {
        "redis": redis_dump(rig.svc.store),
        "logs": caplog.text,
        "export": export.read_text(),
    }
    for where, text in haystacks.items():
        assert PIN not in text, f"the PIN is in {where}"
        for answer in ANSWERS.values():
            assert answer not in text, f"an answer is in {where}"
        squashed = re.sub(r"[^a-z0-9]", "", text.lower())
        assert "hilltop" not in squashed, f"an answer (folded) is in {where}"
        assert "blue" not in text.lower(), f"an answer is in {where}"


#: Keys that may live without an expiry: configuration and registries, never call data.
@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_no_key_with_personal_data_lives_for_ever(rig: Rig) -> None:
    """A full run of every flow (a verified call handed off and ended, the officer line, a
    meeting call, console sign-ins and a throttle), then every key in Redis must belong to
    a retention family, and every key of a family that should expire must carry an expiry."""
    from callflow.links import ServiceLinks
    from callflow.simulator import Callee
    from tests.conftest import BASE_URL
    from tests.rigs import sign_in

    svc = rig.svc
    caller, _ = rig.taken_over()
    rig.sim.hang_up(caller)
    rig.sim.run()
    # The officer verification line.
    svc.staff.add_officer("4471203", "Alex Morgan", svc.clock.now(), by="tests")
    rig.sim.configure_number(
        "+441632960998", f"{BASE_URL}/voice/incoming?flow=officer_check",
        status_callback=f"{BASE_URL}/voice/status",
    )  # fmt: skip
    rig.sim.call("+441632960998", "+447700900111", Script().press("4471203#").press("2"))
    rig.sim.run()
    # A meeting call, confirmed.
    meeting = svc.meetings.add(
        customer_name="Pat Example", customer_number="+447700900123", reference="DM-1",
        officer_number="4471203", purpose="time_to_pay", bring="bank statements", place="hmrc_office",
        when="2031-03-04T14:00", where="Leeds", date_of_birth="1970-03-21", by="test",
    )  # fmt: skip
    rig.sim.add_callee(
        "+447700900123",
        Callee("answered", after=3, script=Script().press("1").press("21031970#").press("1")),
    )
    svc.meetings.place_call(meeting["id"], ServiceLinks(BASE_URL))
    rig.sim.run()
    assert svc.meetings.require(meeting["id"])["state"] == "confirmed"
    # Console sign-ins: a session, and a throttle.
    svc.staff.add_agent("300001", "Dee Agent", "client:dee", svc.clock.now(), by="tests")
    svc.accounts.add("dee", "Dee", "vstrs_agent", "correct horse battery", svc.clock.now(),
                     sees_id="300001", by="tests")  # fmt: skip
    browser = rig.api.application.test_client()
    sign_in(browser, "dee")
    for _ in range(6):
        sign_in(rig.api.application.test_client(), "dee", "wrong wrong wrong")
    svc.checkpoints.write(svc.store)
    assert isinstance(svc.store, RedisStore)
    report = svc.retention.report()
    assert report["problems"] == [], report["problems"]
    families = {row["family"]: row["keys"] for row in report["families"]}
    for family in ("call sessions", "verified calls", "hand-offs", "grants", "meetings",
                   "console sessions", "throttles", "caller check counts", "known numbers"):  # fmt: skip
        assert families[family] > 0, family
    client = svc.store.client
    (meeting_key,) = [k for k in client.keys("cf:{meetings}:doc:*")]
    days = client.ttl(meeting_key) / 86400
    assert 89 < days <= 90, "a settled meeting is kept 90 days"
