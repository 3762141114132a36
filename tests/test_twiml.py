"""Cached TwiML fragments are exactly what the twilio library renders, step by step."""

from __future__ import annotations

import pytest
from twilio.twiml.voice_response import VoiceResponse

from callflow.flowspec import flow_files, load_flow
from callflow.links import ServiceLinks
from callflow.twiml import Renderer, response_xml
from tests.conftest import FLOWS

VALUES = {
    "call_sid": "CA" + "1" * 32,
    "adviser_name": "Sam <Adviser> & Co",
    "organisation_name": "Tax Aid",
    "security_question": "Please say your favourite colour.",
    "conference": "vstrs-CA" + "1" * 32,
    "team_name": "Debt Pursuit",
    "officer_name": "Alex Morgan",
    "officer_number": "4 4 7 1 2 0 3",
}


@pytest.mark.parametrize("path", flow_files(FLOWS), ids=lambda p: p.stem)
def test_every_state_renders_as_the_library_does(path: object) -> None:
    flow = load_flow(path)  # type: ignore[arg-type]
    renderer = Renderer(flow)
    links = ServiceLinks("https://callflow.example")
    for state in flow.states.values():
        for step in (1, 7, 12345):  # the second and third come from the cache
            direct = VoiceResponse()
            for verb in state.verbs:
                renderer._verb(verb, direct, VALUES, links, step)
            out: list[str] = []
            renderer.render(state, out, VALUES, links, step)
            assert response_xml(out) == str(direct), (state.name, step)


def test_fragments_follow_the_values_and_the_base_url() -> None:
    flow = load_flow(FLOWS / "vstrs_inbound.yaml")
    renderer = Renderer(flow)
    state = flow.states["connect"]
    one: list[str] = []
    renderer.render(state, one, {**VALUES, "adviser_name": "Sam"}, ServiceLinks("https://a"), 3)
    two: list[str] = []
    other = {**VALUES, "adviser_name": "Kim", "call_sid": "CA" + "2" * 32}
    renderer.render(state, two, other, ServiceLinks("https://b"), 4)
    assert "Thank you, Sam." in one[0] and "https://a/voice/hold?call=CA111" in one[0]
    assert "Thank you, Kim." in two[0] and "https://b/voice/hold?call=CA222" in two[0]
    assert "s=4" in two[0] and "s=3" not in two[0]
