"""One contract, run against every store: the in-memory one and the real Redis."""

from __future__ import annotations

import pytest

from callflow.clock import ManualClock
from callflow.store import MemoryStore, Store
from callflow.store.redis import RedisStore
from tests.rigs.store_contracts import (
    DocumentContract,
    FollowContract,
    IndexContract,
    StoreContract,
    session,
)


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Store:
        return MemoryStore()

    def test_sessions_expire(self) -> None:
        clock = ManualClock()
        store = MemoryStore(clock)
        s = session()
        store.lease_session(s.call_sid, "t", 5000)
        store.save_session(s, 0, "t", 60)
        clock.advance(61)
        assert store.get_session(s.call_sid) is None

    def test_a_lapsed_lease_can_be_taken(self) -> None:
        clock = ManualClock()
        store = MemoryStore(clock)
        store.lease_session("CA" + "3" * 32, "t1", 5000)
        clock.advance(6)
        assert store.lease_session("CA" + "3" * 32, "t2", 5000).held


class TestRedisStore(StoreContract):
    @pytest.fixture
    def store(self, redis_store: RedisStore) -> Store:
        return redis_store

    def test_keys_carry_a_per_call_hash_tag_and_expire(self, redis_store: RedisStore) -> None:
        s = session()
        redis_store.lease_session(s.call_sid, "t", 5000)
        redis_store.save_session(s, 0, "t", 3600)
        key = f"cf:call:{{{s.call_sid}}}"
        assert redis_store.client.exists(key)
        assert 3500 < redis_store.client.ttl(key) <= 3600
        assert not redis_store.client.exists(key + ":lease")










class TestMemoryIndexes(IndexContract):
    @pytest.fixture
    def store(self) -> Store:
        return MemoryStore()


class TestRedisIndexes(IndexContract):
    @pytest.fixture
    def store(self, redis_store: RedisStore) -> Store:
        return redis_store


class TestMemoryDocuments(DocumentContract):
    @pytest.fixture
    def store(self) -> Store:
        return MemoryStore()

    def test_documents_expire(self) -> None:
        clock = ManualClock()
        store = MemoryStore(clock)
        store.put_doc("grants", "g", {"x": 1}, ttl_seconds=10)
        clock.advance(11)
        assert store.get_doc("grants", "g") is None and store.list_docs("grants") == []


class TestRedisDocuments(DocumentContract):
    @pytest.fixture
    def store(self, redis_store: RedisStore) -> Store:
        return redis_store

    def test_documents_expire_and_leave_the_index(self, redis_store: RedisStore) -> None:
        redis_store.put_doc("grants", "g", {"x": 1}, ttl_seconds=100)
        assert 0 < redis_store.client.ttl("cf:{grants}:doc:g") <= 100
        redis_store.client.delete("cf:{grants}:doc:g")
        assert redis_store.list_docs("grants") == []
        assert not redis_store.client.sismember("cf:{grants}:keys", "g")




class TestMemoryFollow(FollowContract):
    @pytest.fixture
    def store(self) -> Store:
        return MemoryStore()


class TestRedisFollow(FollowContract):
    @pytest.fixture
    def store(self, redis_store: RedisStore) -> Store:
        return redis_store
