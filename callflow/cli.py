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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from . import cli_review
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

    graph = sub.add_parser("graph", help="draw a flow (Mermaid text, or SVG/PNG with Graphviz)")
    graph.add_argument("flow", help="a flow file, or the name of a flow in the flows folder")
    graph.add_argument("--format", choices=["mermaid", "svg", "png"], default="mermaid")
    graph.add_argument("-o", "--output", help="write to this file (default: standard output)")
    graph.set_defaults(handler=_graph)

    call = sub.add_parser(
        "call", help="place a simulated call: to a running service URL, or in this process"
    )
    call.add_argument("url", nargs="?", help="the service's base URL (default: in this process)")
    call.add_argument("--token", help="auth token to sign with (default: TWILIO_AUTH_TOKEN)")
    call.add_argument("--from", dest="from_", default="+441632960001", help="the caller's number")
    call.add_argument(
        "--press",
        action=_StepAction,
        dest="steps",
        metavar="KEYS",
        help="keys at the next gather, e.g. 1001# (repeatable, in order)",
    )
    call.add_argument(
        "--say",
        action=_StepAction,
        dest="steps",
        metavar="WORDS",
        help="words at the next gather (repeatable, in order)",
    )
    call.add_argument(
        "--silent", action=_StepAction, dest="steps", nargs=0, help="say nothing at the next gather"
    )
    call.add_argument(
        "--answer",
        action=_StepAction,
        dest="steps",
        metavar="KEYWORD=WORDS",
        help="at the next gather, answer whichever question mentions KEYWORD "
        "(several with commas: 'first school=Hill Top,colour=blue')",
    )
    call.add_argument(
        "--hold",
        type=float,
        default=30.0,
        help="seconds to wait on hold (in a queue) before hanging up",
    )
    call.add_argument(
        "--demo-adviser",
        action="store_true",
        help="in this process: add the demo adviser to the embedded store first",
    )
    call.add_argument("--flow", help="call this flow (default: the Voice URL's, vstrs_inbound)")
    call.add_argument("--app", default="webhooks:create_app", help="web app factory (in process)")
    call.add_argument(
        "--agent-after",
        type=float,
        default=15.0,
        help="with --demo-adviser: seconds before the demo agent answers",
    )
    call.add_argument(
        "--talk", type=float, default=60.0, help="with --demo-adviser: seconds the demo agent talks"
    )
    call.set_defaults(handler=_call)

    demo = sub.add_parser("demo", help="play a whole scripted VSTRS call on the embedded store")
    demo.add_argument(
        "--agent-after",
        type=float,
        default=20.0,
        help="seconds in the queue before a VSTRS agent picks up",
    )
    demo.add_argument(
        "--talk",
        type=float,
        default=60.0,
        help="seconds the agent talks before asking for the hand-off",
    )
    demo.set_defaults(handler=_demo)

    sweep = sub.add_parser("sweep", help="end grants whose call legs are over (lost callbacks)")
    sweep.add_argument("--every", type=float, default=0, help="repeat every N seconds (a worker)")
    sweep.set_defaults(handler=_sweep)

    retention = sub.add_parser("retention", help="the retention rules and how the store keeps them")
    rt = retention.add_subparsers(metavar="ACTION")
    report = rt.add_parser(
        "report", help="each key family: keys, the oldest, any key lacking its expiry or a rule"
    )
    report.add_argument("--json", action="store_true")
    report.set_defaults(handler=_retention_report)
    apply = rt.add_parser("apply", help="run the retention pass now (the worker runs it hourly)")
    apply.set_defaults(handler=_retention_apply)
    retention.set_defaults(handler=lambda _args: _usage(retention))

    metrics = sub.add_parser(
        "metrics", help="serve /metrics on an address of its own (instead of a scrape token)"
    )
    metrics.add_argument("--bind", required=True, help="host:port, e.g. 127.0.0.1:9100")
    metrics.set_defaults(handler=_metrics)

    flows = sub.add_parser(
        "flows", help="publish flows to the shared store, see their history, diff, roll back"
    )
    fl = flows.add_subparsers(metavar="ACTION")
    publish = fl.add_parser(
        "publish", help="validate and test a flow, then make it live on every worker"
    )
    publish.add_argument("file", help="the flow file")
    publish.add_argument("--tests", help="its tests (default: NAME.test.yaml beside the flow file)")
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
    rollback.set_defaults(handler=_flows_rollback)
    allow = cli_review.register(sub, fl)
    allow.set_defaults(handler=lambda _args: _usage(allow))
    flows.set_defaults(handler=lambda _args: _usage(flows))

    officers = sub.add_parser(
        "officers", help="manage Debt Management officers (the officer verification line)"
    )
    of = officers.add_subparsers(metavar="ACTION")
    officer_add = of.add_parser("add", help="register an officer by their card's identity number")
    officer_add.add_argument("number", help="the identity number (6 to 10 digits)")
    officer_add.add_argument("--name", required=True, help="the name they give customers")
    officer_add.set_defaults(handler=_officers_add)
    officer_list = of.add_parser("list", help="list officers")
    officer_list.add_argument("--json", action="store_true")
    officer_list.set_defaults(handler=_officers_list)
    for verb, active in (("activate", True), ("deactivate", False)):
        toggle = of.add_parser(verb, help=f"{verb} an officer")
        toggle.add_argument("number")
        toggle.set_defaults(handler=_officers_active, active=active)
    officer_remove = of.add_parser("remove", help="remove an officer")
    officer_remove.add_argument("number")
    officer_remove.set_defaults(handler=_officers_remove)
    officers.set_defaults(handler=lambda _args: _usage(officers))

    meetings = sub.add_parser(
        "meetings", help="face-to-face meetings and the outbound calls that arrange them"
    )
    mt = meetings.add_subparsers(metavar="ACTION")
    meeting_add = mt.add_parser("add", help="store a meeting; its call is due at once")
    meeting_add.add_argument("--customer", required=True, help="the customer's name")
    meeting_add.add_argument("--number", required=True, help="the customer's phone number")
    meeting_add.add_argument("--reference", required=True, help="the customer's reference")
    meeting_add.add_argument(
        "--officer", required=True, help="identity number of the officer they will meet"
    )
    meeting_add.add_argument("--purpose", required=True, help="what the meeting is about")
    meeting_add.add_argument("--bring", required=True, help="what to bring or provide")
    meeting_add.add_argument(
        "--when", required=True, help="UK local date and time, like 2026-12-02T10:30"
    )
    meeting_add.add_argument(
        "--where", required=True, help="the office, or the customer's home or business address"
    )
    meeting_add.add_argument("--date-of-birth", help="for the identity check, like 1970-03-21")
    meeting_add.add_argument("--postcode", help="for the identity check, like SW1A 2AA")
    meeting_add.add_argument(
        "--retries",
        help="minutes before each retry, like 30,120,1440 (default CALLFLOW_MEETING_RETRIES)",
    )
    meeting_add.add_argument("--flow", default="meeting_call", help="the flow the call runs")
    meeting_add.add_argument("--call-now", action="store_true", help="place the first call at once")
    meeting_add.set_defaults(handler=_meetings_add)
    meeting_list = mt.add_parser("list", help="meetings, their state and outcome")
    meeting_list.add_argument("--json", action="store_true")
    meeting_list.set_defaults(handler=_meetings_list)
    meeting_show = mt.add_parser("show", help="one meeting and its call attempts")
    meeting_show.add_argument("id")
    meeting_show.set_defaults(handler=_meetings_show)
    meeting_call = mt.add_parser("call", help="place a meeting's call now")
    meeting_call.add_argument("id")
    meeting_call.set_defaults(handler=_meetings_call)
    meeting_cancel = mt.add_parser("cancel", help="cancel a meeting: no more calls")
    meeting_cancel.add_argument("id")
    meeting_cancel.set_defaults(handler=_meetings_cancel)
    meeting_run = mt.add_parser("run", help="place the calls that are due (and retries)")
    meeting_run.add_argument(
        "--every", type=float, default=0, help="repeat every N seconds (a worker)"
    )
    meeting_run.set_defaults(handler=_meetings_run)
    meetings.set_defaults(handler=lambda _args: _usage(meetings))

    agents = sub.add_parser("agents", help="manage VSTRS agents")
    ag = agents.add_subparsers(metavar="ACTION")
    agent_add = ag.add_parser("add", help="register a VSTRS agent")
    agent_add.add_argument(
        "--sees-id", required=True, help="the agent's SEES ID code (6 to 10 digits)"
    )
    agent_add.add_argument("--name", required=True)
    reach = agent_add.add_mutually_exclusive_group(required=True)
    reach.add_argument("--phone", help="the number to ring, like +441632960100")
    reach.add_argument("--client", help="a Twilio client identity to ring")
    agent_add.set_defaults(handler=_agents_add)
    agent_list = ag.add_parser("list", help="list agents and their availability")
    agent_list.add_argument("--json", action="store_true")
    agent_list.set_defaults(handler=_agents_list)
    for action, text in (
        ("activate", "let an agent take calls again"),
        ("deactivate", "stop ringing an agent"),
    ):
        parser_ = ag.add_parser(action, help=text)
        parser_.add_argument("sees_id")
        parser_.set_defaults(handler=_agents_active, active=action == "activate")
    agent_remove = ag.add_parser("remove", help="remove an agent")
    agent_remove.add_argument("sees_id")
    agent_remove.set_defaults(handler=_agents_remove)
    agents.set_defaults(handler=lambda _args: _usage(agents))

    teams = sub.add_parser("teams", help="manage specialist teams")
    tm = teams.add_subparsers(metavar="ACTION")
    team_add = tm.add_parser("add", help="register a specialist team")
    team_add.add_argument("--id", required=True, help="short id, like debt_pursuit")
    team_add.add_argument("--name", required=True)
    team_add.add_argument("--handles", default="", help="what the team handles")
    team_add.add_argument(
        "--number", action="append", required=True, help="a number to ring (repeat, in order)"
    )
    team_add.add_argument("--hours", default="Mon-Fri 08:30-17:00", help="opening hours, UK time")
    team_add.set_defaults(handler=_teams_add)
    team_list = tm.add_parser("list", help="list teams")
    team_list.add_argument("--json", action="store_true")
    team_list.set_defaults(handler=_teams_list)
    team_remove = tm.add_parser("remove", help="remove a team")
    team_remove.add_argument("id")
    team_remove.set_defaults(handler=_teams_remove)
    teams.set_defaults(handler=lambda _args: _usage(teams))

    audit = sub.add_parser("audit", help="export, verify and archive the audit log")
    au = audit.add_subparsers(metavar="ACTION")
    export = au.add_parser("export", help="export entries (jsonl or csv)")
    export.add_argument("--from", dest="since", help="first day, YYYY-MM-DD (UTC)")
    export.add_argument("--to", dest="until", help="last day, YYYY-MM-DD (UTC)")
    export.add_argument("--call", help="one call's CallSid")
    export.add_argument("--org", help="one organisation (taxaid, top, litrg, citizens_advice)")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    export.set_defaults(handler=_audit_export)
    checkpoint = au.add_parser(
        "checkpoint", help="write a signed checkpoint of where the log stands (outside Redis)"
    )
    checkpoint.add_argument("--every", type=float, default=0, help="repeat every N seconds")
    checkpoint.set_defaults(handler=_audit_checkpoint)
    verify = au.add_parser(
        "verify",
        help="check every entry's hash and number, and the newest checkpoint; report the first "
        "problem",
    )
    verify.add_argument("--from", dest="since", help="first day, YYYY-MM-DD (UTC)")
    verify.add_argument("--to", dest="until", help="last day, YYYY-MM-DD (UTC)")
    verify.add_argument("--file", help="check an archive or export written by this command instead")
    verify.set_defaults(handler=_audit_verify)
    archive = au.add_parser(
        "archive", help="move entries older than the retention period to a file"
    )
    archive.add_argument(
        "--older-than",
        type=int,
        default=None,
        metavar="DAYS",
        help="default: CALLFLOW_AUDIT_RETENTION_DAYS (400)",
    )
    archive.add_argument(
        "-o", "--output", required=True, help="archive file (JSON lines, appended)"
    )
    archive.set_defaults(handler=_audit_archive)
    retally = au.add_parser(
        "retally",
        help="rebuild the daily tallies the auditor's page reads, from the log's entries "
        "(after an upgrade, or to check them)",
    )
    retally.add_argument("--from", dest="since", help="first day, YYYY-MM-DD (UTC)")
    retally.add_argument("--to", dest="until", help="last day, YYYY-MM-DD (UTC)")
    retally.add_argument(
        "--check", action="store_true", help="only compare; change nothing (exit 1 if they differ)"
    )
    retally.set_defaults(handler=_audit_retally)
    audit.set_defaults(handler=lambda _args: _usage(audit))

    store = sub.add_parser("store", help="look after the shared store")
    st = store.add_subparsers(metavar="ACTION")
    reindex = st.add_parser(
        "reindex",
        help="rebuild the indexes of namespaces that grow with history from their records "
        "(an upgrade step: run it with no instance writing)",
    )
    reindex.add_argument("namespaces", nargs="*", help="default: every indexed namespace")
    reindex.set_defaults(handler=_store_reindex)
    store.set_defaults(handler=lambda _args: _usage(store))

    assurance = sub.add_parser(
        "assurance", help="sample hand-offs and track HMRC's assurance cases"
    )
    asr = assurance.add_subparsers(metavar="ACTION")
    sample = asr.add_parser("sample", help="draw a reproducible random sample of hand-offs")
    sample.add_argument("--org", required=True, choices=sorted(ORGANISATIONS))
    sample.add_argument("--from", dest="since", required=True, help="first day, YYYY-MM-DD (UTC)")
    sample.add_argument("--to", dest="until", required=True, help="last day, YYYY-MM-DD (UTC)")
    sample.add_argument("--size", type=int, required=True)
    sample.add_argument(
        "--seed", type=int, default=None, help="default: a new random seed (printed)"
    )
    sample.set_defaults(handler=_assurance_sample)
    case_update = asr.add_parser("update", help="move a case on")
    case_update.add_argument("case")
    case_update.add_argument(
        "--state", required=True, choices=["evidence_seen", "evidence_missing", "closed"]
    )
    case_update.add_argument("--note", default="")
    case_update.set_defaults(handler=_assurance_update)
    case_list = asr.add_parser("list", help="list cases")
    case_list.add_argument("--org", choices=sorted(ORGANISATIONS))
    case_list.add_argument(
        "--state", choices=["requested", "evidence_seen", "evidence_missing", "closed"]
    )
    case_list.set_defaults(handler=_assurance_list)
    report = asr.add_parser(
        "report", help="per organisation: hand-offs, sampled, passed, failed, outstanding"
    )
    report.add_argument("--org", choices=sorted(ORGANISATIONS))
    report.add_argument("--from", dest="since")
    report.add_argument("--to", dest="until")
    report.add_argument("--format", choices=["text", "csv"], default="text")
    report.set_defaults(handler=_assurance_report)
    assurance.set_defaults(handler=lambda _args: _usage(assurance))

    accounts = sub.add_parser("accounts", help="console sign-in accounts")
    acc = accounts.add_subparsers(metavar="ACTION")
    acc_add = acc.add_parser("add", help="create an account (password read without echo)")
    acc_add.add_argument("--username", required=True)
    acc_add.add_argument("--name", required=True)
    acc_add.add_argument(
        "--role",
        required=True,
        choices=["vstrs_agent", "specialist", "designer", "auditor", "admin"],
    )
    acc_add.add_argument("--sees-id", default="", help="a VSTRS agent's SEES ID")
    acc_add.add_argument("--team", default="", help="a specialist's team id")
    acc_add.set_defaults(handler=_accounts_add)
    acc_pw = acc.add_parser("set-password", help="replace a password (its sessions end)")
    acc_pw.add_argument("username")
    acc_pw.set_defaults(handler=_accounts_set_password)
    acc_list = acc.add_parser("list", help="list accounts")
    acc_list.set_defaults(handler=_accounts_list)
    acc_rm = acc.add_parser("remove", help="remove an account")
    acc_rm.add_argument("username")
    acc_rm.set_defaults(handler=_accounts_remove)
    accounts.set_defaults(handler=lambda _args: _usage(accounts))

    tokens = sub.add_parser("tokens", help="staff API tokens")
    tk = tokens.add_subparsers(metavar="ACTION")
    token_issue = tk.add_parser("issue", help="issue a token (shown once)")
    token_issue.add_argument(
        "--role", required=True, choices=["vstrs_agent", "specialist", "admin"]
    )
    token_issue.add_argument("--staff", required=True, help="SEES ID, team id, or an admin's name")
    token_issue.add_argument("--name", default="", help="who holds it")
    token_issue.set_defaults(handler=_tokens_issue)
    token_list = tk.add_parser("list", help="list tokens (never the tokens themselves)")
    token_list.set_defaults(handler=_tokens_list)
    token_revoke = tk.add_parser("revoke", help="revoke a token by its id")
    token_revoke.add_argument("token_id")
    token_revoke.set_defaults(handler=_tokens_revoke)
    tokens.set_defaults(handler=lambda _args: _usage(tokens))

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
    status = adv.add_parser(
        "status", help="an adviser's throttled numbers, locks and known numbers, and why"
    )
    status.add_argument("number")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_advisers_status)
    unlock = adv.add_parser("unlock", help="lift a lockout and every number's throttle")
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


class _StepAction(argparse.Action):
    """Collect --press/--say/--silent/--answer in the order given."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        steps = list(getattr(namespace, self.dest, None) or [])
        steps.append((option_string or "", values))
        setattr(namespace, self.dest, steps)


def _retention_apply(_args: argparse.Namespace) -> int:
    done = _service().retention.apply(force=True)
    print(json.dumps(done))
    return EXIT_OK


def _metrics(args: argparse.Namespace) -> int:
    from .metrics import serve

    host, _, port = args.bind.rpartition(":")
    if not port.isdigit():
        raise CallflowError("--bind: host:port, like 127.0.0.1:9100")
    print(f"serving /metrics on http://{host or '127.0.0.1'}:{port}/metrics", flush=True)
    serve(args.bind, _service().store)
    return EXIT_OK


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


# ---------------------------------------------------------------- flows


def _lint(args: argparse.Namespace) -> int:
    paths = args.paths or [str(Settings().flows_dir)]
    # Destinations and media are checked against the admin's allow-lists in the shared
    # store; with no REDIS_URL the lists are empty (the embedded store starts empty).
    allowed = _service().allowlists.snapshot() if os.environ.get("REDIS_URL") else None
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

    from .flowtests import run_path

    # Each test runs a whole service; its INFO lines would bury the results.
    logging.basicConfig(level=logging.ERROR)
    paths = args.paths or [str(Settings().flows_dir)]
    failed = 0
    for root in paths:
        results, problems = run_path(root)
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
        "--worker-class",
        "gthread",
        "--threads",
        "8",
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


# ---------------------------------------------------------------- simulated calls


def _script_from(args: argparse.Namespace) -> Any:
    from .simulator import Script
    from .simulator.session import interactive_asker

    steps = getattr(args, "steps", None) or []
    if not steps:
        if not sys.stdin.isatty():
            raise CallflowError(
                "give --press/--say steps, or run in a terminal to answer as you go"
            )
        return Script(ask=interactive_asker(sys.stdin, sys.stdout), patience=args.hold)
    script = Script(patience=args.hold)
    for option, value in steps:
        if option == "--press":
            script.press(value)
        elif option == "--say":
            script.say(value)
        elif option == "--silent":
            script.silent()
        else:
            pairs = [part.split("=", 1) for part in value.split(",")]
            if any(len(pair) != 2 for pair in pairs):
                raise CallflowError(f"--answer takes KEYWORD=WORDS, not {value!r}")
            script.answer({key.strip(): words.strip() for key, words in pairs})
    return script


def _call(args: argparse.Namespace) -> int:
    from .simulator.session import http_simulator, in_process, printer

    script = _script_from(args)
    if args.url:
        token = args.token or os.environ.get("TWILIO_AUTH_TOKEN")
        if not token:
            raise CallflowError(
                "give --token or set TWILIO_AUTH_TOKEN: requests are signed with it"
            )
        sim = http_simulator(args.url, token)
    else:
        from .demo import add_demo_adviser, add_demo_agent
        from .service import Callflow
        from .store import MemoryStore

        settings = Settings.from_env()
        token = settings.twilio_auth_token or secrets.token_hex(16)
        settings = settings.with_overrides(
            {
                "twilio_auth_token": token,
                "public_base_url": settings.public_base_url or "http://callflow.local",
            }
        )
        if args.demo_adviser and settings.redis_url:
            raise CallflowError("--demo-adviser is for the embedded store (unset REDIS_URL)")

        def make(client: Any, clock: Any) -> Callflow:
            store = None if settings.redis_url else MemoryStore(clock)
            service = Callflow(settings, store=store, clock=clock, twilio_client=client)
            if args.demo_adviser:
                add_demo_adviser(service)
            return service

        sim, service = in_process(make, token, args.app)
        if args.demo_adviser:
            add_demo_agent(service, sim, answer_after=args.agent_after, talk=args.talk)
    return _play_call(sim, script, args.from_, printer(sys.stdout), args.flow)


def _play_call(sim: Any, script: Any, from_: str, show: Any, flow: str | None = None) -> int:
    from .flowspec import NAME
    from .simulator.session import VSTRS_NUMBER

    if flow is not None:
        if not NAME.match(flow):
            raise CallflowError(f"--flow: a flow name like officer_check, not {flow!r}")
        number = sim.numbers[VSTRS_NUMBER]
        sim.configure_number(
            VSTRS_NUMBER,
            f"{number.voice_url}?flow={flow}",
            status_callback=number.status_callback,
        )
    sim.listeners.append(show)
    leg = sim.call(VSTRS_NUMBER, from_, script)
    sim.run()
    for sid, code, message in sim.errors:
        print(f"error on {sid}: {code} {message}", file=sys.stderr)
    print(f"call {leg.sid} ended: {leg.status} after {leg.log[-1].at:.0f}s")
    return EXIT_OK if not sim.errors else EXIT_PROBLEMS


def _demo(args: argparse.Namespace) -> int:
    from .access import Viewer
    from .demo import DEMO_ADVISER_TEXT, DEMO_AGENT_SEES_ID, DEMO_TEAM
    from .links import ServiceLinks
    from .simulator.session import CALLER_NUMBER, VSTRS_NUMBER, demo_rig, demo_script, printer

    sim, service = demo_rig(agent_after=args.agent_after, talk=3600)
    links = ServiceLinks(service.settings.public_base_url or "http://callflow.demo")
    print("callflow demo: the service on the embedded store, driven by the local Twilio simulator")
    print(DEMO_ADVISER_TEXT)
    print(
        f"demo VSTRS agent {DEMO_AGENT_SEES_ID} (Alex Agent) is available; team {DEMO_TEAM} answers"
    )
    print()
    sim.listeners.append(printer(sys.stdout))
    caller = sim.call(VSTRS_NUMBER, CALLER_NUMBER, demo_script())

    def state() -> str:
        return str((service.vstrs.get(caller.sid) or {}).get("state", ""))

    if not sim.run_until(lambda: state() == "with_agent" or not caller.live):
        print("the caller was never connected to an agent")
        return EXIT_PROBLEMS
    sim.advance(args.talk)
    body = {
        "team": DEMO_TEAM,
        "customer": {"name": "Pat Example", "reference": "1234567890"},
        "issue": "Wants to agree time to pay on a debt in pursuit",
        "authorisation": {"type": "recorded_oral", "date": "2026-11-20", "reference": "TA-DEMO-1"},
        "callback": {"urgent": False, "turnaround": "2 working days"},
    }
    print("\n--- the agent asks for a warm transfer to Debt Pursuit (POST .../handoffs)")
    handoff = service.handoffs.request(caller.sid, DEMO_AGENT_SEES_ID, body, links)

    def handoff_state() -> str:
        return str((service.handoffs.get(handoff["id"]) or {}).get("state", ""))

    if not sim.run_until(lambda: handoff_state() in {"briefing", "failed"}):
        return EXIT_PROBLEMS
    sim.advance(20)
    print("--- the agent has briefed the specialist and hands over (.../complete)")
    service.handoffs.complete(handoff["id"], links)
    sim.advance(5)
    # The demo asks as the specialist team would (the team the call was handed to).
    specialist = Viewer("specialist", team=DEMO_TEAM)
    grant = service.handoffs.grant_for_call(caller.sid, specialist)
    team = grant.get("to", {}).get("team_name")
    print(f"--- disclosure grant: authorised={grant['authorised']}, to {team}")
    sim.advance(60)
    print("--- the caller hangs up")
    sim.hang_up(caller)
    sim.run()
    after = service.handoffs.grant_for_call(caller.sid, specialist)
    print(f"--- disclosure grant: authorised={after['authorised']}: {after.get('reason')}")
    print()
    print("audit log:")
    for entry in service.audit.entries():
        print(f"  {entry['at']}  {entry['kind']:<24} {entry.get('outcome', '')}")
    for sid, code, message in sim.errors:
        print(f"error on {sid}: {code} {message}", file=sys.stderr)
    story = grant["authorised"] and not after["authorised"] and not sim.errors
    return EXIT_OK if story else EXIT_PROBLEMS


# ---------------------------------------------------------------- audit


def _day(text: str | None, end: bool = False) -> str | None:
    if not text:
        return None
    import datetime as _dt

    try:
        day = _dt.date.fromisoformat(text)
    except ValueError as exc:
        raise CallflowError(f"dates are YYYY-MM-DD, not {text!r}") from exc
    return f"{day.isoformat()}T23:59:59.999" if end else day.isoformat()


def _in_range(entry: dict[str, Any], since: str | None, until: str | None) -> bool:
    at = str(entry.get("at", ""))
    return (since is None or at >= since) and (until is None or at[:23] <= until)


def _audit_export(args: argparse.Namespace) -> int:
    import io

    svc = _service()
    since, until = _day(args.since), _day(args.until, end=True)
    rows = [
        e
        for e in svc.audit.all_entries()
        if _in_range(e, since, until)
        and (not args.call or e.get("call_sid") == args.call)
        and (not args.org or e.get("organisation") == args.org)
    ]
    out = io.StringIO()
    if args.format == "jsonl":
        for row in rows:
            out.write(json.dumps(row, sort_keys=True) + "\n")
    else:
        from .reports import audit_csv

        out.write(audit_csv(rows))
    if args.output:
        Path(args.output).write_text(out.getvalue(), encoding="utf-8")
        print(f"wrote {len(rows)} entries to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(out.getvalue())
    return EXIT_OK


def _audit_verify(args: argparse.Namespace) -> int:
    from .audit import verify_entries

    svc = _service()
    note = ""
    if args.file:
        lines = Path(args.file).read_text(encoding="utf-8").splitlines()
        entries = [json.loads(line) for line in lines if line.strip()]
        first = min((e.get("seq", 1) for e in entries), default=1)
        broken, walk = verify_entries(entries, svc.audit.key, int(first) - 1)
    elif args.since or args.until:
        since, until = _day(args.since), _day(args.until, end=True)
        entries = [e for e in svc.audit.all_entries() if _in_range(e, since, until)]
        first = min((e.get("seq", 1) for e in entries), default=1)
        broken, walk = verify_entries(entries, svc.audit.key, int(first) - 1)
        if not broken:  # a period: numbers missing at its edges belong to other days
            note = " (within the period)"
    else:
        checkpoint = svc.checkpoints.newest()
        broken, walk = svc.audit.verify_walk(checkpoint)
        if checkpoint is not None:
            note = f"; consistent with the checkpoint of {checkpoint['at']}"
        elif svc.checkpoints.folder is None:
            note = (
                "; no checkpoints folder (CALLFLOW_AUDIT_CHECKPOINTS), so a cut-off end or a "
                "lost store cannot be ruled out"
            )
        else:
            note = "; no checkpoint written yet"
    if broken:
        print(f"BROKEN: {broken}")
        return EXIT_PROBLEMS
    print(f"ok: {walk.count} entries, numbers to {walk.last_seq}, none missing{note}")
    return EXIT_OK


def _audit_checkpoint(args: argparse.Namespace) -> int:
    svc = _service()
    while True:
        checkpoint = svc.checkpoints.write(svc.store)
        where = f" in {svc.checkpoints.folder}" if svc.checkpoints.folder else " (log only)"
        print(f"checkpoint{where}: number {checkpoint['seq']} at {checkpoint['at']}", flush=True)
        if not args.every:
            return EXIT_OK
        time.sleep(args.every)


def _audit_archive(args: argparse.Namespace) -> int:
    svc = _service()
    days = args.older_than if args.older_than is not None else svc.settings.audit_retention_days
    done = svc.retention.archive_audit(days, path=Path(args.output))
    if not done["archived"]:
        print(f"nothing older than {days} days")
        return EXIT_OK
    print(
        f"archived {done['archived']} entries to {args.output} (calling numbers and addresses "
        f"as keyed pseudonyms); the live log starts after number {done['through']}"
    )
    return EXIT_OK


def _audit_retally(args: argparse.Namespace) -> int:
    from datetime import date, timedelta

    from .tallies import tallies_of

    svc = _service()
    since, until = _date(args.since), _date(args.until)
    trimmed = svc.store.audit_state().anchor_id is not None
    entries = list(svc.audit.all_entries())
    if not entries:
        print("the live audit log is empty: nothing to tally")
        return EXIT_OK
    first = date.fromisoformat(str(entries[0]["at"])[:10])
    if trimmed:  # the first day's earlier entries were archived: its tally stays as it is
        first += timedelta(days=1)
    since = max(since or first, first)
    until = until or date.fromisoformat(str(entries[-1]["at"])[:10])
    days = [(since + timedelta(days=n)).isoformat() for n in range((until - since).days + 1)]
    wanted = set(days)
    rebuilt = tallies_of(e for e in entries if str(e.get("at", ""))[:10] in wanted)
    rebuilt = {day: rebuilt.get(day, {}) for day in days}
    stored = svc.store.audit_tallies(days)
    differ = [day for day in days if rebuilt[day] != stored.get(day, {})]
    if args.check:
        for day in differ:
            print(f"{day}: stored {stored.get(day, {})} but the log gives {rebuilt[day]}")
        print(f"{len(days)} days checked, {len(differ)} differ")
        return EXIT_PROBLEMS if differ else EXIT_OK
    svc.store.replace_tallies({day: rebuilt[day] for day in differ})
    print(f"{len(days)} days tallied from the log ({since} to {until}), {len(differ)} rewritten")
    return EXIT_OK


def _store_reindex(args: argparse.Namespace) -> int:
    svc = _service()
    known = sorted(svc.store.indexes)
    unknown = [n for n in args.namespaces if n not in known]
    if unknown:
        raise CallflowError(f"not indexed: {', '.join(unknown)} (indexed: {', '.join(known)})")
    for namespace in args.namespaces or known:
        print(f"{namespace}: {svc.store.reindex(namespace)} records indexed", flush=True)
    return EXIT_OK


def _retention_report(args: argparse.Namespace) -> int:
    from .retention import FAMILIES

    svc = _service()
    report = svc.retention.report()
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_PROBLEMS if report["problems"] else EXIT_OK
    rules = {f.name: f for f in FAMILIES}
    for row in report["families"]:
        family = rules[row["family"]]
        oldest = "" if row["oldest_days"] is None else f", oldest {row['oldest_days']} days"
        personal = "personal data" if family.personal else "no personal data"
        print(f"{row['family']:<20} {row['keys']:>7} keys{oldest}  [{personal}] {family.rule}")
    for problem in report["problems"]:
        print(f"PROBLEM: {problem}")
    if not report["problems"]:
        print("ok: every key is covered by a rule, and every key that should expire does")
    return EXIT_PROBLEMS if report["problems"] else EXIT_OK


# ---------------------------------------------------------------- assurance


def _date(text: str | None) -> Any:
    import datetime as _dt

    if not text:
        return None
    try:
        return _dt.date.fromisoformat(text)
    except ValueError as exc:
        raise CallflowError(f"dates are YYYY-MM-DD, not {text!r}") from exc


def _assurance_sample(args: argparse.Namespace) -> int:
    svc = _service()
    seed = args.seed if args.seed is not None else secrets.randbelow(10**9)
    cases = svc.assurance.sample(
        args.org, _date(args.since), _date(args.until), args.size, seed, _by()
    )
    period = f"{args.since} to {args.until}"
    print(f"sample of {len(cases)} hand-offs for {args.org}, {period}, seed {seed}")
    for case in cases:
        auth = case.get("authorisation") or {}
        held = f"{auth.get('type')} {auth.get('date')} ref {auth.get('reference')}"
        print(f"  {case['id']}  {case['state']:<16} authorisation {held}")
    return EXIT_OK


def _assurance_update(args: argparse.Namespace) -> int:
    svc = _service()
    case = svc.assurance.update(args.case, args.state, _by(), args.note)
    print(
        f"case {case['id']} is {case['state']}"
        + (f" ({case['outcome']})" if case["outcome"] else "")
    )
    return EXIT_OK


def _assurance_list(args: argparse.Namespace) -> int:
    svc = _service()
    cases = svc.assurance.cases(args.org, args.state)
    if not cases:
        print("no cases")
    for case in cases:
        print(
            f"{case['id']}  {case['organisation']:<16} {case['state']:<16} {case['outcome'] or ''}"
        )
    return EXIT_OK


def _assurance_report(args: argparse.Namespace) -> int:
    svc = _service()
    rows = svc.assurance.report(args.org, _date(args.since), _date(args.until))
    columns = ["organisation", "handoffs", "sampled", "passed", "failed", "outstanding"]
    if args.format == "csv":
        print(",".join(columns))
        for row in rows:
            print(",".join(str(row[c]) for c in columns))
        return EXIT_OK
    print(
        f"{'organisation':<32}{'hand-offs':>10}{'sampled':>9}{'passed':>8}{'failed':>8}{'outstanding':>13}"
    )
    for row in rows:
        print(
            f"{row['organisation_name']:<32}{row['handoffs']:>10}{row['sampled']:>9}{row['passed']:>8}"
            f"{row['failed']:>8}{row['outstanding']:>13}"
        )
    return EXIT_OK


# ---------------------------------------------------------------- grants


def _sweep(args: argparse.Namespace) -> int:
    svc = _service()
    while True:
        try:
            for grant_id, reason in svc.handoffs.sweep():
                print(f"grant {grant_id} ended: {reason}", flush=True)
            # The worker's steady beat also records where the audit log stands, outside
            # Redis (CALLFLOW_AUDIT_CHECKPOINTS, and the log), and, at most hourly, applies
            # the retention rules (docs/retention.md).
            svc.checkpoints.write(svc.store)
            done = svc.retention.apply()
            if done.get("archived"):
                print(f"retention: archived {done['archived']} audit entries", flush=True)
        except CallflowError as exc:
            # A worker keeps going: the next round may reach the store or Twilio again.
            print(f"callflow sweep: {exc}", file=sys.stderr, flush=True)
            if not args.every:
                return EXIT_PROBLEMS
        if not args.every:
            return EXIT_OK
        time.sleep(args.every)


# ---------------------------------------------------------------- publishing flows


def _flows_publish(args: argparse.Namespace) -> int:
    import logging

    from .flowtests import tests_for
    from .releases import PublishRefused

    logging.basicConfig(level=logging.WARNING)
    svc = _service()
    path = Path(args.file)
    tests_path = Path(args.tests) if args.tests else tests_for(path)
    try:
        source = path.read_text(encoding="utf-8")
        tests_source = tests_path.read_text(encoding="utf-8") if tests_path.exists() else ""
    except OSError as exc:
        raise CallflowError(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        entry = svc.releases.publish(source, tests_source, _by(), label=str(path))
    except PublishRefused as exc:
        print(f"callflow: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
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
    svc = _service()
    released = svc.releases.live_map()
    for name, version in svc.library.live_versions().items():
        where = "published" if released.get(name) == version else "file"
        print(f"{name:<22} {version}  ({where})")
    return EXIT_OK


def _when_text(at: float | None) -> str:
    from datetime import UTC, datetime

    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _flows_history(args: argparse.Namespace) -> int:
    svc = _service()
    release = svc.releases.release(args.name)
    file_flow = svc.releases.file_flow(args.name)
    if release is None and file_flow is None:
        raise CallflowError(f"no flow named {args.name!r}")
    for entry in release["history"] if release else []:
        extra = f"  {entry['tests']} tests, {entry['coverage']}" if "coverage" in entry else ""
        print(
            f"{_when_text(entry['at'])}  {entry['action']:<8} {entry['version']}  "
            f"by {entry['by']}{extra}"
        )
    if file_flow is not None:
        print(f"file: {file_flow.path} version {file_flow.version}")
    live = release["live"] if release else file_flow.version if file_flow else None
    print(f"live: {live}")
    return EXIT_OK


def _flows_diff(args: argparse.Namespace) -> int:
    svc = _service()
    text = svc.releases.diff(args.name, args.old, args.new)
    sys.stdout.write(text or f"versions {args.old} and {args.new} are the same\n")
    return EXIT_OK


def _flows_rollback(args: argparse.Namespace) -> int:
    svc = _service()
    entry = svc.releases.rollback(args.name, _by(), args.version)
    print(
        f"rolled {entry['flow']} back to version {entry['version']} (was {entry['previous']}); "
        f"live on every worker within {svc.settings.flow_release_check_seconds:g}s"
    )
    return EXIT_OK


# ---------------------------------------------------------------- officers


def _officers_add(args: argparse.Namespace) -> int:
    svc = _service()
    officer = svc.staff.add_officer(args.number, args.name, svc.clock.now())
    svc.audit.record("staff.officer_added", officer=officer.number, by=_by(), outcome="added")
    print(f"added officer {officer.number} ({officer.name})")
    return EXIT_OK


def _officers_list(args: argparse.Namespace) -> int:
    svc = _service()
    rows = [o.to_dict() for o in svc.staff.officers()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        state = "active" if row["active"] else "inactive"
        print(f"{row['number']:<12} {row['name']:<30} {state}")
    return EXIT_OK


def _officers_active(args: argparse.Namespace) -> int:
    svc = _service()
    officer = svc.staff.set_officer_active(args.number, args.active)
    outcome = "activated" if args.active else "deactivated"
    svc.audit.record("staff.officer_" + outcome, officer=officer.number, by=_by(), outcome=outcome)
    print(f"officer {officer.number} ({officer.name}) {outcome}")
    return EXIT_OK


def _officers_remove(args: argparse.Namespace) -> int:
    svc = _service()
    if not svc.staff.remove_officer(args.number):
        raise DirectoryError(f"no officer {args.number}")
    svc.audit.record("staff.officer_removed", officer=args.number, by=_by(), outcome="removed")
    print(f"removed officer {args.number}")
    return EXIT_OK


# ---------------------------------------------------------------- meetings


def _links(svc: Any) -> Any:
    from .links import ServiceLinks

    if not svc.settings.public_base_url:
        raise CallflowError("PUBLIC_BASE_URL is needed: Twilio fetches the call's flow from it")
    return ServiceLinks(svc.settings.public_base_url)


def _meetings_add(args: argparse.Namespace) -> int:
    from .config import parse_minutes

    svc = _service()
    meeting = svc.meetings.add(
        customer_name=args.customer,
        customer_number=args.number,
        reference=args.reference,
        officer_number=args.officer,
        purpose=args.purpose,
        bring=args.bring,
        when=args.when,
        where=args.where,
        date_of_birth=args.date_of_birth,
        postcode=args.postcode,
        retry_minutes=parse_minutes(args.retries, "--retries") if args.retries else None,
        flow=args.flow,
        by=_by(),
    )
    print(
        f"meeting {meeting['id']} stored; its call is due now (retries after "
        f"{', '.join(str(m) for m in meeting['retry_minutes']) or 'none'} minutes)"
    )
    if args.call_now:
        call_sid = svc.meetings.place_call(meeting["id"], _links(svc))
        print(f"calling {meeting['customer_number']}: {call_sid}")
    return EXIT_OK


def _meeting_line(m: dict[str, Any]) -> str:
    tries = len(m["attempts"])
    due = f" next call {_when_text(m['next_call_at'])}" if m["state"] == "scheduled" else ""
    return (
        f"{m['id']}  {m['when']}  {m['state']:<15} {m['customer_name']:<20} "
        f"{m['reference']:<12} {tries} call(s){due}"
    )


def _meetings_list(args: argparse.Namespace) -> int:
    svc = _service()
    rows = [svc.meetings.public(m) for m in svc.meetings.all()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        print(_meeting_line(row))
    return EXIT_OK


def _meetings_show(args: argparse.Namespace) -> int:
    svc = _service()
    meeting = svc.meetings.public(svc.meetings.require(args.id))
    print(json.dumps(meeting, indent=2))
    return EXIT_OK


def _meetings_call(args: argparse.Namespace) -> int:
    svc = _service()
    call_sid = svc.meetings.place_call(args.id, _links(svc))
    print(f"calling: {call_sid}")
    return EXIT_OK


def _meetings_cancel(args: argparse.Namespace) -> int:
    svc = _service()
    svc.meetings.cancel(args.id, _by())
    print(f"meeting {args.id} cancelled")
    return EXIT_OK


def _meetings_run(args: argparse.Namespace) -> int:
    import time

    svc = _service()
    links = _links(svc)
    while True:
        try:
            for meeting_id, result in svc.meetings.call_due(links):
                print(f"meeting {meeting_id}: {result}", flush=True)
        except CallflowError as exc:
            print(f"callflow meetings run: {exc}", file=sys.stderr, flush=True)
            if not args.every:
                return EXIT_PROBLEMS
        if not args.every:
            return EXIT_OK
        time.sleep(args.every)


# ---------------------------------------------------------------- staff


def _agents_add(args: argparse.Namespace) -> int:
    svc = _service()
    reach = args.phone or f"client:{args.client}"
    agent = svc.staff.add_agent(args.sees_id, args.name, reach, svc.clock.now())
    svc.audit.record("staff.agent_added", agent=agent.sees_id, by=_by(), outcome="added")
    print(f"added VSTRS agent {agent.sees_id} ({agent.name}), rung on {agent.reach}")
    return EXIT_OK


def _agents_list(args: argparse.Namespace) -> int:
    svc = _service()
    rows = [
        {**a.to_dict(), "availability": svc.staff.availability(a.sees_id)}
        for a in svc.staff.agents()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no agents registered")
    for row in rows:
        active = "active" if row["active"] else "INACTIVE"
        print(
            f"{row['sees_id']:>10}  {row['name']:<24} {row['reach']:<28} {active:<9} "
            f"{row['availability']['status']}"
        )
    return EXIT_OK


def _agents_active(args: argparse.Namespace) -> int:
    svc = _service()
    agent = svc.staff.set_agent_active(args.sees_id, args.active)
    kind = "staff.agent_activated" if args.active else "staff.agent_deactivated"
    svc.audit.record(kind, agent=agent.sees_id, by=_by(), outcome="done")
    print(f"agent {agent.sees_id} is {'active' if agent.active else 'inactive'}")
    return EXIT_OK


def _agents_remove(args: argparse.Namespace) -> int:
    svc = _service()
    if not svc.staff.remove_agent(args.sees_id):
        raise CallflowError(f"no agent {args.sees_id}")
    svc.audit.record("staff.agent_removed", agent=args.sees_id, by=_by(), outcome="removed")
    print(f"agent {args.sees_id} removed")
    return EXIT_OK


def _teams_add(args: argparse.Namespace) -> int:
    svc = _service()
    team = svc.staff.add_team(args.id, args.name, args.handles, args.number, args.hours)
    svc.audit.record("staff.team_added", team=team.id, by=_by(), outcome="added")
    print(
        f"added team {team.id} ({team.name}), rung on {', '.join(team.numbers)}, open {team.hours}"
    )
    return EXIT_OK


def _teams_list(args: argparse.Namespace) -> int:
    svc = _service()
    rows = [t.to_dict() for t in svc.staff.teams()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no teams registered")
    for row in rows:
        print(f"{row['id']:<20} {row['name']:<30} {row['hours']:<20} {', '.join(row['numbers'])}")
    return EXIT_OK


def _teams_remove(args: argparse.Namespace) -> int:
    svc = _service()
    if not svc.staff.remove_team(args.id):
        raise CallflowError(f"no team {args.id}")
    svc.audit.record("staff.team_removed", team=args.id, by=_by(), outcome="removed")
    print(f"team {args.id} removed")
    return EXIT_OK


def _accounts_add(args: argparse.Namespace) -> int:
    svc = _service()
    password = _read_secret(f"password for {args.username}")
    account = svc.accounts.add(
        args.username,
        args.name,
        args.role,
        password,
        svc.clock.now(),
        sees_id=args.sees_id,
        team=args.team,
    )
    svc.audit.record(
        "staff.account_added",
        account=account.username,
        role=account.role,
        by=_by(),
        outcome="added",
    )
    print(f"account {account.username} ({account.role}) added")
    return EXIT_OK


def _accounts_set_password(args: argparse.Namespace) -> int:
    svc = _service()
    if svc.accounts.get(args.username) is None:
        raise CallflowError(f"no account {args.username}")
    svc.accounts.set_password(args.username, _read_secret(f"new password for {args.username}"))
    svc.audit.record("staff.password_set", account=args.username, by=_by(), outcome="set")
    print(f"password set for {args.username}; their sessions have ended")
    return EXIT_OK


def _accounts_list(_args: argparse.Namespace) -> int:
    svc = _service()
    rows = svc.accounts.list()
    if not rows:
        print("no accounts")
    for account in rows:
        extra = account.sees_id or account.team
        print(f"{account.username:<20} {account.role:<12} {extra:<14} {account.name}")
    return EXIT_OK


def _accounts_remove(args: argparse.Namespace) -> int:
    svc = _service()
    if not svc.accounts.remove(args.username):
        raise CallflowError(f"no account {args.username}")
    svc.audit.record("staff.account_removed", account=args.username, by=_by(), outcome="removed")
    print(f"account {args.username} removed")
    return EXIT_OK


def _tokens_issue(args: argparse.Namespace) -> int:
    svc = _service()
    token = svc.staff.issue_token(args.role, args.staff, args.name or args.staff, svc.clock.now())
    svc.audit.record(
        "staff.token_issued", staff=args.staff, role=args.role, by=_by(), outcome="issued"
    )
    print(f"token for {args.staff} ({args.role}), shown once: {token}")
    return EXIT_OK


def _tokens_list(_args: argparse.Namespace) -> int:
    svc = _service()
    rows = svc.staff.tokens()
    if not rows:
        print("no tokens issued")
    for row in rows:
        print(f"{row['token_id']}  {row['role']:<12} {row['staff_id']:<12} {row['name']}")
    return EXIT_OK


def _tokens_revoke(args: argparse.Namespace) -> int:
    svc = _service()
    if not svc.staff.revoke_token(args.token_id):
        raise CallflowError(f"no token {args.token_id}")
    svc.audit.record("staff.token_revoked", token=args.token_id, by=_by(), outcome="revoked")
    print(f"token {args.token_id} revoked")
    return EXIT_OK


# ---------------------------------------------------------------- advisers


def _service() -> Any:
    from .service import Callflow

    settings = Settings.from_env()
    if not settings.redis_url:
        raise CallflowError(
            "REDIS_URL is not set: these commands change the shared store the service uses "
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


def _advisers_status(args: argparse.Namespace) -> int:
    svc = _service()
    status = svc.adviser_lockout(args.number)
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    for line in status["why"]:
        print(line)
    return EXIT_OK


def _advisers_list(args: argparse.Namespace) -> int:
    svc = _service()
    rows = []
    for adviser in svc.directory.list():
        status = svc.store.lock_status(adviser.number, svc.clock.now())
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
