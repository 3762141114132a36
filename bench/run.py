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
import shlex
import socket
import subprocess
import sys
import tempfile
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

from bench import native  # noqa: E402
from callflow.config import Settings  # noqa: E402
from callflow.reports import Chart  # noqa: E402
from callflow.service import Callflow  # noqa: E402
from callflow.simulator import Simulator  # noqa: E402
from callflow.simulator.rest import RestApi, RestServer  # noqa: E402
from callflow.simulator.transport import sign  # noqa: E402

REDIS_URL = os.environ.get("CALLFLOW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
TOKEN = secrets.token_hex(16)
PIN = "246810"
ANSWERS = {"school": "Hill Top", "colour": "Blue"}
RESULTS = ROOT / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def procfile_gunicorn() -> list[str]:
    """The Procfile's gunicorn settings (its web line, without the bind address and the
    app), ``${NAME:-default}`` taken from the environment or the default: both servers run
    under exactly the settings the service is deployed with."""
    line = next(
        text for text in (ROOT / "Procfile").read_text().splitlines() if text.startswith("web:")
    )
    words = shlex.split(line.removeprefix("web:"))[1:-1]  # drop "gunicorn" and the app

    def resolve(word: str) -> str:
        return re.sub(
            r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1), m.group(2)), word
        )

    settings, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word == "--bind":
            skip = True
        else:
            settings.append(resolve(word))
    return settings


def with_setting(settings: list[str], flag: str, value: int | None) -> list[str]:
    """``settings`` with ``flag`` set to ``value`` (unchanged when None)."""
    if value is None:
        return settings
    if flag in settings:
        index = settings.index(flag)
        return [*settings[: index + 1], str(value), *settings[index + 2 :]]
    return [*settings, flag, str(value)]


class Server:
    """gunicorn serving an app on loopback, under the given settings."""

    def __init__(self, app: str, env: dict[str, str], settings: list[str], port: int = 0) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", *settings,
            "--graceful-timeout", "3", "--log-level", "warning", app,
        ]  # fmt: skip
        self.log_path = RESULTS / f"gunicorn-{self.port}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115
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

    def cpu_times(self) -> tuple[float, float]:
        """User and system CPU seconds of the master and its workers."""
        times = [process_cpu_times(pid) for pid in [self.process.pid, *self.workers()]]
        return sum(user for user, _ in times), sum(system for _, system in times)

    def cpu_seconds(self) -> float:
        return sum(self.cpu_times())

    def meters(self, client: Any) -> dict[str, Any]:
        """CPU counters for a saturation run: this server's user and system time, the
        Redis server's (from INFO, so a Redis elsewhere is measured too), and each
        worker's (``worker N``: see :func:`per_worker`)."""
        meters: dict[str, Any] = {
            "server_user": lambda: self.cpu_times()[0],
            "server_system": lambda: self.cpu_times()[1],
            "redis": lambda: redis_cpu_seconds(client),
        }
        for n, pid in enumerate(sorted(self.workers()), 1):
            meters[f"worker {n}"] = lambda pid=pid: process_cpu_seconds(pid)
        return meters

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
        if self.log.closed:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        errors = [line for line in self.log_path.read_text().splitlines() if "[ERROR]" in line]
        if errors:
            print(f"gunicorn logged errors: see {self.log_path}", flush=True)
        else:  # access lines only: nothing to keep
            self.log_path.unlink()


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


def process_cpu_times(pid: int) -> tuple[float, float]:
    """A process's user and system CPU seconds (nothing for one that has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def process_cpu_seconds(pid: int) -> float:
    return sum(process_cpu_times(pid))


def per_worker(run: dict[str, Any]) -> dict[str, Any]:
    """Moves the workers' meters out of ``cpu_ms_per_request`` into ``worker_cpu_percent``
    (of one core, over the run). wrk's keep-alive connections stay with the worker that
    accepted them, so the two workers are rarely loaded alike: when the busier one is at a
    whole core, it, not the machine, caps the run."""
    cpu = run["cpu_ms_per_request"]
    workers = sorted(name for name in cpu if name.startswith("worker "))
    run["worker_cpu_percent"] = [
        round(cpu.pop(name) * run["requests_per_s"] / 10, 1) for name in workers
    ]
    return run


def redis_cpu_seconds(client: Any) -> float:
    """The Redis server's own CPU seconds (its main thread and the rest: INFO cpu)."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


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


def warm_up_step(base: str) -> str:
    """The Gather action a new call's first answer goes to (a path with its query), read
    from the Voice URL's own TwiML for a call of its own."""
    caller = Caller(base, "+441632969999", "5000", 0.0, random.Random(0))
    root = caller.post(f"{base}/voice/incoming", "incoming", CallStatus="ringing")
    gather = root.find("Gather") if root is not None else None
    if gather is None:
        raise SystemExit("the Voice URL did not answer with a Gather: see the gunicorn log")
    action = urllib.parse.urlsplit(gather.attrib["action"])
    return f"{action.path}?{action.query}"


def leased_steps(
    incoming: list[dict[str, str]], sent: list[int], advisers: list[str]
) -> list[dict[str, str]]:
    """The adviser-number answer for each call the Voice URL run really started."""
    return [
        {
            **{k: v for k, v in incoming[line].items() if k != "CallStatus"},
            "CallStatus": "in-progress",
            "Digits": advisers[line % len(advisers)],
            "FinishedOnKey": "#",
        }
        for line in sent
    ]


def saturation(
    callflow: Server, baseline_app: str, env: dict[str, str], settings: list[str],
    seconds: int, connections: int, advisers: list[str], client: Any,
) -> dict[str, Any]:  # fmt: skip
    """wrk, replaying signed webhooks: the bare baseline; the two floors (bench/floor.py:
    gunicorn answering constant TwiML with no framework, and the service's voice layer
    answering it once the request is read and its signature checked); the Voice URL
    (each request a new call); a leased step (the adviser-number answer to each call the
    Voice URL run started, so each takes its call's lease, loads its session and moves it
    on); then the baseline again. Only one server is driven at a time (``callflow``
    idles, and is stopped before the second baseline: its stop is idempotent); wrk runs
    one thread. Every run reports its CPU a request: the server's user and system time,
    the Redis server's and wrk's."""
    tmp = Path(tempfile.mkdtemp(prefix="callflow-wrk-"))
    # More requests than the fastest server could take in the time, none sent twice.
    capacity = int(seconds * 20_000) + 1000
    incoming = list(native.incoming_calls(capacity))
    voice_file = tmp / "incoming.tsv"
    native.write_requests(voice_file, TOKEN, callflow.base, "/voice/incoming", incoming)
    run = {"seconds": seconds, "threads": 1, "connections": connections}

    def other(app: str, label: str) -> dict[str, Any]:
        server = Server(app, env, settings)
        try:
            return per_worker(native.run(
                f"{server.base}/voice/incoming", voice_file, server_cpu=server.cpu_seconds,
                meters=server.meters(client), **run,
            ))  # fmt: skip
        finally:
            server.stop()
            print(f"saturation: {label} done", flush=True)

    results: dict[str, Any] = {"generator": "wrk (Debian), bench/wrk/signed.lua"}
    before = other(baseline_app, "baseline (before)")
    floor = other("bench.floor:constant()", "gunicorn floor")
    layer = other("bench.floor:voice_layer()", "voice layer floor")
    step = warm_up_step(callflow.base)
    voice = per_worker(native.run(
        f"{callflow.base}/voice/incoming", voice_file, server_cpu=callflow.cpu_seconds,
        meters=callflow.meters(client), **run,
    ))  # fmt: skip
    print("saturation: Voice URL done", flush=True)
    sent = native.sent_calls(voice_file, 1, voice["sent"])
    step_file = tmp / "step.tsv"
    native.write_requests(
        step_file, TOKEN, callflow.base, step, leased_steps(incoming, sent, advisers)
    )
    leased = per_worker(native.run(
        f"{callflow.base}{step}", step_file, server_cpu=callflow.cpu_seconds,
        meters=callflow.meters(client), **{**run, "seconds": max(1, int(seconds * 0.9))},
    ))  # fmt: skip
    print("saturation: leased step done", flush=True)
    callflow.stop()
    after = other(baseline_app, "baseline (after)")
    for path in tmp.iterdir():
        path.unlink()
    tmp.rmdir()
    baseline = (before["requests_per_s"] + after["requests_per_s"]) / 2
    results.update(
        {
            "baseline_before": before,
            "gunicorn_floor": floor,
            "voice_layer_floor": layer,
            "voice_url": voice,
            "leased_step": {**leased, "step": step, "calls_available": len(sent)},
            "baseline_after": after,
            "baseline_webhooks_per_s": round(baseline, 1),
            "incoming_webhooks_per_s": voice["requests_per_s"],
            "leased_step_webhooks_per_s": leased["requests_per_s"],
            "ratio_to_baseline": round(voice["requests_per_s"] / max(baseline, 0.1), 3),
            "leased_ratio_to_baseline": round(leased["requests_per_s"] / max(baseline, 0.1), 3),
            "targets": {"ratio_to_baseline": 0.6, "leased_ratio_to_baseline": 0.45},
            "where_the_time_goes": where_the_time_goes(before, after, floor, layer, voice, leased),
        }
    )
    results["met"] = (
        results["ratio_to_baseline"] >= 0.6
        and results["leased_ratio_to_baseline"] >= 0.45
        and not voice["errors"]
        and not leased["errors"]
        and not leased["wrapped"]
    )
    return results


def service_ms(run: dict[str, Any]) -> float:
    """The CPU a request cost the service: the server's user and system time and the Redis
    server's. (wrk's own CPU is reported beside it, but not added: its figure includes
    loading its requests file before the run, spread over however many it then sent.)"""
    cpu = run["cpu_ms_per_request"]
    return float(cpu["server_user"] + cpu["server_system"] + cpu["redis"])


def where_the_time_goes(
    before: dict[str, Any], after: dict[str, Any], floor: dict[str, Any],
    layer: dict[str, Any], voice: dict[str, Any], leased: dict[str, Any],
) -> dict[str, float]:  # fmt: skip
    """The service's CPU milliseconds a request (server and Redis), split by subtracting
    the runs from each other, and what a request may cost at the targets: the runs
    saturate the same two cores, so a ratio to the baseline is, near enough, the
    baseline's CPU a request over the other's."""
    baseline = (service_ms(before) + service_ms(after)) / 2
    return {
        "baseline": round(baseline, 3),
        "gunicorn": round(service_ms(floor), 3),
        "flask_bare": round(baseline - service_ms(floor), 3),
        "voice_layer": round(service_ms(layer) - service_ms(floor), 3),
        "voice_url_engine_and_store": round(service_ms(voice) - service_ms(layer), 3),
        "leased_step_engine_and_store": round(service_ms(leased) - service_ms(layer), 3),
        "voice_url": round(service_ms(voice), 3),
        "leased_step": round(service_ms(leased), 3),
        "voice_url_budget_at_target": round(baseline / 0.6, 3),
        "leased_step_budget_at_target": round(baseline / 0.45, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small numbers, seconds")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: the Procfile's)")
    parser.add_argument("--threads", type=int, help="threads a worker (default: the Procfile's)")
    parser.add_argument(
        "--connections", type=int, default=16, help="wrk's open connections in saturation runs"
    )
    parser.add_argument(
        "--saturation-only", action="store_true", help="skip the paced runs (a quicker A/B)"
    )
    parser.add_argument(
        "--levels",
        help="concurrent calls of the paced runs, e.g. 200 or 50,100 (default 50,100,200)",
    )
    parser.add_argument(
        "--seconds", type=int, help="seconds of each saturation run (default 15; --quick 2)"
    )
    parser.add_argument("--output", default=str(RESULTS / "latest.json"))
    parser.add_argument(
        "--pace",
        type=float,
        default=5.0,
        help="seconds a caller takes to act, on average (hearing a prompt, keying)",
    )
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    levels = [] if args.saturation_only else [5] if args.quick else [50, 100, 200]
    if args.levels and not args.saturation_only:
        levels = [int(level) for level in args.levels.split(",")]
    pace = 0.05 if args.quick else args.pace
    saturation_seconds = args.seconds or (2 if args.quick else 15)
    settings = with_setting(
        with_setting(procfile_gunicorn(), "--workers", args.workers), "--threads", args.threads
    )
    native.ensure_wrk()

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
    for n in range(max(levels, default=50)):
        number = f"{5000 + n}"
        service.directory.add(
            number,
            f"Adviser {n}",
            ["taxaid", "top", "litrg", "citizens_advice"][n % 4],
            now=time.time(),
            by="bench",
        )
        service.directory.set_pin(number, PIN, time.time(), by="bench")
        service.directory.set_answers(
            number,
            {"first_school": ANSWERS["school"], "favourite_colour": ANSWERS["colour"]},
            time.time(),
            by="bench",
        )
        advisers.append(number)
    for n in range(20):
        service.staff.add_agent(
            f"{700000 + n}", f"Agent {n}", f"client:bench{n}", time.time(), by="bench"
        )
        service.staff.set_availability(f"{700000 + n}", "available", time.time())

    results: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": {
            "gunicorn": " ".join(settings),
            "hash_cost": 14,
            "pace_s": pace,
        },
        "paced": {},
    }
    server = Server("webhooks:create_app()", env, settings, port)
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
        results["peak_rss_mb_per_worker"] = server.peak_rss_mb()
        results["saturation"] = saturation(
            server, "bench.baseline:create_app()", env, settings,
            saturation_seconds, args.connections, advisers, client,
        )  # fmt: skip
    finally:
        server.stop()
        rest.stop()
        client.flushdb()
    Path(args.output).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    sat = results["saturation"]
    print(
        f"{'':<54}CPU ms a request: server user + system + Redis = service; wrk; "
        "each worker's share of a core"
    )
    for label, key in (
        ("baseline (before)", "baseline_before"),
        ("gunicorn floor", "gunicorn_floor"),
        ("voice layer floor", "voice_layer_floor"),
        ("Voice URL", "voice_url"),
        ("leased step", "leased_step"),
        ("baseline (after)", "baseline_after"),
    ):
        run = sat[key]
        cpu = run["cpu_ms_per_request"]
        print(
            f"{label:<18} {run['requests_per_s']:8.1f}/s  p99 {run['latency_ms']['p99']:6.1f} ms  "
            f"errors {run['errors']}  {cpu['server_user']:.3f} + {cpu['server_system']:.3f} + "
            f"{cpu['redis']:.3f} = {service_ms(run):.3f}; {cpu['wrk']:.3f} "
            f"({run['client_cpu_percent']}% of a core); workers "
            + "/".join(f"{share:.0f}%" for share in run["worker_cpu_percent"])
        )
    split = sat["where_the_time_goes"]
    print(
        "where the time goes (the service's CPU ms a request): gunicorn "
        f"{split['gunicorn']}, Flask {split['flask_bare']}, the voice layer "
        f"{split['voice_layer']}, the Voice URL's engine and store "
        f"{split['voice_url_engine_and_store']}, the leased step's "
        f"{split['leased_step_engine_and_store']}; at the targets a Voice URL may cost "
        f"{split['voice_url_budget_at_target']} and a step {split['leased_step_budget_at_target']}"
    )
    print(
        f"Voice URL / baseline {sat['ratio_to_baseline']} (target 0.6), leased step / baseline "
        f"{sat['leased_ratio_to_baseline']} (target 0.45): {'met' if sat['met'] else 'not met'}"
    )
    if not levels:
        return 0
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
