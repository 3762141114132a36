"""The Redis store (redis-py). Works on a single server and on Redis Cluster.

Keys (``{...}`` is the Cluster hash tag, so one call's or one adviser's keys share a slot):

    cf:call:{<CallSid>}            hash: rev, doc (the session as JSON)
    cf:call:{<CallSid>}:lease      the token of the webhook working on the call
    cf:{dir}:adviser:<number>      the adviser record as JSON
    cf:{dir}:advisers              set of adviser numbers
    cf:{adv:<number>}:guard        hash: consecutive failures, locks, each calling number's
                                   attempts in its window (see docs/lockout.md)
    cf:{adv:<number>}:known        sorted set: calling numbers that verified the adviser
    cf:{adv:<number>}:hard         present while hard-locked (no expiry)
    cf:{audit}                     stream of audit entries (with :seq, :epoch, :anchor)
    cf:flow:<version>              hash: name, source
    cf:{<ns>}:doc:<key>            a document of namespace <ns> (agents, teams, tokens, ...)
    cf:{<ns>}:keys                 set of the namespace's document keys
    cf:claim:<key>                 who holds a claim
    cf:counter:<name>              hash of counters
    cf:{thr:<key>}                 a throttle's count in its window (console sign-in)
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import orjson
import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from .. import budget
from ..errors import AuditWriteFailed, StoreError, StoreUnavailable
from ..session import CallSession
from .base import (
    FACET_KEEP_SECONDS,
    TALLY_KEEP_SECONDS,
    Attempt,
    AuditState,
    Changed,
    Created,
    Guard,
    Lease,
    LockStatus,
    Seal,
    Store,
    TraceStep,
    Ttl,
    ttl_for,
)
from .breaker import CircuitBreaker

log = logging.getLogger(__name__)

# A call's session, its trace steps and an adviser's record are read or written by every
# webhook: orjson does it in about a tenth of the time json takes (a 1.5 KB session: 20 µs
# to 2 µs written, 14 µs to 4 µs read). The text is JSON either way; json reads it back.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def _fast_dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_ORJSON_OPTIONS)


_fast_loads = orjson.loads

P = ParamSpec("P")
R = TypeVar("R")

# The audit stream, its sequence counter, its epoch and its anchor share a hash tag: one slot.
AUDIT, AUDIT_SEQ = "cf:{audit}", "cf:{audit}:seq"
AUDIT_EPOCH, AUDIT_ANCHOR = "cf:{audit}:epoch", "cf:{audit}:anchor"
AUDIT_TALLY = "cf:{audit}:tally:"  # + YYYY-MM-DD: that day's tallies (callflow.tallies)
AUDIT_FACET = "cf:{audit}:ix:"  # + facet (kind:..., org:..., adviser:..., call:...)
AUDIT_FACETS = "cf:{audit}:facets"  # the facet keys the retention pass trims

# The next sequence number, and the store's epoch with the first (one round trip).
# An entry's stream id follows the service's clock (its "at"), so a period is a range of
# ids; should that run behind the stream's newest id (clocks of two instances), Redis's own.
# ARGV: the entry's time (ms), the entry, how long tallies live, how many tallies, the
# tallies, how long facets live, then for each facet key (KEYS[3...]) whether it is kept
# in the registry the retention pass trims ('1'; a call's facet lives by its TTL alone).
# A facet's score is the entry's stream id as a number (ms + seq/1000): exact ordering,
# and an id is a cursor.
_AUDIT_ADD = """
local ok, id = pcall(redis.call, 'XADD', KEYS[1], ARGV[1] .. '-*', 'e', ARGV[2])
if not ok then id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[2]) end
local n = tonumber(ARGV[4])
if n > 0 then
  for i = 5, 4 + n do redis.call('HINCRBY', KEYS[2], ARGV[i], 1) end
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
if #KEYS > 3 then
  local ms, sq = string.match(id, '^(%d+)-(%d+)$')
  local score = tonumber(ms) + math.min(tonumber(sq), 999) / 1000
  local keep = ARGV[5 + n]
  for i = 4, #KEYS do
    redis.call('ZADD', KEYS[i], score, id)
    redis.call('EXPIRE', KEYS[i], keep)
    if ARGV[5 + n + i - 3] == '1' then redis.call('SADD', KEYS[3], KEYS[i]) end
  end
end
return id
"""

_AUDIT_SEQ = """
local n = redis.call('INCR', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], ARGV[1]) end
return n
"""

_LEASE_AND_LOAD = """
local ok = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
if not ok then
  if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {0} end
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
local doc = redis.call('HGET', KEYS[1], 'doc')
if doc then return {1, doc} end
return {1}
"""

# A webhook's step of the call's trace goes with the save (KEYS[3], the call's slot): the
# step, how long the trace is kept, how many steps at most.
_SAVE = """
local current = redis.call('HGET', KEYS[1], 'rev') or '0'
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
if current ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'rev', ARGV[3], 'doc', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
if ARGV[6] ~= '' then
  if redis.call('LLEN', KEYS[3]) < tonumber(ARGV[8]) then redis.call('RPUSH', KEYS[3], ARGV[6]) end
  redis.call('EXPIRE', KEYS[3], ARGV[7])
end
return 1
"""

_CREATE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {2} end
local doc = redis.call('HGET', KEYS[1], 'doc')
if doc then return {1, doc} end
redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'doc', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if ARGV[4] ~= '' then
  redis.call('DEL', KEYS[3])
  redis.call('RPUSH', KEYS[3], ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
return {0}
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# An adviser's lockout state, one hash in the adviser's slot: fails (consecutive attempts
# from numbers that have not verified the adviser lately, counted before each is checked),
# locked_until, and p:<calling number> = "attempts:window end:consecutive failures"; it is
# forgotten failure_memory seconds after the last write. The hard lock is a key of its own
# that never expires (only a verification from a known number or an admin lifts it).
# Known numbers: a sorted set of calling number -> when it last verified the adviser.
_BEGIN_ATTEMPT = """
local function ms(x) return string.format('%.3f', math.floor(x * 1000) / 1000) end
local h, kz, hk = KEYS[1], KEYS[2], KEYS[3]
local caller, now = ARGV[1], tonumber(ARGV[2])
local limit, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local known_since, hard_limit, memory = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local threshold, lock = tonumber(ARGV[8]), tonumber(ARGV[9])
local relay = ARGV[10] == '1'
local known = 0
local f = 'p:' .. caller
local n, untl, consec = 0, 0, 0
if not relay then
  local seen = redis.call('ZSCORE', kz, caller)
  if seen and tonumber(seen) >= known_since then known = 1 end
  local v = redis.call('HGET', h, f)
  if v then
    local a, b, c = string.match(v, '([^:]+):([^:]+):([^:]+)')
    n, untl, consec = tonumber(a), tonumber(b), tonumber(c)
  end
  if untl <= now then n, untl = 0, now + window end
  if n >= limit then
    local first = 0
    if n == limit then
      first = 1
      redis.call('HSET', h, f, (n + 1) .. ':' .. ms(untl) .. ':' .. consec)
    end
    return {0, 'throttled', known, first}
  end
  if consec >= hard_limit then return {0, 'hard_locked', known, 0} end
end
if known == 0 then
  if redis.call('EXISTS', hk) == 1 then return {0, 'hard_locked', 0, 0} end
  local fails = tonumber(redis.call('HGET', h, 'fails') or '0')
  if fails >= threshold and tonumber(redis.call('HGET', h, 'locked_until') or '0') > now then
    return {0, 'locked', 0, 0}
  end
  fails = redis.call('HINCRBY', h, 'fails', 1)
  if fails >= hard_limit then
    redis.call('SET', hk, ms(now))
  elseif fails >= threshold then
    redis.call('HSET', h, 'locked_until', ms(now + lock))
  end
  if not relay then redis.call('HSET', h, f, (n + 1) .. ':' .. ms(untl) .. ':' .. consec) end
  redis.call('EXPIRE', h, memory)
  return {1, 'ok', 0, 0, fails}
end
redis.call('HSET', h, f, (n + 1) .. ':' .. ms(untl) .. ':' .. consec)
redis.call('EXPIRE', h, memory)
return {1, 'ok', known, 0, 0}
"""

_ATTEMPT_FAILED = """
local function ms(x) return string.format('%.3f', math.floor(x * 1000) / 1000) end
local h = KEYS[1]
local caller, hard_limit, memory = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local f = 'p:' .. caller
local n, untl, consec = 0, 0, 0
local v = redis.call('HGET', h, f)
if v then
  local a, b, c = string.match(v, '([^:]+):([^:]+):([^:]+)')
  n, untl, consec = tonumber(a), tonumber(b), tonumber(c)
end
consec = consec + 1
redis.call('HSET', h, f, n .. ':' .. ms(untl) .. ':' .. consec)
redis.call('EXPIRE', h, memory)
if consec == hard_limit then return 1 end
return 0
"""

_ATTEMPT_SUCCEEDED = """
local h, kz, hk = KEYS[1], KEYS[2], KEYS[3]
local caller, now, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('HDEL', h, 'fails', 'locked_until')
redis.call('DEL', hk)
if ARGV[4] == '1' then return 0 end
redis.call('HDEL', h, 'p:' .. caller)
redis.call('ZADD', kz, now, caller)
redis.call('ZREMRANGEBYSCORE', kz, '-inf', '(' .. tostring(now - keep))
redis.call('EXPIRE', kz, keep)
return 0
"""

_ADD_ADVISER = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""


_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


# A throttle is "count:until" (until: the end of its window on the service's clock).
_TAKE = """
local function ms(x) return string.format('%.3f', math.floor(x * 1000) / 1000) end
local n, untl = 0, 0
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, ':')
  n, untl = tonumber(string.sub(v, 1, sep - 1)), tonumber(string.sub(v, sep + 1))
end
local now = tonumber(ARGV[3])
if untl <= now then n, untl = 0, now + tonumber(ARGV[2]) end
if n > tonumber(ARGV[1]) then return n + 1 end
n = n + 1
redis.call('SET', KEYS[1], n .. ':' .. ms(untl), 'EX', math.ceil(untl - now) + 1)
return n
"""

_GIVE_BACK = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local sep = string.find(v, ':')
local n = tonumber(string.sub(v, 1, sep - 1))
if n > 0 then redis.call('SET', KEYS[1], (n - 1) .. string.sub(v, sep), 'KEEPTTL') end
return 0
"""


_depth: ContextVar[int] = ContextVar("callflow_store_depth", default=0)


def _unavailable(func: Callable[P, R]) -> Callable[P, R]:
    """Guard one store operation: budget, circuit breaker, and errors in the store's terms.

    Connection failures and timeouts become StoreUnavailable (and count against the
    breaker); other Redis errors become StoreError. Only the outermost operation checks.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _depth.get():
            return func(*args, **kwargs)
        store = args[0]
        breaker: CircuitBreaker = store.breaker  # type: ignore[attr-defined]
        left = budget.remaining()
        if left is not None and left <= 0:
            raise StoreUnavailable("the request's time budget is spent")
        breaker.before()
        budget.count_operation()
        token = _depth.set(1)
        try:
            result = func(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            breaker.failure()
            raise StoreUnavailable(f"Redis unreachable: {exc}") from exc
        except redis.RedisError as exc:
            breaker.success()
            raise StoreError(f"Redis error: {exc}") from exc
        except StoreUnavailable:
            breaker.failure()
            raise
        except BaseException:
            breaker.success()
            raise
        finally:
            _depth.reset(token)
        breaker.success()
        return result

    return wrapper


def _score(entry_id: str) -> str:
    """An audit entry's stream id as its facets' score: ms + seq/1000 (see _AUDIT_ADD)."""
    ms, _, seq = entry_id.partition("-")
    return repr(int(ms) + min(int(seq or 0), 999) / 1000)


def _ms(at: Any) -> str:
    """Milliseconds since 1970 of an entry's ISO time (its stream id's first part)."""
    from datetime import datetime

    try:
        return str(int(datetime.fromisoformat(str(at)).timestamp() * 1000))
    except ValueError:
        return str(int(time.time() * 1000))


def _call_key(call_sid: str) -> str:
    return f"cf:call:{{{call_sid}}}"


def _adviser_keys(number: str) -> tuple[str, str, str]:
    """An adviser's lockout state, known calling numbers and hard lock (one slot)."""
    return (
        f"cf:{{adv:{number}}}:guard",
        f"cf:{{adv:{number}}}:known",
        f"cf:{{adv:{number}}}:hard",
    )


def _lock_status(
    state: dict[str, str], known: list[tuple[str, float]], hard: int, now: float
) -> LockStatus:
    """An adviser's lockout state as read back from its three keys."""
    numbers = {}
    for field, value in state.items():
        if field.startswith("p:"):
            count, until, consec = (float(x) for x in value.split(":"))
            if until > now or consec:
                numbers[field[2:]] = (int(count), max(until - now, 0.0), int(consec))
    return LockStatus(
        int(state.get("fails", 0)),
        max(float(state.get("locked_until", 0)) - now, 0.0),
        bool(hard),
        numbers,
        {caller: float(at) for caller, at in known},
    )


class _Owned:
    """A thread's own connection, closed when the thread ends: its thread-local slot is
    the only reference, so it goes as the thread does (the connection object itself sits
    in reference cycles and would wait for the garbage collector)."""

    __slots__ = ("conn",)

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # a thread ending: nothing to tell anyone
            self.conn.disconnect()


class _Direct:
    """The webhook path's own commands, on a connection the calling thread keeps.

    Every webhook leases, loads and saves its call session (a new call creates it).
    redis-py's general path takes a connection from the pool and gives it back, wraps
    the command in its retry object and runs the reply through its callbacks: about
    25 µs of CPU a command, measured (bench/README.md), on commands whose replies need
    none of it. Here each thread sends them on a connection of its own, with the same
    rules as the pool's: one more try when the connection failed (a connection that died
    with a Redis restart), never after a timeout (the command may have run); a
    connection left in doubt is closed. Redis Cluster keeps the cluster client's path.
    """

    def __init__(self, client: Any) -> None:
        self._pool = client.connection_pool
        self._local = threading.local()

    def _connection(self) -> Any:
        owned = getattr(self._local, "owned", None)
        if owned is None or owned.conn.pid != os.getpid():  # new thread, or forked child
            # Made outside the pool's count (its limit is for pooled connections).
            conn = self._pool.connection_class(**self._pool.connection_kwargs)
            owned = self._local.owned = _Owned(conn)
        return owned.conn

    def execute(self, *args: Any) -> Any:
        conn = self._connection()
        try:
            return self._once(conn, args)
        except RedisConnectionError:
            return self._once(conn, args)  # disconnected: the next send reconnects

    @staticmethod
    def _once(conn: Any, args: tuple[Any, ...]) -> Any:
        try:
            conn.send_command(*args)
            return conn.read_response()
        except ResponseError:
            raise  # Redis answered (an error reply): the connection is in step
        except BaseException:
            conn.disconnect()  # a reply may be unread: never reuse the connection
            raise

    def script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted or SCRIPT FLUSH: load it, once
            self.execute("SCRIPT", "LOAD", script.script)
            return self.execute("EVALSHA", script.sha, len(keys), *keys, *args)


class RedisStore(Store):
    """The store on a Redis server (or cluster) through redis-py."""

    kind = "redis"

    def __init__(self, client: Any, breaker: CircuitBreaker | None = None) -> None:
        super().__init__()
        # redis-py's annotations cover bytes and str replies at once; ours are str.
        self.client: Any = client
        self.breaker = breaker or CircuitBreaker()
        self._lease_and_load = client.register_script(_LEASE_AND_LOAD)
        self._save = client.register_script(_SAVE)
        self._create = client.register_script(_CREATE)
        self._release = client.register_script(_RELEASE)
        self._begin_attempt = client.register_script(_BEGIN_ATTEMPT)
        self._attempt_failed = client.register_script(_ATTEMPT_FAILED)
        self._attempt_succeeded = client.register_script(_ATTEMPT_SUCCEEDED)
        self._add_adviser = client.register_script(_ADD_ADVISER)
        self._claim = client.register_script(_CLAIM)
        self._audit_seq = client.register_script(_AUDIT_SEQ)
        self._audit_add = client.register_script(_AUDIT_ADD)
        self._take = client.register_script(_TAKE)
        self._give_back = client.register_script(_GIVE_BACK)
        pool = getattr(client, "connection_pool", None)
        if pool is None:  # Redis Cluster: blocking reads go through the cluster client
            self._blocking: Any = client
        else:
            blocking_pool = redis.ConnectionPool(
                connection_class=pool.connection_class,
                **{**pool.connection_kwargs, "socket_timeout": 30.0},
            )
            self._blocking = redis.Redis(connection_pool=blocking_pool)
        #: The session commands every webhook runs (None on Redis Cluster).
        self._direct = _Direct(client) if pool is not None else None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float = 2.0,
        breaker: CircuitBreaker | None = None,
    ) -> RedisStore:
        """Connect lazily to ``url`` with short timeouts, so a dead Redis fails fast.

        ``redis+cluster://host:port`` (any one node) uses Redis Cluster.

        redis-py 6+ retries a failed command ten times with backoff by default; with a
        socket timeout of seconds that alone would overrun Twilio's 15-second budget, and
        a command that timed out may have run, so a retry could apply it twice. Here a
        command is retried once, and only when the connection failed (a pooled connection
        that died with a Redis restart), never after a timeout.
        """
        retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        common: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": min(socket_timeout, 1.0),
            "decode_responses": True,
            "retry": retry,
        }
        if url.startswith(("redis+cluster://", "rediss+cluster://")):
            from redis.cluster import RedisCluster

            cluster = RedisCluster.from_url(url.replace("+cluster", "", 1), **common)
            return cls(cluster, breaker)
        client = redis.Redis.from_url(url, health_check_interval=30, **common)
        return cls(client, breaker)

    def on_recover(self, callback: Callable[[], None]) -> None:
        self.breaker.on_recover(callback)

    # -- the webhook path's commands

    def _script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        if self._direct is None:
            return script(keys=keys, args=args)
        return self._direct.script(script, keys, args)

    def _command(self, *args: Any) -> Any:
        if self._direct is None:
            return self.client.execute_command(*args)
        return self._direct.execute(*args)

    # -- call sessions

    @_unavailable
    def lease_session(self, call_sid: str, token: str, lease_ms: int) -> Lease:
        key = _call_key(call_sid)
        reply = self._script(self._lease_and_load, [key, key + ":lease"], [token, lease_ms])
        if not reply[0]:
            return Lease(False, None)
        return Lease(True, CallSession.from_dict(_fast_loads(reply[1])) if len(reply) > 1 else None)

    @_unavailable
    def save_session(
        self,
        session: CallSession,
        expected_rev: int,
        token: str,
        ttl_seconds: int,
        trace: TraceStep | None = None,
    ) -> bool:
        key = _call_key(session.call_sid)
        new_rev = expected_rev + 1
        doc = _fast_dumps({**session.to_dict(), "rev": new_rev})
        step = _fast_dumps(trace.step) if trace else ""
        saved = self._script(
            self._save,
            [key, key + ":lease", key + ":trace"],
            [
                token,
                expected_rev,
                new_rev,
                doc,
                ttl_seconds,
                step,
                trace.ttl_seconds if trace else 0,
                trace.max_steps if trace else 0,
            ],
        )
        if saved:
            session.rev = new_rev
        return bool(saved)

    @_unavailable
    def create_session(
        self, session: CallSession, ttl_seconds: int, trace: TraceStep | None = None
    ) -> Created:
        key = _call_key(session.call_sid)
        doc = _fast_dumps({**session.to_dict(), "rev": 1})
        step = _fast_dumps(trace.step) if trace else ""
        reply = self._script(
            self._create,
            [key, key + ":lease", key + ":trace"],
            [1, doc, ttl_seconds, step, trace.ttl_seconds if trace else 0],
        )
        if reply[0] == 0:
            session.rev = 1
            return Created("created")
        if reply[0] == 1:
            return Created("exists", CallSession.from_dict(_fast_loads(reply[1])))
        return Created("busy")

    @_unavailable
    def release_session(self, call_sid: str, token: str) -> None:
        self._script(self._release, [_call_key(call_sid) + ":lease"], [token])

    @_unavailable
    def trace_steps(self, call_sid: str) -> list[dict[str, Any]]:
        raw = self._command("LRANGE", _call_key(call_sid) + ":trace", 0, -1)
        return [_fast_loads(item) for item in raw or []]

    @_unavailable
    def get_session(self, call_sid: str) -> CallSession | None:
        doc = self._command("HGET", _call_key(call_sid), "doc")
        return CallSession.from_dict(_fast_loads(doc)) if doc else None

    # -- directory

    @_unavailable
    def get_adviser(self, number: str) -> dict[str, Any] | None:
        raw = self._command("GET", f"cf:{{dir}}:adviser:{number}")
        return _fast_loads(raw) if raw else None

    @_unavailable
    def add_adviser(self, number: str, record: dict[str, Any]) -> bool:
        keys = [f"cf:{{dir}}:adviser:{number}", "cf:{dir}:advisers"]
        return bool(self._add_adviser(keys=keys, args=[number, json.dumps(record)]))

    @_unavailable
    def put_adviser(self, number: str, record: dict[str, Any]) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.set(f"cf:{{dir}}:adviser:{number}", json.dumps(record))
        pipe.sadd("cf:{dir}:advisers", number)
        pipe.execute()

    @_unavailable
    def delete_adviser(self, number: str) -> bool:
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(f"cf:{{dir}}:adviser:{number}")
        pipe.srem("cf:{dir}:advisers", number)
        deleted = pipe.execute()[0]
        self.client.delete(*_adviser_keys(number))
        return bool(deleted)

    @_unavailable
    def count_advisers(self) -> int:
        return int(self.client.scard("cf:{dir}:advisers"))

    @_unavailable
    def list_advisers(self, offset: int = 0, count: int | None = None) -> list[dict[str, Any]]:
        # SORT ... ALPHA LIMIT: Redis orders the set and hands back one page of numbers.
        if count is None:
            numbers = self.client.sort("cf:{dir}:advisers", alpha=True)[offset:]
        else:
            numbers = self.client.sort("cf:{dir}:advisers", start=offset, num=count, alpha=True)
        if not numbers:
            return []
        raws = self.client.mget([f"cf:{{dir}}:adviser:{n}" for n in numbers])
        return [json.loads(raw) for raw in raws if raw]

    # -- lockout

    @_unavailable
    def begin_attempt(
        self, number: str, caller: str, now: float, guard: Guard, *, relay: bool = False
    ) -> Attempt:
        args = [
            caller,
            repr(now),
            guard.number_attempts,
            guard.number_window,
            repr(now - guard.known_seconds),
            guard.hard_limit,
            guard.failure_memory,
            guard.adviser_threshold,
            guard.lock_seconds,
            "1" if relay else "0",
        ]
        reply = self._begin_attempt(keys=list(_adviser_keys(number)), args=args)
        ordinal = int(reply[4]) if len(reply) > 4 else 0
        return Attempt(bool(reply[0]), str(reply[1]), bool(reply[2]), bool(reply[3]), ordinal)

    @_unavailable
    def attempt_failed(
        self, number: str, caller: str, now: float, guard: Guard, *, relay: bool = False
    ) -> bool:
        if relay:
            return False  # no number of its own: the attempt was counted when it began
        args = [caller, guard.hard_limit, guard.failure_memory]
        return bool(self._attempt_failed(keys=[_adviser_keys(number)[0]], args=args))

    @_unavailable
    def attempt_succeeded(
        self, number: str, caller: str, now: float, guard: Guard, *, relay: bool = False
    ) -> None:
        args = [caller, repr(now), guard.known_seconds, "1" if relay else "0"]
        self._attempt_succeeded(keys=list(_adviser_keys(number)), args=args)

    @_unavailable
    def lock_status(self, number: str, now: float) -> LockStatus:
        return self.lock_statuses([number], now)[0]

    @_unavailable
    def lock_statuses(self, numbers: Sequence[str], now: float) -> list[LockStatus]:
        pipe = self.client.pipeline(transaction=False)
        for number in numbers:
            state_key, known_key, hard_key = _adviser_keys(number)
            pipe.hgetall(state_key)
            pipe.zrange(known_key, 0, -1, withscores=True)
            pipe.exists(hard_key)
        replies = pipe.execute()
        return [
            _lock_status(replies[i], replies[i + 1], replies[i + 2], now)
            for i in range(0, len(replies), 3)
        ]

    @_unavailable
    def unlock(self, number: str) -> None:
        state_key, _known, hard_key = _adviser_keys(number)
        self.client.delete(state_key, hard_key)

    # -- audit

    @_unavailable
    def append_audit(
        self,
        entry: dict[str, Any],
        seal: Seal | None = None,
        seq: int | None = None,
        tally: Sequence[str] = (),
        facets: Sequence[str] = (),
    ) -> str:
        tally_key = f"{AUDIT_TALLY}{str(entry.get('at', ''))[:10]}"
        args: list[Any] = [_ms(entry.get("at")), "", TALLY_KEEP_SECONDS, len(tally), *tally]
        keys = [AUDIT, tally_key, AUDIT_FACETS, *(f"{AUDIT_FACET}{f}" for f in facets)]
        args += [FACET_KEEP_SECONDS, *("0" if f.startswith("call:") else "1" for f in facets)]
        if seal is None:
            args[1] = json.dumps(entry, separators=(",", ":"))
            return str(self._audit_add(keys=keys, args=args))
        if seq is None:
            counter = [AUDIT_SEQ, AUDIT_EPOCH]
            seq = int(self._audit_seq(keys=counter, args=[secrets.token_hex(8)]))
        record = {**entry, "seq": seq}
        record["hash"] = seal(record)
        args[1] = json.dumps(record, separators=(",", ":"))
        try:
            return str(self._audit_add(keys=keys, args=args))
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise AuditWriteFailed(f"Redis unreachable: {exc}", seq) from exc

    @_unavailable
    def audit_tallies(self, days: Sequence[str]) -> dict[str, dict[str, int]]:
        pipe = self.client.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(f"{AUDIT_TALLY}{day}")
        return {
            day: {field: int(n) for field, n in counts.items()}
            for day, counts in zip(days, pipe.execute(), strict=True)
            if counts
        }

    @_unavailable
    def replace_tallies(self, tallies: dict[str, dict[str, int]]) -> None:
        pipe = self.client.pipeline(transaction=True)
        for day, counts in tallies.items():
            key = f"{AUDIT_TALLY}{day}"
            pipe.delete(key)
            if counts:
                pipe.hset(key, mapping=counts)
                pipe.expire(key, TALLY_KEEP_SECONDS)
        pipe.execute()

    @_unavailable
    def audit_state(self) -> AuditState:
        taken, epoch, anchor = self.client.mget([AUDIT_SEQ, AUDIT_EPOCH, AUDIT_ANCHOR])
        anchor_id, _, anchor_seq = (anchor or "").partition(" ")
        return AuditState(int(taken or 0), epoch, anchor_id or None, int(anchor_seq or 0))

    @_unavailable
    def trim_audit(self, through_id: str, through_seq: int) -> int:
        ms, _, seq = through_id.partition("-")
        facets = sorted(self.client.smembers(AUDIT_FACETS))
        pipe = self.client.pipeline(transaction=True)
        pipe.set(AUDIT_ANCHOR, f"{through_id} {through_seq}")
        pipe.xtrim(AUDIT, minid=f"{ms}-{int(seq or 0) + 1}", approximate=False)
        for key in facets:  # the archived entries leave their facets' indexes too
            pipe.zremrangebyscore(key, "-inf", _score(through_id))
        trimmed = int(pipe.execute()[1])
        emptied = [k for k, n in zip(facets, self._pipe_exists(facets), strict=True) if not n]
        if emptied:
            self.client.srem(AUDIT_FACETS, *emptied)
        return trimmed

    def _pipe_exists(self, keys: Sequence[str]) -> list[int]:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        return [int(n) for n in pipe.execute()]

    def _entries_by_id(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        pipe = self.client.pipeline(transaction=False)
        for entry_id in ids:
            pipe.xrange(AUDIT, entry_id, entry_id, count=1)
        found = []
        for entry_id, rows in zip(ids, pipe.execute(), strict=True):
            if rows:  # an id whose entry was archived is skipped
                found.append({**json.loads(rows[0][1]["e"]), "id": entry_id})
        return found

    @_unavailable
    def audit_page(
        self,
        facet: str | None,
        since: float,
        until: float,
        *,
        before: str | None = None,
        after: str | None = None,
        count: int = 50,
    ) -> list[dict[str, Any]]:
        low, high = int(since * 1000), int(until * 1000)
        if facet is None:
            if after:
                rows = self.client.xrange(AUDIT, f"({after}", str(high), count=count)
                rows.reverse()
            else:
                top = f"({before}" if before else str(high)
                rows = self.client.xrevrange(AUDIT, top, str(low), count=count)
            return [{**json.loads(fields["e"]), "id": entry_id} for entry_id, fields in rows]
        key = f"{AUDIT_FACET}{facet}"
        if after:
            ids = self.client.zrangebyscore(
                key, f"({_score(after)}", high + 0.999, start=0, num=count
            )
            ids.reverse()
        else:
            ceiling: str | float = f"({_score(before)}" if before else high + 0.999
            ids = self.client.zrevrangebyscore(key, ceiling, low, start=0, num=count)
        return self._entries_by_id(ids)

    @_unavailable
    def audit_facet_values(self, name: str) -> list[str]:
        prefix = f"{AUDIT_FACET}{name}:"
        keys = self.client.smembers(AUDIT_FACETS)
        return sorted(key[len(prefix) :] for key in keys if key.startswith(prefix))

    @_unavailable
    def audit_facet_size(self, facet: str, since: float, until: float) -> int:
        low, high = int(since * 1000), int(until * 1000) + 0.999
        return int(self.client.zcount(f"{AUDIT_FACET}{facet}", low, high))

    @_unavailable
    def index_audit(self, indexed: Iterable[tuple[dict[str, Any], Sequence[str]]]) -> int:
        done = 0
        pipe = self.client.pipeline(transaction=False)
        for entry, facets in indexed:
            for facet in facets:
                key = f"{AUDIT_FACET}{facet}"
                pipe.zadd(key, {entry["id"]: float(_score(entry["id"]))})
                pipe.expire(key, FACET_KEEP_SECONDS)
                if not facet.startswith("call:"):
                    pipe.sadd(AUDIT_FACETS, key)
            done += 1
            if done % 500 == 0:
                pipe.execute()
        pipe.execute()
        return done

    @_unavailable
    def audit_between(
        self, since: float, until: float, after_id: str | None = None, count: int = 1000
    ) -> list[dict[str, Any]]:
        low = f"({after_id}" if after_id else str(int(since * 1000))
        rows = self.client.xrange(AUDIT, low, str(int(until * 1000)), count=count)
        return [{**json.loads(fields["e"]), "id": entry_id} for entry_id, fields in rows]

    @_unavailable
    def read_audit(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self.client.xrevrange(AUDIT, count=limit)
        return [{**json.loads(fields["e"]), "id": entry_id} for entry_id, fields in reversed(rows)]

    @_unavailable
    def audit_after(
        self, after_id: str, block_ms: int = 0, count: int = 100
    ) -> list[dict[str, Any]]:
        if block_ms:
            # A blocking read needs a socket that waits longer than the usual timeout.
            reply = self._blocking.xread({AUDIT: after_id}, count=count, block=block_ms)
        else:
            reply = self.client.xread({AUDIT: after_id}, count=count)
        rows = reply[0][1] if reply else []
        return [{**json.loads(fields["e"]), "id": entry_id} for entry_id, fields in rows]

    @_unavailable
    def last_audit_id(self) -> str:
        rows = self.client.xrevrange(AUDIT, count=1)
        return str(rows[0][0]) if rows else "0"

    # -- flows

    @_unavailable
    def put_flow(self, version: str, name: str, source: str) -> None:
        self.client.hset(f"cf:flow:{version}", mapping={"name": name, "source": source})

    @_unavailable
    def get_flow(self, version: str) -> tuple[str, str] | None:
        data = self.client.hgetall(f"cf:flow:{version}")
        return (data["name"], data["source"]) if data else None

    # -- documents

    @staticmethod
    def _doc_key(namespace: str, key: str) -> str:
        return f"cf:{{{namespace}}}:doc:{key}"

    @_unavailable
    def get_doc(self, namespace: str, key: str) -> dict[str, Any] | None:
        raw = self.client.get(self._doc_key(namespace, key))
        return json.loads(raw) if raw else None

    def _index_key(self, namespace: str, name: str) -> str:
        return f"cf:{{{namespace}}}:idx:{name}"

    def _write_ops(
        self,
        pipe: Any,
        namespace: str,
        key: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
        ttl: int | None,
    ) -> None:
        """Queue a document's write (or, ``new`` None, its deletion) with its index entries,
        inside the caller's MULTI: one atomic step (the keys share the namespace's slot)."""
        doc_key = self._doc_key(namespace, key)
        spec = self.indexes.get(namespace)
        if new is None:
            pipe.delete(doc_key)
        else:
            pipe.set(doc_key, json.dumps(new), ex=ttl or None)
        if spec is None:  # a small namespace, listed whole: keep its key set
            if new is None:
                pipe.srem(f"cf:{{{namespace}}}:keys", key)
            else:
                pipe.sadd(f"cf:{{{namespace}}}:keys", key)
            return
        before, after = self._entries(namespace, old), self._entries(namespace, new)
        for name in set(before) - set(after):
            pipe.zrem(self._index_key(namespace, name), key)
        for name, score in after.items():
            index_key = self._index_key(namespace, name)
            if before.get(name) != score:
                pipe.zadd(index_key, {key: score})
            if spec.keep_seconds is not None:
                # No index outlives the records it finds: stale entries trimmed, and the
                # index itself gone a retention period after its last write.
                pipe.zremrangebyscore(index_key, "-inf", f"({score - spec.keep_seconds}")
                pipe.expire(index_key, int(spec.keep_seconds) + 86400)

    def _replace(
        self,
        namespace: str,
        key: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        ttl_seconds: Ttl,
    ) -> Changed:
        """Read, change and write a document and its index entries atomically (WATCH)."""
        doc_key = self._doc_key(namespace, key)
        for _ in range(50):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(doc_key)
                    raw = pipe.get(doc_key)
                    current = json.loads(raw) if raw else None
                    new = change(json.loads(raw) if raw else None)
                    if new is None:
                        pipe.unwatch()
                        return Changed(current, None)
                    pipe.multi()
                    self._write_ops(pipe, namespace, key, current, new, ttl_for(ttl_seconds, new))
                    pipe.execute()
                    return Changed(current, new)
                except redis.WatchError:
                    time.sleep(0.001)
        raise StoreError(f"document {namespace}/{key} kept changing under us")

    @_unavailable
    def get_docs(self, namespace: str, keys: Iterable[str]) -> list[dict[str, Any] | None]:
        wanted = list(keys)
        if not wanted:
            return []
        raws = self.client.mget([self._doc_key(namespace, k) for k in wanted])
        return [json.loads(raw) if raw else None for raw in raws]

    @_unavailable
    def put_doc(
        self, namespace: str, key: str, doc: Mapping[str, Any], ttl_seconds: int | None = None
    ) -> None:
        if namespace in self.indexes:  # the old entries must go: read under WATCH
            self._replace(namespace, key, lambda _old: dict(doc), ttl_seconds)
            return
        pipe = self.client.pipeline(transaction=True)
        self._write_ops(pipe, namespace, key, None, dict(doc), ttl_seconds)
        pipe.execute()

    @_unavailable
    def add_doc(
        self, namespace: str, key: str, doc: Mapping[str, Any], ttl_seconds: int | None = None
    ) -> bool:
        if namespace in self.indexes:
            added = self._replace(
                namespace, key, lambda old: dict(doc) if old is None else None, ttl_seconds
            )
            return added.written
        created = self.client.set(
            self._doc_key(namespace, key), json.dumps(doc), nx=True, ex=ttl_seconds or None
        )
        if created:
            self.client.sadd(f"cf:{{{namespace}}}:keys", key)
        return bool(created)

    @_unavailable
    def delete_doc(self, namespace: str, key: str) -> bool:
        if namespace in self.indexes:
            doc_key = self._doc_key(namespace, key)
            for _ in range(50):
                with self.client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(doc_key)
                        raw = pipe.get(doc_key)
                        pipe.multi()
                        old = json.loads(raw) if raw else None
                        self._write_ops(pipe, namespace, key, old, None, None)
                        pipe.execute()
                        return raw is not None
                    except redis.WatchError:
                        time.sleep(0.001)
            raise StoreError(f"document {namespace}/{key} kept changing under us")
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self._doc_key(namespace, key))
        pipe.srem(f"cf:{{{namespace}}}:keys", key)
        return bool(pipe.execute()[0])

    @_unavailable
    def list_docs(self, namespace: str) -> list[dict[str, Any]]:
        if namespace in self.indexes:
            raise StoreError(f"{namespace} grows with history: ask its indexes, never list it")
        keys = sorted(self.client.smembers(f"cf:{{{namespace}}}:keys"))
        if not keys:
            return []
        raws = self.client.mget([self._doc_key(namespace, k) for k in keys])
        gone = [k for k, raw in zip(keys, raws, strict=True) if raw is None]
        if gone:  # expired documents leave their key behind in the index
            self.client.srem(f"cf:{{{namespace}}}:keys", *gone)
        return [json.loads(raw) for raw in raws if raw]

    @_unavailable
    def count_docs(self, namespace: str) -> int:
        if namespace in self.indexes:
            raise StoreError(f"{namespace} grows with history: ask its indexes, never count it")
        return int(self.client.scard(f"cf:{{{namespace}}}:keys"))

    @_unavailable
    def update_doc(
        self,
        namespace: str,
        key: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        ttl_seconds: Ttl = None,
    ) -> dict[str, Any] | None:
        changed = self._replace(namespace, key, change, ttl_seconds)
        return changed.after if changed.written else changed.before

    @_unavailable
    def indexed(
        self,
        namespace: str,
        index: str,
        *,
        newest_first: bool = False,
        min_score: float | None = None,
        max_score: float | None = None,
        offset: int = 0,
        count: int | None = None,
    ) -> list[dict[str, Any]]:
        index_key = self._index_key(namespace, index)
        low = "-inf" if min_score is None else repr(min_score)
        high = "+inf" if max_score is None else repr(max_score)
        found: list[dict[str, Any]] = []
        start = offset
        while True:
            want = None if count is None else count - len(found)
            if newest_first:
                keys = self.client.zrevrangebyscore(
                    index_key, high, low, start=start, num=want if want is not None else -1
                )
            else:
                keys = self.client.zrangebyscore(
                    index_key, low, high, start=start, num=want if want is not None else -1
                )
            if not keys:
                return found
            raws = self.client.mget([self._doc_key(namespace, k) for k in keys])
            gone = [k for k, raw in zip(keys, raws, strict=True) if raw is None]
            found.extend(json.loads(raw) for raw in raws if raw)
            if gone:  # expired: their entries go as they are met
                self.client.zrem(index_key, *gone)
            if count is None or len(found) >= count or len(keys) < (want or 0):
                return found
            start += len(keys) - len(gone)

    @_unavailable
    def index_size(
        self,
        namespace: str,
        index: str,
        *,
        min_score: float | None = None,
        max_score: float | None = None,
    ) -> int:
        if min_score is None and max_score is None:
            return int(self.client.zcard(self._index_key(namespace, index)))
        sizes = self.index_sizes([(namespace, index)], min_score=min_score, max_score=max_score)
        return sizes[0]

    @_unavailable
    def index_sizes(
        self,
        indexes: Iterable[tuple[str, str]],
        *,
        min_score: float | None = None,
        max_score: float | None = None,
    ) -> list[int]:
        low = "-inf" if min_score is None else repr(min_score)
        high = "+inf" if max_score is None else repr(max_score)
        pipe = self.client.pipeline(transaction=False)
        for namespace, name in indexes:
            pipe.zcount(self._index_key(namespace, name), low, high)
        return [int(n) for n in pipe.execute()]

    @_unavailable
    def reindex(self, namespace: str) -> int:
        prefix = f"cf:{{{namespace}}}:"
        spec = self.indexes.get(namespace)
        stale = list(self.client.scan_iter(match=f"{prefix}idx:*", count=1000))
        if stale:
            self.client.delete(*stale)
        count = 0
        batch: list[str] = []

        def index(keys: list[str]) -> int:
            raws = self.client.mget(keys)
            pipe = self.client.pipeline(transaction=False)
            done = 0
            for doc_key, raw in zip(keys, raws, strict=True):
                if not raw:
                    continue
                key = doc_key[len(prefix) + len("doc:") :]
                for name, score in self._entries(namespace, json.loads(raw)).items():
                    index_key = self._index_key(namespace, name)
                    pipe.zadd(index_key, {key: score})
                    if spec is not None and spec.keep_seconds is not None:
                        pipe.expire(index_key, int(spec.keep_seconds) + 86400)
                done += 1
            pipe.execute()
            return done

        for doc_key in self.client.scan_iter(match=f"{prefix}doc:*", count=1000):
            batch.append(doc_key)
            if len(batch) >= 500:
                count += index(batch)
                batch = []
        if batch:
            count += index(batch)
        if spec is not None:  # a namespace that was listed whole before it had indexes
            self.client.delete(f"{prefix}keys")
        return count

    # -- claims

    @_unavailable
    def claim(self, key: str, owner: str, ttl_seconds: int) -> bool:
        script = self._claim
        return bool(script(keys=[f"cf:claim:{key}"], args=[owner, ttl_seconds]))

    @_unavailable
    def release(self, key: str, owner: str) -> None:
        self._release(keys=[f"cf:claim:{key}"], args=[owner])

    @_unavailable
    def claimed_by(self, key: str) -> str | None:
        holder = self.client.get(f"cf:claim:{key}")
        return str(holder) if holder else None

    @_unavailable
    def claimed(self, keys: Iterable[str]) -> set[str]:
        wanted = list(keys)
        if not wanted:
            return set()
        names = [f"cf:claim:{key}" for key in wanted]
        # Claims live in many slots: on a cluster, one MGET per slot.
        mget = getattr(self.client, "mget_nonatomic", self.client.mget)
        holders = mget(names)
        return {key for key, holder in zip(wanted, holders, strict=True) if holder}

    # -- throttles

    @staticmethod
    def _throttle_key(key: str) -> str:
        return f"cf:{{thr:{key}}}"

    @_unavailable
    def take(self, key: str, limit: int, window_seconds: int, now: float) -> int:
        args = [limit, window_seconds, repr(now)]
        return int(self._take(keys=[self._throttle_key(key)], args=args))

    @_unavailable
    def give_back(self, key: str) -> None:
        self._give_back(keys=[self._throttle_key(key)], args=[])

    @_unavailable
    def forget(self, key: str) -> None:
        self.client.delete(self._throttle_key(key))

    # -- counters

    @_unavailable
    def count(self, name: str, field: str, by: int = 1) -> int:
        return int(self.client.hincrby(f"cf:counter:{name}", field, by))

    @_unavailable
    def counters(self, name: str) -> dict[str, int]:
        return {k: int(v) for k, v in self.client.hgetall(f"cf:counter:{name}").items()}

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except (redis.RedisError, OSError):
            return False
