"""A cut-off or lost audit log is found: `/healthz` fails and `callflow audit verify` says
so, against the newest signed checkpoint kept outside Redis (CALLFLOW_AUDIT_CHECKPOINTS).
Tested over gunicorn on Redis, with the sweep worker writing the checkpoints."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from callflow.config import Settings
from callflow.service import Callflow
from tests.conftest import (
    ADVISER,
    RedisProcess,
    enrol,
    free_port,
    run_cli,
    running_gunicorn,
    service_env,
)


def health(base: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def setup(own_redis: RedisProcess, tmp_path: Path) -> tuple[dict[str, str], Callflow]:
    port = free_port()
    env = service_env(
        f"http://127.0.0.1:{port}",
        tmp_path,
        REDIS_URL=f"redis://127.0.0.1:{own_redis.port}/0",
        CALLFLOW_AUDIT_CHECKPOINTS=str(tmp_path / "checkpoints"),
    )
    env["PORT"] = str(port)
    svc = Callflow(Settings.from_env(env))
    enrol(svc)
    for n in range(5):
        svc.audit.record("test.step", call_sid=None, outcome="ok", n=n)
    return env, svc


def test_a_cut_off_end_fails_health_and_verify(own_redis: RedisProcess, tmp_path: Path) -> None:
    env, svc = setup(own_redis, tmp_path)
    port = int(env["PORT"])
    base = f"http://127.0.0.1:{port}"
    assert run_cli(env, "sweep").returncode == 0  # the worker's beat writes a checkpoint
    assert list((tmp_path / "checkpoints").glob("checkpoints-*.jsonl"))
    with running_gunicorn(env, port, tmp_path / "gunicorn.log"):
        status, body = health(base)
        assert status == 200 and body["audit"]["checked"] and body["audit"]["ok"], body
        verified = run_cli(env, "audit", "verify")
        assert verified.returncode == 0 and "consistent with the checkpoint" in verified.stdout
        # Someone with Redis access cuts the newest entries and sets the counter back.
        client = svc.store.client  # type: ignore[attr-defined]
        newest = client.xrevrange("cf:{audit}", count=3)
        client.xdel("cf:{audit}", *[entry_id for entry_id, _ in newest])
        client.set("cf:{audit}:seq", int(client.get("cf:{audit}:seq")) - 3)
        status, body = health(base)
        assert status == 503 and body["status"] == "audit log damaged", body
        assert "lost or cut off" in body["audit"]["why"]
        broken = run_cli(env, "audit", "verify")
        assert broken.returncode == 1 and "its end was cut off" in broken.stdout, broken.stdout


def test_a_redis_that_comes_back_empty_fails_health_and_verify(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    env, _svc = setup(own_redis, tmp_path)
    port = int(env["PORT"])
    base = f"http://127.0.0.1:{port}"
    assert run_cli(env, "audit", "checkpoint").returncode == 0
    with running_gunicorn(env, port, tmp_path / "gunicorn.log"):
        assert health(base)[0] == 200
        # Redis restarts with nothing: no persistence (its files are gone).
        own_redis.kill()
        for name in os.listdir(own_redis.folder):
            if name.startswith("appendonly") or name.endswith(".rdb"):
                path = own_redis.folder / name
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        own_redis.start()
        deadline = time.monotonic() + 15
        while (answer := health(base))[0] != 503 and time.monotonic() < deadline:
            time.sleep(0.5)
        status, body = answer
        assert status == 503 and "lost its data or was replaced" in body["audit"]["why"], body
        broken = run_cli(env, "audit", "verify")
        assert broken.returncode == 1 and "lost its data" in broken.stdout
        assert ADVISER not in run_cli(env, "advisers", "list").stdout, "everything is gone"
