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
from .errors import CallflowError

__all__ = ["NEXT_STATES", "Assurance", "AssuranceError"]

NEXT_STATES = {
    "requested": {"evidence_seen", "evidence_missing"},
    "evidence_seen": {"closed", "evidence_missing"},
    "evidence_missing": {"closed", "evidence_seen"},
    "closed": set(),
}
CASE_TTL = 3 * 365 * 24 * 3600


class AssuranceError(CallflowError):
    """An assurance request that cannot be carried out."""


def _day(at: float) -> date:
    return datetime.fromtimestamp(at, UTC).date()


def case_index(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """A case's index entries: by organisation, by state, and all (by the hand-off's time)."""
    at = doc["requested_at"]
    return [(f"org:{doc['organisation']}", at), (f"state:{doc['state']}", at), ("all", at)]


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
        a page at a time: read through the cases' index."""
        index = f"org:{org}" if org else f"state:{state}" if state else "all"
        found = self.store.indexed(
            "assurance", index, min_score=_start(since), max_score=_end(until)
        )
        chosen = [
            c
            for c in found
            if (org is None or c["organisation"] == org) and (state is None or c["state"] == state)
        ]
        end = None if count is None else offset + count
        return chosen[offset:end]

    def report(
        self, org: str | None, since: date | None, until: date | None
    ) -> list[dict[str, Any]]:
        """Per organisation: hand-offs, sampled, passed, failed, outstanding."""
        from .directory import ORGANISATIONS

        rows = []
        for org_id in [org] if org else list(ORGANISATIONS):
            handoffs = {h["id"] for h in self.handoffs(org_id, since, until)}
            cases = [
                c
                for c in self.cases(org_id, since=since, until=until)
                if c["handoff"] in handoffs
            ]
            rows.append(
                {
                    "organisation": org_id,
                    "organisation_name": ORGANISATIONS[org_id].name
                    if org_id in ORGANISATIONS
                    else org_id,
                    "handoffs": len(handoffs),
                    "sampled": len(cases),
                    "passed": sum(1 for c in cases if c["outcome"] == "passed"),
                    "failed": sum(1 for c in cases if c["outcome"] == "failed"),
                    "outstanding": sum(1 for c in cases if c["state"] != "closed"),
                }
            )
        return rows
