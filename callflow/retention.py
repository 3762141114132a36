"""Retention: how long each kind of record is kept, why, and the pass that applies it.

Every family of keys in the store is listed in :data:`FAMILIES`: what it holds, whether
that is personal data, how long it is kept and why (docs/retention.md is written from
the same list). Most families expire by themselves (a Redis TTL set with every write).
Records kept while someone is registered (an adviser, a member of staff) are removed
with them. The audit log is a stream, so its entries do not expire one by one: the
retention pass (the Procfile's `worker:` runs it at most hourly) archives entries older
than ``CALLFLOW_AUDIT_RETENTION_DAYS`` to ``CALLFLOW_AUDIT_ARCHIVE``, with calling numbers
and client addresses replaced by keyed pseudonyms (the archive still verifies), and trims
them from Redis.

``callflow retention report`` lists each family: how many keys, the oldest, and any key
that lacks the expiry it should have, or belongs to no family at all.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .audit import pseudonymised

if TYPE_CHECKING:
    from .service import Callflow

log = logging.getLogger(__name__)

DAY = 24 * 3600
#: The retention pass runs at most this often, whatever the worker's beat.
PASS_SECONDS = 3600
LAST_PASS = ("ops", "retention")


@dataclass(frozen=True)
class Family:
    """A family of keys: what they hold, and the rule that keeps them no longer than needed."""

    name: str
    pattern: str
    holds: str
    personal: bool
    rule: str
    why: str
    expires: bool  # every key must carry an expiry
    days: float | None = None  # the lifetime set at each write, where it is one figure

    def matches(self, key: str) -> bool:
        return re.fullmatch(self.pattern, key) is not None


def _doc(ns: str) -> str:
    return rf"cf:\{{{ns}\}}:doc:.+"


FAMILIES: tuple[Family, ...] = (
    Family("call sessions", r"cf:call:\{CA[0-9a-fA-F]{32}\}(:lease)?",
           "the calling number, the flow's state, the verified adviser (never a secret)", True,
           "12 h after the last change while the call is live, 6 h after it ends",
           "a live call needs its state; nothing is needed after it", True),
    Family("call traces", r"cf:call:\{CA[0-9a-fA-F]{32}\}:trace",
           "each webhook of a call: states, guards, actions, prompts said, non-secret input "
           "(an adviser number, a keypress); never a PIN, an answer or a secret keyed", True,
           "CALLFLOW_TRACE_RETENTION_DAYS (30) after the call's last webhook",
           "a designer answering a complaint; the replay gate before a publish", True, 30),
    Family("call trace summaries", _doc("traces"),
           "an ended call's flow, version, times and final state (no number, no input)", False,
           "CALLFLOW_TRACE_RETENTION_DAYS (30)", "finding a call by flow, outcome and time",
           True, 30),
    Family("adviser records", r"cf:\{dir\}:adviser:.+",
           "an adviser's name, organisation, phone and email; PIN and answers as keyed hashes",
           True, "while the adviser is registered; `callflow advisers remove` deletes it",
           "VSTRS verifies advisers for as long as they are registered", False),
    Family("adviser index", r"cf:\{dir\}:advisers", "adviser numbers", False,
           "with the adviser records", "finds the records", False),
    Family("lockout counts", r"cf:\{adv:[^}]+\}:guard",
           "calling numbers that tried to verify an adviser, and their counts", True,
           "24 h after the last attempt", "throttling guessing (docs/lockout.md)", True, 1),
    Family("known numbers", r"cf:\{adv:[^}]+\}:known",
           "calling numbers that verified an adviser", True,
           "30 days after the last verification (CALLFLOW_KNOWN_NUMBER_DAYS)",
           "so strangers cannot lock an adviser out of their usual line", True, 30),
    Family("hard locks", r"cf:\{adv:[^}]+\}:hard", "when an adviser was hard-locked", False,
           "until an admin unlocks or the adviser verifies", "NIST SP 800-63B 5.2.2", False),
    Family("audit log", r"cf:\{audit\}",
           "every security-relevant step: who, when, which call, the calling number", True,
           "CALLFLOW_AUDIT_RETENTION_DAYS (400): then archived to CALLFLOW_AUDIT_ARCHIVE with "
           "calling numbers and addresses as keyed pseudonyms, and trimmed",
           "HMRC's periodic assurance audits need a year of hand-offs and verifications", False),
    Family("audit tallies", r"cf:\{audit\}:tally:\d{4}-\d{2}-\d{2}",
           "per UTC day: counts of verification outcomes, lockouts, hand-offs and grant "
           "durations by organisation (no person, call or number)", False,
           "3 years after the day", "the auditor's figures for a period, without reading it",
           True, 3 * 366),
    Family("audit log indexes", r"cf:\{audit\}:ix:(kind|org|adviser|call):.+",
           "which audit entries have a kind, an organisation, an adviser number or a CallSid "
           "(entry ids only)", True,
           "with their entries: the retention pass removes archived entries from them; "
           "each lapses 3 years after its last entry", "the auditor's filtered audit log",
           True, 3 * 366),
    Family("audit index names", r"cf:\{audit\}:facets",
           "the names of the kind, organisation and adviser indexes (an adviser's number)",
           True, "a name goes when the retention pass empties its index",
           "the retention pass finds the indexes to trim", False),
    Family("audit state", r"cf:\{audit\}:(seq|epoch|anchor)",
           "sequence numbers taken, the store's epoch, the archive anchor", False,
           "kept", "integrity of the audit log", False),
    Family("flow versions", r"cf:flow:.+", "flow texts", False, "kept",
           "a call keeps the version it started on; history and rollback", False),
    Family("verified calls", _doc("vstrs_calls"),
           "the verified adviser, the calling number, the agent, hand-offs", True,
           "30 days", "the agent's recent calls; call-back follow-up", True, 30),
    Family("call-backs", _doc("callbacks"),
           "the adviser (number, name, organisation), when they rang, each try's CallSid and "
           "result (never a phone number)", True,
           "30 days", "placing the call-back in turn; what became of it", True, 30),
    Family("hand-offs", _doc("handoffs"),
           "the customer's name and UTR or NINO, the adviser, the issue", True,
           "400 days", "assurance sampling of retained authorities", True, 400),
    Family("grants", _doc("grants"), "the customer, the team, when disclosure was allowed",
           True, "400 days", "assurance: when disclosure was authorised, and for how long",
           True, 400),
    Family("meetings", _doc("meetings"),
           "the customer's name and number, identity checks as keyed hashes", True,
           "while open at most a year; 90 days after it is settled "
           "(CALLFLOW_MEETING_RETENTION_DAYS)",
           "arranging the meeting; a question about the call afterwards", True),
    Family("assurance cases", _doc("assurance"), "a sampled hand-off and the evidence seen",
           True, "3 years", "HMRC's audit of the organisations' retained authorities", True,
           3 * 365),
    Family("console sessions", _doc("console_sessions"), "a signed-in member of staff",
           True, "12 h at most (30 min idle)", "signing in", True),
    Family("caller check counts", _doc("caller_checks"),
           "a calling number's checks on the officer line", True,
           "the rate-limit window (1 h)", "rate limiting", True),
    Family("staff",
           r"cf:\{(agents|teams|specialists|officers|accounts|tokens|presence"
           r"|specialist_presence)\}:doc:.+",
           "staff names, how they are reached, console accounts, API token hashes, who is "
           "available", True,
           "while they work here; removed with them (`callflow agents|specialists|officers|"
           "accounts remove`, `tokens revoke`)", "they take calls and sign in", False),
    Family("configuration", r"cf:\{(flow_releases|flow_tests|allowlists|flow_protection|ops)\}"
           r":doc:.+", "published flows, allow-lists, operational flags", False, "kept",
           "running the service", False),
    Family("document key sets", r"cf:\{[a-z_]+\}:keys", "the keys of a small family's "
           "documents (staff, configuration)", False,
           "entries of expired documents are dropped when met", "listing them", False),
    Family("record indexes",
           r"cf:\{(grants|handoffs|vstrs_calls|meetings|assurance|console_sessions|callbacks"
           r"|traces)\}:idx:.+",
           "which records a customer reference, team, agent, adviser, user or flow finds (in "
           "the key name)",
           True, "trimmed to the records' retention at each write; gone a retention period "
           "after the last", "questions answered without reading the whole history", True),
    Family("staff indexes", r"cf:\{(presence|specialist_presence|tokens)\}:idx:.+",
           "available agents' SEES IDs and specialists' staff numbers, token ids", False,
           "with the records they find",
           "ringing the longest-idle agent or specialist; revoking a token", False),
    Family("claims", r"cf:claim:.+", "which call or worker holds an agent, a ring, a meeting",
           False, "seconds to hours", "one agent per call, one worker per meeting call", True),
    Family("counters", r"cf:counter:.+", "hand-off and verification counts", False, "kept",
           "hand-offs are counted (they should stay rare)", False),
    Family("throttles", r"cf:\{thr:.+\}", "console usernames and client addresses in key names",
           True, "the throttle's window (15 min)", "sign-in throttling", True),
)  # fmt: skip


def family_of(key: str) -> Family | None:
    """The family a key belongs to, or None (a key no rule covers)."""
    return next((f for f in FAMILIES if f.matches(key)), None)


class Retention:
    """Applies the retention rules, and reports on them."""

    def __init__(self, service: Callflow) -> None:
        self.service = service

    # -- the pass

    def due(self) -> bool:
        """Whether the retention pass is due (at most hourly, across workers)."""
        svc = self.service
        last = svc.store.get_doc(*LAST_PASS)
        return last is None or svc.clock.now() - last["at"] >= PASS_SECONDS

    def apply(self, *, force: bool = False) -> dict[str, Any]:
        """Archive (pseudonymised) and trim audit entries past retention. Everything else
        expires by itself. Returns what was done."""
        svc = self.service
        if not force and not self.due():
            return {"ran": False}
        svc.store.put_doc(LAST_PASS[0], LAST_PASS[1], {"at": svc.clock.now()})
        folder = svc.settings.audit_archive_dir
        if folder is None:
            log.warning(
                "retention: CALLFLOW_AUDIT_ARCHIVE is not set, so audit entries past %s days "
                "stay in Redis (nothing is deleted that is not archived first)",
                svc.settings.audit_retention_days,
            )
            return {"ran": True, "archived": 0, "why": "no archive folder"}
        done = self.archive_audit(svc.settings.audit_retention_days, folder)
        return {"ran": True, **done}

    def archive_audit(
        self, days: int, folder: Path | None = None, path: Path | None = None
    ) -> dict[str, Any]:
        """Move audit entries older than ``days`` to an archive file (calling numbers and
        addresses as keyed pseudonyms: the archive still verifies) and trim them."""
        svc = self.service
        now = datetime.fromtimestamp(svc.clock.now(), UTC)
        cutoff = (now - timedelta(days=days)).isoformat()
        # The entries before the cutoff, and past it as far as needed for the archived
        # numbers to run unbroken from the anchor (concurrent writers land out of order).
        start = svc.store.audit_state().anchor_seq
        old: list[dict[str, Any]] = []
        numbers: set[int] = set()
        for entry in svc.audit.all_entries():
            contiguous = not numbers or max(numbers) - start == len(numbers)
            if str(entry.get("at", "")) >= cutoff and contiguous:
                break
            old.append(entry)
            numbers.add(int(entry.get("seq", 0)))
        if not old:
            return {"archived": 0}
        if path is None:
            assert folder is not None
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"audit-archive-{now.strftime('%Y-%m')}.jsonl"
        with path.open("a", encoding="utf-8") as archive:
            for entry in old:
                archive.write(json.dumps(pseudonymised(entry, svc.audit.key), sort_keys=True))
                archive.write("\n")
        through = max(numbers)
        removed = svc.store.trim_audit(old[-1]["id"], through)
        svc.audit.record(
            "audit.archived",
            entries=removed,
            through=through,
            file=path.name,
            by="retention",
            outcome="archived",
        )
        log.info("retention: archived %s audit entries to %s", removed, path)
        return {"archived": removed, "through": through, "file": str(path)}

    # -- the report

    def report(self) -> dict[str, Any]:
        """Each family: keys, the oldest, keys lacking their expiry; keys no rule covers."""
        svc = self.service
        client = getattr(svc.store, "client", None)
        if client is None:
            raise ValueError("the retention report reads Redis (REDIS_URL)")
        rows: dict[str, dict[str, Any]] = {
            f.name: {"family": f.name, "keys": 0, "no_expiry": [], "oldest_days": None}
            for f in FAMILIES
        }
        unclassified: list[str] = []
        keys = list(client.scan_iter(match="*", count=1000))
        for batch in (keys[i : i + 500] for i in range(0, len(keys), 500)):
            pipe = client.pipeline(transaction=False)
            for key in batch:
                pipe.ttl(key)
            for key, ttl in zip(batch, pipe.execute(), strict=True):
                family = family_of(key)
                if family is None:
                    unclassified.append(key)
                    continue
                row = rows[family.name]
                row["keys"] += 1
                if family.expires and ttl == -1:
                    row["no_expiry"].append(key)
                if family.days and ttl > 0:
                    age = family.days - ttl / DAY
                    row["oldest_days"] = max(row["oldest_days"] or 0.0, round(age, 1))
        audit_row = rows["audit log"]
        oldest = next(iter(svc.audit.all_entries()), None)
        if oldest is not None:
            when = datetime.fromisoformat(str(oldest["at"]))
            age = (datetime.fromtimestamp(svc.clock.now(), UTC) - when).total_seconds() / DAY
            audit_row["oldest_days"] = round(age, 1)
            audit_row["entries"] = sum(1 for _ in svc.audit.all_entries())
            if age > svc.settings.audit_retention_days:
                audit_row["overdue"] = True
        problems = [
            *(f"{key}: no expiry (family {row['family']})" for row in rows.values()
              for key in row["no_expiry"]),
            *(f"{key}: no retention rule covers it" for key in unclassified),
        ]  # fmt: skip
        if audit_row.get("overdue"):
            problems.append(
                f"the audit log holds entries older than {svc.settings.audit_retention_days} "
                "days: set CALLFLOW_AUDIT_ARCHIVE so the worker archives them"
            )
        return {"families": list(rows.values()), "unclassified": unclassified, "problems": problems}
