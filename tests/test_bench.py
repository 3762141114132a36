"""The benchmark runs from one command (its quick variant here; the full run on demand)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_quick_benchmark_runs_and_reports(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
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
    assert (ROOT / "bench" / "results" / "latency.svg").read_text().startswith("<svg")


def test_the_audit_append_benchmark_runs_and_reports() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "audit.py"), "--seconds", "0.3", "--writers", "1,8"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(done.stdout[done.stdout.index("{") :])
    for writers in ("1", "8"):
        row = results[writers]
        assert row["numbered_per_s"] > 0 and row["chained_per_s"] > 0
        assert row["numbered_retries_per_append"] == 0
