"""The registry of named guards and actions that flows refer to.

A flow names guards (``if``/``unless`` on a transition) and actions (``enter`` on a
state, ``actions`` on a transition); the Python behind each name lives here. An action
declares the events it may raise and the prompt values it provides, so a flow can be
checked on load: every raised event handled, every ``{value}`` in a prompt known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import CallContext

GuardFunc = Callable[["CallContext"], bool]
ActionFunc = Callable[["CallContext"], None]

#: Values every flow may use in prompts, whatever actions it runs.
BUILTIN_VALUES = frozenset({"call_sid", "caller_number"})


@dataclass(frozen=True)
class GuardSpec:
    """A named condition on a transition."""

    name: str
    func: GuardFunc
    doc: str
    #: Decided by the world the call met (the queue, the calendars, the store), not by the
    #: caller: its answer goes in the call's trace, and a replay of the call gets the same.
    world: bool = False


@dataclass(frozen=True)
class ActionSpec:
    """A named step run on entering a state or while taking a transition."""

    name: str
    func: ActionFunc
    doc: str
    raises: frozenset[str]
    provides: frozenset[str]
    #: Changes nothing outside the call's own session (it may read): safe to run twice.
    pure: bool = False
    #: Reads a secret from the webhook's input (a PIN, an answer, a date of birth, a SEES
    #: ID): a trace shows that input as hidden, and keeps what the action decided instead.
    secret: bool = False
    #: Puts the caller through to staff (an agent, a specialist) or owes them a call from
    #: staff: a flow that runs it is protected (a second person approves its changes).
    connects: bool = False
    #: The events it raises are decided by the world the call met (as for a guard): they
    #: go in the trace, and a replay of the call raises the same.
    world: bool = False


class Registry:
    """Guards and actions by name."""

    def __init__(self) -> None:
        self.guards: dict[str, GuardSpec] = {}
        self.actions: dict[str, ActionSpec] = {}

    def guard(
        self, name: str | None = None, *, world: bool = False
    ) -> Callable[[GuardFunc], GuardFunc]:
        """Register a guard under ``name`` (default: the function's name). ``world``: its
        answer comes from the world the call met, not the caller (see GuardSpec)."""

        def register(func: GuardFunc) -> GuardFunc:
            key = name or func.__name__
            if key in self.guards:
                raise ValueError(f"guard {key!r} is registered twice")
            self.guards[key] = GuardSpec(key, func, _first_line(func.__doc__), world)
            return func

        return register

    def action(
        self,
        name: str | None = None,
        *,
        raises: Iterable[str] = (),
        provides: Iterable[str] = (),
        pure: bool = False,
        secret: bool = False,
        connects: bool = False,
        world: bool = False,
    ) -> Callable[[ActionFunc], ActionFunc]:
        """Register an action, with the events it may raise and the values it provides.

        ``pure``: the action changes nothing outside the call's session (reads are fine),
        so running it for a duplicate webhook does no harm. ``secret``: it reads a secret
        from the webhook's input, which a call's trace then never shows. ``connects``: it
        puts the caller through to staff or books them a call from staff. ``world``: the
        events it raises are the world's answer, not the caller's (see ActionSpec).
        """

        def register(func: ActionFunc) -> ActionFunc:
            key = name or func.__name__
            if key in self.actions:
                raise ValueError(f"action {key!r} is registered twice")
            self.actions[key] = ActionSpec(
                key,
                func,
                _first_line(func.__doc__),
                frozenset(raises),
                frozenset(provides),
                pure,
                secret,
                connects,
                world,
            )
            return func

        return register

    def known_values(self) -> frozenset[str]:
        """Every prompt value some action can provide, plus the built-in ones."""
        provided: set[str] = set(BUILTIN_VALUES)
        for spec in self.actions.values():
            provided |= spec.provides
        return frozenset(provided)


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""


REGISTRY = Registry()


def default_registry() -> Registry:
    """The registry the built-in guards and actions register in as ``callflow.actions`` is
    imported (every entry point imports it: :func:`callflow.actions.builtin_registry`).
    Lower layers that are not handed a registry use this one; it is never filled from
    here, so nothing below the actions imports them."""
    if not REGISTRY.actions:
        raise RuntimeError(
            "no actions are registered: import callflow.actions (or pass a registry)"
        )
    return REGISTRY
