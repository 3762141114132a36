"""The runtime: one webhook is one atomic read-modify-write of one call session.

For each webhook the engine leases the call (so a retried or racing webhook for the same
CallSid waits rather than runs alongside), reads the session, fires the event on the
machine for the session's pinned flow version, follows events raised by actions and
``next`` transitions, renders TwiML, and saves with compare-and-set, releasing the lease.

Each TwiML answer's URLs name the step they answer. A webhook for a step already handled
(Twilio's retry, a duplicate) gets the TwiML it got the first time, and no action runs
twice. If the store cannot be reached the caller hears an apology and nothing is
decided: a caller is never verified on doubt.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import budget
from .context import CallContext, CallServices
from .errors import CallBusy, FlowError, StoreError
from .flowspec import START_EVENT, START_STATE, WAITING_VERBS, Flow
from .language import resolve
from .library import FlowLibrary
from .metrics import CALLS, STATES, STORE_ERRORS, labelled
from .records import TraceSummary
from .session import CallSession
from .store.base import Lease, TraceStep
from .traces import NAMESPACE as TRACES
from .traces import step_record, summary_of
from .twilio_adapter import FINAL_CALL_STATUSES
from .twiml import (
    CALL_NOT_FOUND,
    POLITE_APOLOGY,
    Links,
    hang_up,
    response_xml,
    say_and_hang_up,
)

log = logging.getLogger(__name__)

MAX_HOPS = 50
#: Twilio CallStatus values that mean the call leg is over.
FINAL_STATUSES = FINAL_CALL_STATUSES


@dataclass(frozen=True)
class Reply:
    """What the engine answers a webhook with, and how it went (for logs and metrics)."""

    twiml: str
    outcome: str
    state: str = ""
    #: This webhook's step of the call's trace (saved with the session).
    trace: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    #: The call's trace summary, when it has just ended (written once, after the save).
    summary: TraceSummary | None = field(default=None, compare=False, repr=False)


class CallEngine:
    """Runs call flows for webhooks."""

    def __init__(self, services: CallServices, library: FlowLibrary) -> None:
        self.services = services
        self.library = library
        self.store = services.store
        self.settings = services.settings
        #: Told of every webhook's run (session and context): flow tests measure coverage.
        self.observers: list[Callable[[CallSession, CallContext], None]] = []
        #: A replay sandbox's only: what the world decided at a call's step in the real
        #: call (world guards and actions answer with it; see callflow.replay).
        self.world_stand_in: Callable[[CallSession], Mapping[str, Any] | None] | None = None

    # -- entry points

    def incoming(
        self,
        call_sid: str,
        flow_name: str,
        params: Mapping[str, str],
        links: Links,
        ref: str | None = None,
        language: str | None = None,
        relay: bool = False,
    ) -> Reply:
        """A new call arrives at the Voice URL (or Twilio retries that request).

        ``ref`` names the record an outbound leg was rung about (a hand-off, say). When the
        flow's first webhook runs only pure actions, the session is created in one round
        trip (no lease): a duplicate request finds it and gets the same answer.
        """
        optimistic = self._guarded(
            call_sid,
            lambda: self._incoming_at_once(
                call_sid, flow_name, params, links, ref, language, relay
            ),
        )
        if optimistic is not None:
            return optimistic
        return self._locked(
            call_sid,
            lambda lease: self._incoming(
                lease, call_sid, flow_name, params, links, ref, language, relay
            ),
        )

    def step(
        self, call_sid: str, step: int, event: str, params: Mapping[str, str], links: Links
    ) -> Reply:
        """A webhook the service's own TwiML asked for: a gather result, a timeout, ..."""
        return self._locked(
            call_sid, lambda lease: self._step(lease, call_sid, step, event, params, links)
        )

    def call_status(self, call_sid: str, status: str, params: Mapping[str, str]) -> Reply:
        """A call status callback; a final status ends the call's session."""
        if status not in FINAL_STATUSES:
            log.info("call %s status %s", call_sid, status)
            return Reply("", "noted")
        reply = self._locked(call_sid, lambda lease: self._ended(lease, call_sid, status, params))
        if reply.summary is not None:
            # What makes the ended call findable by flow, outcome and time (one write, at
            # the end: never on the way through the call).
            self._guarded(call_sid, lambda: self._summarise(call_sid, reply.summary))
        return reply

    def _summarise(self, call_sid: str, summary: TraceSummary | None) -> None:
        if summary is not None:
            ttl = self.settings.trace_retention_days * 86400
            self.store.put_doc(TRACES, call_sid, summary, ttl_seconds=ttl)

    # -- the atomic read-modify-write

    def _locked(
        self, call_sid: str, work: Callable[[Lease], tuple[Reply, CallSession | None, int]]
    ) -> Reply:
        """Lease the call, run ``work``, save what it changed; retry on a lost compare-and-set."""
        reply = self._guarded(call_sid, lambda: self._leased(call_sid, work))
        assert reply is not None
        return reply

    def _leased(
        self, call_sid: str, work: Callable[[Lease], tuple[Reply, CallSession | None, int]]
    ) -> Reply:
        token = uuid.uuid4().hex
        started, operations = time.perf_counter(), budget.operations()
        deadline = time.monotonic() + self.settings.lease_wait_ms / 1000
        delay = 0.005
        while True:
            lease = self.store.lease_session(call_sid, token, self.settings.lease_ms)
            if not lease.held:
                if time.monotonic() >= deadline:
                    raise CallBusy(f"call {call_sid} is busy")
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
                continue
            try:
                reply, changed, expected_rev = work(lease)
            except BaseException:
                self.store.release_session(call_sid, token)
                raise
            if changed is None:
                self.store.release_session(call_sid, token)
                return reply
            ttl = self.settings.session_ttl_seconds
            if changed.ended:
                ttl = self.settings.ended_session_ttl_seconds
            trace = self._trace_step(reply, started, operations)
            if self.store.save_session(changed, expected_rev, token, ttl, trace):
                return reply
            # Someone saved in between (our lease ran out): read again and decide again.
            log.warning("call %s: session changed under us; retrying", call_sid)

    def _trace_step(self, reply: Reply, started: float, operations: int) -> TraceStep | None:
        """The webhook's trace step, with how long it took and its store operations (the
        save included)."""
        if reply.trace is None:
            return None
        step = {
            **reply.trace,
            "ms": round((time.perf_counter() - started) * 1000, 2),
            "store_ops": budget.operations() - operations + 1,
        }
        return TraceStep(step, self.settings.trace_retention_days * 86400)

    def _guarded(self, call_sid: str, work: Callable[[], Reply | None]) -> Reply | None:
        """Run a webhook's work; any failure becomes a polite apology, nothing decided."""
        try:
            return work()
        except CallBusy:
            log.error(
                "call %s: still busy after %sms; apologising", call_sid, self.settings.lease_wait_ms
            )
            return Reply(say_and_hang_up(POLITE_APOLOGY), "busy")
        except StoreError as exc:
            STORE_ERRORS.inc()
            log.error("call %s: store failed (%s); apologising, nothing decided", call_sid, exc)
            return Reply(say_and_hang_up(POLITE_APOLOGY), "store_unavailable")
        except FlowError as exc:
            log.error("call %s: flow unavailable (%s); apologising", call_sid, exc)
            return Reply(say_and_hang_up(POLITE_APOLOGY), "flow_unavailable")
        except Exception:
            log.exception("call %s: webhook failed; apologising, nothing saved", call_sid)
            return Reply(say_and_hang_up(POLITE_APOLOGY), "error")

    # -- the work

    def _incoming_at_once(
        self,
        call_sid: str,
        flow_name: str,
        params: Mapping[str, str],
        links: Links,
        ref: str | None,
        language: str | None = None,
        relay: bool = False,
    ) -> Reply | None:
        """A new call on a flow whose first webhook is pure: run it, then create in one step.

        None when the flow's start is not pure, or another webhook holds the call: the
        caller then takes the leased path.
        """
        started, operations = time.perf_counter(), budget.operations()
        flow = self.library.live(flow_name)
        if not self.library.machine(flow).start_is_pure:
            return None
        session = self._new_session(call_sid, flow, params, ref, language, relay)
        reply = self._run(session, START_EVENT, params, links)
        created = self.store.create_session(
            session,
            self.settings.session_ttl_seconds,
            self._trace_step(reply, started, operations),
        )
        if created.outcome == "created":
            labelled(CALLS, flow.name).inc()
            return reply
        if created.outcome == "exists" and created.session is not None:
            log.info("call %s: Voice URL requested again; same answer", call_sid)
            return self._repeat(created.session, 0)
        return None

    def _new_session(
        self,
        call_sid: str,
        flow: Flow,
        params: Mapping[str, str],
        ref: str | None,
        language: str | None = None,
        relay: bool = False,
    ) -> CallSession:
        session = CallSession(
            call_sid=call_sid,
            flow=flow.name,
            flow_version=flow.version,
            state=START_STATE,
            started_at=self.services.clock.now(),
            from_number=params.get("From", "")[:32],
            to_number=params.get("To", "")[:32],
        )
        if ref:
            session.data["ref"] = ref
        if len(flow.languages) > 1:
            session.values["language"] = resolve(language, flow.languages) or (
                flow.default_language
            )
        if flow.routing:
            session.data["routing"] = dict(flow.routing)
        settings = self.settings
        if relay or (session.from_number and session.from_number in settings.relay_numbers):
            # Relay UK: a relay assistant reads the prompts and types for the caller. Every
            # gather waits longer; silences do not use up the call's tries (count_silence).
            session.data["relay"] = True
            session.values["relay"] = "yes"
            session.values["timeout_factor"] = str(max(settings.relay_timeout_factor, 1))
        return session

    def _incoming(
        self,
        lease: Lease,
        call_sid: str,
        flow_name: str,
        params: Mapping[str, str],
        links: Links,
        ref: str | None,
        language: str | None = None,
        relay: bool = False,
    ) -> tuple[Reply, CallSession | None, int]:
        existing = lease.session
        if existing is not None:
            log.info("call %s: Voice URL requested again; same answer", call_sid)
            return self._repeat(existing, 0), None, 0
        flow = self.library.live(flow_name)
        session = self._new_session(call_sid, flow, params, ref, language, relay)
        labelled(CALLS, flow.name).inc()
        reply = self._run(session, START_EVENT, params, links)
        return reply, session, 0

    def _step(
        self,
        lease: Lease,
        call_sid: str,
        step: int,
        event: str,
        params: Mapping[str, str],
        links: Links,
    ) -> tuple[Reply, CallSession | None, int]:
        session = lease.session
        if session is None:
            log.warning("call %s: webhook for a call we do not know (step %s)", call_sid, step)
            return Reply(say_and_hang_up(CALL_NOT_FOUND), "unknown_call"), None, 0
        if session.ended:
            log.info("call %s: webhook after the call ended", call_sid)
            return Reply(hang_up(), "ended", session.state), None, 0
        if step != session.step:
            log.info(
                "call %s: webhook for step %s, call is at step %s; same answer",
                call_sid,
                step,
                session.step,
            )
            return self._repeat(session, step), None, 0
        expected = session.rev
        return self._run(session, event, params, links), session, expected

    def _ended(
        self, lease: Lease, call_sid: str, status: str, params: Mapping[str, str]
    ) -> tuple[Reply, CallSession | None, int]:
        session = lease.session
        if session is None:
            log.info("call %s: status %s for a call we do not know", call_sid, status)
            return Reply("", "unknown_call"), None, 0
        if session.ended:
            return Reply("", "repeat", session.state), None, 0
        expected = session.rev
        flow = self.library.version(session.flow_version)
        machine = self.library.machine(flow)
        if machine.has_event(session.state, "hangup"):
            ctx = CallContext(session, params, self.services, [])
            machine.fire(ctx, "hangup", _NoLinks())
            session.state = ctx.state
            for observe in self.observers:
                observe(session, ctx)
        session.status = "ended"
        session.ended_at = self.services.clock.now()
        session.end_reason = status
        log.info("call %s: ended (%s) in state %s", call_sid, status, session.state)
        steps = session.step + 1
        end = {"at": session.ended_at, "end": status, "state": session.state}
        summary = summary_of(session, status, steps)
        return Reply("", "ended", session.state, end, summary), session, expected

    def _repeat(self, session: CallSession, step: int) -> Reply:
        twiml = session.replies.get(str(step))
        if twiml is None and session.replies:
            twiml = session.replies[max(session.replies, key=int)]
        return Reply(twiml or hang_up(), "repeat", session.state)

    def _run(
        self, session: CallSession, event: str, params: Mapping[str, str], links: Links
    ) -> Reply:
        """Fire ``event`` and whatever follows from it; record the reply on the session."""
        flow = self.library.version(session.flow_version)
        machine = self.library.machine(flow)
        at, before = self.services.clock.now(), session.state
        ctx = CallContext(session, params, self.services, [])
        ctx.links = links
        if self.world_stand_in is not None:  # a replay: the real call's world
            ctx.stand_in = self.world_stand_in(session)
        taken = machine.fire(ctx, event, links)
        if not taken:
            log.warning(
                "call %s: event %s does nothing in state %s; repeating it",
                session.call_sid,
                event,
                ctx.state,
            )
            machine.render_current(ctx, links)
        hops = 0
        while True:
            if ctx.raised:
                next_event = ctx.raised.pop(0)
            elif taken and machine.has_event(ctx.state, "next"):
                next_event = "next"
            else:
                break
            hops += 1
            if hops > MAX_HOPS:
                raise FlowError(
                    f"flow {flow.name} went round more than {MAX_HOPS} states in one webhook"
                )
            taken = machine.fire(ctx, next_event, links)
            if not taken:
                log.error(
                    "call %s: event %s raised in state %s has no transition",
                    session.call_sid,
                    next_event,
                    ctx.state,
                )
                raise FlowError(f"no transition for {next_event} in {ctx.state}")
        session.state = ctx.state
        for entered in ctx.entered:
            labelled(STATES, flow.name, entered).inc()
        for observe in self.observers:
            observe(session, ctx)
        final = flow.states[ctx.state]
        if not final.verbs or final.verbs[-1].kind not in WAITING_VERBS:
            log.warning(
                "call %s: state %s leaves Twilio nothing to wait on; the call will end",
                session.call_sid,
                ctx.state,
            )
        twiml = response_xml(ctx.output)
        trace = step_record(
            ctx,
            machine,
            event=event,
            before=before,
            at=at,
            params=params,
            twiml=twiml,
        )
        if event == START_EVENT:
            trace.update(
                flow=flow.name,
                version=flow.version,
                started_at=session.started_at,
                language=session.values.get("language", ""),
                relay=bool(session.data.get("relay")),
                direction=(params.get("Direction") or "inbound")[:20],
            )
        session.remember_reply(session.step, twiml)
        session.step += 1
        log.info(
            "call %s: %s%s -> %s (step %s)",
            session.call_sid,
            f"new call on flow {flow.name}@{flow.version}: " if event == START_EVENT else "",
            event,
            " -> ".join(ctx.entered) or ctx.state,
            session.step,
        )
        return Reply(twiml, "ok", ctx.state, trace)


class _NoLinks:
    """Links for a call that has ended: nothing it renders is ever sent."""

    def step(self, step: int, event: str | None = None) -> str:
        return "/voice/ended"

    def conference_events(self) -> str:
        return "/voice/ended"

    def leg_status(self, role: str, call_sid: str) -> str:
        return "/voice/ended"

    def hold(self, call_sid: str) -> str:
        return "/voice/ended"

    def incoming(self, flow: str, ref: str, language: str | None = None) -> str:
        return "/voice/ended"
