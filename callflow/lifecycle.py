"""Lifecycles declared once: a record's states and the events that move it, in one table.

A hand-off, a verified call's record and an agent's working state each move through a
few states. Each is declared here as a table of moves (event, from which states, to
which state), checked and held by a ``transitions`` machine (the library flows are built
on), exactly as :class:`~callflow.machine.FlowMachine` builds a model-less machine from a
flow. Every change of such a record asks its table what an event may do from the state
the record is in, so no code keeps its own list of "the states this may happen from",
and the documentation's diagram is drawn from the same table (:meth:`Lifecycle.mermaid`).

A move whose ``dest`` is None is *internal*: allowed only from its sources, it changes
fields but not the state (a specialist taking a hand-off that is still ringing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from transitions import Machine
from transitions.extensions import GraphMachine

from .errors import CallflowError

__all__ = ["Lifecycle", "Move"]


@dataclass(frozen=True)
class Move:
    """One row of a lifecycle's table: ``event`` moves a record from any of ``sources``
    to ``dest`` (None: it stays where it is)."""

    event: str
    sources: tuple[str, ...]
    dest: str | None


class _Drawing:
    """The model a lifecycle's diagram is drawn for."""


class Lifecycle:
    """A record's states and moves, held by a model-less ``transitions`` machine."""

    def __init__(
        self,
        name: str,
        states: Sequence[str],
        initial: str,
        moves: Iterable[tuple[str, Sequence[str] | str, str | None]],
        final: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.states = tuple(states)
        self.initial = initial
        self.final = frozenset(final)
        self.moves = tuple(
            Move(event, (sources,) if isinstance(sources, str) else tuple(sources), dest)
            for event, sources, dest in moves
        )
        self._transitions = [
            {"trigger": move.event, "source": list(move.sources), "dest": move.dest}
            for move in self.moves
        ]
        # transitions checks the table: unknown states in a move, a bad initial state.
        machine = Machine(
            model=None,
            states=list(self.states),
            transitions=self._transitions,
            initial=initial,
            auto_transitions=False,
        )
        self._next: dict[tuple[str, str], str | None] = {}
        for event_name, event in machine.events.items():
            for source, transitions in event.transitions.items():
                if len(transitions) != 1:
                    raise CallflowError(
                        f"lifecycle {name}: {event_name} from {source} is declared twice"
                    )
                self._next[(event_name, source)] = transitions[0].dest
        events = {move.event for move in self.moves}
        self.events = frozenset(events)
        self._sources = {
            event: frozenset(s for (e, s) in self._next if e == event) for event in events
        }
        unreachable = set(self.states) - {initial} - {
            d for d in self._next.values() if d is not None
        }
        if unreachable:
            raise CallflowError(f"lifecycle {name}: no move reaches {sorted(unreachable)}")

    def sources(self, event: str) -> frozenset[str]:
        """The states ``event`` may happen from."""
        try:
            return self._sources[event]
        except KeyError:
            raise CallflowError(f"lifecycle {self.name}: no event {event!r}") from None

    def can(self, state: str, event: str) -> bool:
        """Whether ``event`` may happen to a record in ``state``."""
        return (event, state) in self._next

    def after(self, state: str, event: str) -> str | None:
        """The state ``event`` leaves a record in (None when it may not happen from
        ``state``); an internal move leaves it where it is."""
        if (event, state) not in self._next:
            return None
        dest = self._next[(event, state)]
        return state if dest is None else dest

    def is_final(self, state: str) -> bool:
        """Whether nothing more happens to a record in ``state``."""
        return state in self.final

    def mermaid(self) -> str:
        """The lifecycle as a Mermaid state diagram (drawn by transitions' own back end)."""
        model = _Drawing()
        GraphMachine(
            model=model,
            states=list(self.states),
            transitions=[t for t in self._transitions if t["dest"] is not None],
            initial=self.initial,
            auto_transitions=False,
            graph_engine="mermaid",
            title=self.name,
        )
        text: str = model.get_graph().draw(None)  # type: ignore[attr-defined]
        # The drawing model sits in the initial state, which transitions marks "active":
        # a lifecycle's diagram has no current record.
        lines = [
            line.replace(" s_active", " s_default") if line.strip().startswith("Class ") else line
            for line in text.splitlines()
        ]
        return "\n".join(line.rstrip() for line in lines) + "\n"

    def table(self) -> list[dict[str, Any]]:
        """The moves as rows (for docs and tests)."""
        return [
            {"event": m.event, "from": list(m.sources), "to": m.dest or "(stays)"}
            for m in self.moves
        ]
