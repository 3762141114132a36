"""The REST subset through the real twilio.rest.Client, checked against Twilio's API description."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from callflow.simulator import Callee, Script, Simulator
from callflow.simulator.rest import RestApi, RestServer, SimulatorHttpClient
from tests.simulator.conftest import BASE, TOKEN, TwimlApp

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "twilio" / "twilio_api_v2010.json"
AGENT = "+441632960100"
SPECIALIST = "+441632960200"


def _jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: `nullable` becomes a null type; refs stay."""
    if isinstance(node, dict):
        out = {
            k: _jsonschema(v)
            for k, v in node.items()
            if k not in {"nullable", "x-twilio", "example"}
        }
        if node.get("nullable"):
            if "type" in out:
                out["type"] = [out["type"], "null"]
            elif "$ref" in out:
                out = {"anyOf": [{"$ref": out["$ref"]}, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_jsonschema(v) for v in node]
    return node


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.skip(f"Twilio's API description is not beside the checkout ({SPEC_PATH})")
    return json.loads(SPEC_PATH.read_text())


def check(spec: dict[str, Any], path: str, method: str, status: str, body: Any) -> None:
    """Validate a response body against the API description's schema for that operation."""
    operation = spec["paths"][path][method]
    schema = copy.deepcopy(operation["responses"][status]["content"]["application/json"]["schema"])
    document = {"components": _jsonschema(spec["components"]), **_jsonschema(schema)}
    jsonschema.validate(body, document, format_checker=None)


@pytest.fixture
def client(sim: Simulator) -> Client:
    return Client(sim.account_sid, TOKEN, http_client=SimulatorHttpClient(RestApi(sim)))


def raw(sim: Simulator, method: str, tail: str, **form: str) -> tuple[int, Any]:
    api = RestApi(sim)
    path = f"/2010-04-01/Accounts/{sim.account_sid}/{tail}"
    return api.handle(method, path, {k: [v] for k, v in form.items()}, (sim.account_sid, TOKEN))


def test_create_and_fetch_a_call_with_every_status_callback(
    sim: Simulator, client: Client, twiml_app: TwimlApp
) -> None:
    twiml_app.twiml("/outbound", "<Say>Hello agent</Say><Pause length='5'/>")
    sim.add_callee(AGENT, Callee("answered", after=3))
    call = client.calls.create(
        to=AGENT,
        from_="+441632960999",
        url=f"{BASE}/outbound",
        status_callback=f"{BASE}/call-status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    assert (
        call.status == "queued" and call.sid.startswith("CA") and call.direction == "outbound-api"
    )
    sim.run()
    statuses = [(p["CallStatus"], p["SequenceNumber"]) for p in twiml_app.got("/call-status")]
    assert statuses == [("queued", "0"), ("ringing", "1"), ("in-progress", "2"), ("completed", "3")]
    fetched = client.calls(call.sid).fetch()
    assert fetched.status == "completed" and fetched.duration == "6"
    assert sim.legs[call.sid].heard() == ["Hello agent"]


def test_unknown_call_is_a_404(client: Client) -> None:
    with pytest.raises(TwilioRestException) as info:
        client.calls("CA" + "0" * 32).fetch()
    assert info.value.status == 404 and info.value.code == 20404


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": "+441632960999", "Url": "https://x/y"}, 21201),
        ({"To": AGENT, "Url": "https://x/y"}, 21603),
        ({"To": AGENT, "From": "+441632960999"}, 21205),
        ({"To": AGENT, "From": "+1", "Url": "nope"}, 21205),
    ],
)
def test_invalid_call_create_is_a_400_with_twilios_code(
    sim: Simulator, form: dict[str, str], code: int
) -> None:
    status, body = raw(sim, "POST", "Calls.json", **form)
    assert status == 400 and body["code"] == code and body["status"] == 400


def test_wrong_credentials_are_a_401(sim: Simulator) -> None:
    api = RestApi(sim)
    status, body = api.handle(
        "GET", f"/2010-04-01/Accounts/{sim.account_sid}/Conferences.json", {}, ("x", "y")
    )
    assert status == 401 and body["code"] == 20003


def test_update_a_call_with_twiml_then_hang_it_up(
    sim: Simulator, client: Client, twiml_app: TwimlApp
) -> None:
    twiml_app.twiml("/voice", '<Say>Hold on</Say><Pause length="100"/>')
    leg = sim.call("+441632960999", "+441632960001", Script().hang_up(after=500))
    sim.run(max_seconds=5)
    client.calls(leg.sid).update(twiml="<Response><Say>Moved</Say><Pause length='50'/></Response>")
    sim.run(max_seconds=5)
    assert leg.heard()[-1] == "Moved"
    client.calls(leg.sid).update(status="completed")
    sim.run()
    assert leg.status == "completed"
    with pytest.raises(TwilioRestException) as info:
        client.calls(leg.sid).update(url=f"{BASE}/voice")
    assert info.value.status == 400 and info.value.code == 21220


def test_update_a_call_to_a_new_url(sim: Simulator, client: Client, twiml_app: TwimlApp) -> None:
    twiml_app.twiml("/voice", '<Enqueue waitUrl="/hold">line</Enqueue>')
    twiml_app.twiml("/hold", '<Pause length="30"/>')
    twiml_app.twiml("/elsewhere", "<Say>Redirected</Say>")
    leg = sim.call("+441632960999", "+441632960001", Script().hang_up(after=500))
    sim.run(max_seconds=5)
    client.calls(leg.sid).update(url=f"{BASE}/elsewhere", method="POST")
    sim.run()
    assert leg.heard()[-1] == "Redirected" and sim.queues["line"] == []


def test_cancel_a_ringing_call(sim: Simulator, client: Client) -> None:
    sim.add_callee(AGENT, Callee("answered", after=20))
    call = client.calls.create(
        to=AGENT, from_="+441632960999", twiml="<Response><Say>Hi</Say></Response>"
    )
    sim.run(max_seconds=2)
    client.calls(call.sid).update(status="canceled")
    sim.run()
    assert sim.legs[call.sid].status == "canceled"


@pytest.fixture
def conference_call(sim: Simulator, twiml_app: TwimlApp) -> Iterator[Any]:
    twiml_app.twiml(
        "/voice",
        '<Dial action="/after"><Conference statusCallback="/conf" '
        'statusCallbackEvent="start end join leave hold mute" participantLabel="customer" '
        'startConferenceOnEnter="false">call-room</Conference></Dial>',
    )
    twiml_app.twiml("/after", "<Say>Back from the conference</Say><Pause length='100'/>")
    twiml_app.twiml("/hold-music", "<Play>https://x/hold.mp3</Play>")
    twiml_app.twiml("/announce", "<Say>A specialist is joining</Say>")
    leg = sim.call(
        "+441632960999", "+441632960001", Script().hang_up(after=3000).hang_up(after=3000)
    )
    sim.run(max_seconds=3)
    yield leg


def test_participants_through_the_api(
    sim: Simulator, client: Client, twiml_app: TwimlApp, conference_call: Any
) -> None:
    caller = conference_call
    conf = client.conferences.list(friendly_name="call-room")[0]
    assert conf.status == "init"
    sim.add_callee(AGENT, Callee("answered", after=2, script=Script().hang_up(after=3000)))
    created = client.conferences(conf.sid).participants.create(
        from_="+441632960999",
        to=AGENT,
        label="agent",
        end_conference_on_exit=True,
        status_callback=f"{BASE}/agent-status",
        status_callback_event=["answered", "completed"],
    )
    assert created.label == "agent" and created.status in {"queued", "ringing"}
    sim.run(max_seconds=5)
    assert client.conferences(conf.sid).fetch().status == "in-progress"
    agent_sid = created.call_sid
    fetched = client.conferences(conf.sid).participants(agent_sid).fetch()
    assert fetched.status == "connected" and fetched.end_conference_on_exit is True

    client.conferences(conf.sid).participants(caller.sid).update(
        hold=True, hold_url=f"{BASE}/hold-music"
    )
    client.conferences(conf.sid).participants(agent_sid).update(muted=True)
    sim.run(max_seconds=5)
    assert client.conferences(conf.sid).participants(caller.sid).fetch().hold is True
    assert "https://x/hold.mp3" in caller.heard()
    client.conferences(conf.sid).participants(caller.sid).update(hold=False)
    client.conferences(conf.sid).update(announce_url=f"{BASE}/announce")
    sim.run(max_seconds=5)
    assert caller.heard()[-1] == "A specialist is joining"

    client.conferences(conf.sid).participants(agent_sid).delete()
    sim.run()
    events = [
        (p["StatusCallbackEvent"], p.get("ReasonParticipantLeft") or p.get("ReasonConferenceEnded"))
        for p in twiml_app.got("/conf")
    ]
    assert events == [
        ("participant-join", None),
        ("participant-join", None),
        ("conference-start", None),
        ("participant-hold", None),
        ("participant-mute", None),
        ("participant-unhold", None),
        ("participant-leave", "participant_updated_via_api"),
        ("participant-leave", "conference_ended"),
        ("conference-end", "participant-with-end-conference-on-exit-kicked"),
    ]
    assert sim.legs[agent_sid].status == "completed", (
        "a participant added by the API hangs up when removed"
    )
    assert caller.heard()[-1] == "Back from the conference", "the caller's <Dial> carries on"
    assert [p["CallStatus"] for p in twiml_app.got("/agent-status")] == ["in-progress", "completed"]


def test_end_a_conference_through_the_api(
    sim: Simulator, client: Client, twiml_app: TwimlApp, conference_call: Any
) -> None:
    conf = client.conferences.list(friendly_name="call-room")[0]
    client.conferences(conf.sid).update(status="completed")
    sim.run(max_seconds=5)
    fetched = client.conferences(conf.sid).fetch()
    assert (
        fetched.status == "completed"
        and fetched.reason_conference_ended == "conference-ended-via-api"
    )


def test_a_participant_who_does_not_answer(
    sim: Simulator, client: Client, conference_call: Any
) -> None:
    sim.add_callee(SPECIALIST, Callee("busy", after=2))
    created = client.conferences("call-room").participants.create(
        from_="+441632960999", to=SPECIALIST
    )
    sim.run(max_seconds=10)
    assert sim.legs[created.call_sid].status == "busy"
    with pytest.raises(TwilioRestException) as info:
        client.conferences("call-room").participants(created.call_sid).fetch()
    assert info.value.status == 404


def test_responses_match_twilios_api_description(
    sim: Simulator, client: Client, spec: dict[str, Any], twiml_app: TwimlApp, conference_call: Any
) -> None:
    calls = "/2010-04-01/Accounts/{AccountSid}/Calls.json"
    call = "/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json"
    confs = "/2010-04-01/Accounts/{AccountSid}/Conferences.json"
    conf = "/2010-04-01/Accounts/{AccountSid}/Conferences/{Sid}.json"
    parts = "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants.json"
    part = (
        "/2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants/{CallSid}.json"
    )
    sim.add_callee(AGENT, Callee("answered", after=1, script=Script().hang_up(after=3000)))
    status, created = raw(
        sim, "POST", "Calls.json", To=AGENT, From="+441632960999", Url=f"{BASE}/x"
    )
    check(spec, calls, "post", "201", created)
    status, fetched = raw(sim, "GET", f"Calls/{conference_call.sid}.json")
    check(spec, call, "get", "200", fetched)
    status, listed = raw(sim, "GET", "Conferences.json")
    check(spec, confs, "get", "200", listed)
    sid = listed["conferences"][0]["sid"]
    check(spec, conf, "get", "200", raw(sim, "GET", f"Conferences/{sid}.json")[1])
    status, participant = raw(
        sim, "POST", f"Conferences/{sid}/Participants.json", To=AGENT, From="+441632960999"
    )
    assert status == 201
    check(spec, parts, "post", "201", participant)
    sim.run(max_seconds=5)
    check(
        spec,
        part,
        "get",
        "200",
        raw(sim, "GET", f"Conferences/{sid}/Participants/{conference_call.sid}.json")[1],
    )
    check(
        spec,
        part,
        "post",
        "200",
        raw(
            sim, "POST", f"Conferences/{sid}/Participants/{conference_call.sid}.json", Muted="true"
        )[1],
    )
    check(spec, parts, "get", "200", raw(sim, "GET", f"Conferences/{sid}/Participants.json")[1])
    status, error = raw(sim, "GET", "Calls/CA00000000000000000000000000000000.json")
    assert status == 404 and set(error) == {"code", "message", "more_info", "status"}


def test_the_rest_api_over_http(sim: Simulator, twiml_app: TwimlApp) -> None:
    server = RestServer(RestApi(sim)).start()
    try:
        client = Client(sim.account_sid, TOKEN)
        client.api.base_url = server.base_url
        sim.add_callee(AGENT, Callee("answered", after=1))
        call = client.calls.create(
            to=AGENT, from_="+441632960999", twiml="<Response><Say>Over HTTP</Say></Response>"
        )
        sim.run()
        assert sim.legs[call.sid].heard() == ["Over HTTP"]
        assert client.calls(call.sid).fetch().status == "completed"
        with pytest.raises(TwilioRestException) as info:
            Client(sim.account_sid, "wrong").calls.list  # noqa: B018
            bad = Client(sim.account_sid, "wrong")
            bad.api.base_url = server.base_url
            bad.calls(call.sid).fetch()
        assert info.value.status == 401
    finally:
        server.stop()
