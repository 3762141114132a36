"""CLI: the admin's allow-lists and the review of protected flows (ARCHITECTURE.md rule 11).

    callflow allow add KIND VALUE [--note TEXT]     number, client, caller_id, conference,
    callflow allow remove KIND VALUE                queue or media (an https URL or prefix)
    callflow allow list [KIND] [--json]
    callflow flows pending [NAME]                   versions waiting for a second designer
    callflow flows approve NAME VERSION             a second designer makes it live
    callflow flows reject NAME VERSION              turn it down (or withdraw your own)
    callflow flows protect NAME | unprotect NAME    which flows need approval (admin;
                                                    lifting it takes two admins)
    callflow flows protected

Every change is made as the signed-in account (``callflow login``) and audited with it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..allowlists import KINDS, destination_problems
from ..desks import AdminDesk
from . import common
from .common import when_text as _when_text

EXIT_OK = 0


def register(sub: Any, flows: Any) -> argparse.ArgumentParser:
    """Add ``allow`` to the top-level commands and the review actions to ``flows``."""
    allow = sub.add_parser(
        "allow",
        help="allow-lists: the numbers, clients, caller IDs, conferences, queues and media "
        "flows may use",
    )
    al = allow.add_subparsers(metavar="ACTION")
    add = al.add_parser("add", help="allow a destination or media URL (audited)")
    add.add_argument("kind", choices=sorted(KINDS))
    add.add_argument("value", help="e.g. +441632960200, https://media.example.gov.uk/prompts/")
    add.add_argument("--note", default="", help="why (kept with the entry)")
    add.set_defaults(handler=_allow_add)
    remove = al.add_parser("remove", help="take an entry off a list (audited)")
    remove.add_argument("kind", choices=sorted(KINDS))
    remove.add_argument("value")
    remove.set_defaults(handler=_allow_remove)
    listing = al.add_parser("list", help="the lists' entries, who added them and why")
    listing.add_argument("kind", nargs="?", choices=sorted(KINDS))
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_allow_list)

    pending = flows.add_parser("pending", help="versions waiting for a second designer")
    pending.add_argument("name", nargs="?")
    pending.set_defaults(handler=_pending)
    approve = flows.add_parser(
        "approve", help="approve a protected flow's version (not your own): it goes live"
    )
    approve.add_argument("name")
    approve.add_argument("version")
    approve.set_defaults(handler=_approve)
    reject = flows.add_parser("reject", help="turn down a version waiting for approval")
    reject.add_argument("name")
    reject.add_argument("version")
    reject.set_defaults(handler=_reject)
    for verb, on in (("protect", True), ("unprotect", False)):
        toggle = flows.add_parser(
            verb, help=f"{'require' if on else 'stop requiring'} a second designer's approval"
        )
        toggle.add_argument("name")
        toggle.set_defaults(handler=_protect, protect=on)
    protected = flows.add_parser("protected", help="the flows that need approval")
    protected.set_defaults(handler=_protected)
    return allow  # type: ignore[no-any-return]


def _service() -> Any:
    return common.service()


def _admin(svc: Any, doing: str) -> Any:
    return common.actor(svc, ("admin",), doing)


def _allow_add(args: argparse.Namespace) -> int:

    svc = _service()
    AdminDesk(svc).allow(_admin(svc, "changing the allow-lists"), args.kind, args.value,
                         args.note)  # fmt: skip
    print(f"allowed {args.kind} {args.value.strip()}")
    return EXIT_OK


def _allow_remove(args: argparse.Namespace) -> int:

    svc = _service()
    value = AdminDesk(svc).disallow(_admin(svc, "changing the allow-lists"), args.kind,
                                    args.value)  # fmt: skip
    print(f"removed {args.kind} {value}")
    after = svc.allowlists.snapshot()
    for name, version in svc.library.live_versions().items():
        if destination_problems(svc.library.version(version), after):
            print(
                f"note: live flow {name} ({version}) still uses it until a version without "
                "it is published"
            )
    return EXIT_OK


def _allow_list(args: argparse.Namespace) -> int:
    entries = _service().allowlists.entries(args.kind)
    if args.json:
        print(json.dumps(entries, indent=2))
        return EXIT_OK
    if not entries:
        print("nothing allowed: flows may only use the service's own conferences")
    for entry in entries:
        note = f"  ({entry['note']})" if entry.get("note") else ""
        print(f"{entry['kind']:<11} {entry['value']}  by {entry['by']}{note}")
    return EXIT_OK


def _pending(args: argparse.Namespace) -> int:

    waiting = _service().releases.pending(args.name)
    if not waiting:
        print("nothing waiting for approval")
    for entry in waiting:
        print(
            f"{entry['flow']:<22} {entry['version']}  by {entry['by']} at "
            f"{_when_text(entry['at'])}  ({entry.get('tests', 0)} tests, "
            f"{entry.get('coverage', '')})"
        )
    return EXIT_OK


def _approve(args: argparse.Namespace) -> int:
    svc = _service()
    entry = svc.releases.approve(args.name, args.version, common.actor(svc))
    print(
        f"approved {entry['flow']} version {entry['version']} (by {entry['author']}; was "
        f"{entry['previous']}); live on every worker within "
        f"{svc.settings.flow_release_check_seconds:g}s"
    )
    return EXIT_OK


def _reject(args: argparse.Namespace) -> int:
    svc = _service()
    svc.releases.reject(args.name, args.version, common.actor(svc))
    print(f"rejected {args.name} version {args.version}")
    return EXIT_OK


def _protect(args: argparse.Namespace) -> int:
    svc = _service()
    result = svc.releases.set_protected(args.name, args.protect, common.actor(svc))
    print(
        {
            "protected": f"{args.name} now needs a second designer's approval",
            "requested": f"asked to lift {args.name}'s protection: a second admin must ask "
            f"too (callflow flows unprotect {args.name})",
            "unprotected": f"{args.name} is published directly (a second admin agreed)",
        }.get(result, f"{args.name}: nothing to change")
    )
    return EXIT_OK


def _protected(_args: argparse.Namespace) -> int:
    protection = _service().releases.protection()
    for name, reasons in protection["flows"].items():
        print(f"{name:<22} {'; '.join(reasons)}")
    for name, ask in protection["lifting"].items():
        print(f"{name:<22} lifting asked by {ask['by']} (waits for a second admin)")
    return EXIT_OK
