"""PIN rules, answer folding and keyed hashes."""

from __future__ import annotations

import secrets

import pytest

from callflow.errors import InvalidSecret
from callflow.secrets import Hasher, check_pin_rules, issue_pin, normalise_answer


def test_issued_pins_follow_the_rules() -> None:
    pins = {issue_pin() for _ in range(200)}
    assert len(pins) == 200
    for pin in pins:
        assert len(pin) == 8 and pin.isdigit()
        check_pin_rules(pin)


@pytest.mark.parametrize(
    "pin", ["12345", "1234567890123", "12a456", "", "111111", "123456", "987654", "890123"]
)
def test_weak_or_malformed_pins_are_refused(pin: str) -> None:
    with pytest.raises(InvalidSecret):
        check_pin_rules(pin)


@pytest.mark.parametrize(
    ("given", "folded"),
    [
        ("Hill Top", "hilltop"),
        ("  HILL-TOP! ", "hilltop"),
        ("12/03/1970", "12031970"),
        ("Café", "cafe"),
        ("", ""),
    ],
)
def test_answers_fold(given: str, folded: str) -> None:
    assert normalise_answer(given) == folded


def test_hashes_are_salted_keyed_and_checked() -> None:
    key = secrets.token_bytes(32)
    hasher = Hasher(key, cost=10)
    first, second = hasher.hash("246810"), hasher.hash("246810")
    assert first != second, "salted"
    assert "246810" not in first
    assert hasher.verify("246810", first) and hasher.verify("246810", second)
    assert not hasher.verify("246811", first)
    assert not Hasher(secrets.token_bytes(32), cost=10).verify("246810", first), (
        "keyed: another key fails"
    )


@pytest.mark.parametrize("stored", [None, "", "garbage", "scrypt$99$AA$BB", "md5$1$2$3"])
def test_missing_or_odd_hashes_never_match(stored: str | None) -> None:
    hasher = Hasher(secrets.token_bytes(32), cost=10)
    assert not hasher.verify("", stored)
    assert not hasher.verify("246810", stored)


def test_hashes_keep_their_cost() -> None:
    key = secrets.token_bytes(32)
    old = Hasher(key, cost=10).hash("246810")
    assert Hasher(key, cost=12).verify("246810", old)


def test_scrypt_runs_on_niced_threads_and_survives_a_fork_of_its_pool() -> None:
    import os
    import threading

    from callflow.secrets import HASH_NICENESS, Hasher

    hasher = Hasher(b"k" * 32, cost=10)
    seen: list[tuple[str, int]] = []
    run = hasher._threads.run

    def spy(fn):  # type: ignore[no-untyped-def]
        def where() -> bytes:
            tid = threading.get_native_id()
            seen.append((threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, tid)))
            return fn()  # type: ignore[no-any-return]

        return run(where)

    hasher._threads.run = spy  # type: ignore[method-assign]
    stored = hasher.hash("246810")
    assert hasher.verify("246810", stored) and not hasher.verify("246811", stored)
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert all(name.startswith("scrypt") for name, _ in seen)
    assert seen and all(nice == min(base + HASH_NICENESS, 19) for _, nice in seen)
    # A forked child has none of the parent's pool threads: a new pool is made there.
    hasher._threads._pid = -1
    assert hasher.verify("246810", stored)
    assert hasher._threads._pid == os.getpid()
