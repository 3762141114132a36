"""Audit appends per second with 1, 16 and 64 concurrent writers: the numbered, sealed
append (`RedisStore.append_audit`: take a number, write the entry; two round trips, no
retries) beside the hash chain it replaced (WATCH the head, read it, MULTI/XADD/SET/EXEC,
retried on every conflict), in the same run, on the same Redis.

    .venv/bin/python bench/audit.py [--seconds 3] [--writers 1,16,64]

It uses Redis database 14 (flushed before and after; CALLFLOW_BENCH_REDIS_URL picks
another). Writers are threads of one process (the work is waiting on Redis); each
append is a real audit entry of a verification step's size, sealed with HMAC-SHA256.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import threading
import time
from typing import Any

import redis

from callflow.audit import chain_key, seal_with
from callflow.store.redis import RedisStore

REDIS_URL = os.environ.get("CALLFLOW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
ENTRY = {
    "at": "2026-11-30T10:00:00.000+00:00",
    "kind": "verification.pin",
    "call_sid": "CA" + "0" * 32,
    "caller": "+441632960001",
    "adviser": "1001",
    "organisation": "taxaid",
    "outcome": "failed",
}


def chained_append(client: Any, entry: dict[str, Any], seal: Any, retries: list[int]) -> None:
    """The append this replaced: the chain's head read and written under WATCH."""
    head, stream = "cf:{audit}:head", "cf:{audit}"
    for attempt in range(200):
        with client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(head)
                prev = pipe.get(head) or "genesis"
                record = {**entry, "prev": prev}
                record["hash"] = seal(record)
                pipe.multi()
                pipe.xadd(stream, {"e": json.dumps(record, separators=(",", ":"))})
                pipe.set(head, record["hash"])
                pipe.execute()
                retries.append(attempt)
                return
            except redis.WatchError:
                time.sleep(0.0005)
    raise RuntimeError("the chain kept changing")


def run(writers: int, seconds: float, append: Any) -> tuple[float, int]:
    """Appends per second over ``seconds`` with ``writers`` threads; and how many ran."""
    done = [0] * writers
    stop = threading.Event()
    barrier = threading.Barrier(writers + 1)

    def writer(index: int) -> None:
        barrier.wait()
        while not stop.is_set():
            append()
            done[index] += 1

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(writers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return sum(done) / elapsed, sum(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--writers", default="1,16,64")
    args = parser.parse_args()
    raw = redis.Redis.from_url(REDIS_URL, decode_responses=True, max_connections=200)
    raw.flushdb()
    store = RedisStore.from_url(REDIS_URL)
    store.client.connection_pool.max_connections = 200
    seal = seal_with(chain_key(secrets.token_bytes(32)))
    results: dict[str, Any] = {}
    try:
        for writers in (int(w) for w in args.writers.split(",")):
            retries: list[int] = []
            raw.flushdb()
            before, _ = run(
                writers, args.seconds, lambda r=retries: chained_append(raw, ENTRY, seal, r)
            )
            raw.flushdb()
            after, count = run(writers, args.seconds, lambda: store.append_audit(ENTRY, seal))
            state = store.audit_state()
            numbers = sorted(
                json.loads(fields["e"])["seq"] for _, fields in raw.xrange("cf:{audit}")
            )
            assert numbers == list(range(1, state.seq + 1)), "every number once, none missing"
            results[str(writers)] = {
                "chained_per_s": round(before, 1),
                "chained_retries_per_append": round(sum(retries) / max(len(retries), 1), 2),
                "numbered_per_s": round(after, 1),
                "numbered_retries_per_append": 0,
                "speed_up": round(after / before, 2) if before else None,
            }
            print(
                f"{writers:>3} writers: chained {before:8.1f}/s "
                f"({results[str(writers)]['chained_retries_per_append']} retries an append), "
                f"numbered {after:8.1f}/s ({count} appends, every number once)",
                flush=True,
            )
    finally:
        raw.flushdb()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
