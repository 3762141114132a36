"""Redis slowed by seconds: answers stay inside Twilio's budget, and the breaker trips.

A TCP proxy between the service and the test Redis holds every request from the service
back by a delay the test sets, which is how a Redis that is swapping, blocked by a slow
script or across a congested link looks to a client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from random import Random

import pytest
import redis

from callflow.service import Callflow
from callflow.store.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from callflow.store.redis import RedisStore
from tests.conftest import ADVISER, PIN, TEST_REDIS_URL, Caller, enrol, make_settings
from tests.rigs import eventually
from tests.rigs.faults import SlowProxy, redis_db
from webhooks import create_app

APOLOGY = "technical problem"




@pytest.fixture
def proxy(redis_client: redis.Redis) -> Iterator[SlowProxy]:
    redis_client.flushdb()
    url = redis.connection.parse_url(TEST_REDIS_URL)
    slow = SlowProxy((url.get("host", "127.0.0.1"), int(url.get("port", 6379))))
    yield slow
    slow.close()
    redis_client.flushdb()




def _service(proxy: SlowProxy, timeout: float, budget: float, breaker: CircuitBreaker) -> Callflow:
    store = RedisStore.from_url(
        f"redis://127.0.0.1:{proxy.port}/{redis_db()}", socket_timeout=timeout, breaker=breaker
    )
    settings = make_settings(redis_socket_timeout=timeout, webhook_budget_seconds=budget)
    service = Callflow(settings, store=store, rng=Random(5))
    enrol(service)
    return service


def _timed(step: Callable[[], object]) -> float:
    started = time.monotonic()
    step()
    return time.monotonic() - started


def test_redis_slower_than_its_timeout_trips_the_breaker_and_recovers(
    proxy: SlowProxy, redis_client: redis.Redis
) -> None:
    timeout, budget = 0.3, 1.0
    breaker = CircuitBreaker(threshold=3, cooldown=1.0)
    service = _service(proxy, timeout, budget, breaker)
    client = create_app({"CALLFLOW_SERVICE": service}).test_client()
    caller = Caller(client)
    caller.start()
    state_before = service.store.get_session(caller.call_sid)
    assert state_before is not None

    proxy.delay = 2.0  # far longer than the socket timeout: every command times out
    elapsed = _timed(lambda: caller.press(ADVISER))
    assert elapsed < budget + timeout + 0.5, f"answered after {elapsed:.2f}s"
    assert APOLOGY in " ".join(caller.says())
    assert caller.last is not None and caller.last.find("Hangup") is not None

    # More callers, until the breaker has seen enough failures in a row.
    for _ in range(3):
        if breaker.state == OPEN:
            break
        newcomer = Caller(client)
        elapsed = _timed(newcomer.start)
        assert elapsed < budget + timeout + 0.5
        assert APOLOGY in " ".join(newcomer.says())
    assert breaker.state == OPEN

    # Open: the apology comes at once, without a byte sent to Redis.
    sent = proxy.chunks
    fast = Caller(client)
    elapsed = _timed(fast.start)
    assert elapsed < 0.2, f"an open breaker still waited {elapsed:.2f}s"
    assert APOLOGY in " ".join(fast.says())
    assert proxy.chunks == sent

    # Redis recovers; after the cooldown one probe closes the breaker and calls go through.
    proxy.delay = 0.0
    eventually(lambda: breaker.state == HALF_OPEN, timeout=breaker.cooldown + 5)
    after = Caller(client)
    after.verify()
    assert breaker.state == CLOSED
    assert after.last is not None and after.last.find("Dial/Conference") is not None
    # The first caller was never moved on by the step that timed out.
    state_after = service.store.get_session(caller.call_sid)
    assert state_after is not None and state_after.state == state_before.state
    assert state_after.verified is None


def test_redis_slow_but_inside_its_timeout_is_cut_by_the_webhook_budget(
    proxy: SlowProxy,
) -> None:
    timeout, budget = 1.0, 0.5
    breaker = CircuitBreaker(threshold=3, cooldown=1.0)
    service = _service(proxy, timeout, budget, breaker)
    client = create_app({"CALLFLOW_SERVICE": service}).test_client()

    caller = Caller(client)
    caller.start()
    caller.press(ADVISER)
    before = service.store.get_session(caller.call_sid)
    assert before is not None

    proxy.delay = 0.2  # each round trip answers, but checking a PIN takes several
    elapsed = _timed(lambda: caller.press(PIN))
    assert elapsed < budget + proxy.delay + 0.3, f"answered after {elapsed:.2f}s"
    assert APOLOGY in " ".join(caller.says())
    assert breaker.state == CLOSED, "a spent budget is not Redis failing"
    proxy.delay = 0.0
    after = service.store.get_session(caller.call_sid)
    assert after is not None and (after.state, after.rev) == (before.state, before.rev)


def test_a_retry_is_once_and_only_for_a_dead_connection() -> None:
    store = RedisStore.from_url(TEST_REDIS_URL, socket_timeout=0.5)
    retry = store.client.connection_pool.connection_kwargs["retry"]
    assert retry.get_retries() == 1
    assert set(retry._supported_errors) == {redis.exceptions.ConnectionError}


def test_the_breaker_opens_probes_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=5.0, clock=lambda: now[0])
    breaker.failure()
    assert breaker.state == CLOSED
    breaker.success()
    breaker.failure()
    assert breaker.state == CLOSED, "a success in between resets the count"
    breaker.failure()
    assert breaker.state == OPEN
    with pytest.raises(Exception, match="circuit open"):
        breaker.before()
    now[0] = 5.0
    breaker.before()  # the probe
    with pytest.raises(Exception, match="probe"):
        breaker.before()  # only one at a time
    breaker.failure()
    assert breaker.state == OPEN, "a failed probe opens it again"
    now[0] = 9.0
    with pytest.raises(Exception, match="circuit open"):
        breaker.before()
    now[0] = 10.5
    breaker.before()
    breaker.success()
    assert breaker.state == CLOSED
    breaker.before()
