"""One agent per verified call, whatever order and concurrency Twilio's callbacks come in.

Twilio sends the caller's ``participant-join`` conference callback and fetches the
conference's wait URL (``/voice/hold``) at about the same moment, as separate requests.
Both may start ringing an agent; only one may. An agent leg that joins a call it was not
claimed for is taken out at once, and audited.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from random import Random
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.rest import Client

from callflow.clock import ManualClock
from callflow.config import Settings
from callflow.links import ServiceLinks
from callflow.service import Callflow
from callflow.simulator import Simulator
from callflow.simulator.rest import Form, RestApi, RestServer, SimulatorHttpClient
from callflow.store import Store
from callflow.store.redis import RedisStore
from tests.conftest import (
    AUTH_TOKEN,
    BASE_URL,
    free_port,
    make_settings,
    new_call_sid,
    running_gunicorn,
    service_env,
    sign,
)

VERIFIED = {
    "adviser_number": "1001",
    "adviser_name": "Sam Adviser",
    "organisation": "taxaid",
    "organisation_name": "Tax Aid",
    "consent_to_act": False,
    "method": "pin+question",
    "verified_at": 0.0,
}


class CountingApi(RestApi):
    """The simulator's REST API, counting Participants-create requests per conference."""

    def __init__(self, sim: Simulator) -> None:
        super().__init__(sim)
        self.created: Counter[str] = Counter()
        self.hung_up: list[str] = []
        self.lock = threading.Lock()

    def create_participant(self, conference: str, form: Form) -> dict[str, Any]:
        with self.lock:
            self.created[conference] += 1
        return super().create_participant(conference, form)

    def update_call(self, leg: Any, form: Form) -> dict[str, Any]:
        if (form.get("Status") or [""])[-1] == "completed":
            self.hung_up.append(leg.sid)
        return super().update_call(leg, form)


def post_together(requests: list[tuple[str, dict[str, str]]]) -> list[int]:
    """POST signed forms to the service from one thread each, released at the same moment."""
    barrier = threading.Barrier(len(requests))
    answers: list[int] = []

    def send(url: str, form: dict[str, str]) -> None:
        headers = {
            "X-Twilio-Signature": sign(url, form),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        request = urllib.request.Request(  # noqa: S310
            url, data=urlencode(form).encode(), headers=headers, method="POST"
        )
        barrier.wait()
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            answers.append(response.status)

    threads = [threading.Thread(target=send, args=r) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _waiting_call(svc: Callflow, links: ServiceLinks) -> str:
    call_sid = new_call_sid()
    svc.vstrs.start(call_sid, {**VERIFIED, "verified_at": svc.clock.now()}, "+441632960001", links)
    return call_sid


def _agents(svc: Callflow, first: int, count: int) -> list[str]:
    now = svc.clock.now()
    ids = [str(first + i) for i in range(count)]
    for sees_id in ids:
        svc.staff.add_agent(sees_id, f"Agent {sees_id}", f"client:a{sees_id}", now, by="tests")
        svc.staff.set_availability(sees_id, "available", now)
    return ids


def test_the_join_callback_and_the_hold_fetch_together_ring_one_agent_over_gunicorn(
    redis_store: Store, tmp_path: Path
) -> None:
    sim = Simulator(None, AUTH_TOKEN, clock=ManualClock(time.time()))
    api = CountingApi(sim)
    rest = RestServer(api).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(
        base, tmp_path, TWILIO_ACCOUNT_SID=sim.account_sid, TWILIO_API_BASE_URL=rest.base_url
    )
    svc = Callflow(Settings.from_env(env))
    links = ServiceLinks(base)
    rounds = 30
    try:
        with running_gunicorn(env, port, tmp_path / "gunicorn.log", workers=2, threads=4):
            calls = []
            for index in range(rounds):
                agents = _agents(svc, 400000 + 10 * index, 2)  # two free agents for this call
                call_sid = _waiting_call(svc, links)
                calls.append(call_sid)
                join = {
                    "FriendlyName": f"vstrs-{call_sid}",
                    "StatusCallbackEvent": "participant-join",
                    "CallSid": call_sid,
                    "ConferenceSid": "CF" + call_sid[2:],
                    "AccountSid": sim.account_sid,
                }
                hold = {"CallSid": call_sid, "AccountSid": sim.account_sid}
                requests = [
                    (f"{base}/voice/conference", join),
                    (f"{base}/voice/hold?call={call_sid}", hold),
                ]
                answers = post_together(requests)
                assert sorted(answers) == [200, 204], answers
                # Each of these agents was free for its call alone: one and only one is rung.
                for sees_id in agents:
                    svc.staff.set_availability(sees_id, "away", svc.clock.now())
            rung = {call: api.created[f"vstrs-{call}"] for call in calls}
            assert {c: n for c, n in rung.items() if n != 1} == {}
            kinds = Counter(
                e["call_sid"] for e in svc.audit.all_entries() if e["kind"] == "agent.ringing"
            )
            assert all(kinds[call] == 1 for call in calls), kinds
    finally:
        rest.stop()


# -- in process: the claim, an early join, and a join nobody claimed


class InProcess:
    """A service on the given store whose REST requests reach a (counting) simulator."""

    def __init__(self, store: Store, clock: ManualClock) -> None:
        self.sim = Simulator(None, AUTH_TOKEN, clock=clock)
        self.api = CountingApi(self.sim)
        client = Client(self.sim.account_sid, AUTH_TOKEN, http_client=SimulatorHttpClient(self.api))
        self.svc = Callflow(
            make_settings(), store=store, clock=clock, rng=Random(3), twilio_client=client
        )
        self.links = ServiceLinks(BASE_URL)


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> InProcess:
    return InProcess(store, clock)


def test_racing_rings_from_many_threads_claim_the_call_once(rig: InProcess) -> None:
    svc = rig.svc
    _agents(svc, 500000, 6)
    call_sid = _waiting_call(svc, rig.links)
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def ring() -> None:
        barrier.wait()
        results.append(svc.vstrs.ring_next(call_sid, rig.links))

    threads = [threading.Thread(target=ring) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    assert rig.api.created[f"vstrs-{call_sid}"] == 1
    record = svc.vstrs.get(call_sid)
    assert record is not None and record["ringing"]["call_sid"]


def test_a_join_that_beats_the_record_of_its_ring_still_connects(rig: InProcess) -> None:
    """Twilio's join callback may arrive before the REST answer is noted on the record."""
    svc = rig.svc
    (agent,) = _agents(svc, 510000, 1)
    call_sid = _waiting_call(svc, rig.links)
    original = svc.vstrs._rang

    def join_first(call: str, token: str, sees_id: str, name: str, leg: str) -> bool:
        svc.vstrs.agent_joined(call, leg, "CF" + "1" * 32)  # the callback wins the race
        assert (svc.vstrs.get(call) or {})["agent"] is None
        return original(call, token, sees_id, name, leg)

    svc.vstrs._rang = join_first  # type: ignore[method-assign]
    assert svc.vstrs.ring_next(call_sid, rig.links)
    record = svc.vstrs.get(call_sid)
    assert record is not None
    assert record["state"] == "with_agent" and record["agent"]["sees_id"] == agent
    assert rig.api.hung_up == []


def test_an_agent_leg_nobody_claimed_is_removed_at_once_and_audited(rig: InProcess) -> None:
    svc = rig.svc
    first, _second = _agents(svc, 520000, 2)
    call_sid = _waiting_call(svc, rig.links)
    assert svc.vstrs.ring_next(call_sid, rig.links)
    record = svc.vstrs.get(call_sid)
    assert record is not None
    ours = record["ringing"]["call_sid"]
    svc.vstrs.agent_joined(call_sid, ours, "CF" + "2" * 32)
    # A second agent leg (rung by nobody for this call, e.g. a stale request) joins.
    stray = rig.sim.place_outbound("client:a520001", "+441632960999")
    params = {
        "FriendlyName": f"vstrs-{call_sid}",
        "StatusCallbackEvent": "participant-join",
        "CallSid": stray.sid,
        "ParticipantLabel": "agent",
        "ConferenceSid": "CF" + "2" * 32,
    }
    svc.ends.conference_event(params, rig.links)
    assert stray.sid in rig.api.hung_up
    record = svc.vstrs.get(call_sid)
    assert record is not None and record["agent"]["sees_id"] == first
    assert record["agents"] == [first]
    (entry,) = [e for e in svc.audit.all_entries() if e["kind"] == "agent.unclaimed_join"]
    assert entry["leg"] == stray.sid and entry["outcome"] == "removed"
    # The same join reported again for the connected agent changes nothing.
    svc.vstrs.agent_joined(call_sid, ours, "CF" + "2" * 32)
    assert ours not in rig.api.hung_up


def test_a_ring_claim_left_by_a_dead_worker_lapses(rig: InProcess, store: Store) -> None:
    from callflow.vstrs import STALE_RING_CLAIM_SECONDS, _ring_key

    svc = rig.svc
    _agents(svc, 530000, 1)
    call_sid = _waiting_call(svc, rig.links)
    assert svc.store.claim(_ring_key(call_sid), "a worker that died", STALE_RING_CLAIM_SECONDS)
    assert not svc.vstrs.ring_next(call_sid, rig.links), "held by the (dead) worker's claim"
    assert rig.api.created[f"vstrs-{call_sid}"] == 0
    if isinstance(store, RedisStore):  # Redis keeps its own time: the claim expires there
        ttl = store.client.ttl(f"cf:claim:{_ring_key(call_sid)}")
        assert 0 < ttl <= STALE_RING_CLAIM_SECONDS
        store.client.delete(f"cf:claim:{_ring_key(call_sid)}")
    else:
        assert isinstance(svc.clock, ManualClock)
        svc.clock.advance(STALE_RING_CLAIM_SECONDS + 1)
    svc.vstrs.hold_tick(call_sid, rig.links)
    record = svc.vstrs.get(call_sid)
    assert record is not None and record["ringing"]["call_sid"]
    assert rig.api.created[f"vstrs-{call_sid}"] == 1


def test_the_next_agent_is_rung_when_the_first_does_not_answer(rig: InProcess) -> None:
    svc = rig.svc
    first, second = _agents(svc, 550000, 2)
    call_sid = _waiting_call(svc, rig.links)
    assert svc.vstrs.ring_next(call_sid, rig.links)
    record = svc.vstrs.get(call_sid)
    assert record is not None
    rung = record["ringing"]
    svc.vstrs.agent_leg_status(call_sid, rung["call_sid"], "no-answer", rig.links)
    record = svc.vstrs.get(call_sid)
    assert record is not None and record["ringing"]["sees_id"] != rung["sees_id"]
    assert {rung["sees_id"], record["ringing"]["sees_id"]} == {first, second}
    assert rig.api.created[f"vstrs-{call_sid}"] == 2
    svc.vstrs.agent_joined(call_sid, record["ringing"]["call_sid"], "CF" + "3" * 32)
    record = svc.vstrs.get(call_sid)
    assert record is not None and record["state"] == "with_agent"
    assert not svc.vstrs.ring_next(call_sid, rig.links), "a call with an agent rings nobody"


def test_a_ring_that_lands_after_the_caller_left_is_hung_up(rig: InProcess) -> None:
    svc = rig.svc
    (agent,) = _agents(svc, 540000, 1)
    call_sid = _waiting_call(svc, rig.links)
    original = svc.vstrs._rang

    def caller_gone_meanwhile(call: str, token: str, sees_id: str, name: str, leg: str) -> bool:
        svc.ends.caller_ended(call, "completed")
        return original(call, token, sees_id, name, leg)

    svc.vstrs._rang = caller_gone_meanwhile  # type: ignore[method-assign]
    assert not svc.vstrs.ring_next(call_sid, rig.links)
    assert len(rig.api.hung_up) == 1
    assert svc.store.claimed_by(f"agent:{agent}") is None
