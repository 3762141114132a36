"""The audit log: every security-relevant step, who, when, which call, what outcome.

Entries never carry a PIN, a security answer or the digits or words a caller gave for
them; :meth:`Audit.record` refuses fields that could.

The log is tamper-evident: each entry names the hash of the one before (``prev``) and
carries its own ``hash``, an HMAC-SHA256 of its canonical JSON keyed with a key derived
from the service's secret key (so someone who can write to Redis still cannot forge a
chain). :func:`verify_chain` finds the first altered, inserted or removed entry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .metrics import count_audit_event
from .store.base import GENESIS

if TYPE_CHECKING:
    from .clock import Clock
    from .store.base import Store

log = logging.getLogger(__name__)

#: Field names that could carry a secret; an entry with any of them is refused.
FORBIDDEN_FIELDS = frozenset({"pin", "answer", "digits", "speech", "speech_result", "secret"})


def canonical(entry: dict[str, Any]) -> bytes:
    """The bytes an entry's hash covers: its fields but ``hash`` and ``id``, sorted."""
    body = {k: v for k, v in entry.items() if k not in {"hash", "id"}}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_key(secret_key: bytes) -> bytes:
    """The audit chain's key, derived from the service's secret key."""
    return hmac.new(secret_key, b"callflow audit chain", hashlib.sha256).digest()


def seal_with(key: bytes) -> Any:
    """A function computing an entry's hash."""

    def seal(entry: dict[str, Any]) -> str:
        return hmac.new(key, canonical(entry), hashlib.sha256).hexdigest()

    return seal


@dataclass(frozen=True)
class Break:
    """Where a chain stops holding."""

    entry_id: str
    at: str
    kind: str
    problem: str

    def __str__(self) -> str:
        return f"audit entry {self.entry_id} ({self.at}, {self.kind}): {self.problem}"


def verify_chain(
    entries: Iterable[dict[str, Any]], key: bytes, start: str = GENESIS
) -> Break | None:
    """The first entry whose hash or link is wrong, or None when the chain holds."""
    seal = seal_with(key)
    prev = start
    for entry in entries:
        where = (str(entry.get("id", "?")), str(entry.get("at", "?")), str(entry.get("kind", "?")))
        if "hash" not in entry or "prev" not in entry:
            return Break(*where, "not chained (no prev/hash): inserted outside the service")
        if not hmac.compare_digest(seal(entry), str(entry["hash"])):
            return Break(*where, "its hash does not match its content: the entry was altered")
        if entry["prev"] != prev:
            return Break(
                *where, "it does not follow the entry before it: an entry was removed or inserted"
            )
        prev = entry["hash"]
    return None


class Audit:
    """Writes chained audit entries to the store."""

    def __init__(self, store: Store, clock: Clock, key: bytes) -> None:
        self.store = store
        self.clock = clock
        self.key = key
        self._seal = seal_with(key)

    def record(self, kind: str, *, call_sid: str | None = None, **fields: Any) -> str:
        """Append an entry; raises StoreUnavailable if it cannot be written (fail closed)."""
        bad = FORBIDDEN_FIELDS & {name.lower() for name in fields}
        if bad:
            raise ValueError(f"audit entries never carry {', '.join(sorted(bad))}")
        entry = {
            "at": datetime.fromtimestamp(self.clock.now(), UTC).isoformat(timespec="milliseconds"),
            "kind": kind,
            "call_sid": call_sid,
            **fields,
        }
        entry_id = self.store.append_audit(entry, self._seal)
        count_audit_event(kind, str(fields.get("outcome", "")))
        log.info("audit %s call=%s outcome=%s", kind, call_sid, fields.get("outcome", "-"))
        return entry_id

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

    def verify(self) -> Break | None:
        """Check the whole chain in the store, from the archive anchor to the head."""
        anchor = self.store.audit_anchor()
        start = anchor[1] if anchor else GENESIS
        last: dict[str, Any] | None = None

        def walk() -> Iterator[dict[str, Any]]:
            nonlocal last
            for entry in self.all_entries():
                last = entry
                yield entry

        broken = verify_chain(walk(), self.key, start)
        if broken:
            return broken
        head = self.store.audit_head()
        if head is not None and (last is None or last.get("hash") != head[1]):
            newest = last or {}
            return Break(
                str(newest.get("id", "-")),
                str(newest.get("at", "-")),
                str(newest.get("kind", "-")),
                "the newest entries were removed (the chain's head is missing)",
            )
        return None
