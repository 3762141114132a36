"""The callflow command: lint, graph and adviser management on the real Redis."""

from __future__ import annotations

import io
import json
import re
import secrets
import shutil
from pathlib import Path

import pytest
import redis

from callflow.cli.main import main
from callflow.config import Settings
from callflow.service import Callflow
from tests.conftest import FLOWS, TEST_REDIS_URL, cli_sign_in
from tests.rigs import GOOD


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, redis_store: object, tmp_path: Path) -> Callflow:
    """The shared store, and the command line signed in as an admin (Ada)."""
    key = secrets.token_hex(16)
    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setenv("CALLFLOW_SECRET_KEY", key)
    monkeypatch.setenv("CALLFLOW_HASH_COST", "10")
    monkeypatch.setenv("USER", "tester")
    svc = Callflow(Settings.from_env())
    cli_sign_in(monkeypatch, tmp_path, svc, "admin")
    return svc


def pipe(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_lint_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(FLOWS)]) == 0
    assert "ok" in capsys.readouterr().out


def test_lint_reports_problems_with_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("timeout: ask", "timeout: nowhere"))
    assert main(["lint", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:13: transition to unknown state 'nowhere'" in out


def test_graph_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "vstrs_inbound"]) == 0
    out = capsys.readouterr().out
    assert "stateDiagram-v2" in out
    assert "check_pin --> ask_question: pin_accepted" in out
    assert "not_recognised --> ask_adviser: next [tries_left]" in out


def test_graph_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "flow.mmd"
    assert main(["graph", str(FLOWS / "vstrs_inbound.yaml"), "-o", str(target)]) == 0
    assert target.read_text().startswith("---")


def test_advisers_need_the_shared_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["advisers", "list"]) == 1
    err = capsys.readouterr().err
    assert "REDIS_URL is not set" in err
    assert "callflow serve --demo" in err and "export REDIS_URL=" in err, "it says what to do"


def test_adviser_lifecycle(
    cli_env: Callflow,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    redis_client: redis.Redis,
) -> None:
    assert (
        main(
            [
                "advisers",
                "add",
                "--number",
                "4321",
                "--name",
                "Ada Adviser",
                "--org",
                "top",
                "--consent-to-act",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    issued = out.split("PIN (shown once, give it to the adviser securely): ")[1].split()[0]
    assert len(issued) == 8

    adviser = cli_env.directory.require("4321")
    assert cli_env.hasher.verify(issued, adviser.pin_hash)

    pipe(monkeypatch, "975318\n")
    assert main(["advisers", "set-pin", "4321"]) == 0
    assert "975318" not in capsys.readouterr().out
    assert cli_env.hasher.verify("975318", cli_env.directory.require("4321").pin_hash)

    pipe(monkeypatch, "Oak Lane\nGreen\n")
    assert (
        main(
            [
                "advisers",
                "set-answers",
                "4321",
                "--question",
                "first_school",
                "--question",
                "favourite_colour",
            ]
        )
        == 0
    )
    capsys.readouterr()

    assert main(["advisers", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["number"] == "4321" and listed[0]["questions"] == [
        "favourite_colour",
        "first_school",
    ]
    dumped = json.dumps(listed)
    assert "pin_hash" not in dumped and "Oak Lane" not in dumped

    guard, now = cli_env.settings.guard, cli_env.clock.now()
    for n in range(guard.adviser_threshold):  # strangers' numbers, one wrong PIN each
        cli_env.store.begin_attempt("4321", f"+44700900{n:04d}", now, guard)
        cli_env.store.attempt_failed("4321", f"+44700900{n:04d}", now, guard)
    assert main(["advisers", "list"]) == 0
    assert "LOCKED" in capsys.readouterr().out
    assert main(["advisers", "status", "4321"]) == 0
    status = capsys.readouterr().out
    assert "LOCKED to numbers that have not verified them" in status
    assert "30 consecutive failures" in status and "number +447009000029" in status
    assert main(["advisers", "unlock", "4321"]) == 0
    assert cli_env.store.lock_status("4321", cli_env.clock.now()).locked_seconds == 0

    assert main(["advisers", "remove", "4321"]) == 0
    assert cli_env.directory.get("4321") is None
    entries = [e for e in cli_env.audit.entries() if e["kind"].startswith("adviser.")]
    kinds = [e["kind"] for e in entries]
    assert kinds == [
        "adviser.added",
        "adviser.pin_set",
        "adviser.answers_set",
        "adviser.unlocked",
        "adviser.removed",
    ]
    assert all(e["by"] == "ada (CLI)" for e in entries), "the signed-in account, not $USER"
    # Nothing in Redis gives a secret away.
    dump = " ".join(str(redis_client.dump(k)) for k in redis_client.keys("*"))
    for secret in ("975318", issued, "Oak Lane", "oaklane", "Green"):
        assert secret not in dump


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["advisers", "add", "--number", "12", "--name", "X", "--org", "top"],
            "number: 4 to 10 digits",
        ),
        (["advisers", "set-pin", "9999"], "no adviser with number 9999"),
        (["advisers", "unlock", "9999"], "no adviser with number 9999"),
        (["advisers", "remove", "9999"], "no adviser 9999"),
    ],
)
def test_adviser_errors(
    cli_env: Callflow, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 1
    assert message in capsys.readouterr().err


def test_weak_pin_is_refused(
    cli_env: Callflow, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["advisers", "add", "--number", "4321", "--name", "Ada", "--org", "litrg"])
    pipe(monkeypatch, "123456\n")
    assert main(["advisers", "set-pin", "4321"]) == 1
    assert "consecutive" in capsys.readouterr().err


@pytest.mark.skipif(
    not shutil.which("dot"), reason="Graphviz's dot is not installed (.ci/run installs it)"
)
@pytest.mark.parametrize(("fmt", "magic"), [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_graph_svg_and_png(tmp_path: Path, fmt: str, magic: bytes) -> None:
    target = tmp_path / f"flow.{fmt}"
    assert main(["graph", "vstrs_inbound", "--format", fmt, "-o", str(target)]) == 0
    assert magic in target.read_bytes()[:400]


# -- simulated calls


class Terminal(io.StringIO):
    """Standard input that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_demo_plays_the_whole_story(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["demo", "--agent-after", "5", "--talk", "30"]) == 0
    out = capsys.readouterr().out
    assert "presses   1001#" in out
    assert "You are verified as calling from Tax Aid" in out
    assert "rings client:demo_agent" in out and "starts" in out
    assert "presses   100001#" in out, "the specialist keys the agent's SEES ID"
    assert "--- disclosure grant: authorised=True, to Debt Pursuit" in out
    assert (
        "--- disclosure grant: authorised=False" in out
        and "usual authority requirements apply" in out
    )
    audit = out.split("audit log:")[1]
    for kind in ("agent.connected", "handoff.sees_check", "grant.issued", "grant.ended"):
        assert kind in audit
    assert "246810" not in audit and "Hill Top" not in audit
    assert " INFO " not in out and " WARNING " not in out, "the story alone, without -v"
    assert "participant-with-end-conference-on-exit-left" not in out
    assert "the caller hung up" in audit


def test_demo_in_welsh(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["demo", "--welsh", "--agent-after", "5", "--talk", "30"]) == 0
    out = capsys.readouterr().out
    assert "hears     Croeso i Wasanaeth Datrys Trethi'r Sector Gwirfoddol" in out
    assert "Dywedwch" in out and "Diolch am aros" in out
    assert "Mae'r alwad yn Gymraeg." in out, "the specialist is whispered to in Welsh"
    assert "--- disclosure grant: authorised=True" in out
    assert "hears     Welcome" not in out and "agent.language_fallback" not in out


def test_demo_meeting_agrees_a_time_from_the_diary(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["demo", "--meeting"]) == 0
    out = capsys.readouterr().out
    offered = re.search(r"For (\w+ \d+ \w+) at 9 in the morning, press 1\. For (\w+ \d+ \w+) at "
                        r"9 in the morning, press 2\.", out)  # fmt: skip
    assert offered, out
    assert f"Your meeting is booked for {offered.group(2)} at 9 in the morning" in out
    booked = re.search(r"time booked: (\w+ \d+ \w+) \d{4} at 9am \((\S+)\)", out)
    assert booked and booked.group(1) == offered.group(2)
    assert re.search(r"in Olive Officer's diary: m-[0-9a-f]{12}", out)
    assert "meeting.time_booked      booked" in out
    assert main(["demo", "--meeting", "--welsh"]) == 0
    welsh = capsys.readouterr().out
    assert "pwyswch 2." in welsh and "Mae eich cyfarfod wedi'i drefnu ar gyfer" in welsh


def test_demo_verbose_shows_the_services_log(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    monkeypatch.delenv("REDIS_URL", raising=False)
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    keep = Keep(logging.INFO)
    logging.getLogger().addHandler(keep)
    try:
        assert main(["demo", "--agent-after", "5", "--talk", "30", "-v"]) == 0
    finally:
        logging.getLogger().removeHandler(keep)
    assert any(m.startswith("audit grant.issued") for m in seen)


def test_call_in_process_scripted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    args = ["call", "--demo-adviser", "--press", "1001#", "--press", "246810#"]
    args += ["--answer", "first school=Hill Top,colour=blue", "--hold", "5"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "You are verified as calling from Tax Aid" in out
    assert "joins vstrs-CA" in out and "ended: completed" in out
    # The demo agent answers after 15 s; this caller gives up after 5.
    assert "nobody answered: the caller waited 5s on hold; 1 agent(s) were rung" in out


def test_call_another_flow(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["call", "--flow", "officer_check", "--press", "1234567#", "--press", "2"]) == 0
    out = capsys.readouterr().out
    assert "We cannot confirm identity number 1 2 3 4 5 6 7" in out
    assert "Thank you for calling. Goodbye." in out
    assert main(["call", "--flow", "Bad Name", "--silent"]) == 1
    assert "--flow: a flow name like officer_check" in capsys.readouterr().err


def test_call_interactive(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr("sys.stdin", Terminal("9999#\n\n1#\nhangup\n"))
    assert main(["call", "--demo-adviser"]) == 0
    out = capsys.readouterr().out
    assert "presses   9999#" in out and "silent" in out
    assert "hangs up" in out


def test_call_needs_steps_without_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["call", "--demo-adviser"]) == 1
    assert "give --press/--say steps" in capsys.readouterr().err


def test_call_over_http(
    gunicorn: tuple[str, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import AUTH_TOKEN, enrol

    base, env = gunicorn
    enrol(Callflow(Settings.from_env(env)))
    args = ["call", base, "--token", AUTH_TOKEN, "--press", "1001#", "--press", "246810#"]
    args += ["--answer", "first school=Hill Top,colour=Blue", "--hold", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "You are verified as calling from Tax Aid" in out
    # No agent is registered on that service: the call says so rather than end in silence.
    assert "nobody answered: the caller waited 3s on hold; no VSTRS agent joined" in out
    assert "callflow agents list" in out


def test_call_over_http_with_a_wrong_token(
    gunicorn: tuple[str, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = gunicorn
    assert main(["call", base, "--token", "wrong", "--press", "1#"]) == 1
    err = capsys.readouterr().err
    assert "11200" in err and "403" in err
