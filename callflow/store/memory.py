"""The embedded in-memory store: the default when REDIS_URL is unset (one process only)."""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..clock import Clock, SystemClock
from ..errors import StoreError
from ..session import CallSession
from .base import (
    Attempt,
    AuditState,
    Created,
    Guard,
    Lease,
    LockStatus,
    Seal,
    Store,
    TraceStep,
    Ttl,
    ttl_for,
)


class MemoryStore(Store):
    """Everything in dictionaries behind one lock, with expiry by the given clock."""

    kind = "memory"

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__()
        self._index_entries: dict[tuple[str, str], dict[str, float]] = {}
        self._tallies: dict[str, dict[str, int]] = {}
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._audit_added = threading.Condition(self._lock)
        self._sessions: dict[str, tuple[int, dict[str, Any], float]] = {}
        self._traces: dict[str, tuple[list[dict[str, Any]], float]] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._advisers: dict[str, dict[str, Any]] = {}
        self._guards: dict[str, dict[str, Any]] = {}
        self._audit: list[dict[str, Any]] = []
        self._audit_ids = itertools.count(1)
        self._audit_seq = 0
        self._facets: dict[str, set[str]] = {}  # facet -> the ids of its entries
        self._epoch: str | None = None
        self._anchor: tuple[str, int] | None = None
        self._flows: dict[str, tuple[str, str]] = {}
        self._docs: dict[str, dict[str, tuple[dict[str, Any], float | None]]] = {}
        self._claims: dict[str, tuple[str, float]] = {}
        self._counters: dict[str, dict[str, int]] = {}
        self._throttles: dict[str, tuple[int, float]] = {}

    # -- call sessions

    def _live_lease(self, call_sid: str) -> str | None:
        lease = self._leases.get(call_sid)
        if lease and lease[1] > self.clock.now():
            return lease[0]
        self._leases.pop(call_sid, None)
        return None

    def _session(self, call_sid: str) -> CallSession | None:
        stored = self._sessions.get(call_sid)
        if stored is None:
            return None
        if stored[2] <= self.clock.now():
            del self._sessions[call_sid]
            return None
        return CallSession.from_dict(copy.deepcopy(stored[1]))

    def lease_session(self, call_sid: str, token: str, lease_ms: int) -> Lease:
        with self._lock:
            holder = self._live_lease(call_sid)
            if holder not in (None, token):
                return Lease(False, None)
            self._leases[call_sid] = (token, self.clock.now() + lease_ms / 1000)
            return Lease(True, self._session(call_sid))

    def save_session(
        self,
        session: CallSession,
        expected_rev: int,
        token: str,
        ttl_seconds: int,
        trace: TraceStep | None = None,
    ) -> bool:
        with self._lock:
            current = self._session(session.call_sid)
            current_rev = current.rev if current else 0
            if self._live_lease(session.call_sid) == token:
                del self._leases[session.call_sid]
            if current_rev != expected_rev:
                return False
            session.rev = expected_rev + 1
            self._sessions[session.call_sid] = (
                session.rev,
                copy.deepcopy(session.to_dict()),
                self.clock.now() + ttl_seconds,
            )
            self._trace(session.call_sid, trace, fresh=False)
            return True

    def create_session(
        self, session: CallSession, ttl_seconds: int, trace: TraceStep | None = None
    ) -> Created:
        with self._lock:
            if self._live_lease(session.call_sid) is not None:
                return Created("busy")
            current = self._session(session.call_sid)
            if current is not None:
                return Created("exists", current)
            session.rev = 1
            self._sessions[session.call_sid] = (
                1,
                copy.deepcopy(session.to_dict()),
                self.clock.now() + ttl_seconds,
            )
            self._trace(session.call_sid, trace, fresh=True)
            return Created("created")

    def _trace(self, call_sid: str, trace: TraceStep | None, *, fresh: bool) -> None:
        """Append a webhook's step to the call's trace (the lock is held)."""
        if trace is None:
            return
        now = self.clock.now()
        if fresh and len(self._traces) >= 1000:  # forget expired traces now and then
            self._traces = {k: v for k, v in self._traces.items() if v[1] > now}
        kept = self._traces.get(call_sid)
        steps = [] if fresh or kept is None or kept[1] <= now else kept[0]
        if len(steps) < trace.max_steps:
            steps = [*steps, copy.deepcopy(trace.step)]
        self._traces[call_sid] = (steps, now + trace.ttl_seconds)

    def trace_steps(self, call_sid: str) -> list[dict[str, Any]]:
        with self._lock:
            kept = self._traces.get(call_sid)
            if kept is None or kept[1] <= self.clock.now():
                return []
            return copy.deepcopy(kept[0])

    def release_session(self, call_sid: str, token: str) -> None:
        with self._lock:
            if self._live_lease(call_sid) == token:
                del self._leases[call_sid]

    def get_session(self, call_sid: str) -> CallSession | None:
        with self._lock:
            return self._session(call_sid)

    # -- directory

    def get_adviser(self, number: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._advisers.get(number)
            return copy.deepcopy(record) if record else None

    def add_adviser(self, number: str, record: dict[str, Any]) -> bool:
        with self._lock:
            if number in self._advisers:
                return False
            self._advisers[number] = copy.deepcopy(record)
            return True

    def put_adviser(self, number: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._advisers[number] = copy.deepcopy(record)

    def delete_adviser(self, number: str) -> bool:
        with self._lock:
            self._guards.pop(number, None)
            return self._advisers.pop(number, None) is not None

    def count_advisers(self) -> int:
        with self._lock:
            return len(self._advisers)

    def list_advisers(self, offset: int = 0, count: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            numbers = sorted(self._advisers)
            page = numbers[offset : offset + count] if count is not None else numbers[offset:]
            return [copy.deepcopy(self._advisers[n]) for n in page]

    # -- lockout

    def _guard(self, number: str, now: float) -> dict[str, Any]:
        """An adviser's lockout state (as Redis keeps it: forgotten a while after the last
        write; known numbers kept on their own)."""
        state = self._guards.get(number)
        if state is None:
            state = {"expires": 0.0, "known": {}, "known_expires": 0.0, "hard": False}
            self._guards[number] = state
        if state["expires"] <= now:  # the hard lock never expires
            state.update(fails=0, locked_until=0.0, pairs={})
        if state["known_expires"] <= now:
            state["known"] = {}
        return state

    def begin_attempt(
        self, number: str, caller: str, now: float, guard: Guard, *, relay: bool = False
    ) -> Attempt:
        with self._lock:
            state = self._guard(number, now)
            if relay:
                return self._unknown_attempt(state, None, now, guard)
            seen = state["known"].get(caller)
            known = seen is not None and seen >= now - guard.known_seconds
            count, until, consec = state["pairs"].get(caller, (0, 0.0, 0))
            if until <= now:
                count, until = 0, now + guard.number_window
            if count >= guard.number_attempts:
                first = count == guard.number_attempts
                state["pairs"][caller] = (count + (1 if first else 0), until, consec)
                return Attempt(False, "throttled", known, first)
            if consec >= guard.hard_limit:
                return Attempt(False, "hard_locked", known)
            if not known:
                return self._unknown_attempt(state, (caller, count + 1, until, consec), now, guard)
            state["pairs"][caller] = (count + 1, until, consec)
            state["expires"] = now + guard.failure_memory
            return Attempt(True, "ok", known)

    @staticmethod
    def _unknown_attempt(
        state: dict[str, Any],
        pair: tuple[str, int, float, int] | None,
        now: float,
        guard: Guard,
    ) -> Attempt:
        """Rule 3: an attempt from a number that is not known (or through the relay
        platform, ``pair`` None: no number of its own to count) counts with the others."""
        if state["hard"]:
            return Attempt(False, "hard_locked", False)
        fails = state["fails"]
        if fails >= guard.adviser_threshold and state["locked_until"] > now:
            return Attempt(False, "locked", False)
        state["fails"] = fails = fails + 1
        if fails >= guard.hard_limit:
            state["hard"] = True
        elif fails >= guard.adviser_threshold:
            state["locked_until"] = now + guard.lock_seconds
        if pair is not None:
            caller, count, until, consec = pair
            state["pairs"][caller] = (count, until, consec)
        state["expires"] = now + guard.failure_memory
        return Attempt(True, "ok", False, ordinal=fails)

    def attempt_failed(
        self, number: str, caller: str, now: float, guard: Guard, *, relay: bool = False
    ) -> bool:
        if relay:
            return False
        with self._lock:
            state = self._guard(number, now)
            count, until, consec = state["pairs"].get(caller, (0, 0.0, 0))
            state["pairs"][caller] = (count, until, consec + 1)
            state["expires"] = now + guard.failure_memory
            return bool(consec + 1 == guard.hard_limit)

    def attempt_succeeded(
        self, number: str, caller: str, now: float, guard: Guard, *, relay: bool = False
    ) -> None:
        with self._lock:
            state = self._guard(number, now)
            state.update(fails=0, locked_until=0.0, hard=False)
            if relay:
                return
            state["pairs"].pop(caller, None)
            known = {c: t for c, t in state["known"].items() if t >= now - guard.known_seconds}
            state["known"] = {**known, caller: now}
            state["known_expires"] = now + guard.known_seconds

    def lock_status(self, number: str, now: float) -> LockStatus:
        with self._lock:
            state = self._guard(number, now)
            numbers = {
                caller: (count, max(until - now, 0.0), consec)
                for caller, (count, until, consec) in state["pairs"].items()
                if until > now or consec
            }
            return LockStatus(
                state["fails"],
                max(state["locked_until"] - now, 0.0),
                state["hard"],
                numbers,
                dict(state["known"]),
            )

    def unlock(self, number: str) -> None:
        with self._lock:
            state = self._guards.get(number)
            if state is not None:
                state.update(fails=0, locked_until=0.0, hard=False, pairs={}, expires=0.0)

    # -- audit

    def append_audit(
        self,
        entry: dict[str, Any],
        seal: Seal | None = None,
        seq: int | None = None,
        tally: Sequence[str] = (),
        facets: Sequence[str] = (),
    ) -> str:
        with self._lock:
            day = self._tallies.setdefault(str(entry.get("at", ""))[:10], {})
            for name in tally:
                day[name] = day.get(name, 0) + 1
            entry_id = f"{next(self._audit_ids)}-0"
            record = copy.deepcopy(entry)
            if seal is not None:
                if seq is None:
                    self._audit_seq += 1
                    seq = self._audit_seq
                    if self._epoch is None:
                        self._epoch = secrets.token_hex(8)
                record["seq"] = seq
                record["hash"] = seal(record)
            self._audit.append({**record, "id": entry_id})
            for facet in facets:
                self._facets.setdefault(facet, set()).add(entry_id)
            self._audit_added.notify_all()
            return entry_id

    def audit_tallies(self, days: Sequence[str]) -> dict[str, dict[str, int]]:
        with self._lock:
            return {day: dict(self._tallies[day]) for day in days if self._tallies.get(day)}

    def replace_tallies(self, tallies: dict[str, dict[str, int]]) -> None:
        with self._lock:
            for day, counts in tallies.items():
                self._tallies[day] = dict(counts)

    def audit_state(self) -> AuditState:
        with self._lock:
            anchor_id, anchor_seq = self._anchor or (None, 0)
            return AuditState(self._audit_seq, self._epoch, anchor_id, anchor_seq)

    def trim_audit(self, through_id: str, through_seq: int) -> int:
        with self._lock:
            limit = self._seq(through_id)
            before = len(self._audit)
            self._audit = [e for e in self._audit if self._seq(e["id"]) > limit]
            for ids in self._facets.values():
                ids.difference_update({i for i in ids if self._seq(i) <= limit})
            self._anchor = (through_id, through_seq)
            return before - len(self._audit)

    def audit_between(
        self, since: float, until: float, after_id: str | None = None, count: int = 1000
    ) -> list[dict[str, Any]]:
        from datetime import datetime

        after = self._seq(after_id) if after_id else -1
        with self._lock:
            found = [
                copy.deepcopy(e)
                for e in self._audit
                if self._seq(e["id"]) > after
                and since <= datetime.fromisoformat(str(e.get("at"))).timestamp() <= until
            ]
            return found[:count]

    def _in_period(self, since: float, until: float, facet: str | None) -> list[dict[str, Any]]:
        from datetime import datetime

        ids = self._facets.get(facet, set()) if facet is not None else None
        return [
            e
            for e in self._audit
            if (ids is None or e["id"] in ids)
            and since <= datetime.fromisoformat(str(e.get("at"))).timestamp() <= until
        ]

    def audit_page(
        self,
        facet: str | None,
        since: float,
        until: float,
        *,
        before: str | None = None,
        after: str | None = None,
        count: int = 50,
    ) -> list[dict[str, Any]]:
        with self._lock:
            found = self._in_period(since, until, facet)
            if after:
                newer = [e for e in found if self._seq(e["id"]) > self._seq(after)][:count]
                return copy.deepcopy(list(reversed(newer)))
            if before:
                found = [e for e in found if self._seq(e["id"]) < self._seq(before)]
            return copy.deepcopy(list(reversed(found[-count:] if count else [])))

    def audit_facet_values(self, name: str) -> list[str]:
        with self._lock:
            prefix = f"{name}:"
            return sorted(
                f[len(prefix) :] for f, ids in self._facets.items() if f.startswith(prefix) and ids
            )

    def audit_facet_size(self, facet: str, since: float, until: float) -> int:
        with self._lock:
            return len(self._in_period(since, until, facet))

    def index_audit(self, indexed: Iterable[tuple[dict[str, Any], Sequence[str]]]) -> int:
        done = 0
        with self._lock:
            for entry, facets in indexed:
                for facet in facets:
                    self._facets.setdefault(facet, set()).add(entry["id"])
                done += 1
        return done

    def read_audit(self, limit: int = 1000) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._audit[-limit:])

    @staticmethod
    def _seq(entry_id: str) -> int:
        return int(entry_id.split("-")[0]) if entry_id not in {"", "$"} else -1

    def audit_after(
        self, after_id: str, block_ms: int = 0, count: int = 100
    ) -> list[dict[str, Any]]:
        with self._lock:
            after = len(self._audit) if after_id == "$" else self._seq(after_id)

            def newer() -> list[dict[str, Any]]:
                return [e for e in self._audit if self._seq(e["id"]) > after][:count]

            if not newer() and block_ms:
                self._audit_added.wait_for(lambda: bool(newer()), timeout=block_ms / 1000)
            return copy.deepcopy(newer())

    def last_audit_id(self) -> str:
        with self._lock:
            return self._audit[-1]["id"] if self._audit else "0"

    # -- flows

    def put_flow(self, version: str, name: str, source: str) -> None:
        with self._lock:
            self._flows[version] = (name, source)

    def get_flow(self, version: str) -> tuple[str, str] | None:
        with self._lock:
            return self._flows.get(version)

    # -- documents

    def _doc(self, namespace: str, key: str) -> dict[str, Any] | None:
        stored = self._docs.get(namespace, {}).get(key)
        if stored is None:
            return None
        doc, expires = stored
        if expires is not None and expires <= self.clock.now():
            del self._docs[namespace][key]
            return None
        return doc

    def _write(
        self,
        namespace: str,
        key: str,
        doc: dict[str, Any] | None,
        ttl_seconds: int | None,
        old: dict[str, Any] | None = None,
    ) -> None:
        """Write (or, ``doc`` None, delete) a document and its index entries together."""
        before, after = self._entries(namespace, old), self._entries(namespace, doc)
        for name in set(before) - set(after):
            self._index_entries.get((namespace, name), {}).pop(key, None)
        keep = self.indexes[namespace].keep_seconds if namespace in self.indexes else None
        for name, score in after.items():
            entries = self._index_entries.setdefault((namespace, name), {})
            entries[key] = score
            if keep is not None:
                for stale in [k for k, s in entries.items() if s < score - keep]:
                    del entries[stale]
        if doc is None:
            self._docs.get(namespace, {}).pop(key, None)
            return
        expires = self.clock.now() + ttl_seconds if ttl_seconds else None
        self._docs.setdefault(namespace, {})[key] = (copy.deepcopy(doc), expires)

    def get_doc(self, namespace: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self._doc(namespace, key))

    def put_doc(
        self, namespace: str, key: str, doc: Mapping[str, Any], ttl_seconds: int | None = None
    ) -> None:
        with self._lock:
            self._write(namespace, key, dict(doc), ttl_seconds, self._doc(namespace, key))

    def add_doc(
        self, namespace: str, key: str, doc: Mapping[str, Any], ttl_seconds: int | None = None
    ) -> bool:
        with self._lock:
            if self._doc(namespace, key) is not None:
                return False
            self._write(namespace, key, dict(doc), ttl_seconds)
            return True

    def delete_doc(self, namespace: str, key: str) -> bool:
        with self._lock:
            old = self._doc(namespace, key)
            self._write(namespace, key, None, None, old)
            return old is not None

    def list_docs(self, namespace: str) -> list[dict[str, Any]]:
        if namespace in self.indexes:
            raise StoreError(f"{namespace} grows with history: ask its indexes, never list it")
        with self._lock:
            keys = list(self._docs.get(namespace, {}))
            docs = [self._doc(namespace, key) for key in keys]
            return [copy.deepcopy(d) for d in docs if d is not None]

    def count_docs(self, namespace: str) -> int:
        if namespace in self.indexes:
            raise StoreError(f"{namespace} grows with history: ask its indexes, never count it")
        with self._lock:
            return len(self._docs.get(namespace, {}))

    def update_doc(
        self,
        namespace: str,
        key: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        ttl_seconds: Ttl = None,
    ) -> dict[str, Any] | None:
        with self._lock:
            current = self._doc(namespace, key)
            new = change(copy.deepcopy(current))
            if new is None:
                return copy.deepcopy(current)
            self._write(namespace, key, new, ttl_for(ttl_seconds, new), current)
            return copy.deepcopy(new)

    def indexed(
        self,
        namespace: str,
        index: str,
        *,
        newest_first: bool = False,
        min_score: float | None = None,
        max_score: float | None = None,
        offset: int = 0,
        count: int | None = None,
    ) -> list[dict[str, Any]]:
        with self._lock:
            entries = self._index_entries.get((namespace, index), {})
            chosen = sorted(
                (
                    (score, key)
                    for key, score in entries.items()
                    if (min_score is None or score >= min_score)
                    and (max_score is None or score <= max_score)
                ),
                reverse=newest_first,
            )
            found = []
            for _score, key in chosen:
                doc = self._doc(namespace, key)
                if doc is None:  # expired: its entries go as they are met
                    entries.pop(key, None)
                    continue
                found.append(copy.deepcopy(doc))
            end = None if count is None else offset + count
            return found[offset:end]

    def index_size(
        self,
        namespace: str,
        index: str,
        *,
        min_score: float | None = None,
        max_score: float | None = None,
    ) -> int:
        with self._lock:
            return sum(
                1
                for score in self._index_entries.get((namespace, index), {}).values()
                if (min_score is None or score >= min_score)
                and (max_score is None or score <= max_score)
            )

    def reindex(self, namespace: str) -> int:
        with self._lock:
            for (ns, _name), entries in self._index_entries.items():
                if ns == namespace:
                    entries.clear()
            count = 0
            for key in list(self._docs.get(namespace, {})):
                doc = self._doc(namespace, key)
                if doc is None:
                    continue
                for name, score in self._entries(namespace, doc).items():
                    self._index_entries.setdefault((namespace, name), {})[key] = score
                count += 1
            return count

    # -- claims

    def claim(self, key: str, owner: str, ttl_seconds: int) -> bool:
        with self._lock:
            holder = self._claims.get(key)
            if holder and holder[1] > self.clock.now() and holder[0] != owner:
                return False
            self._claims[key] = (owner, self.clock.now() + ttl_seconds)
            return True

    def release(self, key: str, owner: str) -> None:
        with self._lock:
            holder = self._claims.get(key)
            if holder and holder[0] == owner:
                del self._claims[key]

    def claimed_by(self, key: str) -> str | None:
        with self._lock:
            holder = self._claims.get(key)
            if holder and holder[1] > self.clock.now():
                return holder[0]
            return None

    # -- throttles

    def take(self, key: str, limit: int, window_seconds: int, now: float) -> int:
        with self._lock:
            count, until = self._throttles.get(key, (0, 0.0))
            if until <= now:
                count, until = 0, now + window_seconds
            if count > limit:
                return count + 1
            self._throttles[key] = (count + 1, until)
            return count + 1

    def give_back(self, key: str) -> None:
        with self._lock:
            count, until = self._throttles.get(key, (0, 0.0))
            if count > 0:
                self._throttles[key] = (count - 1, until)

    def forget(self, key: str) -> None:
        with self._lock:
            self._throttles.pop(key, None)

    # -- counters

    def count(self, name: str, field: str, by: int = 1) -> int:
        with self._lock:
            fields = self._counters.setdefault(name, {})
            fields[field] = fields.get(field, 0) + by
            return fields[field]

    def counters(self, name: str) -> dict[str, int]:
        with self._lock:
            return dict(self._counters.get(name, {}))

    def on_recover(self, callback: Callable[[], None]) -> None:
        """The embedded store never fails, so it never recovers: nothing to call back."""

    def ping(self) -> bool:
        return True
