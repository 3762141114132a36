"""gunicorn on loopback: two instances taking turns on one call; a worker killed mid-request."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import redis

from callflow.config import Settings
from callflow.service import Callflow
from callflow.simulator import HttpTransport, Script, Simulator
from callflow.simulator.transport import HttpResult
from tests.conftest import (
    ADVISER,
    AUTH_TOKEN,
    PIN,
    TEST_REDIS_URL,
    enrol,
    free_port,
    running_gunicorn,
    service_env,
)
from tests.rigs.faults import Alternating, SlowProxy, workers

VSTRS = "+441632960999"
SPOKEN = {"first school": "Hill Top", "colour": "Blue"}


def _script() -> Script:
    return Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(SPOKEN).hang_up(after=5)




def _call(sim: Simulator, public: str, number: str) -> tuple[list[str], str]:
    sim.configure_number(
        VSTRS, f"{public}/voice/incoming", status_callback=f"{public}/voice/status"
    )
    caller = sim.call(VSTRS, number, _script())
    sim.run()
    assert sim.errors == [], sim.transcript()
    return caller.heard(), caller.sid


def test_two_instances_on_one_redis_serve_one_call_alternately(
    redis_store: object, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    public = f"http://127.0.0.1:{ports[0]}"  # what Twilio is told; the balancer spreads it
    env = service_env(public, tmp_path)
    settings = Settings.from_env(env)
    enrol(Callflow(settings))
    with (
        running_gunicorn(env, ports[0], tmp_path / "a.log", workers=1),
        running_gunicorn(env, ports[1], tmp_path / "b.log", workers=1),
    ):
        alone, alone_sid = _call(Simulator(HttpTransport(), AUTH_TOKEN), public, "+441632960001")
        balancer = Alternating(public, [f"http://127.0.0.1:{p}" for p in ports])
        shared, shared_sid = _call(Simulator(balancer, AUTH_TOKEN), public, "+441632960002")

    assert len(set(balancer.served)) == 2 and len(balancer.served) >= 5
    # The security question is drawn at random per call; all else is word for word.
    assert _unquestioned(shared) == _unquestioned(alone), (shared, alone)
    assert any("You are verified as calling from Tax Aid" in text for text in shared), shared
    store = Callflow(settings).store
    one, other = store.get_session(alone_sid), store.get_session(shared_sid)
    assert one is not None and other is not None
    assert (one.state, one.ended, one.step) == (other.state, other.ended, other.step)
    assert other.verified is not None


def _unquestioned(heard: list[str]) -> list[str]:
    return ["(question)" if "school" in text or "colour" in text else text for text in heard]




class KillsAWorker(HttpTransport):
    """Makes Redis slow for the PIN step's first delivery and kills the worker serving it."""

    def __init__(self, proxy: SlowProxy, master: int) -> None:
        self.proxy = proxy
        self.master = master
        self.killed: list[int] = []
        self.pin_deliveries = 0

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        timeout: float,
    ) -> HttpResult:
        if params.get("Digits") == PIN:
            self.pin_deliveries += 1
            if not self.killed:
                self.proxy.delay = 0.4
                threading.Timer(0.7, self._kill).start()
        return super().request(method, url, params, headers, timeout)

    def _kill(self) -> None:
        for pid in workers(self.master):
            os.kill(pid, signal.SIGKILL)
            self.killed.append(pid)
        self.proxy.delay = 0.0


def test_a_worker_killed_mid_request_is_completed_once_by_twilios_retry(
    redis_store: object, redis_client: redis.Redis, tmp_path: Path
) -> None:
    url = redis.connection.parse_url(TEST_REDIS_URL)
    proxy = SlowProxy((url.get("host", "127.0.0.1"), int(url.get("port", 6379))))
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = service_env(public, tmp_path, REDIS_URL=f"redis://127.0.0.1:{proxy.port}/{url['db']}")
    settings = Settings.from_env(env)
    enrol(Callflow(settings))
    try:
        with running_gunicorn(env, port, tmp_path / "gunicorn.log", workers=1) as master:
            transport = KillsAWorker(proxy, master.pid)
            started = time.monotonic()
            heard, sid = _call(Simulator(transport, AUTH_TOKEN), public, "+441632960003")
            elapsed = time.monotonic() - started
    finally:
        proxy.close()

    assert transport.killed, "a worker was killed mid-request"
    assert transport.pin_deliveries == 2, "Twilio's one retry delivered the PIN again"
    questions = [text for text in heard if "school" in text or "colour" in text]
    assert len(questions) == 1, heard
    assert any("You are verified as calling from Tax Aid" in text for text in heard)
    direct = Callflow(settings.with_overrides({"redis_url": TEST_REDIS_URL}))
    session = direct.store.get_session(sid)
    assert session is not None and session.verified is not None
    fails = redis_client.get(f"cf:{{adv:{ADVISER}}}:fails")
    assert fails in (None, "0"), "the PIN was counted once, and as right"
    assert elapsed < 15
