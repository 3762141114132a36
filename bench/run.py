#!/usr/bin/env python3
"""callflow's benchmark: webhook latency and throughput under gunicorn on the real Redis.

One command (see bench/README.md):

    .venv/bin/python bench/run.py            # the full run (a few minutes)
    .venv/bin/python bench/run.py --quick    # a smoke run (seconds), as CI does

It starts the service under gunicorn on loopback (Redis database 14, flushed before and
after; a stub of Twilio's REST API from the local simulator), then drives it with
concurrent scripted callers speaking Twilio's webhook protocol (signed POSTs, the
Gather actions and Redirects the service hands out), and reports:

- paced runs at several concurrency levels: latency p50/p95/p99 per step kind;
- a saturation run: webhooks per second, beside a bare Flask endpoint answering constant
  TwiML under the same gunicorn settings (the baseline);
- Redis commands per webhook, CPU seconds per webhook, peak memory per worker.

Results go to bench/results/latest.json and a plot of latency against load,
bench/results/latency.svg.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callflow.config import Settings  # noqa: E402
from callflow.reports import Chart  # noqa: E402
from callflow.service import Callflow  # noqa: E402
from callflow.simulator import Simulator  # noqa: E402
from callflow.simulator.rest import RestApi, RestServer  # noqa: E402
from callflow.simulator.transport import sign  # noqa: E402

REDIS_URL = os.environ.get("CALLFLOW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
TOKEN = secrets.token_hex(16)
PIN = "246810"
ANSWERS = {"school": "Hill Top", "colour": "Blue"}
RESULTS = ROOT / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """gunicorn serving an app on loopback."""

    def __init__(
        self, app: str, env: dict[str, str], workers: int, threads: int, port: int = 0
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--graceful-timeout",
            "3",
            "--log-level",
            "warning",
            app,
        ]
        self.log = open(RESULTS / f"gunicorn-{self.port}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        time.sleep(1.0)  # let every worker boot

    def workers(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.process.pid:
                    pids.append(int(entry.name))
        return pids

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in [self.process.pid, *self.workers()]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        return total

    def peak_rss_mb(self) -> list[float]:
        peaks = []
        for pid in self.workers():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            found = re.search(r"VmHWM:\s+(\d+) kB", status)
            if found:
                peaks.append(round(int(found.group(1)) / 1024, 1))
        return peaks

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class Caller:
    """One scripted caller: verification, then waiting for an agent, then hanging up."""

    def __init__(
        self, base: str, number: str, adviser: str, pace: float, rng: random.Random
    ) -> None:
        self.base, self.adviser, self.pace, self.rng = base, adviser, pace, rng
        self.call_sid = "CA" + secrets.token_hex(16)
        self.number = number
        self.samples: list[tuple[str, float, int]] = []

    def post(self, url: str, kind: str, **extra: str) -> ET.Element | None:
        params = {
            "CallSid": self.call_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.number,
            "To": "+441632960999",
            "Caller": self.number,
            "Called": "+441632960999",
            "CallStatus": "in-progress",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            **extra,
        }
        data = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(
            url, data=data, headers={"X-Twilio-Signature": sign(TOKEN, url, params)}
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
                body, status = response.read(), response.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), exc.code
        except OSError:
            self.samples.append((kind, time.perf_counter() - started, 0))
            return None
        self.samples.append((kind, time.perf_counter() - started, status))
        try:
            return ET.fromstring(body) if body.strip() else None  # noqa: S314
        except ET.ParseError:
            return None

    def think(self) -> None:
        if self.pace:
            time.sleep(self.pace * self.rng.uniform(0.5, 1.5))

    def run(self) -> None:
        root = self.post(f"{self.base}/voice/incoming", "incoming", CallStatus="ringing")
        for kind, digits in (("adviser_number", f"{self.adviser}#"), ("pin", f"{PIN}#")):
            gather = root.find("Gather") if root is not None else None
            if gather is None:
                return
            self.think()
            root = self.post(
                gather.attrib["action"], kind, Digits=digits.rstrip("#"), FinishedOnKey="#"
            )
        gather = root.find("Gather") if root is not None else None
        if gather is None:
            return
        question = " ".join(s.text or "" for s in gather.iter("Say"))
        answer = ANSWERS["school"] if "school" in question else ANSWERS["colour"]
        self.think()
        root = self.post(gather.attrib["action"], "answer", SpeechResult=answer, Confidence="0.9")
        conference = root.find("Dial/Conference") if root is not None else None
        if conference is None:
            return
        name = conference.text or ""
        events = {
            "FriendlyName": name,
            "ConferenceSid": "CF" + secrets.token_hex(16),
            "AccountSid": "AC" + "0" * 32,
        }
        self.post(
            f"{self.base}/voice/conference",
            "conference_event",
            StatusCallbackEvent="participant-join",
            **events,
        )
        self.think()
        self.post(conference.attrib["waitUrl"], "hold", **{"FriendlyName": name})
        self.think()
        self.post(f"{self.base}/voice/status", "status", CallStatus="completed", CallDuration="30")
        self.post(
            f"{self.base}/voice/conference",
            "conference_event",
            StatusCallbackEvent="conference-end",
            ReasonConferenceEnded="last-participant-left",
            **events,
        )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(round(p / 100 * (len(ordered) - 1)), len(ordered) - 1)
    return ordered[index]


def summarise(samples: list[tuple[str, float, int]]) -> dict[str, Any]:
    kinds: dict[str, list[float]] = {}
    for kind, seconds, _ in samples:
        kinds.setdefault(kind, []).append(seconds * 1000)
    return {
        kind: {
            "count": len(values),
            "p50_ms": round(percentile(values, 50), 2),
            "p95_ms": round(percentile(values, 95), 2),
            "p99_ms": round(percentile(values, 99), 2),
        }
        for kind, values in sorted(kinds.items())
    }


def redis_commands(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(
        int(v["calls"])
        for k, v in stats.items()
        if k.startswith("cmdstat_") and k != "cmdstat_info"
    )


def drive(
    base: str, calls: int, concurrency: int, pace: float, advisers: list[str], seed: int
) -> list[tuple[str, float, int]]:
    """Run ``calls`` scripted callers, ``concurrency`` at a time."""
    samples: list[tuple[str, float, int]] = []
    lock = threading.Lock()
    queue = list(range(calls))
    rng = random.Random(seed)

    def worker(n: int) -> None:
        # Calls arrive spread over one call's length, not all in the same millisecond.
        if pace:
            time.sleep(random.Random(seed + n).uniform(0, pace * 4))
        while True:
            with lock:
                if not queue:
                    return
                index = queue.pop()
            caller = Caller(
                base,
                f"+4416329{index:05d}",
                advisers[index % len(advisers)],
                pace,
                random.Random(rng.random() + n),
            )
            caller.run()
            with lock:
                samples.extend(caller.samples)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


def saturate(
    url: str, seconds: float, concurrency: int, body: dict[str, str] | None = None
) -> float:
    """Requests per second at ``url`` with ``concurrency`` clients pushing as hard as they can."""
    done = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < stop:
            params = dict(body or {})
            params["CallSid"] = "CA" + secrets.token_hex(16)
            data = urllib.parse.urlencode(params).encode()
            request = urllib.request.Request(
                url, data=data, headers={"X-Twilio-Signature": sign(TOKEN, url, params)}
            )
            try:
                with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
                    response.read()
            except OSError:
                continue
            with lock:
                done[0] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done[0] / (time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small numbers, seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--output", default=str(RESULTS / "latest.json"))
    parser.add_argument(
        "--pace",
        type=float,
        default=5.0,
        help="seconds a caller takes to act, on average (hearing a prompt, keying)",
    )
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    levels = [5] if args.quick else [50, 100, 200]
    pace = 0.05 if args.quick else args.pace
    saturation_seconds = 2.0 if args.quick else 15.0

    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    client.flushdb()
    sim = Simulator(None, TOKEN)
    rest = RestServer(RestApi(sim)).start()
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "CALLFLOW_SECRET_KEY": secrets.token_hex(16),
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": sim.account_sid,
        "TWILIO_API_BASE_URL": rest.base_url,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "CALLFLOW_LOG_FORMAT": "json",
    }
    service = Callflow(Settings.from_env(env))
    advisers = []
    for n in range(max(levels)):
        number = f"{5000 + n}"
        service.directory.add(
            number,
            f"Adviser {n}",
            ["taxaid", "top", "litrg", "citizens_advice"][n % 4],
            now=time.time(),
        )
        service.directory.set_pin(number, PIN, time.time())
        service.directory.set_answers(
            number,
            {"first_school": ANSWERS["school"], "favourite_colour": ANSWERS["colour"]},
            time.time(),
        )
        advisers.append(number)
    for n in range(20):
        service.staff.add_agent(f"{700000 + n}", f"Agent {n}", f"client:bench{n}", time.time())
        service.staff.set_availability(f"{700000 + n}", "available", time.time())

    results: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": {
            "workers": args.workers,
            "threads": args.threads,
            "hash_cost": 14,
            "pace_s": pace,
        },
        "paced": {},
    }
    server = Server("webhooks:create_app()", env, args.workers, args.threads, port)
    try:
        for level in levels:
            commands_before, cpu_before = redis_commands(client), server.cpu_seconds()
            samples = drive(
                server.base,
                calls=level * (1 if args.quick else 2),
                concurrency=level,
                pace=pace,
                advisers=advisers,
                seed=level,
            )
            webhooks = len(samples)
            errors = sum(1 for _, _, status in samples if status != 200 and status != 204)
            results["paced"][str(level)] = {
                "concurrent_calls": level,
                "webhooks": webhooks,
                "errors": errors,
                "latency": summarise(samples),
                "redis_commands_per_webhook": round(
                    (redis_commands(client) - commands_before) / max(webhooks, 1), 2
                ),
                "cpu_ms_per_webhook": round(
                    (server.cpu_seconds() - cpu_before) * 1000 / max(webhooks, 1), 2
                ),
            }
            print(
                f"paced {level:>4} concurrent calls: {webhooks} webhooks, {errors} errors",
                flush=True,
            )
        hold_url = f"{server.base}/voice/incoming"
        results["saturation"] = {
            "incoming_webhooks_per_s": round(
                saturate(hold_url, saturation_seconds, 16, {"From": "+441632960001"}), 1
            ),
        }
        results["peak_rss_mb_per_worker"] = server.peak_rss_mb()
    finally:
        server.stop()
    baseline = Server("bench.baseline:create_app()", {**env}, args.workers, args.threads)
    try:
        results["saturation"]["baseline_webhooks_per_s"] = round(
            saturate(f"{baseline.base}/voice/incoming", saturation_seconds, 16), 1
        )
    finally:
        baseline.stop()
        rest.stop()
        client.flushdb()
    results["saturation"]["ratio_to_baseline"] = round(
        results["saturation"]["incoming_webhooks_per_s"]
        / max(results["saturation"]["baseline_webhooks_per_s"], 0.1),
        3,
    )
    Path(args.output).write_text(json.dumps(results, indent=2))
    kinds = sorted({k for level in results["paced"].values() for k in level["latency"]})
    chart = Chart(
        "Webhook p99 latency (ms) against concurrent calls",
        [str(level) for level in levels],
        {
            kind: [
                results["paced"][str(level)]["latency"].get(kind, {}).get("p99_ms", 0)
                for level in levels
            ]
            for kind in kinds
        },
    )
    (RESULTS / "latency.svg").write_text(chart.svg(width=760, height=320))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
