"""Daily tallies of the audit log: the auditor's figures without reading the period.

Each audit entry names the tallies it adds one to (``tally_fields``); the store adds them
to that UTC day's tally in the same atomic step as the entry (a hash per day,
``cf:{audit}:tally:<YYYY-MM-DD>``). The auditor's page then reads one small hash per day of
the period, whatever the period holds (ARCHITECTURE.md rule 10). ``tallies_of`` gives the
same tallies from entries (a period's entries, or an archive) and ``callflow audit retally``
rebuilds stored days from the log, so the two can always be compared.

A field is ``<what>|<organisation>|<detail>``:

- ``v|org|<label>``: a verification outcome (``VERIFY_OUTCOMES``' labels);
- ``lock|org|``: an adviser locked;
- ``ho|org|<team>``: a hand-off requested;
- ``hn|org|<reason>``: a hand-off requested, by why it needed a specialist;
- ``gd|org|<bucket>``: a grant ended, by how long it lasted (``DURATION_BUCKETS``);
- ``w|org|<language>:<seconds>``: a waiting caller put through to an agent, by how long
  they waited (to ``WAIT_STEP`` seconds: the floor's average, 90th percentile and share
  answered within 60 seconds);
- ``ab|org|<language>``: a verified caller who hung up while still waiting for an agent.

Tallies hold counts only: no caller, adviser, customer or call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

__all__ = [
    "DURATION_BUCKETS",
    "VERIFY_OUTCOMES",
    "WAIT_STEP",
    "duration_bucket",
    "tallies_of",
    "tally_fields",
    "wait_bucket",
]

#: What the auditor's chart calls each verification outcome.
VERIFY_OUTCOMES = {
    ("verification.verified", "verified"): "verified",
    ("verification.pin", "failed"): "wrong PIN",
    ("verification.answer", "failed"): "wrong answer",
    ("verification.pin", "unknown_adviser"): "unknown adviser",
    ("verification.pin", "locked"): "locked out",
    ("verification.pin", "hard_locked"): "locked out",
    ("verification.pin", "throttled"): "number waiting",
}
DURATION_BUCKETS = ("< 5 min", "5 to 15 min", "15 to 30 min", "30 min +")
#: Waits are tallied in steps of this many seconds (the bucket's lower bound), up to
#: ``WAIT_CAP`` (longer waits count as that).
WAIT_STEP = 5
WAIT_CAP = 3600


def wait_bucket(seconds: float) -> int:
    """The lower bound of the wait bucket ``seconds`` falls in."""
    capped = min(max(float(seconds), 0.0), WAIT_CAP)
    return int(capped // WAIT_STEP) * WAIT_STEP


def duration_bucket(minutes: float) -> str:
    """The grant-duration bar a grant of ``minutes`` falls in."""
    if minutes < 5:
        return DURATION_BUCKETS[0]
    if minutes < 15:
        return DURATION_BUCKETS[1]
    if minutes < 30:
        return DURATION_BUCKETS[2]
    return DURATION_BUCKETS[3]


def _part(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "/")


def tally_fields(entry: dict[str, Any]) -> list[str]:
    """The tallies an audit entry adds one to (none for most kinds)."""
    kind, outcome = str(entry.get("kind")), str(entry.get("outcome"))
    org = _part(entry.get("organisation"))
    fields = []
    label = VERIFY_OUTCOMES.get((kind, outcome))
    if label:
        fields.append(f"v|{org}|{label}")
    if kind == "verification.lockout":
        fields.append(f"lock|{org}|")
    elif kind == "handoff.requested":
        fields.append(f"ho|{org}|{_part(entry.get('team'))}")
        if entry.get("need"):
            fields.append(f"hn|{org}|{_part(entry.get('need'))}")
    elif kind == "grant.ended" and isinstance(entry.get("minutes"), int | float):
        fields.append(f"gd|{org}|{duration_bucket(float(entry['minutes']))}")
    elif kind == "agent.connected" and isinstance(entry.get("waited"), int | float):
        language = _part(entry.get("language"))
        fields.append(f"w|{org}|{language}:{wait_bucket(float(entry['waited']))}")
    elif kind == "call.ended" and entry.get("abandoned"):
        fields.append(f"ab|{org}|{_part(entry.get('language'))}")
    return fields


def tallies_of(entries: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Entries' tallies by UTC day: what the store keeps as they are written."""
    days: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in entries:
        for field in tally_fields(entry):
            days[str(entry.get("at", ""))[:10]][field] += 1
    return {day: dict(counts) for day, counts in days.items()}
