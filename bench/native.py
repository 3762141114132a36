"""Saturation runs with a native load generator: wrk replaying precomputed signed webhooks.

A load generator written in Python holds a bare Flask endpoint near 1,700 requests a
second on two cores; wrk (C, one epoll loop a thread) gets several times that from the
same endpoint. So the saturation figures come from wrk, with a Lua script
(bench/wrk/signed.lua) that sends requests signed beforehand here: every request is a
distinct call (its own CallSid), signed as Twilio signs it, and none is sent twice.

wrk comes from Debian (``apt-get install wrk``); :func:`ensure_wrk` installs it when it
is missing and this runs as root, as on CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callflow.simulator.transport import sign  # noqa: E402

SCRIPT = ROOT / "bench" / "wrk" / "signed.lua"


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package if it is missing and we may."""
    found = shutil.which("wrk")
    if found:
        return found
    apt_get = shutil.which("apt-get")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and apt_get:

        def apt(*args: str) -> None:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(
                [apt_get, *args],
                check=False,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        apt("install", "-y", "-q", "wrk")
        if not shutil.which("wrk"):  # a fresh box has no package lists yet
            apt("update", "-q")
            apt("install", "-y", "-q", "wrk")
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("the saturation runs need wrk: apt-get install wrk")
    return found


def write_requests(
    path: Path, token: str, base: str, target: str, calls: Iterable[dict[str, str]]
) -> int:
    """Sign one POST to ``target`` (a path, with any query) per parameter set, as Twilio
    would for ``base + target``, and write them for signed.lua; returns how many."""
    url = base + target
    count = 0
    with path.open("w") as out:
        for params in calls:
            body = urllib.parse.urlencode(params)
            out.write(f"{target}\t{sign(token, url, params)}\t{body}\n")
            count += 1
    return count


def incoming_calls(count: int, first: int = 0) -> Iterator[dict[str, str]]:
    """Voice URL requests: a new call each, from numbers of their own."""
    for n in range(first, first + count):
        yield {
            "CallSid": f"CA{n:032x}",
            "AccountSid": "AC" + "0" * 32,
            "From": f"+447700{n % 1_000_000:06d}",
            "To": "+441632960999",
            "Caller": f"+447700{n % 1_000_000:06d}",
            "Called": "+441632960999",
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }


def sent_calls(path: Path, threads: int, sent: dict[str, int]) -> list[int]:
    """Which lines of a requests file wrk sent, from its threads' counts (thread i of n
    sends lines i, i+n, ... in order)."""
    total = sum(1 for _ in path.open())
    lines = []
    for thread, count in sent.items():
        index = int(thread) - 1
        lines.extend(range(index, total, threads)[:count])
    return sorted(lines)


def run(
    url: str,
    requests: Path,
    *,
    seconds: int,
    threads: int,
    connections: int,
    server_cpu: Callable[[], float] | None = None,
    meters: Mapping[str, Callable[[], float]] | None = None,
) -> dict[str, Any]:
    """wrk against ``url`` for ``seconds``, replaying ``requests``: throughput, latency,
    errors, the client's own CPU and (given a callable returning CPU seconds) the server's.

    ``meters`` name more CPU-seconds counters (the server's user and system time, the
    Redis server's): each is reported as milliseconds a request, in ``cpu_ms_per_request``.
    """
    wrk = ensure_wrk()
    env = {
        **os.environ,
        "CALLFLOW_WRK_REQUESTS": str(requests),
        "CALLFLOW_WRK_THREADS": str(threads),
    }
    command = [
        wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
        "--timeout", "15s", "-s", str(SCRIPT), url,
    ]  # fmt: skip
    before = server_cpu() if server_cpu else 0.0
    meters = meters or {}
    meters_before = {name: meter() for name, meter in meters.items()}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    server_seconds = (server_cpu() - before) if server_cpu else None
    meters_after = {name: meter() for name, meter in meters.items()}
    found = re.search(r"^WRK_RESULT (\{.*\})$", output, re.MULTILINE)
    if process.returncode != 0 or not found:
        raise SystemExit(f"wrk failed ({process.returncode}):\n{output[-2000:]}")
    result = json.loads(found.group(1))
    duration = result["duration_us"] / 1e6
    client = usage.ru_utime + usage.ru_stime
    errors = result["errors"]
    answered = max(result["requests"], 1)
    return {
        "requests": result["requests"],
        "requests_per_s": round(result["requests"] / duration, 1),
        "latency_ms": {k: round(v / 1000, 2) for k, v in result["latency_us"].items()},
        "errors": sum(errors.values()),
        "error_kinds": {k: v for k, v in errors.items() if v},
        "wrapped": result["wrapped"],
        "sent": result["sent"],
        "client_cpu_percent": round(100 * client / duration, 1),
        "server_cpu_percent": round(100 * server_seconds / duration, 1)
        if server_seconds is not None
        else None,
        "server_cpu_ms_per_request": round(1000 * server_seconds / max(result["requests"], 1), 3)
        if server_seconds is not None
        else None,
        "cpu_ms_per_request": {
            **{
                name: round(1000 * (meters_after[name] - meters_before[name]) / answered, 3)
                for name in meters
            },
            "wrk": round(1000 * client / answered, 3),
        },
        "generator": f"wrk -t{threads} -c{connections} -d{seconds}s",
    }
