"""Each TwiML verb played as Twilio documents it."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import pytest

from callflow.simulator import Callee, Script, Simulator
from tests.simulator.conftest import BASE, CALLER, NUMBER, TwimlApp, place


def test_requests_carry_twilios_parameters_and_a_valid_signature(
    sim: Simulator, twiml_app: TwimlApp
) -> None:
    twiml_app.twiml("/voice", "<Say>Hello</Say>")
    leg = place(sim)
    params = twiml_app.got("/voice")[0]
    assert params["CallSid"] == leg.sid and leg.sid.startswith("CA") and len(leg.sid) == 34
    assert params["AccountSid"].startswith("AC") and params["ApiVersion"] == "2010-04-01"
    assert params["From"] == params["Caller"] == CALLER
    assert params["To"] == params["Called"] == NUMBER
    assert params["Direction"] == "inbound" and params["CallStatus"] == "ringing"
    assert twiml_app.bad_signatures == 0


def test_say_play_pause_make_a_transcript_and_the_end_hangs_up(
    sim: Simulator, twiml_app: TwimlApp
) -> None:
    twiml_app.twiml(
        "/voice", '<Say>Hello there</Say><Pause length="3"/><Play>https://x/a.mp3</Play>'
    )
    leg = place(sim)
    assert leg.heard() == ["Hello there", "https://x/a.mp3"]
    assert leg.status == "completed"
    kinds = [e.kind for e in leg.log]
    assert kinds == ["call", "hears", "pause", "plays", "twilio", "ended"]
    assert leg.log[3].at >= 4.0, "the pause took its time on the virtual clock"


def test_status_callback_on_completion(sim: Simulator, twiml_app: TwimlApp) -> None:
    twiml_app.twiml("/voice", '<Say>Hi</Say><Pause length="10"/><Hangup/>')
    leg = place(sim)
    (callback,) = twiml_app.got("/status")
    assert callback["CallSid"] == leg.sid and callback["CallStatus"] == "completed"
    assert int(callback["CallDuration"]) >= 10
    assert (
        callback["SequenceNumber"] == "0" and callback["CallbackSource"] == "call-progress-events"
    )
    assert parsedate_to_datetime(callback["Timestamp"]).year >= 2027


# -- Gather


def gather_app(twiml_app: TwimlApp, attrs: str = "") -> None:
    twiml_app.twiml(
        "/voice", f'<Gather action="/got" {attrs}><Say>Key it</Say></Gather><Say>Nothing?</Say>'
    )
    twiml_app.twiml("/got", "<Say>Thanks</Say>")


def test_gather_posts_digits_ended_by_the_finish_key(sim: Simulator, twiml_app: TwimlApp) -> None:
    gather_app(twiml_app)
    leg = place(sim, Script().press("1234#"))
    (got,) = twiml_app.got("/got")
    assert got["Digits"] == "1234" and got["FinishedOnKey"] == "#"
    assert leg.heard() == ["Key it", "Thanks"]


def test_gather_ends_at_num_digits(sim: Simulator, twiml_app: TwimlApp) -> None:
    gather_app(twiml_app, 'numDigits="2"')
    place(sim, Script().press("987"))
    assert twiml_app.got("/got")[0]["Digits"] == "98"


def test_gather_submits_what_it_has_after_the_timeout(sim: Simulator, twiml_app: TwimlApp) -> None:
    gather_app(twiml_app, 'timeout="7"')
    leg = place(sim, Script().press("55"))
    got = twiml_app.got("/got")[0]
    assert got["Digits"] == "55" and got["FinishedOnKey"] == ""
    assert next(e for e in leg.log if e.kind == "presses").at >= 7


def test_gather_with_no_input_falls_through(sim: Simulator, twiml_app: TwimlApp) -> None:
    gather_app(twiml_app)
    leg = place(sim, Script().silent())
    assert twiml_app.got("/got") == []
    assert leg.heard() == ["Key it", "Nothing?"]


def test_only_the_finish_key_falls_through_too(sim: Simulator, twiml_app: TwimlApp) -> None:
    gather_app(twiml_app)
    leg = place(sim, Script().press("#"))
    assert twiml_app.got("/got") == [] and leg.heard()[-1] == "Nothing?"


def test_action_on_empty_result(sim: Simulator, twiml_app: TwimlApp) -> None:
    gather_app(twiml_app, 'actionOnEmptyResult="true"')
    place(sim, Script().silent())
    assert twiml_app.got("/got")[0]["Digits"] == ""


def test_speech_gather(sim: Simulator, twiml_app: TwimlApp) -> None:
    gather_app(twiml_app, 'input="speech"')
    place(sim, Script().say("Hill Top", confidence=0.81))
    got = twiml_app.got("/got")[0]
    assert got["SpeechResult"] == "Hill Top" and got["Confidence"] == "0.81" and "Digits" not in got


def test_keys_at_a_speech_only_gather_are_not_heard(sim: Simulator, twiml_app: TwimlApp) -> None:
    gather_app(twiml_app, 'input="speech"')
    leg = place(sim, Script().press("12#"))
    assert twiml_app.got("/got") == [] and leg.heard()[-1] == "Nothing?"


def test_dtmf_speech_takes_either(sim: Simulator, twiml_app: TwimlApp) -> None:
    gather_app(twiml_app, 'input="dtmf speech"')
    place(sim, Script().press("42#"))
    gather_app(twiml_app, 'input="dtmf speech"')
    place(sim, Script().say("blue"))
    got = twiml_app.got("/got")
    assert got[0]["Digits"] == "42" and got[1]["SpeechResult"] == "blue"


def test_gather_without_action_posts_to_the_current_document(
    sim: Simulator, twiml_app: TwimlApp
) -> None:
    calls = []

    def page(params: dict[str, str]) -> str:
        calls.append(params.get("Digits"))
        if "Digits" in params:
            return "<Response><Say>Done</Say></Response>"
        return "<Response><Gather><Say>Key</Say></Gather></Response>"

    twiml_app.pages["/voice"] = page
    place(sim, Script().press("7#"))
    assert calls == [None, "7"]


def test_a_caller_with_nothing_left_to_do_hangs_up(sim: Simulator, twiml_app: TwimlApp) -> None:
    gather_app(twiml_app)
    leg = place(sim, Script())
    assert leg.status == "completed" and leg.log[-2].kind == "hangs up"


# -- Redirect, Hangup, Reject


def test_redirect_fetches_relative_urls_with_its_method(
    sim: Simulator, twiml_app: TwimlApp
) -> None:
    twiml_app.twiml("/voice", '<Redirect method="GET">next?x=1</Redirect><Say>never</Say>')
    twiml_app.twiml("/next", "<Say>Next</Say>")
    leg = place(sim)
    assert leg.heard() == ["Next"]
    assert twiml_app.got("/next")[0]["x"] == "1"
    assert twiml_app.bad_signatures == 0


def test_hangup_stops_the_document(sim: Simulator, twiml_app: TwimlApp) -> None:
    twiml_app.twiml("/voice", "<Hangup/><Say>never</Say>")
    leg = place(sim)
    assert leg.heard() == [] and leg.status == "completed"


@pytest.mark.parametrize(
    ("reason", "status"), [("busy", "busy"), ("rejected", "no-answer"), (None, "no-answer")]
)
def test_reject_first_refuses_the_call(
    sim: Simulator, twiml_app: TwimlApp, reason: str | None, status: str
) -> None:
    attr = f' reason="{reason}"' if reason else ""
    twiml_app.twiml("/voice", f"<Reject{attr}/>")
    leg = place(sim)
    assert leg.status == status and leg.answered_at is None
    assert twiml_app.got("/status")[0]["CallStatus"] == status


# -- errors


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("<Response><Say>unclosed</Response>", 12100),
        ("<Answer><Say>hi</Say></Answer>", 12100),
        ("<Response><Dance/></Response>", 12200),
        ("<Response><Gather><Dial>123</Dial></Gather></Response>", 12200),
        ("<Response><Say><Hangup/></Say></Response>", 12200),
        ('<Response><Gather input="telepathy"/></Response>', 12200),
        ('<Response><Gather timeout="soon"/></Response>', 12200),
    ],
)
def test_bad_twiml_is_reported_with_twilios_code(
    sim: Simulator, twiml_app: TwimlApp, body: str, code: int
) -> None:
    twiml_app.pages["/voice"] = body
    leg = place(sim)
    assert [c for _, c, _ in sim.errors] == [code]
    assert "application error" in leg.heard()[-1]


def test_a_500_without_fallback_is_an_application_error(
    sim: Simulator, twiml_app: TwimlApp
) -> None:
    twiml_app.pages["/voice"] = lambda params: ("oops", 500)
    leg = place(sim)
    assert [c for _, c, _ in sim.errors] == [11200]
    assert len(twiml_app.got("/voice")) == 1, "by default Twilio only retries failed connections"
    assert "application error" in leg.heard()[-1]


def test_a_500_goes_to_the_fallback_url(sim: Simulator, twiml_app: TwimlApp) -> None:
    sim.configure_number(NUMBER, f"{BASE}/voice", fallback_url=f"{BASE}/fallback")
    twiml_app.pages["/voice"] = lambda params: ("oops", 500)
    twiml_app.twiml("/fallback", "<Say>Fallback speaking</Say>")
    leg = place(sim)
    assert leg.heard() == ["Fallback speaking"]
    assert twiml_app.got("/fallback")[0]["ErrorCode"] == "11200"


def test_connection_overrides_retry_a_5xx(sim: Simulator, twiml_app: TwimlApp) -> None:
    answers = iter([("busy", 503), ("<Response><Say>Second time</Say></Response>", 200)])
    twiml_app.pages["/voice"] = lambda params: next(answers)
    sim.configure_number(NUMBER, f"{BASE}/voice#rc=1&rp=5xx")
    leg = place(sim)
    assert leg.heard() == ["Second time"] and len(twiml_app.got("/voice")) == 2


def test_wrong_content_type(sim: Simulator, twiml_app: TwimlApp) -> None:
    from flask import Response

    app = twiml_app.wsgi()
    app.view_functions["serve"] = lambda path: Response("{}", mimetype="application/json")
    sim.transport.client.application = app  # type: ignore[attr-defined]
    place(sim)
    assert [c for _, c, _ in sim.errors] == [12300]


# -- Dial


def dial_app(
    twiml_app: TwimlApp, dial: str = '<Dial action="/dialled" timeout="20">+441632960555</Dial>'
) -> None:
    twiml_app.twiml("/voice", dial + "<Say>after dial</Say>")
    twiml_app.twiml("/dialled", "<Say>dial over</Say>")


def test_dial_answered_then_the_callee_hangs_up(sim: Simulator, twiml_app: TwimlApp) -> None:
    dial_app(twiml_app)
    sim.add_callee("+441632960555", Callee("answered", after=4, script=Script().hang_up(after=30)))
    leg = place(sim, Script().hang_up(after=600))
    got = twiml_app.got("/dialled")[0]
    assert got["DialCallStatus"] == "completed" and got["DialCallSid"].startswith("CA")
    assert int(got["DialCallDuration"]) == 30 and got["DialBridged"] == "true"
    assert leg.heard() == ["dial over"]
    child = sim.legs[got["DialCallSid"]]
    assert (
        child.parent is leg and child.direction == "outbound-dial" and child.status == "completed"
    )


@pytest.mark.parametrize(
    ("outcome", "status"), [("busy", "busy"), ("no-answer", "no-answer"), ("failed", "failed")]
)
def test_dial_not_answered(sim: Simulator, twiml_app: TwimlApp, outcome: str, status: str) -> None:
    dial_app(twiml_app)
    sim.add_callee("+441632960555", Callee(outcome, after=2))  # type: ignore[arg-type]
    place(sim)
    assert twiml_app.got("/dialled")[0]["DialCallStatus"] == status


def test_dial_rings_out_at_its_timeout(sim: Simulator, twiml_app: TwimlApp) -> None:
    dial_app(twiml_app)
    sim.add_callee("+441632960555", Callee("answered", after=25))
    leg = place(sim)
    assert twiml_app.got("/dialled")[0]["DialCallStatus"] == "no-answer"
    assert [e for e in leg.log if e.kind == "dial"][-1].at >= 20


def test_dial_without_action_carries_on(sim: Simulator, twiml_app: TwimlApp) -> None:
    dial_app(twiml_app, "<Dial>+441632960555</Dial>")
    sim.add_callee("+441632960555", Callee("busy", after=1))
    leg = place(sim)
    assert leg.heard() == ["after dial"]


def test_dial_a_client(sim: Simulator, twiml_app: TwimlApp) -> None:
    dial_app(twiml_app, '<Dial action="/dialled"><Client>agent_amy</Client></Dial>')
    sim.add_callee(
        "client:agent_amy", Callee("answered", after=1, script=Script().hang_up(after=5))
    )
    place(sim, Script().hang_up(after=100))
    assert twiml_app.got("/dialled")[0]["DialCallStatus"] == "completed"


def test_caller_hanging_up_during_a_dial_ends_the_child(
    sim: Simulator, twiml_app: TwimlApp
) -> None:
    dial_app(twiml_app)
    sim.add_callee("+441632960555", Callee("answered", after=1, script=Script().hang_up(after=500)))
    leg = place(sim, Script().hang_up(after=10))
    child = next(other for other in sim.legs.values() if other.parent is leg)
    assert leg.status == "completed" and child.status == "completed"
    assert twiml_app.got("/dialled") == []


# -- Enqueue


def test_enqueue_loops_wait_url_until_leave(sim: Simulator, twiml_app: TwimlApp) -> None:
    twiml_app.twiml("/voice", '<Enqueue action="/left" waitUrl="/wait">support</Enqueue>')
    count = {"n": 0}

    def wait(params: dict[str, str]) -> str:
        count["n"] += 1
        body = "<Leave/>" if count["n"] == 3 else '<Say>Please hold</Say><Pause length="10"/>'
        return f"<Response>{body}</Response>"

    twiml_app.pages["/wait"] = wait
    twiml_app.twiml("/left", "<Say>You left</Say>")
    leg = place(sim, Script().hang_up(after=600))
    waits = twiml_app.got("/wait")
    assert (
        len(waits) == 3
        and waits[0]["QueuePosition"] == "1"
        and waits[0]["QueueSid"].startswith("QU")
    )
    left = twiml_app.got("/left")[0]
    assert left["QueueResult"] == "leave"
    assert leg.heard() == ["Please hold", "Please hold", "You left"]


def test_caller_hangs_up_in_the_queue(sim: Simulator, twiml_app: TwimlApp) -> None:
    twiml_app.twiml("/voice", '<Enqueue action="/left">support</Enqueue>')
    twiml_app.twiml("/left", "<Say>unheard</Say>")
    leg = place(sim, Script().hang_up(after=30))
    assert twiml_app.got("/left")[0]["QueueResult"] == "hangup"
    assert int(twiml_app.got("/left")[0]["QueueTime"]) == 30
    assert leg.status == "completed" and "unheard" not in leg.heard()
    assert sim.queues["support"] == []


def test_dial_queue_bridges_and_the_caller_carries_on(sim: Simulator, twiml_app: TwimlApp) -> None:
    twiml_app.twiml("/voice", '<Enqueue action="/left">support</Enqueue>')
    twiml_app.twiml("/left", "<Say>Thanks for waiting</Say>")
    twiml_app.twiml("/agent", '<Dial action="/agent-done"><Queue>support</Queue></Dial>')
    twiml_app.twiml("/agent-done", "<Hangup/>")
    sim.configure_number("+441632960777", f"{BASE}/agent")
    caller = sim.call(NUMBER, CALLER, Script().hang_up(after=900))
    sim.run(max_seconds=5)
    agent = sim.call("+441632960777", "+441632960444", Script().hang_up(after=40), label="agent")
    sim.run()
    assert twiml_app.got("/left")[0]["QueueResult"] == "bridged"
    assert caller.heard()[-1] == "Thanks for waiting"
    assert twiml_app.got("/agent-done") == [], "the agent hung up: their call is over"
    assert agent.status == "completed"


def test_dial_queue_continues_the_agent_when_the_caller_hangs_up(
    sim: Simulator, twiml_app: TwimlApp
) -> None:
    twiml_app.twiml("/voice", '<Enqueue action="/left">support</Enqueue>')
    twiml_app.twiml("/agent", '<Dial action="/agent-done"><Queue>support</Queue></Dial>')
    twiml_app.twiml("/agent-done", "<Say>Next caller?</Say>")
    sim.configure_number("+441632960777", f"{BASE}/agent")
    # Waits up to 900 s in the queue, then talks for 50 s once connected.
    sim.call(NUMBER, CALLER, Script().hang_up(after=900).hang_up(after=50))
    sim.run(max_seconds=5)
    agent = sim.call("+441632960777", "+441632960444", Script().hang_up(after=900), label="agent")
    sim.run()
    done = twiml_app.got("/agent-done")[0]
    assert done["DialCallStatus"] == "completed" and int(done["DialCallDuration"]) == 50
    assert agent.heard()[-1] == "Next caller?"


# -- Conference


def test_conference_starts_with_two_and_ends_with_end_on_exit(
    sim: Simulator, twiml_app: TwimlApp
) -> None:
    conf = (
        '<Dial action="/conf-done"><Conference statusCallback="/conf-events" '
        'statusCallbackEvent="start end join leave" endConferenceOnExit="{end}" '
        'participantLabel="{label}">room1</Conference></Dial>'
    )
    twiml_app.twiml("/voice", conf.format(end="false", label="customer"))
    twiml_app.twiml("/agent", conf.format(end="true", label="agent"))
    twiml_app.twiml("/conf-done", "<Say>Conference over</Say>")
    sim.configure_number("+441632960777", f"{BASE}/agent")
    caller = sim.call(NUMBER, CALLER, Script().hang_up(after=900))
    sim.run(max_seconds=5)
    assert sim.conferences["room1"].status == "init"
    sim.call("+441632960777", "+441632960444", Script().hang_up(after=30), label="agent")
    sim.run()
    events = [p["StatusCallbackEvent"] for p in twiml_app.got("/conf-events")]
    assert events == [
        "participant-join",
        "participant-join",
        "conference-start",
        "participant-leave",
        "participant-leave",
        "conference-end",
    ]
    end = twiml_app.got("/conf-events")[-1]
    assert end["ReasonConferenceEnded"] == "participant-with-end-conference-on-exit-left"
    assert twiml_app.got("/conf-events")[1]["ParticipantLabel"] == "agent"
    assert [int(p["SequenceNumber"]) for p in twiml_app.got("/conf-events")] == list(range(6))
    assert caller.heard()[-1] == "Conference over"
    assert sim.conferences["room1"].status == "completed"


def test_last_participant_leaving_ends_the_conference(sim: Simulator, twiml_app: TwimlApp) -> None:
    twiml_app.twiml(
        "/voice",
        '<Dial><Conference statusCallback="/ev" statusCallbackEvent="end">solo</Conference></Dial>',
    )
    place(sim, Script().hang_up(after=20))
    assert twiml_app.got("/ev")[0]["ReasonConferenceEnded"] == "last-participant-left"


def test_dial_number_with_a_whisper(sim: Simulator, twiml_app: TwimlApp) -> None:
    dial_app(
        twiml_app, '<Dial action="/dialled"><Number url="/whisper">+441632960555</Number></Dial>'
    )
    twiml_app.twiml("/whisper", "<Say>Call from the VSTRS line</Say>")
    callee_script = Script().hang_up(after=20)
    sim.add_callee("+441632960555", Callee("answered", after=2, script=callee_script))
    leg = place(sim, Script().hang_up(after=600))
    child = next(other for other in sim.legs.values() if other.parent is leg)
    assert child.heard() == ["Call from the VSTRS line"]
    got = twiml_app.got("/dialled")[0]
    assert got["DialCallStatus"] == "completed" and got["DialBridged"] == "true"
    assert twiml_app.got("/whisper")[0]["ParentCallSid"] == leg.sid
    assert leg.heard() == ["dial over"]


def test_a_whisper_that_hangs_up_never_connects(sim: Simulator, twiml_app: TwimlApp) -> None:
    dial_app(
        twiml_app, '<Dial action="/dialled"><Number url="/whisper">+441632960555</Number></Dial>'
    )
    twiml_app.twiml("/whisper", "<Say>Not now</Say><Hangup/>")
    sim.add_callee("+441632960555", Callee("answered", after=2))
    leg = place(sim, Script().hang_up(after=600))
    got = twiml_app.got("/dialled")[0]
    assert got["DialBridged"] == "false" and got["DialCallDuration"] == "0"
    assert not any(e.kind == "connected" for e in leg.log)


def test_conference_wait_url_plays_until_it_starts(sim: Simulator, twiml_app: TwimlApp) -> None:
    twiml_app.twiml(
        "/voice",
        '<Dial><Conference waitUrl="/conf-wait" startConferenceOnEnter="false">'
        "room2</Conference></Dial>",
    )
    twiml_app.twiml("/conf-wait", '<Say>Please wait</Say><Pause length="20"/>')
    twiml_app.twiml("/agent", "<Dial><Conference>room2</Conference></Dial>")
    sim.configure_number("+441632960777", f"{BASE}/agent")
    caller = sim.call(NUMBER, CALLER, Script().hang_up(after=900).hang_up(after=900))
    sim.advance(60)
    waits = len(twiml_app.got("/conf-wait"))
    assert waits >= 2 and twiml_app.got("/conf-wait")[0]["FriendlyName"] == "room2"
    sim.call("+441632960777", "+441632960444", Script().hang_up(after=30), label="agent")
    sim.run()
    assert len(twiml_app.got("/conf-wait")) == waits, (
        "the wait music stops when the conference starts"
    )
    assert caller.heard().count("Please wait") == waits


def test_callbacks_out_of_order(sim: Simulator, twiml_app: TwimlApp) -> None:
    from callflow.simulator import Faults

    sim.faults = Faults(reorder_callbacks=60)
    sim.add_callee("+441632960555", Callee("answered", after=1))
    sim.place_outbound(
        "+441632960555",
        NUMBER,
        twiml="<Response><Say>Hi</Say></Response>",
        status_callback=f"{BASE}/status",
        status_events={"initiated", "ringing", "answered", "completed"},
    )
    sim.run()
    statuses = [p["CallStatus"] for p in twiml_app.got("/status")]
    assert statuses == ["completed", "in-progress", "ringing", "queued"]
    assert [p["SequenceNumber"] for p in twiml_app.got("/status")] == ["3", "2", "1", "0"]


class TimingOut:
    """A transport whose first ``n`` requests time out after connecting."""

    def __init__(self, inner: object, n: int) -> None:
        self.inner, self.n = inner, n

    def request(self, *args: object, **kwargs: object) -> object:
        from callflow.simulator import TransportError

        if self.n:
            self.n -= 1
            raise TransportError("timed out", connect=False)
        return self.inner.request(*args, **kwargs)  # type: ignore[attr-defined]


def test_a_timeout_is_not_retried_by_default(sim: Simulator, twiml_app: TwimlApp) -> None:
    twiml_app.twiml("/voice", "<Say>Hello</Say>")
    sim.transport = TimingOut(sim.transport, 1)  # type: ignore[assignment]
    leg = place(sim)
    assert [c for _, c, _ in sim.errors] == [11205] and "application error" in leg.heard()[-1]


def test_a_timeout_is_retried_with_rp_rt(sim: Simulator, twiml_app: TwimlApp) -> None:
    twiml_app.twiml("/voice", "<Say>Hello</Say>")
    sim.configure_number(NUMBER, f"{BASE}/voice#rp=ct,rt&rc=2")
    sim.transport = TimingOut(sim.transport, 2)  # type: ignore[assignment]
    leg = place(sim)
    assert leg.heard() == ["Hello"] and sim.errors == []


def test_dialled_number_status_callbacks(sim: Simulator, twiml_app: TwimlApp) -> None:
    dial_app(
        twiml_app,
        '<Dial action="/dialled"><Number statusCallback="/leg-status" '
        'statusCallbackEvent="initiated ringing answered completed">+441632960555</Number></Dial>',
    )
    sim.add_callee("+441632960555", Callee("answered", after=3, script=Script().hang_up(after=10)))
    leg = place(sim, Script().hang_up(after=600))
    callbacks = twiml_app.got("/leg-status")
    assert [p["CallStatus"] for p in callbacks] == ["queued", "ringing", "in-progress", "completed"]
    assert {p["ParentCallSid"] for p in callbacks} == {leg.sid}
    assert {p["Direction"] for p in callbacks} == {"outbound-dial"}
    assert callbacks[-1]["CallDuration"] == "10"


# -- languages


def test_welsh_say_and_gather_are_taken_as_twilio_takes_them(
    sim: Simulator, twiml_app: TwimlApp
) -> None:
    twiml_app.twiml(
        "/voice",
        '<Say language="cy-GB" voice="Polly.Gwyneth">Croeso.</Say>'
        '<Say language="en-GB" voice="Polly.Amy">Welcome.</Say>'
        '<Gather language="cy-GB" input="dtmf speech" timeout="2">'
        '<Say language="cy-GB" voice="Polly.Gwyneth">Dywedwch eich hoff liw.</Say></Gather>',
    )
    leg = place(sim)
    assert not sim.errors
    assert leg.heard() == ["Croeso.", "Welcome.", "Dywedwch eich hoff liw."]
    assert leg.heard_languages == ["cy-GB", "en-GB", "cy-GB"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('<Gather language="cy" timeout="1"><Say>Hi</Say></Gather>', 13512),
        ('<Say language="welsh">Helo</Say>', 13520),
        ("<Say></Say>", 13520),
    ],
)
def test_a_bad_language_or_empty_say_is_a_twilio_warning(
    sim: Simulator, twiml_app: TwimlApp, body: str, code: int
) -> None:
    twiml_app.twiml("/voice", body)
    place(sim)
    assert code in [c for _, c, _ in sim.errors]
