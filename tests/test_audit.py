"""The audit log: numbered, sealed entries, so any altered, inserted or removed entry is
found; checkpoints outside Redis, so a cut-off end or a lost store is found too."""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from typing import Any

import pytest

from callflow.audit import Audit, Checkpoints, chain_key
from callflow.clock import ManualClock
from callflow.errors import AuditWriteFailed
from callflow.store import MemoryStore, Store
from callflow.store.redis import RedisStore


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "redis":
        return request.getfixturevalue("redis_store")  # type: ignore[no-any-return]
    return MemoryStore()


@pytest.fixture
def audit(store: Store) -> Audit:
    log = Audit(store, ManualClock(1_800_000_000.0), chain_key(secrets.token_bytes(32)))
    for n in range(6):
        log.record(f"step.{n}", call_sid="CA" + str(n) * 32, outcome="ok", n=n)
    return log


def rewrite(store: Store, change: Any) -> None:
    """Rewrite the raw stored entries (as someone with access to Redis could)."""
    if isinstance(store, MemoryStore):
        store._audit = change([dict(e) for e in store._audit])
        return
    assert isinstance(store, RedisStore)
    rows = store.client.xrange("cf:{audit}")
    entries = [{**json.loads(fields["e"]), "id": entry_id} for entry_id, fields in rows]
    store.client.delete("cf:{audit}")
    for entry in change(entries):
        body = {k: v for k, v in entry.items() if k != "id"}
        store.client.xadd("cf:{audit}", {"e": json.dumps(body)}, id=entry["id"])


def test_an_untouched_log_verifies(audit: Audit) -> None:
    assert audit.verify() is None
    entries = list(audit.all_entries())
    assert [e["kind"] for e in entries] == [f"step.{n}" for n in range(6)]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5, 6]
    assert all(a["hash"] != b["hash"] for a, b in itertools.pairwise(entries))


@pytest.mark.parametrize("index", [0, 3, 5])
def test_an_altered_entry_is_found(audit: Audit, store: Store, index: int) -> None:
    def alter(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        entries[index]["outcome"] = "tampered"
        return entries

    target = list(audit.all_entries())[index]["id"]
    rewrite(store, alter)
    broken = audit.verify()
    assert broken is not None and broken.entry_id == target and "altered" in broken.problem


def test_an_inserted_entry_is_found(audit: Audit, store: Store) -> None:
    def insert(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        forged = dict(entries[2])
        ms, _, seq = forged["id"].partition("-")
        forged["id"] = (
            f"{ms}-{int(seq) + 1}"
            if entries[3]["id"] != f"{ms}-{int(seq) + 1}"
            else f"{ms}-{int(seq) + 2}"
        )
        forged["kind"] = "grant.issued"
        return [*entries[:3], forged, *entries[3:]] if forged["id"] < entries[3]["id"] else entries

    if isinstance(store, RedisStore):
        # Stream ids are time based: make room between entries 2 and 3 by re-numbering.
        def renumber(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            for n, entry in enumerate(entries):
                entry["id"] = f"{1_000 + n * 10}-0"
            return entries

        rewrite(store, renumber)
        rewrite(
            store, lambda es: [*es[:3], {**es[2], "id": "1025-0", "kind": "grant.issued"}, *es[3:]]
        )
    else:
        rewrite(
            store, lambda es: [*es[:3], {**es[2], "id": "3-5", "kind": "grant.issued"}, *es[3:]]
        )
    broken = audit.verify()
    assert broken is not None and broken.kind == "grant.issued"
    assert "altered" in broken.problem or "used twice" in broken.problem


def test_a_copied_entry_with_its_own_hash_is_found(audit: Audit, store: Store) -> None:
    """A genuine entry written again (to make a grant look issued twice) reuses a number."""
    entries = list(audit.all_entries())
    rewrite(store, lambda es: [*es, {**es[2], "id": f"{int(es[-1]['id'].split('-')[0]) + 5}-0"}])
    broken = audit.verify()
    assert broken is not None and "number 3 is used twice" in broken.problem
    assert entries  # the rest of the log is as it was


def test_a_removed_entry_is_found(audit: Audit, store: Store) -> None:
    entries = list(audit.all_entries())
    rewrite(store, lambda es: [e for e in es if e["id"] != entries[2]["id"]])
    broken = audit.verify()
    assert broken is not None and broken.entry_id == "number 3" and "removed" in broken.problem


def test_removing_the_newest_entries_is_found(audit: Audit, store: Store) -> None:
    rewrite(store, lambda es: es[:-2])
    broken = audit.verify()
    assert broken is not None and "newest entries were removed" in broken.problem


def test_cutting_the_end_and_the_counter_is_found_by_the_checkpoint(
    audit: Audit, store: Store, tmp_path: Any
) -> None:
    """Someone who can write Redis cuts the newest entries and sets the counter back: the
    entries alone look whole; the checkpoint outside Redis does not agree."""
    checkpoints = Checkpoints(tmp_path, b"k" * 32, ManualClock(1_800_000_000.0))
    checkpoint = checkpoints.write(store)
    assert checkpoint["seq"] == 6 and checkpoints.newest() == checkpoint
    rewrite(store, lambda es: es[:-2])
    set_counter(store, 4)
    assert audit.verify() is None, "without the checkpoint nothing shows"
    broken = audit.verify(checkpoints.newest())
    assert broken is not None and "ends at number 4" in broken.problem


def test_losing_everything_is_found_by_the_checkpoint(
    audit: Audit, store: Store, tmp_path: Any
) -> None:
    checkpoints = Checkpoints(tmp_path, b"k" * 32, ManualClock(1_800_000_000.0))
    checkpoints.write(store)
    wipe(store)
    broken = audit.verify(checkpoints.newest())
    assert broken is not None and "lost its data or was replaced" in broken.problem
    audit.record("after.restart", outcome="ok")  # a new log starts, with a new epoch
    broken = audit.verify(checkpoints.newest())
    assert broken is not None and "lost its data or was replaced" in broken.problem


def test_a_checkpoint_file_cannot_be_forged_or_edited(
    audit: Audit, store: Store, tmp_path: Any
) -> None:
    checkpoints = Checkpoints(tmp_path, b"k" * 32, ManualClock(1_800_000_000.0))
    real = checkpoints.write(store)
    (path,) = tmp_path.glob("checkpoints-*.jsonl")
    with path.open("a") as out:
        out.write(json.dumps({**real, "seq": 2}) + "\n")  # edited: its signature fails
    assert checkpoints.newest() == real


def test_a_number_whose_entry_could_not_be_written_is_voided(store: Store) -> None:
    log = Audit(store, ManualClock(), chain_key(secrets.token_bytes(32)))
    log.record("first", outcome="ok")
    original = store.append_audit

    def fail_once(
        entry: dict[str, Any],
        seal: Any = None,
        seq: int | None = None,
        tally: Any = (),
        facets: Any = (),
    ) -> str:
        if seq is None and entry["kind"] == "second":
            taken = store.audit_state().seq + 1
            if isinstance(store, MemoryStore):
                store._audit_seq = taken
            else:
                store.client.incr("cf:{audit}:seq")
            raise AuditWriteFailed("Redis went away", taken)
        return original(entry, seal, seq, tally, facets)

    store.append_audit = fail_once  # type: ignore[method-assign]
    with pytest.raises(AuditWriteFailed):
        log.record("second", outcome="ok")
    broken = log.verify()
    assert broken is not None, "number 2 taken, no entry: it reads as removed"
    log.record("third", outcome="ok")  # the store answers: number 2 is voided first
    assert log.verify() is None
    assert [(e["seq"], e["kind"]) for e in log.all_entries()] == [
        (1, "first"),
        (2, "audit.void"),
        (3, "third"),
    ]


def set_counter(store: Store, value: int) -> None:
    if isinstance(store, MemoryStore):
        store._audit_seq = value
    else:
        assert isinstance(store, RedisStore)
        store.client.set("cf:{audit}:seq", value)


def wipe(store: Store) -> None:
    """Redis restarted without persistence: everything is gone."""
    if isinstance(store, MemoryStore):
        store._audit, store._audit_seq, store._epoch = [], 0, None
    else:
        assert isinstance(store, RedisStore)
        store.client.flushdb()


def test_another_key_cannot_forge_a_chain(audit: Audit, store: Store) -> None:
    forger = Audit(store, ManualClock(), chain_key(secrets.token_bytes(32)))
    assert forger.verify() is not None


def test_concurrent_writers_take_every_number_once_without_retries(store: Store) -> None:
    log = Audit(store, ManualClock(), chain_key(secrets.token_bytes(32)))
    barrier = threading.Barrier(8)

    def write(n: int) -> None:
        barrier.wait()
        for i in range(25):
            log.record("step", writer=n, i=i)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = list(log.all_entries())
    assert sorted(e["seq"] for e in entries) == list(range(1, 201))
    assert log.verify() is None


def test_secrets_are_refused(audit: Audit) -> None:
    for field in ("pin", "answer", "Digits", "speech"):
        with pytest.raises(ValueError):
            audit.record("x", **{field: "1234"})


# -- the audit command


@pytest.fixture
def cli_service(monkeypatch: pytest.MonkeyPatch, redis_store: RedisStore) -> Any:
    from callflow.config import Settings
    from callflow.service import Callflow
    from tests.conftest import TEST_REDIS_URL

    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setenv("CALLFLOW_SECRET_KEY", secrets.token_hex(16))
    monkeypatch.setenv("USER", "auditor")
    svc = Callflow(Settings.from_env())
    for n, (org, day) in enumerate([("taxaid", 1), ("top", 1), ("taxaid", 2), ("litrg", 3)]):
        svc.clock = ManualClock(1_800_000_000.0 + day * 86_400)  # type: ignore[assignment]
        svc.audit.clock = svc.clock
        svc.audit.record(
            "handoff.requested", call_sid="CA" + str(n) * 32, organisation=org, outcome="requested"
        )
    return svc


def test_export_filters_and_round_trips(
    cli_service: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from callflow.cli.main import main

    days = sorted({e["at"][:10] for e in cli_service.audit.all_entries()})
    target = tmp_path / "taxaid.jsonl"
    assert main(["audit", "export", "--org", "taxaid", "-o", str(target)]) == 0
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["organisation"] for r in rows] == ["taxaid", "taxaid"]
    assert rows == [e for e in cli_service.audit.all_entries() if e.get("organisation") == "taxaid"]
    assert main(["audit", "export", "--from", days[1], "--to", days[1], "--format", "csv"]) == 0
    csv_out = capsys.readouterr().out.splitlines()
    assert csv_out[0].startswith("id,at,kind,call_sid,outcome") and len(csv_out) == 2
    assert main(["audit", "export", "--call", "CA" + "1" * 32]) == 0
    assert json.loads(capsys.readouterr().out)["organisation"] == "top"


def test_verify_reports_ok_and_the_first_break(
    cli_service: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from callflow.cli.main import main

    assert main(["audit", "verify"]) == 0
    assert "ok: 4 entries, numbers to 4, none missing" in capsys.readouterr().out
    rewrite(
        cli_service.store,
        lambda es: [{**e, "outcome": "changed"} if i == 1 else e for i, e in enumerate(es)],
    )
    assert main(["audit", "verify"]) == 1
    second = list(cli_service.audit.all_entries())[1]["id"]
    assert f"BROKEN: audit entry {second}" in capsys.readouterr().out


def test_archive_keeps_the_chain_intact(
    cli_service: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from callflow.cli import common as cli_common
    from callflow.cli.main import main

    monkeypatch.setattr(cli_common, "service", lambda: cli_service)
    cli_service.clock.advance(10 * 86_400)
    archive = tmp_path / "archive.jsonl"
    assert main(["audit", "archive", "--older-than", "11", "-o", str(archive)]) == 0
    assert len(archive.read_text().splitlines()) == 2, "the two entries of the first day"
    assert main(["audit", "verify", "--file", str(archive)]) == 0
    assert main(["audit", "verify"]) == 0, "the live chain starts where the archive ends"
    kinds = [e["kind"] for e in cli_service.audit.all_entries()]
    assert kinds == ["handoff.requested", "handoff.requested", "audit.archived"]
