"""Serving the service: ``callflow serve``."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from typing import Any

from ..config import Settings
from ..demo import DEMO_ADVISER_TEXT
from ..demo_world import DemoWorld
from ..errors import CallflowError
from ..logs import configure_logging
from ..sandbox import web_app_spec
from .common import EXIT_OK


def register(sub: Any) -> None:
    """Add this group's commands."""
    serve = sub.add_parser("serve", help="run the webhook service under gunicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (1 on the embedded store)"
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="the demo world on the embedded store: the local Twilio simulator, demo accounts "
        "for every role (printed at start), agents, teams, advisers and callers ringing",
    )
    serve.add_argument(
        "--caller-every",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="with --demo: how often a scripted caller rings (default 20)",
    )
    serve.add_argument("-v", "--verbose", action="store_true", help="with --demo: every log line")
    serve.add_argument(
        "--demo-adviser",
        action="store_true",
        help="embedded store only: add adviser 1001 with demo secrets and print them",
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    if args.demo:
        return _serve_demo(args)
    settings = Settings.from_env()
    env = dict(os.environ)
    if settings.signature_check and not settings.twilio_auth_token:
        token = secrets.token_hex(16)
        env["TWILIO_AUTH_TOKEN"] = token
        print(
            f"TWILIO_AUTH_TOKEN was not set; requests must be signed with this local token: {token}"
        )
    embedded = not settings.redis_url
    if args.demo_adviser:
        if not embedded:
            raise CallflowError(
                "--demo-adviser is for the embedded store; use `callflow advisers add`"
            )
        env["CALLFLOW_DEMO_ADVISER"] = "1"
        print(DEMO_ADVISER_TEXT)
    workers = args.workers or (1 if embedded else 2)
    if embedded and workers != 1:
        raise CallflowError(
            "the embedded store lives in one process: use --workers 1 or set REDIS_URL"
        )
    store_kind = "embedded" if embedded else "redis"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:callflow.gunicorn_hooks",
        "--bind",
        f"{args.host}:{args.port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        "8",
        "--timeout",
        "20",
        "--access-logfile",
        "-",
        f"{web_app_spec()}()",
    ]
    print(
        f"callflow on http://{args.host}:{args.port} (store: {store_kind})",
        flush=True,
    )
    os.execvpe(command[0], command, env)  # noqa: S606  (replaces this process with gunicorn)
    return EXIT_OK  # pragma: no cover


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _serve_demo(args: argparse.Namespace) -> int:
    """The demo world in this process, served by a small threaded server until Ctrl-C."""
    import logging

    from werkzeug.serving import make_server


    if os.environ.get("REDIS_URL"):
        raise CallflowError(
            "--demo runs on the embedded store and its accounts' password is printed: "
            "unset REDIS_URL to try it (`env -u REDIS_URL callflow serve --demo`)"
        )
    if args.host not in LOOPBACK:
        raise CallflowError(
            f"--demo serves on this machine only (--host 127.0.0.1), not {args.host}: "
            "its secrets are printed and in the README"
        )
    if args.caller_every < 5:
        raise CallflowError("--caller-every: at least 5 seconds")
    configure_logging()
    logging.getLogger().setLevel(logging.INFO if args.verbose else logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.ERROR)
    world = DemoWorld(f"http://{args.host}:{args.port}", caller_every=args.caller_every)
    try:
        server = make_server(args.host, args.port, world.app, threaded=True)
    except OSError as exc:
        raise CallflowError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror}): "
            "is something else there? Try --port 8001"
        ) from exc
    world.start()
    print(world.banner(), flush=True)
    print("\nCtrl-C stops it (everything lives in this process and goes with it).", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        world.stop()
        server.server_close()
    return EXIT_OK
