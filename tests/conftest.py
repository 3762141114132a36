"""Shared fixtures: the real Redis (a database of the tests' own), services, a signed caller."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from callflow.clock import ManualClock
from callflow.config import Settings
from callflow.sandbox import Sandbox
from callflow.service import Callflow
from callflow.simulator import Simulator
from callflow.store import MemoryStore, Store
from callflow.store.redis import RedisStore
from webhooks import create_app

#: The tests own this database and flush it; never db 0.
#: Flow tests' worlds: the service class and the web app factory, handed in.
SANDBOX = Sandbox(Callflow, create_app)
TEST_REDIS_URL = os.environ.get("CALLFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BASE_URL = "https://callflow.test"
AUTH_TOKEN = secrets.token_hex(16)
METRICS_TOKEN = secrets.token_hex(16)
ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "flows"

ADVISER = "1001"
PIN = "246810"
ANSWERS = {"first_school": "Hill Top", "favourite_colour": "Blue"}


def new_call_sid() -> str:
    """A CallSid shaped like Twilio's."""
    return "CA" + secrets.token_hex(16)


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError as exc:  # pragma: no cover - .ci/run starts Redis
        pytest.fail(f"the tests need Redis at {TEST_REDIS_URL}: {exc}")
    yield client
    client.close()


@pytest.fixture
def redis_store(redis_client: redis.Redis) -> Iterator[RedisStore]:
    redis_client.flushdb()
    store = RedisStore.from_url(TEST_REDIS_URL)
    yield store
    redis_client.flushdb()


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: fast hashing, a fresh key, signature checks on."""
    values: dict[str, Any] = {
        "twilio_auth_token": AUTH_TOKEN,
        "public_base_url": BASE_URL,
        "secret_key": secrets.token_bytes(32),
        "hash_cost": 10,
        "flows_dir": FLOWS,
        "lease_wait_ms": 4000,
        "metrics_token": METRICS_TOKEN,
    }
    values.update(overrides)
    return Settings(**values).checked()


def morning() -> float:
    """Today, 09:00 UTC: a test's virtual day starts here, whatever the wall clock says, so
    the hours a simulated call runs never carry it past midnight into another day (a test
    run at 23:30 would otherwise see its audit entries split over two days)."""
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0).timestamp()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(morning())


@pytest.fixture(params=["redis", "memory"])
def store(request: pytest.FixtureRequest, clock: ManualClock) -> Store:
    """Both stores, so every whole-call test runs on each."""
    if request.param == "redis":
        return request.getfixturevalue("redis_store")  # type: ignore[no-any-return]
    return MemoryStore(clock)


@pytest.fixture
def service(store: Store, clock: ManualClock) -> Callflow:
    svc = Callflow(make_settings(), store=store, clock=clock, rng=Random(7))
    enrol(svc)
    return svc


def enrol(svc: Callflow, number: str = ADVISER, pin: str = PIN, org: str = "taxaid") -> None:
    """Register an adviser with known secrets."""
    now = svc.clock.now()
    svc.directory.add(
        number,
        "Sam Adviser",
        org,
        phone="+44 20 7946 0000",
        consent_to_act=True,
        now=now,
        by="tests",
    )
    svc.directory.set_pin(number, pin, now, by="tests")
    svc.directory.set_answers(number, ANSWERS, now, by="tests")


@pytest.fixture
def app(service: Callflow) -> Flask:
    return create_app({"TESTING": True, "CALLFLOW_SERVICE": service})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)  # type: ignore[no-any-return]


@dataclass
class Caller:
    """Plays the Twilio side of one call against the Flask test client, signing every request."""

    client: FlaskClient
    call_sid: str = field(default_factory=new_call_sid)
    from_number: str = "+441632960001"
    last: ET.Element | None = None
    heard: list[str] = field(default_factory=list)

    def post(self, url: str, **params: str) -> Any:
        """POST signed form parameters to an absolute URL on the service."""
        form = {
            "CallSid": self.call_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.from_number,
            "To": "+441632960999",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            **params,
        }
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.client.post(path, data=form, headers={"X-Twilio-Signature": sign(url, form)})

    def _twiml(self, response: Any) -> ET.Element:
        assert response.status_code == 200, response.data
        assert response.mimetype == "text/xml"
        root = ET.fromstring(response.data)
        assert root.tag == "Response"
        self.last = root
        self.heard.extend(say.text or "" for say in root.iter("Say"))
        return root

    def start(self, flow: str | None = None) -> ET.Element:
        """The call arrives at the Voice URL (of ``flow``, or the default flow)."""
        query = f"?flow={flow}" if flow else ""
        return self._twiml(self.post(f"{BASE_URL}/voice/incoming{query}", CallStatus="ringing"))

    def gather_url(self) -> str:
        assert self.last is not None
        gather = self.last.find("Gather")
        assert gather is not None, ET.tostring(self.last)
        return gather.attrib["action"]

    def press(self, digits: str) -> ET.Element:
        """Key digits at the current gather."""
        return self._twiml(self.post(self.gather_url(), Digits=digits, CallStatus="in-progress"))

    def say(self, words: str, confidence: str = "0.92") -> ET.Element:
        """Speak at the current gather."""
        return self._twiml(
            self.post(
                self.gather_url(),
                SpeechResult=words,
                Confidence=confidence,
                CallStatus="in-progress",
            )
        )

    def wait(self) -> ET.Element:
        """Give no input: Twilio falls through to the Redirect after the Gather."""
        assert self.last is not None
        redirect = self.last.find("Redirect")
        assert redirect is not None and redirect.text
        return self._twiml(self.post(redirect.text, CallStatus="in-progress"))

    def hang_up(self, status: str = "completed") -> Any:
        """Twilio's call status callback for the end of the call."""
        response = self.post(f"{BASE_URL}/voice/status", CallStatus=status, CallDuration="42")
        assert response.status_code == 204
        return response

    def says(self) -> list[str]:
        """What the caller heard in the last answer."""
        assert self.last is not None
        return [say.text or "" for say in self.last.iter("Say")]

    def question(self) -> str:
        """The security question asked in the last answer."""
        assert self.last is not None
        return " ".join(say.text or "" for say in self.last.iter("Say"))

    def answer_for_question(self) -> str:
        """The right answer to the question being asked."""
        text = self.question()
        if "first school" in text:
            return ANSWERS["first_school"]
        if "colour" in text:
            return ANSWERS["favourite_colour"]
        raise AssertionError(f"no question asked: {text}")

    def verify(self, adviser: str = ADVISER, pin: str = PIN) -> ET.Element:
        """Go through verification the right way."""
        self.start()
        self.press(adviser)
        self.press(pin)
        return self.say(self.answer_for_question())


@pytest.fixture
def caller(client: FlaskClient) -> Caller:
    return Caller(client)


# -- the service under gunicorn, on the tests' Redis database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_gunicorn(
    env: dict[str, str], port: int, log_path: Path, workers: int = 2, threads: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """gunicorn serving the service on ``port`` with ``env``, until the block ends."""
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            *(["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else []),
            "--graceful-timeout",
            "3",
            "webhooks:create_app()",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not start")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # an event stream still open: do not wait for it
            process.kill()
            process.wait(10)
        log.close()


def service_env(base: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment a gunicorn of the service runs with against the test Redis."""
    prometheus = tmp_path / "prometheus"
    prometheus.mkdir(exist_ok=True)
    return {
        **os.environ,
        "REDIS_URL": TEST_REDIS_URL,
        "CALLFLOW_SECRET_KEY": secrets.token_hex(16),
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": base,
        "CALLFLOW_HASH_COST": "10",
        "PROMETHEUS_MULTIPROC_DIR": str(prometheus),
        "CALLFLOW_METRICS_TOKEN": METRICS_TOKEN,
        **extra,
    }


@pytest.fixture
def gunicorn(redis_store: object, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(base, tmp_path)
    with running_gunicorn(env, port, tmp_path / "gunicorn.log"):
        yield base, env


class RedisProcess:
    """A redis-server of the test's own on a loopback port, with an append-only file."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.kill()


class Driver(threading.Thread):
    """Runs the simulator's virtual clock a few times faster than real time."""

    def __init__(self, sim: Simulator, speed: float = 4.0) -> None:
        super().__init__(daemon=True)
        self.sim, self.speed = sim, speed
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sim.advance(0.05 * self.speed)
            time.sleep(0.05)


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``callflow ARGS`` in a process of its own, with ``env`` (as an operator would run it)."""
    return subprocess.run(
        [sys.executable, "-c", "from callflow.cli.main import main; raise SystemExit(main())", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )


#: The password of the accounts tests make for the command line.
CLI_PASSWORD = "correct horse battery"
#: Who signs the command line in, by role, unless a test names someone.
CLI_PEOPLE = {"admin": "ada", "designer": "dana", "auditor": "amy", "specialist": "kim",
              "vstrs_agent": "sam"}  # fmt: skip


def cli_account(svc: Callflow, role: str = "admin", username: str = "", **extra: str) -> str:
    """An account of ``role`` to act as on the command line (made when it is not there)."""
    username = username or CLI_PEOPLE[role]
    if svc.accounts.get(username) is None:
        svc.accounts.add(
            username, username.title(), role, CLI_PASSWORD, svc.clock.now(), by="tests", **extra
        )
    return username


def cli_sign_in(
    monkeypatch: pytest.MonkeyPatch,
    folder: Path,
    svc: Callflow,
    role: str = "admin",
    username: str = "",
    **extra: str,
) -> str:
    """Sign the in-process command line in as an account of ``role``, as ``callflow login``
    does: a real console session kept in a config folder of the test's own (REDIS_URL must
    be set first: the kept session names its store). Returns the username."""
    from callflow.cli.common import save_session

    username = cli_account(svc, role, username, **extra)
    attempt = svc.accounts.sign_in(username, CLI_PASSWORD, "cli:tests", svc.clock.now())
    assert attempt.session is not None, attempt.error
    monkeypatch.setenv("CALLFLOW_CONFIG_DIR", str(folder / "callflow-config" / username))
    monkeypatch.delenv("CALLFLOW_TOKEN", raising=False)
    save_session(attempt.session.token, username, attempt.session.role)
    return username


def cli_login(env: dict[str, str], folder: Path, svc: Callflow, role: str = "admin",
              username: str = "", **extra: str) -> dict[str, str]:  # fmt: skip
    """``callflow login`` in a process of its own (the password on standard input); the
    environment that later commands of that person run with."""
    username = cli_account(svc, role, username, **extra)
    signed = {**env, "CALLFLOW_CONFIG_DIR": str(folder / "callflow-config" / username)}
    signed.pop("CALLFLOW_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-c", "from callflow.cli.main import main; raise SystemExit(main())",
         "login", "--username", username],
        env=signed, input=CLI_PASSWORD + "\n", capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return signed


def person(username: str, role: str = "designer") -> Any:
    """A signed-in person as the service's acts take them (a designer unless ``role``)."""
    from callflow.access import Viewer

    return Viewer(role, username=username, name=username.title())
