"""The ``callflow`` command: serve, lint and draw flows, manage advisers.

    callflow serve [--port 8000] [--demo-adviser]
    callflow lint [PATH ...]
    callflow graph FLOW [--format mermaid|svg|png] [-o FILE]
    callflow advisers add | set-pin | set-answers | unlock | list | remove | questions

Secrets are read without echo (or one per line from a pipe) and a PIN the service issues
is shown once, at issue; none is ever printed again or logged.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .config import Settings
from .demo import DEMO_ADVISER_TEXT
from .directory import ORGANISATIONS, QUESTIONS
from .errors import CallflowError, DirectoryError, FlowValidationError
from .flowspec import flow_files, lint_paths, load_flow

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``callflow`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        result: int = args.handler(args)
        return result
    except (CallflowError, DirectoryError) as exc:
        print(f"callflow: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callflow", description="VSTRS call flows on Twilio Voice."
    )
    sub = parser.add_subparsers(metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the webhook service under gunicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (1 on the embedded store)"
    )
    serve.add_argument(
        "--demo-adviser",
        action="store_true",
        help="embedded store only: add adviser 1001 with demo secrets and print them",
    )
    serve.set_defaults(handler=_serve)

    lint = sub.add_parser("lint", help="check flow files; print file:line problems")
    lint.add_argument("paths", nargs="*", help="flow files or folders (default: the flows folder)")
    lint.set_defaults(handler=_lint)

    graph = sub.add_parser("graph", help="draw a flow (Mermaid text, or SVG/PNG with Graphviz)")
    graph.add_argument("flow", help="a flow file, or the name of a flow in the flows folder")
    graph.add_argument("--format", choices=["mermaid", "svg", "png"], default="mermaid")
    graph.add_argument("-o", "--output", help="write to this file (default: standard output)")
    graph.set_defaults(handler=_graph)

    advisers = sub.add_parser(
        "advisers", help="manage VCS advisers, their PINs and security answers"
    )
    adv = advisers.add_subparsers(metavar="ACTION")
    add = adv.add_parser("add", help="register an adviser; their PIN is issued and shown once")
    add.add_argument("--number", required=True, help="adviser number, 4 to 10 digits")
    add.add_argument("--name", required=True)
    add.add_argument("--org", required=True, choices=sorted(ORGANISATIONS))
    add.add_argument("--phone", default="")
    add.add_argument("--email", default="")
    add.add_argument(
        "--consent-to-act",
        action="store_true",
        help="the organisation holds consent to act, so contact details may be passed on",
    )
    add.set_defaults(handler=_advisers_add)
    set_pin = adv.add_parser("set-pin", help="set a PIN (read without echo) or issue a new one")
    set_pin.add_argument("number")
    set_pin.add_argument("--issue", action="store_true", help="issue a random PIN and show it once")
    set_pin.set_defaults(handler=_advisers_set_pin)
    set_answers = adv.add_parser(
        "set-answers", help="register security answers (read without echo)"
    )
    set_answers.add_argument("number")
    set_answers.add_argument(
        "--question",
        action="append",
        dest="questions",
        choices=sorted(QUESTIONS),
        help="a question to register (repeat; default: asks which)",
    )
    set_answers.set_defaults(handler=_advisers_set_answers)
    unlock = adv.add_parser("unlock", help="lift a lockout")
    unlock.add_argument("number")
    unlock.set_defaults(handler=_advisers_unlock)
    listing = adv.add_parser("list", help="list advisers (never secrets)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_advisers_list)
    remove = adv.add_parser("remove", help="remove an adviser")
    remove.add_argument("number")
    remove.set_defaults(handler=_advisers_remove)
    questions = adv.add_parser(
        "questions", help="list the security questions advisers can register"
    )
    questions.set_defaults(handler=_advisers_questions)
    advisers.set_defaults(handler=lambda _args: _usage(advisers))
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


# ---------------------------------------------------------------- flows


def _lint(args: argparse.Namespace) -> int:
    paths = args.paths or [str(Settings().flows_dir)]
    problems = lint_paths(paths)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return EXIT_PROBLEMS
    for root in paths:
        for file in flow_files(root):
            flow = load_flow(file)
            print(f"ok {file}: flow {flow.name} version {flow.version}, {len(flow.states)} states")
    return EXIT_OK


def _resolve_flow(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    flows_dir = Settings().flows_dir
    for candidate in flow_files(flows_dir):
        try:
            if load_flow(candidate).name == name_or_path:
                return candidate
        except FlowValidationError:
            continue
    raise CallflowError(f"no flow file or flow named {name_or_path!r} (looked in {flows_dir})")


def _graph(args: argparse.Namespace) -> int:
    from . import graph

    try:
        flow = load_flow(_resolve_flow(args.flow))
    except FlowValidationError as exc:
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    data = (
        graph.mermaid(flow).encode()
        if args.format == "mermaid"
        else graph.render(flow, args.format)
    )
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return EXIT_OK


# ---------------------------------------------------------------- serving


def _serve(args: argparse.Namespace) -> int:
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
        "--bind",
        f"{args.host}:{args.port}",
        "--workers",
        str(workers),
        "--threads",
        "4",
        "--timeout",
        "20",
        "--access-logfile",
        "-",
        "webhooks:create_app()",
    ]
    print(
        f"callflow on http://{args.host}:{args.port} (store: {store_kind})",
        flush=True,
    )
    os.execvpe(command[0], command, env)  # noqa: S606  (replaces this process with gunicorn)
    return EXIT_OK  # pragma: no cover


# ---------------------------------------------------------------- advisers


def _service() -> Any:
    from .service import Callflow

    settings = Settings.from_env()
    if not settings.redis_url:
        raise CallflowError(
            "REDIS_URL is not set: adviser commands change the shared store the service uses "
            "(the embedded store lives inside the running service)"
        )
    return Callflow(settings)


def _by() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _read_secret(prompt: str, stream: TextIO | None = None) -> str:
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


def _advisers_add(args: argparse.Namespace) -> int:
    svc = _service()
    adviser, pin = svc.directory.add(
        args.number,
        args.name,
        args.org,
        phone=args.phone,
        email=args.email,
        consent_to_act=args.consent_to_act,
        now=svc.clock.now(),
    )
    svc.audit.record(
        "adviser.added",
        adviser=adviser.number,
        organisation=adviser.organisation,
        by=_by(),
        outcome="added",
    )
    print(f"added adviser {adviser.number} ({adviser.name}, {adviser.organisation_name})")
    print(f"PIN (shown once, give it to the adviser securely): {pin}")
    print(f"next: callflow advisers set-answers {adviser.number}")
    return EXIT_OK


def _advisers_set_pin(args: argparse.Namespace) -> int:
    svc = _service()
    svc.directory.require(args.number)
    if args.issue:
        pin = svc.directory.set_pin(args.number, None, svc.clock.now())
        print(f"new PIN for {args.number} (shown once): {pin}")
    else:
        svc.directory.set_pin(
            args.number, _read_secret(f"new PIN for {args.number}"), svc.clock.now()
        )
        print(f"PIN set for {args.number}")
    svc.audit.record("adviser.pin_set", adviser=args.number, by=_by(), outcome="set")
    return EXIT_OK


def _advisers_set_answers(args: argparse.Namespace) -> int:
    svc = _service()
    svc.directory.require(args.number)
    chosen = args.questions
    if not chosen:
        if not sys.stdin.isatty():
            raise CallflowError("name the questions with --question when answers come from a pipe")
        for qid, question in QUESTIONS.items():
            print(f"  {qid}: {question.prompt}")
        chosen = input("questions to register (space separated ids): ").split()
    unknown = [q for q in chosen if q not in QUESTIONS]
    if unknown:
        raise CallflowError(f"unknown questions: {', '.join(unknown)}")
    answers = {qid: _read_secret(f"answer to {qid} ({QUESTIONS[qid].prompt})") for qid in chosen}
    svc.directory.set_answers(args.number, answers, svc.clock.now())
    svc.audit.record(
        "adviser.answers_set",
        adviser=args.number,
        questions=sorted(answers),
        by=_by(),
        outcome="set",
    )
    print(f"{len(answers)} security answers registered for {args.number}")
    return EXIT_OK


def _advisers_unlock(args: argparse.Namespace) -> int:
    svc = _service()
    svc.unlock_adviser(args.number, by=_by())
    print(f"adviser {args.number} unlocked")
    return EXIT_OK


def _advisers_list(args: argparse.Namespace) -> int:
    svc = _service()
    rows = []
    for adviser in svc.directory.list():
        status = svc.store.lock_status(adviser.number)
        rows.append(
            {
                **adviser.public(),
                "failures": status.failures,
                "locked_minutes": round(status.locked_seconds / 60, 1),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no advisers registered")
    for row in rows:
        lock = (
            f"LOCKED {row['locked_minutes']} min"
            if row["locked_minutes"]
            else f"{row['failures']} failures"
        )
        consent = "consent to act" if row["consent_to_act"] else "no consent to act"
        print(
            f"{row['number']:>10}  {row['name']:<24} {row['organisation_name']:<30} "
            f"{consent:<18} questions: {len(row['questions'])}  {lock}"
        )
    return EXIT_OK


def _advisers_remove(args: argparse.Namespace) -> int:
    svc = _service()
    if not svc.directory.remove(args.number):
        raise CallflowError(f"no adviser {args.number}")
    svc.audit.record("adviser.removed", adviser=args.number, by=_by(), outcome="removed")
    print(f"adviser {args.number} removed")
    return EXIT_OK


def _advisers_questions(_args: argparse.Namespace) -> int:
    for qid, question in QUESTIONS.items():
        print(f"{qid:<18} {question.prompt}")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
