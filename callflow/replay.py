"""The replay gate: before a version goes live, the last real calls of its flow are played
again, from their traces, against the live version and against the candidate, each in a
sandbox of its own (embedded store, the local simulator, nothing of the live service but
what is copied in to read). Every call whose path or prompts would change is reported,
with a diff.

A call is rebuilt from its trace:

- the caller's inputs, step by step: keys (with the finish key where the gather had one),
  words, silences, and when they hung up;
- secrets are stood in for by values that lead the same way: where the trace says the PIN
  check decided ``pin_accepted`` the sandbox adviser's own PIN is keyed, where it decided
  ``failed`` a wrong one; the same for the security answer. An adviser number shown as not
  an adviser's becomes a number no adviser has;
- the world it met: the advisers named (their name and organisation copied; stand-in
  secrets; locked when the trace says so), officers keyed, one VSTRS agent free, and the
  VSTRS line's calendar and any closure; the sandbox clock starts when the call did, so
  opening hours and bank holidays judge the same;
- its language and whether Relay UK was on the line;
- what the world decided at each step (world guards' answers and world actions' events,
  kept in the trace): the replay's world guards and actions answer the same, and a wait the
  world ended (a conference ending) ends at the same moment.

Both versions are replayed in the same way, so an unchanged flow reports no differences.
The replay against the live version is also compared with what really happened (when the
call ran on that version): a call it cannot reproduce is listed as such, not as a change.
A call the service placed (a meeting call, a call-back) is placed again in the sandbox about
a stand-in record, and answered as the real one was (a machine stays a machine); its
personal values are masked in every trace, so stand-ins change nothing the diff sees. A
specialist's leg of a hand-off rings in again, its hand-off stood in by what was decided.
The report says how many calls were compared, and when that is too few to mean much.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CallflowError
from .flowspec import Flow
from .sandbox import Sandbox, quiet
from .simulator import Callee, Script
from .traces import HIDDEN_KEYED, HIDDEN_SAID

if TYPE_CHECKING:
    from .registry import Registry
    from .service import Callflow
    from .simulator import Leg, Script, Simulator

__all__ = ["ReplayReport", "Replayer"]

log = logging.getLogger(__name__)

#: The stand-in secrets of every sandbox adviser (never a real one).
STAND_IN_PIN = "135790"
WRONG_PIN = "975310"
STAND_IN_ANSWER = "2468"
WRONG_ANSWER = "1357"
NO_ADVISER = "99999999"
STAND_IN_QUESTIONS = ("memorable_number", "first_school")
#: The stand-in record of a call the service places: the number it rings, the adviser a
#: call-back is for when the trace names none, a meeting's officer and identity details.
STAND_IN_PHONE = "+447700900999"
STAND_IN_ADVISER = "1001"
STAND_IN_OFFICER = "4470001"
STAND_IN_BIRTH = "1970-01-01"
STAND_IN_POSTCODE = "SW1A 2AA"
#: The secret checks a replay can stand in for.
STAND_INS = frozenset(
    {
        "check_pin",
        "check_answer",
        "check_date_of_birth",
        "check_postcode",
        "check_officer_pin",
        "check_sees_id",  # a world action: its events are the real call's
    }
)
#: An officer's stand-in PIN for the meeting start line.
STAND_IN_OFFICER_PIN = "86420975"
#: The events a caller's own doing fires (the rest come from the world: a dial ending).
CALLER_EVENTS = frozenset({"digits", "speech", "timeout"})
#: How long a replayed caller waits where the world, not they, ended the wait.
WORLD_WAIT_SECONDS = 4 * 3600
LINE = "+441632960900"
CALLER = "+441632960001"


@dataclass
class CallDiff:
    """One recorded call as each version plays it."""

    call_sid: str
    started_at: float
    outcome: str  # "same", "changed", "not_reproduced", "not_replayed"
    why: str = ""
    diff: list[str] = field(default_factory=list)


#: Fewer calls compared than this and the gate says it means little (``--strict``
#: refuses): CALLFLOW_REPLAY_MIN_COMPARED.
MIN_COMPARED = 20


@dataclass
class ReplayReport:
    """What a candidate version would change on recent real calls."""

    flow: str
    live: str | None
    candidate: str
    calls: list[CallDiff] = field(default_factory=list)
    #: How many calls must be compared for the gate to mean much.
    min_compared: int = MIN_COMPARED

    @property
    def changed(self) -> list[CallDiff]:
        return [c for c in self.calls if c.outcome == "changed"]

    @property
    def replayed(self) -> int:
        return sum(1 for c in self.calls if c.outcome in {"same", "changed", "not_reproduced"})

    @property
    def compared(self) -> int:
        """Calls the live version reproduced, so their replay on the candidate means
        something: the same, or changed."""
        return sum(1 for c in self.calls if c.outcome in {"same", "changed"})

    @property
    def too_few(self) -> bool:
        """Too few calls compared for the gate to mean much: fewer than ``min_compared``,
        or under 95% of those recorded (the rest could not be reproduced or replayed)."""
        if self.live is None:
            return False  # a new flow: nothing live to compare with
        return self.compared < self.min_compared or self.compared < 0.95 * len(self.calls)

    def summary(self) -> str:
        """One line: how many calls were compared, how many would change, how many could
        not be reproduced or replayed, and whether that is too few to mean much."""
        if not self.calls:
            text = f"replay: no recorded calls of {self.flow} to replay"
            return text + (" (too few compared for the gate to mean much)" if self.too_few else "")
        skipped = sum(1 for c in self.calls if c.outcome == "not_replayed")
        odd = sum(1 for c in self.calls if c.outcome == "not_reproduced")
        text = (
            f"replay: {self.compared} of {len(self.calls)} recent call(s) of {self.flow} "
            f"compared against {self.candidate} (live: {self.live}); "
            f"{len(self.changed)} would change"
        )
        if odd:
            text += f"; {odd} could not be reproduced on the live version"
        if skipped:
            text += f"; {skipped} not replayed"
        if self.too_few:
            text += (
                f"; too few compared for the gate to mean much (at least {self.min_compared}, "
                "and 95% of those recorded)"
            )
        return text

    def text(self) -> str:
        """The report: the summary, then each call that would change, with its diff."""
        lines = [self.summary()]
        for call in self.calls:
            if call.outcome == "same":
                continue
            lines.append("")
            lines.append(f"call {call.call_sid}: {call.outcome.replace('_', ' ')}"
                         + (f" ({call.why})" if call.why else ""))  # fmt: skip
            lines += [f"  {line}" for line in call.diff]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "live": self.live,
            "candidate": self.candidate,
            "replayed": self.replayed,
            "compared": self.compared,
            "recorded": len(self.calls),
            "too_few": self.too_few,
            "changed": len(self.changed),
            "summary": self.summary(),
            "calls": [c.__dict__ for c in self.calls if c.outcome != "same"],
        }


@dataclass
class _Played:
    """One replay of one call: per caller step, the states it went through and what the
    caller heard."""

    lines: list[str]
    states: list[str]


class Replayer:
    """Replays a flow's recent real calls against two versions, in sandboxes."""

    def __init__(
        self, service: Callflow, flows_dir: Path, registry: Registry, sandbox: Sandbox | None = None
    ) -> None:
        self.service = service
        self.flows_dir = flows_dir
        self.registry = registry
        #: Where the replayed calls run (the service's own sandbox unless one is given).
        self.sandbox: Sandbox = sandbox or service.sandbox

    def replay(self, candidate: Flow, count: int) -> ReplayReport:
        """Replay the last ``count`` recorded calls of ``candidate``'s flow."""
        svc = self.service
        live_version = svc.library.live_versions().get(candidate.name)
        # Never more than asked for: a publish replaying 10 calls needs those 10.
        wanted = min(svc.settings.replay_min_compared, count)
        report = ReplayReport(candidate.name, live_version, candidate.version, [], wanted)
        if live_version is None or count <= 0:
            return report
        live = svc.library.version(live_version)
        sandbox = self.sandbox
        with (
            sandbox.folder(live, self.flows_dir, self.registry) as live_folder,
            sandbox.folder(candidate, self.flows_dir, self.registry) as candidate_folder,
            quiet(),
        ):
            # Each publish has its own folders (the replayer is shared by a worker's threads).
            folders = {live.version: live_folder, candidate.version: candidate_folder}
            for summary in svc.traces.recent(candidate.name, count):
                steps = svc.traces.steps(summary["call_sid"])
                report.calls.append(self._one(summary, steps, live, candidate, folders))
        return report

    def _one(
        self,
        summary: dict[str, Any],
        steps: list[dict[str, Any]],
        live: Flow,
        candidate: Flow,
        folders: dict[str, Path],
    ) -> CallDiff:
        call = CallDiff(summary["call_sid"], float(summary.get("started_at") or 0), "same")
        body = [s for s in steps if "end" not in s]
        if not body:
            call.outcome, call.why = "not_replayed", "its trace is empty"
            return call
        why = _not_replayable(body)
        if why:
            call.outcome, call.why = "not_replayed", why
            return call
        try:
            before = self._play(live, body, summary, folders[live.version])
            after = self._play(candidate, body, summary, folders[candidate.version])
        except CallflowError as exc:
            call.outcome, call.why = "not_replayed", str(exc)
            return call
        if summary.get("version") == live.version:
            real = [s["state"] for s in body]
            if before.states[: len(real)] != real:
                call.outcome = "not_reproduced"
                call.why = _parting(body, before.states)
                call.diff = list(
                    difflib.unified_diff(real, before.states, "real call", "replayed", lineterm="")
                )
                return call
        if before.lines != after.lines:
            call.outcome = "changed"
            call.diff = list(
                difflib.unified_diff(
                    before.lines,
                    after.lines,
                    f"{live.name}@{live.version}",
                    f"{candidate.name}@{candidate.version}",
                    lineterm="",
                    n=2,
                )
            )
        return call

    # -- one sandboxed replay

    def _play(
        self, flow: Flow, steps: list[dict[str, Any]], summary: dict[str, Any], folder: Path
    ) -> _Played:
        """One call against one version, in a sandbox of its own (a fresh embedded store, so
        no call's lockout counts or rate limits reach another)."""
        sim, sandbox = self._sandbox_service(folder, float(steps[0]["at"]))
        self._world(sim, sandbox, steps)
        # What the world decided at each step of the real call (the queue, the calendars,
        # the store: world guards' answers and world actions' events, from its trace): the
        # replay meets the same world, whatever the sandbox's own would have said.
        decided = {int(s["step"]): s["world"] for s in steps if s.get("world")}
        sandbox.engine.world_stand_in = lambda session: (
            decided.get(session.step) if session.flow == flow.name else None
        )
        head = steps[0]
        links = sandbox.links()
        sim.configure_number(
            LINE,
            links.voice_url(
                flow=flow.name, language=head.get("language") or None, relay=bool(head.get("relay"))
            ),
            status_callback=links.call_status(),
        )
        script = _script(flow, steps, summary)
        kind = _kind(steps)
        if kind in {"inbound", "handoff"}:
            # A specialist's leg rings in as the real one was placed: the hand-off it was
            # about is stood in by what the real call's trace says was decided.
            leg = sim.call(LINE, CALLER, script)
        else:
            leg = self._placed(kind, flow, sim, sandbox, steps, script)
        # What ended a wait of the real call without the caller (a conference ending, the
        # party dialled hanging up) ends it at the same moment of the replay.
        for step in steps[1:]:
            if step["event"] not in CALLER_EVENTS:
                sim.schedule(float(step["at"]) - sandbox.clock.now(), lambda: sim.end_wait(leg))
        sim.run_until(lambda: not leg.live, max_seconds=4 * 3600)
        sim.run(max_seconds=60)
        return _played(sandbox, leg)

    def _placed(
        self,
        kind: str,
        flow: Flow,
        sim: Simulator,
        sandbox: Callflow,
        steps: list[dict[str, Any]],
        script: Script,
    ) -> Leg:
        """A call the service places (a meeting call, a call-back), placed in the sandbox
        about a stand-in record, and answered as the real one was."""

        links = sandbox.links()
        answered_by = str(steps[0].get("answered_by") or "human")
        language = str(steps[0].get("language") or "") or None
        now = sandbox.clock.now()
        if kind == "meeting":
            sandbox.staff.add_officer(
                STAND_IN_OFFICER, "Replay Officer", now, grade="G6", by="replay"
            )
            # Every hour of every day: a week on is always a time they work, and the diary
            # always has times to offer, whatever day the real call was made.
            sandbox.staff.set_officer_hours(
                STAND_IN_OFFICER, "Mon-Sun 00:00-24:00", "none", by="replay"
            )
            # A meeting whose customer was offered times had none set: so has the stand-in.
            offered = any("offer_meeting_times" in s.get("actions", []) for s in steps) and not any(
                "when_set" in s.get("entered", []) for s in steps
            )
            meeting = sandbox.meetings.add(
                customer_name="Replay Customer",
                customer_number=STAND_IN_PHONE,
                reference="REPLAY-1",
                officer_number=STAND_IN_OFFICER,
                purpose="other",
                about="the purpose of the meeting",
                bring="what to bring",
                when=None if offered else _in_a_week(now),
                where="the office",
                place="hmrc_office",
                date_of_birth=STAND_IN_BIRTH,
                postcode=STAND_IN_POSTCODE,
                flow=flow.name,
                language=language,
                by="replay",
            )
            sim.add_callee(STAND_IN_PHONE, Callee("answered", 3, script, answered_by))
            call_sid = sandbox.meetings.place_call(meeting["id"], links)
        else:
            named = _advisers_named(steps) or [STAND_IN_ADVISER]
            adviser = sandbox.directory.get(named[0])
            if adviser is None:
                self._adviser(sandbox, named[0], steps)
                adviser = sandbox.directory.require(named[0])
            from dataclasses import replace

            sandbox.directory.update(replace(adviser, phone=STAND_IN_PHONE), now)
            noted = sandbox.callbacks.note(
                "CA" + "0" * 32,
                adviser.identity(),
                arrived_at=now - 600,
                language=language or "en-GB",
                relay=bool(steps[0].get("relay")),
                routing=None,
                reason="no_agent",
            )
            if noted is None:
                raise CallflowError("the call-back could not be noted in the sandbox")
            sim.add_callee(STAND_IN_PHONE, Callee("answered", 5, script, answered_by))
            call_sid = sandbox.callbacks.place(noted["id"], links)
        sim.run_until(lambda: call_sid in sim.legs, max_seconds=5)
        return sim.legs[call_sid]

    def _sandbox_service(self, folder: Path, at: float) -> tuple[Simulator, Callflow]:
        """A service of its own on the embedded store, with the simulator, its clock at
        ``at`` (when the real call started)."""
        live = self.service.settings
        sim, service = self.sandbox.world(
            folder,
            self.registry,
            base_url="http://callflow.replay",
            start=at,
            relay_numbers=live.relay_numbers,
            agent_wait_seconds=live.agent_wait_seconds,
        )
        return sim, service

    def _adviser(self, sandbox: Callflow, number: str, steps: list[dict[str, Any]]) -> None:
        """An adviser the call named: their name and organisation copied from the live
        directory (read only), stand-in secrets; locked when the real call met a lock."""
        real = self.service.directory.get(number)
        now = sandbox.clock.now()
        sandbox.directory.add(
            number,
            real.name if real else "Replay Adviser",
            real.organisation if real else "taxaid",
            consent_to_act=bool(real and real.consent_to_act),
            now=now,
            by="replay",
        )
        sandbox.directory.set_pin(number, STAND_IN_PIN, now, by="replay")
        # One keyed and one spoken question (both versions ask the same one: the
        # sandboxes' choices are seeded alike).
        sandbox.directory.set_answers(
            number, {q: STAND_IN_ANSWER for q in STAND_IN_QUESTIONS}, now, by="replay"
        )
        if any("locked" in s.get("decided", []) for s in steps):
            settings = sandbox.settings
            for n in range(settings.lockout_threshold):
                caller = f"+4416329619{n:02d}"
                sandbox.store.begin_attempt(number, caller, now, settings.guard)
                sandbox.store.attempt_failed(number, caller, now, settings.guard)

    def _world(self, sim: Simulator, sandbox: Callflow, steps: list[dict[str, Any]]) -> None:
        """What the call met, copied in to read: advisers (stand-in secrets), officers, a
        free agent, the line's calendar and closure."""

        live = self.service
        now = sandbox.clock.now()
        for number in _advisers_named(steps):
            self._adviser(sandbox, number, steps)
        for number in _officers_named(steps):
            officer = live.staff.officer(number)
            if officer is not None:
                sandbox.staff.add_officer(
                    number, officer.name, now, grade=officer.grade or "G6", by="replay"
                )
                if not officer.active:
                    sandbox.staff.set_officer_active(number, False, by="replay")
                if live.meetings.pins.has_pin(number):  # the meeting start line's PIN
                    sandbox.meetings.pins.set_pin(number, STAND_IN_OFFICER_PIN, by="replay")
        sandbox.staff.add_agent("100001", "Replay Agent", "client:replay", now, by="replay")
        sandbox.staff.set_availability("100001", "available", now)
        # The agent stays until the caller goes, as the real call's agent is taken to have.
        sim.add_callee("client:replay", Callee("answered", after=5, script=Script(patience=14400)))
        for key in ("line", "closure"):
            doc = live.store.get_doc("calendars", key)
            if doc is not None:
                sandbox.store.put_doc("calendars", key, doc)


def _parting(steps: list[dict[str, Any]], replayed: list[str]) -> str:
    """Where a replay of the live version left the real call's path, in words."""
    for n, step in enumerate(steps):
        went = replayed[n] if n < len(replayed) else None
        if went != step["state"]:
            where = f"at step {step.get('step', n)} ({step['event']} in {step['from']})"
            if went is None:
                return f"{where} the real call went on to {step['state']}; replayed, it had ended"
            return f"{where} the real call went to {step['state']}; replayed, to {went}"
    return "the live version, replayed, takes another path than the real call did"


def _kind(steps: list[dict[str, Any]]) -> str:
    """How the call began: ``inbound`` (a caller rang), ``meeting``, ``callback`` or
    ``handoff`` (the service placed it about a record)."""
    actions = {a for s in steps for a in s.get("actions", [])}
    for action, kind in (
        ("load_meeting", "meeting"),
        ("load_callback", "callback"),
        ("load_handoff", "handoff"),
    ):
        if action in actions:
            return kind
    if str(steps[0].get("direction", "inbound")).startswith("outbound"):
        return "handoff"
    return "inbound"


def _not_replayable(steps: list[dict[str, Any]]) -> str:
    for step in steps:
        if (
            step.get("input", {}).get("value") in {HIDDEN_KEYED, HIDDEN_SAID}
            and step.get("masked") != "prompt"
            and not (set(step.get("actions", [])) & STAND_INS)
        ):
            return "a secret the replay cannot stand in for"
    return ""


def _advisers_named(steps: list[dict[str, Any]]) -> list[str]:
    named = []
    for step in steps:
        if "capture_adviser_number" in step.get("actions", []):
            value = step.get("input", {}).get("value", "")
            if value.isdigit() and value not in named:
                named.append(value)
    return named


def _officers_named(steps: list[dict[str, Any]]) -> list[str]:
    named = []
    for step in steps:
        value = step.get("input", {}).get("value", "").rstrip("#")
        actions = set(step.get("actions", []))
        wanted = actions & {"look_up_officer", "note_officer_number"} and value.isdigit()
        if wanted and value not in named:
            named.append(value)
    return named


def _finish(flow: Flow, state: str) -> tuple[str, int | None]:
    """The finish key and digit count of the gather a state asks with (as the live flow's
    state of that name does; a state the version lacks: the hash key)."""
    found = flow.states.get(state)
    for verb in found.verbs if found else []:
        if verb.kind == "gather":
            options = verb.options
            num = options.get("num_digits")
            return str(options.get("finish_on_key", "#")), int(num) if num else None
    return "#", None


def _script(flow: Flow, steps: list[dict[str, Any]], summary: dict[str, Any]) -> Script:
    """The caller's part, from the trace: at each gather what they keyed or said (secrets
    stood in for), silence where it timed out, then how long they stayed on."""

    script = Script(patience=60)
    for step in steps[1:]:
        event, given = step["event"], step.get("input") or {}
        value, decided = given.get("value", ""), step.get("decided", [])
        masked = step.get("masked") == "prompt"  # hidden by its prompt; nothing read it
        if event == "digits":
            if value == HIDDEN_KEYED:
                value = "0" if masked else _stand_in(decided, step.get("actions", []))
            elif not value.isdigit() and not set(value) <= set("0123456789*#"):
                value = NO_ADVISER  # "keyed, not an adviser number"
            finish, num = _finish(flow, step["from"])
            if finish and (num is None or len(value) < num):
                value += finish
            script.press(value)
        elif event == "speech":
            if value == HIDDEN_SAID:
                value = "hidden" if masked else _stand_in(decided, step.get("actions", []))
            script.say(value)
        elif event == "timeout":
            script.silent()
        else:
            # The world ended a wait here (the conference ended, the dialled party hung
            # up): the caller stays on until it does (the replay ends it on time).
            script.hang_up(after=WORLD_WAIT_SECONDS)
    last = float(steps[-1]["at"])
    ended = float(summary.get("ended_at") or last)
    script.hang_up(after=max(ended - last, 0.0))
    return script


def _stand_in(decided: list[str], actions: list[str]) -> str:
    """A stand-in for a hidden secret that leads where the real one did."""
    if "check_pin" in actions:
        return STAND_IN_PIN if "pin_accepted" in decided else WRONG_PIN
    if "check_answer" in actions:
        return STAND_IN_ANSWER if "verified" in decided else WRONG_ANSWER
    if "check_date_of_birth" in actions:
        return "01011970" if "identity_confirmed" in decided else "02021970"
    if "check_postcode" in actions:
        return "12" if "identity_confirmed" in decided else "99"
    if "check_officer_pin" in actions:
        return STAND_IN_OFFICER_PIN if "officer_verified" in decided else "11223344"
    return WRONG_ANSWER


def _in_a_week(now: float) -> str:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    return (datetime.fromtimestamp(now, ZoneInfo("Europe/London")) + timedelta(days=7)).strftime(
        "%Y-%m-%dT10:30"
    )


def _played(sandbox: Callflow, leg: Leg) -> _Played:
    """What the replayed call did: per webhook, the states it went through, and each
    prompt the caller heard (in order)."""
    steps = [s for s in sandbox.traces.steps(leg.sid) if "end" not in s]
    lines: list[str] = []
    for step in steps:
        lines.append(
            f"step {step['step']} {step['event']}: "
            + (" -> ".join(step.get("entered", [])) or f"stays in {step['state']}")
        )
        lines += [
            "    " + _CALL_SID.sub("CA…", verb.strip())
            for verb in step.get("twiml", [])
            if _spoken(verb)
        ]
    end = next((s for s in sandbox.store.trace_steps(leg.sid) if "end" in s), None)
    if end is not None:
        lines.append(f"ended in {end['state']}")
    return _Played(lines, [s["state"] for s in steps])


_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")


def _spoken(verb: str) -> bool:
    return verb.strip().startswith(("say:", "play:", "dial", "hangup"))

