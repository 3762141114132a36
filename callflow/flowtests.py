"""Flow tests as data: scripted calls in YAML, run through the local Twilio simulator.

Beside each flow sits ``NAME.test.yaml``: records to set up (advisers, agents, teams,
officers, meetings) and tests, each a call: how it starts, what the caller does and must
hear, where it must end up, what must be audited, what must never be said. ``callflow
test`` runs them against a fresh embedded store on a virtual clock, so a test of a
five-minute call takes milliseconds, and reports a diff of what was expected against what
the caller heard, and the flow's coverage (states entered, transitions taken).

The format is documented in docs/flows.md ("Testing a flow"). A problem in a test file is
reported like a flow problem: ``file:line: message``.
"""

from __future__ import annotations

import difflib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .access import Viewer
from .callbacks import dialable
from .directory import QUESTIONS
from .errors import CallflowError, FlowTestError, FlowValidationError, Problem
from .flowspec import (
    TEST_SUFFIXES,
    Flow,
    _line_of,
    flow_files,
    is_test_file,
    load_flow,
    read_yaml,
)
from .officer_pins import subject as officer_subject
from .registry import Registry, default_registry
from .sandbox import Sandbox, quiet
from .simulator import Callee, Script

__all__ = [
    "Coverage",
    "FileResult",
    "FlowTest",
    "TestFile",
    "TestResult",
    "load_tests",
    "run_path",
    "run_tests",
    "tests_for",
]

LONDON = ZoneInfo("Europe/London")
TEST_LINE = "+441632960900"
DEFAULT_CALLER = "+441632960001"
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
STEP_KINDS = {"hear", "press", "say", "silent", "hang_up", "answer", "wait"}
TEST_KEYS = {
    "name",
    "start",
    "from",
    "meeting",
    "callee",
    "team",
    "steps",
    "end",
    "audit",
    "not_audited",
    "never_hear",
    "meeting_state",
    "adviser_waits",
    "cancel_before_answer",
    "description",
    "language",
    "relay",
    "adviser",
    "callback_state",
    "agents_away",
    "rings",
    "taken_on_console",
}
SETUP_KINDS = {"advisers", "agents", "teams", "specialists", "officers", "meetings"}
#: What a handoff test's hand-off rings: a specialist's own phone (from setup), or the
#: team's own number.
RINGS = {"specialist", "team_number"}
START_KINDS = {"inbound", "meeting", "handoff", "callback"}
CALLEES = {"answers", "voicemail", "no-answer", "busy"}
#: How long, in virtual seconds, a test call may run before it is called stuck.
MAX_CALL_SECONDS = 4 * 3600


@dataclass(frozen=True)
class CallStep:
    """One thing the caller does, or must hear, in order."""

    kind: str
    value: Any
    line: int

    def describe(self) -> str:
        """The step as a diff line."""
        if self.kind == "hear":
            return f'hear "{self.value}"'
        if self.kind in {"press", "say"}:
            return f"{self.kind} {self.value}"
        if self.kind == "answer":
            return "answer the security question"
        if self.kind == "hang_up" and self.value:
            return f"hang up after {self.value:g}s"
        if self.kind == "wait":
            return f"wait up to {self.value:g}s"
        return self.kind.replace("_", " ")


@dataclass(frozen=True)
class Expectation:
    """An audit entry a test expects: kind, and outcome when given."""

    kind: str
    outcome: str | None
    line: int

    def __str__(self) -> str:
        return f"{self.kind}: {self.outcome}" if self.outcome else self.kind


@dataclass
class FlowTest:
    """One scripted call."""

    name: str
    line: int
    start: str = "inbound"
    caller: str = DEFAULT_CALLER
    meeting: str | None = None
    callee: str = "answers"
    team: str | None = None
    steps: list[CallStep] = field(default_factory=list)
    end: str | None = None
    audit: list[Expectation] = field(default_factory=list)
    not_audited: list[Expectation] = field(default_factory=list)
    never_hear: list[str] = field(default_factory=list)
    meeting_state: str | None = None
    #: handoff tests: how long the adviser stays on the line once connected (seconds).
    adviser_waits: float = 3600.0
    #: handoff tests: what the hand-off rings (a specialist's own phone when setup has an
    #: available one of the team, else the team's number), and on a team number, the
    #: specialist (staff number) who takes it on their console as it answers.
    rings: str | None = None
    taken_on_console: str | None = None
    #: meeting and callback tests: staff cancel it while the phone rings.
    cancel_before_answer: bool = False
    #: The language the call is made in (as a Welsh number's ``?lang=`` would); None: the
    #: flow's first.
    language: str | None = None
    #: The call comes through Relay UK (the relay number's ``?relay=1``).
    relay: bool = False
    #: callback tests: the adviser owed the call-back (their number in setup).
    adviser: str | None = None
    #: The state a call-back must be in after the test (callback tests, or an inbound call
    #: that asked for one).
    callback_state: str | None = None
    #: Every agent in setup is away for this test (no agent free: the queue, call-backs).
    agents_away: bool = False


@dataclass
class TestFile:
    """A flow's tests: the flow they test, shared set-up, the tests."""

    path: str
    flow: str
    setup: dict[str, list[dict[str, Any]]]
    tests: list[FlowTest]
    source: str = ""


@dataclass
class TestResult:
    """How one test went: its failures (none: it passed) and the caller's transcript."""

    test: FlowTest
    failures: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)
    transcript: str = ""

    @property
    def passed(self) -> bool:
        """True when nothing failed."""
        return not self.failures


@dataclass
class Coverage:
    """Which states and transitions of a flow some test exercised."""

    flow: Flow
    states: set[str] = field(default_factory=set)
    transitions: set[int] = field(default_factory=set)

    def figures(self) -> dict[str, Any]:
        """Counts and percentages, and what was missed."""
        all_transitions = list(self.flow.numbered)
        missed_states = [s for s in self.flow.states if s not in self.states]
        missed = [
            f"{t.source} --{t.event}--> {t.dest} (line {t.line})"
            for i, t in enumerate(all_transitions)
            if i not in self.transitions
        ]
        return {
            "states": len(self.flow.states) - len(missed_states),
            "states_total": len(self.flow.states),
            "transitions": len(all_transitions) - len(missed),
            "transitions_total": len(all_transitions),
            "missed_states": missed_states,
            "missed_transitions": missed,
        }

    def percent(self) -> float:
        """States and transitions exercised, as one percentage."""
        f = self.figures()
        total = f["states_total"] + f["transitions_total"]
        return 100.0 * (f["states"] + f["transitions"]) / total if total else 100.0

    def summary(self) -> str:
        """``states 9/10 (90%), transitions 14/17 (82%)``."""
        f = self.figures()

        def pct(n: int, d: int) -> str:
            return f"{n}/{d} ({100 * n / d:.0f}%)" if d else "0/0"

        return (
            f"states {pct(f['states'], f['states_total'])}, "
            f"transitions {pct(f['transitions'], f['transitions_total'])}"
        )


@dataclass
class FileResult:
    """A test file's results and its flow's coverage."""

    tests: TestFile
    results: list[TestResult]
    coverage: Coverage

    @property
    def passed(self) -> bool:
        """True when every test passed."""
        return all(r.passed for r in self.results)

    def report(self, *, verbose: bool = False) -> str:
        """What ``callflow test`` prints for this file."""
        lines = [f"{self.tests.flow} ({self.tests.path}): {len(self.results)} test(s)"]
        for result in self.results:
            mark = "ok  " if result.passed else "FAIL"
            lines.append(f"  {mark}  {result.test.name}  (line {result.test.line})")
            for failure in result.failures:
                lines.append(f"        {failure}")
            if result.diff:
                lines.extend(f"        {d}" for d in result.diff)
            if result.transcript and (verbose or (not result.passed and not result.diff)):
                lines.append("        transcript:")
                lines.extend(f"          {t}" for t in result.transcript.splitlines())
        figures = self.coverage.figures()
        lines.append(f"  coverage: {self.coverage.summary()}")
        for state in figures["missed_states"]:
            lines.append(f"    not entered: state {state}")
        for transition in figures["missed_transitions"]:
            lines.append(f"    not taken: {transition}")
        return "\n".join(lines)


# ---------------------------------------------------------------- reading test files


def tests_for(flow_path: str | Path) -> Path:
    """Where a flow file's tests live: ``NAME.test.yaml`` beside it."""
    path = Path(flow_path)
    return path.with_name(path.name.rsplit(".", 1)[0] + TEST_SUFFIXES[0])


def load_tests(path: str | Path, source: str | None = None) -> TestFile:
    """Read and check a test file; every problem at once, with lines."""
    path = str(path)
    text = Path(path).read_text(encoding="utf-8") if source is None else source
    try:
        doc, yaml_problems = read_yaml(text, path, "flow tests")
    except FlowValidationError as exc:
        raise FlowTestError(exc.problems) from None
    problems = [Problem(path, line, msg) for line, msg in yaml_problems]
    reader = _Reader(path, problems)
    result = reader.file(doc, text)
    if problems:
        raise FlowTestError(problems)
    return result


class _Reader:
    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems

    def err(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    def file(self, doc: Any, text: str) -> TestFile:
        if not isinstance(doc, dict):
            self.err(1, "a test file is a mapping with flow, setup (optional) and tests")
            return TestFile(self.path, "", {}, [], text)
        for key in doc:
            if key not in {"flow", "setup", "tests", "description"}:
                self.err(
                    _line_of(doc, key, 1), f"unknown key {key!r} (allowed: flow, setup, tests)"
                )
        flow = doc.get("flow")
        if not isinstance(flow, str) or not flow:
            self.err(_line_of(doc, "flow", 1), "flow: the name of the flow these tests call")
            flow = ""
        setup = self.setup(doc.get("setup") or {}, _line_of(doc, "setup", 1))
        raw_tests = doc.get("tests")
        tests: list[FlowTest] = []
        if not isinstance(raw_tests, list) or not raw_tests:
            self.err(_line_of(doc, "tests", 1), "tests: a list of at least one test")
        else:
            for i, item in enumerate(raw_tests):
                test = self.test(item, _line_of(raw_tests, i, 1))
                if test is not None:
                    tests.append(test)
            names = [t.name for t in tests]
            for test in tests:
                if names.count(test.name) > 1:
                    self.err(test.line, f"two tests are named {test.name!r}")
                    break
        return TestFile(self.path, flow, setup, tests, text)

    def setup(self, raw: Any, line: int) -> dict[str, list[dict[str, Any]]]:
        if not isinstance(raw, dict):
            self.err(line, f"setup: a mapping of {', '.join(sorted(SETUP_KINDS))}")
            return {}
        setup: dict[str, list[dict[str, Any]]] = {}
        for kind, items in raw.items():
            where = _line_of(raw, kind, line)
            if kind not in SETUP_KINDS:
                self.err(
                    where, f"unknown setup {kind!r} (allowed: {', '.join(sorted(SETUP_KINDS))})"
                )
                continue
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                self.err(where, f"setup {kind}: a list of records")
                continue
            setup[kind] = [
                {**item, "_line": _line_of(items, i, where)} for i, item in enumerate(items)
            ]
        return setup

    def test(self, raw: Any, line: int) -> FlowTest | None:
        if not isinstance(raw, dict):
            self.err(line, "a test is a mapping with name and steps")
            return None
        for key in raw:
            if key not in TEST_KEYS:
                self.err(
                    _line_of(raw, key, line),
                    f"unknown key {key!r} in a test (allowed: {', '.join(sorted(TEST_KEYS))})",
                )
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            self.err(line, "a test needs a name")
            name = f"test on line {line}"
        test = FlowTest(name=name.strip(), line=line)
        start = raw.get("start", "inbound")
        if start not in START_KINDS:
            self.err(
                _line_of(raw, "start", line), f"start: one of {', '.join(sorted(START_KINDS))}"
            )
        test.start = str(start)
        caller = str(raw.get("from", DEFAULT_CALLER))
        if not (PHONE.match(caller) or caller == "anonymous"):
            self.err(_line_of(raw, "from", line), "from: a number like +447700900123, or anonymous")
        test.caller = caller
        language = raw.get("language")
        if language is not None:
            if not isinstance(language, str) or not re.fullmatch(
                r"[a-z]{2,3}(-[A-Z]{2})?", language
            ):
                self.err(_line_of(raw, "language", line), "language: like cy-GB (or cy)")
            else:
                test.language = language
        if "relay" in raw:
            if not isinstance(raw["relay"], bool):
                self.err(_line_of(raw, "relay", line), "relay: true or false")
            test.relay = raw.get("relay") is True
        if test.start == "meeting":
            if not isinstance(raw.get("meeting"), str):
                self.err(line, "a meeting test names its meeting: meeting: KEY (from setup)")
            test.meeting = raw.get("meeting")
        if test.start in {"meeting", "callback"}:
            test.cancel_before_answer = raw.get("cancel_before_answer") is True
        elif "cancel_before_answer" in raw:
            self.err(
                _line_of(raw, "cancel_before_answer", line),
                "cancel_before_answer is for meeting and callback tests",
            )
        if test.start == "handoff":
            if not isinstance(raw.get("team"), str):
                self.err(line, "a handoff test names the team rung: team: ID (from setup)")
            test.team = raw.get("team")
            waits = raw.get("adviser_waits", 3600)
            if not isinstance(waits, int | float) or isinstance(waits, bool) or waits <= 0:
                self.err(_line_of(raw, "adviser_waits", line), "adviser_waits: seconds")
            else:
                test.adviser_waits = float(waits)
            rings = raw.get("rings")
            if rings is not None and rings not in RINGS:
                self.err(_line_of(raw, "rings", line), "rings: specialist or team_number")
            test.rings = rings
            taker = raw.get("taken_on_console")
            if taker is not None and (rings != "team_number" or not isinstance(taker, str)):
                self.err(
                    _line_of(raw, "taken_on_console", line),
                    "taken_on_console: a specialist's staff number, with rings: team_number",
                )
            test.taken_on_console = taker
        else:
            for key in ("adviser_waits", "rings", "taken_on_console"):
                if key in raw:
                    self.err(_line_of(raw, key, line), f"{key} is for handoff tests")
        callee = raw.get("callee", "answers")
        if callee not in CALLEES:
            self.err(_line_of(raw, "callee", line), f"callee: one of {', '.join(sorted(CALLEES))}")
        test.callee = str(callee)
        steps = raw.get("steps") or []
        if not isinstance(steps, list):
            self.err(_line_of(raw, "steps", line), "steps: a list, like - hear: ..., - press: 1#")
            steps = []
        test.steps = [
            s for i, item in enumerate(steps) if (s := self.step(item, _line_of(steps, i, line)))
        ]
        end = raw.get("end")
        if end is not None and not isinstance(end, str):
            self.err(_line_of(raw, "end", line), "end: the state the call must end in")
        test.end = end if isinstance(end, str) else None
        test.audit = self.audit(raw.get("audit") or [], _line_of(raw, "audit", line))
        test.not_audited = self.audit(
            raw.get("not_audited") or [], _line_of(raw, "not_audited", line)
        )
        never = raw.get("never_hear") or []
        if not isinstance(never, list) or not all(isinstance(n, str) and n for n in never):
            self.err(_line_of(raw, "never_hear", line), "never_hear: a list of words or phrases")
            never = []
        test.never_hear = list(never)
        if test.start == "callback":
            adviser = raw.get("adviser")
            if adviser is not None and not isinstance(adviser, str | int):
                self.err(_line_of(raw, "adviser", line), "adviser: an adviser number from setup")
            test.adviser = str(adviser) if adviser is not None else None
        elif "adviser" in raw:
            self.err(_line_of(raw, "adviser", line), "adviser is for callback tests")
        if "agents_away" in raw and not isinstance(raw["agents_away"], bool):
            self.err(_line_of(raw, "agents_away", line), "agents_away: true or false")
        test.agents_away = raw.get("agents_away") is True
        callback_state = raw.get("callback_state")
        if callback_state is not None and not isinstance(callback_state, str):
            self.err(_line_of(raw, "callback_state", line), "callback_state: like done")
        test.callback_state = callback_state
        state = raw.get("meeting_state")
        if state is not None and test.start != "meeting":
            self.err(_line_of(raw, "meeting_state", line), "meeting_state is for meeting tests")
        test.meeting_state = state
        return test

    def step(self, raw: Any, line: int) -> CallStep | None:
        if raw in ("silent", "hang_up"):
            return CallStep(str(raw), None, line)
        if not isinstance(raw, dict) or len(raw) != 1:
            self.err(
                line,
                "a step is one of: hear: TEXT, press: KEYS, say: WORDS, answer: {KEYWORD: "
                "REPLY}, silent, wait: SECONDS, hang_up (or hang_up: SECONDS while waiting)",
            )
            return None
        kind, value = next(iter(raw.items()))
        if kind not in STEP_KINDS:
            self.err(line, f"unknown step {kind!r} (allowed: {', '.join(sorted(STEP_KINDS))})")
            return None
        if kind == "press":
            value = str(value)
            if not re.fullmatch(r"[0-9*#]{1,64}", value):
                self.err(line, 'press: keys 0-9, * and # (quote them: press: "1234#")')
        elif kind in {"hear", "say"}:
            if not isinstance(value, str) or not value.strip():
                self.err(line, f"{kind}: some words")
            value = " ".join(str(value).split())
        elif kind == "answer":
            if not isinstance(value, dict) or not value:
                self.err(line, "answer: {keyword in the question: the reply}")
                value = {}
            value = {str(k): str(v) for k, v in value.items()}
        elif kind == "hang_up":
            if value is not None and (not isinstance(value, int | float) or value < 0):
                self.err(line, "hang_up: seconds to wait first (while on hold or connected)")
                value = 0
        elif kind == "wait":
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                self.err(line, "wait: seconds to stay on hold or connected (then hang up)")
                value = 60
        elif kind == "silent":
            value = None
        return CallStep(kind, value, line)

    def audit(self, raw: Any, line: int) -> list[Expectation]:
        if not isinstance(raw, list):
            self.err(line, "audit: a list like - officer.check: confirmed")
            return []
        found = []
        for i, item in enumerate(raw):
            where = _line_of(raw, i, line)
            if isinstance(item, str):
                found.append(Expectation(item, None, where))
            elif isinstance(item, dict) and len(item) == 1:
                kind, outcome = next(iter(item.items()))
                found.append(Expectation(str(kind), str(outcome), where))
            else:
                self.err(where, "an audit expectation is KIND or KIND: OUTCOME")
        return found


# ---------------------------------------------------------------- running


def run_path(
    path: str | Path, registry: Registry | None = None, *, sandbox: Sandbox
) -> tuple[list[FileResult], list[Problem]]:
    """Run the tests for a flow file, a test file, or every flow in a folder.

    Returns the results and the problems (unreadable tests, flows without tests).
    """
    path = Path(path)
    registry = registry or default_registry()
    problems: list[Problem] = []
    pairs: list[tuple[Path, Path]] = []  # (flow file, test file)
    if path.is_dir():
        for flow_file in flow_files(path):
            test_file = tests_for(flow_file)
            if test_file.exists():
                pairs.append((flow_file, test_file))
            else:
                problems.append(Problem(str(flow_file), 1, f"no tests: write {test_file.name}"))
        flows_dir = path
    elif is_test_file(path):
        flow_file = path.with_name(path.name[: -len(".test.yaml")] + ".yaml")
        pairs.append((flow_file, path))
        flows_dir = path.parent
    else:
        test_file = tests_for(path)
        if not test_file.exists():
            problems.append(Problem(str(path), 1, f"no tests: write {test_file.name}"))
        else:
            pairs.append((path, test_file))
        flows_dir = path.parent
    results: list[FileResult] = []
    for flow_file, test_file in pairs:
        try:
            flow = load_flow(flow_file, registry)
            tests = load_tests(test_file)
        except (FlowValidationError, FlowTestError) as exc:
            problems.extend(exc.problems)
            continue
        except OSError as exc:
            problems.append(Problem(str(flow_file), 1, f"cannot read: {exc}"))
            continue
        results.append(run_tests(tests, flow, flows_dir, registry, sandbox=sandbox))
    return results, problems


def run_tests(
    tests: TestFile,
    flow: Flow,
    flows_dir: str | Path,
    registry: Registry | None = None,
    *,
    sandbox: Sandbox,
) -> FileResult:
    """Run a flow's tests, each in a world of ``sandbox``'s; ``flow`` (perhaps not yet
    published) stands in for its name."""
    registry = registry or default_registry()
    coverage = Coverage(flow)
    results: list[TestResult] = []
    if tests.flow != flow.name:
        result = TestResult(FlowTest(name="(the test file)", line=1))
        result.failures.append(f"these tests are for flow {tests.flow!r}, not {flow.name!r}")
        return FileResult(tests, [result], coverage)
    with sandbox.folder(flow, Path(flows_dir), registry) as folder, quiet():
        for test in tests.tests:
            results.append(_Run(tests, test, flow, folder, registry, coverage, sandbox).run())
    return FileResult(tests, results, coverage)


class _Run:
    """One test: a fresh service on the embedded store, the simulator, the call, the checks."""

    def __init__(
        self,
        tests: TestFile,
        test: FlowTest,
        flow: Flow,
        flows_dir: Path,
        registry: Registry,
        coverage: Coverage,
        sandbox: Sandbox,
    ) -> None:
        self.sandbox = sandbox
        self.tests = tests
        self.test = test
        self.flow = flow
        self.flows_dir = flows_dir
        self.registry = registry
        self.coverage = coverage
        self.result = TestResult(test)
        self.meetings: dict[str, str] = {}
        self._callback: str | None = None
        self._calls_live = False

    def run(self) -> TestResult:
        try:
            self._run()
        except CallflowError as exc:
            self.result.failures.append(f"the test could not run: {exc}")
        except Exception as exc:  # a test must report, never take the runner down
            self.result.failures.append(f"the test could not run: {type(exc).__name__}: {exc}")
        return self.result

    def _build(self) -> None:
        self.sim, self.service = self.sandbox.world(self.flows_dir, self.registry)
        self.service.engine.observers.append(self._observe)
        self.links = self.service.links()

    def _observe(self, session: Any, ctx: Any) -> None:
        if session.flow_version == self.flow.version:
            self.coverage.states.update(ctx.entered)
            self.coverage.transitions.update(ctx.taken)

    def _run(self) -> None:
        self._build()
        self._setup()
        script = self._script()
        # The call-back worker runs beside the service while the test's calls go on (as
        # `callflow callbacks run` does), so flows may offer call-backs and place them.
        self._calls_live = True
        self.sim.every(
            5, lambda: self.service.dispatcher.dispatch(self.links), lambda: self._calls_live
        )
        if self.test.start == "inbound":
            self.sim.configure_number(
                TEST_LINE,
                self.links.voice_url(
                    flow=self.flow.name, language=self.test.language or None, relay=self.test.relay
                ),
                status_callback=self.links.call_status(),
            )
            leg = self.sim.call(TEST_LINE, self.test.caller, script)
        elif self.test.start == "meeting":
            meeting_id = self.meetings.get(self.test.meeting or "")
            if meeting_id is None:
                raise CallflowError(f"no meeting {self.test.meeting!r} in the setup")
            meeting = self.service.meetings.require(meeting_id)
            self.sim.add_callee(meeting["customer_number"], self._callee(script))
            call_sid = self.service.meetings.place_call(meeting_id, self.links)
            if self.test.cancel_before_answer:
                self.service.meetings.cancel(meeting_id, "flow test")
            self.sim.run_until(lambda: call_sid in self.sim.legs, max_seconds=1)
            leg = self.sim.legs[call_sid]
        elif self.test.start == "callback":
            leg = self._callback_leg(script)
        else:
            leg = self._handoff_leg(script)
        self.sim.run_until(lambda: not leg.live, max_seconds=MAX_CALL_SECONDS)
        self._calls_live = False
        self.sim.run(max_seconds=120)
        self._check(leg)

    # -- set-up records

    def _setup(self) -> None:
        svc = self.service
        now = svc.clock.now()
        setup = self.tests.setup
        for adviser in setup.get("advisers", []):
            self._record("adviser", adviser, lambda a: self._adviser(a, now))
        for agent in setup.get("agents", []):
            self._record("agent", agent, lambda a: self._agent(a, now))
        for team in setup.get("teams", []):
            self._record(
                "team",
                team,
                lambda t: svc.staff.add_team(
                    t["id"],
                    t.get("name", t["id"]),
                    t.get("handles", "specialist work"),
                    [t["number"]],
                    t.get("hours", "Mon-Sun 00:00-24:00"),
                    by="flowtests",
                    nation=t.get("nation", "none"),
                ),
            )
        for specialist in setup.get("specialists", []):
            self._record("specialist", specialist, lambda p: self._specialist(p, now))
        for officer in setup.get("officers", []):
            self._record("officer", officer, lambda o: self._officer(o, now))
        for meeting in setup.get("meetings", []):
            self._record("meeting", meeting, lambda m: self._meeting(m, now))

    def _record(self, what: str, record: dict[str, Any], add: Any) -> None:
        try:
            add(record)
        except KeyError as exc:
            raise CallflowError(
                f"{self.tests.path}:{record['_line']}: {what} needs {exc.args[0]}"
            ) from exc
        except CallflowError as exc:
            raise CallflowError(f"{self.tests.path}:{record['_line']}: {what}: {exc}") from exc

    def _adviser(self, a: dict[str, Any], now: float) -> None:
        directory = self.service.directory
        directory.add(
            str(a["number"]),
            a.get("name", "Test Adviser"),
            a.get("organisation", "taxaid"),
            phone=str(a.get("phone", "")),
            consent_to_act=bool(a.get("consent_to_act", False)),
            now=now,
            by="flowtests",
        )
        directory.set_pin(str(a["number"]), str(a["pin"]), now, by="flowtests")
        directory.set_answers(
            str(a["number"]), {k: str(v) for k, v in a["answers"].items()}, now, by="flowtests"
        )
        if a.get("locked"):
            # Locked to every number that has not verified this adviser: the lockout
            # threshold of failures from strangers' numbers.
            settings = self.service.settings
            store, number = self.service.store, str(a["number"])
            for n in range(settings.lockout_threshold):
                caller = f"+4416329619{n:02d}"
                store.begin_attempt(number, caller, now, settings.guard)
                store.attempt_failed(number, caller, now, settings.guard)

    def _agent(self, a: dict[str, Any], now: float) -> None:

        client = f"client:{a.get('client', 'agent_' + str(a['sees_id']))}"
        staff = self.service.staff
        staff.add_agent(str(a["sees_id"]), a.get("name", "Test Agent"), client, now, by="flowtests")
        if a.get("skills"):
            staff.set_agent_skills(str(a["sees_id"]), list(a["skills"]), by="flowtests")
        if a.get("available", True) and not self.test.agents_away:
            staff.set_availability(str(a["sees_id"]), "available", now)
        talk = float(a.get("talks", 3600))
        self.sim.add_callee(
            client,
            Callee(
                "answered", after=float(a.get("answers_after", 5)), script=Script().hang_up(talk)
            ),
        )

    def _specialist(self, p: dict[str, Any], now: float) -> None:
        staff = self.service.staff
        client = f"client:{p.get('client', 'specialist_' + str(p['id']))}"
        staff.add_specialist(
            str(p["id"]), p.get("name", "Test Specialist"), str(p["team"]), client, now,
            by="flowtests",
        )  # fmt: skip
        if p.get("skills"):
            staff.update_specialist(str(p["id"]), skills=list(p["skills"]), by="flowtests")
        if p.get("available", True):
            staff.set_specialist_availability(str(p["id"]), "available", now)

    def _officer(self, o: dict[str, Any], now: float) -> None:
        staff = self.service.staff
        staff.add_officer(
            str(o["number"]), str(o["name"]), now, grade=str(o.get("grade", "O")), by="flowtests"
        )
        # Every day, no bank holidays, unless the test says: a test must not hang on the
        # day of the week it happens to run.
        staff.set_officer_hours(
            str(o["number"]),
            str(o.get("hours", "Mon-Sun 09:00-17:00")),
            str(o.get("nation", "none")),
            by="flowtests",
        )
        if not o.get("active", True):
            staff.set_officer_active(str(o["number"]), False, by="flowtests")
        if o.get("pin"):  # for the meeting start line
            self.service.meetings.pins.set_pin(str(o["number"]), str(o["pin"]), by="flowtests")
        if o.get("locked"):
            # The meeting start line locked to numbers that have not verified them lately.
            settings, store = self.service.settings, self.service.store
            for n in range(settings.lockout_threshold):
                caller = f"+4416329619{n:02d}"
                store.begin_attempt(officer_subject(str(o["number"])), caller, now, settings.guard)
                store.attempt_failed(officer_subject(str(o["number"])), caller, now, settings.guard)

    def _meeting(self, m: dict[str, Any], now: float) -> None:
        # No time: the customer agrees one on the call, from the officer's diary.
        when = _when(str(m["when"]), now) if m.get("when") else None
        known = {p["id"] for p in self.service.meetings.purposes.active()}
        purpose = str(m["purpose"]) if str(m["purpose"]) in known else "other"
        meeting = self.service.meetings.add(
            customer_name=m["customer"],
            customer_number=m["number"],
            reference=str(m.get("reference", "REF-1")),
            officer_number=str(m["officer"]),
            # One of the admin's purposes by id; words instead are "other" with those words.
            purpose=purpose,
            about=str(m.get("about") or ("" if purpose != "other" else m["purpose"])),
            bring=m["bring"],
            when=when,
            where=m["where"],
            place=str(m.get("place", "hmrc_office")),
            date_of_birth=str(m["date_of_birth"]) if m.get("date_of_birth") else None,
            postcode=m.get("postcode"),
            language=m.get("language"),
            by="flow test",
        )
        self.meetings[str(m["key"])] = meeting["id"]
        if m.get("code"):  # the code an officer keys on the meeting start line
            self.service.meetings.set_phone_code(meeting["id"], str(m["code"]), by="flow test")
        if m.get("confirmed"):  # as if the customer had confirmed it on a call
            self.service.meetings.record_outcome(meeting["id"], "flow-test", "confirmed")

    # -- the call

    def _script(self) -> Any:

        script = Script(patience=60)
        for step in self.test.steps:
            if step.kind == "press":
                script.press(step.value)
            elif step.kind == "say":
                script.say(step.value)
            elif step.kind == "answer":
                script.answer(step.value)
            elif step.kind == "silent":
                script.silent()
            elif step.kind in {"hang_up", "wait"}:
                script.hang_up(after=float(step.value or 0))
        return script

    def _callee(self, script: Any) -> Any:
        """The person the test's outbound call reaches, as ``callee:`` says."""

        return {
            "answers": Callee("answered", after=5, script=script),
            "voicemail": Callee.voicemail(),
            "no-answer": Callee("no-answer"),
            "busy": Callee("busy", after=2),
        }[self.test.callee]

    def _callback_leg(self, script: Any) -> Any:
        """A call-back owed to the test's adviser (who rang ten minutes ago and was verified
        then), placed now to their registered number, answered as the test says."""

        setup = self.tests.setup
        number = self.test.adviser or str((setup.get("advisers") or [{}])[0].get("number", ""))
        adviser = self.service.directory.get(number)
        if adviser is None:
            raise CallflowError(f"a callback test needs adviser {number or '?'} in setup")
        phone = dialable(adviser.phone)
        if phone is None:
            raise CallflowError(f"adviser {number} needs a phone: in setup to be called back")
        now = self.service.clock.now()
        callback = self.service.callbacks.note(
            "CA" + secrets.token_hex(16),
            adviser.identity(),
            arrived_at=now - 600,
            language=self.test.language or "en-GB",
            relay=self.test.relay,
            routing=None,
            reason="no_agent",
        )
        if callback is None:
            raise CallflowError(f"no call-back could be noted for adviser {number}")
        self._callback = callback["id"]
        callee = self._callee(script)
        self.sim.add_callee(phone, callee)
        placed = self.sim.run_until(
            lambda: any(leg.to == phone for leg in self.sim.legs.values()), max_seconds=30
        )
        if not placed:
            raise CallflowError(
                "the call-back was never placed: it needs an agent free (agents in setup) "
                "and the line open"
            )
        if self.test.cancel_before_answer:
            self.service.callbacks.cancel(callback["id"], "flow test")
        return next(leg for leg in self.sim.legs.values() if leg.to == phone)

    def _handoff_leg(self, script: Any) -> Any:
        """A verified adviser with an agent; the agent hands off to the test's team."""

        setup = self.tests.setup
        advisers, agents = setup.get("advisers", []), setup.get("agents", [])
        team = self.service.staff.team(self.test.team or "")
        if not advisers or not agents or team is None:
            raise CallflowError("a handoff test needs an adviser, an agent and its team in setup")
        adviser, agent = advisers[0], agents[0]

        # The adviser answers whichever question they hear, in English or in Welsh.
        answers = {k.replace("_", " "): str(v) for k, v in adviser["answers"].items()}
        for qid, value in adviser["answers"].items():
            if qid in QUESTIONS and QUESTIONS[qid].welsh:
                answers[QUESTIONS[qid].welsh] = str(value)
        if self.test.language:
            number = self.sim.numbers.get("+441632960999")
            if number is not None:
                self.sim.configure_number(
                    "+441632960999",
                    f"{number.voice_url}{'&' if '?' in number.voice_url else '?'}"
                    f"lang={self.test.language}",
                    status_callback=number.status_callback,
                )
        caller_script = (
            Script()
            .press(f"{adviser['number']}#")
            .press(f"{adviser['pin']}#")
            .answer(answers)
            .hang_up(self.test.adviser_waits)
        )
        people = [
            p
            for p in setup.get("specialists", [])
            if str(p["team"]) == team.id and p.get("available", True)
        ]
        if self.test.rings == "specialist" and not people:
            raise CallflowError(f"rings: specialist needs an available specialist of {team.id}")
        if people and self.test.rings != "team_number":
            person = self.service.staff.specialist(str(people[0]["id"]))
            assert person is not None
            rung = person.reach
        else:
            for p in people:  # a team number is rung when no specialist is free
                self.service.staff.set_specialist_availability(
                    str(p["id"]), "away", self.service.clock.now()
                )
            rung = team.numbers[0]
        self.sim.add_callee(rung, Callee("answered", after=5, script=script))
        caller = self.sim.call("+441632960999", self.test.caller, caller_script, label="adviser")

        def with_agent() -> bool:
            return (self.service.vstrs.get(caller.sid) or {}).get("state") == "with_agent"

        if not self.sim.run_until(lambda: with_agent() or not caller.live, max_seconds=900):
            raise CallflowError("the adviser was never put through to the agent")
        if not caller.live:
            raise CallflowError("the adviser's call ended before the hand-off")
        today = datetime.fromtimestamp(self.service.clock.now(), LONDON).date()
        body = {
            "team": team.id,
            "customer": {"name": "Pat Example", "reference": "2234567890"},
            "issue": "A flow test hand-off",
            "need": "other",
            "need_detail": "a flow test",
            "authorisation": {
                "type": "recorded_oral",
                "date": today.isoformat(),
                "reference": "FLOW-TEST",
            },
            "callback": {"urgent": False, "turnaround": "2 working days"},
        }
        handoff = self.service.handoffs.request(
            caller.sid, str(agent["sees_id"]), body, self.links
        )
        self.sim.run_until(
            lambda: any(leg.to == rung for leg in self.sim.legs.values()), max_seconds=60
        )
        legs = [leg for leg in self.sim.legs.values() if leg.to == rung]
        if not legs:
            raise CallflowError(f"team {team.id} was never rung (at {rung})")
        if self.test.taken_on_console:
            # The specialist who picked up the team number takes it on their console.

            taker = self.service.staff.specialist(self.test.taken_on_console)
            if taker is None:
                raise CallflowError(
                    f"taken_on_console: no specialist {self.test.taken_on_console} in setup"
                )
            self.sim.run_until(lambda: legs[0].answered_at is not None, max_seconds=60)
            self.service.handoffs.take(
                handoff["id"],
                Viewer("specialist", team=taker.team, name=taker.name, specialist=taker.id),
            )
        return legs[0]

    # -- the checks

    def _check(self, leg: Any) -> None:
        result = self.result
        result.transcript = leg.transcript()
        self._compare(leg)
        for sid, code, message in self.sim.errors:
            result.failures.append(f"Twilio error {code} on {sid}: {message}")
        session = self.service.store.get_session(leg.sid)
        if self.test.end is not None:
            if session is None:
                result.failures.append(
                    f"the call must end in state {self.test.end}; it never reached the flow"
                )
            elif session.state != self.test.end:
                result.failures.append(
                    f"the call must end in state {self.test.end}; it ended in {session.state}"
                )
        if self.test.end is not None and self.test.end not in self.flow.states:
            result.failures.append(f"end: the flow has no state {self.test.end!r}")
        heard = [e.text for e in leg.log if e.kind in {"hears", "plays"}]
        for phrase in self.test.never_hear:
            said = next((h for h in heard if phrase.lower() in h.lower()), None)
            if said is not None:
                result.failures.append(f'must never hear "{phrase}", but heard: "{said}"')
        entries = list(self.service.audit.all_entries())
        for expected in self.test.audit:
            kinds = [e for e in entries if e.get("kind") == expected.kind]
            if not any(expected.outcome in (None, str(e.get("outcome"))) for e in kinds):
                seen = ", ".join(f"{e['kind']}: {e.get('outcome')}" for e in entries) or "nothing"
                result.failures.append(
                    f"line {expected.line}: expected audit {expected}; audited: {seen}"
                )
        for unwanted in self.test.not_audited:
            hit = next(
                (
                    e
                    for e in entries
                    if e.get("kind") == unwanted.kind
                    and unwanted.outcome in (None, str(e.get("outcome")))
                ),
                None,
            )
            if hit is not None:
                result.failures.append(
                    f"line {unwanted.line}: must not audit {unwanted}; it did "
                    f"({hit['kind']}: {hit.get('outcome')})"
                )
        if self.test.callback_state is not None:
            ref = self._callback or leg.sid
            doc = self.service.callbacks.get(ref) or {}
            if doc.get("status") != self.test.callback_state:
                result.failures.append(
                    f"the call-back must be {self.test.callback_state}; it is "
                    f"{doc.get('status', 'not noted')}"
                )
        if self.test.meeting_state is not None:
            meeting_id = self.meetings.get(self.test.meeting or "", "")
            meeting = self.service.meetings.get(meeting_id) or {}
            if meeting.get("state") != self.test.meeting_state:
                result.failures.append(
                    f"the meeting must be {self.test.meeting_state}; it is {meeting.get('state')}"
                )

    def _compare(self, leg: Any) -> None:
        """Walk the expected steps along what happened; on the first miss, a diff."""
        actual: list[tuple[str, str]] = []
        for entry in leg.log:
            if entry.kind in {"hears", "plays"}:
                actual.append(("hear", " ".join(entry.text.split())))
            elif entry.kind == "presses":
                actual.append(("press", entry.text))
            elif entry.kind == "says":
                actual.append(("say", entry.text))
            elif entry.kind == "silent":
                actual.append(("silent", ""))
            elif entry.kind == "hangs up":
                actual.append(("hang_up", ""))
        expected = self.test.steps
        cursor = (0, 0)
        got: list[str] = []
        shown: set[int] = set()
        first: tuple[int, str] | None = None
        for index, step in enumerate(expected):
            found = _find(step, actual, cursor)
            if found is not None:
                got.append(step.describe())
                cursor = found
                continue
            if first is None:
                first = (index, _why(step, actual, cursor[0]))
            # Show what happened instead, then carry on from there (best effort), so the
            # diff shows each mismatch rather than everything after the first.
            nxt = next((j for j in range(cursor[0], len(actual)) if actual[j][0] != "hear"), None)
            if step.kind == "hear":
                for j in range(cursor[0], len(actual) if nxt is None else nxt):
                    if j not in shown:
                        shown.add(j)
                        text = actual[j][1]
                        if j == cursor[0] and cursor[1]:
                            text = "..." + text[cursor[1] :].strip()
                        if any(ch.isalnum() for ch in text):
                            got.append(_describe_actual("hear", text))
            elif nxt is None:
                got.append("(the call ended)")
                break
            else:
                got.append(_describe_actual(*actual[nxt]))
                cursor = (nxt + 1, 0)
        if first is None:
            return
        index, failure = first
        step = expected[index]
        self.result.failures.append(f"step {index + 1} (line {step.line}): {failure}")
        want = [s.describe() for s in expected]
        self.result.diff = list(
            difflib.unified_diff(want, got, "expected", "what happened", lineterm="", n=2)
        )


def _find(
    step: CallStep, actual: list[tuple[str, str]], cursor: tuple[int, int]
) -> tuple[int, int] | None:
    """Where ``step`` happens from ``cursor`` (entry, offset in its text) on; the cursor after it.

    Hearing may pass over other things heard (and several ``hear`` steps may match one
    long prompt, in order), but never over something the caller did.
    """
    start, offset = cursor
    if step.kind == "wait":
        # Waiting is not heard; it ends in hanging up only if nothing ends the call first.
        nxt = next((j for j in range(start, len(actual)) if actual[j][0] != "hear"), None)
        if nxt is not None and actual[nxt][0] == "hang_up":
            return nxt + 1, 0
        return cursor
    for j in range(start, len(actual)):
        kind, text = actual[j]
        if step.kind == "hear":
            if kind != "hear":
                return None
            skip = offset if j == start else 0
            at = text.lower().find(step.value.lower(), skip)
            if at >= 0:
                return j, at + len(step.value)
            continue
        if kind == "hear":
            continue
        if step.kind == "answer":
            return (j + 1, 0) if kind in {"press", "say"} else None
        if step.kind == "hang_up":
            return (j + 1, 0) if kind == "hang_up" else None
        if kind == step.kind and (step.value is None or text == step.value):
            return j + 1, 0
        return None
    return None


def _why(step: CallStep, actual: list[tuple[str, str]], cursor: int) -> str:
    nxt = next((a for a in actual[cursor:] if a[0] != "hear"), None)
    what = step.describe()
    if nxt is None:
        return f"expected to {what}, but the call ended first"
    return f"expected to {what} before the caller did: {_describe_actual(*nxt)}"


def _describe_actual(kind: str, text: str) -> str:
    if kind == "hear":
        return f'hear "{text}"'
    if kind in {"press", "say"}:
        return f"{kind} {text}"
    return kind.replace("_", " ")



def _when(text: str, now: float) -> str:
    """``+7d 10:30`` (days from the test's today, UK time), ``soon`` (the next half hour:
    a meeting about to begin) or an ISO date and time."""
    if text.strip() == "soon":
        at = datetime.fromtimestamp(now, LONDON).replace(second=0, microsecond=0)
        at += timedelta(minutes=30 - at.minute % 30)
        if (at.hour, at.minute) == (23, 30):  # an hour's meeting ends by midnight
            at += timedelta(minutes=30)
        return at.strftime("%Y-%m-%dT%H:%M")
    match = re.fullmatch(r"\+(\d{1,3})d (\d\d):(\d\d)", text.strip())
    if not match:
        return text
    day = datetime.fromtimestamp(now, LONDON).date() + timedelta(days=int(match.group(1)))
    return f"{day.isoformat()}T{match.group(2)}:{match.group(3)}"
