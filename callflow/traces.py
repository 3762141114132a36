"""What happened on a call, step by step, for the designer answering a complaint.

Each webhook of a call adds one step to its trace: when, the event, the transitions taken
(and the guards that decided them, and the alternatives passed over), the actions run,
the states entered, the TwiML returned in outline, how long it took and how many store
operations it made. The call's end closes it. The steps are written with the session's
own save (the same Lua script on Redis: no extra round trip on the webhook path); the
summary that makes a call findable (by flow, by outcome, by time) is written once, when
the call ends.

A trace never holds a secret. Input consumed by an action that reads a secret (a PIN, a
security answer, a date of birth, a SEES ID: ``Registry.action(secret=True)``) is shown as
"keyed, hidden" or "said, hidden", and what that action decided (the events it raised)
is kept instead, so a replay can stand in a secret that leads the same way. Whatever is
given at a prompt marked ``secret: true`` in the flow (keys or speech, whichever event it
fires) is hidden the same way. Digits keyed at the adviser-number prompt are shown only
when they are a registered adviser's number.

Traces are kept CALLFLOW_TRACE_RETENTION_DAYS (30) days (docs/retention.md). Reading one is
audited (``trace.read``, with who).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .errors import CallflowError
from .records import TraceSummary

if TYPE_CHECKING:
    from .audit import Audit
    from .context import CallContext
    from .flowspec import Flow
    from .library import FlowLibrary
    from .machine import FlowMachine
    from .session import CallSession
    from .store.base import Store

__all__ = ["HIDDEN_KEYED", "HIDDEN_SAID", "Traces", "outline", "step_record"]

NAMESPACE = "traces"
HIDDEN_KEYED = "keyed, hidden"
HIDDEN_SAID = "said, hidden"
#: How much of a prompt the outline keeps.
PROMPT_CHARS = 120
#: How many steps one trace keeps (a call looping for hours stops adding at this many).
MAX_STEPS = 400
#: Prompt values about a person: a trace's outline shows the placeholder, not the value
#: (a designer needs to know which prompt was said, not to whom or about what).
PERSONAL_VALUES = (
    "adviser_name",
    "caller_number",
    "customer_name",
    "meeting_purpose",
    "meeting_bring",
    "meeting_when",
    "meeting_where",
)


def _masked(lines: list[str], ctx: CallContext) -> list[str]:
    values = {**ctx.session.values, "caller_number": ctx.session.from_number}
    personal = sorted(
        ((key, str(values[key])) for key in PERSONAL_VALUES if len(str(values.get(key) or "")) > 1),
        key=lambda kv: -len(kv[1]),
    )
    if not personal:
        return lines
    masked = []
    for line in lines:
        for key, value in personal:
            line = line.replace(value, "{" + key + "}")
        masked.append(line)
    return masked


@lru_cache(maxsize=2048)
def _outline(twiml: str) -> tuple[str, ...]:
    return tuple(_outline_of(twiml))


def outline(twiml: str) -> list[str]:
    """The verbs of a TwiML answer in outline (cached: most answers recur call after call)."""
    return list(_outline(twiml))


def _outline_of(twiml: str) -> list[str]:
    """The verbs of a TwiML answer, one line each: ``say: Please key your PIN...``,
    ``gather dtmf -> step 3``, ``dial conference vstrs-CA...``. Prompts are as the caller
    heard them (they hold no secret: secrets are never put in TwiML; a step masks values
    about a person)."""
    try:
        root = ET.fromstring(twiml)  # noqa: S314 (our own answer, never a caller's input)
    except ET.ParseError:
        return ["(not TwiML)"] if twiml.strip() else []
    lines: list[str] = []

    def short(text: str | None) -> str:
        words = " ".join((text or "").split())
        return words if len(words) <= PROMPT_CHARS else words[: PROMPT_CHARS - 1] + "…"

    def walk(node: ET.Element, depth: int) -> None:
        for verb in node:
            pad = "  " * depth
            tag = verb.tag
            if tag in {"Say", "Play"}:
                lines.append(f"{pad}{tag.lower()}: {short(verb.text)}")
            elif tag == "Gather":
                step = re.search(r"[?&]s=(\d+)", verb.get("action", ""))
                lines.append(
                    f"{pad}gather {verb.get('input', 'dtmf')}"
                    + (f" -> step {step.group(1)}" if step else "")
                )
                walk(verb, depth + 1)
            elif tag == "Dial":
                inner = [f"{child.tag.lower()} {short(child.text)}" for child in verb]
                lines.append(f"{pad}dial " + ", ".join(inner))
            elif tag == "Pause":
                lines.append(f"{pad}pause {verb.get('length', '1')}s")
            else:
                lines.append(f"{pad}{tag.lower()}" + (f" {short(verb.text)}" if verb.text else ""))

    walk(root, 0)
    return lines


def _input(ctx: CallContext, params: Mapping[str, str], secret: bool) -> dict[str, str] | None:
    """What the caller gave in this webhook, as a trace may show it."""
    digits = params.get("Digits") or ""
    speech = (params.get("SpeechResult") or "").strip()
    if not digits and not speech:
        return None
    if secret:
        hidden = HIDDEN_SAID if speech else HIDDEN_KEYED
        return {"kind": "speech" if speech else "digits", "value": hidden}
    if ctx.trace_input is not None:
        return {"kind": "digits", "value": ctx.trace_input}
    if speech:
        return {"kind": "speech", "value": speech[:PROMPT_CHARS]}
    return {"kind": "digits", "value": digits[:32]}


def step_record(
    ctx: CallContext,
    machine: FlowMachine,
    *,
    event: str,
    before: str,
    at: float,
    params: Mapping[str, str],
    twiml: str,
) -> dict[str, Any]:
    """One webhook as its trace keeps it: compact (the transitions taken by their place in
    the flow version; :func:`expand` names them, their guards and actions when the trace is
    read). Duration and store operations are added by the engine once the reply is ready."""
    checked = any(i in machine.secret_transitions for i in ctx.taken) or any(
        s in machine.secret_states for s in ctx.entered
    )
    # A prompt marked secret hides what was given there whatever arrives (speech at a
    # keypad prompt too) and whichever event it fires.
    prompted = before in machine.secret_prompts
    secret = checked or prompted
    record: dict[str, Any] = {
        "at": at,
        "step": ctx.session.step,
        "event": event,
        "from": before,
        "taken": list(ctx.taken),
        "entered": list(ctx.entered),
        "state": ctx.state,
        "twiml": _masked(outline(twiml), ctx),
    }
    given = _input(ctx, params, secret)
    if given is not None:
        record["input"] = given
    if checked:
        # What the secret check decided, never what was keyed: a replay stands in a secret
        # that leads the same way.
        record["decided"] = list(ctx.raised_log)
    elif secret and given is not None:
        # Hidden by the prompt alone: nothing secret read it, so any stand-in will do.
        record["masked"] = "prompt"
    if params.get("AnsweredBy"):
        record["answered_by"] = params["AnsweredBy"][:20]
    # What the world decided here (the queue, the calendars, the store): a replay of the
    # call meets the same world.
    world = {kind: dict(found) for kind, found in ctx.world.items() if found}
    if world:
        record["world"] = world
    return record


def expand(steps: list[dict[str, Any]], flow: Flow | None) -> list[dict[str, Any]]:
    """Steps as people read them: each taken transition named (from, event, to), with the
    guards that decided it, the alternatives passed over, and the actions run. Without the
    flow version (no longer kept) the steps are as stored."""
    if flow is None:
        return steps
    transitions = flow.numbered
    expanded = []
    for step in steps:
        if "taken" not in step:
            expanded.append(step)
            continue
        path, actions = [], []
        for index in step["taken"]:
            if not 0 <= index < len(transitions):
                continue
            tr = transitions[index]
            path.append(
                {
                    "from": tr.source,
                    "event": tr.event,
                    "to": tr.dest,
                    "guards": {g: True for g in tr.if_guards}
                    | {g: False for g in tr.unless_guards},
                    "passed_over": [
                        {"to": o.dest, "if": list(o.if_guards), "unless": list(o.unless_guards)}
                        for o in transitions[:index]
                        if o.source == tr.source and o.event == tr.event
                    ],
                    "actions": list(tr.actions),
                }
            )
            actions += tr.actions
        for state in step.get("entered", []):
            if state in flow.states:
                actions += flow.states[state].enter
        expanded.append({**step, "path": path, "actions": actions})
    return expanded


class Traces:
    """Reading traces: one call's, a page of a flow's calls, audited."""

    def __init__(
        self, store: Store, audit: Audit, keep_seconds: float, library: FlowLibrary | None = None
    ) -> None:
        self.store = store
        self.audit = audit
        #: Flow versions by name, to name a step's transitions.
        self.library = library
        store.define_index(NAMESPACE, trace_index, keep_seconds=keep_seconds)

    def steps(self, call_sid: str) -> list[dict[str, Any]]:
        """A call's steps, expanded (for the service's own use: a replay; not audited)."""
        steps = self.store.trace_steps(call_sid)
        return expand(steps, self._flow(steps[0].get("version") if steps else None))

    def _flow(self, version: str | None) -> Flow | None:
        if self.library is None or not version:
            return None
        try:
            return self.library.version(str(version))
        except CallflowError:
            return None

    def get(self, call_sid: str, *, by: str, role: str) -> dict[str, Any] | None:
        """A call's trace (its summary and steps), audited as read by ``by``."""
        steps = self.store.trace_steps(call_sid)
        summary = self.store.get_doc(NAMESPACE, call_sid)
        if not steps and summary is None:
            return None
        head_version = (steps[0].get("version") if steps else None) or (summary or {}).get(
            "version"
        )
        steps = expand(steps, self._flow(head_version))
        self.audit.record("trace.read", call_sid=call_sid, by=by, role=role, outcome="read")
        head = steps[0] if steps else {}
        return {
            "call_sid": call_sid,
            "flow": (summary or head).get("flow"),
            "version": (summary or head).get("version"),
            "started_at": (summary or head).get("started_at", head.get("at")),
            "summary": summary,
            "steps": [s for s in steps if "end" not in s],
            "end": next((s for s in steps if "end" in s), None),
        }

    def search(
        self,
        *,
        flow: str | None = None,
        outcome: str | None = None,
        since: float | None = None,
        until: float | None = None,
        offset: int = 0,
        count: int = 25,
    ) -> list[dict[str, Any]]:
        """Ended calls, newest first, by flow and/or final state within a time (a page)."""
        if flow and outcome:
            index = f"flow:{flow}:end:{outcome}"
        elif flow:
            index = f"flow:{flow}"
        elif outcome:
            index = f"end:{outcome}"
        else:
            index = "all"
        return self.store.indexed(
            NAMESPACE,
            index,
            newest_first=True,
            min_score=since,
            max_score=until,
            offset=offset,
            count=count,
        )

    def recent(self, flow: str, count: int) -> list[dict[str, Any]]:
        """The last ``count`` ended calls of a flow, newest first (for a replay)."""
        return self.search(flow=flow, count=count)


def trace_index(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """An ended call's summary: findable by flow, by final state, both, and by time."""
    at = float(doc.get("started_at") or 0)
    flow, state = doc.get("flow", ""), doc.get("state", "")
    return [
        ("all", at),
        (f"flow:{flow}", at),
        (f"end:{state}", at),
        (f"flow:{flow}:end:{state}", at),
    ]


def summary_of(session: CallSession, status: str, steps: int) -> TraceSummary:
    """What makes an ended call findable: never a number or an input."""
    return {
        "call_sid": session.call_sid,
        "flow": session.flow,
        "version": session.flow_version,
        "started_at": session.started_at,
        "ended_at": session.ended_at,
        "status": status,
        "state": session.state,
        "steps": steps,
        "language": session.values.get("language", ""),
    }


def _guards_text(hop: dict[str, Any]) -> str:
    held = [f"{g}" if v else f"not {g}" for g, v in hop.get("guards", {}).items()]
    return f" [{', '.join(held)}]" if held else ""


def _passed_text(hop: dict[str, Any]) -> list[str]:
    """The alternatives a hop passed over, and why (a guard that did not hold)."""
    out = []
    for other in hop.get("passed_over", []):
        why = [f"not {g}" for g in other.get("if", [])] + [g for g in other.get("unless", [])]
        out.append(f"{other['to']} ({' or '.join(why) or 'earlier alternative'})")
    return out


def describe(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """Each step of a trace in words, as `callflow trace` and the designer's page show it."""
    started = float(trace.get("started_at") or 0)
    rows = []
    for step in trace["steps"]:
        given = step.get("input")
        what = step["event"]
        if given is not None:
            value = given["value"]
            shown = value if value in {HIDDEN_KEYED, HIDDEN_SAID} or "," in value else f'"{value}"'
            what += f" {shown}"
        if step.get("decided"):
            what += f" (decided: {', '.join(step['decided'])})"
        if step.get("answered_by"):
            what += f" (answered by {step['answered_by']})"
        hops = [
            f"{hop['from']} -{hop['event']}-> {hop['to']}{_guards_text(hop)}"
            for hop in step.get("path", [])
        ]
        passed = [p for hop in step.get("path", []) for p in _passed_text(hop)]
        rows.append(
            {
                "step": step["step"],
                "offset": round(float(step["at"]) - started, 1),
                "what": what,
                "from": step.get("from", ""),
                "hops": hops,
                "passed_over": passed,
                "entered": step.get("entered", []),
                "state": step.get("state", ""),
                "actions": step.get("actions", []),
                "twiml": step.get("twiml", []),
                "ms": step.get("ms"),
                "store_ops": step.get("store_ops"),
            }
        )
    return rows


def text(trace: dict[str, Any]) -> str:
    """A trace as `callflow trace` prints it."""
    from datetime import UTC, datetime

    def when(at: float | None) -> str:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "-"

    head = trace["steps"][0] if trace["steps"] else {}
    lines = [
        f"call {trace['call_sid']} on flow {trace.get('flow')}@{trace.get('version')}, "
        f"started {when(trace.get('started_at'))}"
        + (f", {head.get('direction')}" if head.get("direction") else "")
        + (f", in {head['language']}" if head.get("language") else "")
        + (", Relay UK" if head.get("relay") else ""),
    ]
    end = trace.get("end")
    if end is not None:
        lines.append(
            f"ended {end['end']} in state {end['state']} at {when(end.get('at'))} after "
            f"{len(trace['steps'])} webhook(s)"
        )
    else:
        lines.append(f"not ended (yet): {len(trace['steps'])} webhook(s) so far")
    for row in describe(trace):
        cost = ""
        if row["ms"] is not None:
            cost = f"  ({row['ms']} ms, {row['store_ops']} store op(s))"
        lines.append("")
        lines.append(f"  +{row['offset']:>7.1f}s  step {row['step']}: {row['what']}{cost}")
        for hop in row["hops"]:
            lines.append(f"             {hop}")
        if not row["hops"]:
            lines.append(f"             stayed in {row['state']} (said again)")
        if row["passed_over"]:
            lines.append(f"             passed over: {'; '.join(row['passed_over'])}")
        if row["actions"]:
            lines.append(f"             ran: {', '.join(row['actions'])}")
        for verb in row["twiml"]:
            lines.append(f"             > {verb}")
    return "\n".join(lines) + "\n"
