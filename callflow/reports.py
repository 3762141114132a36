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
    by_need: Counter[str] = Counter()
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
            elif what == "hn":
                by_need[detail] += n
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
        "handoffs_by_need": dict(by_need.most_common()),
        "assurance": assurance,
    }


def category_label(category: str, week: bool = False) -> str:
    """A chart's category as people read it: a day ``2026-12-06`` is ``6 Dec`` (a week's
    first day ``w/b 30 Nov``); anything else as it is."""
    try:
        day = date.fromisoformat(category)
    except ValueError:
        return category
    text = f"{day.day} {day:%b}"
    return f"w/b {text}" if week else text


def _nice_step(peak: float) -> float:
    """A round step for the value axis: about four to six gridlines up to ``peak``."""
    import math

    if peak <= 0:
        return 1
    raw = peak / 5
    magnitude = float(10 ** math.floor(math.log10(raw)))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = factor * magnitude
        if step >= raw:
            return step if peak < 1 else max(step, 1.0)  # counts: whole-number gridlines
    return 10 * magnitude


class Chart:
    """A grouped bar chart: categories along the bottom, one bar per series, titled axes
    with round gridlines, and a legend that wraps rather than overlaps."""

    def __init__(
        self,
        title: str,
        categories: list[str],
        series: dict[str, list[float]],
        colours: dict[str, str] | None = None,
        x_title: str = "",
        y_title: str = "",
        weekly: bool = False,
    ) -> None:
        self.title = title
        self.categories = categories
        self.series = series
        self.colours = colours or {}
        self.x_title = x_title
        self.y_title = y_title
        self.weekly = weekly

    def colour(self, index: int, name: str) -> str:
        """A series' colour: its own where it means something (passed green, failed red),
        else the palette's."""
        return self.colours.get(name, PALETTE[index % len(PALETTE)])

    def label(self, category: str) -> str:
        """How a category reads under its bars and in the table."""
        return category_label(category, self.weekly)

    def _legend(self, width: int, left: int) -> tuple[list[str], int]:
        """The legend's SVG, wrapped onto as many rows as it needs, and its height."""
        parts, x, row = [], left, 0
        for j, name in enumerate(self.series):
            item = 16 + int(len(name) * 7.2) + 18  # the swatch, the text (12px), a gap
            if x + item > width and x > left:
                x, row = left, row + 1
            y = 6 + row * 20
            parts.append(
                f'<rect x="{x}" y="{y}" width="12" height="12" fill="{self.colour(j, name)}"/>'
                f'<text x="{x + 16}" y="{y + 11}" font-size="12">{escape(name)}</text>'
            )
            x += item
        return parts, (row + 1) * 20 + 10 if self.series else 0

    def svg(self, width: int = 640, height: int = 300) -> str:
        """The chart as an SVG element (accessible: role img, title, description)."""
        legend, legend_h = self._legend(width - 10, 56)
        left, right = 56, 10
        top, bottom = legend_h + 10, 52
        plot_w, plot_h = width - left - right, height - top - bottom
        peak = max([v for values in self.series.values() for v in values] or [0])
        step = _nice_step(peak)
        ceiling = step * max(1, -(-peak // step)) if peak else step * 4
        groups = max(len(self.categories), 1)
        group_w = plot_w / groups
        bar_w = max(group_w / (len(self.series) + 1), 2)
        described = (
            "; ".join(
                f"{self.label(cat)}: "
                + ", ".join(f"{name} {values[i]:g}" for name, values in self.series.items())
                for i, cat in enumerate(self.categories)
            )
            or "no data in this period"
        )
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" aria-label="{escape(self.title)}" '
            'font-family="arial, sans-serif">',
            f"<title>{escape(self.title)}</title><desc>{escape(described)}</desc>",
            *legend,
        ]
        # Round gridlines, each labelled.
        ticks = round(ceiling / step)
        for t in range(ticks + 1):
            value = t * step
            y = top + plot_h - plot_h * value / ceiling
            parts.append(
                f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                f'stroke="{"#0b0c0c" if t == 0 else "#b1b4b6"}" stroke-width="1"/>'
                f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12">'
                f"{value:g}</text>"
            )
        # Category labels: every one that fits (about 6 characters each, 12px).
        every = max(1, -(-groups * 56 // plot_w))
        for i, category in enumerate(self.categories):
            x0 = left + i * group_w + bar_w / 2
            for j, (name, values) in enumerate(self.series.items()):
                value = values[i]
                bar_h = plot_h * value / ceiling if ceiling else 0
                tip = f"{escape(name)}, {escape(self.label(category))}: {value:g}"
                parts.append(
                    f'<rect x="{x0 + j * bar_w:.1f}" y="{top + plot_h - bar_h:.1f}" '
                    f'width="{bar_w * 0.9:.1f}" height="{bar_h:.1f}" '
                    f'fill="{self.colour(j, name)}"><title>{tip}</title></rect>'
                )
            if i % every == 0:
                text = self.label(category)
                room = int(group_w * every / 6.6)
                short = text if len(text) <= room else text[: max(3, room - 1)] + "…"
                parts.append(
                    f'<text x="{left + i * group_w + group_w / 2:.1f}" y="{top + plot_h + 16}" '
                    f'text-anchor="middle" font-size="12">{escape(short)}'
                    f"<title>{escape(text)}</title></text>"
                )
        if self.x_title:
            parts.append(
                f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                f'font-size="12" font-weight="bold">{escape(self.x_title)}</text>'
            )
        if self.y_title:
            middle = top + plot_h / 2
            parts.append(
                f'<text x="14" y="{middle:.1f}" text-anchor="middle" font-size="12" '
                f'font-weight="bold" transform="rotate(-90 14 {middle:.1f})">'
                f"{escape(self.y_title)}</text>"
            )
        parts.append("</svg>")
        return "".join(parts)

    def table(self) -> list[list[str]]:
        """The same figures as rows: category then each series."""
        return [
            [self.label(category), *(f"{values[i]:g}" for values in self.series.values())]
            for i, category in enumerate(self.categories)
        ]


def bar_chart(
    title: str,
    data: dict[str, dict[str, float]],
    series: list[str] | None = None,
    ordered: bool = False,
    colours: dict[str, str] | None = None,
    *,
    x_title: str = "",
    y_title: str = "",
    weekly: bool = False,
) -> Chart:
    """A chart from {category: {series: value}} (categories sorted unless ``ordered``)."""
    categories = list(data) if ordered else sorted(data)
    names = series or sorted({name for values in data.values() for name in values})
    return Chart(
        title,
        categories,
        {name: [data[c].get(name, 0) for c in categories] for name in names},
        colours,
        x_title=x_title,
        y_title=y_title,
        weekly=weekly,
    )


def today_utc(now: float) -> date:
    """The UTC day of a timestamp."""
    return datetime.fromtimestamp(now, UTC).date()
