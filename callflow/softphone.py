"""The designer's softphone: try a flow as its caller, in a sandbox of its own.

Nothing here reaches the live service. Each try builds a service instance of its own,
exactly as a flow test does (callflow/flowtests.py): the embedded store, a demo directory
(:data:`DEMO_SETUP`), the flow being tried standing in for its namesake, and the local
Twilio simulator playing Twilio with a token made for this try. No live store, no live
call, no real auth token, and no caller-chosen CallSid: the live service never sees a
softphone call.

It is stateless, so any worker can serve any step: the browser sends every step the
caller has taken so far, and each request plays the call again from the start (a few
milliseconds of virtual time) up to the point where the flow waits for the caller's next
input, or the call ends. The same steps always lead the same way (a fixed seed, the
same demo records).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import FlowValidationError, SoftphoneError
from .flowspec import Flow, parse_flow
from .flowtests import Coverage, FlowTest, TestFile, _Run
from .registry import Registry
from .sandbox import Sandbox, quiet
from .simulator import Script
from .simulator import Step as SimStep

__all__ = ["DEMO_SETUP", "MAX_STEPS", "Softphone", "Step"]

MAX_STEPS = 60
KEYS = re.compile(r"^[0-9*#]{1,32}$")
MAX_WORDS = 200
#: How long the caller stays on when nothing is asked of them (virtual seconds).
PATIENCE = 300.0
#: The demo directory every softphone call runs against (the designer page lists it).
DEMO_SETUP: dict[str, list[dict[str, Any]]] = {
    "advisers": [
        {
            "number": "1001",
            "pin": "246810",
            "name": "Sam Demo",
            "organisation": "taxaid",
            "consent_to_act": True,
            "answers": {"first_school": "Hill Top", "favourite_colour": "blue"},
        }
    ],
    "agents": [
        {"sees_id": "100001", "name": "Alex Agent", "client": "demo_agent", "answers_after": 5}
    ],
    "teams": [{"id": "debt_pursuit", "name": "Debt Pursuit", "number": "+441632960200"}],
    # A specialist's leg of a hand-off rings Kim's own phone: the softphone is Kim.
    "specialists": [
        {
            "id": "400001",
            "name": "Kim Specialist",
            "team": "debt_pursuit",
            "client": "demo_specialist",
        }
    ],
    "officers": [{"number": "4471203", "name": "Alex Morgan"}],
    "meetings": [
        {
            "key": "demo",
            "customer": "Pat Example",
            "number": "+447700900123",
            "reference": "DM-2041-77",
            "officer": "4471203",
            "purpose": "agreeing time to pay",
            "bring": "your bank statements",
            "when": "+7d 10:30",
            "where": "the H M R C office at 1 Example Street, Leeds",
            "date_of_birth": "1970-03-21",
        }
    ],
}
DEMO_TEXT = (
    "Adviser 1001, PIN 246810, first school 'Hill Top', favourite colour 'blue'; "
    "VSTRS agent SEES ID 100001 (a hand-off rings Kim Specialist, the softphone); officer "
    "4471203 (Alex Morgan); the demo meeting's customer "
    "was born on 21 March 1970 (key 21031970)."
)


@dataclass(frozen=True)
class Step:
    """One thing the caller does when the flow waits for them."""

    kind: str  # press, say, silent, hangup
    value: str = ""

    @classmethod
    def parse(cls, raw: Any) -> Step:
        """A step from the browser's JSON, checked."""
        if not isinstance(raw, dict):
            raise SoftphoneError("each step is an object like {\"press\": \"1001#\"}")
        if "press" in raw:
            keys = str(raw["press"])
            if not KEYS.match(keys):
                raise SoftphoneError("press: keypad keys only (0-9, * and #), up to 32")
            return cls("press", keys)
        if "say" in raw:
            words = " ".join(str(raw["say"]).split())
            if not words or len(words) > MAX_WORDS:
                raise SoftphoneError(f"say: some words, up to {MAX_WORDS} characters")
            return cls("say", words)
        if raw.get("silent"):
            return cls("silent")
        if raw.get("hangup"):
            return cls("hangup")
        raise SoftphoneError("a step is press, say, silent or hangup")


@dataclass
class Played:
    """A softphone call as far as it has gone."""

    flow: str
    version: str
    start: str
    transcript: list[dict[str, str]] = field(default_factory=list)
    state: str | None = None
    waiting: bool = False
    prompt: str = ""
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "version": self.version,
            "start": self.start,
            "transcript": self.transcript,
            "state": self.state,
            "waiting": self.waiting,
            "prompt": self.prompt,
            "ended": not self.waiting,
            "problem": self.problem,
        }


def start_of(flow: Flow) -> str:
    """How a flow's calls begin: a caller rings in, a meeting call goes out, or a
    specialist's leg of a hand-off (the actions its first state runs tell)."""
    first = flow.states.get(flow.initial)
    actions = set(first.enter) if first else set()
    if "load_meeting" in actions:
        return "meeting"
    if "load_handoff" in actions:
        return "handoff"
    return "inbound"


class _SoftphoneRun(_Run):
    """A flow test run whose caller takes the browser's steps, then waits for the next."""

    def __init__(
        self, flow: Flow, flows_dir: Path, registry: Registry, steps: list[Step], sandbox: Sandbox
    ):
        start = start_of(flow)
        test = FlowTest(
            name="softphone",
            line=1,
            start=start,
            meeting="demo" if start == "meeting" else None,
            team="debt_pursuit" if start == "handoff" else None,
        )
        setup = {kind: [{**r, "_line": 0} for r in rows] for kind, rows in DEMO_SETUP.items()}
        tests = TestFile("<softphone>", flow.name, setup, [test])
        super().__init__(tests, test, flow, flows_dir, registry, Coverage(flow), sandbox)
        self.steps = list(steps)
        self.played = Played(flow.name, flow.version, start)
        self.script_obj: Any = None

    def _script(self) -> Any:

        def ask(heard: str) -> SimStep | None:
            if self.steps:
                step = self.steps.pop(0)
                kind = "hangup" if step.kind == "hangup" else step.kind
                return SimStep(kind, step.value)  # type: ignore[arg-type]
            # No more steps: this is where the flow waits for the caller now.
            self.played.waiting = True
            self.played.prompt = " ".join(heard.split())
            leg = next((leg for leg in self.sim.legs.values() if leg.script is script), None)
            session = self.service.store.get_session(leg.sid) if leg else None
            self.played.state = session.state if session else None
            return SimStep("hangup")

        script = Script(patience=PATIENCE, ask=ask)
        self.script_obj = script
        return script

    def _check(self, leg: Any) -> None:
        shown = [e for e in leg.log if e.kind not in {"fault"}]
        if self.played.waiting:
            # Drop what followed the moment the flow waited: the stand-in hang-up.
            cut = next((i for i, e in enumerate(shown) if e.kind == "hangs up"), len(shown))
            shown = shown[:cut]
        self.played.transcript = [{"kind": e.kind, "text": e.text} for e in shown]
        if not self.played.waiting:
            session = self.service.store.get_session(leg.sid)
            self.played.state = session.state if session else None
        for _sid, code, message in self.sim.errors:
            self.played.problem = f"Twilio error {code}: {message}"


class Softphone:
    """Plays softphone calls against a flow's text, each in a sandbox of its own."""

    def __init__(self, flows_dir: Path, registry: Registry, sandbox: Sandbox) -> None:
        self.flows_dir = Path(flows_dir)
        self.registry = registry
        self.sandbox = sandbox

    def play(self, source: str, raw_steps: Any, label: str = "<softphone>") -> Played:
        """Play the flow in ``source`` with the caller's steps so far."""
        if not isinstance(raw_steps, list):
            raise SoftphoneError("steps: a list of the caller's steps so far")
        if len(raw_steps) > MAX_STEPS:
            raise SoftphoneError(f"a softphone call takes at most {MAX_STEPS} steps")
        steps = [Step.parse(raw) for raw in raw_steps]
        try:
            flow = parse_flow(source, label, self.registry)
        except FlowValidationError as exc:
            raise SoftphoneError(f"the flow has problems, so it cannot be tried:\n{exc}") from None
        run = _SoftphoneRun(flow, self.flows_dir, self.registry, steps, self.sandbox)
        with self.sandbox.folder(flow, self.flows_dir, self.registry) as folder, quiet():
            run.flows_dir = folder
            result = run.run()
        if result.failures and not run.played.transcript:
            run.played.problem = "; ".join(result.failures)
        return run.played
