"""Signing in on the command line, console accounts and API tokens.

    callflow login [--username U]   sign in (password read without echo, or a line on stdin)
    callflow logout                 sign out: the kept session ends
    callflow whoami                 who commands act as now
    callflow accounts ...           console accounts (an admin's)
    callflow tokens ...             personal API tokens (an admin's)

Commands that change what callers hear or who may act run as the signed-in account
(``callflow login``) or as the person ``CALLFLOW_TOKEN`` names, and the account's role is
checked by the same service methods as the consoles': never by ``$LOGNAME`` or ``$USER``.
"""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
from typing import Any

from ..access import ROLE_NAMES
from ..desks import AdminDesk
from ..errors import CallflowError
from . import common
from .common import EXIT_OK


def register(sub: Any) -> None:
    """Add this group's commands."""
    login = sub.add_parser(
        "login", help="sign in: later commands act as your account (until it lapses)"
    )
    login.add_argument("--username", help="your console username (asked if not given)")
    login.set_defaults(handler=_login)
    logout = sub.add_parser("logout", help="sign out")
    logout.set_defaults(handler=_logout)
    whoami = sub.add_parser("whoami", help="who commands act as now, and until when")
    whoami.set_defaults(handler=_whoami)

    accounts = sub.add_parser("accounts", help="console sign-in accounts (an admin's)")
    acc = accounts.add_subparsers(metavar="ACTION")
    acc_add = acc.add_parser("add", help="create an account (password read without echo)")
    acc_add.add_argument("--username", required=True)
    acc_add.add_argument("--name", required=True)
    acc_add.add_argument(
        "--role",
        required=True,
        choices=["vstrs_agent", "specialist", "supervisor", "designer", "auditor", "admin"],
    )
    acc_add.add_argument("--sees-id", default="", help="a VSTRS agent's SEES ID")
    acc_add.add_argument(
        "--specialist", default="", help="a specialist's staff number (their team comes with it)"
    )
    acc_add.add_argument(
        "--first-admin",
        action="store_true",
        help="a new store's first admin account, with nobody signed in (refused once an "
        "admin account exists)",
    )
    acc_add.set_defaults(handler=_accounts_add)
    acc_pw = acc.add_parser("set-password", help="replace a password (its sessions end)")
    acc_pw.add_argument("username")
    acc_pw.set_defaults(handler=_accounts_set_password)
    acc_list = acc.add_parser("list", help="list accounts")
    acc_list.set_defaults(handler=_accounts_list)
    acc_rm = acc.add_parser("remove", help="remove an account")
    acc_rm.add_argument("username")
    acc_rm.set_defaults(handler=_accounts_remove)
    accounts.set_defaults(handler=lambda _args: common.usage(accounts))

    tokens = sub.add_parser("tokens", help="personal API tokens (an admin's)")
    tk = tokens.add_subparsers(metavar="ACTION")
    token_issue = tk.add_parser("issue", help="issue a token (shown once)")
    token_issue.add_argument(
        "--role",
        required=True,
        choices=["vstrs_agent", "specialist", "supervisor", "designer", "auditor", "admin"],
    )
    token_issue.add_argument(
        "--staff",
        default="",
        help="whose: an agent's SEES ID, a specialist's staff number, or the username of a "
        "supervisor's, designer's, auditor's or admin's account (an admin's: yours if not given)",
    )
    token_issue.add_argument("--name", default="", help="who holds it")
    token_issue.set_defaults(handler=_tokens_issue)
    token_list = tk.add_parser("list", help="list tokens (never the tokens themselves)")
    token_list.set_defaults(handler=_tokens_list)
    token_revoke = tk.add_parser("revoke", help="revoke a token by its id")
    token_revoke.add_argument("token_id")
    token_revoke.set_defaults(handler=_tokens_revoke)
    tokens.set_defaults(handler=lambda _args: common.usage(tokens))


# ---------------------------------------------------------------- signing in


def _login(args: argparse.Namespace) -> int:
    svc = common.service()
    username = args.username
    if not username:
        print("username: ", end="", file=sys.stderr, flush=True)
        username = sys.stdin.readline().strip()
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    # Sign-in is throttled as the consoles' is: per username and per client address.
    address = f"cli:{socket.gethostname()}"[:64]
    attempt = svc.accounts.sign_in(username, password, address, svc.clock.now())
    if attempt.session is None:
        raise CallflowError(f"not signed in: {attempt.error}")
    session = attempt.session
    path = common.save_session(session.token, session.username, session.role)
    print(
        f"signed in as {session.username} ({ROLE_NAMES.get(session.role, session.role)}); "
        f"the session is kept in {path}, for you alone, and lapses after 30 minutes unused"
    )
    return EXIT_OK


def _logout(_args: argparse.Namespace) -> int:
    saved = common.saved_session()
    if saved is not None:
        svc = common.service()
        svc.accounts.sign_out(str(saved.get("token", "")))
    common.forget_session()
    print("signed out")
    return EXIT_OK


def _whoami(_args: argparse.Namespace) -> int:
    svc = common.service()
    viewer = common.signed_in(svc)
    if viewer is None:
        print(common.NOT_SIGNED_IN)
        return common.EXIT_PROBLEMS
    tie = (viewer.sees_id and f", SEES ID {viewer.sees_id}") or ""
    if viewer.specialist:
        tie = f", staff number {viewer.specialist} ({viewer.team})"
    print(f"{viewer.who}: {ROLE_NAMES.get(viewer.role, viewer.role)}{tie}")
    return EXIT_OK


# ---------------------------------------------------------------- accounts


def _admin(svc: Any) -> tuple[AdminDesk, Any]:
    return AdminDesk(svc), common.actor(svc)


def _accounts_add(args: argparse.Namespace) -> int:
    svc = common.service()
    if args.first_admin:
        desk = AdminDesk(svc)
        if args.role != "admin":
            raise CallflowError("--first-admin makes an admin account: --role admin")
        if common.signed_in(svc) is not None:
            raise CallflowError(
                "you are signed in: add accounts as yourself, without --first-admin"
            )
        password = common.read_secret(f"password for {args.username}")
        desk.first_admin(args.username, args.name, password)
        print(f"first admin account {args.username} added: sign in with `callflow login`")
        return EXIT_OK
    desk, who = _admin(svc)
    desk.overview(who)  # an admin's act: refused before a password is asked for
    password = common.read_secret(f"password for {args.username}")
    desk.add_account(
        who, args.username, args.name, args.role, password, args.sees_id, args.specialist
    )
    print(f"account {args.username} ({args.role}) added")
    return EXIT_OK


def _accounts_set_password(args: argparse.Namespace) -> int:
    svc = common.service()
    desk, who = _admin(svc)
    desk.overview(who)
    if svc.accounts.get(args.username) is None:
        raise CallflowError(f"no account {args.username}")
    desk.set_password(who, args.username, common.read_secret(f"new password for {args.username}"))
    print(f"password set for {args.username}; their sessions have ended")
    return EXIT_OK


def _accounts_list(_args: argparse.Namespace) -> int:
    svc = common.service()
    desk, who = _admin(svc)
    rows = desk.section(who, "accounts")
    if not rows:
        print("no accounts")
    for account in rows:
        extra = account["sees_id"] or (
            f"{account['specialist']} ({account['team']})" if account.get("specialist") else ""
        )
        print(f"{account['username']:<20} {account['role']:<12} {extra:<14} {account['name']}")
    return EXIT_OK


def _accounts_remove(args: argparse.Namespace) -> int:
    svc = common.service()
    desk, who = _admin(svc)
    desk.remove_account(who, args.username)
    print(f"account {args.username} removed")
    return EXIT_OK


# ---------------------------------------------------------------- tokens


def _tokens_issue(args: argparse.Namespace) -> int:
    svc = common.service()
    desk, who = _admin(svc)
    token = desk.issue_token(who, args.role, args.staff, args.name)
    print(f"token for {args.staff or who.account} ({args.role}), shown once: {token}")
    return EXIT_OK


def _tokens_list(_args: argparse.Namespace) -> int:
    svc = common.service()
    desk, who = _admin(svc)
    rows = desk.section(who, "tokens")
    if not rows:
        print("no tokens issued")
    for row in rows:
        print(f"{row['token_id']}  {row['role']:<12} {row['staff_id']:<12} {row['name']}")
    return EXIT_OK


def _tokens_revoke(args: argparse.Namespace) -> int:
    svc = common.service()
    desk, who = _admin(svc)
    desk.revoke_token(who, args.token_id)
    print(f"token {args.token_id} revoked")
    return EXIT_OK
