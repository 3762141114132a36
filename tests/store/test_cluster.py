"""Redis Cluster: three masters of real redis-server processes on loopback ports.

The store contract suite runs against the cluster, and so does a whole verified call:
every multi-key step (Lua scripts, WATCH transactions) stays inside one hash slot.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from random import Random

import pytest

from callflow.service import Callflow
from callflow.store import Store
from callflow.store.redis import RedisStore
from tests.conftest import ADVISER, PIN, Caller, enrol, make_settings
from tests.rigs.store_contracts import (
    DocumentContract,
    FollowContract,
    IndexContract,
    StoreContract,
)
from webhooks import create_app

pytestmark = pytest.mark.skipif(
    not (shutil.which("redis-server") and shutil.which("redis-cli")),
    reason="needs redis-server and redis-cli",
)


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        # The cluster bus uses port + 10000: it must be free too.
        if port < 55000 and port not in ports:
            ports.append(port)
    return ports


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("cluster")
    ports = free_ports(3)
    processes = []
    for port in ports:
        node = folder / str(port)
        node.mkdir()
        processes.append(
            subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(node / "nodes.conf"),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(node),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        for port in ports:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    time.sleep(0.05)
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            info = subprocess.run(
                ["redis-cli", "-p", str(ports[0]), "cluster", "info"],
                capture_output=True,
                text=True,
            )
            if "cluster_state:ok" in info.stdout:
                break
            time.sleep(0.2)
        yield f"redis+cluster://127.0.0.1:{ports[0]}/0"
    finally:
        for process in processes:
            process.kill()
            process.wait(10)


def cluster_store(url: str) -> RedisStore:
    store = RedisStore.from_url(url)
    store.client.flushall(target_nodes="primaries")
    return store


class TestClusterStore(StoreContract):
    @pytest.fixture
    def store(self, cluster: str) -> Store:
        return cluster_store(cluster)


class TestClusterDocuments(DocumentContract):
    @pytest.fixture
    def store(self, cluster: str) -> Store:
        return cluster_store(cluster)


class TestClusterIndexes(IndexContract):
    @pytest.fixture
    def store(self, cluster: str) -> Store:
        return cluster_store(cluster)


class TestClusterFollow(FollowContract):
    @pytest.fixture
    def store(self, cluster: str) -> Store:
        return cluster_store(cluster)


def test_a_whole_call_on_the_cluster(cluster: str) -> None:
    store = cluster_store(cluster)
    service = Callflow(make_settings(), store=store, rng=Random(2))
    enrol(service)
    caller = Caller(create_app({"CALLFLOW_SERVICE": service}).test_client())
    caller.verify(ADVISER, PIN)
    assert caller.last is not None and caller.last.find("Dial/Conference") is not None
    caller.hang_up()
    session = store.get_session(caller.call_sid)
    assert session is not None and session.ended and session.verified is not None
    assert service.audit.verify() is None
    kinds = [e["kind"] for e in service.audit.entries()]
    assert [k for k in kinds if k.startswith("verification.")][:2] == [
        "verification.pin",
        "verification.verified",
    ]
    assert Path  # the module's imports stay used


def test_a_hand_off_on_the_cluster_two_specialists_taking_it_at_once_one_wins(
    cluster: str,
) -> None:
    """A whole hand-off on the cluster (agents' and specialists' presence, claims, the
    hand-off's indexes): it rings the team's number, and Kim and Lee take it at once."""
    from callflow.clock import ManualClock
    from callflow.simulator import Script
    from tests.conftest import morning
    from tests.rigs import KIM, LEE, TEAM_FIRST, Rig

    clock = ManualClock(morning())
    rig = Rig(cluster_store(cluster), clock)
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, Script().silent().silent().silent().silent(), takes=False)
    handoff = rig.request(caller).get_json()
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "checking")
    results = rig.take_at_once(handoff["id"], (KIM, LEE))
    assert sorted(results.values()).count("taken") == 1, results
    winner = next(p for p, r in results.items() if r == "taken")
    assert rig.handoff(handoff["id"])["taken_by"]["id"] == winner
    assert rig.svc.handoffs.live_for_team("debt_pursuit")[0]["id"] == handoff["id"]
    assert [d["id"] for d in rig.svc.handoffs.of_specialist(winner)] == [handoff["id"]]


def test_two_meetings_racing_for_one_officers_time_on_the_cluster(cluster: str) -> None:
    """Booking a time in an officer's diary is one atomic claim on the cluster too."""
    import threading
    from datetime import datetime

    from callflow.clock import ManualClock
    from callflow.diary import Diary
    from callflow.hours import LONDON

    at = datetime(2031, 3, 4, 10, 0, tzinfo=LONDON)
    diary = Diary(cluster_store(cluster), ManualClock(at.timestamp() - 86400))
    won: list[str] = []
    start = threading.Barrier(6)

    def book(meeting: str, when: datetime) -> None:
        start.wait()
        if diary.book("4471203", when, meeting):
            won.append(meeting)

    # Half of them ask for 10:30, which shares its first half hour with 10:00's meeting:
    # whichever way the claims interleave across the cluster's nodes, the officer ends
    # with one meeting, and nothing half-held.
    half_past = datetime(2031, 3, 4, 10, 30, tzinfo=LONDON)
    workers = [
        threading.Thread(target=book, args=(f"m-{n:012x}", at if n % 2 else half_past))
        for n in range(6)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(won) == 1, won
    held = [diary.holder("4471203", datetime(2031, 3, 4, 10, m, tzinfo=LONDON)) for m in (0, 30)]
    held.append(diary.holder("4471203", datetime(2031, 3, 4, 11, 0, tzinfo=LONDON)))
    assert [h for h in held if h] in ([won[0], won[0]],), held
