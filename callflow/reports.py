"""Reports for auditors: figures from the audit log and the records, and charts as SVG.

Charts are drawn here, server-side, as plain SVG (no script, no external library), each
with a title, a text description and the same figures as a table beside it.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any

from .tallies import DURATION_BUCKETS

__all__ = [
    "AUDIT_CSV_COLUMNS",
    "Chart",
    "audit_csv",
    "bar_chart",
    "figures",
    "in_period",
]

AUDIT_CSV_COLUMNS = [
    "id",
    "at",
    "kind",
    "call_sid",
    "outcome",
    "organisation",
    "adviser",
    "agent",
    "team",
    "handoff",
    "grant",
    "by",
    "details",
    "seq",
    "hash",
]
PALETTE = ["#1d70b8", "#d4351c", "#00703c", "#f47738", "#4c2c92", "#505a5f", "#b58840"]


def in_period(
    entry: dict[str, Any], since: date | None, until: date | None, org: str | None = None
) -> bool:
    """Whether an audit entry falls in the period (UTC days, inclusive) and organisation."""
    day = str(entry.get("at", ""))[:10]
    if since and day < since.isoformat():
        return False
    if until and day > until.isoformat():
        return False
    return org is None or entry.get("organisation") == org


def audit_csv(entries: Iterable[dict[str, Any]]) -> str:
    """Audit entries as CSV (fields beyond the columns go, as JSON, in ``details``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=AUDIT_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in entries:
        details = {k: v for k, v in row.items() if k not in AUDIT_CSV_COLUMNS}
        writer.writerow(
            {
                **{c: row.get(c, "") for c in AUDIT_CSV_COLUMNS if c != "details"},
                "details": json.dumps(details, sort_keys=True) if details else "",
            }
        )
    return out.getvalue()


def _week(day: str) -> str:
    start = date.fromisoformat(day)
    return (start - timedelta(days=start.weekday())).isoformat()


def figures(
    tallies: dict[str, dict[str, int]], org: str | None, assurance: list[dict[str, Any]]
) -> dict[str, Any]:
    """Everything the auditor's page shows, from the period's daily tallies (day ->
    field -> count; see callflow.tallies), for one organisation or all."""
    verifications: dict[str, Counter[str]] = defaultdict(Counter)
    lockouts: Counter[str] = Counter()
    by_org_week: dict[str, Counter[str]] = defaultdict(Counter)
    by_team_week: dict[str, Counter[str]] = defaultdict(Counter)
    verified_by_org: Counter[str] = Counter()
    handoffs_by_org: Counter[str] = Counter()
    durations: Counter[str] = Counter()
    for day, counts in tallies.items():
        for field, n in counts.items():
            what, field_org, detail = ([*field.split("|", 2), "", ""])[:3]
            if org is not None and field_org != org:
                continue
            if what == "v":
                verifications[day][detail] += n
                if detail == "verified":
                    verified_by_org[field_org or "None"] += n
            elif what == "lock":
                lockouts[day] += n
            elif what == "ho":
                week = _week(day)
                by_org_week[week][field_org or "None"] += n
                by_team_week[week][detail or "None"] += n
                handoffs_by_org[field_org or "None"] += n
            elif what == "gd":
                durations[detail] += n
    share = {
        name: round(handoffs_by_org[name] / count, 3)
        for name, count in sorted(verified_by_org.items())
        if count
    }
    return {
        "verifications": {day: dict(v) for day, v in sorted(verifications.items())},
        "lockouts": dict(sorted(lockouts.items())),
        "handoffs_by_org_week": {w: dict(c) for w, c in sorted(by_org_week.items())},
        "handoffs_by_team_week": {w: dict(c) for w, c in sorted(by_team_week.items())},
        "handoff_share": share,
        "grant_durations": {k: durations[k] for k in DURATION_BUCKETS},
        "assurance": assurance,
    }


class Chart:
    """A grouped bar chart: categories along the bottom, one bar per series."""

    def __init__(
        self,
        title: str,
        categories: list[str],
        series: dict[str, list[float]],
        colours: dict[str, str] | None = None,
    ) -> None:
        self.title = title
        self.categories = categories
        self.series = series
        self.colours = colours or {}

    def colour(self, index: int, name: str) -> str:
        """A series' colour: its own where it means something (passed green, failed red),
        else the palette's."""
        return self.colours.get(name, PALETTE[index % len(PALETTE)])

    def svg(self, width: int = 640, height: int = 260) -> str:
        """The chart as an SVG element (accessible: role img, title, description)."""
        left, bottom, top, right = 40, 40, 30, 10
        plot_w, plot_h = width - left - right, height - top - bottom
        peak = max([v for values in self.series.values() for v in values] or [0]) or 1
        groups = max(len(self.categories), 1)
        group_w = plot_w / groups
        bar_w = max(group_w / (len(self.series) + 1), 2)
        described = (
            "; ".join(
                f"{cat}: "
                + ", ".join(f"{name} {values[i]:g}" for name, values in self.series.items())
                for i, cat in enumerate(self.categories)
            )
            or "no data in this period"
        )
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" aria-label="{escape(self.title)}">',
            f"<title>{escape(self.title)}</title><desc>{escape(described)}</desc>",
            f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" '
            f'y2="{top + plot_h}" stroke="#0b0c0c"/>',
            f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" font-size="11">{peak:g}</text>',
            f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" font-size="11">0</text>',
        ]
        for i, category in enumerate(self.categories):
            x0 = left + i * group_w + bar_w / 2
            for j, (name, values) in enumerate(self.series.items()):
                value = values[i]
                bar_h = plot_h * value / peak
                colour = self.colour(j, name)
                tip = f"{escape(name)}, {escape(category)}: {value:g}"
                parts.append(
                    f'<rect x="{x0 + j * bar_w:.1f}" y="{top + plot_h - bar_h:.1f}" '
                    f'width="{bar_w * 0.9:.1f}" height="{bar_h:.1f}" fill="{colour}">'
                    f"<title>{tip}</title></rect>"
                )
            label = category[-5:] if len(category) == 10 else category  # a day: just MM-DD
            parts.append(
                f'<text x="{left + i * group_w + group_w / 2:.1f}" y="{top + plot_h + 16}" '
                f'text-anchor="middle" font-size="11">{escape(label)}</text>'
            )
        for j, name in enumerate(self.series):
            colour = self.colour(j, name)
            parts.append(
                f'<rect x="{left + j * 140}" y="6" width="12" height="12" fill="{colour}"/>'
                f'<text x="{left + j * 140 + 16}" y="16" font-size="12">{escape(name)}</text>'
            )
        parts.append("</svg>")
        return "".join(parts)

    def table(self) -> list[list[str]]:
        """The same figures as rows: category then each series."""
        return [
            [category, *(f"{values[i]:g}" for values in self.series.values())]
            for i, category in enumerate(self.categories)
        ]


def bar_chart(
    title: str,
    data: dict[str, dict[str, float]],
    series: list[str] | None = None,
    ordered: bool = False,
    colours: dict[str, str] | None = None,
) -> Chart:
    """A chart from {category: {series: value}} (categories sorted unless ``ordered``)."""
    categories = list(data) if ordered else sorted(data)
    names = series or sorted({name for values in data.values() for name in values})
    return Chart(
        title,
        categories,
        {name: [data[c].get(name, 0) for c in categories] for name in names},
        colours,
    )


def today_utc(now: float) -> date:
    """The UTC day of a timestamp."""
    return datetime.fromtimestamp(now, UTC).date()
