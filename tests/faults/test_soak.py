"""A soak: calls (with Twilio's duplicates and late deliveries) for a while; memory stays flat.

CI runs a short soak (20 s); ``CALLFLOW_SOAK_SECONDS=300`` runs five minutes. Each worker's
resident memory is sampled every second; after a warm-up quarter, the peak of the second
half may not exceed the peak of the first by more than 10% plus one scrypt buffer (16 MiB).
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

from callflow.config import Settings
from callflow.service import Callflow
from tests.conftest import enrol, free_port, running_gunicorn, service_env
from tests.rigs.faults import ChaosCaller, workers

SECONDS = float(os.environ.get("CALLFLOW_SOAK_SECONDS", "20"))
LINES = 16


def _rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_memory_stays_flat_under_a_soak(redis_store: object, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(base, tmp_path, CALLFLOW_HASH_COST="14")
    service = Callflow(Settings.from_env(env))
    for n in range(LINES):
        enrol(service, number=f"{7000 + n}")
    stop = time.monotonic() + SECONDS
    calls = [0] * LINES
    problems: list[str] = []

    def line(n: int) -> None:
        rng = random.Random(n)
        while time.monotonic() < stop:
            caller = ChaosCaller(base, f"+4416329{n:03d}{calls[n] % 100:02d}", f"{7000 + n}", rng)
            caller.run()
            caller.finish()
            problems.extend(caller.problems)
            calls[n] += 1

    samples: dict[int, list[float]] = {}
    with running_gunicorn(env, port, tmp_path / "gunicorn.log", workers=2, threads=8) as master:
        threads = [threading.Thread(target=line, args=(n,)) for n in range(LINES)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            for pid in workers(master.pid):
                samples.setdefault(pid, []).append(_rss_mb(pid))
            time.sleep(1.0)
        for thread in threads:
            thread.join()

    assert problems == [], problems[:10]
    print(f"\nsoak {SECONDS:.0f}s: {sum(calls)} calls; worker RSS MB over time:")
    for pid, series in samples.items():
        print(f"  worker {pid}: " + " ".join(f"{mb:.0f}" for mb in series))
        settled = series[len(series) // 4 :]
        assert len(settled) >= 6
        half = len(settled) // 2
        head, tail = max(settled[:half]), max(settled[half:])
        # A check's scrypt buffer (16 MiB) comes and goes; growth beyond that is a leak.
        assert tail <= head * 1.10 + 16, f"worker {pid} grew from {head:.0f} to {tail:.0f} MB"
    assert sum(calls) >= LINES
