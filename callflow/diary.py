"""An officer's diary: the meeting times they can offer, and booking one atomically.

DMBM510150 asks for a meeting "at a pre defined mutually agreeable time". An officer works
the hours on their calendar (``callflow.hours``: weekly ranges, the bank holidays of their
nation); a meeting takes ``MEETING_MINUTES``; a time is free while no meeting holds it.
Holding a time is a claim in the store (``diary:<officer>:<start>``, one atomic SET NX on
Redis, Redis Cluster and the embedded store alike), so two calls can never book one
officer's time: the second is told it has gone.

This is the service side of issue 30's "a time agreed on the call": the meeting call's
flow offering these times, and ``callflow demo --meeting``, are still to come.
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
    ) -> list[datetime]:
        """Up to ``count`` free meeting times in the officer's next ``working_days`` days
        of work (from tomorrow: a customer is never asked to meet today), at most one a
        day so the choice spreads over several days; bank holidays and times already
        booked are skipped. Times are UK local."""
        start = (after or datetime.fromtimestamp(self.clock.now(), LONDON)).astimezone(LONDON)
        day = start.date() + timedelta(days=1)
        found: list[datetime] = []
        worked = 0
        for _ in range(working_days * 3 + 14):  # weekends and holidays in between
            if worked >= working_days or len(found) >= count:
                break
            candidates = self._day_times(calendar, datetime.combine(day, time(0), LONDON))
            if candidates:
                worked += 1
                held = self.store.claimed(_key(officer, at) for at in candidates)
                free = [at for at in candidates if _key(officer, at) not in held]
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

    def book(self, officer: str, at: datetime, meeting_id: str) -> bool:
        """Hold ``at`` in the officer's diary for ``meeting_id``: True if it is now theirs
        (the same meeting asking again is still True), False if another meeting has it."""
        ttl = int(at.timestamp() - self.clock.now()) + HOLD_AFTER_SECONDS
        if ttl <= 0:
            return False
        return self.store.claim(_key(officer, at), meeting_id, ttl)

    def holder(self, officer: str, at: datetime) -> str | None:
        """The meeting holding ``at`` in the officer's diary, if any."""
        return self.store.claimed_by(_key(officer, at))

    def release(self, officer: str, at: datetime, meeting_id: str) -> None:
        """Give the time back (a meeting cancelled or moved)."""
        self.store.release(_key(officer, at), meeting_id)
