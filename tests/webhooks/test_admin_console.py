"""The admin console: the staff directory managed from the browser, every change audited.

Only an admin reaches it (every other role is refused each page and each change); a PIN or
token is shown once, in the answer to the form that issued it; removals ask first; a
refused change keeps what was typed and says what is wrong, linked to the field.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from callflow.access import Viewer
from callflow.desks.admin import SECTIONS, AdminDesk
from callflow.service import Callflow
from tests.rigs import csrf_from, sign_in
from tests.webhooks.conftest import PASSWORD
from webhooks.console.admin import ACTIONS


@pytest.fixture
def admin(client: FlaskClient, staffed: Callflow) -> FlaskClient:
    now = staffed.clock.now()
    staffed.accounts.add("ada", "Ada Admin", "admin", PASSWORD, now, by="tests")
    staffed.accounts.add("dee", "Dee Designer", "designer", PASSWORD, now, by="tests")
    staffed.accounts.add("aud", "Aud Auditor", "auditor", PASSWORD, now, by="tests")
    assert sign_in(client, "ada").headers["Location"].endswith("/console/admin")
    return client


def csrf(client: FlaskClient, section: str = "advisers") -> str:
    return csrf_from(client.get(f"/console/admin/{section}").data)


def post(client: FlaskClient, section: str, action: str, **form: str) -> Any:
    return client.post(
        f"/console/admin/{section}/{action}", data={"csrf_token": csrf(client), **form}
    )


def entries(svc: Callflow, kind: str) -> list[dict[str, Any]]:
    return [e for e in svc.audit.entries() if e["kind"] == kind]


def test_an_admin_lands_on_the_directory(admin: FlaskClient) -> None:
    page = admin.get("/console/admin")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for title in SECTIONS.values():
        assert title in text
    assert "No console yet" not in text


def test_the_directory_home_counts_without_reading_the_records(
    admin: FlaskClient, staffed: Callflow
) -> None:
    now = staffed.clock.now()
    staffed.directory.add("4001", "Ann Adviser", "taxaid", now=now, by="tests")
    staffed.staff.add_officer("300001", "Omar Officer", now, by="tests")
    staffed.staff.issue_token("specialist", "300101", "Sam", now, by="tests")
    desk, ada = AdminDesk(staffed), Viewer("admin", username="ada")
    counts = desk.overview(ada)
    assert counts == {name: len(desk.section(ada, name)) for name in SECTIONS}
    assert all(counts.values()), counts
    home = admin.get("/console/admin").get_data(as_text=True)
    assert f"{counts['accounts']} records" in home


@pytest.mark.parametrize("who", ["amy", "sam", "dee", "aud"])
def test_no_other_role_reads_or_changes_the_directory(
    admin: FlaskClient, staffed: Callflow, who: str
) -> None:
    browser = admin.application.test_client()
    sign_in(browser, who)
    home = browser.get("/console/", follow_redirects=True).get_data(as_text=True)
    found = re.search(r'name="csrf-token" content="([^"]+)"', home)
    assert found, "a valid form token, so the refusal is the role's"
    token = found.group(1)
    assert browser.get("/console/admin").status_code == 403
    for section, actions in ACTIONS.items():
        assert browser.get(f"/console/admin/{section}").status_code == 403
        for action in actions:
            refused = browser.post(
                f"/console/admin/{section}/{action}",
                data={"csrf_token": token, "number": "4001", "confirm": "yes"},
            )
            assert refused.status_code == 403, (who, section, action)
    assert not [e for e in staffed.audit.entries() if e.get("by") == who]


def test_signed_out_the_directory_asks_for_sign_in(client: FlaskClient) -> None:
    assert client.get("/console/admin/advisers").status_code == 302


def test_a_new_advisers_pin_is_shown_once_and_the_change_audited(
    admin: FlaskClient, staffed: Callflow
) -> None:
    page = post(
        admin,
        "advisers",
        "add",
        number="4002",
        name="Kim Adviser",
        organisation="litrg",
        phone="+441632960999",
        consent_to_act="yes",
    )
    assert page.status_code == 200
    pin = re.search(r'<p class="secret"><code>(\d+)</code>', page.get_data(as_text=True))
    assert pin, page.get_data(as_text=True)[:2000]
    adviser = staffed.directory.require("4002")
    assert staffed.hasher.verify(pin.group(1), adviser.pin_hash)
    assert adviser.consent_to_act and adviser.organisation == "litrg"
    again = admin.get("/console/admin/advisers").get_data(as_text=True)
    assert pin.group(1) not in again and "4002" in again
    (entry,) = [e for e in entries(staffed, "adviser.added") if e["by"] == "ada"]
    assert entry["by"] == "ada" and entry["adviser"] == "4002"
    assert pin.group(1) not in str(list(staffed.audit.entries()))

    reissued = post(admin, "advisers", "issue_pin", number="4002").get_data(as_text=True)
    new_pin = re.search(r'<p class="secret"><code>(\d+)</code>', reissued)
    assert new_pin and new_pin.group(1) != pin.group(1)
    assert entries(staffed, "adviser.pin_set")[-1]["by"] == "ada"


def test_answers_unlock_and_removal(admin: FlaskClient, staffed: Callflow) -> None:
    staffed.directory.add("4003", "Lee Adviser", "taxaid", now=staffed.clock.now(), by="tests")
    done = post(
        admin,
        "advisers",
        "answers",
        number="4003",
        **{"answer-first_school": "Hill Top", "answer-favourite_colour": "blue"},
    )
    assert done.status_code == 303, done.get_data(as_text=True)[:1500]
    assert "has new security answers" in admin.get(done.headers["Location"]).get_data(as_text=True)
    assert sorted(staffed.directory.require("4003").answer_hashes) == [
        "favourite_colour",
        "first_school",
    ]
    guard = staffed.settings.guard
    for _ in range(guard.adviser_threshold):
        staffed.store.begin_attempt("4003", "+441632960001", staffed.clock.now(), guard)
        staffed.store.attempt_failed("4003", "+441632960001", staffed.clock.now(), guard)
    assert "Unlock" in admin.get("/console/admin/advisers").get_data(as_text=True)
    assert post(admin, "advisers", "unlock", number="4003").status_code == 303
    status = staffed.store.lock_status("4003", staffed.clock.now())
    assert status.failures == 0 and not status.locked_seconds and not status.numbers
    assert entries(staffed, "adviser.unlocked")[-1]["by"] == "ada"

    ask = post(admin, "advisers", "remove", number="4003")
    assert ask.status_code == 200 and "Remove adviser 4003?" in ask.get_data(as_text=True)
    assert staffed.directory.get("4003") is not None, "nothing removed before confirming"
    assert post(admin, "advisers", "remove", number="4003", confirm="yes").status_code == 303
    assert staffed.directory.get("4003") is None
    assert entries(staffed, "adviser.removed")[-1]["by"] == "ada"


def test_a_refused_change_says_what_is_wrong_next_to_the_field(
    admin: FlaskClient, staffed: Callflow
) -> None:
    page = post(admin, "agents", "add", sees_id="12", name="Zed Agent", reach="nowhere!")
    assert page.status_code == 400
    text = page.get_data(as_text=True)
    assert "There is a problem" in text and 'href="#agents-add-sees_id"' in text
    assert "Enter the agent&#39;s SEES ID: 6 to 10 digits" in text, "in the design system's words"
    assert 'id="agents-add-sees_id"' in text and 'aria-invalid="true"' in text
    assert 'value="Zed Agent"' in text, "what was typed is kept"
    assert text.startswith("<!doctype html>") and "<title>Error: " in text
    assert staffed.staff.agent("12") is None
    assert not [e for e in entries(staffed, "staff.agent_added") if e["by"] == "ada"]


def test_agents_teams_and_officers(admin: FlaskClient, staffed: Callflow) -> None:
    assert (
        post(admin, "agents", "add", sees_id="200009", name="Zed Agent", reach="zed").status_code
        == 303
    )
    assert staffed.staff.agent("200009").reach == "client:zed"
    assert post(admin, "agents", "deactivate", sees_id="200009").status_code == 303
    assert not staffed.staff.agent("200009").active
    assert post(admin, "agents", "activate", sees_id="200009").status_code == 303
    assert post(admin, "agents", "remove", sees_id="200009", confirm="yes").status_code == 303
    assert staffed.staff.agent("200009") is None

    changed = post(
        admin,
        "teams",
        "update",
        id="debt_pursuit",
        name="Debt Pursuit",
        handles="debts in pursuit",
        numbers="+441632960200 +441632960201",
        hours="Mon-Sat 08:00-20:00",
    )
    assert changed.status_code == 303
    team = staffed.staff.team("debt_pursuit")
    assert team.hours == "Mon-Sat 08:00-20:00" and team.numbers[1] == "+441632960201"
    assert "Mon-Sat 08:00-20:00" in admin.get("/console/admin/teams").get_data(as_text=True)
    bad = post(admin, "teams", "add", id="x y", name="", numbers="", hours="sometimes", handles="")
    assert bad.status_code == 400 and 'href="#teams-add-hours"' in bad.get_data(as_text=True)

    assert post(admin, "officers", "add", number="300009", name="Omar Officer", grade="O").status_code == 303
    assert post(admin, "officers", "deactivate", number="300009").status_code == 303
    assert not staffed.staff.officer("300009").active
    kinds = [e["kind"] for e in staffed.audit.entries() if e.get("by") == "ada"]
    assert kinds == [
        "staff.agent_added",
        "staff.agent_deactivated",
        "staff.agent_activated",
        "staff.agent_removed",
        "staff.team_changed",
        "staff.officer_added",
        "staff.officer_deactivated",
    ]


def test_welsh_speaking_agents_and_welsh_numbers(admin: FlaskClient, staffed: Callflow) -> None:
    added = post(
        admin, "agents", "add", sees_id="200010", name="Bethan Agent", reach="bethan", welsh="yes"
    )
    assert added.status_code == 303
    assert staffed.staff.agent("200010").skills == ["cy-GB"]
    page = admin.get("/console/admin/agents").get_data(as_text=True)
    assert "English, Welsh" in page and "Stop Welsh calls" in page
    assert post(admin, "agents", "welsh_off", sees_id="200010").status_code == 303
    assert staffed.staff.agent("200010").skills == []
    assert post(admin, "agents", "welsh_on", sees_id="123456").status_code == 303
    assert staffed.staff.agent("123456").skills == ["cy-GB"]
    changed = post(
        admin,
        "teams",
        "update",
        id="debt_pursuit",
        name="Debt Pursuit",
        handles="",
        numbers="+441632960200 +441632960201",
        hours="Mon-Sun 00:00-24:00",
        welsh_numbers="+441632960201",
    )
    assert changed.status_code == 303
    team = staffed.staff.team("debt_pursuit")
    assert team.numbers_for("cy-GB") == ["+441632960201", "+441632960200"]
    assert "+441632960201 (Welsh)" in admin.get("/console/admin/teams").get_data(as_text=True)
    wrong = post(
        admin,
        "teams",
        "update",
        id="debt_pursuit",
        name="Debt Pursuit",
        handles="",
        numbers="+441632960200",
        hours="Mon-Sun 00:00-24:00",
        welsh_numbers="+441632960299",
    )
    assert wrong.status_code == 400 and "is not one of the team" in wrong.get_data(as_text=True)
    assert 'href="#teams-update-welsh_numbers"' in wrong.get_data(as_text=True)
    kinds = [e["kind"] for e in staffed.audit.entries() if e.get("by") == "ada"]
    assert kinds.count("staff.agent_skills_set") == 3 and "staff.team_languages_set" in kinds


def test_tokens_are_shown_once_and_revoked(admin: FlaskClient, staffed: Callflow) -> None:
    page = post(
        admin, "tokens", "issue", role="vstrs_agent", staff_id="123456", name="Amy's script"
    )
    token = re.search(r'<p class="secret"><code>(cf_[^<]+)</code>', page.get_data(as_text=True))
    assert token and staffed.staff.authenticate(token.group(1)) is not None
    token_id = token.group(1)[3:11]
    assert token.group(1) not in admin.get("/console/admin/tokens").get_data(as_text=True)
    assert post(admin, "tokens", "revoke", token_id=token_id, confirm="yes").status_code == 303
    assert staffed.staff.authenticate(token.group(1)) is None
    assert entries(staffed, "staff.token_revoked")[-1]["by"] == "ada"


def test_accounts_and_the_admins_own(admin: FlaskClient, staffed: Callflow) -> None:
    added = post(
        admin,
        "accounts",
        "add",
        username="kay",
        name="Kay Specialist",
        role="specialist",
        specialist="300101",
        password="a very long password",
    )
    assert added.status_code == 303
    kay = staffed.accounts.get("kay")
    assert kay is not None and (kay.specialist, kay.team) == ("300101", "debt_pursuit")
    unknown = post(
        admin, "accounts", "add", username="kit", name="Kit", role="specialist",
        specialist="999999", password="a very long password",
    )  # fmt: skip
    assert unknown.status_code == 400 and "registered specialist" in unknown.get_data(as_text=True)
    short = post(admin, "accounts", "password", username="kay", password="short")
    assert short.status_code == 400 and "short" not in re.sub(
        r"<[^>]+>", "", short.get_data(as_text=True).split("There is a problem")[1][:400]
    )
    assert (
        post(admin, "accounts", "password", username="kay", password="another long one").status_code
        == 303
    )
    own = post(admin, "accounts", "remove", username="ada", confirm="yes")
    assert own.status_code == 400 and "your own account" in own.get_data(as_text=True)
    assert staffed.accounts.get("ada") is not None
    assert post(admin, "accounts", "remove", username="kay", confirm="yes").status_code == 303
    assert staffed.accounts.get("kay") is None
    assert [e["kind"] for e in staffed.audit.entries() if e.get("by") == "ada"] == [
        "staff.account_added",
        "staff.password_set",
        "staff.account_removed",
    ]


def test_a_change_without_the_forms_token_is_refused(admin: FlaskClient, staffed: Callflow) -> None:
    refused = admin.post("/console/admin/officers/add", data={"number": "300010", "name": "X"})
    assert refused.status_code == 403 and staffed.staff.officer("300010") is None


def test_unknown_sections_and_actions(admin: FlaskClient) -> None:
    assert admin.get("/console/admin/nonsense").status_code == 404
    assert post(admin, "agents", "explode", sees_id="1").status_code == 404


def test_the_line_is_closed_and_opened_from_the_console(
    admin: FlaskClient, staffed: Callflow
) -> None:
    home = admin.get("/console/admin").get_data(as_text=True)
    assert "Close the line at short notice" in home
    refused = admin.post(
        "/console/admin/line/close",
        data={"csrf_token": csrf(admin), "english": "", "welsh": "Ar gau", "until": ""},
    )
    assert refused.status_code == 400 and 'href="#closure-english"' in refused.get_data(
        as_text=True
    )
    form = {"english": "Closed for a fire drill.", "welsh": "", "until": ""}
    no_reason = admin.post("/console/admin/line/close", data={"csrf_token": csrf(admin), **form})
    assert no_reason.status_code == 400
    assert 'href="#closure-reason"' in no_reason.get_data(as_text=True)
    form["reason"] = "Fire drill in the contact centre"
    asked = admin.post("/console/admin/line/close", data={"csrf_token": csrf(admin), **form})
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Close the VSTRS line to new calls?" in page
    assert "Fire drill in the contact centre" in page and "Yes, close the line" in page
    assert staffed.staff.closure(staffed.clock.now()) is None, "nothing closes until confirmed"
    closed = admin.post(
        "/console/admin/line/close", data={"csrf_token": csrf(admin), **form, "confirm": "yes"}
    )
    assert closed.status_code == 303
    assert staffed.staff.closure(staffed.clock.now())["by"] == "ada"
    (started,) = [e for e in staffed.audit.entries() if e["kind"] == "line.closure_started"]
    assert started["reason"] == "Fire drill in the contact centre"
    page = admin.get("/console/admin").get_data(as_text=True)
    assert "Closed for a fire drill." in page and "Open the line to new calls" in page
    assert (
        admin.post("/console/admin/line/open", data={"csrf_token": csrf(admin)}).status_code == 303
    )
    assert staffed.staff.closure(staffed.clock.now()) is None
    kinds = [e["kind"] for e in staffed.audit.entries() if e.get("by") == "ada"]
    assert kinds == ["line.closure_started", "line.closure_ended"]


def test_opening_hours_are_kept_from_the_console(admin: FlaskClient, staffed: Callflow) -> None:
    page = admin.get("/console/admin/calendars")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "The VSTRS line" in text and "Debt Pursuit" in text
    token = csrf_from(page.data)

    def change(owner: str, action: str, **form: str) -> Any:
        return admin.post(
            f"/console/admin/calendars/{owner}/{action}", data={"csrf_token": token, **form}
        )

    refused = change("debt_pursuit", "week", week="Mon-Fri 9-5", nation="england-and-wales")
    body = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert 'href="#debt_pursuit-week-week"' in body and 'value="Mon-Fri 9-5"' in body
    done = change(
        "debt_pursuit", "week", week="Mon-Fri 08:30-12:30,13:30-17:00", nation="scotland"
    )
    assert done.status_code == 303 and done.headers["Location"].endswith("#cal-debt_pursuit")
    team = staffed.staff.team("debt_pursuit")
    assert team.hours == "Mon-Fri 08:30-12:30,13:30-17:00" and team.nation == "scotland"
    bad = change("line", "closure", closed_from="2026-12-24T12:00", closed_to="2026-12-24T09:00")
    assert bad.status_code == 400 and 'href="#line-closure-closed_to"' in bad.get_data(
        as_text=True
    )
    assert change(
        "line",
        "closure",
        closed_from="2026-12-24T12:00",
        closed_to="2026-12-24T23:59",
        reason="Christmas Eve afternoon",
    ).status_code == 303
    assert change(
        "debt_pursuit", "opening", open_on="2026-12-27", hours="10:00-14:00", reason="year end"
    ).status_code == 303
    bad_day = change("debt_pursuit", "opening", open_on="27/12", hours="10:00-14:00")
    assert 'href="#debt_pursuit-opening-open_on"' in bad_day.get_data(as_text=True)
    text = admin.get("/console/admin/calendars").get_data(as_text=True)
    assert "closed 2026-12-24 12:00 to 2026-12-24 23:59" in text and "Christmas Eve" in text
    assert "open on 2026-12-27 10:00-14:00" in text
    assert staffed.staff.calendar("line").exceptions[0]["reason"] == "Christmas Eve afternoon"
    assert change("line", "remove", number="1").status_code == 303
    assert staffed.staff.calendar("line").exceptions == []
    assert change("nowhere", "week", week="", nation="none").status_code == 400
    assert change("line", "explode").status_code == 404
    changes = [e["change"] for e in entries(staffed, "staff.calendar_changed") if e["by"] == "ada"]
    assert changes == ["week", "closure added", "opening added", "exception removed"]


@pytest.mark.parametrize("who", ["amy", "sam", "dee", "aud"])
def test_only_an_admin_keeps_opening_hours(
    admin: FlaskClient, staffed: Callflow, who: str
) -> None:
    browser = admin.application.test_client()
    sign_in(browser, who)
    home = browser.get("/console/", follow_redirects=True).get_data(as_text=True)
    found = re.search(r'name="csrf-token" content="([^"]+)"', home)
    assert found
    assert browser.get("/console/admin/calendars").status_code == 403
    for action in ("week", "closure", "opening", "remove"):
        refused = browser.post(
            f"/console/admin/calendars/line/{action}",
            data={"csrf_token": found.group(1), "week": "", "nation": "none", "number": "1"},
        )
        assert refused.status_code == 403
    assert not entries(staffed, "staff.calendar_changed")


@pytest.mark.parametrize("who", ["amy", "sam", "dee", "aud"])
def test_only_an_admin_closes_the_line(admin: FlaskClient, staffed: Callflow, who: str) -> None:
    browser = admin.application.test_client()
    sign_in(browser, who)
    home = browser.get("/console/", follow_redirects=True).get_data(as_text=True)
    found = re.search(r'name="csrf-token" content="([^"]+)"', home)
    assert found
    for action in ("close", "open"):
        refused = browser.post(
            f"/console/admin/line/{action}",
            data={"csrf_token": found.group(1), "english": "Closed"},
        )
        assert refused.status_code == 403
    assert staffed.staff.closure(staffed.clock.now()) is None


def test_the_advisers_come_a_page_at_a_time(admin: FlaskClient, staffed: Callflow) -> None:
    from callflow.desks.admin import ADVISERS_PAGE

    now = staffed.clock.now()
    total = ADVISERS_PAGE * 2 + 7
    for n in range(total):
        staffed.directory.add(f"{5000 + n}", f"Adviser {n}", "taxaid", now=now, by="tests")
    total = staffed.directory.count()  # and any adviser the fixture registered
    first = admin.get("/console/admin/advisers").get_data(as_text=True)
    assert f"{total} advisers; page 1 of 3, by number." in first
    assert first.count('data-row="') == ADVISERS_PAGE
    assert 'rel="next"' in first and 'rel="prev"' not in first
    last = admin.get("/console/admin/advisers?page=3").get_data(as_text=True)
    assert last.count('data-row="') == total - 2 * ADVISERS_PAGE
    assert f'data-row="{5000 + ADVISERS_PAGE * 2 + 6}"' in last
    assert 'rel="prev"' in last and 'rel="next"' not in last
    found = admin.get("/console/admin/advisers?number=5073").get_data(as_text=True)
    assert found.count('data-row="') == 1 and 'data-row="5073"' in found
    missing = admin.get("/console/admin/advisers?number=9999").get_data(as_text=True)
    assert "No adviser has number 9999." in missing
    assert admin.get("/console/admin/advisers?page=banana").status_code == 200
