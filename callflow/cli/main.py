"""The command line's root: every group's parser, and the exit codes a failure maps to."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import CallflowError
from . import (
    access,
    advisers,
    assurance,
    audit,
    callbacks,
    calls,
    flows,
    hours,
    meetings,
    ops,
    serve,
    staff,
    traces,
)
from .common import EXIT_USAGE, exit_for

__all__ = ["main"]

#: The command groups, in the order ``callflow --help`` lists them.
GROUPS = (
    serve, flows, traces, calls, ops, staff, hours, meetings, callbacks, audit, assurance,
    access, advisers,
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``callflow`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        result: int = args.handler(args)
        return result
    except CallflowError as exc:
        code, hint = exit_for(exc)
        said = f"callflow: {exc}"
        print(said + (f" ({hint})" if hint and hint not in said else ""), file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    """Every command, each group registered by its own module."""
    parser = argparse.ArgumentParser(
        prog="callflow", description="VSTRS call flows on Twilio Voice."
    )
    sub = parser.add_subparsers(metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser
