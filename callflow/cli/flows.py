"""Flows: lint, test, draw, publish, history, diff and roll back."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .. import graph
from ..actions import builtin_registry
from ..config import Settings
from ..errors import CallflowError, FlowValidationError, PublishRefused, ReplayChanges
from ..flowspec import flow_files, lint_paths, load_flow
from ..flowtests import run_path, tests_for
from ..handoff import HANDOFF
from ..presence import AGENT
from ..sandbox import Sandbox
from ..service import Callflow
from ..vstrs import CALL
from . import common, review
from .common import EXIT_OK, EXIT_PROBLEMS


def register(sub: Any) -> None:
    """Add this group's commands."""
    test = sub.add_parser(
        "test", help="run flows' YAML tests through the simulator; print results and coverage"
    )
    test.add_argument(
        "paths", nargs="*", help="flow files, test files or folders (default: the flows folder)"
    )
    test.add_argument("-v", "--verbose", action="store_true", help="print every transcript")
    test.add_argument(
        "--min-coverage",
        type=float,
        default=0.0,
        metavar="PERCENT",
        help="fail when a flow's coverage (states and transitions) is below this",
    )
    test.set_defaults(handler=_test)

    lint = sub.add_parser("lint", help="check flow files; print file:line problems")
    lint.add_argument("paths", nargs="*", help="flow files or folders (default: the flows folder)")
    lint.set_defaults(handler=_lint)

    graph = sub.add_parser(
        "graph",
        help="draw a flow (Mermaid text, or SVG/PNG with Graphviz), or a record's lifecycle",
    )
    graph.add_argument(
        "flow", nargs="?", help="a flow file, or the name of a flow in the flows folder"
    )
    graph.add_argument(
        "--lifecycle",
        choices=["handoff", "call", "agent"],
        help="draw a lifecycle declared in the code instead (Mermaid): a hand-off's, a "
        "verified call's, an agent's working state",
    )
    graph.add_argument("--format", choices=["mermaid", "svg", "png"], default="mermaid")
    graph.add_argument("-o", "--output", help="write to this file (default: standard output)")
    graph.set_defaults(handler=_graph)
    flows = sub.add_parser(
        "flows", help="publish flows to the shared store, see their history, diff, roll back"
    )
    fl = flows.add_subparsers(metavar="ACTION")
    publish = fl.add_parser(
        "publish", help="validate and test a flow, then make it live on every worker"
    )
    publish.add_argument("file", help="the flow file")
    publish.add_argument("--tests", help="its tests (default: NAME.test.yaml beside the flow file)")
    publish.add_argument(
        "-m", "--message", required=True, help="the revision note: what changed and why"
    )
    publish.add_argument(
        "--replay",
        type=int,
        metavar="N",
        help="replay the last N real calls first (default CALLFLOW_REPLAY_CALLS; 0: none)",
    )
    publish.add_argument(
        "--strict", action="store_true", help="refuse it if it would change any replayed call"
    )
    publish.add_argument(
        "--yes", action="store_true", help="publish even if the replay finds calls it would change"
    )
    publish.set_defaults(handler=_flows_publish)
    flows_list = fl.add_parser("list", help="every flow: its live version and where it is from")
    flows_list.set_defaults(handler=_flows_list)
    history = fl.add_parser("history", help="a flow's publishes and rollbacks, newest last")
    history.add_argument("name")
    history.set_defaults(handler=_flows_history)
    diff = fl.add_parser("diff", help="what changed between two versions of a flow")
    diff.add_argument("name")
    diff.add_argument("old")
    diff.add_argument("new")
    diff.set_defaults(handler=_flows_diff)
    rollback = fl.add_parser(
        "rollback", help="make an earlier version live (default: the one before the live one)"
    )
    rollback.add_argument("name")
    rollback.add_argument("version", nargs="?")
    rollback.add_argument(
        "-m", "--message", required=True, help="why (kept in the history and the audit)"
    )
    rollback.add_argument(
        "--emergency",
        action="store_true",
        help="a protected flow, at once: back to the last version a second person approved "
        "(audited as an emergency)",
    )
    rollback.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rollback.set_defaults(handler=_flows_rollback)
    allow = review.register(sub, fl)
    allow.set_defaults(handler=lambda _args: common.usage(allow))
    flows.set_defaults(handler=lambda _args: common.usage(flows))


def _lint(args: argparse.Namespace) -> int:
    paths = args.paths or [str(Settings().flows_dir)]
    # Destinations and media are checked against the admin's allow-lists in the shared
    # store; with no REDIS_URL the lists are empty (the embedded store starts empty).
    allowed = common.service().allowlists.snapshot() if os.environ.get("REDIS_URL") else None
    problems = lint_paths(paths, allowed=allowed)
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


def _test(args: argparse.Namespace) -> int:
    import logging


    # Each test runs a whole service; its INFO lines would bury the results.
    logging.basicConfig(level=logging.ERROR)
    sandbox = Sandbox(Callflow)  # the web app: the package's callflow.web entry point
    registry = builtin_registry()
    paths = args.paths or [str(Settings().flows_dir)]
    failed = 0
    for root in paths:
        results, problems = run_path(root, registry, sandbox=sandbox)
        for problem in problems:
            print(problem)
        failed += len(problems)
        for result in results:
            print(result.report(verbose=args.verbose))
            failed += sum(1 for r in result.results if not r.passed)
            percent = result.coverage.percent()
            if percent < args.min_coverage:
                print(f"  coverage {percent:.0f}% is below --min-coverage {args.min_coverage:g}%")
                failed += 1
    if failed:
        print(f"{failed} failure(s)", file=sys.stderr)
        return EXIT_PROBLEMS
    print("all flow tests passed")
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

    if args.lifecycle:

        lifecycle = {"handoff": HANDOFF, "call": CALL, "agent": AGENT}[args.lifecycle]
        sys.stdout.write(lifecycle.mermaid())
        return EXIT_OK
    if not args.flow:
        print("name a flow to draw, or --lifecycle", file=sys.stderr)
        return EXIT_PROBLEMS
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


def _flows_publish(args: argparse.Namespace) -> int:
    import logging


    logging.basicConfig(level=logging.WARNING)
    svc = common.service()
    who = common.actor(svc, ("designer", "admin"), "publishing flows")
    path = Path(args.file)
    tests_path = Path(args.tests) if args.tests else tests_for(path)
    try:
        source = path.read_text(encoding="utf-8")
        tests_source = tests_path.read_text(encoding="utf-8") if tests_path.exists() else ""
    except OSError as exc:
        raise CallflowError(f"cannot read {exc.filename}: {exc.strerror}") from None
    def publish(confirm: bool | str) -> dict[str, Any]:
        entry: dict[str, Any] = svc.releases.publish(
            source,
            tests_source,
            who,
            label=str(path),
            message=args.message,
            confirm=confirm,
            strict=args.strict,
            replay_calls=args.replay,
        )
        return entry

    try:
        entry = publish(bool(args.yes))
    except ReplayChanges as exc:
        print(exc.replay.text(), end="")
        if not sys.stdin.isatty():
            print(
                f"callflow: version {exc.version} was not published: it would change recorded "
                "calls (above); publish it anyway with --yes",
                file=sys.stderr,
            )
            return EXIT_PROBLEMS
        answer = input(f"Publish version {exc.version} anyway? [y/N] ").strip().lower()
        if answer not in {"y", "yes"}:
            print("not published")
            return EXIT_PROBLEMS
        try:
            entry = publish(exc.version)
        except PublishRefused as again:
            print(f"callflow: {again}", file=sys.stderr)
            return EXIT_PROBLEMS
    except PublishRefused as exc:
        print(f"callflow: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    if entry.get("replay"):
        print(entry["replay"])
    if entry.get("pending"):
        print(
            f"{entry['flow']} is protected: version {entry['version']} ({entry['tests']} "
            f"test(s) passed, coverage {entry['coverage']}) waits for a second designer: "
            f"callflow flows approve {entry['flow']} {entry['version']}"
        )
        return EXIT_OK
    was = entry["previous"] or "nothing: a new flow"
    print(
        f"published {entry['flow']} version {entry['version']} (was {was}): {entry['tests']} "
        f"test(s) passed, coverage {entry['coverage']}; live on every worker within "
        f"{svc.settings.flow_release_check_seconds:g}s"
    )
    return EXIT_OK


def _flows_list(_args: argparse.Namespace) -> int:
    svc = common.service()
    released = svc.releases.live_map()
    for name, version in svc.library.live_versions().items():
        where = "published" if released.get(name) == version else "file"
        print(f"{name:<22} {version}  ({where})")
    return EXIT_OK


def _flows_history(args: argparse.Namespace) -> int:
    svc = common.service()
    release = svc.releases.release(args.name)
    file_flow = svc.releases.file_flow(args.name)
    if release is None and file_flow is None:
        raise CallflowError(f"no flow named {args.name!r}")
    for entry in release["history"] if release else []:
        extra = f"  {entry['tests']} tests, {entry['coverage']}" if "coverage" in entry else ""
        print(
            f"{common.when_text(entry['at'])}  {entry['action']:<8} {entry['version']}  "
            f"by {entry['by']}{extra}"
        )
        if entry.get("message"):
            print(f"    {entry['message']}")
    if file_flow is not None:
        print(f"file: {file_flow.path} version {file_flow.version}")
    live = release["live"] if release else file_flow.version if file_flow else None
    print(f"live: {live}")
    return EXIT_OK


def _flows_diff(args: argparse.Namespace) -> int:
    svc = common.service()
    text = svc.releases.diff(args.name, args.old, args.new)
    sys.stdout.write(text or f"versions {args.old} and {args.new} are the same\n")
    return EXIT_OK


def _flows_rollback(args: argparse.Namespace) -> int:
    svc = common.service()
    who = common.actor(svc, ("designer", "admin"), "rolling flows back")
    target = args.version
    if args.emergency:
        target = target or svc.releases.last_approved(args.name)
    if not args.yes:
        live = svc.releases.live_map().get(args.name) or "its file version"
        what = f"version {target}" if target else "the version live before"
        kind = "EMERGENCY rollback" if args.emergency else "Roll back"
        if not common.confirm(f"{kind} {args.name} (live: {live}) to {what}?"):
            print("not rolled back")
            return EXIT_PROBLEMS
    entry = svc.releases.rollback(
        args.name, who, args.version, args.message, emergency=args.emergency
    )
    if entry.get("pending"):
        print(
            f"{entry['flow']} is protected: the rollback to version {entry['version']} waits "
            f"for a second designer: callflow flows approve {entry['flow']} {entry['version']}"
            " (or, if callers are being harmed now, --emergency)"
        )
        return EXIT_OK
    print(
        f"{'emergency: ' if args.emergency else ''}rolled {entry['flow']} back to version "
        f"{entry['version']} (was {entry['previous']}); live on every worker within "
        f"{svc.settings.flow_release_check_seconds:g}s"
    )
    return EXIT_OK
