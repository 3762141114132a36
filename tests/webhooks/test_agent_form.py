"""The agent's hand-off form: one call's form, dates as day, month and year, UTR check
digits, a failed hand-off kept with a retry that only its agent may use, and the editor's
lint for designers only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from callflow.clock import ManualClock
from callflow.store import Store
from tests.rigs import AGENT, PASSWORD, TEAM_FIRST, TEAM_SECOND, Rig, accepting, sign_in
from webhooks.console.agent import authorisation_date


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    made = Rig(store, clock)
    now = clock.now()
    made.svc.accounts.add(
        "alex", "Alex Agent", "vstrs_agent", PASSWORD, now, sees_id=AGENT, by="tests"
    )
    made.svc.accounts.add(
        "olly", "Other Agent", "vstrs_agent", PASSWORD, now, sees_id="200002", by="tests"
    )
    made.svc.accounts.add("dana", "Dana Designer", "designer", PASSWORD, now, by="tests")
    return made


def browser(rig: Rig, username: str) -> FlaskClient:
    client = rig.api.application.test_client()
    sign_in(client, username)
    return client


def csrf(page: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found
    return found.group(1)


def form(call_sid: str, token: str, **changes: str) -> dict[str, str]:
    values = {
        "csrf_token": token,
        "call_sid": call_sid,
        "team": "debt_pursuit",
        "customer_name": "Pat Example",
        "reference": "2234567890",
        "issue": "Time to pay",
        "need": "time_to_pay",
        "auth_type": "signed",
        "auth_day": "1",
        "auth_month": "11",
        "auth_year": "2026",
        "auth_reference": "TA-1",
        "turnaround": "2 working days",
    }
    return {**values, **changes}


def test_the_date_is_typed_as_day_month_and_year() -> None:
    assert authorisation_date({"auth_day": "1", "auth_month": "11", "auth_year": "2026"}) == (
        "2026-11-01",
        "",
    )
    assert "include a month" in authorisation_date({"auth_day": "1", "auth_year": "2026"})[1]
    assert (
        "real date"
        in authorisation_date({"auth_day": "31", "auth_month": "2", "auth_year": "2026"})[1]
    )
    assert (
        "real date"
        in authorisation_date({"auth_day": "1", "auth_month": "11", "auth_year": "26"})[1]
    )
    assert authorisation_date({})[1].startswith("Enter the date")


def test_the_form_opens_with_a_call_and_is_for_that_call(rig: Rig) -> None:
    agent = browser(rig, "alex")
    idle = agent.get("/console/agent").get_data(as_text=True)
    assert (
        'id="handoff-fields" disabled' in idle
        and 'name="call_sid" id="form-call-sid" value=""' in idle
    )
    caller = rig.caller_with_agent()
    page = agent.get("/console/agent").get_data(as_text=True)
    assert f'value="{caller.sid}"' in page and 'id="handoff-fields" disabled' not in page
    # A form filled in before this call (or for an earlier one) is refused and cleared.
    stale = agent.post("/console/agent/handoff", data=form("CA" + "0" * 32, csrf(page)))
    assert stale.status_code == 409
    text = stale.get_data(as_text=True)
    assert "That form was for an earlier call" in text and "Pat Example" not in text
    assert rig.svc.vstrs.get(caller.sid)["handoffs"] == []


def test_a_refused_form_says_what_is_wrong_in_the_design_systems_words(rig: Rig) -> None:
    agent = browser(rig, "alex")
    caller = rig.caller_with_agent()
    token = csrf(agent.get("/console/agent").get_data(as_text=True))
    refused = agent.post(
        "/console/agent/handoff",
        data=form(caller.sid, token, reference="1234567890", auth_month="", customer_name=""),
    )
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "<title>Error: " in text and "There is a problem" in text
    assert 'href="#reference"' in text and "check digit does not match" in text
    assert 'href="#auth-date-day"' in text and "must include a month" in text
    assert 'href="#customer_name"' in text and "Enter the customer&#39;s name" in text
    assert 'value="1234567890"' in text and 'value="TA-1"' in text, "what was typed is kept"


def test_a_failed_hand_off_is_kept_and_only_its_agent_may_retry_it(rig: Rig) -> None:
    agent = browser(rig, "alex")
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting(), outcome="no-answer")
    rig.specialist(TEAM_SECOND, accepting(), outcome="no-answer")
    token = csrf(agent.get("/console/agent").get_data(as_text=True))
    sent = agent.post("/console/agent/handoff", data=form(caller.sid, token))
    assert sent.status_code == 303
    (handoff_id,) = rig.svc.vstrs.get(caller.sid)["handoffs"]
    assert rig.sim.run_until(lambda: rig.svc.handoffs.get(handoff_id)["state"] == "failed")
    page = agent.get("/console/agent").get_data(as_text=True)
    assert 'value="Pat Example"' in page and 'value="2234567890"' in page
    assert 'name="auth_day" type="text" inputmode="numeric" autocomplete="off" value="1"' in page

    other = browser(rig, "olly")
    other_token = csrf(other.get("/console/agent").get_data(as_text=True))
    refused = other.post(
        f"/console/agent/handoff/{handoff_id}/retry", data={"csrf_token": other_token}
    )
    assert refused.status_code == 404

    rig.specialist(TEAM_FIRST, accepting())
    again = agent.post(f"/console/agent/handoff/{handoff_id}/retry", data={"csrf_token": token})
    assert again.status_code == 303
    handoffs = rig.svc.vstrs.get(caller.sid)["handoffs"]
    assert len(handoffs) == 2
    retried = rig.svc.handoffs.get(handoffs[-1])
    assert (
        retried["customer"]["reference"] == "2234567890"
        and retried["authorisation"]["date"] == "2026-11-01"
    )
    # Only a hand-off that did not happen may be tried again.
    twice = agent.post(f"/console/agent/handoff/{handoffs[-1]}/retry", data={"csrf_token": token})
    assert twice.status_code == 409


def test_the_editors_lint_is_for_designers(rig: Rig) -> None:
    designer = browser(rig, "dana")
    token = csrf(designer.get("/console/designer").get_data(as_text=True))
    headers = {"X-CSRF-Token": token}
    answer: Any = designer.post(
        "/console/designer/lint",
        json={
            "name": "officer_check",
            "source": "flow: officer_check\ninitial: nowhere\nstates: {}\n",
        },
        headers=headers,
    )
    assert answer.status_code == 200
    problems = answer.get_json()["problems"]
    assert problems and all(p["file"] == "officer_check.yaml" and p["line"] >= 1 for p in problems)
    assert (
        designer.post("/console/designer/lint", json={"source": 3}, headers=headers).status_code
        == 400
    )
    agent = browser(rig, "alex")
    agent_token = csrf(agent.get("/console/agent").get_data(as_text=True))
    assert (
        agent.post(
            "/console/designer/lint", json={"source": "x"}, headers={"X-CSRF-Token": agent_token}
        ).status_code
        == 403
    )


def test_a_new_flow_that_does_not_parse_is_refused_naming_a_file(rig: Rig) -> None:
    designer = browser(rig, "dana")
    token = csrf(designer.get("/console/designer").get_data(as_text=True))
    refused = designer.post(
        "/console/designer/new",
        data={"csrf_token": token, "source": "flow: [broken\n", "tests": "", "message": "x"},
    )
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "new-flow.yaml:" in text and ">.yaml:" not in text and " .yaml:" not in text
