"""Staff: agents, teams and API tokens from the command line, and the API's sign-in rules."""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from callflow.cli.main import main
from callflow.config import Settings
from callflow.errors import DirectoryError
from callflow.service import Callflow
from callflow.staff import parse_hours
from tests.conftest import TEST_REDIS_URL, cli_account, cli_sign_in


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, redis_store: object, tmp_path: Path) -> Callflow:
    """The shared store, and the command line signed in as an admin (Ada)."""
    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setenv("CALLFLOW_SECRET_KEY", secrets.token_hex(16))
    monkeypatch.setenv("CALLFLOW_HASH_COST", "10")
    monkeypatch.setenv("USER", "tester")
    svc = Callflow(Settings.from_env())
    cli_sign_in(monkeypatch, tmp_path, svc, "admin")
    return svc


def out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_agents_from_the_command_line(
    cli_env: Callflow, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["agents", "add", "--sees-id", "123456", "--name", "Amy Agent", "--client", "amy"])
        == 0
    )
    assert (
        main(
            [
                "agents",
                "add",
                "--sees-id",
                "654321",
                "--name",
                "Ben Agent",
                "--phone",
                "+441632960100",
            ]
        )
        == 0
    )
    assert main(["agents", "list", "--json"]) == 0
    capsys.readouterr()
    assert main(["agents", "list", "--json"]) == 0
    rows = json.loads(out(capsys))
    assert [(r["sees_id"], r["reach"], r["availability"]["status"]) for r in rows] == [
        ("123456", "client:amy", "away"),
        ("654321", "+441632960100", "away"),
    ]
    assert main(["agents", "deactivate", "123456"]) == 0
    assert cli_env.staff.agent("123456").active is False  # type: ignore[union-attr]
    assert main(["agents", "remove", "654321"]) == 0
    assert cli_env.staff.agent("654321") is None
    kinds = [e["kind"] for e in cli_env.audit.entries() if e["kind"] != "staff.account_added"]
    assert kinds == [
        "staff.agent_added",
        "staff.agent_added",
        "staff.agent_deactivated",
        "staff.agent_removed",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["agents", "add", "--sees-id", "12", "--name", "X", "--client", "x"],
            "sees_id: 6 to 10 digits",
        ),
        (["agents", "add", "--sees-id", "123456", "--name", "X", "--phone", "0800"], "reach:"),
        (
            ["teams", "add", "--id", "Debt", "--name", "D", "--number", "+441632960200"],
            "id: lower_case",
        ),
        (["teams", "add", "--id", "debt", "--name", "D", "--number", "x"], "numbers:"),
        (
            [
                "teams",
                "add",
                "--id",
                "debt",
                "--name",
                "D",
                "--number",
                "+441632960200",
                "--hours",
                "9 to 5",
            ],
            "hours:",
        ),
        (["tokens", "issue", "--role", "vstrs_agent", "--staff", "999999"], "no VSTRS agent"),
        (["tokens", "revoke", "nothing"], "no token nothing"),
    ],
)
def test_staff_errors(
    cli_env: Callflow, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 1
    assert message in capsys.readouterr().err


def test_teams_from_the_command_line(cli_env: Callflow, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "teams",
        "add",
        "--id",
        "debt_pursuit",
        "--name",
        "Debt Pursuit",
        "--handles",
        "Pursuit of debts",
    ]
    args += [
        "--number",
        "+441632960200",
        "--number",
        "+441632960201",
        "--hours",
        "Mon-Fri 08:30-17:00",
    ]
    assert main(args) == 0
    team = cli_env.staff.team("debt_pursuit")
    assert team is not None and team.numbers == ["+441632960200", "+441632960201"]
    assert main(["teams", "list"]) == 0
    assert "Debt Pursuit" in out(capsys)
    assert main(["teams", "update", "debt_pursuit", "--hours", "Mon-Sat 08:00-20:00"]) == 0
    team = cli_env.staff.team("debt_pursuit")
    assert team is not None and team.hours == "Mon-Sat 08:00-20:00"
    assert team.numbers == ["+441632960200", "+441632960201"], "numbers not given are kept"
    changed = [e for e in cli_env.audit.entries() if e["kind"] == "staff.team_changed"]
    assert changed[-1]["by"] == "ada (CLI)" and changed[-1]["team"] == "debt_pursuit"
    assert main(["teams", "update", "nowhere", "--hours", "Mon 09:00-10:00"]) == 1
    assert main(["teams", "update", "debt_pursuit", "--welsh", "+441632960201"]) == 0
    team = cli_env.staff.team("debt_pursuit")
    assert team is not None and team.numbers_for("cy-GB")[0] == "+441632960201"
    assert "(in Welsh: +441632960201)" in out(capsys)


def test_agents_skills_from_the_command_line(
    cli_env: Callflow, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["agents", "add", "--sees-id", "123457", "--name", "Bethan", "--client", "bethan"]
    assert main([*args, "--skill", "cy-GB"]) == 0
    agent = cli_env.staff.agent("123457")
    assert agent is not None and agent.skills == ["cy-GB"] and agent.speaks("cy-GB")
    assert main(["agents", "skills", "123457"]) == 0
    assert cli_env.staff.agent("123457").skills == []
    assert main(["agents", "skills", "123457", "Welsh!"]) == 1
    assert "not a language like cy-GB" in capsys.readouterr().err
    kinds = [e["kind"] for e in cli_env.audit.entries() if e.get("agent") == "123457"]
    assert kinds.count("staff.agent_skills_set") == 2


def test_opening_hours() -> None:
    days, start, end = parse_hours("Mon-Fri 08:30-17:00")
    assert days == {"mon", "tue", "wed", "thu", "fri"} and (start, end) == (510, 1020)
    assert parse_hours("Sat 10:00-12:00")[0] == {"sat"}
    assert parse_hours("Fri-Mon 09:00-10:00")[0] == {"fri", "sat", "sun", "mon"}
    for bad in ("Mon-Fri 17:00-08:30", "Xyz 09:00-10:00", ""):
        with pytest.raises(DirectoryError):
            parse_hours(bad)


def test_tokens_are_shown_once_and_stored_hashed(
    cli_env: Callflow, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["agents", "add", "--sees-id", "123456", "--name", "Amy Agent", "--client", "amy"])
    capsys.readouterr()
    assert (
        main(["tokens", "issue", "--role", "vstrs_agent", "--staff", "123456", "--name", "Amy"])
        == 0
    )
    token = out(capsys).rsplit(" ", 1)[1].strip()
    assert token.startswith("cf_")
    member = cli_env.staff.authenticate(token)
    assert member is not None and member.role == "vstrs_agent" and member.staff_id == "123456"
    stored = json.dumps(cli_env.store.indexed("tokens", "all"))
    assert token not in stored and token[3:] not in stored
    assert main(["tokens", "list"]) == 0
    listing = out(capsys)
    assert token[3:11] in listing and token not in listing
    assert main(["tokens", "revoke", token[3:11]]) == 0
    assert cli_env.staff.authenticate(token) is None


# -- the API's rules


@pytest.fixture
def tokens(service: Callflow) -> dict[str, str]:
    now = service.clock.now()
    service.staff.add_agent("123456", "Amy Agent", "client:amy", now, by="tests")
    service.staff.add_agent("654321", "Ben Agent", "client:ben", now, by="tests")
    service.staff.add_team(
        "debt_pursuit",
        "Debt Pursuit",
        "",
        ["+441632960200"],
        "Mon-Sun 00:00-24:00",
        by="tests",
        nation="none",
    )
    service.staff.add_specialist(
        "300101", "Kim Specialist", "debt_pursuit", "client:kim", now, by="tests"
    )
    return {
        "amy": service.staff.issue_token("vstrs_agent", "123456", "Amy", now, by="tests"),
        "ben": service.staff.issue_token("vstrs_agent", "654321", "Ben", now, by="tests"),
        "specialist": service.staff.issue_token("specialist", "300101", "Kim", now, by="tests"),
        "admin": service.staff.issue_token("admin", cli_account(service), "Ops", now, by="tests"),
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_api_call_needs_a_token(client: FlaskClient, tokens: dict[str, str]) -> None:
    response = client.get("/api/me")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/me", headers=bearer("cf_not-a-token")).status_code == 401
    assert client.get("/api/me", headers=bearer(tokens["amy"])).get_json() == {
        "staff_id": "123456",
        "role": "vstrs_agent",
        "name": "Amy",
    }


def test_roles_are_enforced(client: FlaskClient, tokens: dict[str, str]) -> None:
    response = client.put(
        "/api/agents/me/availability",
        json={"status": "available"},
        headers=bearer(tokens["specialist"]),
    )
    assert response.status_code == 403 and "vstrs_agent" in response.get_json()["error"]
    assert client.get("/api/agents", headers=bearer(tokens["specialist"])).status_code == 403
    assert client.get("/api/agents", headers=bearer(tokens["admin"])).status_code == 200


def test_availability(client: FlaskClient, service: Callflow, tokens: dict[str, str]) -> None:
    response = client.put(
        "/api/agents/me/availability", json={"status": "available"}, headers=bearer(tokens["amy"])
    )
    assert response.status_code == 200 and response.get_json()["status"] == "available"
    assert [a.sees_id for a in service.staff.idle_agents(service.clock.now())] == ["123456"]
    bad = client.put(
        "/api/agents/me/availability", json={"status": "asleep"}, headers=bearer(tokens["amy"])
    )
    assert bad.status_code == 422 and bad.get_json()["errors"] == {"status": "available, away or ready"}
    assert (
        client.put(
            "/api/agents/me/availability", data="x", headers=bearer(tokens["amy"])
        ).status_code
        == 400
    )


def test_unknown_call_is_a_404(client: FlaskClient, tokens: dict[str, str]) -> None:
    assert client.get("/api/calls/CA" + "0" * 32, headers=bearer(tokens["amy"])).status_code == 404
    assert client.get("/api/calls/nonsense", headers=bearer(tokens["amy"])).status_code == 404


def test_hours_from_the_command_line(cli_env: Callflow, capsys: pytest.CaptureFixture[str]) -> None:
    cli_env.staff.add_team(
        "compliance", "Compliance", "", ["+441632960300"], "Mon-Fri 09:00-17:00", by="tests"
    )
    assert main(["hours", "show", "line", "--at", "2026-12-25T10:00"]) == 0
    assert "open until midnight" in out(capsys), "the line is open all hours until set"
    week = "Mon-Fri 08:30-12:30,13:30-17:00"
    assert main(["hours", "set", "compliance", "--week", week, "--nation", "scotland"]) == 0
    capsys.readouterr()
    assert main(["hours", "show", "compliance", "--at", "2027-01-04T10:00"]) == 0
    shown = out(capsys)
    assert "closed: bank holiday" in shown and "reopens Tue 05 Jan at 08:30" in shown
    args = ["hours", "close", "compliance", "--from", "2026-12-02T12:00"]
    assert main([*args, "--to", "2026-12-02T17:00", "--reason", "training"]) == 0
    assert (
        main(["hours", "open", "compliance", "--on", "2026-12-05", "--hours", "10:00-12:00"]) == 0
    )
    capsys.readouterr()
    assert main(["hours", "show", "compliance", "--at", "2026-12-02T14:00"]) == 0
    shown = out(capsys)
    assert "closed: training" in shown and "1. closed 2026-12-02T12:00 to 2026-12-02T17:00" in shown
    assert "2. open on 2026-12-05 10:00-12:00" in shown
    assert main(["hours", "clear", "compliance", "1"]) == 0
    assert len(cli_env.staff.calendar("compliance").exceptions) == 1
    assert main(["hours", "set", "compliance", "--week", "Mon 9-5"]) == 1
    assert "not a time range" in capsys.readouterr().err
    changes = [e for e in cli_env.audit.entries() if e["kind"] == "staff.calendar_changed"]
    assert [e["change"] for e in changes] == [
        "week",
        "closure added",
        "opening added",
        "exception removed",
    ]
    assert all(e["by"] == "ada (CLI)" for e in changes), "the signed-in account, not $USER"


def test_closure_from_the_command_line(
    cli_env: Callflow,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    english = tmp_path / "closed.txt"
    english.write_text("The line is closed today because of a power cut. Please call tomorrow.\n")
    welsh = tmp_path / "ar-gau.txt"
    welsh.write_text("Mae'r llinell ar gau heddiw oherwydd toriad pŵer. Ffoniwch yfory.\n")
    assert main(["closure", "show"]) == 0
    assert "no closure" in out(capsys)
    args = ["closure", "start", "--message-file", str(english), "--welsh-file", str(welsh)]
    with pytest.raises(SystemExit):
        main(args)  # closing the line needs a reason
    assert "--reason" in capsys.readouterr().err
    args += ["--reason", "power cut at the contact centre"]
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert main(args) == 1, "closing the line asks first; anything but yes closes nothing"
    asked = out(capsys)
    assert "Close the VSTRS line to new calls now?" in asked and "not closed" in asked
    assert cli_env.staff.closure(cli_env.clock.now()) is None
    assert main([*args, "--yes"]) == 0
    assert "closed to new calls until `closure end`" in out(capsys)
    assert main(["closure", "show"]) == 0
    shown = out(capsys)
    assert "by ada (CLI)" in shown and "cy-GB: Mae'r llinell ar gau" in shown
    assert "why: power cut at the contact centre" in shown
    started = [e for e in cli_env.audit.entries() if e["kind"] == "line.closure_started"]
    assert [e.get("reason") for e in started] == ["power cut at the contact centre"]
    assert main(["closure", "end"]) == 0
    assert main(["closure", "end"]) == 1
    assert "not closed at short notice" in capsys.readouterr().err
    missing = str(tmp_path / "missing.txt")
    assert main(["closure", "start", "--message-file", missing, "--reason", "x", "--yes"]) == 1
