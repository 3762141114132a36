"""An officer's diary: free meeting times in their working hours (weekends, bank holidays
and booked times skipped, one a day), and booking one atomically: two meetings racing
for one officer's time, one wins. Both stores (tests/store/test_cluster.py runs claims on
Redis Cluster)."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest

from callflow.cli.main import main
from callflow.clock import ManualClock
from callflow.diary import Diary
from callflow.errors import DirectoryError, FieldErrors
from callflow.hours import LONDON, Calendar
from callflow.service import Callflow
from callflow.store import Store
from tests.conftest import cli_sign_in, make_settings
from tests.rigs.meetings import OFFICER, add_meeting

CHRISTMAS_EVE = datetime(2026, 12, 24, 10, 0, tzinfo=LONDON)


def test_free_times_skip_weekends_bank_holidays_and_booked_times(store: Store) -> None:
    clock = ManualClock(CHRISTMAS_EVE.timestamp())
    diary = Diary(store, clock)
    calendar = Calendar("Mon-Fri 09:00-12:00,13:00-17:00", "england-and-wales")
    offered = diary.free_times(OFFICER, calendar, working_days=10, count=3)
    # Fri 25 Dec (Christmas Day), the weekend, Mon 28 Dec (Boxing Day, moved): no work.
    assert [f"{t:%a %d %b %H:%M}" for t in offered] == [
        "Tue 29 Dec 09:00", "Wed 30 Dec 09:00", "Thu 31 Dec 09:00",
    ]  # fmt: skip
    assert diary.book(OFFICER, offered[0], "m-aaaaaaaaaaaa")
    assert diary.book(OFFICER, offered[0], "m-aaaaaaaaaaaa"), "the same meeting again: still its"
    again = diary.free_times(OFFICER, calendar, working_days=10, count=1)
    # 09:30 would overlap the hour from 09:00: the next free start is 10:00.
    assert [f"{t:%a %d %b %H:%M}" for t in again] == ["Tue 29 Dec 10:00"]
    # A meeting never runs past the end of a working stretch: 11:00 is the last morning start.
    day = Diary._day_times(calendar, datetime(2026, 12, 29, tzinfo=LONDON))
    assert "11:30" not in [f"{t:%H:%M}" for t in day] and "11:00" in [f"{t:%H:%M}" for t in day]
    assert "12:30" not in [f"{t:%H:%M}" for t in day] and "16:00" in [f"{t:%H:%M}" for t in day]
    # Only so many working days ahead: none at all within one working day if it is full.
    for at in Diary._day_times(calendar, datetime(2026, 12, 29, tzinfo=LONDON)):
        diary.book(OFFICER, at, "m-bbbbbbbbbbbb")
    assert diary.free_times(OFFICER, calendar, working_days=1, count=3) == []


def test_meetings_never_overlap_and_a_move_keeps_what_it_shares(store: Store) -> None:
    diary = Diary(store, ManualClock(CHRISTMAS_EVE.timestamp()))
    ten = datetime(2026, 12, 29, 10, 0, tzinfo=LONDON)
    half_past = datetime(2026, 12, 29, 10, 30, tzinfo=LONDON)
    assert diary.book(OFFICER, ten, "m-aaaaaaaaaaaa")
    assert not diary.book(OFFICER, half_past, "m-bbbbbbbbbbbb"), "10:30 overlaps 10:00-11:00"
    assert diary.holder(OFFICER, datetime(2026, 12, 29, 11, 0, tzinfo=LONDON)) is None, (
        "the refused booking took nothing"
    )
    # The first meeting moves on by half an hour: it keeps 10:30, gives 10:00 back.
    assert diary.book(OFFICER, half_past, "m-aaaaaaaaaaaa")
    diary.release(OFFICER, ten, "m-aaaaaaaaaaaa", keep=half_past)
    assert diary.holder(OFFICER, ten) is None
    assert diary.holder(OFFICER, half_past) == "m-aaaaaaaaaaaa"
    assert not diary.book(OFFICER, ten, "m-bbbbbbbbbbbb"), "10:00-11:00 still overlaps 10:30"
    calendar = Calendar("Mon-Fri 09:00-17:00", "england-and-wales")
    assert diary.is_working_time(calendar, datetime(2026, 12, 29, 16, 0, tzinfo=LONDON))
    assert not diary.is_working_time(calendar, datetime(2026, 12, 29, 16, 30, tzinfo=LONDON))
    assert not diary.is_working_time(calendar, datetime(2026, 12, 29, 10, 15, tzinfo=LONDON))
    assert not diary.is_working_time(calendar, datetime(2026, 12, 28, 10, 0, tzinfo=LONDON)), (
        "a bank holiday"
    )


def test_two_meetings_racing_for_one_time_one_wins(store: Store) -> None:
    diary = Diary(store, ManualClock(CHRISTMAS_EVE.timestamp()))
    at = datetime(2026, 12, 29, 10, 0, tzinfo=LONDON)
    results: dict[str, bool] = {}
    start = threading.Barrier(8)

    def book(meeting: str) -> None:
        start.wait()
        results[meeting] = diary.book(OFFICER, at, meeting)

    workers = [threading.Thread(target=book, args=(f"m-{n:012x}",)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    winners = [m for m, won in results.items() if won]
    assert len(winners) == 1 and diary.holder(OFFICER, at) == winners[0]


@pytest.fixture
def service(store: Store) -> Callflow:
    clock = ManualClock(CHRISTMAS_EVE.timestamp())
    svc = Callflow(make_settings(), store=store, clock=clock)
    svc.staff.add_officer(OFFICER, "Alex Morgan", clock.now(), grade="O", by="tests")
    return svc


def test_a_meeting_books_a_time_from_its_officers_diary(service: Callflow) -> None:
    first = add_meeting(service)
    second = add_meeting(service, reference="DM-2041-78")
    offered = service.meetings.offer_times(first["id"])
    assert [f"{t:%d %b %H:%M}" for t in offered] == ["29 Dec 09:00", "30 Dec 09:00", "31 Dec 09:00"]
    booked = service.meetings.book_time(first["id"], offered[1], by="customer")
    assert booked["when"] == "2026-12-30T09:00+00:00"
    with pytest.raises(DirectoryError, match="has just been taken; choose another"):
        service.meetings.book_time(second["id"], offered[1], by="customer")
    assert service.meetings.require(second["id"])["when"] == second["when"], "nothing changed"
    assert [f"{t:%d %b}" for t in service.meetings.offer_times(second["id"])][:1] == ["29 Dec"]
    # Moving the first meeting gives its old time back.
    service.meetings.book_time(first["id"], offered[0], by="customer")
    assert service.meetings.diary.holder(OFFICER, offered[1]) is None
    assert service.meetings.book_time(second["id"], offered[1], by="customer")["when"].startswith(
        "2026-12-30T09:00"
    )
    kinds = [e["kind"] for e in service.audit.entries() if e["kind"] == "meeting.time_booked"]
    assert len(kinds) == 3


def test_an_officers_hours_are_theirs_to_set(service: Callflow) -> None:
    service.staff.set_officer_hours(OFFICER, "Tue-Thu 10:00-15:00", "scotland", by="ada")
    officer = service.staff.officer(OFFICER)
    assert officer is not None and officer.nation == "scotland"
    meeting = add_meeting(service)
    assert [f"{t:%a %H:%M}" for t in service.meetings.offer_times(meeting["id"])] == [
        "Tue 10:00", "Wed 10:00", "Thu 10:00",
    ]  # fmt: skip
    with pytest.raises(DirectoryError):
        service.staff.set_officer_hours(OFFICER, "whenever", "scotland", by="ada")


def test_the_cli_sets_an_officers_hours(
    service: Callflow, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setattr("callflow.cli.common.service", lambda: service)
    assert main(["officers", "hours", OFFICER, "Mon-Wed 08:00-16:00"]) == 1, "an admin's act"
    cli_sign_in(monkeypatch, tmp_path, service, "admin")
    assert main(["officers", "hours", OFFICER, "Mon-Wed 08:00-16:00", "--nation", "scotland"]) == 0
    assert "works Mon-Wed 08:00-16:00" in capsys.readouterr().out
    officer = service.staff.officer(OFFICER)
    assert officer is not None and (officer.hours, officer.nation) == ("Mon-Wed 08:00-16:00", "scotland")
    assert main(["officers", "hours", OFFICER, "sometimes"]) == 1


def test_a_set_time_is_in_the_officers_hours_and_held_in_their_diary(service: Callflow) -> None:
    with pytest.raises(FieldErrors, match="Alex Morgan does not work at") as evening:
        add_meeting(service, when="2027-01-05T18:00")
    assert "Mon-Fri 09:00-17:00" in evening.value.errors["when"]
    with pytest.raises(FieldErrors, match="does not work at"):
        add_meeting(service, when="2027-01-01T10:00")  # New Year's Day
    with pytest.raises(FieldErrors, match="does not work at"):
        add_meeting(service, when="2027-01-05T10:15")  # on the hour or half hour
    first = add_meeting(service, when="2027-01-05T10:00")
    assert service.meetings.diary.holder(OFFICER, datetime(2027, 1, 5, 10, tzinfo=LONDON)) == (
        first["id"]
    )
    with pytest.raises(FieldErrors, match="already has a meeting at Tuesday 5 January 2027"):
        add_meeting(service, reference="DM-2041-78", when="2027-01-05T10:30")
    # No time: the customer agrees one on the call; nothing is held until then.
    open_time = add_meeting(service, reference="DM-2041-79", when=None)
    assert open_time["when"] is None and open_time["state"] == "scheduled"
    assert service.meetings.public(open_time)["when"] is None
    # A cancelled meeting gives its time back.
    service.meetings.cancel(first["id"], by="kim")
    assert service.meetings.diary.holder(OFFICER, datetime(2027, 1, 5, 10, tzinfo=LONDON)) is None
    assert add_meeting(service, reference="DM-2041-80", when="2027-01-05T10:30")["when"]
