"""The auditor's page: charts of a period, CSV export, a printable report, assurance cases."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from callflow.clock import ManualClock
from callflow.store import Store
from tests.rigs import KIM, PASSWORD, Rig, csrf_from, sign_in


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    return Rig(store, clock)


@pytest.fixture
def audited(rig: Rig) -> Rig:
    rig.svc.accounts.add("ada", "Ada Auditor", "auditor", PASSWORD, rig.svc.clock.now(), by="tests")
    caller, _ = rig.taken_over()
    rig.sim.hang_up(caller)
    rig.sim.run()
    return rig


def today(rig: Rig) -> str:
    return datetime.fromtimestamp(rig.svc.clock.now(), UTC).date().isoformat()


def test_the_auditor_sees_charts_of_the_period(audited: Rig) -> None:
    sign_in(audited.api, "ada")
    page = audited.api.get("/console/auditor")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" role="img"') == 8
    for title in (
        "Verifications per day, by outcome",
        "Lockouts per day",
        "Hand-offs per week, by organisation",
        "Hand-offs per week, by team",
        "Hand-off share of verified calls",
        "Grant durations",
        "Assurance results",
    ):
        assert title in html
    assert re.search(r"<title>verified, \d{1,2} [A-Z][a-z]{2}: 1</title>", html), "days as 6 Dec"
    assert "Day (UTC)" in html and "Week beginning" in html, "axes are titled"
    assert "Tax Aid" in html and "<script" not in html.split("<main")[1].split("</main>")[0]


def test_csv_export_and_printable_report(audited: Rig) -> None:
    sign_in(audited.api, "ada")
    day = today(audited)
    export = audited.api.get(f"/console/auditor/audit.csv?from={day}&to={day}")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    lines = export.get_data(as_text=True).splitlines()
    assert lines[0].startswith("id,at,kind,call_sid,outcome") and any(
        "grant.issued" in line for line in lines
    )
    only_top = audited.api.get(f"/console/auditor/audit.csv?from={day}&to={day}&org=top").get_data(
        as_text=True
    )
    assert len(only_top.splitlines()) == 1, "nothing from TOP in this period"
    report = audited.api.get(f"/console/auditor/report?from={day}&to={day}&org=taxaid")
    assert (
        report.status_code == 200
        and b"VSTRS report: Tax Aid" in report.data
        and b'data-module="govuk-details" open>' in report.data
    )
    assert audited.api.get("/console/auditor?from=yesterday").status_code == 400


def test_the_auditor_moves_cases_on(audited: Rig) -> None:
    from datetime import date

    audited.svc.assurance.sample("taxaid", date(2000, 1, 1), date(2100, 1, 1), 5, seed=1, by="ada")
    sign_in(audited.api, "ada")
    page = audited.api.get("/console/auditor")
    case = audited.svc.assurance.cases("taxaid")[0]
    assert case["id"].encode() in page.data
    token = csrf_from(page.data)
    assert (
        audited.api.post(
            f"/console/auditor/case/{case['id']}",
            data={"state": "evidence_seen", "csrf_token": token},
        ).status_code
        == 303
    )
    assert (
        audited.api.post(
            f"/console/auditor/case/{case['id']}", data={"state": "closed", "csrf_token": token}
        ).status_code
        == 303
    )
    assert audited.svc.assurance.cases("taxaid")[0]["outcome"] == "passed"
    again = audited.api.post(
        f"/console/auditor/case/{case['id']}", data={"state": "closed", "csrf_token": token}
    )
    assert again.status_code == 303, "a case already closed: said on the page, nothing changed"
    assert "Nothing was changed" in audited.api.get(again.headers["Location"]).get_data(as_text=True)
    assert (
        audited.api.post(
            f"/console/auditor/case/{case['id']}", data={"state": "closed"}
        ).status_code
        == 403
    )
    kinds = [
        (e["kind"], e["by"]) for e in audited.svc.audit.entries() if e.get("case") == case["id"]
    ]
    assert kinds[-2:] == [("assurance.updated", "ada"), ("assurance.updated", "ada")]


def test_only_auditors_and_admins(audited: Rig) -> None:
    audited.svc.accounts.add(
        "sam",
        "Sam Specialist",
        "specialist",
        PASSWORD,
        audited.svc.clock.now(),
        specialist=KIM,
        by="tests",
    )
    sign_in(audited.api, "sam")
    assert audited.api.get("/console/auditor").status_code == 403
    assert audited.api.get("/console/auditor/audit.csv").status_code == 403
