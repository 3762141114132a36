"""Flow diagrams with ``transitions``' own diagram back ends.

Mermaid text always works; SVG and PNG need Graphviz (Debian's ``graphviz`` and the
``graphviz`` Python package: ``pip install 'callflow[graph]'``).
"""

from __future__ import annotations

import shutil
from typing import Any, Literal

from transitions.extensions import GraphMachine

from .errors import CallflowError
from .flowspec import Flow


class _Drawing:
    """The model a diagram is drawn for."""


def _graph_machine(flow: Flow, engine: Literal["graphviz", "mermaid"]) -> tuple[_Drawing, Any]:
    model = _Drawing()
    states = list(flow.states)
    transitions = [
        {
            "trigger": tr.event,
            "source": tr.source,
            "dest": tr.dest,
            "conditions": list(tr.if_guards),
            "unless": list(tr.unless_guards),
        }
        for tr in flow.transitions()
    ]
    machine = GraphMachine(
        model=model,
        states=states,
        transitions=transitions,
        initial=flow.initial,
        auto_transitions=False,
        show_conditions=True,
        graph_engine=engine,
        title=f"{flow.name} ({flow.version})",
    )
    return model, machine


def mermaid(flow: Flow) -> str:
    """The flow as a Mermaid state diagram."""
    model, _ = _graph_machine(flow, "mermaid")
    text: str = model.get_graph().draw(None)  # type: ignore[attr-defined]
    # transitions marks the drawing model's state "active"; a flow diagram has no current call.
    return (
        "\n".join(
            line.replace(" s_active", " s_default") if line.strip().startswith("Class ") else line
            for line in text.splitlines()
        )
        + "\n"
    )


def mermaid_path(flow: Flow, steps: list[dict[str, Any]]) -> str:
    """The flow with one call's path drawn on it: the states it entered shaded, the one it
    ended in marked, and each transition it took labelled with the steps that took it."""
    visited: set[str] = set()
    taken: dict[tuple[str, str, str], list[str]] = {}
    last = ""
    for step in steps:
        visited.update(step.get("entered", []))
        last = step.get("state") or last
        for hop in step.get("path", []):
            key = (hop["from"], hop["event"], hop["to"])
            taken.setdefault(key, []).append(str(step["step"]))
    lines = []
    for line in mermaid(flow).splitlines():
        stripped = line.strip()
        if stripped.startswith("Class "):
            parts = stripped.split()
            if len(parts) == 3 and parts[1] == last:
                line = line.replace(" s_default", " s_active")
            elif len(parts) == 3 and parts[1] in visited:
                line = line.replace(" s_default", " s_previous")
        elif " --> " in stripped and ": " in stripped:
            source, rest = stripped.split(" --> ", 1)
            dest, label = rest.split(": ", 1)
            events = label.split(" [", 1)[0].split(" | ")
            steps_here = sorted(
                {n for event in events for n in taken.get((source, event, dest), [])}, key=int
            )
            if steps_here:
                line = f"{line} (step {', '.join(steps_here)})"
        lines.append(line)
    return "\n".join(lines) + "\n"


def outline(flow: Flow) -> list[dict[str, Any]]:
    """The flow as a list, for people who cannot see the diagram: each state (with its line
    in the file) and where each of its events goes, under which guards."""
    rows = []
    for state in flow.states.values():
        moves = [
            {
                "event": tr.event,
                "dest": tr.dest,
                "if": list(tr.if_guards),
                "unless": list(tr.unless_guards),
                "line": tr.line,
            }
            for options in state.events.values()
            for tr in options
        ]
        rows.append(
            {
                "name": state.name,
                "line": state.line,
                "description": state.description,
                "initial": state.name == flow.initial,
                "final": not moves,
                "transitions": moves,
            }
        )
    return rows


def render(flow: Flow, fmt: str) -> bytes:
    """The flow drawn as ``svg`` or ``png`` with Graphviz."""
    try:
        import graphviz  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        raise CallflowError(
            "SVG and PNG need the graphviz Python package: pip install 'callflow[graph]'"
        ) from None
    if shutil.which("dot") is None:
        raise CallflowError("SVG and PNG need Graphviz's dot: apt-get install graphviz")
    model, _ = _graph_machine(flow, "graphviz")
    data: bytes = model.get_graph().pipe(format=fmt)  # type: ignore[attr-defined]
    return data
