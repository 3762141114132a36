"""The audit log: every security-relevant step, who, when, which call, what outcome.

Entries never carry a PIN, a security answer or the digits or words a caller gave for
them; :meth:`Audit.record` refuses fields that could.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clock import Clock
    from .store.base import Store

log = logging.getLogger(__name__)

#: Field names that could carry a secret; an entry with any of them is refused.
FORBIDDEN_FIELDS = frozenset({"pin", "answer", "digits", "speech", "speech_result", "secret"})


class Audit:
    """Writes audit entries to the store."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def record(self, kind: str, *, call_sid: str | None = None, **fields: Any) -> str:
        """Append an entry; raises StoreUnavailable if it cannot be written."""
        bad = FORBIDDEN_FIELDS & {name.lower() for name in fields}
        if bad:
            raise ValueError(f"audit entries never carry {', '.join(sorted(bad))}")
        entry = {
            "at": datetime.fromtimestamp(self.clock.now(), UTC).isoformat(timespec="milliseconds"),
            "kind": kind,
            "call_sid": call_sid,
            **fields,
        }
        entry_id = self.store.append_audit(entry)
        log.info("audit %s call=%s outcome=%s", kind, call_sid, fields.get("outcome", "-"))
        return entry_id

    def entries(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest entries, oldest first."""
        return self.store.read_audit(limit)
