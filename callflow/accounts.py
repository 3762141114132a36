"""Console accounts and sessions: staff sign in with a username and password.

Passwords are kept as keyed scrypt hashes (the same hasher as PINs). A session lives in
the store, expires after ``IDLE_SECONDS`` without use and ``LIFETIME_SECONDS`` in all, and
carries its own CSRF token; the browser holds only a signed cookie naming it.

Sign-in is throttled so that guessing is slow and nobody can turn the throttle on others
(OWASP's device cookies). Attempts are counted *before* the password is checked, in one
atomic step per count, so concurrent attempts can never get more checks than the limit:

- from a browser where this user has signed in before (it holds a signed device cookie
  for them): ``DEVICE_LIMIT`` failures per ``FAILURE_WINDOW`` for that browser alone;
  floods elsewhere, on this username or from this address, do not touch it;
- from any other browser: ``USER_LIMIT`` failures per window for the username, and
  ``ADDRESS_LIMIT`` for the client's address (the real one behind trusted proxies), so
  spraying many usernames from one place is slowed too.

A successful sign-in gives the browser a device cookie and clears the username's count.
The first refusal of each throttle in its window is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .errors import DirectoryError
from .secrets import Hasher
from .staff import Staff
from .store.base import Store

if TYPE_CHECKING:
    from .audit import Audit

__all__ = ["CONSOLE_ROLES", "Account", "Accounts", "ConsoleSession", "SignIn"]

CONSOLE_ROLES = frozenset(
    {"vstrs_agent", "specialist", "supervisor", "designer", "auditor", "admin"}
)
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{2,39}$")
IDLE_SECONDS = 30 * 60
LIFETIME_SECONDS = 12 * 3600
USER_LIMIT = 5
ADDRESS_LIMIT = 20
DEVICE_LIMIT = 10
FAILURE_WINDOW = 15 * 60
DEVICE_COOKIE_DAYS = 90
MIN_PASSWORD = 12
THROTTLED = "too many attempts: wait 15 minutes and try again"


@dataclass(frozen=True)
class SignIn:
    """How a sign-in went: the session (or why not), and the device cookie to give."""

    session: ConsoleSession | None
    error: str
    device: str | None = None


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
    #: A specialist's staff number: the person this account is (their team comes from it).
    specialist: str = ""

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
    specialist: str = ""


class Accounts:
    """Console accounts, sign-in and sessions."""

    def __init__(
        self, store: Store, hasher: Hasher, staff: Staff, key: bytes, audit: Audit
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.staff = staff
        self.audit = audit
        store.define_index(
            "console_sessions",
            lambda d: [(f"user:{d['username']}", d["created_at"])],
            keep_seconds=LIFETIME_SECONDS,
        )
        self._device_key = hmac.new(key, b"console device cookie", hashlib.sha256).digest()

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
        specialist: str = "",
        by: str,
    ) -> Account:
        """Create an account (an agent's names their SEES ID, a specialist's their staff
        number: the specialist they are, whose team they work in)."""
        errors = []
        if not USERNAME.match(username or ""):
            errors.append("username: 3 to 40 lower-case letters, digits, . _ -")
        if not (name or "").strip():
            errors.append("name: required")
        if role not in CONSOLE_ROLES:
            errors.append(f"role: one of {', '.join(sorted(CONSOLE_ROLES))}")
        if role == "vstrs_agent" and self.staff.agent(sees_id) is None:
            errors.append(
                "sees_id: a registered VSTRS agent's SEES ID (register the agent first: "
                "`callflow agents add` or the admin console's VSTRS agents)"
            )
        person = self.staff.specialist(specialist) if role == "specialist" else None
        if role == "specialist" and person is None:
            errors.append(
                "specialist: a registered specialist's staff number (register them first: "
                "`callflow specialists add` or the admin console's Specialists)"
            )
        self._check_password(password, errors)
        if errors:
            raise DirectoryError("; ".join(errors))
        account = Account(
            username,
            name.strip(),
            role,
            self.hasher.hash(password),
            sees_id if role == "vstrs_agent" else "",
            person.team if person is not None else "",
            True,
            now,
            person.id if person is not None else "",
        )
        if not self.store.add_doc("accounts", username, asdict(account)):
            raise DirectoryError(f"username: {username} is taken")
        self.audit.record(
            "staff.account_added", account=username, role=role, by=by, outcome="added"
        )
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

    def role_of(self, username: str) -> str | None:
        """An active account's role (None: no such account, or not active)."""
        account = self.get(username)
        return account.role if account is not None and account.active else None

    def list(self) -> list[Account]:
        """Every account."""
        return sorted(
            (Account(**d) for d in self.store.list_docs("accounts")), key=lambda a: a.username
        )

    def count(self) -> int:
        """How many accounts there are (never a read of them)."""
        return self.store.count_docs("accounts")

    def set_password(self, username: str, password: str, *, by: str) -> None:
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
        self.audit.record("staff.password_set", account=username, by=by, outcome="set")

    def remove(self, username: str, *, by: str) -> bool:
        """Remove an account and end its sessions."""
        self.end_sessions(username)
        if not self.store.delete_doc("accounts", username):
            return False
        self.audit.record("staff.account_removed", account=username, by=by, outcome="removed")
        return True

    # -- sign-in

    # -- device cookies: a browser where this user has signed in before

    def _device_mac(self, username: str, nonce: str) -> str:
        return hmac.new(self._device_key, f"{username}|{nonce}".encode(), "sha256").hexdigest()

    def device_cookie(self, username: str, nonce: str | None = None) -> str:
        """A signed cookie value saying this browser signed in as ``username``."""
        nonce = nonce or secrets.token_hex(12)
        return f"{username}|{nonce}|{self._device_mac(username, nonce)}"

    def _device_nonce(self, cookie: str | None, username: str) -> str | None:
        """The cookie's nonce, if it is a genuine device cookie for this username."""
        parts = (cookie or "").split("|")
        if len(parts) != 3 or parts[0] != username or len(cookie or "") > 200:
            return None
        if not hmac.compare_digest(parts[2], self._device_mac(username, parts[1])):
            return None
        return parts[1]

    # -- sign-in

    def _throttle(
        self, scope: str, key: str, limit: int, username: str, address: str, now: float
    ) -> bool:
        """Count an attempt; False (audited the first time in a window) when over the limit."""
        taken = self.store.take(f"signin:{key}", limit, FAILURE_WINDOW, now)
        if taken <= limit:
            return True
        if taken == limit + 1:
            self.audit.record(
                "console.signin_throttled",
                scope=scope,
                username=username if USERNAME.match(username) else "(not a username)",
                address=address[:64],
                outcome="throttled",
            )
        return False

    def sign_in(
        self, username: str, password: str, address: str, now: float, device: str | None = None
    ) -> SignIn:
        """A session, or why not (the same words whether the user or the password is wrong)."""
        username = username.lower()[:40]
        nonce = self._device_nonce(device, username)
        counted: list[str] = []
        if nonce is not None:
            device_key = f"device:{nonce}"
            if not self._throttle("device", device_key, DEVICE_LIMIT, username, address, now):
                return SignIn(None, THROTTLED)
            counted.append(f"signin:device:{nonce}")
        else:
            for scope, key, limit in (
                ("address", f"addr:{address[:64]}", ADDRESS_LIMIT),
                ("user", f"user:{username}", USER_LIMIT),
            ):
                if not self._throttle(scope, key, limit, username, address, now):
                    return SignIn(None, THROTTLED)
                counted.append(f"signin:{key}")
        account = self.get(username)
        ok = self.hasher.verify(password, account.password_hash if account else None)
        if account is None or not ok or not account.active:
            return SignIn(None, "wrong username or password")
        # Not a failure after all: the counts are of failures.
        for key in counted:
            if key.startswith("signin:addr:"):
                self.store.give_back(key)
            else:
                self.store.forget(key)
        self.store.forget(f"signin:user:{username}")
        token = secrets.token_urlsafe(32)
        session: dict[str, Any] = {
            "token": token,
            "username": account.username,
            "name": account.name,
            "role": account.role,
            "sees_id": account.sees_id,
            "team": account.team,
            "specialist": account.specialist,
            "csrf": secrets.token_urlsafe(32),
            "created_at": now,
            "last_seen": now,
        }
        self.store.put_doc("console_sessions", token, session, ttl_seconds=LIFETIME_SECONDS)
        return SignIn(ConsoleSession(**session), "", self.device_cookie(username, nonce))

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
        if doc["role"] == "specialist":
            # A specialist works in the team their record names now (an admin may move
            # them); one removed or deactivated signs in no more.
            person = self.staff.specialist(doc.get("specialist", ""))
            if person is None or not person.active:
                return None
            doc = {**doc, "team": person.team}
        return ConsoleSession(**doc)

    def sign_out(self, token: str) -> None:
        """End a session."""
        self.store.delete_doc("console_sessions", token)

    def end_sessions(self, username: str) -> None:
        """End every session of an account."""
        for doc in self.store.indexed("console_sessions", f"user:{username}"):
            self.store.delete_doc("console_sessions", doc["token"])

    @staticmethod
    def csrf_ok(session: ConsoleSession, given: str) -> bool:
        """Whether a form's CSRF token is this session's (compared in constant time)."""
        return bool(given) and hmac.compare_digest(session.csrf, given)
