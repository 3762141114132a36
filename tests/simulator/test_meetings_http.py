"""The whole meeting story over HTTP: `callflow meetings add --call-now` places the call
with Twilio's own client against the simulator's REST server; the service under gunicorn
runs meeting_call; the customer confirms; the outcome is in the store and the audit log."""

from __future__ import annotations

import time
from pathlib import Path

from callflow.clock import ManualClock
from callflow.config import Settings
from callflow.service import Callflow
from callflow.simulator import Callee, HttpTransport, Script, Simulator
from callflow.simulator.rest import RestApi, RestServer
from tests.conftest import (
    AUTH_TOKEN,
    Driver,
    cli_login,
    free_port,
    run_cli,
    running_gunicorn,
    service_env,
)

CUSTOMER = "+447700900123"


def test_a_meeting_call_from_the_cli_to_a_confirmed_meeting(
    redis_store: object, tmp_path: Path
) -> None:
    sim = Simulator(HttpTransport(), AUTH_TOKEN, clock=ManualClock(time.time()))
    rest = RestServer(RestApi(sim)).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(
        base, tmp_path, TWILIO_ACCOUNT_SID=sim.account_sid, TWILIO_API_BASE_URL=rest.base_url
    )
    script = Script().press("1").press("21031970#").press("1")
    sim.add_callee(CUSTOMER, Callee("answered", after=4, script=script))
    driver = Driver(sim, speed=20)
    try:
        with running_gunicorn(env, port, tmp_path / "gunicorn.log", workers=2, threads=4):
            driver.start()
            env = cli_login(env, tmp_path, Callflow(Settings.from_env(env)), "admin")
            added = run_cli(
                env, "officers", "add", "4471203", "--name", "Alex Morgan", "--grade", "O"
            )
            assert added.returncode == 0, added.stderr
            placed = run_cli(
                env,
                "meetings", "add", "--customer", "Pat Example", "--number", CUSTOMER,
                "--reference", "DM-2041-77", "--officer", "4471203",
                "--purpose", "other", "--about", "agreeing time to pay",
                "--bring", "your bank statements", "--place", "hmrc_office",
                "--when", "2031-03-04T14:00", "--where", "the H M R C office in Leeds",
                "--date-of-birth", "1970-03-21", "--call-now",
            )  # fmt: skip
            assert placed.returncode == 0, placed.stderr
            assert f"calling {CUSTOMER}: CA" in placed.stdout
            svc = Callflow(Settings.from_env(env))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                (meeting,) = svc.meetings.all()
                if meeting["state"] == "confirmed" and meeting["attempts"][0]["result"]:
                    break
                time.sleep(0.2)
            assert meeting["state"] == "confirmed", (meeting, sim.transcript())
            (leg,) = [leg for leg in sim.legs.values() if leg.to == CUSTOMER]
            heard = " ".join(leg.heard())
            assert "Tuesday 4 March 2031 at 2pm" in heard and "Alex Morgan" in heard
            kinds = [e["kind"] for e in svc.audit.entries()]
            for kind in ("meeting.added", "meeting.call_placed", "meeting.identity_check"):
                assert kind in kinds
            assert sim.errors == []
    finally:
        driver.stopping.set()
        rest.stop()
