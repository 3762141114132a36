"""Meetings as DMBM510150 has them: a purpose from the admin's list, held by an officer
of its lowest grade or above (quantify their books: Officer and above), and a risk
assessment recorded before any outdoor visit's call. On the service, the CLI, the API and
the console; both stores."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from callflow.cli.main import main
from callflow.clock import ManualClock
from callflow.errors import DirectoryError, FieldErrors
from callflow.meetings import held_back
from callflow.service import Callflow
from callflow.simulator import Callee, Simulator
from callflow.store import Store
from tests.conftest import cli_sign_in
from tests.rigs import csrf_from, sign_in
from tests.rigs.meetings import CUSTOMER, OFFICER, add_meeting, meeting_world
from webhooks import create_app

JUNIOR = "4471299"
PASSWORD = "correct horse battery"


@pytest.fixture
def world(store: Store, clock: ManualClock) -> tuple[Simulator, Callflow]:
    sim, service = meeting_world(store, clock.now())
    now = service.clock.now()
    service.staff.add_officer(OFFICER, "Alex Morgan", now, grade="O", by="tests")
    service.staff.add_officer(JUNIOR, "Jo Junior", now, grade="AO", by="tests")
    return sim, service


def books(service: Callflow, officer: str, **extra: Any) -> dict[str, Any]:
    return add_meeting(
        service, officer_number=officer, purpose="quantify_books", about="", **extra
    )


def test_quantifying_books_needs_an_officer_or_above(world: tuple[Simulator, Callflow]) -> None:
    _sim, service = world
    with pytest.raises(FieldErrors) as refused:
        books(service, JUNIOR)
    assert refused.value.errors["officer"] == (
        "Jo Junior is an Administrative Officer; a meeting for quantify books needs an "
        "Officer or above"
    )
    meeting = books(service, OFFICER)
    assert meeting["purpose_id"] == "quantify_books" and meeting["officer_grade"] == "O"
    assert meeting["purpose"] == "looking at your business books to work out your tax"
    # Any officer may hold the other purposes, a grade unrecorded too.
    service.staff.add_officer("4471300", "Ula Unrecorded", service.clock.now(), by="tests")
    assert add_meeting(service, officer_number=JUNIOR, purpose="time_to_pay", about="")
    assert add_meeting(service, officer_number="4471300", purpose="reconcile", about="")
    with pytest.raises(FieldErrors, match="record their grade first"):
        books(service, "4471300")
    # A promotion recorded by an admin lets them hold it.
    service.staff.set_officer_grade(JUNIOR, "HO", by="tests")
    assert books(service, JUNIOR)["officer_grade"] == "HO"


def test_a_purpose_must_be_on_the_list_and_the_admin_keeps_the_list(
    world: tuple[Simulator, Callflow],
) -> None:
    _sim, service = world
    with pytest.raises(FieldErrors) as refused:
        add_meeting(service, purpose="a chat", about="")
    assert refused.value.errors["purpose"].startswith("one of help_with_return, time_to_pay")
    with pytest.raises(FieldErrors, match="say what the meeting is about"):
        add_meeting(service, purpose="other", about="")
    purposes = service.meetings.purposes
    purposes.add("payment_plan", "setting up a payment plan", "HO", by="ada")
    with pytest.raises(FieldErrors, match="needs a Higher Officer or above"):
        add_meeting(service, purpose="payment_plan", about="")
    purposes.set_lowest_grade("payment_plan", "O", by="ada")
    assert add_meeting(service, purpose="payment_plan", about="")["purpose_id"] == "payment_plan"
    purposes.retire("payment_plan", by="ada")
    with pytest.raises(FieldErrors):
        add_meeting(service, purpose="payment_plan", about="")
    with pytest.raises(DirectoryError, match="grade: one of AA"):
        purposes.add("x_y", "words", "Boss", by="ada")
    kinds = [e["kind"] for e in service.audit.entries() if e["kind"].startswith("meeting.purpose")]
    assert kinds == ["meeting.purpose_added", "meeting.purpose_grade", "meeting.purpose_retired"]
    # A Welsh meeting's customer hears the purpose in Welsh.
    welsh = add_meeting(service, purpose="time_to_pay", about="", language="cy-GB")
    assert welsh["purpose"] == "amser i dalu'r hyn sydd arnoch"


def test_an_outdoor_meeting_waits_for_its_risk_assessment(
    world: tuple[Simulator, Callflow],
) -> None:
    sim, service = world
    meeting = add_meeting(service, place="customer_business", where="Unit 4, Mill Lane, Leeds")
    assert meeting["state"] == "needs_risk_assessment" and meeting["next_call_at"] is None
    assert service.meetings.due() == [], "held back: no call is due"
    with pytest.raises(DirectoryError, match="needs a risk assessment before the customer"):
        service.meetings.place_call(meeting["id"], service.links())
    assert "risk-assessment" in (held_back(meeting) or "")
    # An assessment dated after the visit, or one still to come, is refused.
    with pytest.raises(FieldErrors) as refused:
        service.meetings.record_risk_assessment(
            meeting["id"], assessor="Alex Morgan", assessed_on="2031-03-05",
            outcome="proceed", reference="RA-77", by="kim",
        )  # fmt: skip
    assert "must come before the visit (04 March 2031)" in refused.value.errors["date"]
    with pytest.raises(FieldErrors, match="outcome: one of"):
        service.meetings.record_risk_assessment(
            meeting["id"], assessor="Alex Morgan", assessed_on="2020-01-01",
            outcome="maybe", reference="RA-77", by="kim",
        )  # fmt: skip
    assessed = service.meetings.record_risk_assessment(
        meeting["id"], assessor="Alex Morgan", assessed_on="2020-01-01",
        outcome="proceed_with_precautions", reference="RA-77", by="kim",
    )  # fmt: skip
    assert assessed["state"] == "scheduled" and assessed["risk_assessment"]["reference"] == "RA-77"
    assert [m["id"] for m in service.meetings.due()] == [meeting["id"]]
    sim.add_callee(CUSTOMER, Callee("answered"))
    assert service.meetings.place_call(meeting["id"], service.links()).startswith("CA")
    entry = next(e for e in service.audit.entries() if e["kind"] == "meeting.risk_assessed")
    assert entry["outcome"] == "proceed_with_precautions" and entry["by"] == "kim"


def test_a_visit_judged_unsafe_is_never_called_and_an_office_needs_no_assessment(
    world: tuple[Simulator, Callflow],
) -> None:
    _sim, service = world
    home = add_meeting(service, place="customer_home", where="12 Oak Road, Leeds")
    unsafe = service.meetings.record_risk_assessment(
        home["id"], assessor="Alex Morgan", assessed_on="2020-01-01",
        outcome="do_not_visit", reference="RA-78", by="kim",
    )  # fmt: skip
    assert unsafe["state"] == "not_safe" and unsafe["next_call_at"] is None
    with pytest.raises(DirectoryError, match="not_safe, not scheduled"):
        service.meetings.place_call(home["id"], service.links())
    office = add_meeting(service)
    assert office["state"] == "scheduled"
    with pytest.raises(FieldErrors, match="no risk assessment is needed"):
        service.meetings.record_risk_assessment(
            office["id"], assessor="A", assessed_on="2020-01-01", outcome="proceed",
            reference="RA-1", by="kim",
        )  # fmt: skip


def test_the_cli_arranges_grades_and_assesses(
    world: tuple[Simulator, Callflow],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _sim, service = world
    monkeypatch.setattr("callflow.cli.common.service", lambda: service)
    cli_sign_in(monkeypatch, tmp_path, service, "admin")
    assert main(["officers", "add", "4471301", "--name", "Bo Newer", "--grade", "AA"]) == 0
    assert main(["meetings", "purposes", "list"]) == 0
    listed = capsys.readouterr().out
    assert "quantify_books     Officer" in listed
    args = [
        "meetings", "add", "--customer", "Pat Example", "--number", CUSTOMER,
        "--reference", "DM-9", "--officer", "4471301", "--purpose", "quantify_books",
        "--bring", "your books", "--when", "2031-03-04T14:00", "--place", "customer_business",
        "--where", "Unit 4, Mill Lane", "--date-of-birth", "1970-03-21",
    ]  # fmt: skip
    assert main(args) == 1
    assert "needs an Officer or above" in capsys.readouterr().err
    assert main(["officers", "set-grade", "4471301", "SO"]) == 0
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "it is not called yet: a visit to the customer's business address needs a risk" in out
    meeting_id = re.search(r"meeting (m-[0-9a-f]{12}) stored", out).group(1)  # type: ignore[union-attr]
    assert main(["meetings", "list"]) == 0
    assert "waits for a risk assessment" in capsys.readouterr().out
    assert main([
        "meetings", "risk-assessment", meeting_id, "--assessor", "Bo Newer",
        "--date", "2020-02-02", "--outcome", "proceed", "--reference", "RA-9",
    ]) == 0  # fmt: skip
    assert "risk assessment recorded; its call is due" in capsys.readouterr().out
    assert main(["meetings", "purposes", "set-grade", "quantify_books", "HO"]) == 0
    assert service.meetings.purposes.get("quantify_books")["lowest_grade"] == "HO"  # type: ignore[index]


def staffed(service: Callflow) -> None:
    """A specialist team with Kim in it, and Robin the VSTRS agent."""
    now = service.clock.now()
    service.staff.add_team("debt", "Debt Pursuit", "", ["+441632960200"], "Mon-Sun 00:00-24:00",
                           by="tests", nation="none")  # fmt: skip
    service.staff.add_specialist("300201", "Kim Specialist", "debt", "client:kim", now, by="tests")
    service.staff.add_agent("200001", "Robin Agent", "client:robin", now, by="tests")


def test_the_api_arranges_and_refuses_below_grade(world: tuple[Simulator, Callflow]) -> None:
    _sim, service = world
    staffed(service)
    token = service.staff.issue_token("specialist", "300201", "Kim Specialist", service.clock.now(), by="tests")
    admin_only = service.staff.issue_token("vstrs_agent", "200001", "Robin Agent", service.clock.now(), by="tests")
    api = create_app({"TESTING": True, "CALLFLOW_SERVICE": service}).test_client()
    body = {
        "customer_name": "Pat Example", "customer_number": CUSTOMER, "reference": "DM-1",
        "officer_number": JUNIOR, "purpose": "quantify_books", "bring": "your books",
        "when": "2031-03-04T14:00", "where": "Unit 4, Mill Lane", "place": "customer_home",
        "date_of_birth": "1970-03-21",
    }  # fmt: skip
    auth = {"Authorization": f"Bearer {token}"}
    assert api.post("/api/meetings", json=body, headers={
        "Authorization": f"Bearer {admin_only}"}).status_code == 403  # fmt: skip
    refused = api.post("/api/meetings", json=body, headers=auth)
    assert refused.status_code == 422
    assert "needs an Officer or above" in refused.get_json()["errors"]["officer"]
    missing = api.post("/api/meetings", json={"purpose": "reconcile"}, headers=auth)
    assert missing.status_code == 422 and missing.get_json()["errors"]["place"] == "required"
    made = api.post("/api/meetings", json={**body, "officer_number": OFFICER}, headers=auth)
    assert made.status_code == 201, made.get_json()
    meeting = made.get_json()
    assert meeting["state"] == "needs_risk_assessment" and "identity" not in meeting
    assert "needs a risk assessment" in meeting["held_back"]
    undated = {k: v for k, v in body.items() if k != "when"}
    open_time = api.post("/api/meetings", json={**undated, "officer_number": OFFICER,
                                                "reference": "DM-2"}, headers=auth)  # fmt: skip
    assert open_time.status_code == 201 and open_time.get_json()["when"] is None
    assert open_time.get_json()["time_agreed"] == "to be agreed on the call"
    clash = api.post("/api/meetings", json={**body, "officer_number": OFFICER}, headers=auth)
    assert "already has a meeting at" in clash.get_json()["errors"]["when"]
    url = f"/api/meetings/{meeting['id']}/risk-assessment"
    bad = api.post(url, json={"assessor": "Alex", "assessed_on": "2031-04-01",
                              "outcome": "proceed", "reference": "RA-1"}, headers=auth)  # fmt: skip
    assert bad.status_code == 422 and "before the visit" in bad.get_json()["errors"]["date"]
    good = api.post(url, json={"assessor": "Alex", "assessed_on": "2020-04-01",
                               "outcome": "proceed", "reference": "RA-1"}, headers=auth)  # fmt: skip
    assert good.status_code == 200 and good.get_json()["state"] == "scheduled"
    assert api.post("/api/meetings/m-000000000000/risk-assessment", json={},
                    headers=auth).status_code == 404  # fmt: skip
    listed = api.get("/api/meetings", headers=auth).get_json()["meetings"]
    assert [m["id"] for m in listed] == [meeting["id"]]


def test_the_console_arranges_with_error_summaries_and_records_the_assessment(
    world: tuple[Simulator, Callflow],
) -> None:
    _sim, service = world
    staffed(service)
    service.accounts.add("kim", "Kim Specialist", "specialist", PASSWORD, service.clock.now(),
                         by="tests", specialist="300201")  # fmt: skip
    client: FlaskClient = create_app({"TESTING": True, "CALLFLOW_SERVICE": service}).test_client()
    sign_in(client, "kim", PASSWORD)
    page = client.get("/console/meetings")
    assert page.status_code == 200 and b"Arrange a meeting" in page.data
    assert b"Jo Junior (Administrative Officer)" in page.data
    form = {
        "csrf_token": csrf_from(page.data), "customer_name": "Pat Example",
        "customer_number": CUSTOMER, "reference": "DM-1", "purpose": "quantify_books",
        "officer_number": JUNIOR, "bring": "your books", "when_day": "4", "when_month": "3",
        "when_year": "2031", "when_time": "14:00", "place": "customer_business",
        "where": "Unit 4, Mill Lane", "date_of_birth": "1970-03-21", "language": "en-GB",
    }  # fmt: skip
    refused = client.post("/console/meetings", data=form)
    assert refused.status_code == 422
    assert b"There is a problem" in refused.data and b'href="#arrange-officer_number"' in refused.data
    assert b"needs an Officer or above" in refused.data
    assert b'value="Unit 4, Mill Lane"' in refused.data, "nothing typed is lost"
    made = client.post("/console/meetings", data={**form, "officer_number": OFFICER})
    assert made.status_code == 303
    page = client.get(made.headers["Location"])
    assert b"waits for a risk assessment before the customer is called" in page.data
    meeting = service.meetings.all()[0]
    url = f"/console/meetings/{meeting['id']}/risk-assessment"
    risk = {"csrf_token": csrf_from(page.data), "assessor": "Alex Morgan", "assessed_day": "1",
            "assessed_month": "1", "assessed_year": "2020", "outcome": "proceed",
            "risk_reference": "RA-5"}  # fmt: skip
    late = client.post(url, data={**risk, "assessed_year": "2032"})
    assert late.status_code == 422 and f'href="#risk-{meeting["id"]}-assessed-day"'.encode() in late.data
    done = client.post(url, data=risk)
    assert done.status_code == 303
    assert service.meetings.require(meeting["id"])["state"] == "scheduled"
    assert client.post("/console/meetings/m-000000000000/risk-assessment", data=risk).status_code == 404
    # No date and time: the customer agrees one on the call; half a date is an error.
    undated = {**form, "officer_number": OFFICER, "place": "hmrc_office", "reference": "DM-2",
               "when_day": "", "when_month": "", "when_year": "", "when_time": ""}  # fmt: skip
    half = client.post("/console/meetings", data={**undated, "when_day": "4"})
    assert half.status_code == 422 and b'href="#arrange-when-day"' in half.data
    assert client.post("/console/meetings", data=undated).status_code == 303
    listed = client.get("/console/meetings").data
    assert b"To be agreed on the call" in listed and b"Set when arranged" in listed
    assert b'id="meetings-changed"' in listed and b"meetings.js" in listed
    clash = client.post("/console/meetings", data={**form, "officer_number": OFFICER,
                                                   "place": "hmrc_office", "when_time": "14:30"})
    assert clash.status_code == 422 and b"Alex Morgan already has a meeting at" in clash.data


def confirmed(sim: Simulator, service: Callflow, **extra: Any) -> dict[str, Any]:
    """A meeting whose customer confirmed it on the call."""
    meeting = add_meeting(service, **extra)
    sim.add_callee(CUSTOMER, Callee("answered"))
    call_sid = service.meetings.place_call(meeting["id"], service.links())
    return service.meetings.record_outcome(meeting["id"], call_sid, "confirmed")


def test_a_meeting_is_held_only_once_its_start_checks_are_recorded(
    world: tuple[Simulator, Callflow],
) -> None:
    sim, service = world
    meeting = confirmed(sim, service)
    at = datetime.fromisoformat(meeting["when"]).timestamp()
    with pytest.raises(FieldErrors, match="its checks are recorded as it begins"):
        service.meetings.record_start_checks(meeting["id"], passed=True, how="console", by="kim")
    service.clock.set(at - 600)  # ten minutes before: the officer is at the door
    held = service.meetings.record_start_checks(
        meeting["id"], passed=True, how="console", by="kim", note="card shown"
    )
    assert held["state"] == "held" and held["start_checks"]["passed"] is True
    with pytest.raises(FieldErrors, match="it is held: only a meeting the customer confirmed"):
        service.meetings.record_start_checks(meeting["id"], passed=False, how="console", by="kim")
    other = confirmed(sim, service, when="2031-03-04T15:00")  # 14:30 would overlap
    service.clock.set(datetime.fromisoformat(other["when"]).timestamp())
    failed = service.meetings.record_start_checks(other["id"], passed=False, how="phone", by="4471203")
    assert failed["state"] == "not_verified" and failed["outcome"] == "not_verified"
    kinds = [e["kind"] for e in service.audit.entries() if e["kind"] in {
        "meeting.started", "meeting.not_verified"}]  # fmt: skip
    assert kinds == ["meeting.started", "meeting.not_verified"]
    # Never started: it cannot be held by any other path.
    unconfirmed = add_meeting(service, when="2031-03-04T16:00")
    with pytest.raises(FieldErrors, match="it is scheduled"):
        service.meetings.record_start_checks(unconfirmed["id"], passed=True, how="cli", by="kim")


def test_the_start_checks_on_the_cli_the_api_and_the_console(
    world: tuple[Simulator, Callflow], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    sim, service = world
    staffed(service)
    by_cli = confirmed(sim, service, when="2031-03-04T14:00")
    by_api = confirmed(sim, service, when="2031-03-04T15:00")
    by_console = confirmed(sim, service, when="2031-03-04T16:00")
    service.clock.set(datetime.fromisoformat(by_cli["when"]).timestamp())
    monkeypatch.setattr("callflow.cli.common.service", lambda: service)
    cli_sign_in(monkeypatch, tmp_path, service, "admin")
    assert main(["meetings", "start", by_cli["id"], "--checks", "passed"]) == 0
    assert "checks passed; the meeting is held" in capsys.readouterr().out
    token = service.staff.issue_token(
        "specialist", "300201", "Kim Specialist", service.clock.now(), by="tests"
    )
    api = create_app({"TESTING": True, "CALLFLOW_SERVICE": service}).test_client()
    auth = {"Authorization": f"Bearer {token}"}
    url = f"/api/meetings/{by_api['id']}/start"
    service.clock.set(datetime.fromisoformat(by_api["when"]).timestamp())
    assert api.post(url, json={"checks": "maybe"}, headers=auth).status_code == 422
    answer = api.post(url, json={"checks": "failed"}, headers=auth)
    assert answer.status_code == 200 and answer.get_json()["state"] == "not_verified"
    service.accounts.add("kim", "Kim Specialist", "specialist", PASSWORD, service.clock.now(),
                         by="tests", specialist="300201")  # fmt: skip
    service.clock.set(datetime.fromisoformat(by_console["when"]).timestamp())
    client = create_app({"TESTING": True, "CALLFLOW_SERVICE": service}).test_client()
    sign_in(client, "kim", PASSWORD)
    page = client.get("/console/meetings")
    assert b"Start the meeting with Pat Example" in page.data
    start = f"/console/meetings/{by_console['id']}/start"
    unanswered = client.post(start, data={"csrf_token": csrf_from(page.data)})
    assert unanswered.status_code == 422
    assert f'href="#start-{by_console["id"]}-checks"'.encode() in unanswered.data
    done = client.post(start, data={"csrf_token": csrf_from(page.data), "checks": "passed"})
    assert done.status_code == 303
    assert service.meetings.require(by_console["id"])["state"] == "held"
