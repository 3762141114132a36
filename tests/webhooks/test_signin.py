"""Console sign-in throttling that cannot be turned on others: failures counted atomically
per username and per client address (the real one behind trusted proxies), browsers where
a user has signed in before throttled on their own, every throttle audited."""

from __future__ import annotations

import threading
from random import Random
from typing import Any

from flask.testing import FlaskClient

from callflow.clock import ManualClock
from callflow.service import Callflow
from callflow.store import Store
from tests.conftest import make_settings
from tests.rigs import PASSWORD, csrf_from, sign_in
from webhooks import create_app
from webhooks.console import base as console


def browser(app_client: FlaskClient, address: str = "198.51.100.1", **headers: str) -> Any:
    """A browser at ``address`` (a test client of its own, so a cookie jar of its own)."""
    client = app_client.application.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    client.environ_base.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    return client


def attempt(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    return sign_in(client, username, password)


def signed_in(response: Any) -> bool:
    return response.status_code == 303 and "/console/login" not in response.headers["Location"]


def throttled(response: Any) -> bool:
    return response.status_code == 401 and b"too many attempts" in response.data


def test_a_flood_on_made_up_names_locks_out_no_real_user(
    client: FlaskClient, staffed: Callflow
) -> None:
    amy = browser(client)
    assert signed_in(attempt(amy, "amy"))
    amy.post("/console/logout", data={"csrf_token": csrf_from(amy.get("/console/agent").data)})
    attacker = browser(client)  # the same address as amy's office
    refused = [attempt(attacker, f"made.up{i}", "guess guess guess") for i in range(30)]
    assert throttled(refused[-1]), "the attacker's address is slowed down"
    assert sum(r.status_code == 401 and b"wrong username" in r.data for r in refused) == 20
    assert signed_in(attempt(amy, "amy")), "amy's own browser is throttled on its own"
    sam_elsewhere = browser(client, "203.0.113.7")
    assert signed_in(attempt(sam_elsewhere, "sam")), "another address is untouched"
    sam_here = browser(client)
    assert throttled(attempt(sam_here, "sam")), "a new browser at the flooded address waits"
    staffed.clock.advance(16 * 60)  # type: ignore[attr-defined]
    assert signed_in(attempt(browser(client), "sam"))


def test_a_flood_on_a_real_username_leaves_its_owner_signing_in(
    client: FlaskClient, staffed: Callflow
) -> None:
    amy = browser(client)
    assert signed_in(attempt(amy, "amy"))
    for n in range(12):
        attempt(browser(client, f"192.0.2.{n}"), "amy", "guess guess guess")
    assert throttled(attempt(browser(client, "192.0.2.200"), "amy"))
    assert signed_in(attempt(amy, "amy"))


def test_a_forged_or_borrowed_device_cookie_is_no_way_round(
    client: FlaskClient, staffed: Callflow
) -> None:
    sam = browser(client)
    assert signed_in(attempt(sam, "sam"))  # sam's browser has a device cookie for sam
    for _ in range(5):
        attempt(browser(client, "192.0.2.9"), "amy", "guess guess guess")
    # Sam's cookie does not speak for amy, nor does one with a made-up signature.
    assert throttled(attempt(sam, "amy"))
    forged = browser(client, "192.0.2.10")
    forged.set_cookie(console.DEVICE_COOKIE, "amy|abc|" + "0" * 64, path="/console/")
    assert throttled(attempt(forged, "amy"))


def test_concurrent_guesses_never_get_more_checks_than_the_limit(
    store: Store, clock: ManualClock
) -> None:
    svc = Callflow(make_settings(), store=store, clock=clock, rng=Random(1))
    svc.staff.add_agent("123456", "Amy Agent", "client:amy", clock.now(), by="tests")
    svc.accounts.add("amy", "Amy Agent", "vstrs_agent", PASSWORD, clock.now(), sees_id="123456", by="tests")
    checks: list[str] = []
    verify = svc.hasher.verify

    def counting(secret: str, stored: str | None) -> bool:
        checks.append(secret)
        return verify(secret, stored)

    svc.hasher.verify = counting  # type: ignore[method-assign]
    barrier = threading.Barrier(40)
    results: list[str] = []

    def guess(n: int) -> None:
        barrier.wait()
        results.append(svc.accounts.sign_in("amy", f"guess number {n}", "192.0.2.1", clock.now()).error)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(checks) == 5, len(checks)
    assert results.count("wrong username or password") == 5
    right = svc.accounts.sign_in("amy", PASSWORD, "192.0.2.1", clock.now())
    assert right.session is None and "too many attempts" in right.error
    throttles = [e for e in svc.audit.entries() if e["kind"] == "console.signin_throttled"]
    assert sorted((e["scope"], e["username"]) for e in throttles) == [
        ("address", "amy"),
        ("user", "amy"),
    ], "each throttle audited once in its window"
    clock.advance(16 * 60)
    assert svc.accounts.sign_in("amy", PASSWORD, "192.0.2.1", clock.now()).session is not None


def test_the_client_address_is_the_one_the_trusted_proxy_saw(
    store: Store, clock: ManualClock
) -> None:
    for proxies, seen in ((1, "203.0.113.50"), (0, "10.0.0.2")):
        svc = Callflow(make_settings(trusted_proxies=proxies), store=store, clock=clock)
        app = create_app({"CALLFLOW_SERVICE": svc})
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "10.0.0.2"  # the proxy itself
        for n in range(21):
            page = client.get("/console/login")
            client.post(
                "/console/login",
                data={
                    "username": f"made.up{n}",
                    "password": "guess guess guess",
                    "csrf_token": csrf_from(page.data),
                },
                headers={"X-Forwarded-For": "203.0.113.50"},
            )
        (entry,) = [
            e for e in svc.audit.entries()
            if e["kind"] == "console.signin_throttled" and e["address"] == seen
        ]
        assert entry["scope"] == "address" and entry["outcome"] == "throttled"
        svc.store.forget(f"signin:addr:{seen}")
