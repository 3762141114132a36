"""Operations that ship: the alert rules pass promtool (and its unit tests), and every
query of the Grafana dashboard and the alert rules runs on a real Prometheus scraping the
service, over metrics the service really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from callflow.clock import ManualClock
from callflow.config import Settings
from callflow.service import Callflow
from callflow.simulator import HttpTransport, Script, Simulator
from tests.conftest import (
    ADVISER,
    AUTH_TOKEN,
    METRICS_TOKEN,
    PIN,
    Driver,
    enrol,
    free_port,
    running_gunicorn,
    service_env,
)

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "ops" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "callflow.json"
VSTRS = "+441632960999"
METRIC = re.compile(r"\b(callflow_[a-z_]+?)(?:_bucket|_total|_sum|_count)?\b")

needs_prometheus = pytest.mark.skipif(
    not (shutil.which("promtool") and shutil.which("prometheus")),
    reason="Debian's prometheus package is not installed (.ci/run installs it)",
)


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p["targets"]]


def rule_queries() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(r["alert"], r["expr"]) for g in groups for r in g["rules"]]


@needs_prometheus
def test_the_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    checked = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    tested = subprocess.run(
        ["promtool", "test", "rules", "alerts.test.yml"],
        capture_output=True,
        text=True,
        cwd=RULES.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    names = {name for name, _ in rule_queries()}
    assert names == {
        "CallflowAdviserLockouts",
        "CallflowStoreBreakerOpen",
        "CallflowAuditChainBroken",
        "CallflowAuditCheckpointStale",
        "CallflowWorkerDown",
        "CallflowHandoffShareHigh",
        "CallflowWebhookSlow",
        "CallflowWebhook5xx",
    }


def test_the_dashboard_is_grafana_json_with_a_query_per_panel() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "callflow" and board["panels"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"


@pytest.fixture
def scraped(redis_store: object, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The service under gunicorn after a verified call, and a real Prometheus scraping it
    every second with the scrape token, the shipped rules loaded."""
    sim = Simulator(HttpTransport(), AUTH_TOKEN, clock=ManualClock(time.time()))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(base, tmp_path)
    with running_gunicorn(env, port, tmp_path / "gunicorn.log", workers=2):
        svc = Callflow(Settings.from_env(env))
        enrol(svc)
        sim.configure_number(VSTRS, f"{base}/voice/incoming", status_callback=f"{base}/voice/status")
        driver = Driver(sim, speed=20)
        driver.start()
        try:
            script = Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(
                {"school": "Hill Top", "colour": "Blue"}
            ).hang_up(after=5)
            caller = sim.call(VSTRS, "+441632960001", script)
            deadline = time.monotonic() + 60
            while caller.live and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            driver.stopping.set()
        web = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(RULES)],
                    "scrape_configs": [
                        {
                            "job_name": "callflow",
                            "authorization": {"credentials": METRICS_TOKEN},
                            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                        }
                    ],
                }
            )
        )
        log = (tmp_path / "prometheus.log").open("w")
        prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{web}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            api = f"http://127.0.0.1:{web}/api/v1"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    up = query(api, "up")
                    if up and up[0]["value"][1] == "1":
                        break
                except OSError:
                    pass
                time.sleep(0.3)
            else:
                raise AssertionError((tmp_path / "prometheus.log").read_text()[-2000:])
            # Rates need two samples: wait until Prometheus holds three scrapes.
            deadline = time.monotonic() + 30
            while True:
                held = query(api, 'count_over_time(up{job="callflow"}[1m])')
                if held and float(held[0]["value"][1]) >= 3:
                    break
                assert time.monotonic() < deadline, "Prometheus never scraped three times"
                time.sleep(0.3)
            scrape = urllib.request.Request(  # noqa: S310 (the test's own service)
                f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
            )
            with urllib.request.urlopen(scrape, timeout=10) as response:  # noqa: S310
                raw = response.read().decode()
            yield {"api": api, "exposition": raw}
        finally:
            prometheus.terminate()
            prometheus.wait(10)
            log.close()


def query(api: str, expr: str) -> list[dict[str, Any]]:
    url = f"{api}/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (local Prometheus)
        body = json.loads(response.read())
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


#: Queries that are rightly empty on a healthy service after one good call.
EMPTY_WHEN_HEALTHY = {
    "Webhook server errors (5 minutes)",
    "Hand-offs today, by why a specialist was needed",
    "CallflowWebhook5xx",
}


@needs_prometheus
def test_every_dashboard_and_alert_query_runs_on_a_real_scrape(scraped: dict[str, Any]) -> None:
    declared = re.findall(r"^# TYPE (callflow_[a-z_]+) ", scraped["exposition"], re.M)
    exported = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in declared}
    for title, expr in [*dashboard_queries(), *rule_queries()]:
        for name in METRIC.findall(expr):
            assert name in exported, f"{title}: {name} is not a metric the service exports"
        result = query(scraped["api"], expr)
        alert = expr.rstrip().endswith(("> 0", "== 1", "== 0", "> 1", "< 0"))
        if title not in EMPTY_WHEN_HEALTHY and not alert:
            assert result, f"{title}: {expr} gave no data on a live service"
    with urllib.request.urlopen(f"{scraped['api']}/rules", timeout=10) as answer:  # noqa: S310
        rules = json.loads(answer.read())
    loaded = [r for g in rules["data"]["groups"] for r in g["rules"]]
    assert len(loaded) == 8 and all(r["health"] in {"ok", "unknown"} for r in loaded), loaded
    firing = [r["name"] for r in loaded if r["state"] == "firing"]
    assert firing == [], f"a healthy service fires no alert: {firing}"
