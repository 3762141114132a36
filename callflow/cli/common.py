"""What every command group shares: exit codes, the service, who is acting, secrets.

Every command that changes what callers hear or who may act does it as a signed-in
account (ARCHITECTURE.md rule 12): ``callflow login`` keeps a console session's token in
the user's config folder (readable by them alone; it lapses like any session: 30 minutes
unused, 12 hours in all), or ``CALLFLOW_TOKEN`` holds a personal API token. The account's
role is then checked by the same service methods the consoles use. ``$LOGNAME`` and
``$USER`` never decide who acts.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from ..access import Viewer, require
from ..config import Settings
from ..errors import (
    CallflowError,
    ConfigError,
    StoreUnavailable,
    TwilioError,
    Unauthenticated,
)
from ..logs import configure_logging
from ..service import Callflow

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
#: sysexits.h's EX_UNAVAILABLE: a service the command needs (the store, Twilio) is down;
#: a script may try again later, unlike a refusal.
EXIT_UNAVAILABLE = 69

#: What the command line answers for each kind of error, most particular first: the exit
#: code, and a hint said after the error's own words (or nothing).
EXIT: tuple[tuple[type[Exception], int, str], ...] = (
    (Unauthenticated, EXIT_PROBLEMS, "sign in with `callflow login` (or set CALLFLOW_TOKEN)"),
    (StoreUnavailable, EXIT_UNAVAILABLE, "the store could not be reached: try again shortly"),
    (TwilioError, EXIT_UNAVAILABLE, "Twilio could not be reached: try again shortly"),
    (CallflowError, EXIT_PROBLEMS, ""),
)


def exit_for(exc: Exception) -> tuple[int, str]:
    """The exit code and hint for ``exc`` (from :data:`EXIT`)."""
    for kind, code, hint in EXIT:
        if isinstance(exc, kind):
            return code, hint
    return EXIT_PROBLEMS, ""

#: What to do when a command that changes the shared store runs without one.
NO_SHARED_STORE = (
    "REDIS_URL is not set, and this command changes the shared store the service uses "
    "(the embedded store lives inside one running service and nothing else can reach it).\n"
    "  To try things out: `callflow serve --demo` has demo accounts, agents, teams and "
    "advisers, and its admin console (/console/admin) manages them.\n"
    "  To use Redis: export REDIS_URL=redis://127.0.0.1:6379/0 and run this again."
)


def service() -> Any:
    """The service on the shared store (Redis); a clear next step when there is none."""

    settings = Settings.from_env()
    if not settings.redis_url:
        raise ConfigError(NO_SHARED_STORE)
    return Callflow(settings)


NOT_SIGNED_IN = (
    "this command acts as a person: sign in first with `callflow login` (or set "
    "CALLFLOW_TOKEN to your personal API token)"
)


def config_dir() -> Path:
    """Where the CLI keeps the signed-in session: CALLFLOW_CONFIG_DIR, else the user's
    config folder (XDG_CONFIG_HOME, else ~/.config) ``/callflow``."""
    chosen = os.environ.get("CALLFLOW_CONFIG_DIR")
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "callflow"


def _store_id(settings: Settings) -> str:
    """Which shared store a saved session belongs to (a digest: never the URL itself)."""
    return hashlib.sha256((settings.redis_url or "").encode()).hexdigest()[:16]


def session_file() -> Path:
    return config_dir() / "session.json"


def save_session(token: str, username: str, role: str) -> Path:
    """Keep a signed-in session for later commands, readable by this user alone."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = session_file()
    body = {"token": token, "username": username, "role": role,
            "store": _store_id(Settings.from_env())}  # fmt: skip
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(body, out)
    os.chmod(path, 0o600)
    return path


def saved_session() -> dict[str, Any] | None:
    """The session ``callflow login`` kept, if any (None if unreadable or for another
    store)."""
    path = session_file()
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("store") != _store_id(Settings.from_env()):
        return None
    return saved


def forget_session() -> None:
    """Remove the kept session (signing out)."""
    session_file().unlink(missing_ok=True)


def signed_in(svc: Any) -> Viewer | None:
    """Who is acting: CALLFLOW_TOKEN's person, else the kept session's (None when
    neither is live)."""
    token = os.environ.get("CALLFLOW_TOKEN", "").strip()
    if token:
        member = svc.staff.authenticate(token)
        if member is None:
            raise Unauthenticated("CALLFLOW_TOKEN is not a live API token (revoked, or mistyped)")
        return Viewer(
            role=member.role,
            sees_id=member.staff_id if member.role == "vstrs_agent" else "",
            team=member.team,
            name=member.name,
            username=member.staff_id,
            specialist=member.staff_id if member.role == "specialist" else "",
            via=f"API token {member.token_id}",
        )
    saved = saved_session()
    if saved is None:
        return None
    session = svc.accounts.session(str(saved.get("token", "")), svc.clock.now())
    if session is None:
        return None
    return Viewer(
        session.role,
        session.sees_id,
        session.team,
        session.name,
        session.username,
        specialist=session.specialist,
        via="CLI",
    )


def actor(svc: Any, roles: Iterable[str] = (), doing: str = "this") -> Viewer:
    """The signed-in person a command acts as, checked for one of ``roles`` (when given);
    a clear error when nobody is signed in."""
    viewer = signed_in(svc)
    if viewer is None:
        raise Unauthenticated(NOT_SIGNED_IN)
    wanted = list(roles)
    if wanted:
        require(viewer, wanted, doing)
    return viewer


def read_secret(prompt: str, stream: TextIO | None = None) -> str:
    """A secret from the terminal without echo (asked twice), or one line from a pipe."""
    stream = stream or sys.stdin
    if not stream.isatty():
        line = stream.readline()
        if not line:
            raise CallflowError(f"expected a line on standard input for: {prompt}")
        return line.rstrip("\n")
    first = getpass.getpass(f"{prompt}: ")
    again = getpass.getpass(f"{prompt} (again): ")
    if first != again:
        raise CallflowError("the two entries differ; nothing changed")
    return first


def confirm(question: str, stream: TextIO | None = None) -> bool:
    """Ask a yes-or-no question of the person at the terminal (a line on stdin when
    piped): only "y" or "yes" is yes."""
    stream = stream or sys.stdin
    print(f"{question} [y/N] ", end="", flush=True)
    answer = stream.readline().strip().lower()
    return answer in {"y", "yes"}


def usage(parser: argparse.ArgumentParser) -> int:
    """A command group run with no action: its help, and the usage exit code."""
    parser.print_help()
    return EXIT_USAGE


def when_text(at: float | None) -> str:
    """A timestamp as UTC text, or ``-``."""
    from datetime import UTC, datetime

    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def parse_date(text: str | None) -> Any:
    """A YYYY-MM-DD option as a date (None when not given)."""
    import datetime as _dt

    if not text:
        return None
    try:
        return _dt.date.fromisoformat(text)
    except ValueError as exc:
        raise CallflowError(f"dates are YYYY-MM-DD, not {text!r}") from exc


def quiet_logs(verbose: bool) -> None:
    """Commands that tell a story print it alone; the service's log lines only with -v."""
    import logging


    configure_logging()
    logging.getLogger().setLevel(logging.INFO if verbose else logging.ERROR)


def worker(every: float, name: str, work: Any) -> int:
    """Run ``work()`` once, or every ``every`` seconds for ever (a Procfile worker). Each
    line it returns is printed. A store or Twilio failure is reported and, in a worker,
    the next round tries again; run once, it is the command's failure."""
    import time

    while True:
        try:
            for line in work():
                print(line, flush=True)
        except CallflowError as exc:
            print(f"{name}: {exc}", file=sys.stderr, flush=True)
            if not every:
                return EXIT_PROBLEMS
        if not every:
            return EXIT_OK
        time.sleep(every)
