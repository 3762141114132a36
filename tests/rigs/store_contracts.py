"""The store contract: what every Store (embedded, Redis, Redis Cluster) promises, as
classes each store's test module runs against its own store."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest

from callflow.errors import StoreError
from callflow.session import CallSession
from callflow.store import MemoryStore, Store
from callflow.store.base import Guard
from callflow.store.redis import RedisStore
from tests.rigs import eventually

GUARD = Guard(
    number_attempts=3,
    number_window=900,
    adviser_threshold=5,
    lock_seconds=1800,
    hard_limit=8,
    known_seconds=30 * 86400,
    failure_memory=86400,
)

def session(call_sid: str = "CA" + "1" * 32) -> CallSession:
    return CallSession(call_sid=call_sid, flow="f", flow_version="v1", state="s", started_at=1.0)

class StoreContract:
    """Behaviour every Store implementation must have."""

    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError

    def test_lease_gives_none_for_a_new_call(self, store: Store) -> None:
        lease = store.lease_session("CA" + "2" * 32, "t1", 5000)
        assert lease.held and lease.session is None

    def test_save_then_read_round_trips(self, store: Store) -> None:
        s = session()
        s.values["adviser_name"] = "Sam"
        s.data["tries"] = 2
        store.lease_session(s.call_sid, "t1", 5000)
        assert store.save_session(s, 0, "t1", 60)
        assert s.rev == 1
        again = store.get_session(s.call_sid)
        assert (
            again is not None
            and again.values == {"adviser_name": "Sam"}
            and again.data["tries"] == 2
        )
        assert again.rev == 1

    def test_second_lease_is_refused_until_released(self, store: Store) -> None:
        s = session()
        assert store.lease_session(s.call_sid, "t1", 5000).held
        assert not store.lease_session(s.call_sid, "t2", 5000).held
        assert store.lease_session(s.call_sid, "t1", 5000).held, "the holder may renew"
        store.release_session(s.call_sid, "t2")  # not the holder: no effect
        assert not store.lease_session(s.call_sid, "t2", 5000).held
        store.release_session(s.call_sid, "t1")
        assert store.lease_session(s.call_sid, "t2", 5000).held

    def test_create_stores_a_new_call_in_one_step(self, store: Store) -> None:
        s = session()
        s.values["adviser_name"] = "Sam"
        created = store.create_session(s, 60)
        assert created.outcome == "created" and s.rev == 1
        again = store.get_session(s.call_sid)
        assert again is not None and again.rev == 1 and again.values == {"adviser_name": "Sam"}
        # The next webhook leases and saves on top of it as usual.
        lease = store.lease_session(s.call_sid, "t1", 5000)
        assert lease.held and lease.session is not None and lease.session.rev == 1
        assert store.save_session(lease.session, 1, "t1", 60)

    def test_a_calls_trace_goes_with_its_saves(self, store: Store) -> None:
        from callflow.store.base import TraceStep

        s = session()
        assert store.trace_steps(s.call_sid) == []
        assert store.create_session(s, 60, TraceStep({"step": 0}, 3600)).outcome == "created"
        lease = store.lease_session(s.call_sid, "t1", 5000)
        assert lease.session is not None
        assert store.save_session(lease.session, 1, "t1", 60, TraceStep({"step": 1}, 3600))
        # A save that loses its compare-and-set adds nothing to the trace.
        stale = session()
        store.lease_session(s.call_sid, "t2", 5000)
        assert not store.save_session(stale, 1, "t2", 60, TraceStep({"step": 9}, 3600))
        # A save with no step leaves the trace alone; at most max_steps are kept.
        lease = store.lease_session(s.call_sid, "t3", 5000)
        assert lease.session is not None
        assert store.save_session(lease.session, 2, "t3", 60)
        lease = store.lease_session(s.call_sid, "t4", 5000)
        assert lease.session is not None
        assert store.save_session(lease.session, 3, "t4", 60, TraceStep({"step": 3}, 3600, 2))
        assert store.trace_steps(s.call_sid) == [{"step": 0}, {"step": 1}]
        # A repeated first webhook finds the call and starts no second trace.
        assert store.create_session(session(), 60, TraceStep({"step": 0}, 3600)).outcome == (
            "exists"
        )
        assert store.trace_steps(s.call_sid) == [{"step": 0}, {"step": 1}]

    def test_create_never_overwrites(self, store: Store) -> None:
        first, second = session(), session()
        first.state, second.state = "first", "second"
        assert store.create_session(first, 60).outcome == "created"
        created = store.create_session(second, 60)
        assert created.outcome == "exists"
        assert created.session is not None and created.session.state == "first"
        stored = store.get_session(first.call_sid)
        assert stored is not None and stored.state == "first"

    def test_create_defers_to_a_held_lease(self, store: Store) -> None:
        s = session()
        assert store.lease_session(s.call_sid, "t1", 5000).held
        assert store.create_session(s, 60).outcome == "busy"
        assert store.get_session(s.call_sid) is None
        store.release_session(s.call_sid, "t1")
        assert store.create_session(s, 60).outcome == "created"

    def test_save_releases_the_lease(self, store: Store) -> None:
        s = session()
        store.lease_session(s.call_sid, "t1", 5000)
        store.save_session(s, 0, "t1", 60)
        assert store.lease_session(s.call_sid, "t2", 5000).held

    def test_compare_and_set_refuses_a_stale_revision(self, store: Store) -> None:
        s = session()
        store.lease_session(s.call_sid, "t1", 5000)
        assert store.save_session(s, 0, "t1", 60)
        stale = session()
        stale.state = "other"
        store.lease_session(s.call_sid, "t2", 5000)
        assert not store.save_session(stale, 0, "t2", 60)
        stored = store.get_session(s.call_sid)
        assert stored is not None and stored.state == "s"

    def test_concurrent_increments_lose_nothing(self, store: Store) -> None:
        s = session()
        store.lease_session(s.call_sid, "init", 5000)
        store.save_session(s, 0, "init", 60)

        def bump(n: int) -> None:
            token = f"w{n}"
            for _ in range(10):
                while True:
                    lease = store.lease_session(s.call_sid, token, 5000)
                    if not lease.held:
                        time.sleep(0.001)
                        continue
                    assert lease.session is not None
                    current = lease.session
                    current.data["count"] = current.data.get("count", 0) + 1
                    if store.save_session(current, current.rev, token, 60):
                        break

        threads = [threading.Thread(target=bump, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = store.get_session(s.call_sid)
        assert final is not None and final.data["count"] == 40

    def test_adviser_records(self, store: Store) -> None:
        record = {"number": "1001", "name": "Sam"}
        assert store.add_adviser("1001", record)
        assert not store.add_adviser("1001", {"number": "1001", "name": "Other"})
        assert store.get_adviser("1001") == record
        store.put_adviser("1002", {"number": "1002", "name": "Jo"})
        assert sorted(r["number"] for r in store.list_advisers()) == ["1001", "1002"]
        assert store.count_advisers() == 2
        assert store.delete_adviser("1001")
        assert not store.delete_adviser("1001")
        assert store.get_adviser("1001") is None

    def test_advisers_come_a_page_at_a_time_by_number(self, store: Store) -> None:
        for number in ("3003", "1001", "2002", "10001", "4004"):
            store.put_adviser(number, {"number": number})
        by_number = ["10001", "1001", "2002", "3003", "4004"]  # as text
        assert [r["number"] for r in store.list_advisers()] == by_number
        assert [r["number"] for r in store.list_advisers(0, 2)] == by_number[:2]
        assert [r["number"] for r in store.list_advisers(2, 2)] == by_number[2:4]
        assert [r["number"] for r in store.list_advisers(4, 2)] == by_number[4:]
        assert store.list_advisers(6, 2) == []
        assert [r["number"] for r in store.list_advisers(3)] == by_number[3:]

    # -- the lockout model (docs/lockout.md), with small figures

    def test_a_number_waits_after_its_attempts_and_a_hang_up_counts_once(
        self, store: Store
    ) -> None:
        now = 1_800_000_000.0
        store.attempt_succeeded("1001", "+441", now, GUARD)  # a known number: no lock applies
        for _ in range(3):
            assert store.begin_attempt("1001", "+441", now, GUARD).allowed
        refused = store.begin_attempt("1001", "+441", now, GUARD)
        assert (refused.allowed, refused.reason, refused.first) == (False, "throttled", True)
        again = store.begin_attempt("1001", "+441", now + 1, GUARD)
        assert (again.reason, again.first) == ("throttled", False), "the first refusal only"
        assert store.begin_attempt("1001", "+442", now, GUARD).allowed, "other numbers go on"
        # Nothing failed (the callers hung up): the window ends and the attempts with it.
        assert store.begin_attempt("1001", "+441", now + GUARD.number_window, GUARD).allowed
        status = store.lock_status("1001", now)
        assert status.failures == 1 and not status.locked_seconds, "the stranger's one attempt"

    def test_strangers_lock_the_adviser_but_not_their_known_number(self, store: Store) -> None:
        now = 1_800_000_000.0
        assert store.begin_attempt("1001", "+44usual", now, GUARD).allowed
        store.attempt_succeeded("1001", "+44usual", now, GUARD)
        started = []
        for n in range(GUARD.adviser_threshold):
            attempt = store.begin_attempt("1001", f"+44stranger{n}", now, GUARD)
            assert attempt.allowed and not attempt.known and attempt.ordinal == n + 1
            assert not store.attempt_failed("1001", f"+44stranger{n}", now, GUARD)
            started.append(attempt.lock_on_failure(GUARD))
        assert started == ["", "", "", "", "locked"]
        status = store.lock_status("1001", now)
        assert status.failures == 5 and status.locked_seconds == GUARD.lock_seconds
        locked = store.begin_attempt("1001", "+44another", now + 1, GUARD)
        assert (locked.allowed, locked.reason) == (False, "locked")
        usual = store.begin_attempt("1001", "+44usual", now + 1, GUARD)
        assert usual.allowed and usual.known, "their usual number is not locked out"
        after = store.begin_attempt("1001", "+44another", now + GUARD.lock_seconds + 1, GUARD)
        assert after.allowed, "the lock ends"
        store.unlock("1001")
        unlocked, stranger = store.lock_statuses(["1001", "+44nobody"], now)
        assert unlocked == store.lock_status("1001", now), "one read of several, in order"
        assert unlocked.failures == 0 and stranger == store.lock_status("+44nobody", now)
        assert "+44usual" in unlocked.known, "unlock keeps known numbers"

    def test_the_hard_limit_locks_until_a_known_number_verifies(self, store: Store) -> None:
        now = 1_800_000_000.0
        store.attempt_succeeded("1001", "+44usual", now, GUARD)
        outcomes = []
        for n in range(GUARD.hard_limit):
            at = now + n * (GUARD.lock_seconds + 1)  # past each lock, so strangers go on
            attempt = store.begin_attempt("1001", f"+44s{n}", at, GUARD)
            assert attempt.allowed, n
            store.attempt_failed("1001", f"+44s{n}", at, GUARD)
            outcomes.append(attempt.lock_on_failure(GUARD))
        assert outcomes[-1] == "hard_locked"
        later = now + GUARD.hard_limit * (GUARD.lock_seconds + 1) + GUARD.lock_seconds
        assert store.begin_attempt("1001", "+44new", later, GUARD).reason == "hard_locked"
        assert store.lock_status("1001", later).hard_locked
        assert store.begin_attempt("1001", "+44usual", later, GUARD).allowed
        store.attempt_succeeded("1001", "+44usual", later, GUARD)
        assert store.begin_attempt("1001", "+44new", later, GUARD).allowed

    def test_concurrent_attempts_from_one_number_never_exceed_its_limit(
        self, store: Store
    ) -> None:
        allowed: list[bool] = []
        lock = threading.Lock()
        barrier = threading.Barrier(20)

        def attempt() -> None:
            barrier.wait()
            ok = store.begin_attempt("1001", "+441", 1_800_000_000.0, GUARD).allowed
            with lock:
                allowed.append(ok)

        threads = [threading.Thread(target=attempt) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert allowed.count(True) == GUARD.number_attempts

    def test_relay_attempts_count_with_unknown_numbers_and_never_as_one_number(
        self, store: Store
    ) -> None:
        """The relay platform's caller ID is shared by every Relay UK user: no window of
        its own, never known; each attempt counts with the unknown numbers' (rule 3)."""
        now, relay = 1_800_000_000.0, "+44relay"
        for n in range(GUARD.number_attempts + 1):  # past one number's limit
            attempt = store.begin_attempt("1001", relay, now, GUARD, relay=True)
            assert attempt.allowed and not attempt.known and attempt.ordinal == n + 1
            assert not store.attempt_failed("1001", relay, now, GUARD, relay=True)
        status = store.lock_status("1001", now)
        assert status.numbers == {}, "no per-number record for the platform's number"
        assert status.failures == GUARD.number_attempts + 1
        # A genuine relay user of the adviser still gets a check, and verifying clears the
        # count without making the platform's number known.
        assert store.begin_attempt("1001", relay, now, GUARD, relay=True).allowed
        store.attempt_succeeded("1001", relay, now, GUARD, relay=True)
        cleared = store.lock_status("1001", now)
        assert cleared.failures == 0 and relay not in cleared.known
        # Guessing through relay is held to the unknown numbers' figures: the threshold
        # locks, then the hard limit.
        outcomes = []
        for n in range(GUARD.hard_limit):
            at = now + n * (GUARD.lock_seconds + 1)
            attempt = store.begin_attempt("1001", relay, at, GUARD, relay=True)
            assert attempt.allowed, n
            store.attempt_failed("1001", relay, at, GUARD, relay=True)
            outcomes.append(attempt.lock_on_failure(GUARD))
        assert outcomes[GUARD.adviser_threshold - 1] == "locked" and outcomes[-1] == "hard_locked"
        later = now + GUARD.hard_limit * (GUARD.lock_seconds + 1)
        assert store.begin_attempt("1001", relay, later, GUARD, relay=True).reason == "hard_locked"
        # The same number that is not relay is one number like any other.
        assert store.begin_attempt("1002", relay, now, GUARD).allowed
        assert relay in store.lock_status("1002", now).numbers

    def test_concurrent_relay_attempts_stop_exactly_at_the_threshold(self, store: Store) -> None:
        allowed: list[bool] = []
        lock = threading.Lock()
        barrier = threading.Barrier(20)

        def attempt() -> None:
            barrier.wait()
            ok = store.begin_attempt("1001", "+44relay", 1_800_000_000.0, GUARD, relay=True)
            with lock:
                allowed.append(ok.allowed)

        threads = [threading.Thread(target=attempt) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert allowed.count(True) == GUARD.adviser_threshold

    def test_audit_is_append_only_and_ordered(self, store: Store) -> None:
        ids = [store.append_audit({"kind": f"k{n}"}) for n in range(3)]
        entries = store.read_audit()
        assert [e["kind"] for e in entries] == ["k0", "k1", "k2"]
        assert [e["id"] for e in entries] == ids
        assert [e["kind"] for e in store.read_audit(limit=2)] == ["k1", "k2"]

    def test_audit_tallies_are_kept_with_the_entry(self, store: Store) -> None:
        def seal(entry: dict[str, object]) -> str:
            return "h"

        day, next_day = "2026-11-02T10:00:00.000+00:00", "2026-11-03T09:00:00.000+00:00"
        store.append_audit({"at": day, "kind": "a"}, seal, tally=["v|top|verified", "ho|top|t"])
        store.append_audit({"at": day, "kind": "b"}, seal, tally=["v|top|verified"])
        store.append_audit({"at": next_day, "kind": "c"}, seal, tally=["lock|top|"])
        store.append_audit({"at": next_day, "kind": "void"}, seal)  # no tally
        assert store.audit_tallies(["2026-11-01", "2026-11-02", "2026-11-03"]) == {
            "2026-11-02": {"v|top|verified": 2, "ho|top|t": 1},
            "2026-11-03": {"lock|top|": 1},
        }
        store.replace_tallies({"2026-11-02": {"ho|top|t": 5}, "2026-11-03": {}})
        assert store.audit_tallies(["2026-11-02", "2026-11-03"]) == {"2026-11-02": {"ho|top|t": 5}}

    def test_audit_pages_come_from_facet_indexes_newest_first(self, store: Store) -> None:
        def at(minute: int) -> str:
            return f"2026-11-02T10:{minute:02d}:00.000+00:00"

        ids = []
        for n in range(12):
            org = "top" if n % 3 == 0 else "taxaid"
            facets = [f"kind:k{n % 2}", f"org:{org}"] + ([f"call:CA{n}"] if n == 5 else [])
            ids.append(store.append_audit({"at": at(n), "kind": f"k{n % 2}"}, facets=facets))
        start = datetime.fromisoformat("2026-11-02T08:40:00+00:00").timestamp()
        end = start + 86400
        newest = store.audit_page(None, start, end, count=5)
        assert [e["id"] for e in newest] == ids[::-1][:5]
        older = store.audit_page(None, start, end, before=newest[-1]["id"], count=5)
        assert [e["id"] for e in older] == ids[::-1][5:10]
        back = store.audit_page(None, start, end, after=older[0]["id"], count=5)
        assert [e["id"] for e in back] == [e["id"] for e in newest], "the page before"
        tops = store.audit_page("org:top", start, end, count=3)
        assert [e["id"] for e in tops] == [ids[9], ids[6], ids[3]]
        rest = store.audit_page("org:top", start, end, before=tops[-1]["id"], count=3)
        assert [e["id"] for e in rest] == [ids[0]]
        assert store.audit_page("org:top", start, end, after=ids[6], count=3)[0]["id"] == ids[9]
        assert store.audit_facet_size("org:top", start, end) == 4
        assert store.audit_facet_size("kind:k1", start, end) == 6
        assert [e["id"] for e in store.audit_page("call:CA5", start, end)] == [ids[5]]
        # The period bounds the page: 10:03 to 10:05 only.
        narrow = store.audit_page("kind:k1", start + 83 * 60, start + 84 * 60)
        assert [e["kind"] for e in narrow] == ["k1"] and narrow[0]["id"] == ids[3]
        assert store.audit_page("org:nobody", start, end) == []
        # Archived entries leave their facets; reindexing puts entries back in theirs.
        store.trim_audit(ids[5], 6)
        assert store.audit_facet_size("org:top", start, end) == 2
        assert [e["id"] for e in store.audit_page("org:top", start, end)] == [ids[9], ids[6]]
        left = store.audit_page(None, start, end, count=50)
        assert store.index_audit((e, ["org:again"]) for e in left) == 6
        assert store.audit_facet_size("org:again", start, end) == 6

    def test_flow_versions(self, store: Store) -> None:
        assert store.get_flow("abc") is None
        store.put_flow("abc", "demo", "flow: demo\n")
        assert store.get_flow("abc") == ("demo", "flow: demo\n")

    def test_ping(self, store: Store) -> None:
        assert store.ping()

class DocumentContract:
    """Documents, claims and counters, run against both stores below."""

    def test_documents(self, store: Store) -> None:
        assert store.get_doc("agents", "a1") is None
        store.put_doc("agents", "a1", {"name": "Amy"})
        assert store.add_doc("agents", "a2", {"name": "Ben"})
        assert not store.add_doc("agents", "a2", {"name": "Other"})
        assert store.get_doc("agents", "a2") == {"name": "Ben"}
        assert sorted(d["name"] for d in store.list_docs("agents")) == ["Amy", "Ben"]
        assert store.list_docs("teams") == []
        assert (store.count_docs("agents"), store.count_docs("teams")) == (2, 0)
        assert store.delete_doc("agents", "a1") and not store.delete_doc("agents", "a1")
        assert [d["name"] for d in store.list_docs("agents")] == ["Ben"]
        assert store.count_docs("agents") == 1

    def test_update_doc_is_atomic(self, store: Store) -> None:
        store.put_doc("counters", "c", {"n": 0})

        def bump() -> None:
            for _ in range(25):
                store.update_doc("counters", "c", lambda d: {"n": (d or {"n": 0})["n"] + 1})

        threads = [threading.Thread(target=bump) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.get_doc("counters", "c") == {"n": 100}
        unchanged = store.update_doc("counters", "c", lambda d: None)
        assert unchanged == {"n": 100}
        created = store.update_doc("counters", "new", lambda d: {"made": d is None})
        assert created == {"made": True}

    def test_change_doc_reports_only_the_change_that_stands(self, store: Store) -> None:
        """update_doc may run a change again after a conflicting write: what the caller is
        told must be the run that was written, never one thrown away."""
        for round_ in range(10):
            key = f"race{round_}"
            store.put_doc("races", key, {"state": "open", "by": None})
            barrier = threading.Barrier(6)
            outcomes: list[tuple[str, bool, object]] = []

            def take(
                who: str,
                key: str = key,
                barrier: threading.Barrier = barrier,
                outcomes: list[tuple[str, bool, object]] = outcomes,
            ) -> None:
                barrier.wait()
                changed = store.change_doc(
                    "races",
                    key,
                    lambda d: (
                        {**d, "state": "taken", "by": who} if d and d["state"] == "open" else None
                    ),
                )
                outcomes.append((who, changed.written, changed.before))

            threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            winners = [who for who, written, _ in outcomes if written]
            assert len(winners) == 1, outcomes
            assert store.get_doc("races", key) == {"state": "taken", "by": winners[0]}
            for who, written, before in outcomes:
                assert before is not None
                assert before["state"] == ("open" if written else "taken"), (who, before)
        assert not store.change_doc("races", "none", lambda d: None).written

    def test_throttles_count_in_a_window_and_cap(self, store: Store) -> None:
        now = 1_800_000_000.0
        assert [store.take("t:a", 3, 60, now) for _ in range(6)] == [1, 2, 3, 4, 5, 5]
        store.give_back("t:b")  # nothing to give back: no effect
        assert store.take("t:b", 3, 60, now) == 1
        store.give_back("t:b")
        assert store.take("t:b", 3, 60, now) == 1, "given back"
        assert store.take("t:a", 3, 60, now + 61) == 1, "a new window"
        store.forget("t:a")
        assert store.take("t:a", 3, 60, now + 62) == 1

    def test_concurrent_takes_never_pass_the_limit(self, store: Store) -> None:
        barrier = threading.Barrier(12)
        passed: list[int] = []

        def take() -> None:
            barrier.wait()
            if store.take("t:race", 4, 60, 1_800_000_000.0) <= 4:
                passed.append(1)

        threads = [threading.Thread(target=take) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(passed) == 4

    def test_claims(self, store: Store) -> None:
        assert store.claim("agent:1", "call-a", 60)
        assert store.claim("agent:1", "call-a", 60), "the holder may renew"
        assert not store.claim("agent:1", "call-b", 60)
        assert store.claimed_by("agent:1") == "call-a"
        store.release("agent:1", "call-b")
        assert store.claimed_by("agent:1") == "call-a"
        store.release("agent:1", "call-a")
        assert store.claimed_by("agent:1") is None and store.claim("agent:1", "call-b", 60)
        store.claim("agent:2", "call-c", 60)
        assert store.claimed(["agent:1", "agent:2", "agent:3"]) == {"agent:1", "agent:2"}
        assert store.claimed([]) == set()

    def test_counters(self, store: Store) -> None:
        assert store.count("handoffs", "taxaid") == 1
        assert store.count("handoffs", "taxaid", 2) == 3
        store.count("handoffs", "top")
        assert store.counters("handoffs") == {"taxaid": 3, "top": 1}
        assert store.counters("nothing") == {}

def expire(store: Store, namespace: str, key: str) -> None:
    """Make a document expire now (Redis keeps its own time: its TTL is cut to nothing)."""
    if isinstance(store, MemoryStore):
        store._docs[namespace][key] = (store._docs[namespace][key][0], 0.0)
    else:
        assert isinstance(store, RedisStore)
        doc_key = f"cf:{{{namespace}}}:doc:{key}"
        store.client.pexpire(doc_key, 1)
        eventually(lambda: not store.client.exists(doc_key), timeout=2, every=0.002)

def things(doc: dict[str, object]) -> list[tuple[str, float]]:
    """A test indexer: by owner (scored by time), and the open ones."""
    at = float(doc["at"])  # type: ignore[arg-type]
    entries = [(f"owner:{doc['owner']}", at)]
    if doc.get("open"):
        entries.append(("open", at))
    return entries

class IndexContract:
    """Indexes kept in the same atomic write as their documents (rule 10), on every store."""

    @pytest.fixture
    def indexed_store(self, store: Store) -> Store:
        store.define_index("things", things, keep_seconds=1000)
        return store

    def test_every_write_keeps_the_indexes(self, indexed_store: Store) -> None:
        store = indexed_store
        for n in range(5):
            store.put_doc("things", f"t{n}", {"owner": "amy", "at": 100 + n, "open": n % 2 == 0})
        assert [d["at"] for d in store.indexed("things", "owner:amy", newest_first=True)] == [
            104, 103, 102, 101, 100,
        ]  # fmt: skip
        assert [d["at"] for d in store.indexed("things", "open")] == [100, 102, 104]
        # An update moves a document between index entries, in the same step.
        store.update_doc("things", "t0", lambda d: {**d, "owner": "ben", "open": False})
        assert [d["at"] for d in store.indexed("things", "owner:ben")] == [100]
        assert [d["at"] for d in store.indexed("things", "owner:amy")] == [101, 102, 103, 104]
        assert [d["at"] for d in store.indexed("things", "open")] == [102, 104]
        changed = store.change_doc("things", "t2", lambda d: {**d, "open": False})
        assert changed.written and store.index_size("things", "open") == 1
        # put_doc replacing a document drops its old entries; add_doc never replaces.
        store.put_doc("things", "t4", {"owner": "cal", "at": 104})
        assert store.index_size("things", "open") == 0
        assert not store.add_doc("things", "t4", {"owner": "dan", "at": 104, "open": True})
        assert store.add_doc("things", "t9", {"owner": "dan", "at": 109, "open": True})
        assert [d["owner"] for d in store.indexed("things", "open")] == ["dan"]
        assert store.delete_doc("things", "t9")
        assert store.indexed("things", "open") == [] and store.index_size("things", "open") == 0
        with pytest.raises(StoreError):
            store.list_docs("things")
        with pytest.raises(StoreError):
            store.count_docs("things")

    def test_paging_and_score_ranges(self, indexed_store: Store) -> None:
        store = indexed_store
        for n in range(10):
            store.put_doc("things", f"t{n}", {"owner": "amy", "at": 200 + n})
        page = store.indexed("things", "owner:amy", newest_first=True, offset=2, count=3)
        assert [d["at"] for d in page] == [207, 206, 205]
        window = store.indexed("things", "owner:amy", min_score=203, max_score=205)
        assert [d["at"] for d in window] == [203, 204, 205]

    def test_expired_documents_leave_no_entry_once_met(self, indexed_store: Store) -> None:
        store = indexed_store
        for n in range(4):
            store.put_doc("things", f"t{n}", {"owner": "amy", "at": 300 + n}, ttl_seconds=60)
        expire(store, "things", "t1")
        expire(store, "things", "t3")
        assert [d["at"] for d in store.indexed("things", "owner:amy", count=2)] == [300, 302]
        assert [d["at"] for d in store.indexed("things", "owner:amy")] == [300, 302]
        assert store.index_size("things", "owner:amy") == 2, "cleaned as they were met"

    def test_counts_within_scores_without_reading_documents(self, indexed_store: Store) -> None:
        store = indexed_store
        for n in range(10):
            store.put_doc("things", f"t{n}", {"owner": "amy", "at": 400 + n, "open": n < 3})
        assert store.index_size("things", "owner:amy") == 10
        assert store.index_size("things", "owner:amy", min_score=402, max_score=405) == 4
        assert store.index_size("things", "owner:amy", min_score=408) == 2
        assert store.index_size("things", "owner:amy", max_score=400) == 1
        asked = [("things", "owner:amy"), ("things", "open"), ("others", "owner:amy")]
        assert store.index_sizes(asked, min_score=401, max_score=409) == [9, 2, 0]

    def test_reindex_rebuilds_entries_from_the_documents(self, indexed_store: Store) -> None:
        store = indexed_store
        for n in range(3):
            store.put_doc("things", f"t{n}", {"owner": "amy", "at": 500 + n, "open": True})
        # The index definition changes (an upgrade): old entries no longer fit it.
        store.define_index(
            "things", lambda d: [(f"by:{d['owner']}", float(d["at"]))], keep_seconds=1000
        )
        assert store.indexed("things", "by:amy") == []
        assert store.reindex("things") == 3
        assert [d["at"] for d in store.indexed("things", "by:amy")] == [500, 501, 502]
        assert store.index_size("things", "open") == 0, "entries of the old definition go"
        assert store.index_size("things", "owner:amy") == 0

    def test_entries_older_than_the_records_are_kept_are_trimmed(
        self, indexed_store: Store
    ) -> None:
        store = indexed_store
        store.put_doc("things", "old", {"owner": "amy", "at": 1})
        store.put_doc("things", "new", {"owner": "amy", "at": 2000})
        assert store.index_size("things", "owner:amy") == 1

class FollowContract:
    """Following the audit log, as live consoles do."""

    def test_audit_after(self, store: Store) -> None:
        assert store.last_audit_id() == "0"
        first = store.append_audit({"kind": "a"})
        second = store.append_audit({"kind": "b"})
        assert store.last_audit_id() == second
        assert [e["kind"] for e in store.audit_after("0")] == ["a", "b"]
        assert [e["kind"] for e in store.audit_after(first)] == ["b"]
        assert store.audit_after(second) == []

    def test_a_blocking_read_wakes_when_an_entry_arrives(self, store: Store) -> None:
        start = store.last_audit_id()
        timer = threading.Timer(0.2, lambda: store.append_audit({"kind": "late"}))
        timer.start()
        began = time.monotonic()
        entries = store.audit_after(start, block_ms=3000)
        timer.join()
        assert [e["kind"] for e in entries] == ["late"]
        assert time.monotonic() - began < 2.5

    def test_a_blocking_read_times_out_empty(self, store: Store) -> None:
        assert store.audit_after(store.last_audit_id(), block_ms=100) == []
