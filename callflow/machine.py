"""The ``transitions`` machine built from a flow, once per flow version.

The machine holds no model: each webhook triggers an event on a fresh
:class:`~callflow.context.CallContext`, so one machine serves every call on that version
without per-request building. Entering a state runs its ``enter`` actions, then appends
its TwiML to the response.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from transitions import Machine, State, Transition
from transitions.core import Event

from .context import CallContext
from .flowspec import START_EVENT, START_STATE, Flow, FlowState
from .registry import ActionSpec, GuardSpec, Registry
from .twiml import Links, Renderer

# -- transitions, without its per-callback logging
#
# transitions logs at DEBUG and INFO around every callback, condition and state change
# (about 36 calls a Voice URL, each a logger look-up that prints nothing here: its logger
# is at WARNING) and calls its callback loop for every hook list, empty or not. These
# subclasses, through transitions' own extension points (Machine.state_cls,
# transition_cls, event_cls), run the same steps in the same order without the logging:
# two events on a new call go from about 88 to 55 µs.


class _State(State):
    def enter(self, event_data: Any) -> None:
        if self.on_enter:
            event_data.machine.callbacks(self.on_enter, event_data)

    def exit(self, event_data: Any) -> None:
        if self.on_exit:
            event_data.machine.callbacks(self.on_exit, event_data)


class _Transition(Transition):
    def execute(self, event_data: Any) -> bool:
        machine = event_data.machine
        if self.prepare:
            machine.callbacks(self.prepare, event_data)
        for condition in self.conditions:
            if not condition.check(event_data):
                return False
        if machine.before_state_change or self.before:
            machine.callbacks(itertools.chain(machine.before_state_change, self.before), event_data)
        if self.dest:  # None: an internal transition, no change of state
            self._change_state(event_data)
        if self.after or machine.after_state_change:
            machine.callbacks(itertools.chain(self.after, machine.after_state_change), event_data)
        return True


class _Event(Event):
    def _process(self, event_data: Any) -> bool:
        machine = self.machine
        if machine.prepare_event:
            machine.callbacks(machine.prepare_event, event_data)
        for transition in self.transitions[event_data.state.name]:
            event_data.transition = transition
            if transition.execute(event_data):
                event_data.result = True
                break
        return bool(event_data.result)  # transitions' _trigger reads event_data.result


class _Machine(Machine):
    state_cls = _State
    transition_cls = _Transition
    event_cls = _Event

    def callbacks(self, funcs: Iterable[Any], event_data: Any) -> None:
        for func in funcs:
            if isinstance(func, str):  # a name on the model: transitions resolves it
                self.callback(func, event_data)
            else:  # send_event: every callback takes the event
                func(event_data)


class _Entered:
    """The last on_enter callback of a state: note the visit and render its TwiML."""

    def __init__(self, state: FlowState, renderer: Renderer) -> None:
        self.state = state
        self.renderer = renderer

    def __call__(self, event_data: Any) -> None:
        ctx: CallContext = event_data.model
        ctx.entered.append(self.state.name)
        links: Links = event_data.kwargs["links"]
        self.renderer.render(
            self.state, ctx.output, _prompt_values(ctx), links, ctx.session.step + 1
        )


class _Taken:
    """The first ``before`` callback of a transition: note which one the call took.

    Guards have passed by then, so this names exactly the transition of the flow that
    ran (by its place in :meth:`Flow.transitions`); flow tests measure coverage with it.
    """

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, event_data: Any) -> None:
        event_data.model.taken.append(self.index)


def _prompt_values(ctx: CallContext) -> dict[str, str]:
    return {
        "call_sid": ctx.session.call_sid,
        "caller_number": ctx.session.from_number,
        **ctx.session.values,
    }


def _model_call(func: Callable[[CallContext], Any]) -> Callable[[Any], Any]:
    def call(event_data: Any) -> Any:
        return func(event_data.model)

    call.__name__ = getattr(func, "__name__", "callback")
    return call


def _guard_call(spec: GuardSpec) -> Callable[[Any], Any]:
    """A guard for the machine; a world guard's answer goes through the call's context
    (noted for the trace, stood in by a replay)."""
    if not spec.world:
        return _model_call(spec.func)

    def call(event_data: Any) -> Any:
        ctx = event_data.model
        return ctx.world_guard(spec.name, lambda: spec.func(ctx))

    call.__name__ = spec.name
    return call


def _action_call(spec: ActionSpec) -> Callable[[Any], Any]:
    """An action for the machine; a world action's events go through the call's context."""
    if not spec.world:
        return _model_call(spec.func)

    def call(event_data: Any) -> Any:
        ctx = event_data.model
        ctx.world_events(spec.name, lambda: spec.func(ctx))

    call.__name__ = spec.name
    return call


def _start_is_pure(flow: Flow, registry: Registry) -> bool:
    """Whether a call's first webhook can only run pure actions (see Registry.action).

    Follows every state the first webhook may enter: from the initial state, through
    ``next`` and the events its ``enter`` actions raise, with their transitions' actions.
    """
    seen: set[str] = set()
    todo = [flow.initial]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = flow.states[name]
        specs = [registry.actions[a] for a in state.enter]
        if not all(spec.pure for spec in specs):
            return False
        internal = {"next"} | {event for spec in specs for event in spec.raises}
        for event in internal & set(state.events):
            for tr in state.events[event]:
                if not all(registry.actions[a].pure for a in tr.actions):
                    return False
                todo.append(tr.dest)
    return True


class FlowMachine:
    """A flow's state machine, shared by every call pinned to that flow version."""

    def __init__(self, flow: Flow, registry: Registry) -> None:
        self.flow = flow
        self.renderer = Renderer(flow)
        actions = {name: _action_call(spec) for name, spec in registry.actions.items()}
        guards = {name: _guard_call(spec) for name, spec in registry.guards.items()}
        states = [_State(START_STATE)]
        for state in flow.states.values():
            on_enter: list[Any] = [actions[a] for a in state.enter]
            on_enter.append(_Entered(state, self.renderer))
            states.append(_State(state.name, on_enter=on_enter))
        transitions: list[dict[str, Any]] = [
            {"trigger": START_EVENT, "source": START_STATE, "dest": flow.initial}
        ]
        for index, tr in enumerate(flow.numbered):
            transitions.append(
                {
                    "trigger": tr.event,
                    "source": tr.source,
                    "dest": tr.dest,
                    "conditions": [guards[g] for g in tr.if_guards],
                    "unless": [guards[g] for g in tr.unless_guards],
                    "before": [_Taken(index), *(actions[a] for a in tr.actions)],
                }
            )
        self.start_is_pure = _start_is_pure(flow, registry)
        # Where an action reads a secret from the caller's input: a trace hides that input.
        secret = {name for name, spec in registry.actions.items() if spec.secret}
        self.secret_transitions = frozenset(
            i for i, tr in enumerate(flow.numbered) if secret & set(tr.actions)
        )
        self.secret_states = frozenset(
            name for name, state in flow.states.items() if secret & set(state.enter)
        )
        #: States whose gather is marked secret: input given there is hidden whatever
        #: event it fires and wherever it leads.
        self.secret_prompts = frozenset(
            name for name, state in flow.states.items() if state.secret_prompt
        )
        self.machine = _Machine(
            model=None,
            states=states,
            transitions=transitions,
            initial=START_STATE,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=True,
            name=f"{flow.name}@{flow.version}",
        )

    def fire(self, ctx: CallContext, event: str, links: Links) -> bool:
        """Trigger ``event`` on the call; True when a transition was taken."""
        trigger = self.machine.events.get(event)
        if trigger is None:
            return False
        return bool(trigger.trigger(ctx, links=links))

    def render_current(self, ctx: CallContext, links: Links) -> None:
        """Append the current state's TwiML again (the caller hears it once more)."""
        state = self.flow.states.get(ctx.state)
        if state is not None:
            self.renderer.render(
                state, ctx.output, _prompt_values(ctx), links, ctx.session.step + 1
            )

    def has_event(self, state: str, event: str) -> bool:
        """Whether ``state`` handles ``event``."""
        flow_state = self.flow.states.get(state)
        return flow_state is not None and event in flow_state.events
