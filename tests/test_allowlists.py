"""Designers change what callers hear, not where calls go (ARCHITECTURE.md rule 11).

Numbers, clients, caller IDs, conference and queue names and media URLs come from the
admin's allow-lists; lint reports anything else with file and line, publishing refuses
it, and the service never makes such a version live. Protected flows go live only with a
second designer's approval. Redirect loops and hostile YAML are refused, never a crash.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callflow.allowlists import Allowed, destination_problems, normalise_url, remove_dot_segments
from callflow.clock import ManualClock
from callflow.errors import (
    CallflowError,
    DirectoryError,
    FlowValidationError,
    Forbidden,
    PublishRefused,
)
from callflow.flowspec import lint_paths, parse_flow
from callflow.service import Callflow
from callflow.store.base import Store
from tests.conftest import FLOWS, make_settings, person
from tests.rigs import VSTRS_V2

OFFICER = FLOWS / "officer_check.yaml"
OFFICER_TESTS = FLOWS / "officer_check.test.yaml"
VSTRS = FLOWS / "vstrs_inbound.yaml"
VSTRS_TESTS = FLOWS / "vstrs_inbound.test.yaml"
ADA, IAN = person("ada", "admin"), person("ian", "admin")

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


PLAYS = """flow: plays
initial: start
states:
  start:
    twiml:
      - play: URL
      - hangup
"""
PROMPTS = "https://media.example.gov.uk/prompts/"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (PROMPTS + "../../evil.mp3", "is not on the media allow-list"),
        (PROMPTS + "%2e%2e/%2e%2e/evil.mp3", "an encoded dot (%2E) in the path"),
        (PROMPTS + "..%2Fevil.mp3", "an encoded slash (%2F) in the path"),
        (PROMPTS + "%2E%2E/evil.mp3", "an encoded dot (%2E) in the path"),
        (PROMPTS + "sub/..\\..\\evil.mp3", "a backslash in the path"),
        ("https://anyone@media.example.gov.uk/prompts/hello.mp3", "userinfo"),
        ("https://media.example.gov.uk:8443/prompts/hello.mp3", "is not on the media allow-list"),
        ("http://media.example.gov.uk/prompts/hello.mp3", "not an https:// URL"),
    ],
)
def test_the_media_allow_list_cannot_be_escaped(tmp_path: Path, url: str, why: str) -> None:
    """Matched on the URL as a fetcher will see it (RFC 3986), not as written."""
    path = tmp_path / "plays.yaml"
    path.write_text(PLAYS.replace("URL", url))
    allowed = Allowed.from_doc({"lists": {"media": [{"value": PROMPTS}]}})
    found = lint_paths([path], allowed=allowed)
    assert [p.line for p in found] == [6] and why in found[0].message, found
    assert not allowed.has("media", url)


def test_media_urls_are_compared_normalised() -> None:
    allowed = Allowed.from_doc({"lists": {"media": [{"value": PROMPTS}]}})
    for url in (
        PROMPTS + "hello.mp3",
        "HTTPS://Media.Example.GOV.UK:443/prompts/hello.mp3",
        PROMPTS + "welsh/../hello.mp3",  # stays under the prefix once normalised
        PROMPTS + "./%68ello.mp3",  # an unreserved letter, encoded
    ):
        assert allowed.has("media", url), url
    assert normalise_url(PROMPTS + "a/./b/../c%7e.mp3") == PROMPTS + "a/c~.mp3"
    assert normalise_url(PROMPTS + "x%3a.mp3") == PROMPTS + "x%3A.mp3", "reserved stays encoded"
    assert remove_dot_segments("/a/b/c/./../../g") == "/a/g"  # RFC 3986 5.2.4's examples
    assert remove_dot_segments("mid/content=5/../6") == "mid/6"
    assert remove_dot_segments("/../../x") == "/x", "never above the root"


def test_allow_list_entries_are_kept_normalised(service: Callflow) -> None:
    service.allowlists.add("media", "https://Media.Example.GOV.UK:443/prompts/./", "ada")
    assert [e["value"] for e in service.allowlists.entries("media")] == [PROMPTS]
    with pytest.raises(DirectoryError, match="encoded slash"):
        service.allowlists.add("media", "https://media.example.gov.uk/a%2fb/", "ada")
    assert service.allowlists.snapshot().has("media", PROMPTS + "hello.mp3")


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
        service.releases.publish(WITH_MUSIC, OFFICER_TESTS.read_text(), person("dana"), message="a test change")
    assert "https://media.example.org/goodbye.mp3" in str(refused.value)
    assert "officer_check" not in service.releases.live_map()
    service.allowlists.add("media", "https://media.example.org/", "ada")
    entry = service.releases.publish(WITH_MUSIC, OFFICER_TESTS.read_text(), person("dana"), message="a test change")
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




def test_a_protected_flow_waits_for_a_second_designer(
    service: Callflow, clock: ManualClock
) -> None:
    assert VSTRS.read_text() != VSTRS_V2
    assert service.releases.protected() == ["specialist_handoff", "vstrs_callback", "vstrs_inbound"]
    before = service.library.live("vstrs_inbound").version
    entry = service.releases.publish(VSTRS_V2, VSTRS_TESTS.read_text(), person("dana"), message="a test change")
    assert entry["pending"] and entry["previous"] is None
    clock.advance(3)
    assert service.library.live("vstrs_inbound").version == before, "not live yet"
    assert [p["version"] for p in service.releases.pending("vstrs_inbound")] == [entry["version"]]
    with pytest.raises(CallflowError, match="a second designer must approve it"):
        service.releases.approve("vstrs_inbound", entry["version"], person("dana"))
    with pytest.raises(CallflowError, match="no version"):
        service.releases.approve("vstrs_inbound", "0123456789ab", person("ben"))
    approved = service.releases.approve("vstrs_inbound", entry["version"], person("ben"))
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
    entry = service.releases.publish(VSTRS_V2, VSTRS_TESTS.read_text(), person("dana"), message="a test change")
    service.releases.reject("vstrs_inbound", entry["version"], person("ben"))
    assert service.releases.pending() == []
    with pytest.raises(CallflowError):
        service.releases.approve("vstrs_inbound", entry["version"], person("ben"))
    with pytest.raises(Forbidden, match="is for an admin"):
        service.releases.set_protected("officer_check", True, person("dana"))
    assert service.releases.set_protected("officer_check", True, ADA) == "protected"
    assert "officer_check" in service.releases.protected()
    service.allowlists.add("media", "https://media.example.org/", "ada")
    pending = service.releases.publish(
        WITH_MUSIC, OFFICER_TESTS.read_text(), person("dana"), message="a test change"
    )
    assert pending.get("pending")
    # Lifting protection is a two-person act: one admin asks, a second agrees.
    with pytest.raises(Forbidden, match="is for an admin"):
        service.releases.set_protected("officer_check", False, person("dana"))
    assert service.releases.set_protected("officer_check", False, ADA) == "requested"
    assert service.releases.set_protected("officer_check", False, ADA) == "requested", (
        "asking twice alone lifts nothing"
    )
    assert "officer_check" in service.releases.protected()
    assert service.releases.protection()["lifting"]["officer_check"]["by"] == "ada"
    assert service.releases.set_protected("officer_check", False, IAN) == "unprotected"
    assert "officer_check" not in service.releases.protected()
    assert service.releases.protection()["lifting"] == {}
    kinds = [e["kind"] for e in service.audit.entries()]
    assert kinds.count("flow.protected") == 1 and kinds.count("flow.unprotected") == 1
    assert kinds.count("flow.unprotect_requested") == 2
    assert "flow.rejected" in kinds
    (lifted,) = [e for e in service.audit.entries() if e["kind"] == "flow.unprotected"]
    assert lifted["by"] == "ian"


def test_a_flow_is_protected_by_what_it_does_whatever_its_name(
    service: Callflow, store: Store
) -> None:
    """Verifying callers, reading secrets or putting callers through to staff: such a flow
    waits for a second person whatever it is called, and its protection cannot be lifted."""
    for name in ("vstrs_inbound", "vstrs_callback", "specialist_handoff"):
        with pytest.raises(CallflowError, match="stays protected by what it does"):
            service.releases.set_protected(name, False, ADA)
        assert service.releases.is_protected(name)
    reasons = service.releases.protection()["flows"]
    assert any("verifies callers" in why for why in reasons["vstrs_callback"])
    assert "officer_check" not in reasons
    # Even if the protected list were emptied by hand, what a flow does still protects it.
    store.put_doc("flow_protection", "current", {"names": []})
    assert service.releases.protected() == []
    callback = (FLOWS / "vstrs_callback.yaml").read_text()
    callback_tests = (FLOWS / "vstrs_callback.test.yaml").read_text()
    edited = callback.replace("flow: vstrs_callback", "flow: adviser_ring_back")
    assert edited != callback
    flow = parse_flow(edited, "<x>", service.registry)
    assert service.releases.is_protected("adviser_ring_back", flow)
    entry = service.releases.publish(
        edited,
        callback_tests.replace("flow: vstrs_callback", "flow: adviser_ring_back"),
        person("dana"),
        message="a copy under a new name",
    )
    assert entry["pending"], "a renamed copy of a verifying flow still needs a second designer"
    assert service.releases.live_map().get("adviser_ring_back") is None
    # officer_check verifies nobody and rings no staff: an admin's say decides.
    assert not service.releases.is_protected("officer_check")


def test_vstrs_callback_waits_for_a_second_designer(service: Callflow) -> None:
    source = (FLOWS / "vstrs_callback.yaml").read_text()
    tests = (FLOWS / "vstrs_callback.test.yaml").read_text()
    lines = source.splitlines()
    # A harmless edit: a comment line changes the version, not what callers hear.
    edited = "\n".join([lines[0], "# reviewed wording", *lines[1:]]) + "\n"
    before = service.library.live("vstrs_callback").version
    entry = service.releases.publish(edited, tests, person("dana"), message="a comment")
    assert entry["pending"] and service.library.live("vstrs_callback").version == before
    with pytest.raises(CallflowError, match="second designer"):
        service.releases.approve("vstrs_callback", entry["version"], person("dana"))
    service.releases.approve("vstrs_callback", entry["version"], person("ben"))
    assert service.releases.release("vstrs_callback")["live"] == entry["version"]  # type: ignore[index]


def test_a_protected_flow_rolls_back_only_to_a_version_that_was_live(
    service: Callflow, clock: ManualClock
) -> None:
    file_version = service.library.file_flow("vstrs_inbound").version  # type: ignore[union-attr]
    entry = service.releases.publish(VSTRS_V2, VSTRS_TESTS.read_text(), person("dana"), message="a test change")
    with pytest.raises(CallflowError, match="never live"):
        service.releases.rollback("vstrs_inbound", person("ben"), entry["version"], "undo")
    service.releases.approve("vstrs_inbound", entry["version"], person("ben"))
    # Rolling a protected flow back follows its two-person rule too.
    back = service.releases.rollback("vstrs_inbound", person("dana"), message="callers confused")
    assert back["pending"] and back["version"] == file_version
    clock.advance(3)
    assert service.library.live("vstrs_inbound").version == entry["version"], "not yet"
    with pytest.raises(CallflowError, match="second designer"):
        service.releases.approve("vstrs_inbound", file_version, person("dana"))
    approved = service.releases.approve("vstrs_inbound", file_version, person("ben"))
    assert approved["approved"] == "rollback" and approved["message"] == "callers confused"
    clock.advance(3)
    assert service.library.live("vstrs_inbound").version == file_version


VSTRS_V3 = VSTRS_V2.replace("with your organisation, then call again.", "with your organisation, and then call again.")


def test_the_emergency_rollback_goes_back_only_to_the_last_approved_version(
    service: Callflow, clock: ManualClock
) -> None:
    """The named way round the two-person rule when callers are being harmed now: one
    designer, a reason, and only back to the last version a second person approved."""
    assert VSTRS_V3 != VSTRS_V2
    releases = service.releases
    file_version = releases.file_flow("vstrs_inbound").version  # type: ignore[union-attr]
    with pytest.raises(CallflowError, match="no version a second person approved"):
        releases.rollback("vstrs_inbound", person("dana"), message="now", emergency=True)
    v2 = releases.publish(VSTRS_V2, VSTRS_TESTS.read_text(), person("dana"), message="v2")
    releases.approve("vstrs_inbound", v2["version"], person("ben"))
    v3 = releases.publish(VSTRS_V3, VSTRS_TESTS.read_text(), person("dana"), message="v3")
    releases.approve("vstrs_inbound", v3["version"], person("ben"))
    assert releases.last_approved("vstrs_inbound") == v2["version"]
    with pytest.raises(CallflowError, match="say why"):
        releases.rollback("vstrs_inbound", person("dana"), message=" ", emergency=True)
    with pytest.raises(CallflowError, match=f"only to version {v2['version']}"):
        releases.rollback("vstrs_inbound", person("dana"), file_version, "now", emergency=True)
    with pytest.raises(Forbidden):
        releases.rollback("vstrs_inbound", person("amy", "auditor"), message="x", emergency=True)
    back = releases.rollback(
        "vstrs_inbound", person("dana"), message="callers cut off after the PIN", emergency=True
    )
    assert not back.get("pending") and back["version"] == v2["version"]
    clock.advance(3)
    assert service.library.live("vstrs_inbound").version == v2["version"]
    assert releases.history("vstrs_inbound")[-1]["action"] == "emergency_rollback"
    (audited,) = [e for e in service.audit.entries() if e["kind"] == "flow.emergency_rollback"]
    assert audited["by"] == "dana" and audited["reason"] == "callers cut off after the PIN"
    assert audited["outcome"] == "emergency_rollback" and audited["previous"] == v3["version"]


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
