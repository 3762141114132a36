"""Hand-offs end to end through the simulator: the SEES ID check and the grant."""

from __future__ import annotations

from typing import Any

import pytest

from callflow.clock import ManualClock
from callflow.links import ServiceLinks
from callflow.simulator import Callee, Script
from callflow.store import Store
from tests.conftest import ADVISER, BASE_URL
from tests.rigs import AGENT, KIM, LEE, TEAM_FIRST, TEAM_SECOND, Rig, accepting


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    return Rig(store, clock)


def test_the_whole_hand_off(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting())
    response = rig.request(caller, callback={"urgent": True, "turnaround": "2 working days"})
    assert response.status_code == 201, response.get_json()
    handoff = response.get_json()
    assert handoff["state"] == "ringing"
    assert handoff["adviser"] == {
        "name": "Sam Adviser",
        "adviser_number": ADVISER,
        "phone": "+44 20 7946 0000",
        "email": "",
    }, "consent to act: contact details are passed on"
    assert handoff["customer"] == {
        "name": "Pat Customer",
        "reference_type": "utr",
        "reference": "2234567890",
    }
    rig.sim.advance(1)
    assert rig.held(caller), "the caller is held while the team is rung"
    assert not rig.grant(caller, rig.agent_token)["authorised"]

    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "briefing")
    assert rig.handoff(handoff["id"])["taken_by"]["id"] == KIM, "Kim answered and took it"
    specialist = rig.sim.legs[rig.handoff(handoff["id"])["specialist_call_sid"]]
    assert (
        "for the Debt Pursuit team. The caller is an adviser from Tax Aid." in specialist.heard()[0]
    )
    assert rig.held(caller) and not rig.grant(caller)["authorised"], "no grant before the take-over"

    card = rig.api.get(
        f"/api/calls/{caller.sid}/handoffs/{handoff['id']}", headers=rig.auth(rig.specialist_token)
    )
    assert card.status_code == 200 and card.get_json()["agent_sees_id"] == AGENT
    done = rig.api.post(
        f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/complete", headers=rig.auth()
    )
    assert done.status_code == 200 and done.get_json()["state"] == "taken_over"
    rig.sim.advance(2)
    assert not rig.held(caller)
    conference = rig.sim.conferences[f"vstrs-{caller.sid}"]
    assert set(conference.participants) == {caller.sid, specialist.sid}, "the agent has left"

    grant = rig.grant(caller)
    assert grant["authorised"] and grant["to"]["team"] == "debt_pursuit"
    assert (
        grant["grant"]["agent_sees_id"] == AGENT
        and grant["grant"]["customer"]["reference"] == "2234567890"
    )
    by_customer = rig.api.get(
        "/api/grants?customer=22345 67890", headers=rig.auth(rig.specialist_token)
    ).get_json()
    assert by_customer["authorised"] is True

    rig.sim.hang_up(caller)
    rig.sim.run()
    after = rig.grant(caller)
    assert not after["authorised"] and "usual authority requirements apply" in after["reason"]
    assert rig.handoff(handoff["id"])["state"] == "ended"
    assert rig.kinds(caller) == [
        ("handoff.requested", "requested"),
        ("handoff.ringing", "ringing"),
        ("handoff.answered", "answered"),
        ("handoff.taken_by", "taken"),
        ("handoff.sees_check", "match"),
        ("handoff.accepted", "accepted"),
        ("handoff.briefing", "joined"),
        ("grant.issued", "active"),
        ("handoff.taken_over", "taken_over"),
        ("grant.ended", after["grant"]["end_reason"]),
        ("handoff.ended", after["grant"]["end_reason"]),
    ]
    stats = rig.api.get("/api/stats/handoffs", headers=rig.auth()).get_json()
    # Hand-offs are counted; an agent sees their own count, a team its own.
    assert stats["handoffs"] == 1 and stats["by_agent"] == {AGENT: 1} and stats["by_team"] == {}
    assert stats["share_by_organisation"] == {"taxaid": 1.0}
    other = rig.api.get("/api/stats/handoffs", headers=rig.auth(rig.other_token)).get_json()
    assert other["handoffs"] == 1 and other["by_agent"] == {} and other["by_team"] == {}
    team = rig.api.get("/api/stats/handoffs", headers=rig.auth(rig.specialist_token)).get_json()
    assert team["by_team"] == {"debt_pursuit": 1} and team["by_agent"] == {}
    assert rig.sim.errors == []


def test_the_agent_leaving_after_the_brief_hands_over(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting())
    handoff = rig.request(caller).get_json()
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "briefing")
    agent_leg = next(leg for leg in rig.sim.legs.values() if leg.to == "client:alex")
    rig.sim.hang_up(agent_leg)
    rig.sim.advance(2)
    assert rig.handoff(handoff["id"])["state"] == "taken_over"
    assert rig.grant(caller)["authorised"] and not rig.held(caller)


def test_sees_id_mismatch_three_times(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, Script().press("999999#").press("200002#").press("123#"))
    handoff = rig.request(caller).get_json()
    rig.sim.advance(120)
    doc = rig.handoff(handoff["id"])
    assert doc["state"] == "failed" and doc["reason"] == "sees_id_mismatch"
    assert [k for k in rig.kinds(caller) if k[0] == "handoff.sees_check"] == [
        ("handoff.sees_check", "mismatch")
    ] * 3
    assert not rig.held(caller) and not rig.grant(caller)["authorised"]
    assert rig.svc.vstrs.get(caller.sid)["state"] == "with_agent"  # type: ignore[index]
    specialist = rig.sim.legs[doc["specialist_call_sid"]]
    assert specialist.heard()[-1].startswith("The SEES I D could not be confirmed")


def test_an_inactive_agents_sees_id_is_refused(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.svc.staff.set_agent_active(AGENT, False, by="tests")
    rig.specialist(TEAM_FIRST, Script().press(f"{AGENT}#").press(f"{AGENT}#").press(f"{AGENT}#"))
    handoff = rig.request(caller).get_json()
    rig.sim.advance(120)
    assert rig.handoff(handoff["id"])["reason"] == "sees_id_mismatch"


def test_the_specialist_declines(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, Script().press(f"{AGENT}#").press("2"))
    handoff = rig.request(caller).get_json()
    rig.sim.advance(60)
    doc = rig.handoff(handoff["id"])
    assert (doc["state"], doc["reason"]) == ("failed", "declined")
    assert not rig.held(caller) and not rig.grant(caller)["authorised"]
    seen = rig.api.get(
        f"/api/calls/{caller.sid}/handoffs/{handoff['id']}", headers=rig.auth()
    ).get_json()
    assert seen["reason"] == "declined", "the agent's request shows why"


def test_no_answer_then_busy(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, Script(), outcome="no-answer")
    rig.specialist(TEAM_SECOND, Script(), outcome="busy", after=2)
    handoff = rig.request(caller).get_json()
    rig.sim.advance(120)
    doc = rig.handoff(handoff["id"])
    assert (doc["state"], doc["reason"]) == ("failed", "busy")
    assert doc["tried"] == [f"number:{TEAM_FIRST}", f"number:{TEAM_SECOND}"]
    outcomes = [o for k, o in rig.kinds(caller) if k == "handoff.ring_outcome"]
    assert outcomes == ["no_answer", "busy"]
    assert not rig.held(caller)


def test_the_second_number_answers(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, Script(), outcome="no-answer")
    rig.specialist(TEAM_SECOND, accepting())
    handoff = rig.request(caller).get_json()
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "briefing")


def test_the_agent_cancels(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting(), after=15)
    handoff = rig.request(caller).get_json()
    rig.sim.advance(3)
    response = rig.api.delete(
        f"/api/calls/{caller.sid}/handoffs/{handoff['id']}", headers=rig.auth()
    )
    assert response.status_code == 200 and response.get_json()["reason"] == "cancelled"
    rig.sim.advance(60)
    ringing = rig.sim.legs[rig.handoff(handoff["id"])["ringing"]["call_sid"]]
    assert ringing.status in {"canceled", "completed"} and ringing.answered_at is None
    assert not rig.held(caller)
    again = rig.api.delete(f"/api/calls/{caller.sid}/handoffs/{handoff['id']}", headers=rig.auth())
    assert again.status_code == 409


def test_the_caller_hangs_up_while_held(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting(), after=20)
    handoff = rig.request(caller).get_json()
    rig.sim.advance(5)
    rig.sim.hang_up(caller)
    rig.sim.run()
    doc = rig.handoff(handoff["id"])
    assert (doc["state"], doc["reason"]) == ("failed", "caller_hung_up")
    assert doc["grant_id"] is None and not rig.grant(caller, rig.agent_token)["authorised"]
    assert not [k for k, _ in rig.kinds(caller) if k == "grant.issued"]


def test_the_specialist_hangs_up_after_the_take_over(rig: Rig) -> None:
    caller, _ = rig.taken_over(Script().press(f"{AGENT}#").press("1").hang_up(after=90))
    assert rig.grant(caller)["authorised"]
    rig.sim.run()
    grant = rig.grant(caller)
    assert not grant["authorised"]
    assert grant["grant"]["end_reason"] in {
        "specialist_leg_completed",
        "participant-with-end-conference-on-exit-left",
        "completed",
    }
    assert caller.heard()[-1] == "Thank you for calling. Goodbye."


def test_a_late_answered_callback_never_revives_a_grant(rig: Rig) -> None:
    caller, handoff = rig.taken_over()
    rig.sim.hang_up(caller)
    rig.sim.run()
    ended = rig.grant(caller)
    assert not ended["authorised"]
    specialist_sid = rig.handoff(handoff["id"])["specialist_call_sid"]
    # The same callbacks Twilio might deliver late or twice, in any order.
    for status in ("in-progress", "ringing", "completed", "in-progress"):
        rig.svc.handoffs.specialist_leg_status(
            caller.sid, specialist_sid, status, ServiceLinks(BASE_URL)
        )
    rig.svc.ends.conference_event(
        {
            "FriendlyName": f"vstrs-{caller.sid}",
            "StatusCallbackEvent": "participant-join",
            "CallSid": specialist_sid,
            "ParticipantLabel": "specialist",
        },
        ServiceLinks(BASE_URL),
    )
    again = rig.grant(caller)
    assert not again["authorised"] and again["grant"]["ended_at"] == ended["grant"]["ended_at"]
    assert rig.handoff(handoff["id"])["state"] == "ended"


def test_two_calls_for_one_customer_keep_separate_grants(rig: Rig) -> None:
    """Two agents hand off two calls about one customer at once: Kim's phone rings for the
    first (longest idle), Lee's for the second; each takes their own, keys their own
    agent's SEES ID, and holds a grant for that call alone."""
    now = rig.svc.clock.now()
    rig.svc.staff.set_availability("200002", "available", now)
    rig.sim.add_callee(
        "client:other", Callee("answered", after=3, script=Script().hang_up(after=5000))
    )
    rig.own_phone(KIM)
    rig.sim.advance(1)
    rig.own_phone(LEE)
    first = rig.caller_with_agent("+441632960001")
    second = rig.caller_with_agent("+441632960002")
    tokens = {}
    for caller in (first, second):
        agent = rig.svc.vstrs.get(caller.sid)["agent"]["sees_id"]  # type: ignore[index]
        tokens[caller.sid] = rig.agent_token if agent == AGENT else rig.other_token
    assert set(tokens.values()) == {rig.agent_token, rig.other_token}
    ids = {c.sid: rig.request(c, token=tokens[c.sid]).get_json()["id"] for c in (first, second)}
    assert rig.sim.run_until(
        lambda: all(rig.handoff(i)["state"] == "briefing" for i in ids.values())
    )
    takers = {c.sid: rig.handoff(ids[c.sid])["taken_by"]["id"] for c in (first, second)}
    assert takers == {first.sid: KIM, second.sid: LEE}
    for caller in (first, second):
        done = rig.api.post(
            f"/api/calls/{caller.sid}/handoffs/{ids[caller.sid]}/complete",
            headers=rig.auth(tokens[caller.sid]),
        )
        assert done.status_code == 200, done.get_json()
    token_of = {KIM: rig.specialist_token, LEE: rig.colleague_token}
    grants = {c.sid: rig.grant(c, token_of[takers[c.sid]]) for c in (first, second)}
    assert all(g["authorised"] for g in grants.values())
    assert len({g["grant"]["id"] for g in grants.values()}) == 2, "each call has its own grant"
    assert {g["grant"]["specialist"]["id"] for g in grants.values()} == {KIM, LEE}
    for caller in (first, second):
        other = token_of[LEE if takers[caller.sid] == KIM else KIM]
        refused = rig.api.get(f"/api/calls/{caller.sid}/grant", headers=rig.auth(other))
        assert refused.status_code == 403, "a grant answers the specialist who took the call"
    rig.sim.hang_up(first)
    rig.sim.advance(5)
    assert not rig.grant(first, rig.specialist_token)["authorised"]
    assert rig.grant(second, rig.colleague_token)["authorised"], (
        "ending one call leaves the other's grant alone"
    )


def test_the_backstop_ends_a_grant_whose_callbacks_are_lost(rig: Rig, clock: ManualClock) -> None:
    caller, _ = rig.taken_over()
    assert rig.grant(caller)["authorised"]
    clock.advance(rig.svc.settings.grant_max_seconds + 1)
    result = rig.grant(caller)
    assert not result["authorised"] and result["reason"] == "past the grant's maximum lifetime"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer": {"name": "Pat", "reference": "12345"}}, "customer.reference"),
        ({"customer": {"name": "Pat", "reference": "QQ12345C"}}, "customer.reference"),
        # Ten digits whose first does not check the other nine: a mistyped UTR.
        ({"customer": {"name": "Pat", "reference": "1234567890"}}, "customer.reference"),
        ({"customer": {"name": "", "reference": "AB123456C"}}, "customer.name"),
        ({"issue": ""}, "issue"),
        (
            {"authorisation": {"type": "verbal", "date": "2026-11-01", "reference": "X"}},
            "authorisation.type",
        ),
        (
            {"authorisation": {"type": "signed", "date": "2099-01-01", "reference": "X"}},
            "authorisation.date",
        ),
        (
            {"authorisation": {"type": "signed", "date": "2026-11-01", "reference": ""}},
            "authorisation.reference",
        ),
        ({"team": "nobody"}, "team"),
        ({"callback": {"urgent": "very"}}, "callback.urgent"),
        ({"extra": 1}, "extra"),
        ({"need": None}, "need"),
        ({"need": "because"}, "need"),
        ({"need": "other"}, "need_detail"),
        ({"need": "other", "need_detail": "x" * 301}, "need_detail"),
    ],
)
def test_hand_off_requests_are_validated(rig: Rig, body: dict[str, Any], field: str) -> None:
    caller = rig.caller_with_agent()
    response = rig.request(caller, **body)
    assert response.status_code == 422 and field in response.get_json()["errors"]
    assert not rig.held(caller)


def test_a_utr_is_checked_by_its_check_digit() -> None:
    from callflow.handoff import validate_request

    body = {
        "team": "t",
        "issue": "x",
        "authorisation": {"type": "signed", "date": "2026-11-01", "reference": "R"},
    }
    for good in ("2234567890", "22345 67890", "1955839661"):
        clean, errors = validate_request({**body, "customer": {"name": "P", "reference": good}})
        assert "customer.reference" not in errors and clean["customer"]["reference_type"] == "utr"
    for typo in ("1234567890", "2234567891", "3234567890"):
        _, errors = validate_request({**body, "customer": {"name": "P", "reference": typo}})
        assert "check digit" in errors["customer.reference"], typo


def test_a_nino_is_accepted(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting(), after=30)
    response = rig.request(caller, customer={"name": "Pat", "reference": "ab 12 34 56 c"})
    assert response.status_code == 201
    assert response.get_json()["customer"] == {
        "name": "Pat",
        "reference_type": "nino",
        "reference": "AB123456C",
    }


def test_only_the_agent_on_the_call_may_hand_it_off(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    assert rig.request(caller, token=rig.other_token).status_code == 403
    assert rig.request(caller, token=rig.specialist_token).status_code == 403


def test_a_closed_team(rig: Rig) -> None:
    rig.svc.staff.remove_team("debt_pursuit", by="tests")
    rig.svc.staff.add_team("debt_pursuit", "Debt Pursuit", "", [TEAM_FIRST], "Sun 00:00-00:01", by="tests")
    caller = rig.caller_with_agent()
    response = rig.request(caller)
    assert response.status_code == 422 and "closed" in response.get_json()["errors"]["team"]


def test_lost_callbacks_are_caught_by_the_sweep(rig: Rig) -> None:
    from callflow.simulator import Faults

    caller, _ = rig.taken_over()
    rig.sim.faults = Faults(lose_callbacks={"completed", "conference-end", "participant-leave"})
    rig.sim.hang_up(caller)
    rig.sim.run()
    grant_id = rig.svc.handoffs.get(rig.svc.vstrs.get(caller.sid)["handoffs"][0])["grant_id"]  # type: ignore[index]
    assert rig.svc.handoffs.sweep() == [(grant_id, "swept_caller_leg_completed")]
    assert not rig.grant(caller)["authorised"]
    assert rig.svc.handoffs.sweep() == [], "a second sweep finds nothing to do"
    assert ("grant.ended", "swept_caller_leg_completed") in rig.kinds(caller)


def test_the_agent_is_off_the_call_once_twilio_took_them_out(rig: Rig) -> None:
    """Handing over takes the agent out of the conference: the call is over for them (their
    after-call work begins) by Twilio's word on that, not only when the participant-leave
    callback comes. A lost callback once left an agent 'on the call' with the form locked."""
    from callflow.simulator import Faults

    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting())
    handoff = rig.request(caller).get_json()
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "briefing")
    rig.sim.faults = Faults(lose_callbacks={"participant-leave"})
    done = rig.api.post(
        f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/complete", headers=rig.auth()
    )
    assert done.status_code == 200 and done.get_json()["state"] == "taken_over"
    record = rig.svc.vstrs.get(caller.sid)
    assert record is not None and record["agent"]["left_at"], "left as Twilio took them out"
    presence = rig.svc.staff.availability(AGENT, rig.svc.clock.now())
    assert presence["state"] == "after_call" and presence["call_sid"] == caller.sid
    rig.sim.advance(2)
    conference = rig.sim.conferences[f"vstrs-{caller.sid}"]
    assert AGENT not in {p.label for p in conference.participants.values()}
    # The callback coming after all changes nothing: the agent left once.
    rig.sim.faults = Faults()
    rig.svc.ends.conference_event(
        {"FriendlyName": f"vstrs-{caller.sid}", "StatusCallbackEvent": "participant-leave",
         "CallSid": record["agent"]["call_sid"], "ParticipantLabel": "agent",
         "ReasonParticipantLeft": "participant_updated_via_api"},
        rig.svc.links(BASE_URL),
    )  # fmt: skip
    left = [e for e in rig.svc.audit.entries() if e["kind"] == "agent.left"]
    assert [e["call_sid"] for e in left] == [caller.sid], "the agent left once"
    assert rig.grant(caller)["authorised"], "the specialist has the call"


def test_the_specialists_console_hears_of_the_hand_off_ending(rig: Rig) -> None:
    """The consoles redraw on events. When a taken-over call ends, the grant ends and then the
    hand-off: that last change is an event too, heard by the specialist who took it, so a
    console that drew between the two never shows "not authorised now" on a live card."""
    from callflow.access import Viewer
    from callflow.desks import Feed, SpecialistDesk

    kim = Viewer("specialist", team="debt_pursuit", specialist=KIM)
    caller, _ = rig.taken_over()
    feed = Feed.start(rig.svc, kim, None)
    rig.sim.hang_up(caller)
    rig.sim.advance(5)  # within Kim's wrap-up: the card stays, marked ended
    heard = [note["kind"] for _, note in feed.next(0) if note is not None]
    assert heard[-1] == "handoff.ended", heard
    assert heard.index("grant.ended") < heard.index("handoff.ended")
    banner = SpecialistDesk(rig.svc).state(kim)["banner"]
    assert banner["kind"] == "ended", banner
    # Another specialist's feed hears nothing of it.
    other = Feed.start(rig.svc, Viewer("specialist", team="insolvency", specialist="300999"), "0")
    assert not [n for _, n in other.next(0) if n is not None]


def test_the_sweep_command(
    rig: Rig,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from callflow.cli import common as cli_common
    from callflow.cli.main import main

    rig.taken_over()
    clock.advance(rig.svc.settings.grant_max_seconds + 5)
    monkeypatch.setattr(cli_common, "service", lambda: rig.svc)
    assert main(["sweep"]) == 0
    assert "ended: max_lifetime" in capsys.readouterr().out


def test_a_new_call_never_inherits_an_old_grant(rig: Rig) -> None:
    first, _ = rig.taken_over()
    rig.sim.hang_up(first)
    rig.sim.run()
    second = rig.caller_with_agent()  # the same adviser calls again
    result = rig.api.get(f"/api/calls/{second.sid}/grant", headers=rig.auth()).get_json()
    assert (
        not result["authorised"]
        and result["reason"] == "this call has not been handed off to a specialist"
    )
    # The team the first call went to has nothing to do with this one.
    refused = rig.api.get(
        f"/api/calls/{second.sid}/grant", headers=rig.auth(rig.specialist_token)
    )
    assert refused.status_code == 403
    by_customer = rig.api.get(
        "/api/grants?customer=2234567890", headers=rig.auth(rig.specialist_token)
    ).get_json()
    assert (
        by_customer["authorised"] is False
        and "usual authority requirements apply" in by_customer["reason"]
    )


def test_grant_questions_fail_closed_when_the_store_is_down(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callflow.errors import StoreUnavailable

    caller, _ = rig.taken_over()
    assert rig.grant(caller)["authorised"]
    token_member = rig.svc.staff.authenticate(rig.specialist_token)

    def down(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("Redis unreachable")

    monkeypatch.setattr(rig.svc.staff, "authenticate", lambda token: token_member)
    monkeypatch.setattr(rig.svc.store, "get_doc", down)
    monkeypatch.setattr(rig.svc.store, "list_docs", down)
    for url in (f"/api/calls/{caller.sid}/grant", "/api/grants?customer=2234567890"):
        response = rig.api.get(url, headers=rig.auth(rig.specialist_token))
        assert response.status_code == 503 and response.get_json()["authorised"] is False


def test_an_unknown_call_has_no_authority(rig: Rig) -> None:
    response = rig.api.get(
        "/api/calls/CA" + "1" * 32 + "/grant", headers=rig.auth(rig.specialist_token)
    )
    assert response.get_json() == {"authorised": False, "reason": "unknown call"}


def test_duplicated_webhooks_and_callbacks_during_a_hand_off(rig: Rig) -> None:
    from callflow.simulator import Faults

    rig.sim.faults = Faults(duplicate_webhooks=True, duplicate_callbacks=True)
    caller, _ = rig.taken_over()
    rig.sim.advance(2)
    rig.sim.hang_up(caller)
    rig.sim.run()
    assert rig.sim.errors == []
    kinds = [k for k, _ in rig.kinds(caller)]
    assert kinds.count("handoff.sees_check") == 1 and kinds.count("grant.issued") == 1
    assert kinds.count("grant.ended") == 1


def test_callbacks_out_of_order_during_a_hand_off(rig: Rig) -> None:
    from callflow.simulator import Faults

    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting())
    # Status callbacks are held for 3 s and then delivered newest first.
    rig.sim.faults = Faults(reorder_callbacks=3)
    handoff = rig.request(caller).get_json()
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] in {"briefing", "failed"})
    assert rig.handoff(handoff["id"])["state"] == "briefing"
    rig.api.post(f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/complete", headers=rig.auth())
    rig.sim.advance(5)
    assert rig.grant(caller)["authorised"]
    rig.sim.hang_up(caller)
    rig.sim.run()
    assert not rig.grant(caller)["authorised"]
    kinds = [k for k, _ in rig.kinds(caller)]
    assert kinds.count("grant.issued") == 1 and kinds.count("grant.ended") == 1


def test_an_audit_write_failure_blocks_the_grant(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    from callflow.errors import StoreUnavailable

    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting())
    handoff = rig.request(caller).get_json()
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "briefing")
    real = rig.svc.store.append_audit

    def failing(entry: dict[str, Any], *args: Any, **kwargs: Any) -> str:
        if entry["kind"] == "grant.issued":
            raise StoreUnavailable("audit stream down")
        return real(entry, *args, **kwargs)

    monkeypatch.setattr(rig.svc.store, "append_audit", failing)
    response = rig.api.post(
        f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/complete", headers=rig.auth()
    )
    assert response.status_code == 503
    rig.sim.advance(2)
    assert (
        rig.handoff(handoff["id"])["state"] == "briefing"
        and rig.handoff(handoff["id"])["grant_id"] is None
    )
    assert rig.held(caller), "nothing was handed over"
    assert rig.svc.store.indexed("grants", "all") == []
    assert not rig.grant(caller)["authorised"]
    monkeypatch.setattr(rig.svc.store, "append_audit", real)
    retry = rig.api.post(
        f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/complete", headers=rig.auth()
    )
    assert retry.status_code == 200 and rig.grant(caller)["authorised"]
