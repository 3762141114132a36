"""Retention that enforces itself: the audit log's old entries archived (calling numbers
and addresses as keyed pseudonyms, still verifiable) and trimmed by the worker's pass,
meetings expiring after they are settled, and a report of every key family."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callflow.audit import verify_entries
from callflow.clock import ManualClock
from callflow.retention import FAMILIES, family_of
from callflow.service import Callflow
from callflow.store.redis import RedisStore
from tests.conftest import make_settings

CALLER = "+447700900555"


def aged_log(svc: Callflow, clock: ManualClock) -> None:
    """Entries 500, 450 and 10 days old, with calling numbers and client addresses."""
    for age in (500, 450, 10):
        svc.audit.clock = ManualClock(clock.now() - age * 86400)
        svc.audit.record("verification.pin", call_sid=None, caller=CALLER, outcome="failed")
        svc.audit.record("console.signin_throttled", address="203.0.113.9", outcome="throttled")
    svc.audit.clock = clock


def test_the_pass_archives_old_entries_pseudonymised_and_trims_them(
    redis_store: RedisStore, clock: ManualClock, tmp_path: Path
) -> None:
    svc = Callflow(make_settings(audit_archive_dir=tmp_path), store=redis_store, clock=clock)
    aged_log(svc, clock)
    done = svc.retention.apply()
    assert done["archived"] == 4 and done["through"] == 4
    (archive,) = tmp_path.glob("audit-archive-*.jsonl")
    text = archive.read_text()
    assert CALLER not in text and "203.0.113.9" not in text, "pseudonyms only"
    entries = [json.loads(line) for line in text.splitlines()]
    assert all(e.get("caller", "~").startswith("~") for e in entries)
    broken, walk = verify_entries(entries, svc.audit.key)
    assert broken is None and walk.count == 4, "the archive still verifies"
    live = list(svc.audit.all_entries())
    assert [e["kind"] for e in live] == [
        "verification.pin",
        "console.signin_throttled",
        "audit.archived",
    ]
    assert live[0]["caller"] == CALLER, "the live log keeps what it needs, for its period"
    assert svc.audit.verify() is None
    assert svc.retention.apply() == {"ran": False}, "at most hourly"
    clock.advance(3601)
    assert svc.retention.apply()["archived"] == 0


def test_without_an_archive_folder_nothing_is_deleted_and_the_report_says_so(
    redis_store: RedisStore, clock: ManualClock
) -> None:
    svc = Callflow(make_settings(), store=redis_store, clock=clock)
    aged_log(svc, clock)
    assert svc.retention.apply()["archived"] == 0
    assert len(list(svc.audit.all_entries())) == 6
    report = svc.retention.report()
    assert any("older than 400 days" in p for p in report["problems"])


def test_a_key_with_no_rule_or_a_missing_expiry_is_reported(
    redis_store: RedisStore, clock: ManualClock
) -> None:
    svc = Callflow(make_settings(), store=redis_store, clock=clock)
    redis_store.client.set("cf:{handoffs}:doc:HO0000000000000000", "{}")  # no expiry
    redis_store.client.set("stray:key", "1")
    problems = svc.retention.report()["problems"]
    assert "cf:{handoffs}:doc:HO0000000000000000: no expiry (family hand-offs)" in problems
    assert "stray:key: no retention rule covers it" in problems


def test_meetings_expire_a_set_time_after_they_are_settled(
    redis_store: RedisStore, clock: ManualClock
) -> None:
    svc = Callflow(make_settings(), store=redis_store, clock=clock)
    svc.staff.add_officer("4471203", "Alex Morgan", clock.now(), by="tests")
    meeting = svc.meetings.add(
        customer_name="Pat Example", customer_number="+447700900123", reference="DM-1",
        officer_number="4471203", purpose="time_to_pay", bring="statements", place="hmrc_office",
        when="2031-03-04T14:00", where="Leeds", date_of_birth="1970-03-21", by="test",
    )  # fmt: skip
    key = f"cf:{{meetings}}:doc:{meeting['id']}"
    assert 365 < redis_store.client.ttl(key) / 86400 <= 366, "open: a year at most"
    svc.meetings.cancel(meeting["id"], "test")
    assert 89 < redis_store.client.ttl(key) / 86400 <= 90, "settled: 90 days"


def test_every_family_documents_its_rule() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "retention.md").read_text()
    for family in FAMILIES:
        assert f"| {family.name} |" in doc, family.name
        assert family.rule and family.why and family.holds
    assert family_of("cf:call:{CA" + "0" * 32 + "}") is not None
    assert family_of("nothing:like:ours") is None


@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_the_report_command(store: RedisStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from callflow.cli import common as cli_common
    from callflow.cli.main import main

    svc = Callflow(make_settings(), store=store)
    svc.audit.record("test.step", outcome="ok")
    monkeypatch.setattr(cli_common, "service", lambda: svc)
    assert main(["retention", "report"]) == 0
    out = capsys.readouterr().out
    assert "audit log" in out and "ok: every key is covered by a rule" in out
