"""Opening hours: weekly time ranges, UK bank holidays per nation, dated closures and
extra openings. All times are UK local time (Europe/London), so the clock changes in
March and October move nothing: 09:00 is 09:00 whatever the offset.

    Mon-Fri 08:30-12:30,13:30-17:00; Sat 09:00-12:00

is the weekly part: day ranges (``Mon-Fri``, ``Sat``, ``Fri-Mon``) each with one or more
time ranges, separated by ``;``. A team or the VSTRS line also names the nation whose
bank holidays close it (``england-and-wales``, ``scotland``, ``northern-ireland``; the
``holidays`` package knows them) and keeps exceptions: a closed stretch (``2026-12-24
12:00`` to ``2026-12-24 23:59``, "staff training") or an extra opening on a date
(``2026-12-27`` ``10:00-14:00``, "year-end"). An extra opening wins over a bank holiday.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from .errors import DirectoryError

__all__ = ["DAYS", "NATIONS", "Calendar", "parse_week"]

LONDON = ZoneInfo("Europe/London")
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
#: Each nation's subdivision in the ``holidays`` package.
NATIONS = {
    "england-and-wales": "ENG",
    "scotland": "SCT",
    "northern-ireland": "NIR",
    "none": "",  # no bank holidays close it (a line open every day of the year)
}
_RANGE = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")
_DAY_PART = re.compile(r"^([A-Za-z]{3})(?:-([A-Za-z]{3}))?\s+(.+)$")

Week = dict[str, list[tuple[int, int]]]


def _minutes(text: str) -> tuple[int, int]:
    match = _RANGE.match(text.strip())
    if not match:
        raise DirectoryError(f"hours: {text.strip()!r} is not a time range like 08:30-17:00")
    start = int(match.group(1)) * 60 + int(match.group(2))
    end = int(match.group(3)) * 60 + int(match.group(4))
    if not 0 <= start < end <= 24 * 60:
        raise DirectoryError("hours: the end must come after the start, within one day")
    return start, end


@lru_cache(maxsize=256)
def parse_week(text: str) -> Week:
    """``Mon-Fri 08:30-12:30,13:30-17:00; Sat 09:00-12:00`` as {day: [(start, end)]}.

    Cached (a calendar is judged at the start of every call): callers only read it."""
    week: Week = {day: [] for day in DAYS}
    parts = [p.strip() for p in (text or "").split(";") if p.strip()]
    if not parts:
        raise DirectoryError("hours: like 'Mon-Fri 08:30-17:00' (several: '; Sat 09:00-12:00')")
    for part in parts:
        match = _DAY_PART.match(part)
        if not match:
            raise DirectoryError(f"hours: {part!r} is not like 'Mon-Fri 08:30-17:00'")
        first, last = match.group(1).lower(), (match.group(2) or match.group(1)).lower()
        if first not in DAYS or last not in DAYS:
            raise DirectoryError("hours: days are Mon, Tue, Wed, Thu, Fri, Sat, Sun")
        i, j = DAYS.index(first), DAYS.index(last)
        days = DAYS[i : j + 1] if i <= j else DAYS[i:] + DAYS[: j + 1]
        ranges = [_minutes(r) for r in match.group(3).split(",")]
        for day in days:
            week[day] = sorted(week[day] + ranges)
    return week


def _clock(minute: int) -> str:
    return "midnight" if minute == 24 * 60 else f"{minute // 60:02d}:{minute % 60:02d}"


@lru_cache(maxsize=64)
def _bank_holidays(nation: str, year: int) -> dict[date, str]:
    subdiv = NATIONS.get(nation)
    if not subdiv:
        return {}
    return dict(holidays.country_holidays("GB", subdiv=subdiv, years=year).items())


@dataclass(frozen=True)
class Calendar:
    """When a line or a team is open, and why not when it is not."""

    week: str
    nation: str = "england-and-wales"
    #: Dated exceptions: {"closed_from": ISO, "closed_to": ISO, "reason": ...} or
    #: {"open_on": DATE, "hours": "10:00-14:00", "reason": ...}.
    exceptions: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        parse_week(self.week)  # refuse bad hours when the calendar is made
        if self.nation not in NATIONS:
            raise DirectoryError(f"nation: one of {', '.join(NATIONS)}")

    @property
    def weekly(self) -> Week:
        return parse_week(self.week)

    def status(self, at: datetime) -> tuple[bool, str]:
        """Open or not at ``at`` (any timezone; judged in UK time), and why in words."""
        local = at.astimezone(LONDON)
        naive = local.replace(tzinfo=None)
        for exception in self.exceptions:
            if "closed_from" in exception:
                start = datetime.fromisoformat(exception["closed_from"])
                end = datetime.fromisoformat(exception["closed_to"])
                if start <= naive < end:
                    reason = exception.get("reason") or "closed"
                    return False, f"closed: {reason} (until {end:%a %d %b %H:%M})"
        minute = local.hour * 60 + local.minute
        for exception in self.exceptions:
            if exception.get("open_on") == local.date().isoformat():
                ranges = [_minutes(r) for r in str(exception.get("hours", "")).split(",")]
                if any(start <= minute < end for start, end in ranges):
                    return True, f"open: {exception.get('reason') or 'an extra opening'}"
        holiday = _bank_holidays(self.nation, local.year).get(local.date())
        if holiday:
            return False, f"closed: bank holiday ({holiday})"
        for first, last in self.weekly[DAYS[local.weekday()]]:
            if first <= minute < last:
                return True, f"open until {_clock(last)}"
        return False, "closed: outside opening hours"

    def is_open(self, at: datetime) -> bool:
        """Whether open at ``at``."""
        return self.status(at)[0]

    def next_open(self, at: datetime, days: int = 400) -> datetime | None:
        """When it next opens after ``at`` (UK time), or None within ``days``."""
        local = at.astimezone(LONDON)
        weekly = self.weekly
        for offset in range(days + 1):
            day = local.date() + timedelta(days=offset)
            starts = [start for start, _ in weekly[DAYS[day.weekday()]]]
            for exception in self.exceptions:
                if exception.get("open_on") == day.isoformat():
                    starts += [_minutes(r)[0] for r in str(exception["hours"]).split(",")]
                if "closed_to" in exception:
                    end = datetime.fromisoformat(exception["closed_to"])
                    if end.date() == day:
                        starts.append(end.hour * 60 + end.minute)
            for start in sorted(set(starts)):
                candidate = datetime.combine(day, time(start // 60, start % 60), LONDON)
                if candidate <= local:
                    continue
                if self.is_open(candidate):
                    return candidate
        return None

    def check_exception(self, exception: dict[str, Any]) -> dict[str, Any]:
        """A closure or an extra opening, checked and in its stored form."""
        reason = str(exception.get("reason") or "").strip()[:200]
        if exception.get("open_on"):
            try:
                day = date.fromisoformat(str(exception["open_on"]))
            except ValueError as exc:
                raise DirectoryError("on: a date like 2026-12-27") from exc
            hours = str(exception.get("hours") or "")
            for part in hours.split(","):
                _minutes(part)
            return {"open_on": day.isoformat(), "hours": hours, "reason": reason}
        try:
            start = datetime.fromisoformat(str(exception.get("closed_from")))
            end = datetime.fromisoformat(str(exception.get("closed_to")))
        except ValueError as exc:
            raise DirectoryError("from, to: UK local times like 2026-12-24T12:00") from exc
        if start.tzinfo or end.tzinfo:
            raise DirectoryError("from, to: UK local times, with no offset")
        if end <= start:
            raise DirectoryError("to: after from")
        return {
            "closed_from": start.isoformat(timespec="minutes"),
            "closed_to": end.isoformat(timespec="minutes"),
            "reason": reason,
        }

    def describe(self, at: datetime) -> str:
        """``closed: bank holiday (Christmas Day); reopens Tue 29 Dec at 08:30``."""
        is_open, why = self.status(at)
        if is_open:
            return why
        reopens = self.next_open(at)
        when = f"; reopens {reopens:%a %d %b at %H:%M}" if reopens else ""
        return f"{why}{when}"
