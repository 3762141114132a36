"""Console accounts and sessions: staff sign in with a username and password.

Passwords are kept as keyed scrypt hashes (the same hasher as PINs). Sign-in is rate
limited per username and per address. A session lives in the store, expires after
``IDLE_SECONDS`` without use and ``LIFETIME_SECONDS`` in all, and carries its own CSRF
token; the browser holds only a signed cookie naming it.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from .errors import DirectoryError
from .secrets import Hasher
from .staff import Staff
from .store.base import Store

__all__ = ["CONSOLE_ROLES", "Account", "Accounts", "ConsoleSession"]

CONSOLE_ROLES = frozenset({"vstrs_agent", "specialist", "designer", "auditor", "admin"})
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{2,39}$")
IDLE_SECONDS = 30 * 60
LIFETIME_SECONDS = 12 * 3600
MAX_FAILURES = 5
FAILURE_WINDOW = 15 * 60
MIN_PASSWORD = 12


@dataclass
class Account:
    """Someone who signs in to the consoles."""

    username: str
    name: str
    role: str
    password_hash: str
    sees_id: str = ""
    team: str = ""
    active: bool = True
    created_at: float = 0.0

    def public(self) -> dict[str, Any]:
        """Everything but the password hash."""
        data = asdict(self)
        data.pop("password_hash")
        return data


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in browser."""

    token: str
    username: str
    name: str
    role: str
    sees_id: str
    team: str
    csrf: str
    created_at: float
    last_seen: float


class Accounts:
    """Console accounts, sign-in and sessions."""

    def __init__(self, store: Store, hasher: Hasher, staff: Staff) -> None:
        self.store = store
        self.hasher = hasher
        self.staff = staff

    # -- accounts

    def add(
        self,
        username: str,
        name: str,
        role: str,
        password: str,
        now: float,
        *,
        sees_id: str = "",
        team: str = "",
    ) -> Account:
        """Create an account (an agent's names their SEES ID, a specialist's their team)."""
        errors = []
        if not USERNAME.match(username or ""):
            errors.append("username: 3 to 40 lower-case letters, digits, . _ -")
        if not (name or "").strip():
            errors.append("name: required")
        if role not in CONSOLE_ROLES:
            errors.append(f"role: one of {', '.join(sorted(CONSOLE_ROLES))}")
        if role == "vstrs_agent" and self.staff.agent(sees_id) is None:
            errors.append("sees_id: a registered VSTRS agent's SEES ID")
        if role == "specialist" and self.staff.team(team) is None:
            errors.append("team: a registered specialist team")
        self._check_password(password, errors)
        if errors:
            raise DirectoryError("; ".join(errors))
        account = Account(
            username,
            name.strip(),
            role,
            self.hasher.hash(password),
            sees_id if role == "vstrs_agent" else "",
            team if role == "specialist" else "",
            True,
            now,
        )
        if not self.store.add_doc("accounts", username, asdict(account)):
            raise DirectoryError(f"username: {username} is taken")
        return account

    @staticmethod
    def _check_password(password: str, errors: list[str]) -> None:
        if len(password or "") < MIN_PASSWORD:
            errors.append(f"password: at least {MIN_PASSWORD} characters")

    def get(self, username: str) -> Account | None:
        """An account, or None."""
        if not USERNAME.match(username or ""):
            return None
        doc = self.store.get_doc("accounts", username)
        return Account(**doc) if doc else None

    def list(self) -> list[Account]:
        """Every account."""
        return sorted(
            (Account(**d) for d in self.store.list_docs("accounts")), key=lambda a: a.username
        )

    def set_password(self, username: str, password: str) -> None:
        """Replace an account's password; its sessions end."""
        errors: list[str] = []
        self._check_password(password, errors)
        if errors:
            raise DirectoryError("; ".join(errors))
        hashed = self.hasher.hash(password)
        if (
            self.store.update_doc(
                "accounts", username, lambda d: {**d, "password_hash": hashed} if d else None
            )
            is None
        ):
            raise DirectoryError(f"no account {username}")
        self.end_sessions(username)

    def remove(self, username: str) -> bool:
        """Remove an account and end its sessions."""
        self.end_sessions(username)
        return self.store.delete_doc("accounts", username)

    # -- sign-in

    def _limited(self, key: str, now: float) -> bool:
        doc = self.store.get_doc("signin_failures", key)
        return bool(doc and doc["count"] >= MAX_FAILURES and now - doc["first"] < FAILURE_WINDOW)

    def _failed(self, key: str, now: float) -> None:
        def bump(d: dict[str, Any] | None) -> dict[str, Any]:
            if d is None or now - d["first"] >= FAILURE_WINDOW:
                return {"count": 1, "first": now}
            return {**d, "count": d["count"] + 1}

        self.store.update_doc("signin_failures", key, bump, ttl_seconds=FAILURE_WINDOW)

    def sign_in(
        self, username: str, password: str, address: str, now: float
    ) -> tuple[ConsoleSession | None, str]:
        """A session, or None and why (the same words whether the user or the password is wrong)."""
        keys = [f"user:{username.lower()[:40]}", f"addr:{address[:64]}"]
        if any(self._limited(key, now) for key in keys):
            return None, "too many attempts: wait 15 minutes"
        account = self.get(username)
        ok = self.hasher.verify(password, account.password_hash if account else None)
        if account is None or not ok or not account.active:
            for key in keys:
                self._failed(key, now)
            return None, "wrong username or password"
        self.store.delete_doc("signin_failures", keys[0])
        token = secrets.token_urlsafe(32)
        session: dict[str, Any] = {
            "token": token,
            "username": account.username,
            "name": account.name,
            "role": account.role,
            "sees_id": account.sees_id,
            "team": account.team,
            "csrf": secrets.token_urlsafe(32),
            "created_at": now,
            "last_seen": now,
        }
        self.store.put_doc("console_sessions", token, session, ttl_seconds=LIFETIME_SECONDS)
        return ConsoleSession(**session), ""

    def session(self, token: str, now: float) -> ConsoleSession | None:
        """The live session for a token (touching it), or None when absent, idle or too old."""
        if not token or len(token) > 100:
            return None
        doc = self.store.get_doc("console_sessions", token)
        if doc is None:
            return None
        if now - doc["last_seen"] > IDLE_SECONDS or now - doc["created_at"] > LIFETIME_SECONDS:
            self.store.delete_doc("console_sessions", token)
            return None
        if now - doc["last_seen"] > 30:  # touch at most every 30 s: no write per request
            remaining = max(int(LIFETIME_SECONDS - (now - doc["created_at"])), 1)
            doc = {**doc, "last_seen": now}
            self.store.put_doc("console_sessions", token, doc, ttl_seconds=remaining)
        return ConsoleSession(**doc)

    def sign_out(self, token: str) -> None:
        """End a session."""
        self.store.delete_doc("console_sessions", token)

    def end_sessions(self, username: str) -> None:
        """End every session of an account."""
        for doc in self.store.list_docs("console_sessions"):
            if doc["username"] == username:
                self.store.delete_doc("console_sessions", doc["token"])

    @staticmethod
    def csrf_ok(session: ConsoleSession, given: str) -> bool:
        """Whether a form's CSRF token is this session's (compared in constant time)."""
        return bool(given) and hmac.compare_digest(session.csrf, given)
