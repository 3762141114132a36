"""Least privilege: every endpoint, page and event stream tried with every role, and with
the right role on someone else's call or team. Each answer carries only what that person
needs (ARCHITECTURE.md rule 9; docs/api.md, "Who sees what")."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from callflow.clock import ManualClock
from callflow.desks.admin import SECTIONS
from callflow.simulator import Leg
from callflow.store import Store
from tests.rigs import AGENT, CUSTOMER, INS, KIM, LEE, PASSWORD, Rig, sign_in
from webhooks.console import base as console

OTHER_AGENT = "200002"
NINO_OR_UTR = CUSTOMER["reference"]
#: Fields that identify the customer, the adviser or the agent: what a grant must not carry
#: back to anyone who is not disclosing under it.
IDENTIFYING = {"customer", "adviser", "organisation_name", "agent_sees_id", "matter"}


class World:
    """A call handed off to Debt Pursuit and taken over by Kim, a second call with the
    agent, and a token and a console account for every role and relationship: Kim (who took
    it), Lee (her colleague in the team), Ian (another team)."""

    def __init__(self, store: Store, clock: ManualClock) -> None:
        self.rig = Rig(store, clock)
        svc = self.rig.svc
        now = clock.now()
        self.tokens = self.rig.tokens_for_everyone()
        accounts = {
            "agent": ("alex", "vstrs_agent", {"sees_id": AGENT}),
            "other_agent": ("olly", "vstrs_agent", {"sees_id": OTHER_AGENT}),
            "specialist": ("kim", "specialist", {"specialist": KIM}),
            "colleague": ("lee", "specialist", {"specialist": LEE}),
            "other_team": ("ian", "specialist", {"specialist": INS}),
            "designer": ("dana", "designer", {}),
            "auditor": ("audrey", "auditor", {}),
            "admin": ("adam", "admin", {}),
        }
        self.consoles: dict[str, FlaskClient] = {}
        for who, (username, role, extra) in accounts.items():
            svc.accounts.add(username, who, role, PASSWORD, now, by="tests", **extra)
            browser = self.rig.api.application.test_client()
            sign_in(browser, username)
            self.consoles[who] = browser
        self.handed_off, self.handoff = self.rig.taken_over()

    def api(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.rig.api.open(path, method=method, headers=headers, **kwargs)


@pytest.fixture
def world(store: Store, clock: ManualClock) -> World:
    return World(store, clock)


API_ROLES = ["agent", "other_agent", "specialist", "colleague", "other_team", "admin"]


def test_every_api_endpoint_answers_only_those_it_serves(world: World) -> None:
    sid, hid = world.handed_off.sid, world.handoff["id"]
    #: (method, path, body) -> who gets which status
    expected: dict[tuple[str, str, str], dict[str, int]] = {
        ("GET", "/api/me", ""): dict.fromkeys(API_ROLES, 200),
        ("PUT", "/api/agents/me/availability", '{"status": "available"}'): {
            "agent": 200, "other_agent": 200, "specialist": 403, "colleague": 403,
            "other_team": 403, "admin": 403,
        },
        ("PUT", "/api/specialists/me/availability", '{"status": "available"}'): {
            "agent": 403, "other_agent": 403, "specialist": 200, "colleague": 200,
            "other_team": 200, "admin": 403,
        },
        ("GET", "/api/agents", ""): {
            "agent": 200, "other_agent": 200, "specialist": 403, "colleague": 403,
            "other_team": 403, "admin": 200,
        },
        ("GET", "/api/teams", ""): {
            "agent": 200, "other_agent": 200, "specialist": 403, "colleague": 403,
            "other_team": 403, "admin": 200,
        },
        ("GET", f"/api/calls/{sid}", ""): {
            "agent": 200, "other_agent": 403, "specialist": 403, "colleague": 403,
            "other_team": 403, "admin": 200,
        },
        ("GET", f"/api/calls/{sid}/handoffs/{hid}", ""): {
            "agent": 200, "other_agent": 403, "specialist": 200, "colleague": 200,
            "other_team": 403, "admin": 200,
        },
        ("DELETE", f"/api/calls/{sid}/handoffs/{hid}", ""): {
            "agent": 409, "other_agent": 403, "specialist": 403, "colleague": 403,
            "other_team": 403, "admin": 403,
        },
        ("POST", f"/api/calls/{sid}/handoffs/{hid}/complete", ""): {
            "agent": 409, "other_agent": 403, "specialist": 403, "colleague": 403,
            "other_team": 403, "admin": 403,
        },
        ("POST", f"/api/calls/{sid}/handoffs/{hid}/take", ""): {
            "agent": 403, "other_agent": 403, "specialist": 200, "colleague": 409,
            "other_team": 403, "admin": 403,
        },
        ("GET", f"/api/calls/{sid}/grant", ""): {
            "agent": 200, "other_agent": 403, "specialist": 200, "colleague": 403,
            "other_team": 403, "admin": 200,
        },
        ("GET", f"/api/grants?customer={NINO_OR_UTR}", ""): {
            "agent": 403, "other_agent": 403, "specialist": 200, "colleague": 200,
            "other_team": 200, "admin": 200,
        },
        ("PUT", f"/api/calls/{sid}/draft", '{"issue": "noted"}'): {
            "agent": 200, "other_agent": 403, "specialist": 403, "colleague": 403,
            "other_team": 403, "admin": 403,
        },
        ("POST", f"/api/calls/{sid}/outcome", '{"outcome": "handed_off"}'): {
            "agent": 200, "other_agent": 403, "specialist": 403, "colleague": 403,
            "other_team": 403, "admin": 403,
        },
        ("GET", "/api/stats/handoffs", ""): dict.fromkeys(API_ROLES, 200),
    }  # fmt: skip
    seen: dict[tuple[str, str, str], dict[str, int]] = {}
    for method, path, body in expected:
        for who in API_ROLES:
            kwargs = {"json": json.loads(body)} if body else {}
            seen.setdefault((method, path, body), {})[who] = world.api(
                who, method, path, **kwargs
            ).status_code
    assert seen == expected
    # Posting a hand-off: only the agent on a call that is with them now.
    with_agent = world.rig.caller_with_agent("+441632960002")
    for who, status in {"other_agent": 409, "specialist": 403, "admin": 403}.items():
        answer = world.api(who, "POST", f"/api/calls/{with_agent.sid}/handoffs", json={})
        assert answer.status_code in {status, 422, 403}, (who, answer.get_json())
        assert answer.status_code != 201
    refused = world.rig.request(with_agent, world.tokens["other_agent"])
    assert refused.status_code == 403


def test_each_grant_answer_carries_only_what_its_asker_needs(world: World) -> None:
    sid = world.handed_off.sid
    team = world.api("specialist", "GET", f"/api/calls/{sid}/grant").get_json()
    assert team["authorised"] and team["grant"]["customer"]["reference"] == NINO_OR_UTR
    assert team["grant"]["specialist"]["id"] == KIM and team["grant"]["matter"]
    admin = world.api("admin", "GET", f"/api/calls/{sid}/grant").get_json()
    assert admin["grant"]["customer"]["name"] == CUSTOMER["name"]
    agent = world.api("agent", "GET", f"/api/calls/{sid}/grant").get_json()
    assert agent["authorised"] and agent["to"]["team"] == "debt_pursuit"
    assert not IDENTIFYING & set(agent["grant"]), agent["grant"]
    # By customer: a specialist hears only of the grants they hold, with nothing identifying.
    path = f"/api/grants?customer={NINO_OR_UTR}"
    mine = world.api("specialist", "GET", path).get_json()
    assert mine["authorised"] is True and len(mine["grants"]) == 1
    assert not IDENTIFYING & set(mine["grants"][0]["grant"])
    assert NINO_OR_UTR not in json.dumps(mine) and CUSTOMER["name"] not in json.dumps(mine)
    for who in ("colleague", "other_team"):
        theirs = world.api(who, "GET", path).get_json()
        assert theirs["authorised"] is False and theirs["grants"] == [], who
        assert "Alex" not in json.dumps(theirs) and NINO_OR_UTR not in json.dumps(theirs)
    everyone = world.api("admin", "GET", path).get_json()
    assert everyone["authorised"] and everyone["grants"][0]["grant"]["customer"]


def test_hand_off_cards_read_the_same_in_the_api_and_the_console(world: World) -> None:
    sid, hid = world.handed_off.sid, world.handoff["id"]
    api_card = world.api("specialist", "GET", f"/api/calls/{sid}/handoffs/{hid}").get_json()
    console_card = world.consoles["specialist"].get("/console/specialist/state").get_json()
    assert console_card["handoff"] == api_card
    for hidden in ("numbers", "agent_call_sid", "conference", "conference_sid", "tried"):
        assert hidden not in api_card
    agent_card = world.api("agent", "GET", f"/api/calls/{sid}/handoffs/{hid}").get_json()
    assert "agent_name" not in agent_card and "grant_id" not in agent_card
    assert agent_card["customer"] == api_card["customer"]


def test_no_contact_details_without_consent_to_act_anywhere(world: World) -> None:
    doc = world.rig.svc.handoffs.get(world.handoff["id"])
    assert doc is not None and doc["consent_to_act"], "the enrolled adviser consents"
    world.rig.svc.store.update_doc(
        "handoffs",
        doc["id"],
        lambda d: {**d, "consent_to_act": False} if d else None,
    )
    sid, hid = world.handed_off.sid, world.handoff["id"]
    card = world.api("specialist", "GET", f"/api/calls/{sid}/handoffs/{hid}").get_json()
    assert set(card["adviser"]) == {"name", "adviser_number"}
    state = world.consoles["specialist"].get("/console/specialist/state").get_json()
    assert set(state["handoff"]["adviser"]) == {"name", "adviser_number"}


CONSOLE_ROLES = [
    "agent", "other_agent", "specialist", "colleague", "other_team", "designer", "auditor",
    "admin",
]  # fmt: skip


def test_every_console_page_answers_only_its_roles(world: World) -> None:
    expected = {
        "/console/agent": {"agent", "other_agent"},
        "/console/agent/state": {"agent", "other_agent"},
        "/console/specialist": {"specialist", "colleague", "other_team"},
        "/console/specialist/state": {"specialist", "colleague", "other_team"},
        "/console/meetings": {"specialist", "colleague", "other_team", "admin"},
        "/console/designer": {"designer", "admin"},
        "/console/designer/flow/vstrs_inbound": {"designer", "admin"},
        "/console/auditor": {"auditor", "admin"},
        "/console/auditor/audit.csv": {"auditor", "admin"},
        **{
            path: {"admin"}
            for path in ["/console/admin"]
            + [f"/console/admin/{section}" for section in SECTIONS]
        },
    }
    for path, allowed in expected.items():
        for who in CONSOLE_ROLES:
            status = world.consoles[who].get(path).status_code
            assert status == (200 if who in allowed else 403), (path, who, status)


def test_each_desk_shows_only_its_own_calls_and_team(world: World) -> None:
    sid = world.handed_off.sid
    mine = world.consoles["agent"].get("/console/agent/state").get_json()
    assert [row["call_sid"] for row in mine["history"]] == [sid]
    other = world.consoles["other_agent"].get("/console/agent/state").get_json()
    assert other["history"] == [] and other["call"] is None and other["handoff"] is None
    kim = world.consoles["specialist"].get("/console/specialist/state").get_json()
    assert kim["handoff"]["customer"]["name"] == CUSTOMER["name"] and kim["grant"]["authorised"]
    assert kim["banner"]["kind"] == "active" and CUSTOMER["name"] in kim["banner"]["text"]
    lee = world.consoles["colleague"].get("/console/specialist/state").get_json()
    assert lee["handoff"] is None and lee["grant"] is None and lee["banner"]["kind"] == "none"
    (row,) = lee["team"]
    assert row["taken_by"] == "Kim Specialist" and not row["can_take"] and not row["mine"]
    assert CUSTOMER["name"] not in json.dumps(lee) and NINO_OR_UTR not in json.dumps(lee)
    elsewhere = world.consoles["other_team"].get("/console/specialist/state").get_json()
    assert elsewhere["handoff"] is None and elsewhere["grant"] is None and elsewhere["team"] == []


def test_the_event_stream_carries_each_person_only_their_own_changes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "STREAM_SECONDS", 1.0)
    sid = world.handed_off.sid
    changes: dict[str, set[str]] = {}
    for who in CONSOLE_ROLES:
        text = (
            world.consoles[who].get("/console/events", headers={"Last-Event-ID": "0"}).get_data(
                as_text=True
            )
        )
        notes = [
            json.loads(line[6:])
            for line in text.splitlines()
            if line.startswith("data: ")
        ]
        changes[who] = {n["call_sid"] for n in notes if n.get("call_sid")}
        for note in notes:
            assert set(note) <= {"kind", "call_sid", "handoff", "outcome", "at"}
        assert not re.search(r"CustomerName|Pat Customer|" + NINO_OR_UTR, text)
    assert sid in changes["agent"] and sid in changes["specialist"] and sid in changes["admin"]
    # A colleague's console hears of the team's changes (to redraw the team view), never
    # with more than the kind, call and outcome.
    assert sid in changes["colleague"]
    for who in ("other_agent", "other_team", "designer", "auditor"):
        assert sid not in changes[who], who


def test_someone_elses_call_is_not_theirs_to_hand_off_cancel_or_complete(
    world: World, clock: ManualClock
) -> None:
    caller: Leg = world.rig.caller_with_agent("+441632960003")
    handoff = world.rig.request(caller).get_json()
    path = f"/api/calls/{caller.sid}/handoffs/{handoff['id']}"
    assert world.api("other_agent", "DELETE", path).status_code == 403
    assert world.api("other_agent", "POST", f"{path}/complete").status_code == 403
    assert world.api("other_team", "GET", path).status_code == 403
    assert world.api("agent", "DELETE", path).status_code == 200
