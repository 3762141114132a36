"""A floor of people, not one call: specialists take their own hand-offs and see only their
own call; agents move through a working day (ringing, on a call, after-call work, away);
one fair queue across languages; the hand-off's lifecycle declared once. Every test runs
on both stores, through the simulator."""

from __future__ import annotations

from typing import Any

import pytest

from callflow.access import Viewer
from callflow.clock import ManualClock
from callflow.desks import AgentDesk, SpecialistDesk
from callflow.errors import CallflowError, HandOffError
from callflow.handoff import HANDOFF
from callflow.links import ServiceLinks
from callflow.simulator import Callee, Leg, Script
from callflow.store import Store
from tests.conftest import ADVISER, BASE_URL, PIN, ROOT
from tests.rigs import AGENT, INS, KIM, LEE, TEAM_FIRST, VSTRS, Rig, accepting

OTHER = "200002"
WELSH_AGENT = "200003"


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    made = Rig(store, clock)
    made.svc.staff.set_availability(OTHER, "available", clock.now())
    made.sim.add_callee(
        "client:other", Callee("answered", after=3, script=Script().hang_up(after=5000))
    )
    return made


def links() -> ServiceLinks:
    return ServiceLinks(BASE_URL)


def handed_off(rig: Rig, caller: Leg, token: str | None = None) -> dict[str, Any]:
    """``caller``'s agent hands off (with ``token``: their API token); its id, once briefed."""
    handoff = rig.request(caller, token=token).get_json()
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "briefing")
    return rig.handoff(handoff["id"])


def agent_token(rig: Rig, caller: Leg) -> str:
    agent = rig.svc.vstrs.get(caller.sid)["agent"]["sees_id"]  # type: ignore[index]
    return rig.agent_token if agent == AGENT else rig.other_token


# ---------------------------------------------------------------- specialists are people


def test_a_specialists_own_phone_rings_first_and_answering_takes_the_hand_off(rig: Rig) -> None:
    rig.own_phone(KIM)
    caller = rig.caller_with_agent()
    doc = handed_off(rig, caller)
    assert doc["taken_by"]["id"] == KIM and doc["taken_by"]["how"] == "answered"
    assert doc["tried"] == [f"specialist:{KIM}"], "Kim's own phone, not the team's number"
    taken = [e for e in rig.svc.audit.entries() if e["kind"] == "handoff.taken_by"]
    assert [(e["specialist"], e["how"]) for e in taken] == [(KIM, "answered")]
    rig.api.post(f"/api/calls/{caller.sid}/handoffs/{doc['id']}/complete", headers=rig.auth())
    grant = rig.grant(caller, rig.specialist_token)
    assert grant["authorised"]
    assert grant["grant"]["specialist"] == {"id": KIM, "name": "Kim Specialist"}
    assert grant["grant"]["matter"] == "Wants time to pay", "the grant names what it covers"
    issued = next(e for e in rig.svc.audit.entries() if e["kind"] == "grant.issued")
    assert issued["specialist"] == KIM


def test_the_longest_idle_specialist_is_rung_and_a_welsh_call_rings_a_welsh_speaker_first(
    rig: Rig, clock: ManualClock
) -> None:
    rig.own_phone(LEE)
    clock.advance(30)
    rig.own_phone(KIM)  # Lee has been free longer
    caller = rig.caller_with_agent()
    assert handed_off(rig, caller)["taken_by"]["id"] == LEE
    free = [p.id for p in rig.svc.staff.idle_specialists("debt_pursuit", "cy-GB")]
    assert free == [KIM], "Lee is held by the hand-off"
    rig.svc.staff.update_specialist(LEE, skills=["cy-GB"], by="tests")
    rig.svc.staff.set_specialist_availability(LEE, "away", clock.now())
    rig.svc.staff.set_specialist_availability(LEE, "available", clock.now())
    order = [p.id for p in rig.svc.staff.idle_specialists("debt_pursuit", "cy-GB")]
    assert order == [KIM], "Lee is still on the call"


def test_on_a_team_number_the_check_waits_for_someone_to_take_it(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    # They key the SEES ID at once (too soon: nobody has taken it), wait at the prompt,
    # then key it again once Lee has taken it on the console.
    keys = Script().press(f"{AGENT}#").silent().press(f"{AGENT}#").press("1").hang_up(after=5000)
    rig.specialist(TEAM_FIRST, keys, takes=False)
    handoff = rig.request(caller).get_json()
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "checking")
    rig.sim.advance(20)
    leg = rig.sim.legs[rig.handoff(handoff["id"])["specialist_call_sid"]]
    assert any("take this hand-off on your specialist console" in t for t in leg.heard())
    assert not [e for e in rig.svc.audit.entries() if e["kind"] == "handoff.sees_check"]
    taken = rig.api.post(
        f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/take",
        headers=rig.auth(rig.colleague_token),
    )
    assert taken.status_code == 200 and taken.get_json()["taken_by"]["id"] == LEE
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "briefing")
    rig.api.post(f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/complete", headers=rig.auth())
    assert rig.grant(caller, rig.colleague_token)["authorised"]
    refused = rig.api.get(f"/api/calls/{caller.sid}/grant", headers=rig.auth(rig.specialist_token))
    assert refused.status_code == 403, "Kim did not take it: the grant is Lee's"


def test_taking_a_hand_off_someone_else_took_is_a_conflict_and_changes_nothing(rig: Rig) -> None:
    tokens = rig.tokens_for_everyone()
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, Script().silent().silent().silent().silent(), takes=False)
    handoff = rig.request(caller).get_json()
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "checking")
    path = f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/take"
    assert rig.api.post(path, headers=rig.auth(tokens["specialist"])).status_code == 200
    before = rig.handoff(handoff["id"])
    again = rig.api.post(path, headers=rig.auth(tokens["specialist"]))
    assert again.status_code == 200, "the same act twice is the same act"
    late = rig.api.post(path, headers=rig.auth(tokens["colleague"]))
    assert late.status_code == 409 and "Kim Specialist has taken it" in late.get_json()["error"]
    assert rig.handoff(handoff["id"]) == before, "nothing changed"
    assert rig.api.post(path, headers=rig.auth(tokens["other_team"])).status_code == 403
    for who in ("agent", "admin"):
        assert rig.api.post(path, headers=rig.auth(tokens[who])).status_code == 403
    taken = [e for e in rig.svc.audit.entries() if e["kind"] == "handoff.taken_by"]
    assert len(taken) == 1


def test_a_hand_off_ringing_a_specialists_own_phone_is_not_taken_on_the_console(
    rig: Rig,
) -> None:
    rig.sim.add_callee("client:kim", Callee("answered", after=30, script=accepting()))
    rig.svc.staff.set_specialist_availability(KIM, "available", rig.svc.clock.now())
    caller = rig.caller_with_agent()
    handoff = rig.request(caller).get_json()
    rig.sim.advance(2)
    with pytest.raises(HandOffError, match="own phone"):
        rig.svc.handoffs.take(handoff["id"], rig.viewer(LEE))


def test_two_specialists_taking_at_once_one_wins(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, Script().silent().silent().silent().silent(), takes=False)
    handoff = rig.request(caller).get_json()
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "checking")
    results = rig.take_at_once(handoff["id"], (KIM, LEE))
    winners = [p for p, r in results.items() if r == "taken"]
    assert len(winners) == 1, results
    loser = LEE if winners[0] == KIM else KIM
    assert "has taken it" in results[loser]
    assert rig.handoff(handoff["id"])["taken_by"]["id"] == winners[0]
    assert rig.svc.staff.specialist_held_by(loser) is None, "the loser is not left held"
    assert len([e for e in rig.svc.audit.entries() if e["kind"] == "handoff.taken_by"]) == 1


def overlapping(rig: Rig) -> tuple[list[Leg], list[dict[str, Any]]]:
    """Three hand-offs to Debt Pursuit from two agents, overlapping: Kim's phone takes the
    first, Lee's the second, and the third (both busy) rings the team's number, taken on
    the console by Mia, a third specialist."""
    now = rig.svc.clock.now()
    rig.svc.staff.add_specialist("300103", "Mia Specialist", "debt_pursuit", "client:mia", now, by="tests")
    rig.own_phone(KIM)
    rig.sim.advance(1)
    rig.own_phone(LEE)
    callers = [rig.caller_with_agent("+441632960001"), rig.caller_with_agent("+441632960002")]
    docs = []
    for caller in callers:
        doc = handed_off(rig, caller, agent_token(rig, caller))
        rig.api.post(
            f"/api/calls/{caller.sid}/handoffs/{doc['id']}/complete",
            headers=rig.auth(agent_token(rig, caller)),
        )
        docs.append(doc)
    # The first agent is free again after their after-call work: a third caller comes.
    first_agent = rig.svc.vstrs.get(callers[0].sid)["agent"]["sees_id"]  # type: ignore[index]
    rig.svc.staff.ready(first_agent, rig.svc.clock.now())
    third = rig.caller_with_agent("+441632960003")
    agent = rig.svc.vstrs.get(third.sid)["agent"]["sees_id"]  # type: ignore[index]
    rig.specialist(TEAM_FIRST, accepting(agent), taker="300103")
    doc = handed_off(rig, third, agent_token(rig, third))
    rig.api.post(
        f"/api/calls/{third.sid}/handoffs/{doc['id']}/complete",
        headers=rig.auth(agent_token(rig, third)),
    )
    return [*callers, third], [*docs, doc]


def test_each_specialists_desk_shows_only_their_own_call_and_its_banner_never_flips(
    rig: Rig, clock: ManualClock
) -> None:
    desk = SpecialistDesk(rig.svc)
    seen: dict[str, list[str]] = {KIM: [], LEE: [], "300103": []}
    callers, docs = overlapping(rig)
    kim, lee, mia = rig.viewer(KIM), rig.viewer(LEE), rig.viewer("300103")

    def look() -> None:
        for viewer in (kim, lee, mia):
            state = desk.state(viewer)
            if state["banner"]["kind"] in {"active", "briefing", "checking", "incoming"}:
                seen[viewer.specialist].append(state["banner"]["handoff_id"])

    for _ in range(10):
        rig.sim.advance(10)
        look()
    takers = [rig.handoff(d["id"])["taken_by"]["id"] for d in docs]
    assert takers == [KIM, LEE, "300103"]
    for viewer, doc in zip((kim, lee, mia), docs, strict=True):
        state = desk.state(viewer)
        assert state["handoff"]["id"] == doc["id"], "their own hand-off"
        banner = state["banner"]
        assert banner["kind"] == "active" and banner["handoff_id"] == doc["id"]
        assert doc["customer"]["name"] in banner["text"] and "Wants time to pay" in banner["text"]
        assert "for this call only" in banner["text"]
        assert set(seen[viewer.specialist]) == {doc["id"]}, "the live banner never flipped"
        # The team view labels the others' hand-offs with no customer in them.
        for row in state["team"]:
            assert row["mine"] == (row["id"] == doc["id"])
            assert "Pat Customer" not in str(row) and "2234567890" not in str(row)
    # The first call ends: Kim keeps a read-only card for the wrap-up; the team sees none.
    rig.sim.hang_up(callers[0])
    rig.sim.advance(5)
    kim_state = desk.state(kim)
    assert kim_state["handoff"] is None and kim_state["banner"]["kind"] == "ended"
    assert "Authority ended" in kim_state["banner"]["text"]
    (wrap,) = kim_state["wrap_up"]
    assert wrap["handoff"]["customer"]["reference"] == "2234567890"
    assert desk.state(lee)["banner"]["handoff_id"] == docs[1]["id"], "Lee's call goes on"
    clock.advance(rig.svc.settings.specialist_wrap_up_seconds + 1)
    assert desk.state(kim)["wrap_up"] == [], "after the wrap-up the customer goes from view"
    assert desk.state(kim)["banner"]["kind"] == "none"


def test_a_specialist_on_a_hand_off_is_never_shown_available(rig: Rig) -> None:
    """Their own state on their console follows their call: Available, their phone
    ringing, On a hand-off (saying what happens when it ends), then what they last said."""
    desk = SpecialistDesk(rig.svc)
    rig.own_phone(KIM, after=6)
    kim = rig.viewer(KIM)
    assert desk.state(kim)["availability"]["state"] == "available"
    caller = rig.caller_with_agent()
    handoff = rig.request(caller).get_json()
    seen: list[str] = []

    def watch() -> bool:
        seen.append(desk.state(kim)["availability"]["state"])
        return rig.handoff(handoff["id"])["state"] == "briefing"

    assert rig.sim.run_until(watch)
    working = desk.state(kim)["availability"]
    assert working["state"] == "on_call" and working["label"] == "On a hand-off"
    assert working["status"] == "available", "what Kim said is kept under the call"
    assert working["after"] == "Hand-offs ring you again when this one ends."
    assert "ringing" in seen and "available" not in seen[seen.index("ringing"):]
    rig.svc.staff.set_specialist_availability(KIM, "away", rig.svc.clock.now())
    working = desk.state(kim)["availability"]
    assert (working["state"], working["after"]) == ("on_call", "You stay Away when this one ends.")
    rig.sim.hang_up(caller)
    rig.sim.advance(5)
    assert desk.state(kim)["availability"]["state"] == "away"


def test_after_the_call_the_team_sees_no_customer_and_the_taker_only_for_their_wrap_up(
    rig: Rig, clock: ManualClock
) -> None:
    tokens = rig.tokens_for_everyone()
    caller, handoff = rig.taken_over()  # Kim took it
    path = f"/api/calls/{caller.sid}/handoffs/{handoff['id']}"
    grant_path = f"/api/calls/{caller.sid}/grant"

    def card(who: str) -> Any:
        return rig.api.get(path, headers=rig.auth(tokens[who]))

    live = card("colleague").get_json()
    assert "customer" not in live and live["taken_by"]["name"] == "Kim Specialist"
    assert "withheld" in live, "a colleague sees the label, never the customer"
    assert card("specialist").get_json()["customer"]["reference"] == "2234567890"
    assert rig.api.get(grant_path, headers=rig.auth(tokens["colleague"])).status_code == 403
    rig.sim.hang_up(caller)
    rig.sim.advance(5)
    for who in ("colleague",):
        shown = card(who).get_json()
        assert card(who).status_code == 200 and "customer" not in shown
        assert "2234567890" not in str(shown) and "Pat Customer" not in str(shown)
        assert rig.api.get(grant_path, headers=rig.auth(tokens[who])).status_code == 403
    assert card("other_team").status_code == 403
    kept = card("specialist").get_json()
    assert kept["customer"]["reference"] == "2234567890", "Kim's wrap-up card"
    ended = rig.api.get(grant_path, headers=rig.auth(tokens["specialist"])).get_json()
    assert not ended["authorised"] and ended["grant"]["customer"]["reference"] == "2234567890"
    clock.advance(rig.svc.settings.specialist_wrap_up_seconds + 1)
    gone = card("specialist").get_json()
    assert "customer" not in gone and "wrap-up" in gone["withheld"]
    brief = rig.api.get(grant_path, headers=rig.auth(tokens["specialist"])).get_json()
    assert "customer" not in brief["grant"] and not brief["authorised"]
    admin = card("admin").get_json()
    assert admin["customer"]["reference"] == "2234567890", "the record keeps everything"
    assert card("agent").get_json()["customer"]["reference"] == "2234567890"
    by_customer = rig.api.get(
        "/api/grants?customer=2234567890", headers=rig.auth(tokens["colleague"])
    ).get_json()
    assert by_customer["authorised"] is False and by_customer["grants"] == []


def test_a_specialist_of_another_team_and_other_agents_see_nothing(rig: Rig) -> None:
    tokens = rig.tokens_for_everyone()
    caller, handoff = rig.taken_over()
    path = f"/api/calls/{caller.sid}/handoffs/{handoff['id']}"
    expected = {
        "agent": 200, "other_agent": 403, "specialist": 200, "colleague": 200,
        "other_team": 403, "admin": 200,
    }  # fmt: skip
    for who, status in expected.items():
        assert rig.api.get(path, headers=rig.auth(tokens[who])).status_code == status, who
    grant = {
        "agent": 200, "other_agent": 403, "specialist": 200, "colleague": 403,
        "other_team": 403, "admin": 200,
    }  # fmt: skip
    for who, status in grant.items():
        got = rig.api.get(f"/api/calls/{caller.sid}/grant", headers=rig.auth(tokens[who]))
        assert got.status_code == status, who
    other = SpecialistDesk(rig.svc).state(
        Viewer("specialist", team="insolvency", specialist=INS)
    )
    assert other["team"] == [] and other["handoff"] is None


# ---------------------------------------------------------------- an agent's working day


def presence(rig: Rig, sees_id: str = AGENT) -> dict[str, Any]:
    return rig.svc.staff.availability(sees_id, rig.svc.clock.now())


def test_an_agents_call_moves_through_ringing_on_a_call_and_after_call_work(
    rig: Rig, clock: ManualClock
) -> None:
    rig.svc.staff.set_availability(OTHER, "away", clock.now(), "training")
    assert presence(rig)["state"] == "available"
    rig.sim.add_callee("client:alex", Callee("answered", after=8, script=Script().hang_up(5000)))
    script = Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(
        {"first school": "Hill Top", "colour": "Blue"}
    ).hang_up(after=100)
    caller = rig.sim.call(VSTRS, "+441632960001", script)
    assert rig.sim.run_until(lambda: presence(rig)["state"] == "ringing")
    assert rig.sim.run_until(lambda: presence(rig)["state"] == "on_call")
    assert presence(rig)["call_sid"] == caller.sid
    assert rig.sim.run_until(lambda: not caller.live)
    rig.sim.advance(1)
    wrapping = presence(rig)
    assert wrapping["state"] == "after_call" and wrapping["until"] == pytest.approx(
        wrapping["since"] + rig.svc.settings.agent_wrap_up_seconds
    )
    record = rig.svc.vstrs.get(caller.sid)
    assert record is not None and record["outcome"]["code"] == "caller_hung_up"
    assert record["outcome"]["by"] == "service"
    assert rig.svc.staff.idle_agents(clock.now()) == [], "nobody is offered a call in wrap-up"
    clock.advance(rig.svc.settings.agent_wrap_up_seconds)
    assert presence(rig)["state"] == "available", "the wrap-up ends by itself"
    assert [a.sees_id for a in rig.svc.staff.idle_agents(clock.now())] == [AGENT]


def test_ready_ends_after_call_work_and_the_outcome_is_recorded_and_audited(
    rig: Rig, clock: ManualClock
) -> None:
    rig.svc.staff.set_availability(OTHER, "away", clock.now(), "break")
    caller = rig.caller_with_agent()
    rig.sim.hang_up(caller)
    rig.sim.advance(5)
    assert presence(rig)["state"] == "after_call"
    alex = Viewer("vstrs_agent", sees_id=AGENT)
    with pytest.raises(CallflowError, match="outcome"):
        rig.svc.vstrs.record_outcome(caller.sid, alex, "lunch", "")
    bad = rig.api.post(
        f"/api/calls/{caller.sid}/outcome", json={"outcome": "lunch"}, headers=rig.auth()
    )
    assert bad.status_code == 422 and "outcome" in bad.get_json()["errors"]
    other = rig.api.post(
        f"/api/calls/{caller.sid}/outcome",
        json={"outcome": "resolved"},
        headers=rig.auth(rig.other_token),
    )
    assert other.status_code == 403, "only the agent who took the call"
    done = rig.api.post(
        f"/api/calls/{caller.sid}/outcome",
        json={"outcome": "callback_arranged", "notes": "Ring back Tuesday  with the letter"},
        headers=rig.auth(),
    )
    assert done.status_code == 200
    record = rig.svc.vstrs.get(caller.sid)
    assert record is not None and record["outcome"]["code"] == "callback_arranged"
    assert record["outcome"]["notes"] == "Ring back Tuesday with the letter"
    audited = [e for e in rig.svc.audit.entries() if e["kind"] == "call.outcome"]
    assert [(e["agent"], e["outcome"]) for e in audited] == [(AGENT, "callback_arranged")]
    assert "Tuesday" not in str(audited), "the notes stay on the call, not in the log"
    ready = rig.api.put(
        "/api/agents/me/availability", json={"status": "ready"}, headers=rig.auth()
    )
    assert ready.status_code == 200 and presence(rig)["state"] == "available"


def test_away_pressed_mid_call_takes_effect_after_the_call(rig: Rig, clock: ManualClock) -> None:
    caller = rig.caller_with_agent()
    answer = rig.api.put(
        "/api/agents/me/availability", json={"status": "away", "reason": "break"},
        headers=rig.auth(),
    )  # fmt: skip
    assert answer.status_code == 200
    now = presence(rig)
    assert now["state"] == "on_call" and now["away_after"] == "break"
    no_reason = rig.api.put(
        "/api/agents/me/availability", json={"status": "away"}, headers=rig.auth()
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["errors"]
    rig.sim.hang_up(caller)
    rig.sim.advance(5)
    assert presence(rig)["state"] == "after_call"
    clock.advance(rig.svc.settings.agent_wrap_up_seconds + 1)
    after = presence(rig)
    assert after["state"] == "away" and after["reason"] == "break"
    assert rig.svc.staff.idle_agents(clock.now()) == [] or all(
        a.sees_id != AGENT for a in rig.svc.staff.idle_agents(clock.now())
    )


def test_the_form_is_a_draft_on_its_call_that_survives_the_caller_hanging_up(
    rig: Rig,
) -> None:
    caller = rig.caller_with_agent()
    alex = Viewer("vstrs_agent", sees_id=AGENT)
    draft = {"customer_name": "Jo Sample", "reference": "AB 12 34 56 C", "issue": "A plan"}
    saved = rig.api.put(f"/api/calls/{caller.sid}/draft", json=draft, headers=rig.auth())
    assert saved.status_code == 200
    assert AgentDesk(rig.svc).form_for(alex)["customer_name"] == "Jo Sample", "a reload restores it"
    refused = rig.api.put(
        f"/api/calls/{caller.sid}/draft", json=draft, headers=rig.auth(rig.other_token)
    )
    assert refused.status_code == 403, "a draft for a call that is not the agent's"
    too_long = rig.api.put(
        f"/api/calls/{caller.sid}/draft", json={"issue": "x" * 2001}, headers=rig.auth()
    )
    assert too_long.status_code == 422
    rig.sim.hang_up(caller)
    rig.sim.advance(5)
    state = AgentDesk(rig.svc).state(alex)
    assert state["call"] is None and state["after_call"] is not None
    assert state["after_call"]["draft"]["customer_name"] == "Jo Sample", "moved into wrap-up"
    assert state["after_call"]["call"]["call_sid"] == caller.sid


def test_the_agents_desk_shows_what_was_sent_the_timers_and_the_hand_over(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting())
    handoff = rig.request(caller).get_json()
    alex = Viewer("vstrs_agent", sees_id=AGENT)
    state = AgentDesk(rig.svc).state(alex)
    sent = state["handoff"]["sent"]
    assert sent["customer_name"] == "Pat Customer" and sent["reference"] == "2234567890"
    assert state["handoff"]["held_since"] == handoff["requested_at"]
    assert state["hold_warning_seconds"] == rig.svc.settings.hold_warning_seconds
    assert state["call"]["connected_at"] is not None
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "briefing")
    rig.api.post(f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/complete", headers=rig.auth())
    rig.sim.advance(2)
    after = AgentDesk(rig.svc).state(alex)
    assert after["presence"]["state"] == "after_call"
    over = after["after_call"]["handoff"]["handed_over"]
    assert over["team_name"] == "Debt Pursuit" and over["authority_live"] is True
    assert after["after_call"]["call"]["outcome"]["code"] == "handed_off"


def test_a_closed_team_is_never_offered_again(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, Script(), outcome="no-answer", takes=False)
    rig.specialist("+441632960201", Script(), outcome="no-answer", takes=False)
    handoff = rig.request(caller).get_json()
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "failed")
    alex = Viewer("vstrs_agent", sees_id=AGENT)
    assert AgentDesk(rig.svc).state(alex)["handoff"]["team_open"] is True
    rig.svc.staff.change_calendar(
        "debt_pursuit", by="tests", add={"closed_from": "2000-01-01T00:00",
                                         "closed_to": "2100-01-01T00:00", "reason": "Training"},
    )  # fmt: skip
    assert AgentDesk(rig.svc).state(alex)["handoff"]["team_open"] is False


# ---------------------------------------------------------------- one fair queue


def english_caller(rig: Rig, number: str) -> Leg:
    """An adviser rings the English line from ``number``, verifies and holds on."""
    script = Script().press(f"{ADVISER}#").press(f"{PIN}#")
    return rig.sim.call(
        VSTRS, number, script.answer({"first school": "Hill Top", "colour": "Blue"}).hang_up(after=5000)
    )


def welsh_and_english_waiting(rig: Rig, clock: ManualClock) -> tuple[Leg, Leg]:
    """Alex and Other away; Bethan (Welsh) away; a Welsh caller waits, then an English one."""
    now = clock.now()
    for agent in (AGENT, OTHER):
        rig.svc.staff.set_availability(agent, "away", now, "meeting")
    rig.svc.staff.add_agent(WELSH_AGENT, "Bethan Agent", "client:bethan", now, by="tests")
    rig.svc.staff.set_agent_skills(WELSH_AGENT, ["cy-GB"], by="tests")
    rig.sim.add_callee(
        "client:bethan", Callee("answered", after=3, script=Script().hang_up(after=5000))
    )
    rig.sim.configure_number(
        "+441632960998", f"{BASE_URL}/voice/incoming?lang=cy",
        status_callback=f"{BASE_URL}/voice/status",
    )  # fmt: skip
    welsh = rig.sim.call(
        "+441632960998",
        "+441632960001",
        Script().press(f"{ADVISER}#").press(f"{PIN}#")
        .answer({"ysgol gyntaf": "Hill Top", "hoff liw": "Blue"}).hang_up(after=5000),
    )  # fmt: skip
    assert rig.sim.run_until(lambda: (rig.svc.vstrs.get(welsh.sid) or {}).get("state") == "waiting")
    rig.sim.advance(5)
    english = english_caller(rig, "+441632960002")
    assert rig.sim.run_until(
        lambda: (rig.svc.vstrs.get(english.sid) or {}).get("state") == "waiting"
    )
    return welsh, english


@pytest.mark.parametrize("first", ["english", "welsh"])
def test_a_welsh_caller_who_waited_longer_gets_the_free_welsh_agent(
    rig: Rig, clock: ManualClock, first: str
) -> None:
    welsh, english = welsh_and_english_waiting(rig, clock)
    rig.svc.staff.set_availability(WELSH_AGENT, "available", clock.now())
    order = [english, welsh] if first == "english" else [welsh, english]
    rung = [rig.svc.vstrs.ring_next(caller.sid, links()) for caller in order]
    assert rung == ([False, True] if first == "english" else [True, False])
    assert (rig.svc.vstrs.get(welsh.sid) or {})["ringing"]["sees_id"] == WELSH_AGENT
    assert (rig.svc.vstrs.get(english.sid) or {})["ringing"] is None
    assert rig.sim.run_until(
        lambda: (rig.svc.vstrs.get(welsh.sid) or {}).get("state") == "with_agent"
    )
    assert (rig.svc.vstrs.get(english.sid) or {})["state"] == "waiting"


def test_an_english_agent_free_takes_the_english_caller_while_the_welsh_one_waits(
    rig: Rig, clock: ManualClock
) -> None:
    welsh, english = welsh_and_english_waiting(rig, clock)
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    assert rig.svc.vstrs.ring_next(welsh.sid, links()) is False, "Alex speaks no Welsh"
    assert rig.svc.vstrs.ring_next(english.sid, links()) is True


def test_with_a_welsh_and_an_english_agent_free_each_caller_gets_the_right_one(
    rig: Rig, clock: ManualClock
) -> None:
    welsh, english = welsh_and_english_waiting(rig, clock)
    rig.svc.staff.set_availability(WELSH_AGENT, "available", clock.now())
    clock.advance(1)
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    # The English caller asks first: Bethan is kept for the Welsh caller, Alex is theirs.
    assert rig.svc.vstrs.ring_next(english.sid, links()) is True
    assert (rig.svc.vstrs.get(english.sid) or {})["ringing"]["sees_id"] == AGENT
    assert rig.svc.vstrs.ring_next(welsh.sid, links()) is True
    assert (rig.svc.vstrs.get(welsh.sid) or {})["ringing"]["sees_id"] == WELSH_AGENT


def test_the_fallback_to_english_after_the_wait_still_applies_and_is_audited(
    rig: Rig, clock: ManualClock
) -> None:
    welsh, english = welsh_and_english_waiting(rig, clock)
    rig.sim.advance(70)  # past the flow's language_wait with no Welsh speaker free
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    assert rig.svc.vstrs.ring_next(english.sid, links()) is False, "the Welsh caller is first now"
    assert rig.svc.vstrs.ring_next(welsh.sid, links()) is True
    assert (rig.svc.vstrs.get(welsh.sid) or {})["ringing"]["sees_id"] == AGENT
    fallback = [e for e in rig.svc.audit.entries() if e["kind"] == "agent.language_fallback"]
    assert [(e["call_sid"], e["outcome"]) for e in fallback] == [(welsh.sid, "english")]


def test_a_welsh_call_back_holding_its_place_keeps_the_welsh_agent_from_a_later_caller(
    rig: Rig, clock: ManualClock
) -> None:
    now = clock.now()
    for agent in (AGENT, OTHER):
        rig.svc.staff.set_availability(agent, "away", now, "meeting")
    rig.svc.staff.add_agent(WELSH_AGENT, "Bethan Agent", "client:bethan", now, by="tests")
    rig.svc.staff.set_agent_skills(WELSH_AGENT, ["cy-GB"], by="tests")
    adviser = rig.svc.directory.get(ADVISER)
    assert adviser is not None
    noted = rig.svc.callbacks.note(
        "CA" + "7" * 32, adviser.identity(), arrived_at=now - 300, language="cy-GB",
        relay=False, routing=None, reason="no_agent",
    )  # fmt: skip
    assert noted is not None
    rig.svc.dispatcher.dispatch(links())  # the worker's heartbeat: call-backs are placed
    english = rig.sim.call(
        VSTRS,
        "+441632960002",
        Script().press(f"{ADVISER}#").press(f"{PIN}#")
        .answer({"first school": "Hill Top", "colour": "Blue"})
        .silent().hang_up(after=5000),  # no, thank you, to a call-back: they hold
    )  # fmt: skip
    assert rig.sim.run_until(
        lambda: (rig.svc.vstrs.get(english.sid) or {}).get("state") == "waiting"
    )
    rig.svc.staff.set_availability(WELSH_AGENT, "available", clock.now())
    assert rig.svc.vstrs.ring_next(english.sid, links()) is False, "the call-back rang first"
    placed = rig.svc.dispatcher.dispatch(links())
    assert [cb for cb, what in placed if what.startswith("CA")] == [noted["id"]]


# ---------------------------------------------------------------- the lifecycle, declared once


def test_the_hand_offs_lifecycle_is_one_table_and_the_docs_diagram_is_drawn_from_it() -> None:
    diagram = HANDOFF.mermaid()
    docs = (ROOT / "docs" / "architecture.md").read_text()
    assert diagram.strip() in docs, "docs/architecture.md draws HANDOFF.mermaid() as it is"
    assert HANDOFF.after("briefing", "take_over") == "taken_over"
    assert HANDOFF.after("ringing", "take") == "ringing", "taking it leaves the state"
    assert HANDOFF.after("taken_over", "fail") is None, "too late to fail once taken over"
    assert HANDOFF.after("ended", "end") is None


def test_a_move_the_lifecycle_does_not_allow_changes_nothing(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting(), after=30)
    handoff = rig.request(caller).get_json()
    with pytest.raises(HandOffError, match="not in its brief"):
        rig.svc.handoffs.complete(handoff["id"], links(), agent_sees_id=AGENT)
    with pytest.raises(HandOffError, match="only the VSTRS agent who asked"):
        rig.svc.handoffs.complete(handoff["id"], links(), agent_sees_id=OTHER)
    assert rig.handoff(handoff["id"])["state"] == "ringing"
    console = rig.app.test_client()
    assert console.post(f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/complete",
                        headers=rig.auth(rig.other_token)).status_code == 403  # fmt: skip


def test_signing_out_during_a_call_asks_first(rig: Rig) -> None:
    import re

    from tests.rigs import PASSWORD, sign_in

    now = rig.svc.clock.now()
    rig.svc.accounts.add("alex", "Alex Agent", "vstrs_agent", PASSWORD, now, sees_id=AGENT, by="t")
    rig.svc.accounts.add("olly", "Other Agent", "vstrs_agent", PASSWORD, now, sees_id=OTHER, by="t")
    rig.svc.staff.set_availability(OTHER, "away", now, "training")
    alex, olly = rig.app.test_client(), rig.app.test_client()
    sign_in(alex, "alex")
    sign_in(olly, "olly")

    def token(client: Any) -> str:
        page = client.get("/console/agent").get_data(as_text=True)
        found = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert found
        return found.group(1)

    rig.caller_with_agent()
    asked = alex.post("/console/logout", data={"csrf_token": token(alex)})
    assert asked.status_code == 200
    page = asked.get_data(as_text=True)
    assert "Sign out during a call?" in page and "You are on a call." in page
    assert alex.get("/console/agent").status_code == 200, "still signed in"
    gone = alex.post("/console/logout", data={"csrf_token": token(alex), "confirm": "yes"})
    assert gone.status_code == 303 and alex.get("/console/agent").status_code == 302
    # Not on a call: no question.
    assert olly.post("/console/logout", data={"csrf_token": token(olly)}).status_code == 303


def test_a_hand_off_stored_before_the_rename_reads_its_representative_as_adviser(
    rig: Rig,
) -> None:
    """Records written before `representative` became `adviser` are read until they
    expire: every answer says `adviser`."""
    tokens = rig.tokens_for_everyone()
    caller, handoff = rig.taken_over()
    old = rig.handoff(handoff["id"])
    old["representative"] = old.pop("adviser")
    rig.svc.store.put_doc("handoffs", old["id"], old)
    grant = rig.svc.handoffs.grants.get(old["grant_id"])
    assert grant is not None
    grant["representative"] = grant.pop("adviser")
    rig.svc.store.put_doc("grants", grant["id"], grant)
    path = f"/api/calls/{caller.sid}/handoffs/{old['id']}"
    for who in ("agent", "specialist", "admin"):
        card = rig.api.get(path, headers=rig.auth(tokens[who])).get_json()
        assert card["adviser"]["name"] == "Sam Adviser" and "representative" not in card, who
    answer = rig.grant(caller)
    assert answer["grant"]["adviser"] == {"name": "Sam Adviser", "adviser_number": ADVISER}


def test_a_ring_whose_end_is_never_heard_lapses_and_the_agent_is_offered_again(
    rig: Rig, clock: ManualClock
) -> None:
    """A worker that died mid-ring never says the ring is over: the agent is Ringing only
    until the claim that held them would lapse, then free again (never stuck)."""
    rig.svc.staff.set_availability(OTHER, "away", clock.now(), "break")
    call_sid = "CA" + "5" * 32
    assert rig.svc.staff.offer_agent(AGENT, call_sid, 80, clock.now())
    assert presence(rig)["state"] == "ringing"
    assert rig.svc.staff.idle_agents(clock.now()) == []
    clock.advance(81)
    assert presence(rig)["state"] == "available"
    # The claim lapses with it (Redis keeps its own time: its lapse is stood in for here).
    rig.svc.store.release(f"agent:{AGENT}", call_sid)
    assert [a.sees_id for a in rig.svc.staff.idle_agents(clock.now())] == [AGENT]


# ---------------------------------------------------------------- a free agent is offered at once


def in_conference(rig: Rig, caller: Leg) -> bool:
    """The caller waits in their conference (its join noted), hearing the hold loop."""
    doc = rig.svc.vstrs.get(caller.sid) or {}
    return doc.get("state") == "waiting" and bool(doc.get("conference_sid"))


def test_an_agent_who_becomes_available_is_rung_at_once_not_at_the_next_hold_tick(
    rig: Rig, clock: ManualClock
) -> None:
    """The caller's hold loop asks for an agent every 15 s or so; an agent pressing
    Available is rung for the longest-waiting caller they can serve in the same request
    (the API here; the console the same), with no virtual time passing."""
    welsh, english = welsh_and_english_waiting(rig, clock)
    assert rig.sim.run_until(lambda: in_conference(rig, english)), "holding, no agent free"
    before = clock.now()
    answer = rig.api.put(
        "/api/agents/me/availability", json={"status": "available"}, headers=rig.auth()
    )
    assert answer.status_code == 200
    assert clock.now() == before, "no hold tick came between"
    ringing = (rig.svc.vstrs.get(english.sid) or {})["ringing"]
    assert ringing is not None and ringing["sees_id"] == AGENT, "Alex, rung for the English caller"
    assert (rig.svc.vstrs.get(welsh.sid) or {})["ringing"] is None, "Alex speaks no Welsh"
    assert presence(rig)["state"] == "ringing"
    assert rig.sim.run_until(
        lambda: (rig.svc.vstrs.get(english.sid) or {}).get("state") == "with_agent"
    )


def test_after_call_work_lapsing_is_noticed_by_the_worker_within_its_pass(
    rig: Rig, clock: ManualClock
) -> None:
    """After-call work ends on its own after CALLFLOW_WRAP_UP seconds: no one presses
    anything, so the call-back worker's next pass (every 5 s) rings the agent for a caller
    waiting since, and a second pass at once rings nobody twice."""
    welsh, english = welsh_and_english_waiting(rig, clock)
    rig.sim.hang_up(welsh)  # (its language's wait would make it Alex's after a minute)
    rig.svc.staff.set_availability(AGENT, "available", clock.now())
    assert rig.sim.run_until(
        lambda: (rig.svc.vstrs.get(english.sid) or {}).get("state") == "with_agent"
    )
    third = english_caller(rig, "+441632960003")
    assert rig.sim.run_until(lambda: in_conference(rig, third))
    rig.sim.hang_up(english)
    rig.sim.advance(1)
    assert presence(rig)["state"] == "after_call"
    clock.advance(rig.svc.settings.agent_wrap_up_seconds + 1)
    assert presence(rig)["state"] == "available"
    assert (rig.svc.vstrs.get(third.sid) or {})["ringing"] is None, "no hold tick yet"
    rig.svc.dispatcher.dispatch(links())
    ringing = (rig.svc.vstrs.get(third.sid) or {})["ringing"]
    assert ringing is not None and ringing["sees_id"] == AGENT
    assert rig.svc.vstrs.offer_free_agents(links()) == [], "rung once"
    assert rig.sim.run_until(
        lambda: (rig.svc.vstrs.get(third.sid) or {}).get("state") == "with_agent"
    )


def test_a_free_agent_offered_from_everywhere_at_once_is_rung_once(
    rig: Rig, clock: ManualClock
) -> None:
    """Two agents press Available at the same moment as the caller's hold tick asks, three
    times over: one caller, one ring, one agent offered; the other stays Available."""
    import threading

    welsh, english = welsh_and_english_waiting(rig, clock)
    rig.sim.hang_up(welsh)
    assert rig.sim.run_until(lambda: in_conference(rig, english))
    now = clock.now()
    for agent in (AGENT, OTHER):
        rig.svc.staff.set_availability(agent, "available", now)
    agents_before = [leg for leg in rig.sim.legs.values() if leg.to.startswith("client:")]
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def act(what: Any) -> None:
        start.wait()
        try:
            what()
        except BaseException as exc:  # reported below
            errors.append(exc)

    acts = [lambda: rig.svc.vstrs.offer_free_agents(links())] * 3 + [
        lambda: rig.svc.vstrs.hold_tick(english.sid, links())
    ] * 3
    threads = [threading.Thread(target=act, args=(a,)) for a in acts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rung = [
        leg for leg in rig.sim.legs.values()
        if leg.to.startswith("client:") and leg not in agents_before
    ]  # fmt: skip
    assert len(rung) == 1, [leg.to for leg in rung]
    states = sorted(presence(rig, agent)["state"] for agent in (AGENT, OTHER))
    assert states == ["available", "ringing"]
    ringing = (rig.svc.vstrs.get(english.sid) or {})["ringing"]
    assert ringing is not None and f"client:{'alex' if ringing['sees_id'] == AGENT else 'other'}" == rung[0].to


def test_an_offer_that_cannot_be_made_never_undoes_the_agents_available(
    rig: Rig, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store failing as the offer looks at the queue: the agent is still Available
    (the answer says so), and the caller's next hold tick rings them."""
    from callflow.errors import StoreUnavailable

    welsh, english = welsh_and_english_waiting(rig, clock)
    rig.sim.hang_up(welsh)
    assert rig.sim.run_until(lambda: in_conference(rig, english))

    def down(*_args: Any, **_kwargs: Any) -> Any:
        raise StoreUnavailable("the store is not answering")

    monkeypatch.setattr(rig.svc.vstrs, "waiting", down)
    answer = rig.api.put(
        "/api/agents/me/availability", json={"status": "available"}, headers=rig.auth()
    )
    assert answer.status_code == 200 and answer.get_json()["state"] == "available"
    assert (rig.svc.vstrs.get(english.sid) or {})["ringing"] is None
    monkeypatch.undo()
    assert rig.sim.run_until(
        lambda: (rig.svc.vstrs.get(english.sid) or {}).get("state") == "with_agent", 60
    ), "the next hold tick rang Alex"
