"""Fuzzing every Twilio-facing endpoint, the JSON API and the sign-in form with hypothesis:
never a 500, never a stack trace, never a change from an invalid request."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callflow.service import Callflow
from tests.conftest import BASE_URL, sign

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
PARAM_NAMES = st.sampled_from(
    [
        "CallSid",
        "Digits",
        "SpeechResult",
        "Confidence",
        "CallStatus",
        "From",
        "To",
        "StatusCallbackEvent",
        "FriendlyName",
        "ParticipantLabel",
        "ConferenceSid",
        "QueueResult",
        "DialCallStatus",
        "FinishedOnKey",
    ]
) | st.text(min_size=1, max_size=20)
VALUES = st.text(max_size=300) | st.sampled_from(
    ["CA" + "a" * 32, "completed", "1001", "#", "*", "", "\x00", "ringing"]
)
PATHS = st.sampled_from(
    [
        "/voice/incoming",
        "/voice/step",
        "/voice/status",
        "/voice/hold",
        "/voice/conference",
        "/voice/leg",
        "/voice/nowhere",
    ]
)
QUERIES = st.dictionaries(
    st.sampled_from(["s", "e", "flow", "ref", "call", "role", "x"]),
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            ["meeting", "agent", "specialist", "officer_check", "meeting_call", "m-0123456789ab"]
        ),
    ),
    max_size=4,
)
OK_STATUSES = {200, 204, 400, 403, 404, 405, 409, 413, 422}


def check(response: Any) -> None:
    assert response.status_code in OK_STATUSES, (response.status_code, response.data[:300])
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and 'File "' not in body
    if response.mimetype == "text/xml" and body.strip():
        assert ET.fromstring(body).tag == "Response"


def snapshot(service: Callflow) -> tuple[int, int]:
    store = service.store
    sessions = len(getattr(store, "_sessions", {}))
    return sessions, len(store.read_audit(100_000))


@pytest.fixture
def memory_service(request: pytest.FixtureRequest) -> Callflow:
    return request.getfixturevalue("service")


@pytest.mark.parametrize("store", ["memory"], indirect=True)
@FUZZ
@given(path=PATHS, query=QUERIES, form=st.dictionaries(PARAM_NAMES, VALUES, max_size=8))
def test_signed_twilio_requests_never_fail(
    client: FlaskClient, service: Callflow, path: str, query: dict[str, str], form: dict[str, str]
) -> None:
    from urllib.parse import urlencode

    url = f"{BASE_URL}{path}" + (f"?{urlencode(query)}" if query else "")
    response = client.post(
        url.removeprefix(BASE_URL), data=form, headers={"X-Twilio-Signature": sign(url, form)}
    )
    check(response)


@pytest.mark.parametrize("store", ["memory"], indirect=True)
@FUZZ
@given(
    path=PATHS,
    form=st.dictionaries(PARAM_NAMES, VALUES, max_size=8),
    signature=st.text(
        st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40
    ),
)
def test_unsigned_requests_change_nothing(
    client: FlaskClient, service: Callflow, path: str, form: dict[str, str], signature: str
) -> None:
    before = snapshot(service)
    response = client.post(
        path, data=form, headers={"X-Twilio-Signature": signature} if signature else {}
    )
    check(response)
    assert response.status_code in {403, 404, 405}
    assert snapshot(service) == before


@pytest.mark.parametrize("store", ["memory"], indirect=True)
@FUZZ
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=50),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=15), children, max_size=5)
        ),
        max_leaves=12,
    ),
    call_sid=st.sampled_from(["CA" + "b" * 32, "nonsense", "CA" + "1" * 32]),
)
def test_the_api_never_fails_on_odd_bodies(
    app: Flask, service: Callflow, body: Any, call_sid: str
) -> None:
    now = service.clock.now()
    if service.staff.agent("123456") is None:
        service.staff.add_agent("123456", "Amy", "client:amy", now, by="tests")
    token = service.staff.issue_token("vstrs_agent", "123456", "Amy", now, by="tests")
    client = app.test_client()
    before = len(service.store.indexed("handoffs", "all"))
    for method, path in (
        ("post", f"/api/calls/{call_sid}/handoffs"),
        ("put", "/api/agents/me/availability"),
        ("get", f"/api/calls/{call_sid}/grant"),
        ("get", "/api/grants?customer=%00"),
    ):
        response = getattr(client, method)(
            path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        check(response)
        assert response.is_json
    assert len(service.store.indexed("handoffs", "all")) == before


@pytest.mark.parametrize("store", ["memory"], indirect=True)
@FUZZ
@given(
    form=st.dictionaries(
        st.sampled_from(["username", "password", "csrf_token", "x"]),
        st.text(max_size=200),
        max_size=4,
    )
)
def test_the_sign_in_form_never_fails(client: FlaskClient, form: dict[str, str]) -> None:
    check(client.post("/console/login", data=form))
