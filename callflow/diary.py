"""An officer's diary: the meeting times they can offer, and booking one atomically.

DMBM510150 asks for a meeting "at a pre defined mutually agreeable time". An officer works
the hours on their calendar (``callflow.hours``: weekly ranges, the bank holidays of their
nation); a meeting takes ``MEETING_MINUTES``; a time is free while no meeting holds it.
Holding a time is a claim in the store on each half hour the meeting covers
(``diary:<officer>:<start>``, an atomic SET NX on Redis, Redis Cluster and the embedded store
alike), taken in time order and given back if any is held already: so two calls can never
book one officer's time, nor two meetings overlap (10:00 and 10:30 share 10:30); the second
is told it has gone. The meeting call offers these times (flows/meeting_call.yaml).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from .clock import Clock
from .hours import DAYS, LONDON, Calendar
from .store.base import Store

__all__ = ["MEETING_MINUTES", "Diary"]

#: How long a meeting takes in an officer's diary.
MEETING_MINUTES = 60
#: Times are offered on the hour and the half hour.
STEP_MINUTES = 30
#: A booked time is held until a day after it.
HOLD_AFTER_SECONDS = 24 * 3600


def _key(officer: str, start: datetime) -> str:
    return f"diary:{officer}:{start.astimezone(LONDON):%Y-%m-%dT%H:%M}"


def _blocks(officer: str, at: datetime) -> list[str]:
    """The claims a meeting at ``at`` holds: each half hour it covers, in time order."""
    return [
        _key(officer, at + timedelta(minutes=minute))
        for minute in range(0, MEETING_MINUTES, STEP_MINUTES)
    ]


class Diary:
    """Free times in an officer's working hours, and the claims that book them."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def free_times(
        self,
        officer: str,
        calendar: Calendar,
        *,
        working_days: int = 10,
        count: int = 3,
        after: datetime | None = None,
        beyond: datetime | None = None,
    ) -> list[datetime]:
        """Up to ``count`` free meeting times in the officer's next ``working_days`` days
        of work (from tomorrow: a customer is never asked to meet today), at most one a
        day so the choice spreads over several days; bank holidays and times already
        booked are skipped. Times are UK local. ``beyond``: only on days after that one
        (the next few offered), still within the same working days (one store read a
        day looked at, none for the days passed over)."""
        start = (after or datetime.fromtimestamp(self.clock.now(), LONDON)).astimezone(LONDON)
        day = start.date() + timedelta(days=1)
        skip_to = beyond.astimezone(LONDON).date() if beyond is not None else None
        found: list[datetime] = []
        worked = 0
        for _ in range(working_days * 3 + 14):  # weekends and holidays in between
            if worked >= working_days or len(found) >= count:
                break
            candidates = self._day_times(calendar, datetime.combine(day, time(0), LONDON))
            if candidates and skip_to is not None and day <= skip_to:
                worked += 1  # a working day of the horizon, already offered
            elif candidates:
                worked += 1
                keys = {key for at in candidates for key in _blocks(officer, at)}
                held = self.store.claimed(keys)
                free = [
                    at for at in candidates if not held.intersection(_blocks(officer, at))
                ]
                if free:
                    found.append(free[0])
            day += timedelta(days=1)
        return found

    @staticmethod
    def _day_times(calendar: Calendar, midnight: datetime) -> list[datetime]:
        """The meeting times a day's hours hold (the whole meeting inside them)."""
        weekly = calendar.weekly[DAYS[midnight.weekday()]]
        times = []
        for first, last in weekly:
            minute = first
            while minute + MEETING_MINUTES <= last:
                at = midnight + timedelta(minutes=minute)
                end = at + timedelta(minutes=MEETING_MINUTES - 1)
                if calendar.is_open(at) and calendar.is_open(end):
                    times.append(at)
                minute += STEP_MINUTES
        return times

    def is_working_time(self, calendar: Calendar, at: datetime) -> bool:
        """Whether a whole meeting at ``at`` falls in the officer's working hours (on the
        half hour; no bank holiday or closure)."""
        at = at.astimezone(LONDON)
        midnight = datetime.combine(at.date(), time(0), LONDON)
        return at in self._day_times(calendar, midnight)

    def book(self, officer: str, at: datetime, meeting_id: str) -> bool:
        """Hold ``at`` in the officer's diary for ``meeting_id``: True if it is now theirs
        (the same meeting asking again is still True), False if another meeting has any of
        the half hours it needs (then nothing is held)."""
        ttl = int(at.timestamp() - self.clock.now()) + HOLD_AFTER_SECONDS
        if ttl <= 0:
            return False
        taken: list[str] = []
        for key in _blocks(officer, at):
            mine_already = self.store.claimed_by(key) == meeting_id
            if not self.store.claim(key, meeting_id, ttl):
                for held in taken:  # give back what this attempt took
                    self.store.release(held, meeting_id)
                return False
            if not mine_already:
                taken.append(key)
        return True

    def holder(self, officer: str, at: datetime) -> str | None:
        """The meeting holding ``at`` in the officer's diary, if any."""
        return self.store.claimed_by(_key(officer, at))

    def release(
        self, officer: str, at: datetime, meeting_id: str, keep: datetime | None = None
    ) -> None:
        """Give the time back (a meeting cancelled, moved or ended without being held);
        ``keep``: the meeting's new time, whose half hours it keeps (a move by half an hour)."""
        kept = set(_blocks(officer, keep)) if keep is not None else set()
        for key in _blocks(officer, at):
            if key not in kept:
                self.store.release(key, meeting_id)
