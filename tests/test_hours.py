"""Opening hours: several ranges a day, UK bank holidays per nation, closures and extra
openings, the clock changes, the line's closed message, and a hand-off that says when a
closed team reopens."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callflow.clock import ManualClock
from callflow.errors import DirectoryError
from callflow.hours import Calendar, parse_week
from callflow.service import Callflow
from callflow.store import Store
from tests.conftest import BASE_URL, Caller
from tests.rigs import Rig

LONDON = ZoneInfo("Europe/London")
UTC = ZoneInfo("UTC")


def uk(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON)


WEEK = "Mon-Fri 08:30-12:30,13:30-17:00; Sat 09:00-12:00"


def test_a_week_has_several_ranges_a_day() -> None:
    week = parse_week(WEEK)
    assert week["mon"] == [(510, 750), (810, 1020)] and week["sat"] == [(540, 720)]
    assert week["sun"] == []
    calendar = Calendar(WEEK, "england-and-wales")
    assert calendar.is_open(uk("2026-12-01T09:00"))  # a Tuesday morning
    assert not calendar.is_open(uk("2026-12-01T13:00")), "lunch"
    assert calendar.status(uk("2026-12-01T13:00"))[1] == "closed: outside opening hours"
    assert calendar.describe(uk("2026-12-01T13:00")).endswith("reopens Tue 01 Dec at 13:30")
    for bad in ("Mon-Fri 17:00-08:30", "Xyz 09:00-10:00", "", "Mon 9-5"):
        with pytest.raises(DirectoryError):
            parse_week(bad)


def test_bank_holidays_close_by_nation() -> None:
    england = Calendar(WEEK, "england-and-wales")
    scotland = Calendar(WEEK, "scotland")
    christmas = uk("2026-12-25T10:00")
    is_open, why = england.status(christmas)
    assert not is_open and why == "closed: bank holiday (Christmas Day)"
    # 25 and 26 Dec 2026 are Friday and Saturday; Boxing Day's substitute is Monday 28th.
    assert england.describe(christmas).endswith("reopens Tue 29 Dec at 08:30")
    second_of_january = uk("2026-01-02T10:00")  # a Friday: a holiday in Scotland only
    assert england.is_open(second_of_january) and not scotland.is_open(second_of_january)
    assert Calendar("Mon-Sun 00:00-24:00", "none").is_open(christmas)


def test_closures_and_extra_openings() -> None:
    calendar = Calendar(
        WEEK,
        "england-and-wales",
        [
            {
                "closed_from": "2026-12-02T12:00",
                "closed_to": "2026-12-02T23:59",
                "reason": "training",
            },
            {"open_on": "2026-12-28", "hours": "10:00-14:00", "reason": "year-end"},
        ],
    )
    assert calendar.is_open(uk("2026-12-02T09:00"))
    assert calendar.status(uk("2026-12-02T14:00")) == (
        False,
        "closed: training (until Wed 02 Dec 23:59)",
    )
    assert calendar.describe(uk("2026-12-02T14:00")).endswith("reopens Thu 03 Dec at 08:30")
    assert calendar.status(uk("2026-12-28T11:00")) == (True, "open: year-end"), (
        "wins over the bank holiday"
    )
    assert not calendar.is_open(uk("2026-12-28T15:00"))
    with pytest.raises(DirectoryError):
        calendar.check_exception(
            {"closed_from": "2026-12-02T12:00", "closed_to": "2026-12-01T12:00"}
        )


def test_hours_are_uk_local_across_the_clock_changes() -> None:
    calendar = Calendar("Mon-Fri 09:00-17:00", "england-and-wales")
    # Clocks go forward on Sunday 29 March 2026: 09:00 on Monday is 08:00 UTC.
    assert calendar.is_open(datetime(2026, 3, 30, 8, 0, tzinfo=UTC))
    assert not calendar.is_open(datetime(2026, 3, 30, 7, 59, tzinfo=UTC))
    # The Friday before, still GMT: 09:00 is 09:00 UTC.
    assert not calendar.is_open(datetime(2026, 3, 27, 8, 30, tzinfo=UTC))
    # Back on Sunday 25 October 2026: 16:59 on Monday 26th is 16:59 UTC, 17:00 closed.
    assert calendar.is_open(datetime(2026, 10, 26, 16, 59, tzinfo=UTC))
    assert not calendar.is_open(datetime(2026, 10, 26, 17, 0, tzinfo=UTC))
    # Friday 23rd is still BST: 16:30 UTC is 17:30 local, closed.
    assert not calendar.is_open(datetime(2026, 10, 23, 16, 30, tzinfo=UTC))


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    return Rig(store, clock)


def test_a_hand_off_to_a_closed_team_says_when_it_reopens(rig: Rig, clock: ManualClock) -> None:
    staff = rig.svc.staff
    staff.change_calendar("debt_pursuit", week=WEEK, nation="england-and-wales", by="ops")
    caller = rig.caller_with_agent()
    # Put the service's clock on Christmas morning 2026.
    clock.set(uk("2026-12-25T10:00").timestamp())
    refused = rig.request(caller)
    assert refused.status_code == 422
    why = refused.get_json()["errors"]["team"]
    assert why == "closed: bank holiday (Christmas Day); reopens Tue 29 Dec at 08:30"
    teams: Any = rig.api.get("/api/teams", headers=rig.auth()).get_json()["teams"]
    (team,) = [t for t in teams if t["id"] == "debt_pursuit"]
    assert team["open"] is False and team["status"] == why
    entries = [e for e in rig.svc.audit.entries() if e["kind"] == "staff.calendar_changed"]
    assert entries and entries[-1]["by"] == "ops" and entries[-1]["calendar"] == "debt_pursuit"


@pytest.mark.parametrize("owner", ["line", "debt_pursuit"])
def test_two_admins_changing_a_calendar_at_once_both_stand(
    rig: Rig, store: Store, owner: str
) -> None:
    """Two instances of the service (two admins, two processes): the second has the
    calendar in its few-second cache when the first adds a closure; its own change must
    not write the closure away."""
    from callflow.staff import Staff

    here = rig.svc.staff
    there = Staff(store, b"another instance", rig.svc.audit)
    assert there.calendar(owner).exceptions == []  # read (and, for the line, cached)
    here.change_calendar(
        owner,
        add={"closed_from": "2026-12-03T12:00", "closed_to": "2026-12-03T18:00"},
        by="ada",
    )
    there.change_calendar(owner, add={"open_on": "2026-12-05", "hours": "10:00-14:00"}, by="bo")
    kept = Staff(store, b"a third", rig.svc.audit).calendar(owner).exceptions
    assert ["closed_from" in e for e in kept] == [True, False], kept
    with pytest.raises(DirectoryError, match="exception: 1 to 2"):
        there.change_calendar(owner, remove=3, by="bo")
    assert Staff(store, b"a third", rig.svc.audit).calendar(owner).exceptions == kept


def test_outside_the_lines_hours_callers_hear_when_it_opens(
    service: Callflow, clock: ManualClock
) -> None:
    from webhooks import create_app

    service.staff.change_calendar(
        "line", week="Mon-Fri 08:00-18:00", nation="england-and-wales", by="ops"
    )
    service.staff.change_calendar(
        "line",
        add={
            "closed_from": "2026-12-03T12:00",
            "closed_to": "2026-12-03T23:59",
            "reason": "system upgrade",
        },
        by="ops",
    )
    client = create_app({"CALLFLOW_SERVICE": service}).test_client()
    clock.set(uk("2026-12-03T14:00").timestamp())
    caller = Caller(client)
    twiml = caller.start()
    assert caller.heard == [
        "The H M R C Voluntary Sector Taxes Resolution Service line is closed now. It opens "
        "again on Friday at 8am. Goodbye."
    ]
    assert twiml.find("Hangup") is not None and twiml.find("Gather") is None
    clock.set(uk("2026-12-04T08:05").timestamp())
    service.staff._line_docs.clear()  # a worker's few seconds have passed
    open_caller = Caller(client)
    open_caller.start()
    assert open_caller.heard[0].startswith("Welcome to the H M R C")


def test_an_emergency_closure_ends_new_calls_politely_and_leaves_calls_in_progress(
    service: Callflow, clock: ManualClock
) -> None:
    from webhooks import create_app

    client = create_app({"CALLFLOW_SERVICE": service}).test_client()
    in_progress = Caller(client)
    in_progress.start()
    service.staff.start_closure(
        {
            "en-GB": "Our systems are down. Please call again this afternoon.",
            "cy-GB": "Mae ein systemau i lawr. Ffoniwch eto y prynhawn yma.",
        },
        clock.now() + 3600,
        clock.now(),
        by="duty manager",
        reason="the case systems are down",
    )
    caller = Caller(client)
    twiml = caller.start()
    assert caller.heard == ["Our systems are down. Please call again this afternoon.", "Goodbye."]
    assert twiml.find("Hangup") is not None
    welsh = Caller(client)
    response = welsh.post(f"{BASE_URL}/voice/incoming?lang=cy", CallStatus="ringing")
    assert "Mae ein systemau i lawr" in response.get_data(as_text=True)
    # The call already under way goes on: its next step is answered as ever.
    assert in_progress.press("1001#").find("Gather") is not None
    (started,) = [e for e in service.audit.entries() if e["kind"] == "line.closure_started"]
    assert started["by"] == "duty manager" and started["languages"] == ["cy-GB", "en-GB"]
    assert started["reason"] == "the case systems are down"
    assert service.staff.end_closure(by="duty manager")
    service.staff._line_docs.clear()
    reopened = Caller(client)
    reopened.start()
    assert reopened.heard[0].startswith("Welcome to the H M R C")
    assert [e["kind"] for e in service.audit.entries() if e["kind"].startswith("line.")] == [
        "line.closure_started",
        "line.closure_ended",
    ]


def test_a_closure_ends_by_itself_and_needs_an_english_message(
    service: Callflow, clock: ManualClock
) -> None:
    why = "a fire drill"
    with pytest.raises(DirectoryError, match="English message"):
        service.staff.start_closure({"cy-GB": "Ar gau"}, None, clock.now(), by="ops", reason=why)
    with pytest.raises(DirectoryError, match="after now"):
        service.staff.start_closure(
            {"en-GB": "Closed"}, clock.now() - 1, clock.now(), by="ops", reason=why
        )
    with pytest.raises(DirectoryError, match="reason: why the line is closing"):
        service.staff.start_closure({"en-GB": "Closed"}, None, clock.now(), by="ops", reason=" ")
    assert service.staff.closure(clock.now()) is None
    service.staff.start_closure(
        {"en-GB": "Closed"}, clock.now() + 60, clock.now(), by="ops", reason=why
    )
    assert service.staff.closure(clock.now()) is not None
    assert service.staff.closure(clock.now() + 61) is None
