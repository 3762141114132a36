"""The auditor's desk: a period's figures and charts, the assurance cases, the CSV export.

The figures come from the daily tallies kept as audit entries are written (one small hash
per day of the period) and the assurance counts from the cases' indexes; the cases come a
page at a time; the CSV export streams the period's entries (a range of the stream).
Nothing lists the whole history, and the page does not read the period's entries either
(ARCHITECTURE.md rule 10).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from ..access import Viewer, require
from ..audit import facets_of, outcome_text, verify_now
from ..directory import ORGANISATIONS
from ..reports import audit_csv, bar_chart, figures, in_period

if TYPE_CHECKING:
    from ..service import Callflow


CASES_PER_PAGE = 50
#: The audit log's page, and how many entries of its most selective filter one page may
#: look through for the others (more: the page says so, and a narrower period helps).
LOG_PAGE = 50
SCAN_LIMIT = 2000
#: Who works the audit log (and an admin).
AUDITORS = ("auditor", "admin")
#: Entry fields the log shows in columns of their own (the rest are its details).
LOG_COLUMNS = ("id", "at", "kind", "outcome", "organisation", "adviser", "call_sid", "by",
               "seq", "hash")  # fmt: skip
CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")


def call_sid(text: str) -> str | None:
    """A CallSid as typed (any case, spaces around it) as Twilio writes it; None if it is
    not one."""
    text = (text or "").strip()
    if len(text) == 34 and text[:2].upper() == "CA":
        text = "CA" + text[2:].lower()
    return text if CALL_SID.match(text) else None


@dataclass(frozen=True)
class LogQuery:
    """What the auditor asked the log for: a period (UTC days) and filters, and which
    page (``before``: older than that entry; ``after``: newer)."""

    since: date
    until: date
    kind: str = ""
    org: str = ""
    adviser: str = ""
    call: str = ""
    before: str = ""
    after: str = ""

    def facets(self) -> list[str]:
        """The filters as the log's indexes name them, most selective first."""
        pairs = (("call", self.call), ("adviser", self.adviser), ("org", self.org),
                 ("kind", self.kind))  # fmt: skip
        return [f"{name}:{value}" for name, value in pairs if value]


def _bounds(since: date, until: date) -> tuple[float, float]:
    start = datetime.combine(since, time.min, UTC).timestamp()
    end = datetime.combine(until, time.max, UTC).timestamp()
    return start, end


class AuditorDesk:
    """What an auditor (or an admin) sees of a period, for one organisation or all."""

    def __init__(self, service: Callflow) -> None:
        self.service = service

    def entries(self, since: date, until: date, org: str | None) -> Iterator[dict[str, Any]]:
        """The period's audit entries (UTC days, inclusive), for one organisation or all."""
        start, end = _bounds(since, until)
        for entry in self.service.audit.between(start, end):
            if in_period(entry, since, until, org):
                yield entry

    def figures(self, since: date, until: date, org: str | None) -> dict[str, Any]:
        """Verifications, lockouts, hand-offs, grant durations and assurance results: read
        from the period's daily tallies and counted from the cases' indexes, so a year's
        page costs what a day's does, whatever the period held."""
        days = [(since + timedelta(days=n)).isoformat() for n in range((until - since).days + 1)]
        tallies = self.service.store.audit_tallies(days) if days else {}
        return figures(tallies, org, self.service.assurance.report(org, since, until))

    def page(
        self, since: date, until: date, org: str | None, cases_page: int = 1
    ) -> dict[str, Any]:
        """The auditor's page: the charts of the period, the assurance rows, and a page of
        the cases (they can run to years: ``CASES_PER_PAGE`` at a time)."""
        data = self.figures(since, until, org)
        threshold = self.service.settings.handoff_share_alert
        over = {
            self.names().get(o, o): share
            for o, share in data["handoff_share"].items()
            if share > threshold
        }
        start = (max(cases_page, 1) - 1) * CASES_PER_PAGE
        cases = self.service.assurance.cases(org, offset=start, count=CASES_PER_PAGE + 1)
        needs = self.service.handoffs.needs
        names = {**self.names(), **{n["id"]: n["label"] for n in needs.all()}}
        return {
            "charts": charts(data, names),
            "share_threshold": threshold,
            "share_over": over,
            "assurance": data["assurance"],
            "cases": cases[:CASES_PER_PAGE],
            "cases_page": max(cases_page, 1),
            "more_cases": len(cases) > CASES_PER_PAGE,
        }

    def names(self) -> dict[str, str]:
        """What the charts call organisations and teams: their names, not their ids."""
        names = {org_id: org.name for org_id, org in ORGANISATIONS.items()}
        names.update({team.id: team.name for team in self.service.staff.teams()})
        names["None"] = "(none)"
        return names

    def csv(self, since: date, until: date, org: str | None) -> str:
        """The period's audit entries as CSV."""
        return audit_csv(self.entries(since, until, org))

    # ------------------------------------------------------------ the log

    def log_choices(self, viewer: Viewer) -> dict[str, Any]:
        """What the log's filters offer: the kinds written so far, the organisations."""
        require(viewer, AUDITORS, "the audit log")
        kinds = self.service.store.audit_facet_values("kind")
        return {
            "kinds": kinds,
            "kind_options": [(k, k) for k in kinds],
            "organisations": [(o.id, o.name) for o in ORGANISATIONS.values()],
        }

    def log(self, viewer: Viewer, query: LogQuery) -> dict[str, Any]:
        """A page of the audit log, newest first, filtered by period, kind, organisation,
        adviser and call: read from the filters' indexes (the most selective one, the
        others checked on its entries), never by scanning the log."""
        require(viewer, AUDITORS, "the audit log")
        store = self.service.store
        start, end = _bounds(query.since, query.until)
        facets = query.facets()
        sizes = {f: store.audit_facet_size(f, start, end) for f in facets}
        primary = min(facets, key=lambda f: sizes[f]) if facets else None
        others = [f for f in facets if f != primary]

        def wanted(entry: dict[str, Any]) -> bool:
            return not others or set(others) <= set(facets_of(entry))

        found: list[dict[str, Any]] = []
        scanned, partial = 0, False
        newer = bool(query.after)
        cursor = query.after or query.before or None
        while len(found) <= LOG_PAGE:
            batch = store.audit_page(
                primary,
                start,
                end,
                before=None if newer else cursor,
                after=cursor if newer else None,
                count=min(LOG_PAGE + 1 if not others else 200, SCAN_LIMIT),
            )
            if not batch:
                break
            ordered = list(reversed(batch)) if newer else batch  # nearest the cursor first
            for entry in ordered:
                if wanted(entry):
                    found.append(entry)
                    if len(found) > LOG_PAGE:
                        break
            scanned += len(batch)
            cursor = (batch[0] if newer else batch[-1])["id"]
            if scanned >= SCAN_LIMIT and len(found) <= LOG_PAGE:
                partial = True
                break
        more = len(found) > LOG_PAGE
        page = found[:LOG_PAGE]
        if newer and not more:
            # Back at the newest entries: that is the first page, whole.
            return self.log(viewer, LogQuery(**{**query.__dict__, "before": "", "after": ""}))
        if newer:
            page.reverse()
        return {
            "entries": [self._row(e) for e in page],
            # Links to the pages either side (an entry id: newer than it, older than it).
            "newer": page[0]["id"] if page and (newer or query.before) else "",
            "older": page[-1]["id"] if page and (more or newer) else "",
            "total": sizes[primary] if primary is not None and not others else None,
            "partial": partial,
        }

    @staticmethod
    def _row(entry: dict[str, Any]) -> dict[str, Any]:
        at = datetime.fromisoformat(str(entry.get("at")))
        org = entry.get("organisation")
        details = {k: v for k, v in entry.items() if k not in LOG_COLUMNS and v not in (None, "")}
        return {
            "id": entry["id"],
            "when": at.astimezone(UTC).strftime("%-d %b %Y %H:%M:%S"),
            "kind": entry.get("kind", ""),
            "outcome": outcome_text(str(entry.get("outcome") or "")),
            "organisation": ORGANISATIONS[org].name if org in ORGANISATIONS else "",
            "adviser": entry.get("adviser") or "",
            "call_sid": entry.get("call_sid") or "",
            "by": entry.get("by") or "",
            "seq": entry.get("seq"),
            "details": ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(details.items())),
        }

    def verify(self, viewer: Viewer) -> dict[str, Any]:
        """Check the whole chain now, as ``callflow audit verify`` does (audited)."""
        who = require(viewer, AUDITORS, "verifying the audit log")
        svc = self.service
        report = verify_now(svc.audit, svc.checkpoints)
        svc.audit.record(
            "audit.verified",
            by=who,
            entries=report["count"],
            outcome="ok" if report["ok"] else "broken",
        )
        return report

    def sample(
        self, viewer: Viewer, org: str, since: date, until: date, size: int, seed: int
    ) -> list[dict[str, Any]]:
        """Draw an assurance sample, as ``callflow assurance sample`` does."""
        who = require(viewer, AUDITORS, "drawing assurance samples")
        return self.service.assurance.sample(org, since, until, size, seed, who)

    def update_case(self, viewer: Viewer, case_id: str, state: str, note: str) -> dict[str, Any]:
        """Record what was found for an assurance case."""
        who = require(viewer, AUDITORS, "recording assurance outcomes")
        return self.service.assurance.update(case_id, state, who, note)


#: Series whose colour means something: passed green, failed red, outstanding grey.
RESULT_COLOURS = {"passed": "#00703c", "failed": "#d4351c", "outstanding": "#505a5f"}
#: Verification outcomes in words.
OUTCOMES = {"verified": "verified", "failed": "failed", "locked": "locked out"}


def _named(rows: dict[str, dict[str, Any]], names: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        key: {names.get(series, series.replace("_", " ")): n for series, n in values.items()}
        for key, values in rows.items()
    }


def charts(data: dict[str, Any], names: dict[str, str] | None = None) -> list[Any]:
    """The auditor's charts, drawn as SVG on the server with their figures beside them;
    organisations and teams by name."""
    names = names or {}
    share = {
        names.get(org, org): {"hand-offs per verified call": value}
        for org, value in data["handoff_share"].items()
    }
    durations = {k: {"grants": v} for k, v in data["grant_durations"].items()}
    assurance = {
        row["organisation_name"]: {
            "passed": row["passed"],
            "failed": row["failed"],
            "outstanding": row["outstanding"],
        }
        for row in data["assurance"]
    }
    return [
        bar_chart(
            "Verifications per day, by outcome",
            _named(data["verifications"], OUTCOMES),
            x_title="Day (UTC)",
            y_title="Verifications",
        ),
        bar_chart(
            "Lockouts per day",
            {d: {"lockouts": n} for d, n in data["lockouts"].items()},
            x_title="Day (UTC)",
            y_title="Lockouts",
        ),
        bar_chart(
            "Hand-offs per week, by organisation",
            _named(data["handoffs_by_org_week"], names),
            x_title="Week beginning",
            y_title="Hand-offs",
            weekly=True,
        ),
        bar_chart(
            "Hand-offs per week, by team",
            _named(data["handoffs_by_team_week"], names),
            x_title="Week beginning",
            y_title="Hand-offs",
            weekly=True,
        ),
        bar_chart(
            "Hand-off share of verified calls",
            share,
            x_title="Organisation",
            y_title="Hand-offs per verified call",
        ),
        bar_chart(
            "Hand-offs by why a specialist was needed",
            {
                names.get(need, need): {"hand-offs": n}
                for need, n in data.get("handoffs_by_need", {}).items()
            },
            ordered=True,
            x_title="Why",
            y_title="Hand-offs",
        ),
        bar_chart(
            "Grant durations",
            durations,
            ordered=True,
            x_title="How long the grant lasted",
            y_title="Grants",
        ),
        bar_chart(
            "Assurance results",
            assurance,
            ["passed", "failed", "outstanding"],
            ordered=True,
            colours=RESULT_COLOURS,
            x_title="Organisation",
            y_title="Cases",
        ),
    ]
