"""The audit log: every security-relevant step, who, when, which call, what outcome.

Entries never carry a PIN, a security answer or the digits or words a caller gave for
them; :meth:`Audit.record` refuses fields that could.

The log is tamper-evident. Each entry takes the next sequence number (``seq``, one
atomic step in the store) and carries its own ``hash``: an HMAC-SHA256 of its canonical
JSON, sequence number included, keyed with a key derived from the service's secret key,
so someone who can write to Redis still cannot forge or renumber an entry. Writers never
wait for each other: an append is two round trips (take a number, write the entry) with
no retries. :func:`verify_entries` finds an altered entry (its hash), an inserted one
(no valid hash, or a number used twice) and a removed one (a number missing).

What the entries alone cannot show is a cut at the end, or the loss of everything
(Redis restarted without persistence): :class:`Checkpoints` writes, at a steady
interval, a signed record of where the log stood (its epoch, newest number and that
entry's hash) outside Redis: to a folder (``CALLFLOW_AUDIT_CHECKPOINTS``) and as a log
line that log shipping keeps. ``callflow audit verify`` and ``/healthz`` check the log
against the newest one.

A number taken by an entry that then could not be written (Redis failed between the two
round trips) is written later as an ``audit.void`` entry under that number, so it does
not read as a removal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AuditWriteFailed, StoreError
from .metrics import count_audit_event
from .tallies import tally_fields

if TYPE_CHECKING:
    from .clock import Clock
    from .store.base import Store

log = logging.getLogger(__name__)
checkpoint_log = logging.getLogger("callflow.audit.checkpoint")

#: Field names that could carry a secret; an entry with any of them is refused.
FORBIDDEN_FIELDS = frozenset({"pin", "answer", "digits", "speech", "speech_result", "secret"})
VOID = "audit.void"
#: Numbers left without an entry that one process remembers, to void when it can.
MAX_UNWRITTEN = 1000


#: Fields that name a member of the public (a calling number, a client's address): the
#: hash covers their keyed pseudonym, so an archive may keep the pseudonym alone and still
#: verify (docs/retention.md).
PSEUDONYMISED = ("caller", "address")
PSEUDONYM_PREFIX = "~"


#: Outcomes that are Twilio's codes or the service's reasons, in words for people.
OUTCOME_WORDS = {
    "participant-with-end-conference-on-exit-left": (
        "the call ended: a participant who ends it left (the caller hung up)"
    ),
    "participant-with-end-conference-on-exit-kicked": (
        "the call ended: a participant who ends it was removed"
    ),
    "last-participant-left": "the call ended: the last participant left",
    "last-participant-kicked": "the call ended: the last participant was removed",
    "conference-ended-via-api": "the service ended the call",
    "no-answer": "no answer",
    "canceled": "cancelled",
    "specialist_leg_completed": "the specialist's leg ended",
    "max_lifetime": "the grant's longest lifetime ran out",
}


#: Audit kinds are lower_case words joined by dots.
_FACET_VALUE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-+")


def facets_of(entry: dict[str, Any]) -> list[str]:
    """The indexes an audit entry is found by on the auditor's log: its kind, the
    organisation, the adviser and the call it names."""

    def clean(value: Any) -> str:
        text = str(value or "").strip()
        return text if text and len(text) <= 64 and set(text.lower()) <= _FACET_VALUE else ""

    facets = []
    for name, field_name in (
        ("kind", "kind"),
        ("org", "organisation"),
        ("adviser", "adviser"),
        ("call", "call_sid"),
    ):
        value = entry.get(field_name)
        if isinstance(value, str) and clean(value):
            facets.append(f"{name}:{clean(value)}")
    return facets


def outcome_text(outcome: str) -> str:
    """An audit entry's outcome as people read it (a code they would not know, in words)."""
    return OUTCOME_WORDS.get(outcome, outcome.replace("_", " "))


def pseudonymiser(key: bytes) -> Any:
    """A function replacing a value by its keyed pseudonym (pseudonyms stay as they are)."""
    pkey = hmac.new(key, b"callflow audit pseudonym", hashlib.sha256).digest()

    def pseudonym(value: Any) -> Any:
        if not isinstance(value, str) or not value or value.startswith(PSEUDONYM_PREFIX):
            return value
        return PSEUDONYM_PREFIX + hmac.new(pkey, value.encode(), hashlib.sha256).hexdigest()[:24]

    return pseudonym


def canonical(entry: dict[str, Any], pseudonym: Any = None) -> bytes:
    """The bytes an entry's hash covers: its fields but ``hash`` and ``id``, sorted; with
    ``pseudonym``, the fields that name a member of the public as their pseudonyms."""
    body = {k: v for k, v in entry.items() if k not in {"hash", "id"}}
    if pseudonym is not None:
        for name in PSEUDONYMISED:
            if name in body:
                body[name] = pseudonym(body[name])
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def pseudonymised(entry: dict[str, Any], key: bytes) -> dict[str, Any]:
    """An entry with its members of the public replaced by pseudonyms (it still verifies)."""
    pseudonym = pseudonymiser(key)
    return {k: pseudonym(v) if k in PSEUDONYMISED else v for k, v in entry.items()}


def chain_key(secret_key: bytes) -> bytes:
    """The audit log's key, derived from the service's secret key."""
    return hmac.new(secret_key, b"callflow audit chain", hashlib.sha256).digest()


def seal_with(key: bytes) -> Any:
    """A function computing an entry's hash."""
    pseudonym = pseudonymiser(key)

    def seal(entry: dict[str, Any]) -> str:
        return hmac.new(key, canonical(entry, pseudonym), hashlib.sha256).hexdigest()

    return seal


@dataclass(frozen=True)
class Break:
    """Where the log stops holding."""

    entry_id: str
    at: str
    kind: str
    problem: str

    def __str__(self) -> str:
        return f"audit entry {self.entry_id} ({self.at}, {self.kind}): {self.problem}"


@dataclass
class Walk:
    """What a verification saw: how many entries, the newest number, wanted hashes."""

    count: int = 0
    last_seq: int = 0
    hashes: dict[int, str] = field(default_factory=dict)


def verify_entries(
    entries: Iterable[dict[str, Any]],
    key: bytes,
    after_seq: int = 0,
    want: Iterable[int] = (),
) -> tuple[Break | None, Walk]:
    """Check entries numbered after ``after_seq`` (in any order): every hash, no number
    used twice (but for a void), none missing up to the newest. ``want``: numbers whose
    hash to report (for a checkpoint)."""
    seal = seal_with(key)
    wanted = set(want)
    walk = Walk(last_seq=after_seq)
    seen = bytearray()  # per number after after_seq: 0 none, 1 an entry, 2 a void
    for entry in entries:
        where = (str(entry.get("id", "?")), str(entry.get("at", "?")), str(entry.get("kind", "?")))
        seq = entry.get("seq")
        if "hash" not in entry or not isinstance(seq, int) or isinstance(seq, bool):
            return Break(*where, "not sealed (no seq/hash): inserted outside the service"), walk
        if not hmac.compare_digest(seal(entry), str(entry["hash"])):
            return Break(*where, "its hash does not match its content: the entry was altered"), walk
        if seq <= after_seq:
            return Break(*where, f"number {seq} is before the log's start: inserted"), walk
        index = seq - after_seq - 1
        if index >= len(seen):
            seen.extend(bytes(index + 1 - len(seen) + 1024))
        mark = 2 if entry.get("kind") == VOID else 1
        if seen[index] == 1 and mark == 1:
            return Break(*where, f"number {seq} is used twice: an entry was inserted"), walk
        if seen[index] != 1:
            seen[index] = mark
            if seq in wanted and mark == 1:
                walk.hashes[seq] = str(entry["hash"])
        walk.count += 1
        walk.last_seq = max(walk.last_seq, seq)
    missing = seen.find(0, 0, walk.last_seq - after_seq)
    if missing >= 0:
        seq = after_seq + missing + 1
        return Break(f"number {seq}", "-", "-", "this entry is missing: it was removed"), walk
    return None, walk


class Audit:
    """Writes sealed, numbered audit entries to the store."""

    def __init__(self, store: Store, clock: Clock, key: bytes) -> None:
        self.store = store
        self.clock = clock
        self.key = key
        self._seal = seal_with(key)
        self._unwritten: list[int] = []
        self._lock = threading.Lock()

    def _now(self) -> str:
        return datetime.fromtimestamp(self.clock.now(), UTC).isoformat(timespec="milliseconds")

    def record(self, kind: str, *, call_sid: str | None = None, **fields: Any) -> str:
        """Append an entry; raises StoreUnavailable if it cannot be written (fail closed)."""
        bad = FORBIDDEN_FIELDS & {name.lower() for name in fields}
        if bad:
            raise ValueError(f"audit entries never carry {', '.join(sorted(bad))}")
        entry = {"at": self._now(), "kind": kind, "call_sid": call_sid, **fields}
        if self._unwritten:
            self._void_unwritten()
        try:
            entry_id = self.store.append_audit(
                entry, self._seal, tally=tally_fields(entry), facets=facets_of(entry)
            )
        except AuditWriteFailed as exc:
            with self._lock:
                self._unwritten = [*self._unwritten, exc.seq][-MAX_UNWRITTEN:]
            raise
        count_audit_event(kind, str(fields.get("outcome", "")))
        log.info("audit %s call=%s outcome=%s", kind, call_sid, fields.get("outcome", "-"))
        return entry_id

    def _void_unwritten(self) -> None:
        """Write a void under each number this process took but could not write."""
        with self._lock:
            pending, self._unwritten = self._unwritten, []
        for index, seq in enumerate(pending):
            void = {"at": self._now(), "kind": VOID, "call_sid": None, "outcome": "void"}
            try:
                self.store.append_audit(void, self._seal, seq=seq)
            except StoreError:
                with self._lock:
                    self._unwritten = [*pending[index:], *self._unwritten][-MAX_UNWRITTEN:]
                raise
            log.warning("audit number %s was taken but not written: voided", seq)

    def entries(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest entries, oldest first."""
        return self.store.read_audit(limit)

    def all_entries(self, page: int = 1000) -> Iterator[dict[str, Any]]:
        """Every entry still in the store, oldest first."""
        after = "0"
        while True:
            batch = self.store.audit_after(after, 0, page)
            if not batch:
                return
            yield from batch
            after = batch[-1]["id"]

    def between(self, since: float, until: float, page: int = 1000) -> Iterator[dict[str, Any]]:
        """The entries written in a period (seconds since 1970), oldest first: O(the period)."""
        after: str | None = None
        while True:
            batch = self.store.audit_between(since, until, after, page)
            if not batch:
                return
            yield from batch
            after = batch[-1]["id"]

    def verify(self, checkpoint: dict[str, Any] | None = None) -> Break | None:
        """Check the whole log in the store (from the archive anchor), and, given the newest
        checkpoint, that nothing it saw has been cut off or lost."""
        broken, _walk = self.verify_walk(checkpoint)
        return broken

    def verify_walk(self, checkpoint: dict[str, Any] | None = None) -> tuple[Break | None, Walk]:
        """:meth:`verify`, with what the walk saw."""
        state = self.store.audit_state()  # before the walk: numbers taken are written by then
        want = [checkpoint["seq"]] if checkpoint else []
        broken, walk = verify_entries(self.all_entries(), self.key, state.anchor_seq, want)
        if broken:
            return broken, walk
        if state.seq > walk.last_seq:
            return Break(
                f"number {walk.last_seq + 1}",
                "-",
                "-",
                f"numbers {walk.last_seq + 1} to {state.seq} were taken but have no entry: "
                "the newest entries were removed",
            ), walk
        if checkpoint is not None:
            problem = checkpoint_problem(checkpoint, state.epoch, state.anchor_seq, walk)
            if problem:
                return Break("checkpoint", str(checkpoint.get("at")), "-", problem), walk
        return None, walk


def checkpoint_problem(
    checkpoint: dict[str, Any], epoch: str | None, anchor_seq: int, walk: Walk | None
) -> str:
    """What is wrong with the log against a checkpoint, or ''. Without ``walk`` (health
    checks), only what the store's state shows."""
    if checkpoint.get("epoch") and checkpoint["epoch"] != epoch:
        return (
            f"the store is not the one the checkpoint of {checkpoint['at']} saw (epoch "
            f"{epoch or 'none'}, not {checkpoint['epoch']}): it lost its data or was replaced"
        )
    seq = int(checkpoint.get("seq", 0))
    if walk is None or seq <= anchor_seq:
        return ""
    if walk.last_seq < seq:
        return (
            f"the log ends at number {walk.last_seq} but the checkpoint of {checkpoint['at']} "
            f"saw number {seq}: its end was cut off"
        )
    if walk.hashes.get(seq) != checkpoint.get("hash"):
        return (
            f"entry number {seq}, seen by the checkpoint of {checkpoint['at']}, is not the "
            "same: the log was rewritten"
        )
    return ""


class Checkpoints:
    """Signed records of where the audit log stood, kept outside Redis.

    Each is a JSON line (the time, the store's epoch, the newest entry's number and hash,
    the numbers taken, and an HMAC of them under a key derived from the service's secret
    key), appended to ``checkpoints-YYYY-MM-DD.jsonl`` in ``folder`` when there is one, and
    always written to the log (``callflow.audit.checkpoint``), for log shipping to keep.
    """

    def __init__(self, folder: Path | None, secret_key: bytes, clock: Clock) -> None:
        self.folder = Path(folder) if folder else None
        self.key = hmac.new(secret_key, b"callflow audit checkpoint", hashlib.sha256).digest()
        self.clock = clock
        self._cache: tuple[tuple[str, float], dict[str, Any] | None] | None = None

    def _sign(self, body: dict[str, Any]) -> str:
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self.key, data, hashlib.sha256).hexdigest()

    def write(self, store: Store) -> dict[str, Any]:
        """Record where the log stands now."""
        state = store.audit_state()
        newest = max(
            (e for e in store.read_audit(64) if isinstance(e.get("seq"), int)),
            key=lambda e: e["seq"],
            default=None,
        )
        now = datetime.fromtimestamp(self.clock.now(), UTC)
        body = {
            "at": now.isoformat(timespec="seconds"),
            "epoch": state.epoch,
            "seq": newest["seq"] if newest else state.anchor_seq,
            "hash": newest["hash"] if newest else None,
            "taken": state.seq,
        }
        checkpoint = {**body, "sig": self._sign(body)}
        line = json.dumps(checkpoint, sort_keys=True)
        checkpoint_log.info("audit checkpoint %s", line)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"checkpoints-{now.date().isoformat()}.jsonl"
            with path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        return checkpoint

    def genuine(self, checkpoint: dict[str, Any]) -> bool:
        """Whether a checkpoint was signed with this service's key."""
        body = {k: v for k, v in checkpoint.items() if k != "sig"}
        return hmac.compare_digest(self._sign(body), str(checkpoint.get("sig", "")))

    def newest(self) -> dict[str, Any] | None:
        """The newest genuine checkpoint in the folder (read again only when it changes)."""
        if self.folder is None or not self.folder.is_dir():
            return None
        files = sorted(self.folder.glob("checkpoints-*.jsonl"))
        if not files:
            return None
        stamp = (str(files[-1]), files[-1].stat().st_mtime)
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        found = None
        for path in reversed(files):
            for line in reversed(path.read_text(encoding="utf-8").splitlines()):
                try:
                    checkpoint = json.loads(line)
                except ValueError:
                    continue
                if isinstance(checkpoint, dict) and self.genuine(checkpoint):
                    found = checkpoint
                    break
            if found:
                break
        self._cache = (stamp, found)
        return found


def verify_now(audit: Audit, checkpoints: Checkpoints) -> dict[str, Any]:
    """Check the whole log in the store against the newest checkpoint: what ``callflow
    audit verify`` prints and the auditor's page shows (``ok``, ``text``, figures)."""
    checkpoint = checkpoints.newest()
    broken, walk = audit.verify_walk(checkpoint)
    if broken:
        return {"ok": False, "text": f"BROKEN: {broken}", "count": walk.count,
                "last_seq": walk.last_seq, "checkpoint": checkpoint}  # fmt: skip
    if checkpoint is not None:
        note = f"; consistent with the checkpoint of {checkpoint['at']}"
    elif checkpoints.folder is None:
        note = (
            "; no checkpoints folder (CALLFLOW_AUDIT_CHECKPOINTS), so a cut-off end or a "
            "lost store cannot be ruled out"
        )
    else:
        note = "; no checkpoint written yet"
    return {
        "ok": True,
        "text": f"ok: {walk.count} entries, numbers to {walk.last_seq}, none missing{note}",
        "count": walk.count,
        "last_seq": walk.last_seq,
        "checkpoint": checkpoint,
    }
