"""Redis going away: callers hear an apology, nobody is verified on doubt, and it recovers."""

from __future__ import annotations

from pathlib import Path
from random import Random

import pytest

from callflow.errors import StoreUnavailable
from callflow.service import Callflow
from callflow.store.redis import RedisStore
from tests.conftest import ADVISER, PIN, Caller, RedisProcess, enrol, free_port, make_settings
from webhooks import create_app

APOLOGY = "technical problem"


def test_redis_down_fails_closed_and_recovers(own_redis: RedisProcess) -> None:
    store = RedisStore.from_url(f"redis://127.0.0.1:{own_redis.port}/0", socket_timeout=0.5)
    service = Callflow(make_settings(), store=store, rng=Random(3))
    enrol(service)
    app = create_app({"CALLFLOW_SERVICE": service})
    client = app.test_client()

    caller = Caller(client)
    caller.start()
    caller.press(ADVISER)
    caller.press(PIN)
    own_redis.kill()

    caller.say(caller.answer_for_question())
    assert APOLOGY in " ".join(caller.says())
    assert caller.last is not None and caller.last.find("Hangup") is not None
    assert client.get("/healthz").status_code == 503
    newcomer = Caller(client)
    newcomer.start()
    assert APOLOGY in " ".join(newcomer.says())

    own_redis.start()  # same port, same append-only file: the data is back
    session = store.get_session(caller.call_sid)
    assert session is not None and session.verified is None, "never verified on doubt"
    assert client.get("/healthz").status_code == 200
    after = Caller(client)
    after.verify()
    assert after.last is not None and after.last.find("Dial/Conference") is not None


def test_unreachable_redis_from_the_start(tmp_path: Path) -> None:
    store = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.3)
    service = Callflow(make_settings(), store=store)
    client = create_app({"CALLFLOW_SERVICE": service}).test_client()
    caller = Caller(client)
    caller.start()
    assert APOLOGY in " ".join(caller.says())
    assert client.get("/healthz").status_code == 503


def test_an_audit_write_failure_blocks_verification(
    caller: Caller, service: Callflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    caller.start()
    caller.press(ADVISER)
    caller.press(PIN)
    real = service.store.append_audit

    def failing(entry: dict[str, object], *args: object, **kwargs: object) -> str:
        if entry["kind"] == "verification.verified":
            raise StoreUnavailable("audit stream down")
        return real(entry, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service.store, "append_audit", failing)
    caller.say(caller.answer_for_question())
    assert APOLOGY in " ".join(caller.says())
    session = service.store.get_session(caller.call_sid)
    assert session is not None and session.verified is None and session.state == "ask_question"
