"""PINs and security answers: issuing, normalising, keyed hashing and constant-time checks.

A stored secret is ``scrypt$<log2 n>$<salt>$<hash>``: scrypt over an HMAC-SHA256 of the
secret keyed with the server-held key, with a random salt. A copy of Redis alone does not
let anyone test guesses: without the key there is nothing to compare against.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import itertools
import os
import re
import secrets
import sys
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .errors import InvalidSecret

__all__ = [
    "PIN_MAX",
    "PIN_MIN",
    "Hasher",
    "check_pin_rules",
    "issue_pin",
    "normalise_answer",
]

PIN_MIN = 6
PIN_MAX = 12
_SCRYPT_R = 8
_SCRYPT_P = 1


def issue_pin(length: int = 8) -> str:
    """A random PIN of ``length`` digits that passes :func:`check_pin_rules`."""
    if not PIN_MIN <= length <= PIN_MAX:
        raise InvalidSecret(f"a PIN has {PIN_MIN} to {PIN_MAX} digits")
    while True:
        pin = "".join(secrets.choice("0123456789") for _ in range(length))
        try:
            check_pin_rules(pin)
        except InvalidSecret:
            continue
        return pin


def check_pin_rules(pin: str) -> None:
    """Refuse PINs that are the wrong length, not digits, or easy to guess."""
    if not re.fullmatch(r"[0-9]+", pin or ""):
        raise InvalidSecret("a PIN is digits only")
    if not PIN_MIN <= len(pin) <= PIN_MAX:
        raise InvalidSecret(f"a PIN has {PIN_MIN} to {PIN_MAX} digits")
    if len(set(pin)) == 1:
        raise InvalidSecret("a PIN cannot be one digit repeated")
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    if steps in ({1}, {9}):
        raise InvalidSecret("a PIN cannot be a run of consecutive digits")


def normalise_answer(text: str) -> str:
    """Fold an answer so keyed, typed and spoken forms compare equal.

    Case, accents, spaces and punctuation are dropped: "Blue." and "blue", "12/03/1970"
    and "12031970" are the same answer.
    """
    folded = unicodedata.normalize("NFKD", text or "").casefold()
    return "".join(ch for ch in folded if ch.isalnum() and not unicodedata.combining(ch))


_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h


def _keep_big_buffers_out_of_arenas() -> None:
    """Have glibc give scrypt's 16 MiB buffers back to the system when a check ends.

    By default glibc raises its mmap threshold to the size of the largest block freed, so
    after the first check every scrypt buffer comes from a per-thread malloc arena and stays
    there: with 16 threads a worker grew to ~390 MB (bench/run.py). Fixing the threshold at
    4 MiB keeps them mmapped and freed; measured peak fell to ~50 MB for the same work.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 4 * 1024 * 1024)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        return


#: How much less CPU the scrypt threads get than the webhook threads (added to their nice).
HASH_NICENESS = 10


def _lower_priority() -> None:
    """Lower this thread's CPU priority (Linux: setpriority on a thread id is per thread)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + HASH_NICENESS, 19)
        )
    except (OSError, AttributeError):  # not Linux, or not permitted: run at normal priority
        return


class _HashThreads:
    """scrypt on a few threads of its own, niced, so a burst of PIN checks cannot starve the
    webhooks that hash nothing (bench/run.py: their p99 under 200 calls rose with the checks).

    At most ``size`` checks run at once; the rest queue. The pool is made in the process
    that first hashes (and again after a fork: a forked child has none of its threads).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def run(self, fn: Callable[[], bytes]) -> bytes:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(
                    self.size, thread_name_prefix="scrypt", initializer=_lower_priority
                )
                self._pid = os.getpid()
            pool = self._pool
        return pool.submit(fn).result()


class Hasher:
    """Salted, keyed hashes of secrets, checked in constant time."""

    def __init__(self, key: bytes, cost: int = 14) -> None:
        if len(key) < 16:
            raise ValueError("the secrets key must be at least 16 bytes")
        self._key = key
        self.cost = cost
        # scrypt is memory-hard (16 MiB a check at cost 14): a few at a time per process keeps
        # memory flat and latency steady when many PINs arrive at once; the rest queue.
        self._threads = _HashThreads(max(os.cpu_count() or 1, 1))
        _keep_big_buffers_out_of_arenas()
        # Checked against when there is no stored hash, so an unknown adviser takes as long.
        self._decoy = self.hash(secrets.token_hex(8))

    def _derive(self, secret: str, salt: bytes, cost: int) -> bytes:
        keyed = hmac.new(self._key, secret.encode("utf-8"), hashlib.sha256).digest()
        return self._threads.run(
            lambda: hashlib.scrypt(
                keyed, salt=salt, n=2**cost, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=2**26, dklen=32
            )
        )

    def hash(self, secret: str) -> str:
        """A new salted, keyed hash of ``secret``."""
        salt = secrets.token_bytes(16)
        digest = self._derive(secret, salt, self.cost)
        return "$".join(["scrypt", str(self.cost), _b64(salt), _b64(digest)])

    def verify(self, secret: str, stored: str | None) -> bool:
        """Whether ``secret`` matches ``stored``; a missing or odd hash never matches."""
        target = stored or self._decoy
        try:
            scheme, cost_text, salt_text, digest_text = target.split("$")
            cost = int(cost_text)
            if scheme != "scrypt" or not 10 <= cost <= 20:
                raise ValueError(scheme)
            salt, digest = _unb64(salt_text), _unb64(digest_text)
        except ValueError:
            target, cost = self._decoy, self.cost
            _, _, salt_text, digest_text = target.split("$")
            salt, digest = _unb64(salt_text), _unb64(digest_text)
            stored = None
        matched = hmac.compare_digest(self._derive(secret, salt, cost), digest)
        return matched and stored is not None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
