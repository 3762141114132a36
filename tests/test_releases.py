"""Publishing flows: validated and tested first, live on every worker, history, rollback."""

from __future__ import annotations

import io
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from callflow.cli.main import main
from callflow.clock import ManualClock
from callflow.errors import CallflowError, PublishRefused
from callflow.service import Callflow
from callflow.store.base import Store
from tests.conftest import FLOWS, Caller, make_settings, person

OFFICER = FLOWS / "officer_check.yaml"
OFFICER_TESTS = FLOWS / "officer_check.test.yaml"


def said(twiml: ET.Element) -> str:
    return " ".join("".join(e.itertext()) for e in twiml.iter("Say"))


def edited(old: str, new: str) -> str:
    text = OFFICER.read_text()
    assert old in text
    return text.replace(old, new)


GOODBYE_V2 = edited("Thank you for calling. Goodbye.", "Thank you for checking. Goodbye.")


def test_publish_makes_a_version_live_and_audits_who(service: Callflow, clock: ManualClock) -> None:
    before = service.library.live("officer_check").version
    entry = service.releases.publish(GOODBYE_V2, OFFICER_TESTS.read_text(), person("dana"), message="a test change")
    assert entry["previous"] == before and entry["tests"] == 6
    assert "states 10/10" in entry["coverage"]
    # Workers look again within the release check interval (2 s by default).
    assert service.library.live("officer_check").version == before
    clock.advance(2.1)
    assert service.library.live("officer_check").version == entry["version"] != before
    (audit,) = [e for e in service.audit.entries() if e["kind"] == "flow.published"]
    assert audit["by"] == "dana" and audit["version"] == entry["version"]
    assert audit["flow"] == "officer_check"


def test_another_process_on_the_store_serves_the_published_version(
    service: Callflow, store: Store, clock: ManualClock
) -> None:
    other = Callflow(make_settings(), store=store, clock=clock)
    other.library.live("officer_check")
    entry = service.releases.publish(GOODBYE_V2, OFFICER_TESTS.read_text(), person("dana"), message="a test change")
    clock.advance(2.1)
    assert other.library.live("officer_check").version == entry["version"]
    assert other.library.live_versions()["officer_check"] == entry["version"]


def test_a_call_in_progress_keeps_its_version(
    service: Callflow, caller: Caller, clock: ManualClock
) -> None:
    service.staff.add_officer("4471203", "Alex Morgan", clock.now(), by="tests")
    caller.start(flow="officer_check")
    old = service.store.get_session(caller.call_sid)
    assert old is not None
    entry = service.releases.publish(GOODBYE_V2, OFFICER_TESTS.read_text(), person("dana"), message="a test change")
    clock.advance(3)
    caller.press("4471203#")
    assert "Thank you for calling. Goodbye." in said(caller.press("2"))
    session = service.store.get_session(caller.call_sid)
    assert session is not None and session.flow_version == old.flow_version != entry["version"]
    # A new call gets the new version.
    fresh = Caller(caller.client)
    fresh.start(flow="officer_check")
    fresh.press("4471203#")
    assert "Thank you for checking. Goodbye." in said(fresh.press("2"))


def test_a_flow_that_fails_validation_is_not_published(service: Callflow) -> None:
    broken = edited(
        "      next: another\n\n  not_confirmed:", "      next: nowhere\n\n  not_confirmed:"
    )
    with pytest.raises(PublishRefused) as refused:
        service.releases.publish(broken, OFFICER_TESTS.read_text(), person("dana"), message="a test change")
    assert "has problems" in str(refused.value) and "unknown state 'nowhere'" in str(refused.value)
    assert service.releases.release("officer_check") is None


def test_a_flow_that_fails_its_tests_is_not_published(service: Callflow) -> None:
    changed = edited("belongs to {officer_name}", "is {officer_name}")
    with pytest.raises(PublishRefused) as refused:
        service.releases.publish(changed, OFFICER_TESTS.read_text(), person("dana"), message="a test change")
    assert "failed its tests" in str(refused.value)
    assert '-hear "Identity number 4 4 7 1 2 0 3 belongs to Alex Morgan"' in refused.value.report
    assert service.releases.release("officer_check") is None
    assert not [e for e in service.audit.entries() if e["kind"] == "flow.published"]


def test_a_flow_without_tests_is_not_published(service: Callflow) -> None:
    with pytest.raises(PublishRefused, match="has no tests"):
        service.releases.publish(GOODBYE_V2, "", person("dana"), message="a test change")


def test_history_diff_and_rollback(service: Callflow, clock: ManualClock) -> None:
    file_version = service.library.live("officer_check").version
    first = service.releases.publish(GOODBYE_V2, OFFICER_TESTS.read_text(), person("dana"), message="a test change")
    clock.advance(1)
    v3 = GOODBYE_V2.replace("You do not need to give", "You never need to give")
    second = service.releases.publish(v3, OFFICER_TESTS.read_text(), person("lee"), message="a test change")
    assert second["previous"] == first["version"]
    with pytest.raises(PublishRefused, match="live already"):
        service.releases.publish(v3, OFFICER_TESTS.read_text(), person("lee"), message="a test change")
    diff = service.releases.diff("officer_check", first["version"], second["version"])
    assert "-            you or is visiting you. You do not need to give" in diff
    assert "+            you or is visiting you. You never need to give" in diff
    with pytest.raises(CallflowError, match="say why"):
        service.releases.rollback("officer_check", person("kim"), message="  ")
    back = service.releases.rollback("officer_check", person("kim"), message="callers misheard it")
    assert back["version"] == first["version"] and back["previous"] == second["version"]
    clock.advance(2.1)
    assert service.library.live("officer_check").version == first["version"]
    # Back to the flows folder's version, by name.
    service.releases.rollback("officer_check", person("kim"), file_version, "back to the start")
    clock.advance(2.1)
    assert service.library.live("officer_check").version == file_version
    history = service.releases.history("officer_check")
    assert [(h["action"], h["by"]) for h in history] == [
        ("publish", "dana"),
        ("publish", "lee"),
        ("rollback", "kim"),
        ("rollback", "kim"),
    ]
    assert [h.get("message") for h in history][2:] == ["callers misheard it", "back to the start"]
    kinds = [e["kind"] for e in service.audit.entries() if e["kind"].startswith("flow.")]
    assert kinds == ["flow.published", "flow.published", "flow.rolled_back", "flow.rolled_back"]
    rolled = [e for e in service.audit.entries() if e["kind"] == "flow.rolled_back"]
    assert [(e["by"], e["reason"]) for e in rolled] == [
        ("kim", "callers misheard it"),
        ("kim", "back to the start"),
    ]
    with pytest.raises(CallflowError, match="has no version"):
        service.releases.rollback("officer_check", person("kim"), "0123456789ab", "typo")
    with pytest.raises(CallflowError, match="is flow vstrs_inbound"):
        service.releases.diff(
            "officer_check", service.library.live("vstrs_inbound").version, file_version
        )


def test_the_store_failing_keeps_the_versions_known(service: Callflow, clock: ManualClock) -> None:
    entry = service.releases.publish(GOODBYE_V2, OFFICER_TESTS.read_text(), person("dana"), message="a test change")
    clock.advance(2.1)
    assert service.library.live("officer_check").version == entry["version"]
    from callflow.errors import StoreUnavailable

    def down(*_args: object, **_kwargs: object) -> None:
        raise StoreUnavailable("down")

    service.store.list_docs = down  # type: ignore[method-assign]
    clock.advance(2.1)
    assert service.library.live("officer_check").version == entry["version"]


@pytest.fixture
def flows_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    return folder


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, redis_store: object, tmp_path: Path) -> Callflow:
    """The shared store, and the command line signed in as a designer (Dana)."""
    from callflow.config import Settings
    from tests.conftest import TEST_REDIS_URL, cli_sign_in

    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setenv("CALLFLOW_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("CALLFLOW_HASH_COST", "10")
    monkeypatch.setenv("USER", "tester")
    svc = Callflow(Settings.from_env())
    cli_sign_in(monkeypatch, tmp_path, svc, "designer")
    return svc


def test_the_cli_publishes_shows_history_diffs_and_rolls_back(
    cli_env: Callflow,
    flows_copy: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flow = flows_copy / "officer_check.yaml"
    flow.write_text(GOODBYE_V2)
    assert main(["flows", "publish", str(flow), "-m", "a shorter goodbye"]) == 0
    out = capsys.readouterr().out
    assert "published officer_check version" in out and "6 test(s) passed" in out
    version = cli_env.releases.release("officer_check")["live"]  # type: ignore[index]
    assert main(["flows", "list"]) == 0
    assert f"officer_check          {version}  (published)" in capsys.readouterr().out
    assert main(["flows", "history", "officer_check"]) == 0
    out = capsys.readouterr().out
    assert f"publish  {version}  by dana" in out and f"live: {version}" in out
    file_version = cli_env.releases.file_flow("officer_check").version  # type: ignore[union-attr]
    assert main(["flows", "diff", "officer_check", file_version, version]) == 0
    assert '+          en-GB: "Thank you for checking. Goodbye."' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["flows", "rollback", "officer_check"])  # a rollback says why
    assert "--message" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("no\n"))
    assert main(["flows", "rollback", "officer_check", "-m", "callers misheard it"]) == 1
    asked = capsys.readouterr().out
    assert f"Roll back officer_check (live: {version})" in asked and "not rolled back" in asked
    assert cli_env.releases.release("officer_check")["live"] == version  # type: ignore[index]
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert main(["flows", "rollback", "officer_check", "-m", "callers misheard it"]) == 0
    assert f"back to version {file_version}" in capsys.readouterr().out
    (rolled,) = [e for e in cli_env.audit.entries() if e["kind"] == "flow.rolled_back"]
    assert rolled["by"] == "dana (CLI)" and rolled["reason"] == "callers misheard it"
    # A broken edit is refused with the test diff, and nothing changes.
    flow.write_text(edited("belongs to {officer_name}", "is {officer_name}"))
    assert main(["flows", "publish", str(flow), "-m", "broken"]) == 1
    err = capsys.readouterr().err
    assert "failed its tests, so it was not published" in err and "FAIL" in err
    assert cli_env.releases.release("officer_check")["live"] == file_version  # type: ignore[index]
