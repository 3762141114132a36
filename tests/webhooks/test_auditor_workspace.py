"""The auditor's workspace in the browser: the audit log (filters from indexes, pages,
links to traces), the chain verified on demand, assurance samples drawn and recorded, and
every bad input answered with a GOV.UK error summary. Both stores."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from callflow.clock import ManualClock
from callflow.simulator import Leg, Script
from callflow.store import Store
from tests.conftest import ADVISER, PIN
from tests.rigs import PASSWORD, VSTRS, Rig, accepting, csrf_from, sign_in

PEOPLE = {
    "amy": ("auditor", {}),
    "ada": ("admin", {}),
    "sue": ("supervisor", {}),
    "dana": ("designer", {}),
    "alex": ("vstrs_agent", {"sees_id": "200001"}),
    "kim": ("specialist", {"specialist": "300101"}),
}


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    rig = Rig(store, clock)
    for username, (role, extra) in PEOPLE.items():
        rig.svc.accounts.add(username, username.title(), role, PASSWORD, clock.now(), by="tests", **extra)
    return rig


def browser(rig: Rig, username: str) -> FlaskClient:
    client = rig.app.test_client()
    assert sign_in(client, username).status_code == 303
    return client


def day_fields(rig: Rig, prefix: str, days_ago: int = 0) -> dict[str, str]:
    day = datetime.fromtimestamp(rig.svc.clock.now() - days_ago * 86400, UTC)
    return {f"{prefix}_day": str(day.day), f"{prefix}_month": str(day.month), f"{prefix}_year": str(day.year)}


def wrong_pin(rig: Rig) -> Leg:
    caller = rig.sim.call(VSTRS, "+441632960055", Script().press(f"{ADVISER}#").press("000000#").hang_up())
    rig.sim.run_until(lambda: not caller.live, 120)
    return caller


def ids_in(html: str) -> list[str]:
    return re.findall(r"No\. (\d+)", html)


def test_the_log_filters_by_kind_organisation_adviser_and_call(rig: Rig) -> None:
    caller, _handoff = rig.taken_over(accepting())
    bad = wrong_pin(rig)
    amy = browser(rig, "amy")
    page = amy.get("/console/auditor/log")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "verification.pin" in html and "handoff.requested" in html
    assert 'option value="verification.pin"' in html, "the kinds written so far are offered"
    kinds = amy.get("/console/auditor/log?kind=verification.pin").get_data(as_text=True)
    assert set(re.findall(r"<code>([a-z_]+\.[a-z_]+)</code>", kinds)) == {"verification.pin"}
    assert "2 entries match" in kinds
    # A CallSid typed in lower case finds that call's entries, each linking to its trace.
    one = amy.get(f"/console/auditor/log?call={bad.sid.lower()}").get_data(as_text=True)
    assert bad.sid in one and caller.sid not in one
    assert f'href="/console/calls/{bad.sid}"' in one
    by_adviser = amy.get(f"/console/auditor/log?adviser={ADVISER}").get_data(as_text=True)
    assert bad.sid in by_adviser and caller.sid in by_adviser
    both = amy.get("/console/auditor/log?kind=verification.pin&org=taxaid").get_data(as_text=True)
    assert set(re.findall(r"<code>([a-z_]+\.[a-z_]+)</code>", both)) == {"verification.pin"}
    none = amy.get("/console/auditor/log?kind=verification.pin&org=top").get_data(as_text=True)
    assert "No entries match." in none
    # Entries never show a secret.
    assert PIN not in html and "000000" not in html


def test_the_log_pages_newest_first_without_gaps_or_repeats(rig: Rig) -> None:
    now = rig.svc.clock.now()
    for n in range(120):
        rig.svc.staff.add_officer(f"44{n:05d}", f"Officer {n}", now, by="tests")
        rig.sim.advance(1)
    amy = browser(rig, "amy")
    seen: list[str] = []
    url = "/console/auditor/log?kind=staff.officer_added"
    pages = 0
    while url:
        html = amy.get(url).get_data(as_text=True)
        pages += 1
        seen += [str(int(n)) for n in re.findall(r"officer: 44(\d{5})", html)]
        older = re.search(r'href="([^"]+)" rel="next"', html)
        url = older.group(1).replace("&amp;", "&") if older else ""
    assert pages == 3 and seen == [str(n) for n in range(119, -1, -1)], "newest first, each once"
    last = amy.get("/console/auditor/log?kind=staff.officer_added").get_data(as_text=True)
    older = re.search(r'href="([^"]+)" rel="next"', last).group(1).replace("&amp;", "&")
    second = amy.get(older).get_data(as_text=True)
    newer = re.search(r'href="([^"]+)" rel="prev"', second).group(1).replace("&amp;", "&")
    back = amy.get(newer).get_data(as_text=True)
    assert re.findall(r"officer: (\d+)", back) == re.findall(r"officer: (\d+)", last)
    assert 'rel="prev"' not in back, "the first page has no newer page"


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("kind=nothing.like.this", "kind", "Choose a kind of entry from the list"),
        ("org=nowhere", "org", "Choose one of the four organisations"),
        ("adviser=12", "adviser", "An adviser number is 4 to 10 digits"),
        ("call=CA12", "call", "A CallSid is CA followed by 32 letters and digits"),
        ("from_day=30&from_month=2&from_year=2026", "from", "must be a real date"),
        ("to_day=1&to_year=2026", "to", "must include a month"),
        (
            "from_day=7&from_month=12&from_year=2026&to_day=1&to_month=12&to_year=2026",
            "to",
            "must be the same as or after its start",
        ),
    ],
)
def test_bad_filters_get_a_govuk_error_summary(rig: Rig, query: str, field: str, message: str) -> None:
    page = browser(rig, "amy").get(f"/console/auditor/log?{query}")
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "There is a problem" in html and f'href="#{field}"' in html and message in html
    assert html.startswith("<!doctype html>"), "never raw JSON"


def test_the_auditors_page_takes_a_govuk_date_period_and_says_what_is_wrong(rig: Rig) -> None:
    amy = browser(rig, "amy")
    good = amy.get("/console/auditor", query_string={**day_fields(rig, "from", 3), **day_fields(rig, "to")})
    assert good.status_code == 200 and 'name="from_day"' in good.get_data(as_text=True)
    reversed_period = amy.get(
        "/console/auditor", query_string={**day_fields(rig, "from"), **day_fields(rig, "to", 3)}
    )
    assert reversed_period.status_code == 400
    assert "must be the same as or after its start" in reversed_period.get_data(as_text=True)
    assert amy.get("/console/auditor?from=2026-02-30").status_code == 400
    export = amy.get("/console/auditor/audit.csv?from=2026-13-01")
    assert export.status_code == 400 and export.mimetype == "text/html"


def test_verifying_the_chain_in_the_browser(rig: Rig, store: Store) -> None:
    rig.caller_with_agent()
    amy = browser(rig, "amy")
    token = csrf_from(amy.get("/console/auditor/log").data)
    done = amy.post("/console/auditor/verify", data={"csrf_token": token})
    assert done.status_code == 303
    html = amy.get(done.headers["Location"]).get_data(as_text=True)
    assert "Audit chain: ok:" in html and "none missing" in html
    assert "no checkpoints folder" in html, "says what it could not rule out"
    (verified,) = [e for e in rig.svc.audit.entries() if e["kind"] == "audit.verified"]
    assert verified["by"] == "amy" and verified["outcome"] == "ok"
    if store.kind == "memory":
        victim = next(e for e in store._audit if e.get("kind") == "agent.connected")  # type: ignore[attr-defined]
        victim["outcome"] = "rewritten"
        broken = amy.post("/console/auditor/verify", data={"csrf_token": token})
        text = amy.get(broken.headers["Location"]).get_data(as_text=True)
        assert "Audit chain: BROKEN" in text


def test_drawing_a_sample_and_recording_a_case_in_the_browser(rig: Rig) -> None:
    rig.taken_over(accepting())
    amy = browser(rig, "amy")
    page = amy.get("/console/auditor")
    token = csrf_from(page.data)
    form = {"csrf_token": token, "org": "taxaid", **day_fields(rig, "from", 1), **day_fields(rig, "to")}
    refused = amy.post("/console/auditor/sample", data={**form, "size": "0"})
    assert refused.status_code == 400 and 'href="#size"' in refused.get_data(as_text=True)
    no_org = amy.post("/console/auditor/sample", data={**form, "org": "", "size": "3"})
    assert no_org.status_code == 400 and "Choose the organisation to sample" in no_org.get_data(as_text=True)
    drawn = amy.post("/console/auditor/sample", data={**form, "size": "3", "seed": "42"})
    assert drawn.status_code == 303
    shown = amy.get(drawn.headers["Location"]).get_data(as_text=True)
    assert "Drew 1 hand-off(s) of Tax Aid" in shown and "seed 42" in shown
    (case,) = rig.svc.assurance.cases("taxaid")
    (sampled,) = [e for e in rig.svc.audit.entries() if e["kind"] == "assurance.sampled"]
    assert sampled["by"] == "amy" and sampled["seed"] == 42
    saved = amy.post(f"/console/auditor/case/{case['id']}", data={"csrf_token": token, "state": "evidence_seen"})
    assert saved.status_code == 303
    assert rig.svc.assurance.cases("taxaid")[0]["state"] == "evidence_seen"
    wrong = amy.post(f"/console/auditor/case/{case['id']}", data={"csrf_token": token, "state": "requested"})
    assert "Nothing was changed" in amy.get(wrong.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize("who", ["sue", "dana", "alex", "kim"])
def test_only_auditors_and_admins_work_the_audit_log(rig: Rig, who: str) -> None:
    client = browser(rig, who)
    assert client.get("/console/auditor/log").status_code == 403
    token = csrf_from(client.get("/console/").data) if client.get("/console/").status_code == 200 else ""
    assert client.post("/console/auditor/verify", data={"csrf_token": token}).status_code in {403}
    assert client.post("/console/auditor/sample", data={"csrf_token": token}).status_code in {403}
    assert browser(rig, "ada").get("/console/auditor/log").status_code == 200


def test_console_errors_are_pages_not_json(rig: Rig) -> Any:
    amy = browser(rig, "amy")
    missing = amy.get("/console/nowhere")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "Not found" in missing.get_data(as_text=True)
