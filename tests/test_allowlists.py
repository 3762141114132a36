"""Designers change what callers hear, not where calls go (ARCHITECTURE.md rule 11).

Numbers, clients, caller IDs, conference and queue names and media URLs come from the
admin's allow-lists; lint reports anything else with file and line, publishing refuses
it, and the service never makes such a version live. Protected flows go live only with a
second designer's approval. Redirect loops and hostile YAML are refused, never a crash.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callflow.allowlists import Allowed, destination_problems
from callflow.clock import ManualClock
from callflow.errors import CallflowError, DirectoryError, FlowValidationError
from callflow.flowspec import lint_paths, parse_flow
from callflow.releases import PublishRefused
from callflow.service import Callflow
from callflow.store.base import Store
from tests.conftest import FLOWS, make_settings, run_cli

OFFICER = FLOWS / "officer_check.yaml"
OFFICER_TESTS = FLOWS / "officer_check.test.yaml"
VSTRS = FLOWS / "vstrs_inbound.yaml"
VSTRS_TESTS = FLOWS / "vstrs_inbound.test.yaml"

SENDS_ELSEWHERE = """flow: elsewhere
initial: start
states:
  start:
    twiml:
      - play: https://media.example.org/welcome.mp3
      - gather:
          input: dtmf
          num_digits: 1
          timeout: 5
          prompt:
            - play: https://evil.example.org/hold.mp3
    events:
      digits: transfer
      timeout: transfer
  transfer:
    twiml:
      - dial:
          number: "+447700900999"
          caller_id: "+441632960999"
    events:
      dial_ended: queue
  queue:
    twiml:
      - enqueue:
          queue: support
          wait_url: https://media.example.org/wait
    events:
      dequeued: room
  room:
    twiml:
      - dial:
          conference: "room-{adviser_name}"
    events:
      dial_ended: own
  own:
    twiml:
      - dial:
          conference: "{conference}"
    events:
      dial_ended: bye
  bye:
    twiml:
      - dial:
          client: desk_1
    events:
      dial_ended: done
  done:
    twiml:
      - hangup
"""


def problems_of(source: str, allowed: Allowed) -> list[str]:
    return [f"{p.line}: {p.message}" for p in destination_problems(parse_flow(source), allowed)]


def test_every_destination_and_media_url_must_be_allow_listed() -> None:
    found = problems_of(SENDS_ELSEWHERE, Allowed())
    assert any(line.startswith("6: play url 'https://media.example.org/welcome.mp3'") for line in found)
    assert any(line.startswith("12: play url 'https://evil.example.org/hold.mp3'") for line in found)
    assert any("dial number '+447700900999' is not on the number allow-list" in f for f in found)
    assert any("dial caller_id '+441632960999' is not on the caller_id" in f for f in found)
    assert any("enqueue queue 'support'" in f for f in found)
    assert any("enqueue wait_url" in f for f in found)
    assert any("'room-{adviser_name}' is built from call values" in f for f in found)
    assert any("dial client 'desk_1'" in f for f in found)
    assert not any("'{conference}'" in f for f in found), "the service's own conference"
    assert all("callflow allow add" in f for f in found)
    allowed = Allowed(
        {
            "media": frozenset({"https://media.example.org/"}),
            "number": frozenset({"+447700900999"}),
            "caller_id": frozenset({"+441632960999"}),
            "queue": frozenset({"support"}),
            "client": frozenset({"desk_1"}),
        }
    )
    remaining = problems_of(SENDS_ELSEWHERE, allowed)
    assert len(remaining) == 2, remaining  # the other host, and the built conference name
    assert any("evil.example.org" in f for f in remaining)


def test_a_media_prefix_never_lets_a_look_alike_host_through() -> None:
    allowed = Allowed({"media": frozenset({"https://media.example.org/", "https://x.example/a.mp3"})})
    assert allowed.has("media", "https://media.example.org/prompts/1.mp3")
    assert not allowed.has("media", "https://media.example.org.evil.test/1.mp3")
    assert allowed.has("media", "https://x.example/a.mp3")
    assert not allowed.has("media", "https://x.example/a.mp3.evil")


def test_the_shipped_flows_need_no_allow_list_entries() -> None:
    assert lint_paths([FLOWS]) == []


def test_lint_reports_destinations_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.yaml"
    path.write_text(SENDS_ELSEWHERE)
    found = lint_paths([path])
    assert found and all(p.path == str(path) for p in found)
    assert {p.line for p in found} >= {6, 12, 18}
    allowed = Allowed({"number": frozenset({"+447700900999"})})
    assert len(lint_paths([path], allowed=allowed)) == len(found) - 1


def test_allow_list_changes_are_checked_and_audited(service: Callflow) -> None:
    lists = service.allowlists
    lists.add("number", "+441632960200", "ada", "Debt Pursuit's line")
    lists.add("media", "https://media.example.org/", "ada")
    with pytest.raises(DirectoryError, match="allowed already"):
        lists.add("number", "+441632960200", "ada")
    for kind, bad in [("number", "01632 960200"), ("media", "http://plain.example/"),
                      ("client", "client:x y"), ("nonsense", "x")]:  # fmt: skip
        with pytest.raises(DirectoryError):
            lists.add(kind, bad, "ada")
    assert lists.snapshot().has("number", "+441632960200")
    lists.remove("number", "+441632960200", "ben")
    assert not lists.snapshot().has("number", "+441632960200")
    with pytest.raises(DirectoryError, match="not on the allow-list"):
        lists.remove("number", "+441632960200", "ben")
    entries = [(e["kind"], e["outcome"], e["by"]) for e in service.audit.entries()
               if e["kind"].startswith("allowlist.")]  # fmt: skip
    assert entries == [
        ("allowlist.added", "added", "ada"),
        ("allowlist.added", "added", "ada"),
        ("allowlist.removed", "removed", "ben"),
    ]


WITH_MUSIC = OFFICER.read_text().replace(
    "  goodbye:\n    twiml:\n",
    "  goodbye:\n    twiml:\n      - play: https://media.example.org/goodbye.mp3\n",
)


def test_publishing_refuses_a_destination_off_the_lists(
    service: Callflow, clock: ManualClock
) -> None:
    assert OFFICER.read_text() != WITH_MUSIC
    with pytest.raises(PublishRefused, match="outside the allow-lists") as refused:
        service.releases.publish(WITH_MUSIC, OFFICER_TESTS.read_text(), "dana", message="a test change")
    assert "https://media.example.org/goodbye.mp3" in str(refused.value)
    assert "officer_check" not in service.releases.live_map()
    service.allowlists.add("media", "https://media.example.org/", "ada")
    entry = service.releases.publish(WITH_MUSIC, OFFICER_TESTS.read_text(), "dana", message="a test change")
    clock.advance(3)
    assert service.library.live("officer_check").version == entry["version"]


def test_a_version_outside_the_lists_is_never_made_live(
    service: Callflow, store: Store, clock: ManualClock
) -> None:
    """Written to the store by hand (or published before an entry was removed)."""
    flow = parse_flow(WITH_MUSIC, "<x>")
    store.put_flow(flow.version, flow.name, flow.source)
    store.put_doc(
        "flow_releases", "officer_check", {"name": "officer_check", "live": flow.version, "history": []}
    )
    other = Callflow(make_settings(), store=store, clock=clock)
    assert other.library.live("officer_check").version != flow.version
    assert any("allow-list" in str(p) for ps in other.library.problems.values() for p in ps)
    other.allowlists.add("media", "https://media.example.org/", "ada")
    clock.advance(3)
    assert other.library.live("officer_check").version == flow.version


def test_a_flows_folder_file_outside_the_lists_is_not_served(
    tmp_path: Path, store: Store, clock: ManualClock
) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "officer_check.yaml").write_text(WITH_MUSIC)
    svc = Callflow(make_settings(flows_dir=folder), store=store, clock=clock)
    assert "officer_check" not in svc.library.live_versions()
    assert any("media.example.org" in str(p) for p in svc.library.problems[str(folder / "officer_check.yaml")])


# -- protected flows: a second designer approves


VSTRS_V2 = VSTRS.read_text().replace(
    "Please check your details\n            with your organisation and call again.",
    "Please check your details\n            with your organisation, then call again.",
)


def test_a_protected_flow_waits_for_a_second_designer(
    service: Callflow, clock: ManualClock
) -> None:
    assert VSTRS.read_text() != VSTRS_V2
    assert service.releases.protected() == ["specialist_handoff", "vstrs_inbound"]
    before = service.library.live("vstrs_inbound").version
    entry = service.releases.publish(VSTRS_V2, VSTRS_TESTS.read_text(), "dana", message="a test change")
    assert entry["pending"] and entry["previous"] is None
    clock.advance(3)
    assert service.library.live("vstrs_inbound").version == before, "not live yet"
    assert [p["version"] for p in service.releases.pending("vstrs_inbound")] == [entry["version"]]
    with pytest.raises(CallflowError, match="a second designer must approve it"):
        service.releases.approve("vstrs_inbound", entry["version"], "dana")
    with pytest.raises(CallflowError, match="no version"):
        service.releases.approve("vstrs_inbound", "0123456789ab", "ben")
    approved = service.releases.approve("vstrs_inbound", entry["version"], "ben")
    assert approved["author"] == "dana" and approved["previous"] == before
    clock.advance(3)
    assert service.library.live("vstrs_inbound").version == entry["version"]
    assert service.releases.pending("vstrs_inbound") == []
    kinds = [(e["kind"], e.get("by"), e["outcome"]) for e in service.audit.entries()
             if e["kind"].startswith("flow.")]  # fmt: skip
    assert kinds == [
        ("flow.submitted", "dana", "pending_approval"),
        ("flow.approved", "ben", "approved"),
    ]


def test_rejecting_and_protection_are_audited(service: Callflow) -> None:
    entry = service.releases.publish(VSTRS_V2, VSTRS_TESTS.read_text(), "dana", message="a test change")
    service.releases.reject("vstrs_inbound", entry["version"], "ben")
    assert service.releases.pending() == []
    with pytest.raises(CallflowError):
        service.releases.approve("vstrs_inbound", entry["version"], "ben")
    service.releases.set_protected("officer_check", True, "ada")
    assert "officer_check" in service.releases.protected()
    service.allowlists.add("media", "https://media.example.org/", "ada")
    pending = service.releases.publish(
        WITH_MUSIC, OFFICER_TESTS.read_text(), "dana", message="a test change"
    )
    assert pending.get("pending")
    service.releases.set_protected("vstrs_inbound", False, "ada")
    assert service.releases.protected() == ["officer_check", "specialist_handoff"]
    kinds = [e["kind"] for e in service.audit.entries()]
    assert kinds.count("flow.protected") == 1 and kinds.count("flow.unprotected") == 1
    assert "flow.rejected" in kinds


def test_a_protected_flow_rolls_back_only_to_a_version_that_was_live(
    service: Callflow, clock: ManualClock
) -> None:
    entry = service.releases.publish(VSTRS_V2, VSTRS_TESTS.read_text(), "dana", message="a test change")
    with pytest.raises(CallflowError, match="never live"):
        service.releases.rollback("vstrs_inbound", "ben", entry["version"])
    service.releases.approve("vstrs_inbound", entry["version"], "ben")
    back = service.releases.rollback("vstrs_inbound", "dana")
    assert back["version"] == service.library.file_flow("vstrs_inbound").version  # type: ignore[union-attr]


def test_the_cli_approves_as_another_person(redis_store: Store, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "CALLFLOW_SECRET_KEY": "k" * 32,
        "CALLFLOW_HASH_COST": "10",
    }
    edit = tmp_path / "vstrs_inbound.yaml"
    edit.write_text(VSTRS_V2)
    (tmp_path / "vstrs_inbound.test.yaml").write_text(VSTRS_TESTS.read_text())
    published = run_cli({**env, "LOGNAME": "dana", "USER": "dana"}, "flows", "publish", str(edit), "-m", "music")
    assert published.returncode == 0, published.stderr
    assert "waits for a second designer" in published.stdout
    version = parse_flow(VSTRS_V2).version
    pending = run_cli(env, "flows", "pending")
    assert version in pending.stdout and "by dana" in pending.stdout
    own = run_cli({**env, "LOGNAME": "dana", "USER": "dana"}, "flows", "approve", "vstrs_inbound", version)
    assert own.returncode != 0 and "second designer" in own.stderr
    ok = run_cli({**env, "LOGNAME": "ben", "USER": "ben"}, "flows", "approve", "vstrs_inbound", version)
    assert ok.returncode == 0 and "approved vstrs_inbound" in ok.stdout, ok.stderr
    added = run_cli({**env, "LOGNAME": "ada"}, "allow", "add", "number", "+441632960200", "--note", "DP")
    assert added.returncode == 0, added.stderr
    listed = run_cli(env, "allow", "list")
    assert "+441632960200" in listed.stdout and "by ada" in listed.stdout and "(DP)" in listed.stdout
    bad = run_cli(env, "allow", "add", "media", "http://insecure.example/")
    assert bad.returncode != 0 and "https://" in bad.stderr


# -- lint: loops and hostile YAML

LOOP = """flow: loop
initial: a
states:
  a:
    twiml:
      - say: "One."
    events:
      next: b
  b:
    twiml:
      - say: "Two."
      - redirect: again
    events:
      again: a
"""


def test_a_redirect_loop_with_nothing_to_wait_for_is_refused() -> None:
    with pytest.raises(FlowValidationError) as exc:
        parse_flow(LOOP, "loop.yaml")
    (problem,) = exc.value.problems
    assert problem.line == 4 and "a -> b -> a loop for ever without waiting" in problem.message
    waits = LOOP.replace('      - say: "Two."', '      - pause: 2')
    parse_flow(waits, "loop.yaml")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("flow: x\nstates: " + "[" * 200 + "]" * 200 + "\n", "nested more than 40 levels"),
        ("a: &x [1, 2]\nb: *x\n", "anchors and aliases"),
        ("flow: x\nstates:\n" + "".join(f"  s{i}: {{}}\n" for i in range(60_000)), "too large"),
    ],
)
def test_hostile_yaml_gets_a_clear_refusal(source: str, message: str) -> None:
    with pytest.raises(FlowValidationError, match=message):
        parse_flow(source, "hostile.yaml")
