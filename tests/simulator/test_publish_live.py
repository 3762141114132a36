"""A published flow reaches every gunicorn worker of two instances without a restart,
while a call that started before the publish finishes on its old version."""

from __future__ import annotations

import time
from pathlib import Path

from callflow.config import Settings
from callflow.service import Callflow
from callflow.simulator import Script, Simulator
from tests.conftest import (
    AUTH_TOKEN,
    FLOWS,
    cli_login,
    free_port,
    run_cli,
    running_gunicorn,
    service_env,
)
from tests.rigs import eventually
from tests.rigs.faults import Alternating

LINE = "+441632960900"
OFFICER = "4471203"


def test_publish_reaches_both_instances_while_a_live_call_keeps_its_version(
    redis_store: object, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    public = f"http://127.0.0.1:{ports[0]}"
    env = service_env(public, tmp_path, CALLFLOW_FLOW_RELEASE_CHECK="1")
    Callflow(Settings.from_env(env)).staff.add_officer(
        OFFICER, "Alex Morgan", time.time(), by="tests"
    )
    edited = tmp_path / "officer_check.yaml"
    edited.write_text(
        (FLOWS / "officer_check.yaml")
        .read_text()
        .replace("Thank you for calling. Goodbye.", "Thank you for checking. Goodbye.")
    )
    (tmp_path / "officer_check.test.yaml").write_text(
        (FLOWS / "officer_check.test.yaml").read_text()
    )
    with (
        running_gunicorn(env, ports[0], tmp_path / "a.log", workers=2),
        running_gunicorn(env, ports[1], tmp_path / "b.log", workers=2),
    ):
        transport = Alternating(public, [public, f"http://127.0.0.1:{ports[1]}"])
        sim = Simulator(transport, AUTH_TOKEN)
        sim.configure_number(
            LINE,
            f"{public}/voice/incoming?flow=officer_check",
            status_callback=f"{public}/voice/status",
        )
        before = sim.call(LINE, "+447700900111", Script().press(f"{OFFICER}#").press("2"))
        assert sim.run_until(lambda: any("belongs to Alex Morgan" in h for h in before.heard()))

        dana = cli_login(env, tmp_path, Callflow(Settings.from_env(env)), "designer")
        published = run_cli(dana, "flows", "publish", str(edited), "-m", "a new greeting")
        assert published.returncode == 0, published.stderr
        time.sleep(1.5)  # every worker looks for new versions at most every second here

        sim.run_until(lambda: not before.live)
        assert before.heard()[-1] == "Thank you for calling. Goodbye."

        after = []
        for n in range(8):  # spread over both instances and their workers
            leg = sim.call(LINE, f"+4477009002{n:02d}", Script().press(f"{OFFICER}#").press("2"))
            sim.run_until(lambda leg=leg: not leg.live)
            after.append(leg.heard()[-1])
        assert after == ["Thank you for checking. Goodbye."] * 8, sim.transcript()
        assert {t for t in transport.served} == set(transport.instances)

        rolled = run_cli(dana, "flows", "rollback", "officer_check", "-m", "undo", "--yes")
        assert rolled.returncode == 0, rolled.stderr
        # Each worker notices within its release check: new calls hear the old goodbye.
        def heard_after_rollback() -> bool:
            leg = sim.call(LINE, "+447700900399", Script().press(f"{OFFICER}#").press("2"))
            sim.run_until(lambda: not leg.live)
            return leg.heard()[-1] == "Thank you for calling. Goodbye."

        eventually(heard_after_rollback, every=0.2)  # one worker has it
        time.sleep(1.5)  # and within its release check, every other worker too
        for n in range(4):
            leg = sim.call(LINE, f"+4477009003{n:02d}", Script().press(f"{OFFICER}#").press("2"))
            sim.run_until(lambda leg=leg: not leg.live)
            assert leg.heard()[-1] == "Thank you for calling. Goodbye."
        assert sim.errors == []
