"""Calls the service places (meeting calls, call-backs) go through one module: claimed so
one worker rings a record at a time, let go when Twilio refuses, settled by asking Twilio
when their end never came. Both stores."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from callflow.clock import ManualClock
from callflow.errors import CallflowError, TwilioError
from callflow.links import ServiceLinks
from callflow.outbound import OutboundCalls, attempt
from callflow.service import Callflow
from callflow.simulator import Callee, Simulator
from callflow.simulator.rest import ApiError, RestApi
from callflow.store import Store
from tests.rigs.meetings import CUSTOMER, OFFICER, add_meeting, meeting_world

LINKS = ServiceLinks("http://callflow.test")


@pytest.fixture
def world(store: Store, clock: ManualClock) -> tuple[Simulator, Callflow]:
    sim, service = meeting_world(store, clock.now())
    service.staff.add_officer(OFFICER, "Alex Morgan", service.clock.now(), by="tests")
    sim.add_callee(CUSTOMER, Callee("no-answer"))
    return sim, service


def test_two_workers_placing_one_meeting_at_once_ring_it_once(
    world: tuple[Simulator, Callflow],
) -> None:
    _sim, service = world
    meeting = add_meeting(service)
    results: list[str] = []
    start = threading.Barrier(4)

    def place() -> None:
        start.wait()
        try:
            results.append(service.meetings.place_call(meeting["id"], LINKS))
        except CallflowError as exc:
            results.append(f"refused: {exc}")

    workers = [threading.Thread(target=place) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    placed = [r for r in results if r.startswith("CA")]
    assert len(placed) == 1, results
    # The others are refused: claimed by the first, or already calling once it recorded.
    assert all(
        "is being called already" in r or "is calling, not scheduled" in r
        for r in results
        if not r.startswith("CA")
    ), results
    assert [a["call_sid"] for a in service.meetings.require(meeting["id"])["attempts"]] == placed


def test_a_refused_call_lets_go_of_the_claim(
    world: tuple[Simulator, Callflow], monkeypatch: pytest.MonkeyPatch
) -> None:
    _sim, service = world
    meeting = add_meeting(service)
    original = RestApi.create_call

    def refused(self: RestApi, form: Any) -> Any:
        raise ApiError(503, 20003, "Twilio is having a moment")

    monkeypatch.setattr(RestApi, "create_call", refused)
    with pytest.raises(TwilioError):
        service.meetings.place_call(meeting["id"], LINKS)
    assert service.meetings.require(meeting["id"])["attempts"] == []
    monkeypatch.setattr(RestApi, "create_call", original)
    call_sid = service.meetings.place_call(meeting["id"], LINKS)  # not "being called already"
    assert service.meetings.require(meeting["id"])["attempts"][0]["call_sid"] == call_sid


def test_the_leg_ending_lets_the_record_be_called_again(world: tuple[Simulator, Callflow]) -> None:
    _sim, service = world
    outbound = OutboundCalls(service.store, service.twilio, service.clock)
    placed = outbound.place(
        "meeting", "m-test", to=CUSTOMER, from_="+441632960100", url=LINKS.voice_url(),
        status_callback=LINKS.meeting_status("m-test"), ring_seconds=30, claim_seconds=120,
    )  # fmt: skip
    assert attempt(placed) == {"call_sid": placed.call_sid, "at": placed.at, "result": None,
                               "claim": placed.claim}  # fmt: skip
    with pytest.raises(CallflowError, match="being called already"):
        outbound.place("meeting", "m-test", to=CUSTOMER, from_="+441632960100",
                       url=LINKS.voice_url(), status_callback=LINKS.meeting_status("m-test"),
                       ring_seconds=30, claim_seconds=120)  # fmt: skip
    outbound.leg_ended("meeting", "m-test", attempt(placed))
    again = outbound.place("meeting", "m-test", to=CUSTOMER, from_="+441632960100",
                           url=LINKS.voice_url(), status_callback=LINKS.meeting_status("m-test"),
                           ring_seconds=30, claim_seconds=120)  # fmt: skip
    assert again.call_sid != placed.call_sid


def test_a_stale_try_is_settled_by_asking_twilio(world: tuple[Simulator, Callflow]) -> None:
    sim, service = world
    sim.faults.lose_callbacks = {"completed", "no-answer", "busy", "failed"}
    outbound = OutboundCalls(service.store, service.twilio, service.clock)
    placed = outbound.place(
        "meeting", "m-stale", to=CUSTOMER, from_="+441632960100", url=LINKS.voice_url(),
        status_callback=LINKS.meeting_status("m-stale"), ring_seconds=30, claim_seconds=120,
    )  # fmt: skip
    sim.run()
    ended: list[tuple[str, str, str]] = []
    docs = [
        {"id": "m-stale", "attempts": [attempt(placed)]},
        {"id": "m-done", "attempts": []},  # never tried: nothing to ask
    ]
    settled = outbound.settle_stale(
        "meeting", docs, lambda d: True, lambda ref, leg, status: ended.append((ref, leg, status))
    )
    assert settled == [("m-stale", "no-answer")]
    assert ended == [("m-stale", placed.call_sid, "no-answer")]
