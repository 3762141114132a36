"""The flow machine's lean transitions classes run what transitions' own would, in order."""

from __future__ import annotations

from typing import Any

import pytest
from transitions import Machine, State

from callflow.machine import _Machine, _State


class Model:
    def __init__(self, log: list[str], allow: bool) -> None:
        self.log = log
        self.allow = allow

    def by_name(self, event: Any) -> None:  # a callback named by string, resolved on the model
        self.log.append(f"by_name:{event.event.name}")


def build(kind: type[Machine], state_kind: type[State], log: list[str]) -> Machine:
    def note(label: str) -> Any:
        return lambda event: log.append(f"{label}:{event.event.name}:{event.state.name}")

    def guard(label: str, result: bool) -> Any:
        def check(event: Any) -> bool:
            log.append(f"guard {label}")
            return result if label != "model" else event.model.allow

        return check

    states = [
        state_kind("a", on_enter=[note("enter a")], on_exit=[note("exit a")]),
        state_kind("b", on_enter=[note("enter b"), "by_name"], on_exit=[note("exit b")]),
        state_kind("c", on_enter=[note("enter c")]),
    ]
    transitions = [
        {"trigger": "go", "source": "a", "dest": "c", "conditions": [guard("no", False)]},
        {
            "trigger": "go",
            "source": "a",
            "dest": "b",
            "prepare": [note("prepare")],
            "conditions": [guard("model", True)],
            "unless": [guard("unless", False)],
            "before": [note("before"), "by_name"],
            "after": [note("after")],
        },
        {"trigger": "stay", "source": "b", "dest": None, "after": [note("internal")]},
        {"trigger": "go", "source": "b", "dest": "c", "before": [note("before b->c")]},
    ]
    return kind(
        model=None,
        states=states,
        transitions=transitions,
        initial="a",
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=True,
        prepare_event=[note("machine prepare")],
        before_state_change=[note("machine before")],
        after_state_change=[note("machine after")],
        finalize_event=[note("machine finalize")],
    )


@pytest.mark.parametrize("allow", [True, False])
def test_the_lean_machine_runs_what_transitions_runs(allow: bool) -> None:
    runs = []
    for kind, state_kind in ((Machine, State), (_Machine, _State)):
        log: list[str] = []
        machine = build(kind, state_kind, log)
        model = Model(log, allow)
        machine.add_model(model)
        results = [
            machine.events[name].trigger(model)
            for name in ("go", "stay", "go", "go", "nothing")
            if name in machine.events
        ]
        runs.append((log, results, model.state))  # type: ignore[attr-defined]
    stock, lean = runs
    assert lean == stock
    assert stock[2] == ("c" if allow else "a")
