"""The command line acts as a signed-in person (ARCHITECTURE.md rule 12).

``callflow login`` keeps a console session for its user alone; ``CALLFLOW_TOKEN`` holds a
personal API token; ``$LOGNAME`` and ``$USER`` never decide who acts. Each command runs in
a process of its own, as an operator would run it, on the shared Redis.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from callflow.config import Settings
from callflow.flowspec import parse_flow
from callflow.service import Callflow
from callflow.store.base import Store
from tests.conftest import FLOWS, TEST_REDIS_URL, cli_account, cli_login, run_cli

VSTRS = FLOWS / "vstrs_inbound.yaml"
VSTRS_TESTS = FLOWS / "vstrs_inbound.test.yaml"
VSTRS_V2 = VSTRS.read_text().replace(
    "Please check your details\n            with your organisation and call again.",
    "Please check your details\n            with your organisation, then call again.",
)


@pytest.fixture
def shared(
    redis_store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[Callflow, dict[str, str]]:
    """The service on the shared store, and the environment an operator's shell has: the
    store and its key, a home of its own, nobody signed in."""
    env = {
        **os.environ,
        "REDIS_URL": TEST_REDIS_URL,
        "CALLFLOW_SECRET_KEY": "k" * 32,
        "CALLFLOW_HASH_COST": "10",
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
    }
    for name in ("CALLFLOW_TOKEN", "CALLFLOW_CONFIG_DIR"):
        env.pop(name, None)
    for name in ("REDIS_URL", "CALLFLOW_SECRET_KEY", "CALLFLOW_HASH_COST"):
        monkeypatch.setenv(name, env[name])
    return Callflow(Settings.from_env()), env


def test_two_person_approval_needs_two_real_accounts_and_ignores_logname(
    shared: tuple[Callflow, dict[str, str]], tmp_path: Path
) -> None:
    svc, env = shared
    edit = tmp_path / "vstrs_inbound.yaml"
    edit.write_text(VSTRS_V2)
    (tmp_path / "vstrs_inbound.test.yaml").write_text(VSTRS_TESTS.read_text())
    version = parse_flow(VSTRS_V2).version

    nobody = run_cli({**env, "LOGNAME": "dana", "USER": "dana"}, "flows", "publish", str(edit), "-m", "x")
    assert nobody.returncode == 1 and "callflow login" in nobody.stderr, "no account, no act"

    dana = cli_login(env, tmp_path, svc, "designer")
    ben = cli_login(env, tmp_path, svc, "designer", "ben")
    # Dana publishes while her shell claims to be Ben: she is who her session says.
    published = run_cli({**dana, "LOGNAME": "ben", "USER": "ben"}, "flows", "publish", str(edit), "-m", "wording")
    assert published.returncode == 0, published.stderr
    assert "waits for a second designer" in published.stdout
    pending = run_cli(dana, "flows", "pending")
    assert version in pending.stdout and "by dana" in pending.stdout
    # ... and cannot approve her own version, whatever $LOGNAME says.
    own = run_cli({**dana, "LOGNAME": "nobody-in-particular", "USER": "ben"}, "flows", "approve", "vstrs_inbound", version)
    assert own.returncode == 1 and "second designer" in own.stderr
    assert svc.releases.release("vstrs_inbound")["live"] is None  # type: ignore[index]
    # An auditor is a second person but not a designer.
    amy = cli_login(env, tmp_path, svc, "auditor")
    refused = run_cli(amy, "flows", "approve", "vstrs_inbound", version)
    assert refused.returncode == 1 and "is for a call-flow designer or an admin" in refused.stderr
    ok = run_cli({**ben, "LOGNAME": "dana"}, "flows", "approve", "vstrs_inbound", version)
    assert ok.returncode == 0 and "approved vstrs_inbound" in ok.stdout, ok.stderr
    assert svc.releases.release("vstrs_inbound")["live"] == version  # type: ignore[index]
    kinds = [(e["kind"], e["by"]) for e in svc.audit.entries() if e["kind"].startswith("flow.")]
    assert ("flow.submitted", "dana") in kinds and ("flow.approved", "ben (CLI)") in kinds


def test_protect_and_unprotect_are_an_admins_and_lifting_takes_two(
    shared: tuple[Callflow, dict[str, str]], tmp_path: Path
) -> None:
    svc, env = shared
    dana = cli_login(env, tmp_path, svc, "designer")
    ada = cli_login(env, tmp_path, svc, "admin")
    ian = cli_login(env, tmp_path, svc, "admin", "ian")
    refused = run_cli(dana, "flows", "unprotect", "officer_check")
    assert refused.returncode == 1 and "is for an admin" in refused.stderr
    assert run_cli(ada, "flows", "protect", "officer_check").returncode == 0
    asked = run_cli({**ada, "LOGNAME": "ian"}, "flows", "unprotect", "officer_check")
    assert asked.returncode == 0 and "a second admin must ask too" in asked.stdout
    again = run_cli(ada, "flows", "unprotect", "officer_check")
    assert "a second admin must ask too" in again.stdout, "the same admin twice lifts nothing"
    assert "officer_check" in svc.releases.protected()
    listed = run_cli(ada, "flows", "protected").stdout
    assert "lifting asked by ada" in listed and "verifies callers" in listed
    lifted = run_cli(ian, "flows", "unprotect", "officer_check")
    assert lifted.returncode == 0 and "a second admin agreed" in lifted.stdout
    assert "officer_check" not in svc.releases.protected()
    nature = run_cli(ian, "flows", "unprotect", "vstrs_callback")
    assert nature.returncode == 1 and "stays protected by what it does" in nature.stderr


def test_login_whoami_logout_and_the_kept_session(
    shared: tuple[Callflow, dict[str, str]], tmp_path: Path
) -> None:
    svc, env = shared
    assert "sign in first" in run_cli(env, "whoami").stdout
    cli_account(svc, "designer")
    folder = tmp_path / "home" / ".config" / "callflow"
    wrong = run_cli_input(env, "wrong password\n", "login", "--username", "dana")
    assert wrong.returncode == 1 and "wrong username or password" in wrong.stderr
    assert not (folder / "session.json").exists()
    done = run_cli_input(env, "correct horse battery\n", "login", "--username", "dana")
    assert done.returncode == 0, done.stderr
    assert "signed in as dana (a call-flow designer)" in done.stdout
    kept = folder / "session.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600, "readable by its user alone"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert "correct horse" not in kept.read_text() and TEST_REDIS_URL not in kept.read_text()
    shown = run_cli({**env, "LOGNAME": "root", "USER": "root"}, "whoami")
    assert shown.returncode == 0 and shown.stdout.startswith("dana (CLI): ")
    assert run_cli(env, "logout").returncode == 0
    assert not kept.exists()
    assert "sign in first" in run_cli(env, "whoami").stdout
    assert svc.store.indexed("console_sessions", "user:dana") == [], "the session ended too"


def run_cli_input(env: dict[str, str], text: str, *args: str) -> object:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", "from callflow.cli.main import main; raise SystemExit(main())", *args],
        env=env, input=text, capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip


def test_a_personal_token_acts_as_its_account_and_names_an_existing_one(
    shared: tuple[Callflow, dict[str, str]], tmp_path: Path
) -> None:
    svc, env = shared
    ada = cli_login(env, tmp_path, svc, "admin")
    missing = run_cli(ada, "tokens", "issue", "--role", "designer", "--staff", "nobody")
    assert missing.returncode == 1 and "no active designer account 'nobody'" in missing.stderr
    cli_account(svc, "designer", "ben")
    issued = run_cli(ada, "tokens", "issue", "--role", "designer", "--staff", "ben", "--name", "Ben")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.rsplit(" ", 1)[-1].strip()
    as_ben = {**env, "CALLFLOW_TOKEN": token, "LOGNAME": "ada"}
    whoami = run_cli(as_ben, "whoami")
    assert whoami.stdout.startswith("ben (API token ") and "designer" in whoami.stdout.lower()
    # A designer's token cannot do an admin's work.
    refused = run_cli(as_ben, "allow", "add", "number", "+441632960200")
    assert refused.returncode == 1 and "is for an admin" in refused.stderr
    # Remove the account and its token stops acting for anyone.
    assert run_cli(ada, "accounts", "remove", "ben").returncode == 0
    gone = run_cli(as_ben, "whoami")
    assert gone.returncode == 1 and "not a live API token" in gone.stderr
    mine = run_cli(ada, "tokens", "issue", "--role", "admin")
    assert mine.returncode == 0 and "token for ada (admin)" in mine.stdout


def test_the_first_admin_of_a_new_store_and_only_the_first(
    shared: tuple[Callflow, dict[str, str]], tmp_path: Path
) -> None:
    svc, env = shared
    args = ["accounts", "add", "--username", "root", "--name", "Ops", "--role", "admin"]
    plain = run_cli_input(env, "a long enough password\n", *args)
    assert plain.returncode == 1 and "callflow login" in plain.stderr
    first = run_cli_input(env, "a long enough password\n", *args, "--first-admin")
    assert first.returncode == 0, first.stderr
    assert svc.accounts.role_of("root") == "admin"
    (added,) = [e for e in svc.audit.entries() if e["kind"] == "staff.account_added"]
    assert added["by"] == "operator (first admin account)"
    second = run_cli_input(env, "a long enough password\n", "accounts", "add", "--username",
                           "eve", "--name", "Eve", "--role", "admin", "--first-admin")  # fmt: skip
    assert second.returncode == 1 and "has an admin account already" in second.stderr
    assert svc.accounts.get("eve") is None


def test_allow_lists_and_closures_name_the_account(
    shared: tuple[Callflow, dict[str, str]], tmp_path: Path
) -> None:
    svc, env = shared
    ada = cli_login(env, tmp_path, svc, "admin")
    dana = cli_login(env, tmp_path, svc, "designer")
    refused = run_cli(dana, "allow", "add", "number", "+441632960200")
    assert refused.returncode == 1 and "is for an admin" in refused.stderr
    added = run_cli({**ada, "LOGNAME": "mallory"}, "allow", "add", "number", "+441632960200", "--note", "DP")
    assert added.returncode == 0, added.stderr
    listed = run_cli(env, "allow", "list")
    assert "+441632960200  by ada (CLI)  (DP)" in listed.stdout
    bad = run_cli(ada, "allow", "add", "media", "http://insecure.example/")
    assert bad.returncode != 0 and "https://" in bad.stderr
    message = tmp_path / "closed.txt"
    message.write_text("The line is closed today. Please call tomorrow.\n")
    closing = ["closure", "start", "--message-file", str(message), "--reason", "flood", "--yes"]
    assert run_cli(dana, *closing).returncode == 1, "closing the line is an admin's act"
    assert run_cli(ada, *closing).returncode == 0
    assert "by ada (CLI)" in run_cli(env, "closure", "show").stdout
