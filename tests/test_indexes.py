"""Each question the service answers reads an index kept in the same atomic write as its
records (ARCHITECTURE.md rule 10), on both stores: what each index finds, and that a record
gone by expiry leaves nothing behind once met. A namespace that grows with history can no
longer be listed whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callflow.access import Viewer
from callflow.clock import ManualClock
from callflow.errors import StoreError
from callflow.store import MemoryStore, Store
from callflow.store.redis import RedisStore
from tests.conftest import ROOT
from tests.rigs import AGENT, Rig, eventually


def expire(store: Store, namespace: str, key: str) -> None:
    """The record's lifetime runs out now."""
    if isinstance(store, MemoryStore):
        store._docs[namespace][key] = (store._docs[namespace][key][0], 0.0)
    else:
        assert isinstance(store, RedisStore)
        doc_key = f"cf:{{{namespace}}}:doc:{key}"
        store.client.pexpire(doc_key, 1)
        eventually(lambda: not store.client.exists(doc_key), timeout=2, every=0.002)


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    return Rig(store, clock)


def test_grants_are_found_by_customer_call_team_and_while_active(rig: Rig) -> None:
    svc = rig.svc
    caller, _ = rig.taken_over()
    (grant,) = svc.store.indexed("grants", "customer:2234567890")
    assert svc.store.indexed("grants", f"call:{caller.sid}") == [grant]
    assert svc.store.indexed("grants", "team:debt_pursuit") == [grant]
    assert svc.handoffs.active_grants() == 1
    rig.sim.hang_up(caller)
    rig.sim.run()
    assert svc.handoffs.active_grants() == 0, "an ended grant leaves the active index at once"
    assert svc.store.indexed("grants", "active") == []
    expire(svc.store, "grants", grant["id"])
    viewer = Viewer("specialist", team="debt_pursuit")
    assert svc.handoffs.grants_for_customer("2234567890", viewer)["grants"] == []
    assert svc.store.index_size("grants", "customer:2234567890") == 0, "cleaned as met"
    with pytest.raises(StoreError):
        svc.store.list_docs("grants")


def test_hand_offs_by_team_organisation_and_state_and_calls_by_agent(rig: Rig) -> None:
    svc = rig.svc
    first, _ = rig.taken_over()
    second = rig.caller_with_agent("+441632960002")
    rig.request(second)
    newest = svc.store.indexed("handoffs", "team:debt_pursuit", newest_first=True, count=1)
    assert newest[0]["call_sid"] == second.sid
    assert len(svc.store.indexed("handoffs", "org:taxaid")) == 2
    assert [h["call_sid"] for h in svc.store.indexed("handoffs", "state:taken_over")] == [
        first.sid
    ]
    calls = svc.vstrs.recent_for_agent(AGENT)
    assert [c["call_sid"] for c in calls] == [second.sid, first.sid], "newest first"
    assert [c["call_sid"] for c in svc.vstrs.recent_for_agent(AGENT, offset=1, count=1)] == [
        first.sid
    ]
    expire(svc.store, "vstrs_calls", first.sid)
    assert [c["call_sid"] for c in svc.vstrs.recent_for_agent(AGENT)] == [second.sid]
    assert svc.store.index_size("vstrs_calls", f"agent:{AGENT}") == 1


def test_meetings_due_and_in_progress(rig: Rig, clock: ManualClock) -> None:
    svc = rig.svc
    svc.staff.add_officer("4471203", "Alex Morgan", clock.now(), by="tests")
    later = svc.meetings.add(
        customer_name="Pat Example", customer_number="+447700900123", reference="DM-1",
        officer_number="4471203", purpose="time_to_pay", bring="statements",
        when="2031-03-04T14:00", where="Leeds", place="hmrc_office", date_of_birth="1970-03-21", by="t",
        call_at=clock.now() + 3600,
    )  # fmt: skip
    now = svc.meetings.add(
        customer_name="Sam Example", customer_number="+447700900124", reference="DM-2",
        officer_number="4471203", purpose="time_to_pay", bring="statements",
        when="2031-03-05T14:00", where="Leeds", place="hmrc_office", date_of_birth="1970-03-21", by="t",
    )  # fmt: skip
    assert [m["id"] for m in svc.meetings.due()] == [now["id"]]
    assert [m["id"] for m in svc.meetings.all()] == [later["id"], now["id"]], "by meeting time"
    svc.meetings.cancel(now["id"], "t")
    assert svc.meetings.due() == [], "a settled meeting leaves the due index"
    clock.advance(3601)
    assert [m["id"] for m in svc.meetings.due()] == [later["id"]]


def test_tokens_by_id_sessions_by_user_and_available_agents(rig: Rig, clock: ManualClock) -> None:
    svc = rig.svc
    token = rig.admin_token()
    assert svc.staff.revoke_token(token[3:11], by="tests") == 1
    assert svc.staff.authenticate(token) is None
    svc.accounts.add("amy", "Amy", "auditor", "correct horse battery", clock.now(), by="tests")
    for _ in range(2):
        svc.accounts.sign_in("amy", "correct horse battery", "192.0.2.1", clock.now())
    assert svc.store.index_size("console_sessions", "user:amy") == 2
    svc.accounts.end_sessions("amy")
    assert svc.store.indexed("console_sessions", "user:amy") == []
    assert [a.sees_id for a in svc.staff.idle_agents(svc.clock.now())] == [AGENT]
    svc.staff.set_availability(AGENT, "away", clock.now())
    assert svc.staff.idle_agents(svc.clock.now()) == [] and svc.store.index_size("presence", "available") == 0


def test_no_web_module_reads_the_store_or_its_keys() -> None:
    """The web layer parses, calls a read model or a service, and renders (rule 1)."""
    allowed = re.compile(r"store\.(kind|ping\(\))|exposition\(service\(\)\.store\b")
    for path in sorted((ROOT / "webhooks").rglob("*.py")):
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            if "store" in line and ".store" in line:
                assert allowed.search(line), f"{path}:{number}: {line.strip()}"
            assert not re.search(r"""["']cf:""", line), f"{path}:{number}: a store key"


def test_the_auditors_cases_come_a_page_at_a_time(rig: Rig, clock: ManualClock) -> None:
    from callflow.desks import AuditorDesk
    from callflow.reports import today_utc

    svc = rig.svc
    for n in range(60):
        svc.store.put_doc(
            "assurance",
            f"AC{n:04d}",
            {
                "id": f"AC{n:04d}", "handoff": f"HO{n:016x}", "organisation": "taxaid",
                "requested_at": clock.now() - 86400 + n, "state": "requested", "outcome": None,
                "authorisation": None, "history": [],
            },
        )
    desk = AuditorDesk(svc)
    day = today_utc(clock.now())
    first = desk.page(day, day, None)
    assert len(first["cases"]) == 50 and first["more_cases"]
    assert first["cases"][0]["id"] == "AC0000", "oldest hand-off first"
    second = desk.page(day, day, None, cases_page=2)
    assert [c["id"] for c in second["cases"]] == [f"AC{n:04d}" for n in range(50, 60)]
    assert not second["more_cases"]


def test_the_auditors_figures_come_from_tallies_kept_with_the_log(
    rig: Rig, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The auditor's page reads one tally per day of the period, kept in the same step as
    each audit entry, never the period's entries; the tallies always agree with the log,
    and ``callflow audit retally`` checks and rebuilds them."""
    from callflow.cli import common as cli_common
    from callflow.cli.main import main
    from callflow.desks import AuditorDesk
    from callflow.reports import figures, today_utc
    from callflow.tallies import tallies_of

    svc = rig.svc
    caller, _ = rig.taken_over()
    clock.advance(7 * 60)
    rig.sim.hang_up(caller)
    rig.sim.run()
    day = today_utc(clock.now())
    entries = list(svc.audit.all_entries())
    from_log = tallies_of(entries)
    assert svc.store.audit_tallies([day.isoformat()]) == from_log
    counts = from_log[day.isoformat()]
    assert counts["v|taxaid|verified"] == 1 and counts["ho|taxaid|debt_pursuit"] == 1
    assert counts["gd|taxaid|5 to 15 min"] == 1, "the grant lasted about seven minutes"

    def no_entries(*_args: object, **_kwargs: object) -> list[object]:
        raise AssertionError("the auditor's page read the period's audit entries")

    monkeypatch.setattr(svc.store, "audit_between", no_entries)
    page = AuditorDesk(svc).figures(day, day, None)
    assert page == figures(from_log, None, svc.assurance.report(None, day, day))
    assert page["handoff_share"] == {"taxaid": 1.0}
    assert page["grant_durations"]["5 to 15 min"] == 1
    assert AuditorDesk(svc).figures(day, day, "top")["handoff_share"] == {}, "one organisation"
    monkeypatch.undo()

    monkeypatch.setattr(cli_common, "service", lambda: svc)
    assert main(["audit", "retally", "--check"]) == 0
    svc.store.replace_tallies({day.isoformat(): {"ho|taxaid|debt_pursuit": 9}})
    assert main(["audit", "retally", "--check"]) == 1
    assert "1 differ" in capsys.readouterr().out
    assert main(["audit", "retally"]) == 0
    assert svc.store.audit_tallies([day.isoformat()]) == from_log


def test_reindex_finds_records_written_before_their_indexes(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An upgrade from a release without indexes: ``callflow store reindex`` indexes every
    record that was already there, and drops the old whole-namespace key sets."""
    from callflow.cli import common as cli_common
    from callflow.cli.main import main

    svc = rig.svc
    caller, _ = rig.taken_over()
    store = svc.store
    grants = store.indexed("grants", f"call:{caller.sid}")
    assert grants
    for namespace in sorted(store.indexes):  # as a release without indexes left them
        if isinstance(store, RedisStore):
            stale = list(store.client.scan_iter(match=f"cf:{{{namespace}}}:idx:*"))
            if stale:
                store.client.delete(*stale)
            store.client.sadd(f"cf:{{{namespace}}}:keys", "legacy")
        else:
            for (ns, _name), entries in store._index_entries.items():
                if ns == namespace:
                    entries.clear()
    assert store.indexed("grants", f"call:{caller.sid}") == []
    monkeypatch.setattr(cli_common, "service", lambda: svc)
    assert main(["store", "reindex"]) == 0
    assert "grants: 1 records indexed" in capsys.readouterr().out
    assert store.indexed("grants", f"call:{caller.sid}") == grants
    assert svc.handoffs.active_grants() == 1
    if isinstance(store, RedisStore):
        assert not store.client.exists("cf:{grants}:keys")
    assert main(["store", "reindex", "nonsense"]) != 0
