"""Every change to the staff directory is audited by the service method that makes it.

The CLI, the admin console and the API call the same methods, so none of them can make a
change without its audit entry (issue 15: the CLI's handlers used to write the entries, so
any other caller would have skipped them).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from callflow.service import Callflow
from tests.conftest import ANSWERS

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "ada.admin"


def _world(svc: Callflow) -> None:
    now = svc.clock.now()
    svc.staff.add_agent("200001", "Amy Agent", "client:amy", now, by="setup")
    svc.staff.add_team(
        "debt_pursuit",
        "Debt Pursuit",
        "debts",
        ["+441632960200"],
        "Mon-Fri 08:30-17:00",
        by="setup",
    )
    svc.staff.add_officer("300001", "Olive Officer", now, by="setup")
    svc.directory.add("4001", "Sam Adviser", "taxaid", now=now, by="setup")
    svc.accounts.add(
        "amy", "Amy Agent", "vstrs_agent", "a long password", now, sees_id="200001", by="setup"
    )


def _token(svc: Callflow) -> str:
    token = svc.staff.issue_token("vstrs_agent", "200001", "Amy", svc.clock.now(), by=ADMIN)
    return token[3:11]


#: (what the admin does, the audit kind it must leave, the field naming what changed)
CHANGES: list[tuple[str, Callable[[Callflow], Any], str, tuple[str, str]]] = [
    ("add adviser", lambda s: s.directory.add("4002", "Kim Adviser", "litrg", now=s.clock.now(), by=ADMIN), "adviser.added", ("adviser", "4002")),
    ("issue a PIN", lambda s: s.directory.set_pin("4001", None, s.clock.now(), by=ADMIN), "adviser.pin_set", ("adviser", "4001")),
    ("set a PIN", lambda s: s.directory.set_pin("4001", "739184", s.clock.now(), by=ADMIN), "adviser.pin_set", ("adviser", "4001")),
    ("register answers", lambda s: s.directory.set_answers("4001", ANSWERS, s.clock.now(), by=ADMIN), "adviser.answers_set", ("adviser", "4001")),
    ("unlock adviser", lambda s: s.unlock_adviser("4001", by=ADMIN), "adviser.unlocked", ("adviser", "4001")),
    ("remove adviser", lambda s: s.directory.remove("4001", by=ADMIN), "adviser.removed", ("adviser", "4001")),
    ("add agent", lambda s: s.staff.add_agent("200002", "Ben Agent", "+441632960101", s.clock.now(), by=ADMIN), "staff.agent_added", ("agent", "200002")),
    ("deactivate agent", lambda s: s.staff.set_agent_active("200001", False, by=ADMIN), "staff.agent_deactivated", ("agent", "200001")),
    ("activate agent", lambda s: s.staff.set_agent_active("200001", True, by=ADMIN), "staff.agent_activated", ("agent", "200001")),
    ("remove agent", lambda s: s.staff.remove_agent("200001", by=ADMIN), "staff.agent_removed", ("agent", "200001")),
    ("add team", lambda s: s.staff.add_team("compliance", "Compliance", "", ["+441632960300"], "Mon-Fri 09:00-17:00", by=ADMIN), "staff.team_added", ("team", "compliance")),
    ("change team hours", lambda s: s.staff.update_team("debt_pursuit", "Debt Pursuit", "debts", ["+441632960200"], "Mon-Sat 08:00-20:00", by=ADMIN), "staff.team_changed", ("team", "debt_pursuit")),
    ("remove team", lambda s: s.staff.remove_team("debt_pursuit", by=ADMIN), "staff.team_removed", ("team", "debt_pursuit")),
    ("add officer", lambda s: s.staff.add_officer("300002", "Omar Officer", s.clock.now(), by=ADMIN), "staff.officer_added", ("officer", "300002")),
    ("deactivate officer", lambda s: s.staff.set_officer_active("300001", False, by=ADMIN), "staff.officer_deactivated", ("officer", "300001")),
    ("remove officer", lambda s: s.staff.remove_officer("300001", by=ADMIN), "staff.officer_removed", ("officer", "300001")),
    ("issue token", _token, "staff.token_issued", ("staff", "200001")),
    ("revoke token", lambda s: s.staff.revoke_token(_token(s), by=ADMIN), "staff.token_revoked", ("outcome", "revoked")),
    ("add account", lambda s: s.accounts.add("ben", "Ben Auditor", "auditor", "a long password", s.clock.now(), by=ADMIN), "staff.account_added", ("account", "ben")),
    ("set password", lambda s: s.accounts.set_password("amy", "another long password", by=ADMIN), "staff.password_set", ("account", "amy")),
    ("remove account", lambda s: s.accounts.remove("amy", by=ADMIN), "staff.account_removed", ("account", "amy")),
]  # fmt: skip


@pytest.mark.parametrize(("what", "change", "kind", "field"), CHANGES, ids=[c[0] for c in CHANGES])
def test_each_directory_change_is_audited_by_its_service_method(
    service: Callflow,
    what: str,
    change: Callable[[Callflow], Any],
    kind: str,
    field: tuple[str, str],
) -> None:
    _world(service)
    before = len(list(service.audit.entries()))
    change(service)
    made = [e for e in list(service.audit.entries())[before:] if e["kind"] == kind]
    assert made, f"{what}: no {kind} entry"
    assert made[-1]["by"] == ADMIN
    assert made[-1][field[0]] == field[1]


def test_a_change_that_finds_nothing_leaves_no_entry(service: Callflow) -> None:
    _world(service)
    before = len(list(service.audit.entries()))
    assert not service.directory.remove("4999", by=ADMIN)
    assert not service.staff.remove_agent("299999", by=ADMIN)
    assert not service.staff.remove_team("no_such_team", by=ADMIN)
    assert not service.staff.remove_officer("399999", by=ADMIN)
    assert not service.staff.revoke_token("deadbeef", by=ADMIN)
    assert not service.accounts.remove("nobody", by=ADMIN)
    assert len(list(service.audit.entries())) == before


def _audit_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text())
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "record"
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr == "audit"
    ]


@pytest.mark.parametrize("package", ["callflow/cli", "webhooks"])
def test_no_front_end_writes_audit_entries_itself(package: str) -> None:
    """The CLI and the web layer call service methods; the services write the entries."""
    found = {
        str(path.relative_to(ROOT)): lines
        for path in sorted((ROOT / package).rglob("*.py"))
        if (lines := _audit_calls(path))
    }
    assert found == {}
