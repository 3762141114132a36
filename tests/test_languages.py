"""Welsh end to end: prompts per language as data, lint with lines, the call's language on
every record and every leg that follows."""

from __future__ import annotations

from typing import Any

import pytest

from callflow.clock import ManualClock
from callflow.errors import FlowValidationError
from callflow.flowspec import parse_flow
from callflow.language import MESSAGES, resolve
from callflow.links import ServiceLinks
from callflow.simulator import Callee, Leg, Script
from callflow.store import Store
from callflow.twiml import Renderer
from tests.conftest import ADVISER, PIN
from tests.rigs import AGENT, TEAM_FIRST, TEAM_SECOND, VSTRS, Rig

TWO_LANGUAGES = """\
flow: bilingual
initial: hello
languages:
  en-GB: Polly.Amy
  cy-GB: Polly.Gwyneth
states:
  hello:
    twiml:
      - gather:
          input: dtmf speech
          timeout: 5
          prompt:
            - say:
                en-GB: "Hello {caller_number}."
                cy-GB: "Helo {caller_number}."
            - say: {text: "I barhau yn Gymraeg, pwyswch 2.", language: cy-GB}
    events:
      digits: bye
      speech: bye
      timeout: bye
  bye:
    twiml:
      - say: {en-GB: "Goodbye.", cy-GB: "Hwyl fawr."}
      - hangup
"""


def problems(source: str) -> list[str]:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(source, "bilingual.yaml")
    return [str(p) for p in caught.value.problems]


def test_a_flow_declares_its_languages_and_gives_every_prompt_in_each() -> None:
    flow = parse_flow(TWO_LANGUAGES, "bilingual.yaml")
    assert flow.languages == {"en-GB": "Polly.Amy", "cy-GB": "Polly.Gwyneth"}
    assert flow.default_language == "en-GB"
    single = parse_flow(
        TWO_LANGUAGES.replace("languages:\n  en-GB: Polly.Amy\n  cy-GB: Polly.Gwyneth\n", "")
        .replace('      - say: {en-GB: "Goodbye.", cy-GB: "Hwyl fawr."}', '      - say: "Goodbye."')
        .replace(
            '''            - say:
                en-GB: "Hello {caller_number}."
                cy-GB: "Helo {caller_number}."''',
            '''            - say: "Hello {caller_number}."''',
        ),
        "one.yaml",
    )
    assert single.languages == {"en-GB": "Polly.Amy"}


def test_lint_names_a_missing_translation_at_its_line() -> None:
    missing = TWO_LANGUAGES.replace(
        '      - say: {en-GB: "Goodbye.", cy-GB: "Hwyl fawr."}', '      - say: {en-GB: "Goodbye."}'
    )
    assert problems(missing) == [
        "bilingual.yaml:23: say has no cy-GB text (the flow speaks en-GB, cy-GB)"
    ]
    plain = TWO_LANGUAGES.replace(
        '      - say: {en-GB: "Goodbye.", cy-GB: "Hwyl fawr."}', '      - say: "Goodbye."'
    )
    (found,) = problems(plain)
    assert found.startswith(
        "bilingual.yaml:23: say needs a text for each of the flow's languages (en-GB, cy-GB)"
    )
    foreign = TWO_LANGUAGES.replace(
        'cy-GB: "Hwyl fawr."}', 'cy-GB: "Hwyl fawr.", fr-FR: "Au revoir."}'
    )
    assert any(
        "say text in fr-FR, which the flow does not speak" in p and ":23:" in p
        for p in problems(foreign)
    )
    gather = TWO_LANGUAGES.replace(
        "          timeout: 5\n", "          timeout: 5\n          language: cy\n"
    )
    assert any(":12: gather language must be a language like en-GB" in p for p in problems(gather))
    bad = TWO_LANGUAGES.replace("  cy-GB: Polly.Gwyneth\n", "  welsh: Polly.Gwyneth\n")
    assert any(p.startswith("bilingual.yaml:5:") and "not a language" in p for p in problems(bad))


def test_the_call_is_spoken_in_its_language() -> None:
    flow = parse_flow(TWO_LANGUAGES, "bilingual.yaml")
    renderer = Renderer(flow)
    links = ServiceLinks("https://callflow.example")
    for language, expected, voice in (
        ("cy-GB", "Helo +441632960001.", "Polly.Gwyneth"),
        ("en-GB", "Hello +441632960001.", "Polly.Amy"),
        ("", "Hello +441632960001.", "Polly.Amy"),
    ):
        out: list[str] = []
        values = {"caller_number": "+441632960001", "language": language}
        renderer.render(flow.states["hello"], out, values, links, 1)
        xml = "".join(out)
        shown = language or "en-GB"
        assert '<Gather action="https://callflow.example/voice/step?s=1"' in xml
        assert f'language="{shown}"' in xml.split("<Say")[0], (
            "speech is heard in the call's language"
        )
        assert f'<Say language="{shown}" voice="{voice}">{expected}</Say>' in xml
        # The offer of Welsh is pinned: always in Welsh, in Gwyneth's voice.
        assert (
            '<Say language="cy-GB" voice="Polly.Gwyneth">I barhau yn Gymraeg, pwyswch 2.</Say>'
            in xml
        )


def test_a_language_is_named_short_or_long() -> None:
    assert resolve("cy", ["en-GB", "cy-GB"]) == "cy-GB"
    assert resolve("CY-gb", ["en-GB", "cy-GB"]) == "cy-GB"
    assert resolve("fr", ["en-GB", "cy-GB"]) is None
    assert resolve(None, ["en-GB"]) is None


def welsh_caller(rig: Rig) -> Leg:
    """An adviser on the Welsh line (Voice URL ?lang=cy), verified and with the agent."""
    caller = welsh_caller_waiting(rig)
    assert rig.sim.run_until(
        lambda: (rig.svc.vstrs.get(caller.sid) or {}).get("state") == "with_agent"
    )
    return caller


def heard(leg: Leg) -> list[str]:
    return [e.text for e in leg.log if e.kind == "hears"]


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    return Rig(store, clock)


def test_a_welsh_call_keeps_its_language_through_the_hand_off_and_the_grant(rig: Rig) -> None:
    caller = welsh_caller(rig)
    said = heard(caller)
    assert any(t.startswith("Croeso i Wasanaeth Datrys Trethi") for t in said)
    assert MESSAGES["holding"]["cy-GB"] in said, "the hold message is Welsh"
    assert not any("Please" in t or "Welcome" in t for t in said)
    assert set(caller.heard_languages) == {"cy-GB"}, "every word to a Welsh caller is Welsh"
    record = rig.svc.vstrs.get(caller.sid)
    assert record is not None and record["language"] == "cy-GB"

    rig.specialist(TEAM_FIRST, Script().press(f"{AGENT}#").press("1").hang_up(after=5000))
    handoff: dict[str, Any] = rig.request(caller).get_json()
    assert handoff["language"] == "cy-GB", "the agent sees the call's language"
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "briefing")
    specialist = next(leg for leg in rig.sim.legs.values() if leg.to == TEAM_FIRST)
    assert any("Mae'r alwad yn Gymraeg" in t for t in heard(specialist)), "whispered in Welsh"
    rig.api.post(f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/complete", headers=rig.auth())
    grant = rig.grant(caller)
    assert grant["authorised"] and grant["grant"]["language"] == "cy-GB"
    entries = [e for e in rig.svc.audit.entries() if e["kind"] == "grant.issued"]
    assert entries, "the grant is audited as any other"


def test_an_english_call_stays_english(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    assert rig.svc.vstrs.get(caller.sid)["language"] == "en-GB"
    assert MESSAGES["holding"]["en-GB"] in heard(caller)


# ---------------------------------------------------------------- routing by skill

WELSH_AGENT = "200003"


def welsh_caller_waiting(rig: Rig) -> Leg:
    """A Welsh adviser verified and waiting for an agent (not yet connected)."""
    number = rig.sim.numbers[VSTRS]
    rig.sim.configure_number(
        VSTRS, f"{number.voice_url}?lang=cy", status_callback=number.status_callback
    )
    script = (
        Script()
        .press(f"{ADVISER}#")
        .press(f"{PIN}#")
        .answer({"ysgol gyntaf": "Hill Top", "hoff liw": "Blue"})
        .hang_up(after=5000)
    )
    caller = rig.sim.call(VSTRS, "+441632960001", script)
    assert rig.sim.run_until(lambda: rig.svc.vstrs.get(caller.sid) is not None)
    return caller


def add_welsh_agent(rig: Rig) -> None:
    now = rig.svc.clock.now()
    rig.svc.staff.add_agent(WELSH_AGENT, "Bethan Agent", "client:bethan", now, by="tests")
    rig.svc.staff.set_agent_skills(WELSH_AGENT, ["cy-GB"], by="tests")
    rig.svc.staff.set_availability(WELSH_AGENT, "available", now)
    rig.sim.add_callee(
        "client:bethan", Callee("answered", after=3, script=Script().hang_up(after=5000))
    )


def test_a_welsh_caller_is_offered_first_to_a_welsh_speaking_agent(
    rig: Rig, clock: ManualClock
) -> None:
    clock.advance(30)  # Alex (English only) has been idle longer than Bethan
    add_welsh_agent(rig)
    caller = welsh_caller_waiting(rig)
    assert rig.sim.run_until(
        lambda: (rig.svc.vstrs.get(caller.sid) or {}).get("state") == "with_agent"
    )
    record = rig.svc.vstrs.get(caller.sid)
    assert record is not None and record["agent"]["sees_id"] == WELSH_AGENT
    assert record["tried"] == [WELSH_AGENT]
    skills = [e for e in rig.svc.audit.entries() if e["kind"] == "staff.agent_skills_set"]
    assert skills and skills[-1]["skills"] == ["cy-GB"]


def test_no_welsh_speaker_free_the_flows_fallback_is_taken_and_audited(
    rig: Rig, clock: ManualClock
) -> None:
    caller = welsh_caller_waiting(rig)
    # Within the flow's language_wait (60 s) nobody who cannot speak Welsh is rung.
    rig.sim.advance(40)
    record = rig.svc.vstrs.get(caller.sid)
    assert record is not None and record["state"] == "waiting" and record["tried"] == []
    assert rig.sim.run_until(
        lambda: (rig.svc.vstrs.get(caller.sid) or {}).get("state") == "with_agent"
    )
    record = rig.svc.vstrs.get(caller.sid)
    assert record["agent"]["sees_id"] == AGENT and record["language_fallback"] == "english"
    waited = record["agent"]["joined_at"] - record["waiting_since"]
    assert waited >= 60
    (fallback,) = [e for e in rig.svc.audit.entries() if e["kind"] == "agent.language_fallback"]
    assert fallback["outcome"] == "english" and fallback["language"] == "cy-GB"


def test_a_welsh_hand_off_rings_the_teams_welsh_number_first(rig: Rig) -> None:
    rig.svc.staff.set_team_languages("debt_pursuit", {TEAM_SECOND: ["cy-GB"]}, by="tests")
    caller = welsh_caller(rig)  # Alex takes it after the flow's minute (no Welsh speaker)
    handoff: dict[str, Any] = rig.request(caller).get_json()
    doc = rig.handoff(handoff["id"])
    assert doc["numbers"] == [TEAM_SECOND, TEAM_FIRST], "the Welsh-speaking number first"
    team = rig.svc.staff.team("debt_pursuit")
    assert team is not None and team.numbers_for("en-GB") == [TEAM_FIRST, TEAM_SECOND]
    (entry,) = [e for e in rig.svc.audit.entries() if e["kind"] == "staff.team_languages_set"]
    assert entry["languages"] == {TEAM_SECOND: ["cy-GB"]}


def test_a_meetings_time_is_said_in_its_language() -> None:
    from datetime import datetime

    from callflow.meetings import spoken_when

    when = datetime(2026, 12, 2, 10, 30)
    assert spoken_when(when) == "Wednesday 2 December 2026 at 10:30am"
    assert spoken_when(when, "cy-GB") == "Dydd Mercher 2 Rhagfyr 2026 am 10:30 y bore"
    assert (
        spoken_when(datetime(2027, 1, 4, 14, 0), "cy-GB")
        == "Dydd Llun 4 Ionawr 2027 am 2 y prynhawn"
    )
    assert spoken_when(datetime(2027, 1, 4, 19, 15), "cy-GB").endswith("am 7:15 yr hwyr")


def test_a_welsh_call_end_to_end_with_welsh_speakers_at_every_step(rig: Rig) -> None:
    """Verified in Welsh, routed to the Welsh-speaking agent, handed off to the team's
    Welsh-speaking number, whispered to in Welsh, and the grant carries the language."""
    rig.svc.staff.set_team_languages("debt_pursuit", {TEAM_SECOND: ["cy-GB"]}, by="tests")
    add_welsh_agent(rig)
    welsh_token = rig.svc.staff.issue_token(
        "vstrs_agent", WELSH_AGENT, "Bethan", rig.svc.clock.now(), by="tests"
    )
    caller = welsh_caller(rig)
    record = rig.svc.vstrs.get(caller.sid)
    assert record is not None and record["agent"]["sees_id"] == WELSH_AGENT
    rig.specialist(TEAM_SECOND, Script().press(f"{WELSH_AGENT}#").press("1").hang_up(after=5000))
    handoff: dict[str, Any] = rig.request(caller, token=welsh_token).get_json()
    assert handoff["language"] == "cy-GB"
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "briefing")
    (specialist,) = [leg for leg in rig.sim.legs.values() if leg.to in {TEAM_FIRST, TEAM_SECOND}]
    assert specialist.to == TEAM_SECOND, "the Welsh-speaking number was rung, and answered"
    assert set(specialist.heard_languages) == {"cy-GB"}
    rig.api.post(
        f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/complete",
        headers=rig.auth(welsh_token),
    )
    grant = rig.grant(caller)
    assert grant["authorised"] and grant["grant"]["language"] == "cy-GB"
    assert set(caller.heard_languages) == {"cy-GB"}
