"""The auditor's desk: a period's figures and charts, the assurance cases, the CSV export.

The figures come from the daily tallies kept as audit entries are written (one small hash
per day of the period) and the assurance counts from the cases' indexes; the cases come a
page at a time; the CSV export streams the period's entries (a range of the stream).
Nothing lists the whole history, and the page does not read the period's entries either
(ARCHITECTURE.md rule 10).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from ..directory import ORGANISATIONS
from ..reports import audit_csv, bar_chart, figures, in_period

if TYPE_CHECKING:
    from ..service import Callflow


CASES_PER_PAGE = 50


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
        start = (max(cases_page, 1) - 1) * CASES_PER_PAGE
        cases = self.service.assurance.cases(org, offset=start, count=CASES_PER_PAGE + 1)
        return {
            "charts": charts(data, self.names()),
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
        bar_chart("Verifications per day, by outcome", _named(data["verifications"], OUTCOMES)),
        bar_chart("Lockouts per day", {d: {"lockouts": n} for d, n in data["lockouts"].items()}),
        bar_chart(
            "Hand-offs per week, by organisation", _named(data["handoffs_by_org_week"], names)
        ),
        bar_chart("Hand-offs per week, by team", _named(data["handoffs_by_team_week"], names)),
        bar_chart("Hand-off share of verified calls", share),
        bar_chart("Grant durations", durations, ordered=True),
        bar_chart(
            "Assurance results",
            assurance,
            ["passed", "failed", "outstanding"],
            ordered=True,
            colours=RESULT_COLOURS,
        ),
    ]
