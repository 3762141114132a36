"""Console accounts and API tokens."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import CallflowError
from . import common
from .common import EXIT_OK


def register(sub: Any) -> None:
    """Add this group's commands."""
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
    acc_add.add_argument(
        "--specialist", default="", help="a specialist's staff number (their team comes with it)"
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

    tokens = sub.add_parser("tokens", help="staff API tokens")
    tk = tokens.add_subparsers(metavar="ACTION")
    token_issue = tk.add_parser("issue", help="issue a token (shown once)")
    token_issue.add_argument(
        "--role", required=True, choices=["vstrs_agent", "specialist", "admin"]
    )
    token_issue.add_argument(
        "--staff",
        required=True,
        help="an agent's SEES ID, a specialist's staff number, or an admin's name",
    )
    token_issue.add_argument("--name", default="", help="who holds it")
    token_issue.set_defaults(handler=_tokens_issue)
    token_list = tk.add_parser("list", help="list tokens (never the tokens themselves)")
    token_list.set_defaults(handler=_tokens_list)
    token_revoke = tk.add_parser("revoke", help="revoke a token by its id")
    token_revoke.add_argument("token_id")
    token_revoke.set_defaults(handler=_tokens_revoke)
    tokens.set_defaults(handler=lambda _args: common.usage(tokens))


def _accounts_add(args: argparse.Namespace) -> int:
    svc = common.service()
    password = common.read_secret(f"password for {args.username}")
    account = svc.accounts.add(
        args.username,
        args.name,
        args.role,
        password,
        svc.clock.now(),
        sees_id=args.sees_id,
        specialist=args.specialist,
        by=common.by(),
    )
    print(f"account {account.username} ({account.role}) added")
    return EXIT_OK


def _accounts_set_password(args: argparse.Namespace) -> int:
    svc = common.service()
    if svc.accounts.get(args.username) is None:
        raise CallflowError(f"no account {args.username}")
    svc.accounts.set_password(
        args.username, common.read_secret(f"new password for {args.username}"), by=common.by()
    )
    print(f"password set for {args.username}; their sessions have ended")
    return EXIT_OK


def _accounts_list(_args: argparse.Namespace) -> int:
    svc = common.service()
    rows = svc.accounts.list()
    if not rows:
        print("no accounts")
    for account in rows:
        extra = account.sees_id or (
            f"{account.specialist} ({account.team})" if account.specialist else ""
        )
        print(f"{account.username:<20} {account.role:<12} {extra:<14} {account.name}")
    return EXIT_OK


def _accounts_remove(args: argparse.Namespace) -> int:
    svc = common.service()
    if not svc.accounts.remove(args.username, by=common.by()):
        raise CallflowError(f"no account {args.username}")
    print(f"account {args.username} removed")
    return EXIT_OK


def _tokens_issue(args: argparse.Namespace) -> int:
    svc = common.service()
    token = svc.staff.issue_token(
        args.role, args.staff, args.name or args.staff, svc.clock.now(), by=common.by()
    )
    print(f"token for {args.staff} ({args.role}), shown once: {token}")
    return EXIT_OK


def _tokens_list(_args: argparse.Namespace) -> int:
    svc = common.service()
    rows = svc.staff.tokens()
    if not rows:
        print("no tokens issued")
    for row in rows:
        print(f"{row['token_id']}  {row['role']:<12} {row['staff_id']:<12} {row['name']}")
    return EXIT_OK


def _tokens_revoke(args: argparse.Namespace) -> int:
    svc = common.service()
    if not svc.staff.revoke_token(args.token_id, by=common.by()):
        raise CallflowError(f"no token {args.token_id}")
    print(f"token {args.token_id} revoked")
    return EXIT_OK
