"""The benchmark runs from one command (its quick variant here; the full run on demand)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[1]


def bench_env() -> dict[str, str]:
    """The benchmarks' Redis databases follow the test Redis URL (its database, and the two
    below it for a baseline), so two test runs on different databases never share one."""
    url = urlsplit(TEST_REDIS_URL)
    db = int(url.path.strip("/") or 0)
    at = lambda n: urlunsplit(url._replace(path=f"/{n}"))  # noqa: E731
    return {
        **os.environ,
        "CALLFLOW_BENCH_REDIS_URL": at(db),
        "CALLFLOW_BENCH_BASELINE_REDIS_URL": at(max(db - 1, 0) if db > 1 else db + 1),
    }


def test_the_quick_benchmark_runs_and_reports(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=bench_env(),
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(output.read_text())
    paced = results["paced"]["5"]
    assert paced["errors"] == 0 and paced["webhooks"] >= 35
    for kind in (
        "incoming",
        "adviser_number",
        "pin",
        "answer",
        "conference_event",
        "hold",
        "status",
    ):
        assert paced["latency"][kind]["count"] >= 5 and paced["latency"][kind]["p99_ms"] > 0
    assert paced["redis_commands_per_webhook"] > 0 and paced["cpu_ms_per_webhook"] > 0
    assert (
        results["saturation"]["incoming_webhooks_per_s"] > 0
        and results["saturation"]["baseline_webhooks_per_s"] > 0
    )
    assert len(results["peak_rss_mb_per_worker"]) == 2
    saturation = results["saturation"]
    # The floors ran, and the voice layer's floor checked every signature (a refused one
    # would be a 403, counted as an error); every run measured the CPU a request.
    for run in ("gunicorn_floor", "voice_layer_floor", "voice_url", "leased_step"):
        assert saturation[run]["requests"] > 0 and saturation[run]["errors"] == 0, run
        cpu = saturation[run]["cpu_ms_per_request"]
        assert set(cpu) == {"server_user", "server_system", "redis", "wrk"}
        assert cpu["server_user"] > 0 and cpu["wrk"] > 0
        shares = saturation[run]["worker_cpu_percent"]
        assert len(shares) == 2 and all(share >= 0 for share in shares) and sum(shares) > 0
    # Only the runs that reach the store make Redis work.
    assert saturation["voice_url"]["cpu_ms_per_request"]["redis"] > 0
    split = saturation["where_the_time_goes"]
    assert split["voice_url"] > split["gunicorn"] > 0
    assert split["leased_step_budget_at_target"] > split["voice_url_budget_at_target"] > 0
    assert (ROOT / "bench" / "results" / "latency.svg").read_text().startswith("<svg")


def test_the_audit_append_benchmark_runs_and_reports() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "audit.py"), "--seconds", "0.3", "--writers", "1,8"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=bench_env(),
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(done.stdout[done.stdout.index("{") :])
    for writers in ("1", "8"):
        row = results[writers]
        assert row["numbered_per_s"] > 0 and row["chained_per_s"] > 0
        assert row["numbered_retries_per_append"] == 0


def test_the_history_benchmark_runs_and_history_costs_no_extra_commands(tmp_path: Path) -> None:
    """bench/history.py at a small N: every question is measured in both runs, and none
    takes a single Redis command more after a year's history than on day one (what would
    grow with history is a scan, and a scan is commands)."""
    output = tmp_path / "history.json"
    command = [sys.executable, str(ROOT / "bench" / "history.py"), "--records", "60",
               "--repeat", "5", "--end-to-end", "2", "--output", str(output)]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=bench_env(),
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(output.read_text())
    questions = {
        "grant_for_call", "grants_for_customer", "agent_console", "specialist_console",
        "auditor_page", "handoff_stats", "metrics_scrape", "sweep_pass", "handoff_end_to_end",
    }  # fmt: skip
    assert set(results["empty"]) == set(results["full"]) == questions
    for name in questions:
        empty, full = results["empty"][name], results["full"][name]
        assert 0 < empty["p50_ms"] <= empty["p99_ms"] and 0 < full["p50_ms"] <= full["p99_ms"]
        assert full["redis_commands"] == empty["redis_commands"] > 0, name
    assert results["redis_bytes_per_record"] > 0 and results["records"] == 60
