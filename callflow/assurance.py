"""Retained-authority assurance: HMRC's periodic audit of the authorisations the voluntary
organisations keep from their customers.

``sample`` draws a reproducible random sample of an organisation's hand-offs in a period
(the same seed, period and organisation always give the same sample) and opens a case for
each. Auditors move a case ``requested`` -> ``evidence_seen`` or ``evidence_missing`` ->
``closed`` (passed or failed); every change is audited with who made it.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time
from typing import Any

from .context import Services, ServiceUser
from .directory import ORGANISATIONS
from .errors import AssuranceError

__all__ = ["NEXT_STATES", "Assurance",]

NEXT_STATES = {
    "requested": {"evidence_seen", "evidence_missing"},
    "evidence_seen": {"closed", "evidence_missing"},
    "evidence_missing": {"closed", "evidence_seen"},
    "closed": set(),
}
CASE_TTL = 3 * 365 * 24 * 3600


def _day(at: float) -> date:
    return datetime.fromtimestamp(at, UTC).date()


def case_index(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """A case's index entries, all scored by the hand-off's time: all; by organisation; by
    state; by both (so any page of cases is one exact index read); and, once closed, by
    organisation and outcome (so the report counts passes and failures, never reads them)."""
    at, org, state = doc["requested_at"], doc["organisation"], doc["state"]
    entries = [
        ("all", at),
        (f"org:{org}", at),
        (f"state:{state}", at),
        (f"org:{org}:state:{state}", at),
    ]
    if doc.get("outcome") in ("passed", "failed"):
        entries.append((f"org:{org}:outcome:{doc['outcome']}", at))
    return entries


def _case_index_name(org: str | None, state: str | None) -> str:
    if org and state:
        return f"org:{org}:state:{state}"
    return f"org:{org}" if org else f"state:{state}" if state else "all"


def _start(day: date | None) -> float | None:
    return None if day is None else datetime.combine(day, time.min, UTC).timestamp()


def _end(day: date | None) -> float | None:
    return None if day is None else datetime.combine(day, time.max, UTC).timestamp()


class Assurance(ServiceUser):
    """Samples and cases."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.store.define_index("assurance", case_index, keep_seconds=CASE_TTL)

    def handoffs(
        self, org: str | None, since: date | None, until: date | None
    ) -> list[dict[str, Any]]:
        """Hand-offs requested in the period (UTC days, inclusive), for one organisation or
        all: O(what the period holds), through the hand-offs' index."""
        return sorted(
            self.store.indexed(
                "handoffs",
                f"org:{org}" if org else "all",
                min_score=_start(since),
                max_score=_end(until),
            ),
            key=lambda h: h["id"],
        )

    def sample(
        self, org: str, since: date, until: date, size: int, seed: int, by: str
    ) -> list[dict[str, Any]]:
        """Draw and open cases for a reproducible random sample; returns the cases drawn."""
        if size < 1:
            raise AssuranceError("size: at least 1")
        if until < since:
            raise AssuranceError("the period ends before it starts")
        population = self.handoffs(org, since, until)
        drawn = random.Random(f"{seed}:{org}:{since}:{until}").sample(
            population, min(size, len(population))
        )
        cases = []
        now = self.now()
        for handoff in sorted(drawn, key=lambda h: h["id"]):
            case = {
                "id": handoff["id"],
                "handoff": handoff["id"],
                "call_sid": handoff["call_sid"],
                "organisation": handoff["organisation"],
                "requested_at": handoff["requested_at"],
                "authorisation": handoff.get("authorisation"),
                "customer_reference": handoff["customer"]["reference"],
                "state": "requested",
                "outcome": None,
                "sample": {
                    "seed": seed,
                    "from": since.isoformat(),
                    "to": until.isoformat(),
                    "size": size,
                },
                "history": [{"at": now, "state": "requested", "by": by, "note": "sampled"}],
            }
            if self.store.add_doc("assurance", case["id"], case, ttl_seconds=CASE_TTL):
                self._audit(
                    "assurance.sampled",
                    handoff["call_sid"],
                    case=case["id"],
                    organisation=org,
                    seed=seed,
                    by=by,
                    outcome="requested",
                )
            cases.append(self.store.get_doc("assurance", case["id"]) or case)
        return cases

    def update(self, case_id: str, state: str, by: str, note: str = "") -> dict[str, Any]:
        """Move a case on (evidence seen or missing, then closed), audited."""
        current = self.store.get_doc("assurance", case_id)
        if current is None:
            raise AssuranceError(f"no assurance case {case_id}")
        if state not in NEXT_STATES.get(current["state"], set()):
            allowed = ", ".join(sorted(NEXT_STATES[current["state"]])) or "nothing: it is closed"
            raise AssuranceError(f"a {current['state']} case can move to {allowed}, not {state}")
        now = self.now()

        def move(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None or doc["state"] != current["state"]:
                return None
            outcome = doc["outcome"]
            if state == "closed":
                outcome = "passed" if doc["state"] == "evidence_seen" else "failed"
            entry = {"at": now, "state": state, "by": by, "note": note[:500]}
            return {**doc, "state": state, "outcome": outcome, "history": [*doc["history"], entry]}

        updated = self.store.update_doc("assurance", case_id, move, ttl_seconds=CASE_TTL)
        if updated is None or updated["state"] != state:
            raise AssuranceError("the case changed meanwhile; look again")
        self._audit(
            "assurance.updated",
            updated["call_sid"],
            case=case_id,
            organisation=updated["organisation"],
            by=by,
            outcome=state if state != "closed" else f"closed_{updated['outcome']}",
        )
        return updated

    def cases(
        self,
        org: str | None = None,
        state: str | None = None,
        *,
        since: date | None = None,
        until: date | None = None,
        offset: int = 0,
        count: int | None = None,
    ) -> list[dict[str, Any]]:
        """Cases (of hand-offs requested in the period, if given), oldest hand-off first,
        a page at a time: one exact index read, O(the page)."""
        return self.store.indexed(
            "assurance",
            _case_index_name(org, state),
            min_score=_start(since),
            max_score=_end(until),
            offset=offset,
            count=count,
        )

    def report(
        self, org: str | None, since: date | None, until: date | None
    ) -> list[dict[str, Any]]:
        """Per organisation: hand-offs, sampled, passed, failed, outstanding, for hand-offs
        requested in the period. Counted from the indexes (one round trip, O(log n) each),
        never by reading the period's hand-offs or cases."""

        low, high = _start(since), _end(until)
        orgs = [org] if org else list(ORGANISATIONS)
        counted = [
            (namespace, f"org:{org_id}{suffix}")
            for org_id in orgs
            for namespace, suffix in (
                ("handoffs", ""),
                ("assurance", ""),
                ("assurance", ":outcome:passed"),
                ("assurance", ":outcome:failed"),
            )
        ]
        sizes = iter(self.store.index_sizes(counted, min_score=low, max_score=high))
        rows = []
        for org_id in orgs:
            handoffs, sampled, passed, failed = (next(sizes) for _ in range(4))
            rows.append(
                {
                    "organisation": org_id,
                    "organisation_name": ORGANISATIONS[org_id].name
                    if org_id in ORGANISATIONS
                    else org_id,
                    "handoffs": handoffs,
                    "sampled": sampled,
                    "passed": passed,
                    "failed": failed,
                    "outstanding": sampled - passed - failed,
                }
            )
        return rows
