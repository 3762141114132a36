"""The consoles' rules: sign-in, sessions, roles, CSRF, headers, live events."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from callflow.clock import ManualClock
from callflow.service import Callflow
from tests.conftest import FLOWS, ROOT, Caller, person
from tests.rigs import PASSWORD, csrf_from, sign_in
from webhooks.console import base as console
from webhooks.console import designer as designer_module


def test_the_sign_in_page_is_locked_down(client: FlaskClient) -> None:
    page = client.get("/console/login")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert (
        "default-src 'self'" in csp
        and "frame-ancestors 'none'" in csp
        and "script-src 'self'" in csp
    )
    assert (
        page.headers["X-Frame-Options"] == "DENY"
        and page.headers["X-Content-Type-Options"] == "nosniff"
    )
    assert b'for="username">Username' in page.data and b'for="password">Password' in page.data


def test_signing_in_and_out(client: FlaskClient, staffed: Callflow) -> None:
    response = sign_in(client, "amy")
    assert response.status_code == 303 and response.headers["Location"].endswith("/console/agent")
    (cookie,) = [c for c in response.headers.getlist("Set-Cookie") if "callflow_console=" in c]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = client.get("/console/agent")
    assert (
        page.status_code == 200
        and b"VSTRS agent console" in page.data
        and b"SEES ID 123456" in page.data
    )
    assert (
        client.post("/console/logout", data={"csrf_token": csrf_from(page.data)}).status_code == 303
    )
    assert client.get("/console/agent").status_code == 302


def test_wrong_password_and_unknown_user_read_the_same(
    client: FlaskClient, staffed: Callflow
) -> None:
    wrong = sign_in(client, "amy", "not the password")
    unknown = sign_in(client, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert (
        b"wrong username or password" in wrong.data
        and b"wrong username or password" in unknown.data
    )


def test_sign_in_is_rate_limited(client: FlaskClient, staffed: Callflow) -> None:
    for _ in range(5):
        assert sign_in(client, "amy", "guess guess guess").status_code == 401
    limited = sign_in(client, "amy")
    assert limited.status_code == 401 and b"too many attempts" in limited.data
    staffed.clock.advance(16 * 60)  # type: ignore[attr-defined]
    assert sign_in(client, "amy").status_code == 303


def test_a_specialist_cannot_open_the_agent_console(client: FlaskClient, staffed: Callflow) -> None:
    assert sign_in(client, "sam").headers["Location"].endswith("/console/specialist")
    refused = client.get("/console/agent")
    assert refused.status_code == 403 and b"not for your role" in refused.data
    assert client.get("/console/agent/state").status_code == 403
    assert client.get("/console/specialist").status_code == 200


def test_forms_without_the_csrf_token_are_refused(client: FlaskClient, staffed: Callflow) -> None:
    sign_in(client, "amy")
    refused = client.post("/console/agent/availability", data={"status": "available"})
    assert refused.status_code == 403
    assert staffed.staff.availability("123456", staffed.clock.now())["status"] == "away"
    forged = client.post(
        "/console/agent/availability", data={"status": "available", "csrf_token": "x" * 43}
    )
    assert forged.status_code == 403
    page = client.get("/console/agent")
    ok = client.post(
        "/console/agent/availability",
        data={"status": "available", "csrf_token": csrf_from(page.data)},
    )
    assert ok.status_code == 303 and staffed.staff.availability("123456", staffed.clock.now())["status"] == "available"


def test_a_hand_off_needs_a_call(client: FlaskClient, staffed: Callflow) -> None:
    sign_in(client, "amy")
    page = client.get("/console/agent")
    response = client.post(
        "/console/agent/handoff", data={"csrf_token": csrf_from(page.data), "team": "debt_pursuit"}
    )
    assert response.status_code == 409 and b"You have no call to hand off." in response.data


def test_sessions_end_when_idle(client: FlaskClient, staffed: Callflow, clock: ManualClock) -> None:
    sign_in(client, "amy")
    assert client.get("/console/agent").status_code == 200
    clock.advance(31 * 60)
    assert client.get("/console/agent").status_code == 302
    assert client.get("/console/agent/state").status_code == 401


def test_changing_a_password_ends_sessions(client: FlaskClient, staffed: Callflow) -> None:
    sign_in(client, "amy")
    staffed.accounts.set_password("amy", "an entirely new password", by="tests")
    assert client.get("/console/agent").status_code == 302


def test_state_needs_a_session(client: FlaskClient) -> None:
    assert client.get("/console/agent/state").status_code == 401


def test_live_events_reach_the_right_people(
    app: Flask, staffed: Callflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "STREAM_SECONDS", 2.0)  # generous: a loaded machine is slow
    specialist, other = app.test_client(), app.test_client()
    sign_in(specialist, "sam")
    staffed.staff.add_team("insolvency", "Insolvency", "", ["+441632960201"], "Mon-Sun 00:00-24:00", by="tests", nation="none")
    staffed.staff.add_specialist(
        "300201", "Ola Other", "insolvency", "client:ola", staffed.clock.now(), by="tests"
    )
    staffed.accounts.add(
        "ola", "Ola Other", "specialist", PASSWORD, staffed.clock.now(), specialist="300201",
        by="tests",
    )
    sign_in(other, "ola")
    start = staffed.store.last_audit_id()
    staffed.audit.record(
        "grant.issued",
        call_sid="CA" + "1" * 32,
        team="debt_pursuit",
        handoff="HO1",
        outcome="active",
    )
    mine = specialist.get("/console/events", headers={"Last-Event-ID": start}).get_data(
        as_text=True
    )
    theirs = other.get("/console/events", headers={"Last-Event-ID": start}).get_data(as_text=True)
    assert "event: change" in mine and '"kind": "grant.issued"' in mine
    assert "event: change" not in theirs and "grant.issued" not in theirs
    assert "id: " in theirs, "the other team's browser still moves its cursor on"


@pytest.fixture
def designer(client: FlaskClient, staffed: Callflow) -> str:
    staffed.accounts.add("dana", "Dana Designer", "designer", PASSWORD, staffed.clock.now(), by="tests")
    sign_in(client, "dana")
    return csrf_from(client.get("/console/designer").data)


def test_the_designer_page_lists_flows_and_draws_them(client: FlaskClient, designer: str) -> None:
    page = client.get("/console/designer")
    assert page.status_code == 200
    assert b"vstrs_inbound" in page.data and b"specialist_handoff" in page.data
    assert (
        b'<pre class="mermaid" data-flow="vstrs_inbound">' in page.data
        and b"stateDiagram-v2" in page.data
    )
    assert b"vendor/mermaid.min.js" in page.data
    assert "style-src 'self' 'unsafe-inline'" in page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    script = client.get("/console/static/vendor/mermaid.min.js")
    assert script.status_code == 200
    script.close()


def softphone(client: FlaskClient, csrf: str, **body: object) -> Any:
    return client.post("/console/designer/softphone", json=body, headers={"X-CSRF-Token": csrf})


def test_the_softphone_plays_a_call_in_a_sandbox(client: FlaskClient, designer: str) -> None:
    start = softphone(client, designer, flow="vstrs_inbound", steps=[])
    answer = start.get_json()
    assert start.status_code == 200, answer
    assert answer["state"] == "greeting" and answer["waiting"] and not answer["ended"]
    assert "Please key your adviser number, then press the hash key." in answer["prompt"]
    steps = [{"press": "1001#"}, {"press": "246810#"}]
    answer = softphone(client, designer, flow="vstrs_inbound", steps=steps).get_json()
    assert answer["state"] == "ask_question" and answer["waiting"]
    said = "Hill Top" if "school" in answer["prompt"] else "blue"
    answer = softphone(
        client, designer, flow="vstrs_inbound", steps=[*steps, {"say": said}]
    ).get_json()
    heard = [e["text"] for e in answer["transcript"] if e["kind"] == "hears"]
    assert any("You are verified as calling from Tax Aid" in h for h in heard)
    hung_up = softphone(client, designer, flow="officer_check", steps=[{"hangup": True}])
    assert hung_up.get_json()["ended"]


def test_the_softphone_plays_the_text_being_edited(client: FlaskClient, designer: str) -> None:
    source = (FLOWS / "officer_check.yaml").read_text().replace(
        "Please key the officer's identity number", "Key the number on the card"
    )
    answer = softphone(client, designer, source=source, steps=[]).get_json()
    assert answer["prompt"].startswith("Key the number on the card"), answer
    broken = softphone(client, designer, source="flow: x\nstates: {}\n", steps=[])
    assert broken.status_code == 422 and "problems" in broken.get_json()["error"]


@pytest.mark.parametrize(
    "steps",
    [{"press": "1"}, [{"press": "12a"}], [{"dance": True}], [{"say": "x" * 201}], [{}] * 61],
)
def test_the_softphone_refuses_odd_steps(client: FlaskClient, designer: str, steps: Any) -> None:
    answer = softphone(client, designer, flow="vstrs_inbound", steps=steps)
    assert answer.status_code == 422 and answer.get_json()["error"]


def test_the_softphone_needs_csrf_and_the_designer_role(
    client: FlaskClient, staffed: Callflow, designer: str
) -> None:
    assert client.post("/console/designer/softphone", json={"flow": "x"}).status_code == 403
    assert softphone(client, designer, flow="no_such_flow", steps=[]).status_code == 404
    other = client.application.test_client()
    sign_in(other, "amy")
    page = other.get("/console/agent")
    assert softphone(other, csrf_from(page.data), flow="vstrs_inbound").status_code == 403


def test_the_old_softphone_attacks_change_nothing_live(
    client: FlaskClient, designer: str, staffed: Callflow, caller: Caller
) -> None:
    """Once the softphone signed a webhook for any CallSid and sent it to the live service:
    another caller's Digits, /voice/status completed, a specialist leg. None of it now."""
    caller.start()
    caller.press("1001")
    before = staffed.store.get_session(caller.call_sid)
    assert before is not None and before.state == "ask_pin"
    audit_before = len(list(staffed.audit.all_entries()))
    sid = caller.call_sid
    attacks = [
        {"url": f"/voice/step?s={before.step}", "call_sid": sid, "params": {"Digits": "246810"}},
        {"url": "/voice/status", "call_sid": sid, "params": {"CallStatus": "completed"}},
        {"url": "/voice/incoming?flow=specialist_handoff&ref=HO0123456789abcdef", "call_sid": sid},
        {"flow": "vstrs_inbound", "call_sid": sid, "steps": [{"press": "246810#"}]},
    ]
    for attack in attacks:
        softphone(client, designer, **attack)
    after = staffed.store.get_session(caller.call_sid)
    assert after is not None
    assert (after.state, after.rev, after.ended_at) == (before.state, before.rev, before.ended_at)
    assert len(list(staffed.audit.all_entries())) == audit_before, "nothing audited live"


def test_no_web_module_can_sign_a_webhook() -> None:
    """Only Twilio (and the simulator, inside its sandbox) signs webhooks."""
    for path in (ROOT / "webhooks").rglob("*.py"):
        text = path.read_text()
        assert "callflow.simulator" not in text and "compute_signature(url, params" not in text, path


# ---------------------------------------------------------------- publishing from the page


def test_the_flow_page_publishes_diffs_and_rolls_back(
    client: FlaskClient, designer: str, staffed: Callflow, clock: ManualClock
) -> None:
    page = client.get("/console/designer")
    assert b'href="/console/designer/flow/officer_check"' in page.data
    flow_page = client.get("/console/designer/flow/officer_check")
    assert flow_page.status_code == 200
    file_version = staffed.library.live("officer_check").version
    assert f'<code id="live-version">{file_version}</code> (from the flows folder)'.encode() in (
        flow_page.data
    )
    source = staffed.releases.source("officer_check", file_version)
    tests = staffed.releases.tests_source("officer_check", file_version)
    assert tests and "an active officer is confirmed by name" in tests
    assert b"Thank you for calling. Goodbye." in flow_page.data  # the editor holds the text

    # A change that breaks a test is refused, with the diff, and the text is kept.
    broken = source.replace("belongs to {officer_name}", "is {officer_name}")
    refused = client.post(
        "/console/designer/flow/officer_check/publish",
        data={"source": broken, "tests": tests, "csrf_token": designer, "message": "a test change"},
    )
    assert refused.status_code == 422
    assert b"failed its tests, so it was not published" in refused.data
    assert b"-hear &#34;Identity number 4 4 7 1 2 0 3 belongs to Alex Morgan&#34;" in refused.data
    assert b"is {officer_name}" in refused.data
    assert staffed.releases.release("officer_check") is None

    changed = source.replace("Thank you for calling. Goodbye.", "Thank you for checking. Goodbye.")
    # No revision note: the design system's error summary says so (never the browser's
    # own "Please fill out this field"), the text is kept, nothing is published.
    unnoted = client.post(
        "/console/designer/flow/officer_check/publish",
        data={"source": changed, "tests": tests, "csrf_token": designer, "message": "  "},
    )
    assert unnoted.status_code == 422
    assert b'<a href="#message">Enter a revision note: what changed and why</a>' in unnoted.data
    assert b'id="message-error"' in unnoted.data and b" required" not in unnoted.data.split(
        b'id="message"'
    )[1].split(b">")[0]
    assert b"Thank you for checking. Goodbye." in unnoted.data
    assert staffed.releases.release("officer_check") is None
    done = client.post(
        "/console/designer/flow/officer_check/publish",
        data={"source": changed.replace("\n", "\r\n"), "tests": tests, "csrf_token": designer, "message": "a test change"},
    )
    assert done.status_code == 303
    new_version = staffed.releases.release("officer_check")["live"]  # type: ignore[index]
    shown = client.get(done.headers["Location"])
    assert f"Published version {new_version}: 6 tests passed.".encode() in shown.data
    assert f'<code id="live-version">{new_version}</code> (published)'.encode() in shown.data
    (audit,) = [e for e in staffed.audit.entries() if e["kind"] == "flow.published"]
    assert audit["by"] == "dana"

    # Compare starts at the live version against the newest other one, not live against live.
    compare = shown.get_data(as_text=True)
    assert f'<option value="{new_version}" selected>{new_version} (live)</option>' in (
        compare.split('id="old"')[1].split("</select>")[0]
    )
    assert f'<option value="{file_version}" selected>{file_version}</option>' in (
        compare.split('id="new"')[1].split("</select>")[0]
    )
    diff = client.get(f"/console/designer/flow/officer_check?old={file_version}&new={new_version}")
    assert b'<span class="add">+          en-GB: &#34;Thank you for checking. Goodbye.&#34;</span>' in (
        diff.data
    )

    # Rolling back asks first, with a reason; nothing changes until it is confirmed.
    url = "/console/designer/flow/officer_check/rollback"
    asked = client.post(url, data={"version": file_version, "csrf_token": designer})
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and f"Roll back to version {file_version}?" in page
    assert "Why are you rolling back?" in page and "Yes, roll back" in page
    assert "Emergency" not in page, "officer_check is not protected: no emergency path"
    no_reason = client.post(
        url, data={"version": file_version, "csrf_token": designer, "confirm": "yes"}
    )
    assert no_reason.status_code == 422 and b'href="#reason"' in no_reason.data
    assert staffed.releases.release("officer_check")["live"] == new_version  # type: ignore[index]
    back = client.post(
        url,
        data={"version": file_version, "csrf_token": designer, "confirm": "yes",
              "reason": "callers misheard it"},
    )  # fmt: skip
    assert back.status_code == 303 and "live" not in back.headers["Location"]
    assert f"Version {file_version} is live again." in client.get(back.headers["Location"]).get_data(
        as_text=True
    )
    clock.advance(3)
    assert staffed.library.live("officer_check").version == file_version
    assert [e["kind"] for e in staffed.audit.entries() if e["kind"].startswith("flow.")] == [
        "flow.published",
        "flow.rolled_back",
    ]
    (rolled,) = [e for e in staffed.audit.entries() if e["kind"] == "flow.rolled_back"]
    assert rolled["by"] == "dana" and rolled["reason"] == "callers misheard it"
    assert staffed.releases.history("officer_check")[-1]["message"] == "callers misheard it"


def test_rolling_back_a_protected_flow_waits_or_is_a_named_emergency(
    client: FlaskClient, designer: str, staffed: Callflow, clock: ManualClock
) -> None:
    source = (FLOWS / "vstrs_inbound.yaml").read_text()
    tests = (FLOWS / "vstrs_inbound.test.yaml").read_text()
    old = "with your organisation and call again."
    assert old in source
    releases = staffed.releases
    versions = []
    for n, text in enumerate(("then call again.", "and then call again."), 1):
        edited = source.replace(old, f"with your organisation, {text}")
        entry = releases.publish(edited, tests, person("ben"), message=f"v{n + 1}")
        releases.approve("vstrs_inbound", entry["version"], person("cal"))
        versions.append(entry["version"])
    v2, v3 = versions
    url = "/console/designer/flow/vstrs_inbound/rollback"
    page = client.post(url, data={"csrf_token": designer}).get_data(as_text=True)
    assert "This flow is protected" in page and f"Emergency: make version {v2} live now" in page
    waits = client.post(url, data={"csrf_token": designer, "confirm": "yes", "reason": "typo"})
    assert waits.status_code == 303
    assert "waits for a second designer" in client.get(waits.headers["Location"]).get_data(
        as_text=True
    )
    assert releases.release("vstrs_inbound")["live"] == v3  # type: ignore[index]
    assert [p["action"] for p in releases.pending("vstrs_inbound")] == ["rollback"]
    urgent = client.post(
        url,
        data={"csrf_token": designer, "confirm": "yes", "emergency": "yes", "version": "0ld",
              "reason": "callers are cut off after the PIN"},
    )  # fmt: skip
    assert urgent.status_code == 303
    assert f"Emergency rollback: version {v2} is live again" in client.get(
        urgent.headers["Location"]
    ).get_data(as_text=True)
    assert releases.release("vstrs_inbound")["live"] == v2  # type: ignore[index]
    (audited,) = [e for e in staffed.audit.entries() if e["kind"] == "flow.emergency_rollback"]
    assert audited["by"] == "dana" and audited["reason"] == "callers are cut off after the PIN"


def test_a_link_cannot_write_a_done_banner(client: FlaskClient, designer: str) -> None:
    forged = "Version abc rolled back. Ring 0800 000 000 now."
    page = client.get(f"/console/designer/flow/officer_check?done={forged.replace(' ', '+')}")
    assert page.status_code == 200
    assert b"Ring 0800 000 000" not in page.data, "result messages travel in the session only"


def test_the_flow_page_needs_the_designer_role_and_csrf(
    client: FlaskClient, staffed: Callflow, designer: str
) -> None:
    assert client.get("/console/designer/flow/nope").status_code == 404
    no_csrf = client.post("/console/designer/flow/officer_check/rollback", data={"version": "x"})
    assert no_csrf.status_code == 403
    wrong_name = client.post(
        "/console/designer/flow/officer_check/publish",
        data={
            "source": (console_flows() / "meeting_call.yaml").read_text(),
            "tests": "",
            "csrf_token": designer,
        },
    )
    assert wrong_name.status_code == 422
    assert b"This page publishes flow officer_check; the text is flow meeting_call." in (
        wrong_name.data
    )
    client.post("/console/logout", data={"csrf_token": designer, "message": "a test change"})
    sign_in(client, "sam")
    assert client.get("/console/designer/flow/officer_check").status_code == 403


def console_flows() -> Path:
    from tests.conftest import FLOWS

    return FLOWS


def test_meetings_are_shown_to_specialists(client: FlaskClient, staffed: Callflow) -> None:
    now = staffed.clock.now()
    staffed.staff.add_officer("4471203", "Alex Morgan", now, by="tests")
    staffed.meetings.add(
        customer_name="Pat Example",
        customer_number="+447700900123",
        reference="DM-2041-77",
        officer_number="4471203",
        purpose="time_to_pay",
        bring="bank statements",
        when="2031-03-04T14:00",
        where="the Leeds office",
        place="hmrc_office",
        date_of_birth="1970-03-21",
        by="tester",
    )
    sign_in(client, "sam")
    page = client.get("/console/meetings")
    assert page.status_code == 200
    assert b"Pat Example" in page.data and b"DM-2041-77" in page.data and b"Scheduled" in page.data
    assert b"1970" not in page.data
    assert b'href="/console/meetings"' in client.get("/console/specialist").data


def test_the_flow_page_runs_the_tests_without_publishing(
    client: FlaskClient, designer: str, staffed: Callflow
) -> None:
    version = staffed.library.live("officer_check").version
    source = staffed.releases.source("officer_check", version)
    tests = staffed.releases.tests_source("officer_check", version)
    changed = source.replace("Thank you for calling. Goodbye.", "Thank you for checking. Goodbye.")
    checked = client.post(
        "/console/designer/flow/officer_check/check",
        data={"source": changed, "tests": tests, "csrf_token": designer, "message": "a test change"},
    )
    assert checked.status_code == 200
    assert b"The tests pass (nothing published yet)" in checked.data
    assert b"coverage: states 10/10 (100%), transitions 14/14 (100%)" in checked.data
    assert b"Thank you for checking. Goodbye." in checked.data  # the edit is kept
    assert staffed.releases.release("officer_check") is None
    failing = client.post(
        "/console/designer/flow/officer_check/check",
        data={
            "source": changed.replace("belongs to", "is"),
            "tests": tests,
            "csrf_token": designer,
        },
    )
    assert failing.status_code == 422 and b"failed its tests" in failing.data
    assert not [e for e in staffed.audit.entries() if e["kind"].startswith("flow.")]


def test_a_new_flow_is_published_from_the_designer_page(
    client: FlaskClient, designer: str, staffed: Callflow, clock: ManualClock
) -> None:
    page = client.get("/console/designer")
    assert b"Test and publish the new flow" in page.data
    source = designer_module.NEW_FLOW.replace("new_flow", "helpline_hours")
    tests = designer_module.NEW_TESTS.replace("new_flow", "helpline_hours")
    done = client.post(
        "/console/designer/new", data={"source": source, "tests": tests, "csrf_token": designer, "message": "a test change"}
    )
    assert done.status_code == 303
    assert done.headers["Location"].startswith("/console/designer/flow/helpline_hours")
    clock.advance(3)
    assert "helpline_hours" in staffed.library.live_versions()
    call = Caller(client)
    assert "Hello." in ET.tostring(call.start(flow="helpline_hours"), encoding="unicode")

    again = client.post(
        "/console/designer/new", data={"source": source, "tests": tests, "csrf_token": designer, "message": "a test change"}
    )
    assert again.status_code == 422 and b"exists already" in again.data
    broken = client.post(
        "/console/designer/new",
        data={
            "source": source.replace("helpline_hours", "other_line").replace("Hello.", "Hi."),
            "tests": tests.replace("helpline_hours", "other_line"),
            "csrf_token": designer,
            "message": "another line",
        },
    )
    assert broken.status_code == 422 and b"failed its tests" in broken.data
    assert b"Hi." in broken.data  # the text is kept


def test_a_protected_flow_is_approved_on_its_page_by_a_second_designer(
    client: FlaskClient, designer: str, staffed: Callflow, clock: ManualClock
) -> None:
    from tests.rigs import VSTRS_TESTS, VSTRS_V2

    live = staffed.library.live("vstrs_inbound").version
    published = client.post(
        "/console/designer/flow/vstrs_inbound/publish",
        data={"csrf_token": designer, "message": "a test change", "source": VSTRS_V2, "tests": VSTRS_TESTS.read_text()},
        follow_redirects=True,
    )
    assert published.status_code == 200
    assert b"waits for a second designer&#39;s approval" in published.data
    assert b"Yours: another designer approves it" in published.data
    clock.advance(3)
    assert staffed.library.live("vstrs_inbound").version == live
    version = staffed.releases.pending("vstrs_inbound")[0]["version"]
    mine = client.post(
        "/console/designer/flow/vstrs_inbound/approve",
        data={"csrf_token": designer, "version": version},
    )
    assert mine.status_code == 409 and b"a second designer must approve it" in mine.data
    staffed.accounts.add("ben", "Ben Designer", "designer", PASSWORD, clock.now(), by="tests")
    second = client.application.test_client()
    sign_in(second, "ben")
    page = second.get("/console/designer/flow/vstrs_inbound")
    assert b'Approve<span class="govuk-visually-hidden"> version ' + version.encode() in page.data
    approved = second.post(
        "/console/designer/flow/vstrs_inbound/approve",
        data={"csrf_token": csrf_from(page.data), "version": version},
        follow_redirects=True,
    )
    assert approved.status_code == 200 and b"written by dana" in approved.data
    clock.advance(3)
    assert staffed.library.live("vstrs_inbound").version == version


@pytest.mark.parametrize(
    "source",
    [
        "flow: x\nstates: " + "[" * 5000 + "]" * 5000 + "\n",
        "a: &x [1]\nb: *x\n",
        "\x00\x01 not yaml: [",
    ],
)
def test_hostile_flow_text_is_refused_politely_everywhere(
    client: FlaskClient, designer: str, source: str
) -> None:
    form = {
        "csrf_token": designer,
        "source": source,
        "tests": "flow: x\ntests: []\n",
        "message": "hostile",
    }
    for path in (
        "/console/designer/flow/officer_check/check",
        "/console/designer/flow/officer_check/publish",
        "/console/designer/new",
    ):
        answer = client.post(path, data=form)
        assert answer.status_code == 422, (path, answer.status_code)
    played = client.post(
        "/console/designer/softphone",
        json={"source": source, "steps": []},
        headers={"X-CSRF-Token": designer},
    )
    assert played.status_code == 422
