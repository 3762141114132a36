"""Rigs shared by the tests: the service, the simulator and the API wired together for
whole calls (``Rig``), and signing in to the consoles. Test modules take these from here,
never from one another."""

from __future__ import annotations

import re
import textwrap
import threading
import time
from collections.abc import Callable
from random import Random
from typing import Any

from flask.testing import FlaskClient
from twilio.rest import Client

from callflow.access import Viewer
from callflow.clock import ManualClock
from callflow.errors import CallflowError
from callflow.service import Callflow
from callflow.simulator import Callee, Leg, Script, Simulator, WsgiTransport
from callflow.simulator.rest import RestApi, SimulatorHttpClient
from callflow.store import Store
from tests.conftest import ADVISER, AUTH_TOKEN, BASE_URL, FLOWS, PIN, enrol, make_settings
from webhooks import create_app

PASSWORD = "correct horse battery"
VSTRS = "+441632960999"
AGENT = "200001"
TEAM_FIRST, TEAM_SECOND = "+441632960200", "+441632960201"
ANSWERS = {"first school": "Hill Top", "colour": "Blue"}
CUSTOMER = {"name": "Pat Customer", "reference": "2234567890"}
#: Debt Pursuit's specialists: Kim and Lee (away unless a test says otherwise, so the
#: team's numbers ring, and whoever answers one takes it on the console as Kim or Lee).
KIM, LEE = "300101", "300102"
#: Insolvency's specialist, for "another team".
INS = "300201"


def csrf_from(html: bytes) -> str:
    match = re.search(rb'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1).decode()


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    page = client.get("/console/login")
    return client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": csrf_from(page.data)},
    )


class TakesFirst(Script):
    """A specialist who answered a team number: at the first prompt they take the
    hand-off on their console (``take``), then do as ``script`` says."""

    def __init__(self, script: Script, take: Any) -> None:
        super().__init__(steps=script.steps, patience=script.patience, ask=script.ask)
        self._take = take

    def next_for_gather(self, heard: str) -> Any:
        self._take()
        return super().next_for_gather(heard)


class Rig:
    """The service, the simulator, agents, a team with its specialists, and the API."""

    def __init__(self, store: Store, clock: ManualClock, **settings: Any) -> None:
        self.sim = Simulator(None, AUTH_TOKEN, clock=clock)
        client = Client(
            self.sim.account_sid, AUTH_TOKEN, http_client=SimulatorHttpClient(RestApi(self.sim))
        )
        self.svc = Callflow(
            make_settings(**settings), store=store, clock=clock, rng=Random(5), twilio_client=client
        )
        enrol(self.svc)
        app = create_app({"CALLFLOW_SERVICE": self.svc})
        self.app = app
        self.sim.transport = WsgiTransport(app)
        self.api: FlaskClient = app.test_client()
        self.sim.configure_number(
            VSTRS, f"{BASE_URL}/voice/incoming", status_callback=f"{BASE_URL}/voice/status"
        )
        now = clock.now()
        self.svc.staff.add_agent(AGENT, "Alex Agent", "client:alex", now, by="tests")
        self.svc.staff.add_agent("200002", "Other Agent", "client:other", now, by="tests")
        self.svc.staff.set_availability(AGENT, "available", now)
        self.sim.add_callee(
            "client:alex", Callee("answered", after=3, script=Script().hang_up(after=5000))
        )
        self.svc.staff.add_team(
            "debt_pursuit",
            "Debt Pursuit",
            "pursuit",
            [TEAM_FIRST, TEAM_SECOND],
            "Mon-Sun 00:00-24:00",
            by="tests",
            nation="none",
        )
        for number, name in ((KIM, "Kim Specialist"), (LEE, "Lee Specialist")):
            self.svc.staff.add_specialist(
                number, name, "debt_pursuit", f"client:{name.split()[0].lower()}", now, by="tests"
            )
        self.agent_token = self.svc.staff.issue_token("vstrs_agent", AGENT, "Alex", now, by="tests")
        self.other_token = self.svc.staff.issue_token("vstrs_agent", "200002", "Other", now, by="tests")
        self.specialist_token = self.svc.staff.issue_token("specialist", KIM, "Kim", now, by="tests")
        self.colleague_token = self.svc.staff.issue_token("specialist", LEE, "Lee", now, by="tests")

    def tokens_for_everyone(self) -> dict[str, str]:
        """A token for every relationship to a Debt Pursuit hand-off: the agent, another
        agent, the specialist who takes it (Kim), a colleague in the team (Lee), another
        team's specialist (Insolvency, added here) and an admin."""
        svc, now = self.svc, self.svc.clock.now()
        svc.staff.add_team("insolvency", "Insolvency", "", ["+441632960300"], "Mon-Sun 00:00-24:00", by="tests", nation="none")
        svc.staff.add_specialist(INS, "Ian Insolvency", "insolvency", "client:ian", now, by="tests")
        return {
            "agent": self.agent_token,
            "other_agent": self.other_token,
            "specialist": self.specialist_token,
            "colleague": self.colleague_token,
            "other_team": svc.staff.issue_token("specialist", INS, "Insolvency", now, by="tests"),
            "admin": self.admin_token(),
        }

    def admin_token(self, username: str = "ops1") -> str:
        """A personal API token of an admin account (made here when it is not there)."""
        svc, now = self.svc, self.svc.clock.now()
        if svc.accounts.get(username) is None:
            svc.accounts.add(username, "Ops", "admin", PASSWORD, now, by="tests")
        return str(svc.staff.issue_token("admin", username, "Ops", now, by="tests"))

    def viewer(self, specialist: str = KIM) -> Viewer:
        """A specialist of Debt Pursuit, as the service sees them asking."""
        person = self.svc.staff.specialist(specialist)
        assert person is not None
        return Viewer("specialist", team=person.team, name=person.name, specialist=person.id)

    def take_ringing(self, number: str, specialist: str | None = None) -> str | None:
        """Whoever answered ``number`` takes its hand-off on the console (Kim, or Lee when
        Kim is on another); returns who took it."""
        for doc in self.svc.handoffs.live_for_team("debt_pursuit"):
            ringing = doc.get("ringing") or {}
            if doc.get("taken_by") or ringing.get("number") != number:
                continue
            for person in [specialist] if specialist else [KIM, LEE]:
                try:
                    self.svc.handoffs.take(doc["id"], self.viewer(person))
                    return person
                except CallflowError:
                    continue
        return None

    def own_phone(self, specialist: str, after: float = 4, available: bool = True) -> None:
        """A specialist's own phone, answered by them: they key the SEES ID of the agent on
        *their* hand-off (never the team's newest), accept, and stay on the call."""
        person = self.svc.staff.specialist(specialist)
        assert person is not None
        self.sim.add_callee(
            person.reach, Callee("answered", after=after, script=keys_own_sees_id(self.svc, specialist))
        )
        if available:
            self.svc.staff.set_specialist_availability(specialist, "available", self.svc.clock.now())

    def take_at_once(self, handoff_id: str, people: tuple[str, ...]) -> dict[str, str]:
        """``people`` take one hand-off at the same moment, each on a thread of their own:
        what each was told ("taken", or the refusal)."""
        import threading

        start = threading.Barrier(len(people))
        results: dict[str, str] = {}

        def take(person: str) -> None:
            start.wait()
            try:
                self.svc.handoffs.take(handoff_id, self.viewer(person))
                results[person] = "taken"
            except CallflowError as exc:
                results[person] = str(exc)

        threads = [threading.Thread(target=take, args=(p,)) for p in people]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    def caller_with_agent(self, caller_number: str = "+441632960001") -> Leg:
        script = Script().press(f"{ADVISER}#").press(f"{PIN}#").answer(ANSWERS).hang_up(after=5000)
        caller = self.sim.call(VSTRS, caller_number, script)
        assert self.sim.run_until(
            lambda: (self.svc.vstrs.get(caller.sid) or {}).get("state") == "with_agent"
        )
        return caller

    def specialist(
        self,
        number: str,
        script: Script,
        after: float = 4,
        outcome: str = "answered",
        takes: bool = True,
        taker: str | None = None,
    ) -> None:
        """How ``number`` answers: a team number's answerer takes the hand-off on their
        console first (``takes``); a specialist's own phone (``client:kim``) is taken by
        answering."""
        if takes and not number.startswith("client:"):
            script = TakesFirst(script, lambda: self.take_ringing(number, taker))
        self.sim.add_callee(number, Callee(outcome, after=after, script=script))  # type: ignore[arg-type]

    def request(self, caller: Leg, token: str | None = None, **body: Any) -> Any:
        payload = {
            "team": "debt_pursuit",
            "customer": CUSTOMER,
            "issue": "Wants time to pay",
            "need": "time_to_pay",
            "authorisation": {"type": "signed", "date": "2026-11-01", "reference": "TA-0042"},
            **body,
        }
        return self.api.post(
            f"/api/calls/{caller.sid}/handoffs", json=payload, headers=self.auth(token)
        )

    def taken_over(self, specialist: Script | None = None) -> tuple[Leg, dict[str, Any]]:
        """A verified caller with the agent, handed off to Debt Pursuit and taken over (by
        Kim, who answered the team's first number)."""
        caller = self.caller_with_agent()
        self.specialist(TEAM_FIRST, specialist or accepting(), taker=KIM)
        handoff = self.request(caller).get_json()
        assert self.sim.run_until(lambda: self.handoff(handoff["id"])["state"] == "briefing")
        self.api.post(
            f"/api/calls/{caller.sid}/handoffs/{handoff['id']}/complete", headers=self.auth()
        )
        return caller, handoff

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.agent_token}"}

    def handoff(self, handoff_id: str) -> dict[str, Any]:
        doc = self.svc.handoffs.get(handoff_id)
        assert doc is not None
        return doc

    def grant(self, caller: Leg, token: str | None = None) -> dict[str, Any]:
        response = self.api.get(
            f"/api/calls/{caller.sid}/grant", headers=self.auth(token or self.specialist_token)
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]

    def held(self, caller: Leg) -> bool:
        conference = self.sim.conferences[f"vstrs-{caller.sid}"]
        return conference.participants[caller.sid].hold

    def kinds(self, caller: Leg) -> list[tuple[str, str]]:
        return [
            (e["kind"], e.get("outcome", ""))
            for e in self.svc.audit.entries()
            if e["call_sid"] == caller.sid and e["kind"].startswith(("handoff.", "grant."))
        ]


def accepting(sees_id: str = AGENT) -> Script:
    """A specialist who keys the agent's SEES ID and accepts, then stays on the call."""
    return Script().press(f"{sees_id}#").press("1").hang_up(after=5000)


def keys_own_sees_id(svc: Callflow, specialist: str, patience: float = 5000) -> Script:
    """What a specialist does on the phone: keys the SEES ID of the agent on the hand-off
    *they* have taken (never the team's newest), accepts, and stays on the call. Until they
    have taken one (a team number's call, to be taken on the console), they key anything, to
    be told to take it first, and wait at that prompt until they have."""
    from callflow.simulator import Step

    def ask(heard: str) -> Step:
        if "SEES I D code" in heard or "cod SEES I D" in heard:
            mine = [
                d
                for d in svc.handoffs.of_specialist(specialist, count=5)
                if d["state"] in {"ringing", "checking"}
                and (d.get("taken_by") or {}).get("id") == specialist
            ]
            if mine:
                return Step("press", f"{mine[0]['agent_sees_id']}#")
            return Step("silent") if "Before the check" in heard else Step("press", "0#")
        if "Press 1 to accept" in heard or "Pwyswch 1 i dderbyn" in heard:
            return Step("press", "1")
        return Step("silent")

    return Script(patience=patience, ask=ask)


GOOD = textwrap.dedent(
    """\
    flow: tiny
    initial: ask
    states:
      ask:
        twiml:
          - gather:
              input: dtmf
              num_digits: 4
              prompt:
                - say: "Key four digits."
        events:
          digits: done
          timeout: ask
      done:
        twiml:
          - say: "Thanks."
          - hangup
    """
)

def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus page (0 if absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        if (
            sample == name
            or sample == f"{name}{{{wanted}}}"
            or (
                labels
                and sample.startswith(f"{name}{{")
                and all(f'{k}="{v}"' in sample for k, v in labels.items())
            )
        ):
            return float(value)
    return 0.0

def run_together(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Start every job at the same moment on its own thread; return their results in order."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(index: int, job: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = job()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return results

SUE = Viewer("supervisor", name="Sue Supervisor", username="sue")

#: The shipped inbound flow, its tests, and a version of it one comma different.
VSTRS_FLOW = FLOWS / "vstrs_inbound.yaml"
VSTRS_TESTS = FLOWS / "vstrs_inbound.test.yaml"
VSTRS_V2 = VSTRS_FLOW.read_text().replace(
    "Please check your details\n            with your organisation and call again.",
    "Please check your details\n            with your organisation, then call again.",
)


def eventually(condition: Callable[[], Any], timeout: float = 10.0, every: float = 0.05) -> Any:
    """Poll ``condition`` until it gives something true, and return that; fail after
    ``timeout`` seconds (the machine may be slow: a wait is for a condition, never a guess)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {condition}")
        time.sleep(every)
