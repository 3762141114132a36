"""A time agreed on the meeting call (DMBM510150, "a pre defined mutually agreeable time"):
the call offers up to three free times from the officer's diary (bank holidays and booked
times skipped), the customer picks one by keypad, and it is booked, said back, audited and
on the officer's meetings page; two customers racing for one time, one wins; none suits,
a call back. Through the simulator, on both stores."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import pytest

from callflow.access import Viewer
from callflow.desks import Feed
from callflow.hours import LONDON
from callflow.service import Callflow
from callflow.simulator import Callee, Leg, Script, Simulator
from callflow.store import Store
from tests.rigs.meetings import CUSTOMER, OFFICER, add_meeting, meeting_world

CHRISTMAS_EVE = datetime(2026, 12, 24, 10, 0, tzinfo=LONDON)
DOB = "21031970#"


@pytest.fixture
def world(store: Store) -> tuple[Simulator, Callflow]:
    sim, service = meeting_world(store, CHRISTMAS_EVE.timestamp())
    service.staff.add_officer(OFFICER, "Alex Morgan", service.clock.now(), grade="O", by="tests")
    return sim, service


def call(sim: Simulator, service: Callflow, meeting: dict[str, Any], script: Script,
         number: str = CUSTOMER) -> Leg:  # fmt: skip
    sim.add_callee(number, Callee("answered", script=script))
    call_sid = service.meetings.place_call(meeting["id"], service.links())
    sim.run_until(lambda: call_sid in sim.legs, max_seconds=1)
    return sim.legs[call_sid]


def heard(leg: Leg) -> str:
    return " ".join(leg.heard())


def test_times_from_the_diary_are_offered_one_is_picked_and_booked(
    world: tuple[Simulator, Callflow],
) -> None:
    sim, service = world
    # Tuesday 29 December at 9 is booked already: that day's first free time is 10.
    add_meeting(service, when="2026-12-29T09:00", reference="DM-2041-70")
    meeting = add_meeting(service, when=None)
    ada = Feed.start(service, Viewer("admin", name="Ada"), None)
    leg = call(sim, service, meeting, Script().press("1").press(DOB).press("2"))
    sim.run()
    said = heard(leg)
    # Friday 25 (Christmas Day), the weekend and Monday 28 (Boxing Day) are not offered.
    assert (
        "For Tuesday 29 December at 10 in the morning, press 1. For Wednesday 30 December at "
        "9 in the morning, press 2. For Thursday 31 December at 9 in the morning, press 3. "
        "To hear other times, press 8"
    ) in said
    assert "The meeting is on" not in said
    assert (
        "Your meeting is booked for Wednesday 30 December at 9 in the morning, at the H M R C "
        "office in Leeds, with Alex Morgan"
    ) in said
    booked = service.meetings.require(meeting["id"])
    assert booked["state"] == "confirmed" and booked["when"] == "2026-12-30T09:00+00:00"
    assert booked["time_agreed_by"] == f"customer on call {leg.sid}"
    assert service.meetings.diary.holder(OFFICER, datetime(2026, 12, 30, 9, tzinfo=LONDON)) == (
        meeting["id"]
    )
    kinds = [(e["kind"], e.get("outcome")) for e in service.audit.entries()
             if e.get("meeting") == meeting["id"]]  # fmt: skip
    assert ("meeting.times_offered", "offered") in kinds
    assert kinds.index(("meeting.time_booked", "booked")) < kinds.index(
        ("meeting.outcome", "confirmed")
    )
    # The event the meetings page hears, and the page itself.
    assert "meeting.time_booked" in [n["kind"] for _, n in ada.next(0) if n]
    assert service.meetings.public(booked)["time_agreed"] == "agreed on the call"


def test_keys_that_pick_no_time_are_told_so_and_nothing_is_booked(
    world: tuple[Simulator, Callflow],
) -> None:
    sim, service = world
    meeting = add_meeting(service, when=None)
    leg = call(sim, service, meeting, Script().press("1").press(DOB).press("7").press("9"))
    sim.run()
    said = heard(leg)
    assert "Sorry, that is not one of the times" in said
    assert said.count("To hear other times, press 8") == 2, "offered again"
    assert "We will call you back to agree a time" in said
    after = service.meetings.require(meeting["id"])
    assert after["state"] == "rearrange" and after["when"] is None
    assert after["callback_needed"] is True
    assert not [e for e in service.audit.entries() if e["kind"] == "meeting.time_booked"]


def test_two_customers_racing_for_one_time_one_wins_and_the_other_is_offered_again(
    world: tuple[Simulator, Callflow],
) -> None:
    sim, service = world
    first = add_meeting(service, when=None, reference="DM-2041-71")
    second = add_meeting(service, when=None, reference="DM-2041-72",
                         customer_number="+447700900124")  # fmt: skip
    # Both hear the same three times; the second presses 1 a moment after the first.
    slow = Script().press("1").press(DOB).silent().press("1").press("1")
    one = call(sim, service, first, Script().press("1").press(DOB).press("1"))
    two = call(sim, service, second, slow, number="+447700900124")
    sim.run()
    assert "Your meeting is booked for Tuesday 29 December at 9 in the morning" in heard(one)
    lost = heard(two)
    assert "Sorry, that time has just been taken. Here are the times free now." in lost
    # 9 on the 29th is the first customer's now: that day's first free time is 10.
    assert "Your meeting is booked for Tuesday 29 December at 10 in the morning" in lost
    taken = [e for e in service.audit.entries() if e["kind"] == "meeting.time_taken"]
    assert [e["meeting"] for e in taken] == [second["id"]]


def test_many_calls_agreeing_one_time_at_once_book_it_once(
    world: tuple[Simulator, Callflow],
) -> None:
    _sim, service = world
    meetings = [add_meeting(service, when=None, reference=f"DM-2041-{n:02d}") for n in range(6)]
    at = service.meetings.offer_times(meetings[0]["id"])[0]
    start = threading.Barrier(len(meetings))
    won: list[str] = []
    lost: list[str] = []

    def agree(meeting: dict[str, Any]) -> None:
        start.wait()
        try:
            service.meetings.agree_time(meeting["id"], f"CA{meeting['id']}", at)
            won.append(meeting["id"])
        except Exception:
            lost.append(meeting["id"])

    workers = [threading.Thread(target=agree, args=(m,)) for m in meetings]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(won) == 1 and len(lost) == len(meetings) - 1
    assert service.meetings.diary.holder(OFFICER, at) == won[0]
    for meeting_id in lost:
        assert service.meetings.require(meeting_id)["when"] is None, "nothing booked"


def test_a_fixed_time_that_does_not_suit_offers_the_diary(
    world: tuple[Simulator, Callflow],
) -> None:
    sim, service = world
    meeting = add_meeting(service, when="2026-12-29T09:00")
    leg = call(sim, service, meeting, Script().press("1").press(DOB).press("2").press("1"))
    sim.run()
    said = heard(leg)
    assert "The meeting is on Tuesday 29 December 2026 at 9am." in said
    # Its own time is still its own until another is booked, so it is not offered again.
    assert "For Tuesday 29 December at 10 in the morning, press 1." in said
    moved = service.meetings.require(meeting["id"])
    assert moved["when"] == "2026-12-29T10:00+00:00" and moved["state"] == "confirmed"
    assert service.meetings.diary.holder(OFFICER, datetime(2026, 12, 29, 9, tzinfo=LONDON)) is None


def test_an_officer_with_no_free_time_means_a_call_back(
    world: tuple[Simulator, Callflow],
) -> None:
    sim, service = world
    service.staff.set_officer_hours(OFFICER, "Tue 09:00-10:00", "england-and-wales", by="ada")
    # The horizon is 10 working days: ten Tuesdays, each booked.
    for n, day in enumerate(("2026-12-29", "2027-01-05", "2027-01-12", "2027-01-19",
                             "2027-01-26", "2027-02-02", "2027-02-09", "2027-02-16",
                             "2027-02-23", "2027-03-02")):  # fmt: skip
        add_meeting(service, when=f"{day}T09:00", reference=f"DM-2041-{n:02d}")
    meeting = add_meeting(service, when=None, reference="DM-2041-99")
    leg = call(sim, service, meeting, Script().press("1").press(DOB))
    sim.run()
    said = heard(leg)
    assert "Sorry, we cannot offer a time on this call." in said
    assert "We will call you back to agree a time" in said
    assert service.meetings.require(meeting["id"])["state"] == "rearrange"


def test_who_hears_of_a_time_agreed(world: tuple[Simulator, Callflow]) -> None:
    """The meetings page (specialists and admins) hears that a meeting changed, in outline:
    the kind of change and when, never the call or the customer. Nobody else hears of it."""
    sim, service = world
    meeting = add_meeting(service, when=None)
    feeds = {
        role: Feed.start(service, viewer, None)
        for role, viewer in {
            "specialist": Viewer("specialist", team="insolvency", specialist="300201"),
            "admin": Viewer("admin", name="Ada"),
            "vstrs_agent": Viewer("vstrs_agent", sees_id="200001"),
            "supervisor": Viewer("supervisor", name="Sue"),
            "designer": Viewer("designer", name="Dana"),
            "auditor": Viewer("auditor", name="Amy"),
        }.items()
    }
    call(sim, service, meeting, Script().press("1").press(DOB).press("1"))
    sim.run()
    heard = {role: [n for _, n in feed.next(0) if n] for role, feed in feeds.items()}
    booked = [n for n in heard["specialist"] if n["kind"] == "meeting.time_booked"]
    assert booked and set(booked[0]) == {"kind", "outcome", "at"}, "no call, no customer"
    assert [n for n in heard["admin"] if n["kind"] == "meeting.time_booked"]
    for role in ("vstrs_agent", "supervisor", "designer", "auditor"):
        assert not [n for n in heard[role] if n["kind"].startswith("meeting.")], role
