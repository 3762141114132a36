"""Signatures, bad input and health: polite TwiML to Twilio, a clear 4xx to anyone else."""

from __future__ import annotations

import logging
from xml.etree import ElementTree as ET

import pytest
from flask import Flask
from flask.testing import FlaskClient

from callflow.service import Callflow
from tests.conftest import ADVISER, BASE_URL, PIN, Caller, make_settings, new_call_sid, sign
from webhooks import create_app


def polite(response: object) -> ET.Element:
    """The answer is valid TwiML that says something and ends with a hang-up."""
    root = ET.fromstring(response.data)  # type: ignore[attr-defined]
    assert root.tag == "Response"
    assert root.find("Say") is not None and root[-1].tag == "Hangup"
    return root


# -- signatures


@pytest.mark.parametrize(
    "pairs",
    [
        [],
        [("CallSid", "CA" + "1" * 32), ("From", "+441632960001"), ("Digits", "")],
        [("b", "2"), ("a", "1"), ("a", "0"), ("a", "1")],  # repeated names and values
        [("SpeechResult", "Hill Top, Llanfair\u0175"), ("Caller", "client:agent one")],
        [("Z", "z"), ("a", "A"), ("_", " ")],  # byte order, not case-blind
    ],
)
def test_the_fast_signature_is_twilios(pairs: list[tuple[str, str]]) -> None:
    """The webhook path signs with its own one-pass HMAC; it must agree with twilio's
    RequestValidator for every kind of form Twilio sends (a MultiDict or a plain dict)."""
    from twilio.request_validator import RequestValidator
    from werkzeug.datastructures import MultiDict

    from webhooks.signature import expected_signature

    token, url = "f" * 32, "https://callflow.example/voice/step?s=3&e=timeout"
    form = MultiDict(pairs)
    assert expected_signature(token, url, form) == RequestValidator(token).compute_signature(
        url, form
    )
    plain = dict(pairs)
    assert expected_signature(token, url, plain) == RequestValidator(token).compute_signature(
        url, plain
    )


def test_missing_signature_is_refused_and_changes_nothing(
    client: FlaskClient, service: Callflow, caplog: pytest.LogCaptureFixture
) -> None:
    call_sid = new_call_sid()
    with caplog.at_level(logging.WARNING):
        response = client.post("/voice/incoming", data={"CallSid": call_sid})
    assert response.status_code == 403
    assert service.store.get_session(call_sid) is None
    assert "no X-Twilio-Signature" in caplog.text


def test_forged_signature_is_refused(client: FlaskClient, service: Callflow) -> None:
    call_sid = new_call_sid()
    form = {"CallSid": call_sid, "From": "+441632960001"}
    forged = sign(f"{BASE_URL}/voice/incoming", form, token="not-the-token")
    response = client.post("/voice/incoming", data=form, headers={"X-Twilio-Signature": forged})
    assert response.status_code == 403
    assert service.store.get_session(call_sid) is None


def test_tampered_parameters_are_refused(caller: Caller, service: Callflow) -> None:
    caller.start()
    caller.press(ADVISER)
    url = caller.gather_url()
    form = {"CallSid": caller.call_sid, "Digits": "135792"}
    signature = sign(url, form)
    form["Digits"] = PIN
    response = caller.client.post(
        url.removeprefix(BASE_URL), data=form, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403
    session = service.store.get_session(caller.call_sid)
    assert session is not None and session.state == "ask_pin"


def test_signature_is_checked_against_the_public_url(caller: Caller) -> None:
    # Signed for the URL the service sees (its Host) rather than PUBLIC_BASE_URL: refused.
    form = {"CallSid": caller.call_sid}
    signature = sign("http://localhost/voice/incoming", form)
    response = caller.client.post(
        "/voice/incoming", data=form, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403


def test_checking_can_only_be_turned_off_explicitly(
    service: Callflow, caplog: pytest.LogCaptureFixture
) -> None:
    from callflow.service import Callflow as Service

    relaxed = Service(
        make_settings(signature_check=False), store=service.store, clock=service.clock
    )
    with caplog.at_level(logging.WARNING):
        app = create_app({"CALLFLOW_SERVICE": relaxed})
    assert "checking is OFF" in caplog.text
    response = app.test_client().post("/voice/incoming", data={"CallSid": new_call_sid()})
    assert response.status_code == 200


# -- bad input


def test_unknown_call_sid_mid_flow(caller: Caller) -> None:
    response = caller.post(f"{BASE_URL}/voice/step?s=3", Digits="1234")
    assert response.status_code == 200
    assert "could not find your call" in polite(response).findtext("Say", "")


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/voice/incoming", {"From": "+441632960001"}),
        ("/voice/incoming", {"CallSid": "not-a-call-sid"}),
        ("/voice/step?s=x", {"CallSid": "CA" + "a" * 32}),
        ("/voice/step", {"CallSid": "CA" + "a" * 32}),
        ("/voice/step?s=1&e=Bad-Event!", {"CallSid": "CA" + "a" * 32}),
        ("/voice/incoming?flow=../../etc", {"CallSid": "CA" + "a" * 32}),
    ],
)
def test_malformed_twilio_parameters_get_polite_twiml(
    client: FlaskClient, path: str, form: dict[str, str]
) -> None:
    response = client.post(
        path, data=form, headers={"X-Twilio-Signature": sign(BASE_URL + path, form)}
    )
    assert response.status_code == 200
    polite(response)


@pytest.mark.parametrize("digits", ["12*4", "1001#", "#", "*" * 6, "1" * 10_000, "٣٤٥٦"])
def test_odd_digits_are_just_not_recognised(caller: Caller, service: Callflow, digits: str) -> None:
    caller.start()
    caller.press(digits)  # as the adviser number
    caller.press(PIN)
    assert caller.says()[0] == "Sorry, we could not verify those details."
    assert service.store.lock_status(ADVISER, service.clock.now()).failures == 0


@pytest.mark.parametrize("speech", ["🙂🙂", "x" * 5000, "Hill\u0000Top!", "ＨＩＬＬ ＴＯＰ?"])
def test_odd_speech_is_handled(caller: Caller, speech: str) -> None:
    caller.start()
    caller.press(ADVISER)
    caller.press(PIN)
    right = "first school" in caller.question() and speech in {"Hill\u0000Top!", "ＨＩＬＬ ＴＯＰ?"}
    caller.say(speech)
    assert caller.last is not None
    if right:  # NUL and full-width letters fold to the registered answer
        assert caller.last.find("Dial/Conference") is not None
    else:
        assert caller.says()[0] == "Sorry, we could not verify those details."


def test_oversized_body_is_refused(client: FlaskClient) -> None:
    response = client.post(
        "/voice/incoming", data={"CallSid": "CA" + "a" * 32, "Junk": "x" * 100_000}
    )
    assert response.status_code == 413
    polite(response)


def test_wrong_method_and_unknown_voice_path(client: FlaskClient) -> None:
    assert client.get("/voice/incoming").status_code == 405
    response = client.post("/voice/nowhere", data={})
    assert response.status_code == 404
    polite(response)
    assert client.get("/nowhere").get_json()["status"] == 404


def test_bad_status_callback_is_a_400(caller: Caller) -> None:
    response = caller.post(f"{BASE_URL}/voice/status", CallStatus="exploded")
    assert response.status_code == 400


def test_status_callback_for_an_unknown_call_is_accepted(caller: Caller) -> None:
    caller.hang_up()


def test_a_broken_flow_at_start_up_gets_an_apology(tmp_path: object, service: Callflow) -> None:
    from pathlib import Path

    from callflow.service import Callflow as Service

    flows = Path(str(tmp_path))
    (flows / "vstrs_inbound.yaml").write_text("flow: vstrs_inbound\ninitial: nowhere\nstates: {}\n")
    broken = Service(make_settings(flows_dir=flows), store=service.store, clock=service.clock)
    assert broken.library.problems
    app = create_app({"CALLFLOW_SERVICE": broken})
    caller = Caller(app.test_client())
    response = caller.post(f"{BASE_URL}/voice/incoming")
    assert response.status_code == 200
    assert "technical problem" in polite(response).findtext("Say", "")


# -- health


def test_healthz(client: FlaskClient, service: Callflow) -> None:
    body = client.get("/healthz").get_json()
    assert body["store_reachable"] is True and body["store"] == service.store.kind
    assert set(body["flows"]) == {
        "vstrs_inbound",
        "specialist_handoff",
        "officer_check",
        "meeting_call",
        "meeting_start",
        "vstrs_callback",
    }


def test_healthz_is_503_without_the_store(
    app: Flask, service: Callflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.store, "ping", lambda: False)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.get_json()["store_reachable"] is False


# -- the voice webhooks' own WSGI layer (webhooks/voice.py answers them before Flask)


def test_a_repeated_name_is_signed_whole_and_read_first(
    client: FlaskClient, service: Callflow
) -> None:
    """Twilio signs every value of a repeated name; the flow reads the first, as it did
    through werkzeug's MultiDict."""
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator
    from werkzeug.datastructures import MultiDict

    from tests.conftest import AUTH_TOKEN

    call_sid = new_call_sid()
    pairs = [("CallSid", call_sid), ("From", "+441632960001"), ("From", "+441632960002")]
    url = f"{BASE_URL}/voice/incoming"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, MultiDict(pairs))
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    response = client.post("/voice/incoming", data=urlencode(pairs), headers=headers)
    assert response.status_code == 200 and ET.fromstring(response.data).tag == "Response"
    session = service.store.get_session(call_sid)
    assert session is not None and session.from_number == "+441632960001"
    # Dropping the second value breaks the signature.
    response = client.post("/voice/incoming", data=urlencode(pairs[:2]), headers=headers)
    assert response.status_code == 403


def test_a_body_that_is_not_a_form_is_an_empty_form(client: FlaskClient) -> None:
    """JSON, or a form that is not UTF-8, reads as no parameters at all (werkzeug's rule):
    signed as such, it gets the polite refusal for a missing CallSid."""
    path = "/voice/incoming"
    for body, kind in (
        (b'{"CallSid": "CA' + b"a" * 32 + b'"}', "application/json"),
        (b"CallSid=CA" + b"a" * 32 + b"&From=\xff\xfe", "application/x-www-form-urlencoded"),
    ):
        headers = {"X-Twilio-Signature": sign(BASE_URL + path, {}), "Content-Type": kind}
        response = client.post(path, data=body, headers=headers)
        assert response.status_code == 200
        polite(response)


def test_a_failure_in_a_voice_webhook_is_a_polite_goodbye(
    caller: Caller,
    service: Callflow,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Anything unexpected under /voice/ is logged and Twilio hears a goodbye (200), never
    a 500 with a stack trace; the metrics count it."""
    from prometheus_client import REGISTRY

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something nobody expected")

    before = (
        REGISTRY.get_sample_value(
            "callflow_webhooks_total", {"endpoint": "hold", "outcome": "error"}
        )
        or 0.0
    )
    monkeypatch.setattr(service.vstrs, "hold_tick", broken)
    with caplog.at_level(logging.ERROR):
        response = caller.post(f"{BASE_URL}/voice/hold?call={caller.call_sid}")
    assert response.status_code == 200
    polite(response)
    assert b"something nobody expected" not in response.data
    assert "unhandled error on POST /voice/hold" in caplog.text
    after = REGISTRY.get_sample_value(
        "callflow_webhooks_total", {"endpoint": "hold", "outcome": "error"}
    )
    assert after == before + 1


def test_refusals_are_counted_and_other_methods_told_what_is_allowed(client: FlaskClient) -> None:
    from prometheus_client import REGISTRY

    def refused() -> float:
        return (
            REGISTRY.get_sample_value(
                "callflow_webhooks_total", {"endpoint": "step", "outcome": "http_403"}
            )
            or 0.0
        )

    before = refused()
    assert client.post("/voice/step?s=1", data={"CallSid": new_call_sid()}).status_code == 403
    assert refused() == before + 1
    for method in ("get", "head", "put", "delete"):
        response = getattr(client, method)("/voice/step?s=1")
        assert response.status_code == 405 and response.headers["Allow"] == "POST"
        assert (response.data == b"") == (method == "head")
    # Everything outside /voice/ is still Flask's.
    assert client.get("/healthz").status_code in {200, 503}


def test_without_a_public_base_url_the_request_s_own_address_is_signed(
    service: Callflow,
) -> None:
    """No PUBLIC_BASE_URL: the URL signed, and the links handed to Twilio, are the address
    the request came to; behind trusted proxies, the scheme they saw."""
    from callflow.service import Callflow as Service

    for proxies, scheme, headers in (
        (0, "http", {}),
        (1, "https", {"X-Forwarded-Proto": "https"}),
    ):
        svc = Service(
            make_settings(public_base_url=None, trusted_proxies=proxies),
            store=service.store,
            clock=service.clock,
        )
        client = create_app({"CALLFLOW_SERVICE": svc}).test_client()
        form = {"CallSid": new_call_sid(), "From": "+441632960001"}
        url = f"{scheme}://voice.example/voice/incoming?lang=cy"
        response = client.post(
            "/voice/incoming?lang=cy",
            data=form,
            base_url="http://voice.example",
            headers={**headers, "X-Twilio-Signature": sign(url, form)},
        )
        assert response.status_code == 200, response.data
        gather = ET.fromstring(response.data).find(".//Gather")
        assert gather is not None
        assert gather.attrib["action"].startswith(f"{scheme}://voice.example/voice/step?s=1")


def test_the_voice_layer_answers_through_the_routes_it_is_given(
    app: Flask, service: Callflow
) -> None:
    """The benchmark's voice-layer floor (bench/floor.py) swaps one route's handler: the
    layer must use it, after the same signature check, and leave the other routes alone."""
    from webhooks.voice import ROUTES, Answer, Hook, VoiceWebhooks, twiml

    layer = app.wsgi_app
    assert isinstance(layer, VoiceWebhooks) and layer.routes is ROUTES
    heard: list[str] = []

    def constant(svc: Callflow, hook: Hook, entry_flow: str) -> Answer:
        heard.append(hook.form["CallSid"])
        return twiml("<Response><Hangup/></Response>", "ok")

    layer.routes = {**ROUTES, "/voice/incoming": ("incoming", constant)}
    try:
        client = app.test_client()
        call_sid = new_call_sid()
        params = {"CallSid": call_sid, "From": "+441632960001"}
        url = f"{BASE_URL}/voice/incoming"
        response = client.post(
            "/voice/incoming", data=params, headers={"X-Twilio-Signature": sign(url, params)}
        )
        assert response.data == b"<Response><Hangup/></Response>" and heard == [call_sid]
        assert service.store.get_session(call_sid) is None  # the engine never ran
        unsigned = client.post("/voice/incoming", data={"CallSid": new_call_sid()})
        assert unsigned.status_code == 403 and heard == [call_sid]
        # Another route is still the service's own.
        assert client.post("/voice/step?s=1", data=params).status_code == 403
    finally:
        layer.routes = ROUTES
