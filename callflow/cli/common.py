"""What every command group shares: exit codes, the service, who is acting, secrets."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, TextIO

from ..config import Settings
from ..errors import CallflowError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

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
    from ..service import Callflow

    settings = Settings.from_env()
    if not settings.redis_url:
        raise CallflowError(NO_SHARED_STORE)
    return Callflow(settings)


def by() -> str:
    """Who is running the command (the audit log's ``by``)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


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

    from ..logs import configure_logging

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
