"""Per-call traces (issue 18): every webhook of a real call, with its path, guards, actions,
TwiML in outline, time and store operations, and the call's end; never a secret. Read with
`callflow trace`, on the designer's call page (drawn on the flow's diagram) and from an
auditor's audit entry; each read audited. Both stores, through the simulator."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from callflow.cli.main import main
from callflow.clock import ManualClock
from callflow.simulator import Leg, Script
from callflow.store import Store
from callflow.traces import HIDDEN_KEYED, HIDDEN_SAID, outline
from tests.conftest import ADVISER, PIN, cli_sign_in
from tests.rigs import AGENT, ANSWERS, KIM, TEAM_FIRST, VSTRS, Rig, accepting, sign_in
from tests.rigs.meetings import add_meeting
from tests.webhooks.conftest import PASSWORD
from webhooks import create_app

SECRETS = (PIN, "Hill Top", "Blue", "hill top", AGENT)


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    return Rig(store, clock)


def call(rig: Rig, script: Script) -> Leg:
    caller = rig.sim.call(VSTRS, "+441632960001", script)
    rig.sim.run_until(lambda: not caller.live, 3600)
    rig.sim.run(max_seconds=60)
    return caller


def read(rig: Rig, call_sid: str) -> dict[str, Any]:
    found = rig.svc.traces.get(call_sid, by="tester", role="designer")
    assert found is not None
    return found


def no_secret_in(trace: dict[str, Any], *secrets: str) -> None:
    flat = json.dumps(trace)
    for secret in secrets:
        assert secret not in flat, f"{secret!r} is in the trace"


def test_a_verification_is_traced_step_by_step_with_no_secret(rig: Rig) -> None:
    # The caller keys their PIN at the adviser-number prompt by mistake first.
    script = (
        Script().press(f"{PIN}#").press("000000#").press(f"{ADVISER}#").press(f"{PIN}#")
        .answer(ANSWERS).hang_up(after=30)
    )  # fmt: skip
    caller = call(rig, script)
    trace = read(rig, caller.sid)
    steps = trace["steps"]
    assert trace["flow"] == "vstrs_inbound" and trace["version"] == steps[0]["version"]
    assert trace["end"]["end"] == "completed" and trace["end"]["state"] == "connect"
    assert [s["step"] for s in steps] == list(range(len(steps)))
    assert steps[0]["event"] == "start" and steps[0]["entered"] == ["welcome", "greeting"]
    assert any(p["to"] == "closed_now" for p in steps[0]["path"][0]["passed_over"])
    assert steps[0]["twiml"][0].startswith("gather dtmf -> step 1")
    inputs = [s.get("input", {}).get("value") for s in steps]
    assert inputs[1] == "keyed, not an adviser number", "a PIN keyed by mistake is never shown"
    assert inputs[2] == HIDDEN_KEYED and steps[2]["decided"] == ["failed"]
    assert ADVISER in inputs
    pin_step = next(s for s in steps if s.get("decided") == ["pin_accepted"])
    assert pin_step["input"] == {"kind": "digits", "value": HIDDEN_KEYED}
    assert "check_pin" in pin_step["actions"] and pin_step["state"] == "ask_question"
    answer = next(s for s in steps if s.get("decided") == ["verified"])
    assert answer["input"] == {"kind": "speech", "value": HIDDEN_SAID}
    assert answer["state"] == "connect" and "connect_to_agent" in answer["actions"]
    assert any(line.startswith("dial conference vstrs-") for line in answer["twiml"])
    assert "say: Thank you, {adviser_name}. You are verified as calling from Tax Aid." in " ".join(
        answer["twiml"]
    ), "which prompt was said, not to whom"
    assert "Sam Adviser" not in json.dumps(trace)
    for step in steps:
        assert step["ms"] >= 0 and step["store_ops"] >= 1
    no_secret_in(trace, *SECRETS)
    assert [e["by"] for e in rig.svc.audit.entries() if e["kind"] == "trace.read"] == ["tester"]


def test_a_hand_off_and_its_sees_id_check_are_traced_without_the_sees_id(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting())
    handoff = rig.request(caller).get_json()
    assert rig.sim.run_until(lambda: rig.handoff(handoff["id"])["state"] == "briefing")
    rig.sim.hang_up(caller)
    rig.sim.run(max_seconds=600)
    leg = rig.handoff(handoff["id"])["specialist_call_sid"]
    trace = read(rig, leg)
    assert trace["flow"] == "specialist_handoff" and trace["end"] is not None
    sees = next(s for s in trace["steps"] if "check_sees_id" in s["actions"])
    assert sees["input"]["value"] == HIDDEN_KEYED and sees["decided"] == ["matched"]
    no_secret_in(trace, AGENT)
    assert trace["steps"][0]["direction"].startswith("outbound")


def test_a_meeting_call_is_traced_without_the_date_of_birth(
    store: Store, clock: ManualClock
) -> None:
    from callflow.links import ServiceLinks
    from tests.conftest import BASE_URL
    from tests.rigs.meetings import CUSTOMER

    rig = Rig(store, clock)
    rig.svc.staff.add_officer("4471203", "Alex Morgan", clock.now(), by="tests")
    meeting = add_meeting(rig.svc)
    from callflow.simulator import Callee

    script = Script().press("1").press("21031970#").press("1")
    rig.sim.add_callee(CUSTOMER, Callee("answered", after=3, script=script))
    call_sid = rig.svc.meetings.place_call(meeting["id"], ServiceLinks(BASE_URL))
    rig.sim.run(max_seconds=600)
    trace = read(rig, call_sid)
    assert trace["flow"] == "meeting_call" and trace["end"]["state"] == "confirmed"
    checked = next(s for s in trace["steps"] if "check_date_of_birth" in s["actions"])
    assert checked["input"]["value"] == HIDDEN_KEYED
    assert checked["decided"] == ["identity_confirmed"]
    no_secret_in(trace, "21031970")
    said = " ".join(line for step in trace["steps"] for line in step["twiml"])
    assert "{customer_name}" in said and "{meeting_purpose}" in said
    for personal in ("Pat Example", "agreeing time to pay", "bank statements", "Leeds"):
        assert personal not in json.dumps(trace), personal


def test_ended_calls_are_found_by_flow_outcome_and_time(rig: Rig, clock: ManualClock) -> None:
    good = call(rig, Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(ANSWERS).hang_up(30))
    rig.sim.advance(60)
    bad = call(rig, Script().press("9999#").press("1#").press("9999#").press("1#").press("9#")
               .press("1#"))  # fmt: skip
    traces = rig.svc.traces
    assert [r["call_sid"] for r in traces.search(flow="vstrs_inbound")] == [bad.sid, good.sid]
    assert [r["call_sid"] for r in traces.search(outcome="goodbye")] == [bad.sid]
    assert [r["call_sid"] for r in traces.search(flow="vstrs_inbound", outcome="connect")] == [
        good.sid
    ]
    started = traces.search(flow="vstrs_inbound")[0]["started_at"]
    assert [r["call_sid"] for r in traces.search(since=started)] == [bad.sid]
    assert traces.search(flow="officer_check") == []
    assert [r["call_sid"] for r in traces.search(count=1, offset=1)] == [good.sid]


def test_a_trace_is_kept_for_its_retention_and_lists_never_scan(store: Store, rig: Rig) -> None:
    caller = call(rig, Script().press(f"{ADVISER}#").hang_up())
    if store.kind == "redis":
        ttl = store.client.ttl(f"cf:call:{{{caller.sid}}}:trace")  # type: ignore[attr-defined]
        days = rig.svc.settings.trace_retention_days
        assert days * 86400 - 60 < ttl <= days * 86400
    else:
        store.clock.advance(rig.svc.settings.trace_retention_days * 86400 + 1)  # type: ignore[attr-defined]
        assert store.trace_steps(caller.sid) == []
        assert rig.svc.traces.get(caller.sid, by="tester", role="designer") is None


def test_callflow_trace_prints_a_call(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    rig: Rig,
    tmp_path: Path,
) -> None:
    caller = call(rig, Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(ANSWERS).hang_up(30))
    monkeypatch.setattr("callflow.cli.common.service", lambda: rig.svc)
    monkeypatch.setenv("USER", "mallory")
    assert main(["trace", caller.sid]) == 1, "a real call's trace is read by a signed-in person"
    assert "callflow login" in capsys.readouterr().err
    cli_sign_in(monkeypatch, tmp_path, rig.svc, "vstrs_agent", sees_id=AGENT)
    assert main(["trace", caller.sid]) == 1
    assert "is for a call-flow designer, an auditor or an admin" in capsys.readouterr().err
    cli_sign_in(monkeypatch, tmp_path, rig.svc, "designer")
    assert main(["trace", caller.sid]) == 0
    out = capsys.readouterr().out
    assert f"call {caller.sid} on flow vstrs_inbound@" in out
    assert "ended completed in state connect" in out
    assert "digits keyed, hidden (decided: pin_accepted)" in out
    assert "greeting -digits-> ask_pin" in out and f'digits "{ADVISER}"' in out
    assert ">   say: Please key your PIN, then press the hash key." in out
    assert PIN not in out and "Hill Top" not in out
    assert main(["trace", "--flow", "vstrs_inbound"]) == 0
    assert caller.sid in capsys.readouterr().out
    assert main(["trace", "CA" + "0" * 32]) == 1
    reads = [e for e in rig.svc.audit.entries() if e["kind"] == "trace.read"]
    assert [(e["by"], e["role"]) for e in reads] == [("dana (CLI)", "designer")]


def test_outline_of_twiml() -> None:
    assert outline('<Response><Say voice="Polly.Amy">Hello</Say><Hangup/></Response>') == [
        "say: Hello",
        "hangup",
    ]
    assert outline("not xml") == ["(not TwiML)"] and outline("") == []


# ---------------------------------------------------------------- the consoles


@pytest.fixture
def browsers(rig: Rig) -> dict[str, FlaskClient]:
    svc, now = rig.svc, rig.svc.clock.now()
    for username, role, extra in (
        ("dee", "designer", {}),
        ("aud", "auditor", {}),
        ("ada", "admin", {}),
        ("amy", "vstrs_agent", {"sees_id": AGENT}),
        ("sam", "specialist", {"specialist": KIM}),
    ):
        svc.accounts.add(username, username.title(), role, PASSWORD, now, by="tests", **extra)
    app = create_app({"TESTING": True, "CALLFLOW_SERVICE": svc})
    made = {}
    for username in ("dee", "aud", "ada", "amy", "sam"):
        browser = app.test_client()
        assert sign_in(browser, username).status_code == 303
        made[username] = browser
    return made


def test_the_designer_finds_a_call_and_sees_its_path(
    rig: Rig, browsers: dict[str, FlaskClient]
) -> None:
    caller = call(rig, Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(ANSWERS).hang_up(30))
    designer = browsers["dee"]
    listing = designer.get("/console/calls?flow=vstrs_inbound").get_data(as_text=True)
    assert caller.sid in listing and "completed in <strong>connect</strong>" in listing
    assert designer.get("/console/calls?flow=officer_check").get_data(as_text=True).count(
        "No ended calls match"
    ) == 1
    found = designer.get(f"/console/calls?call={caller.sid}")
    assert found.status_code == 303 and found.headers["Location"].endswith(caller.sid)
    page = designer.get(f"/console/calls/{caller.sid}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Class connect s_active" in html and "Class greeting s_previous" in html
    assert re.search(r"greeting --&gt; ask_pin: digits \(step 1\)", html)
    assert "keyed, hidden (decided: pin_accepted)" in html and PIN not in html
    assert "unsafe-inline" in page.headers["Content-Security-Policy"]
    assert designer.get("/console/calls/CA" + "0" * 32).status_code == 404
    assert designer.get("/console/calls/not-a-call").status_code == 404
    refused = designer.get("/console/calls?from=yesterday")
    assert refused.status_code == 400 and "must be a real date" in refused.get_data(as_text=True)
    reads = [e for e in rig.svc.audit.entries() if e["kind"] == "trace.read"]
    assert [(e["by"], e["role"], e["call_sid"]) for e in reads] == [
        ("dee", "designer", caller.sid)
    ]


def test_an_auditor_lists_calls_and_opens_their_traces(
    rig: Rig, browsers: dict[str, FlaskClient]
) -> None:
    caller = call(rig, Script().press(f"{ADVISER}#").hang_up())
    auditor = browsers["aud"]
    assert "open-trace" in auditor.get("/console/auditor").get_data(as_text=True)
    # A CallSid typed in lower case (or with spaces round it) is the same call.
    found = auditor.get(f"/console/calls?call=+{caller.sid.lower()}+")
    assert found.status_code == 303 and found.headers["Location"].endswith(caller.sid)
    assert auditor.get(found.headers["Location"]).status_code == 200
    listing = auditor.get("/console/calls?flow=vstrs_inbound")
    assert listing.status_code == 200 and caller.sid in listing.get_data(as_text=True)
    today = rig.svc.clock.now()
    from datetime import UTC, datetime

    day = datetime.fromtimestamp(today, UTC)
    by_day = auditor.get(
        f"/console/calls?flow=vstrs_inbound&from_day={day.day}&from_month={day.month}"
        f"&from_year={day.year}&to_day={day.day}&to_month={day.month}&to_year={day.year}"
    )
    assert caller.sid in by_day.get_data(as_text=True)
    assert browsers["ada"].get(f"/console/calls/{caller.sid}").status_code == 200
    roles = [e["role"] for e in rig.svc.audit.entries() if e["kind"] == "trace.read"]
    assert roles == ["auditor", "admin"]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("call=CA123", "call", "A CallSid is CA followed by 32 letters and digits"),
        ("flow=nope", "flow", "Choose a flow from the list"),
        ("outcome=Bad-State", "outcome", "lower-case letters"),
        ("from_day=31&from_month=2&from_year=2026", "from", "must be a real date"),
        ("from_day=1&from_month=12", "from", "must include a year"),
        ("from=yesterday", "from", "must be a real date"),
        (
            "from_day=7&from_month=12&from_year=2026&to_day=1&to_month=12&to_year=2026",
            "to",
            "must be the same as or after its start",
        ),
    ],
)
def test_bad_input_on_the_calls_page_gets_a_field_error(
    browsers: dict[str, FlaskClient], query: str, field: str, message: str
) -> None:
    page = browsers["aud"].get(f"/console/calls?{query}")
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "There is a problem" in html and f'href="#{field}"' in html and message in html


@pytest.mark.parametrize("who", ["amy", "sam"])
def test_agents_and_specialists_never_read_a_trace(
    rig: Rig, browsers: dict[str, FlaskClient], who: str
) -> None:
    caller = call(rig, Script().press(f"{ADVISER}#").hang_up())
    browser = browsers[who]
    assert browser.get(f"/console/calls/{caller.sid}").status_code == 403
    assert browser.get("/console/calls").status_code == 403
    assert browser.get(f"/console/calls?call={caller.sid}").status_code == 403
    assert not [e for e in rig.svc.audit.entries() if e["kind"] == "trace.read"]


def test_whatever_arrives_at_a_secret_prompt_is_never_kept(service: Any, caller: Any) -> None:
    """A SpeechResult sent to the keypad PIN prompt fires an event no secret check hears:
    the prompt's own mark hides it, in the trace and everywhere else."""
    spoken = "my pin is 975318"
    caller.start()
    caller.press(ADVISER)
    caller.say(spoken)  # at the PIN prompt, which takes keys
    caller.press(PIN)
    caller.press("4242")  # keys at the (speech and keys) question: a wrong answer
    trace = service.traces.get(caller.call_sid, by="tester", role="designer")
    assert trace is not None
    no_secret_in(trace, spoken, "975318", PIN, "4242")
    at_pin = [s for s in trace["steps"] if s["from"] == "ask_pin"]
    assert [s["input"]["value"] for s in at_pin] == [HIDDEN_SAID, HIDDEN_KEYED]
    assert at_pin[0].get("masked") == "prompt" and "decided" not in at_pin[0]
    assert at_pin[1]["decided"] == ["pin_accepted"]
    (answer,) = [s for s in trace["steps"] if s["from"] == "ask_question"]
    assert answer["input"]["value"] == HIDDEN_KEYED
    kept = json.dumps(
        [service.store.get_session(caller.call_sid).to_dict()]  # the session itself
        + [e for e in service.audit.all_entries()]
    )
    for secret in (spoken, "975318", PIN, "4242"):
        assert secret not in kept


def test_lint_requires_secret_prompts_where_input_reaches_a_secret_check() -> None:
    from callflow.errors import FlowValidationError
    from callflow.flowspec import parse_flow
    from tests.conftest import FLOWS

    source = (FLOWS / "vstrs_inbound.yaml").read_text()
    marked = "secret: true  # what is keyed or said here is never kept"
    assert source.count(marked) == 2
    unmarked = source.replace(marked, "input: dtmf", 1).replace(
        "input: dtmf\n          input: dtmf", "input: dtmf"
    )
    with pytest.raises(FlowValidationError) as refused:
        parse_flow(unmarked, "vstrs_inbound.yaml")
    (problem,) = refused.value.problems
    assert "the gather in state 'ask_pin' takes input that check_pin reads as a secret" in (
        problem.message
    )
    assert problem.line == source.splitlines().index("  ask_pin:") + 3
    with pytest.raises(FlowValidationError, match="must be true or false"):
        parse_flow(source.replace("secret: true", "secret: 1", 1), "vstrs_inbound.yaml")
