"""The session commands every webhook runs go straight to a connection of the thread's own
(callflow/store/redis.py, ``_Direct``): the same answers and the same failure rules as
redis-py's pooled path, without its per-command overhead."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from callflow.errors import StoreUnavailable
from callflow.session import CallSession
from callflow.store.redis import RedisStore
from tests.conftest import TEST_REDIS_URL
from tests.rigs.faults import SlowProxy, redis_db


def _session(call_sid: str) -> CallSession:
    return CallSession(
        call_sid=call_sid, flow="vstrs_inbound", flow_version="v1", state="welcome", started_at=1.0
    )


def _own_client_id(store: RedisStore) -> int:
    """The CLIENT ID of this thread's session connection."""
    direct = store._direct
    assert direct is not None
    return int(direct.execute("CLIENT", "ID"))


def test_the_session_commands_answer_as_the_pooled_path_does(redis_store: RedisStore) -> None:
    sid = "CA" + "1" * 32
    assert redis_store.create_session(_session(sid), 60).outcome == "created"
    assert redis_store.create_session(_session(sid), 60).outcome == "exists"
    lease = redis_store.lease_session(sid, "token", 5000)
    assert lease.held and lease.session is not None and lease.session.state == "welcome"
    assert not redis_store.lease_session(sid, "other", 5000).held
    lease.session.state = "ask_pin"
    assert redis_store.save_session(lease.session, 1, "token", 60)
    assert not redis_store.save_session(lease.session, 1, "token", 60), "a stale revision"
    stored = redis_store.get_session(sid)
    assert stored is not None and (stored.state, stored.rev) == ("ask_pin", 2)
    # The pooled client sees exactly what the direct path wrote.
    assert redis_store.client.hget(f"cf:call:{{{sid}}}", "rev") == "2"
    assert redis_store.get_adviser("no-such-adviser") is None


def test_a_connection_killed_under_it_is_tried_once_more(
    redis_store: RedisStore, redis_client: redis.Redis
) -> None:
    """A connection that died (a Redis restart, a proxy dropping it) costs one retry on a
    new connection, not an apology to the caller."""
    sid = "CA" + "2" * 32
    redis_store.create_session(_session(sid), 60)
    killed = _own_client_id(redis_store)
    redis_client.execute_command("CLIENT", "KILL", "ID", str(killed))
    lease = redis_store.lease_session(sid, "token", 5000)
    assert lease.held and lease.session is not None
    assert _own_client_id(redis_store) != killed


def test_scripts_flushed_from_redis_are_loaded_again(
    redis_store: RedisStore, redis_client: redis.Redis
) -> None:
    redis_client.script_flush()
    sid = "CA" + "3" * 32
    assert redis_store.create_session(_session(sid), 60).outcome == "created"
    assert redis_store.lease_session(sid, "token", 5000).held


def test_each_thread_has_a_connection_of_its_own(redis_store: RedisStore) -> None:
    ids: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for n in range(20):
            sid = f"CA{threading.get_ident() % 10**8:08d}{n:024d}"
            assert redis_store.create_session(_session(sid), 60).outcome == "created"
        with lock:
            ids.append(_own_client_id(redis_store))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 4


def test_threads_that_come_and_go_leave_no_connection_behind(
    redis_store: RedisStore, redis_client: redis.Redis
) -> None:
    """More threads than the pool's limit (redis-py's default is 100), each running a
    webhook's commands and ending: none is refused, and their connections close."""
    limit = redis_store.client.connection_pool.max_connections
    errors: list[BaseException] = []
    before = int(redis_client.info("clients")["connected_clients"])

    def work(n: int) -> None:
        try:
            redis_store.create_session(_session(f"CA{n:032d}"), 60)
        except BaseException as exc:
            errors.append(exc)

    for batch in range(3):
        threads = [threading.Thread(target=work, args=(batch * limit + n,)) for n in range(limit)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = int(redis_client.info("clients")["connected_clients"]) - before
        if left <= 2:
            break
        time.sleep(0.1)
    assert left <= 2, f"{left} more connections open than before"


def test_a_timeout_is_never_retried(redis_client: redis.Redis) -> None:
    """A command that timed out may have run: it is not sent again, the connection it was
    on is dropped, and the store reports itself unavailable."""
    redis_client.flushdb()
    url = redis.connection.parse_url(TEST_REDIS_URL)
    proxy = SlowProxy((url.get("host", "127.0.0.1"), int(url.get("port", 6379))))
    try:
        store = RedisStore.from_url(f"redis://127.0.0.1:{proxy.port}/{redis_db()}", socket_timeout=0.3)
        sid = "CA" + "4" * 32
        store.create_session(_session(sid), 60)
        sent = proxy.chunks
        proxy.delay = 1.0
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.lease_session(sid, "token", 5000)
        assert time.monotonic() - started < 0.9, "waited for one timeout, not two"
        lease = f"cf:call:{{{sid}}}:lease"
        deadline = time.monotonic() + 5
        while redis_client.get(lease) != "token":  # the delayed command reaches Redis
            assert time.monotonic() < deadline, "the timed-out command never ran"
            time.sleep(0.05)
        # A resend would have come at the timeout, long before: the proxy counts on arrival.
        assert proxy.chunks - sent == 1, "the command was sent once"
        proxy.delay = 0.0
        assert redis_client.get(lease) == "token", "it did run, once"
    finally:
        proxy.close()
        redis_client.flushdb()
