"""VSTRS calls after verification: the caller waits in a conference of their own while the
service rings the longest-idle available VSTRS agent, who joins it.

The record of each call (``vstrs_calls/<CallSid>``) holds the verified identity, the agent
being rung and the agent connected (with their SEES ID), what happened, the agent's draft
of the hand-off form and the call's outcome. Its states and the events that move it are
declared once (``CALL``); every change is an atomic update asked of that table, so
Twilio's callbacks may arrive twice or in any order. Other parts move a call only through
the named methods here (``begin_handoff``, ``handoff_failed``, ``handed_off``).

Who is offered which caller is the fair queue's (callflow.queue): one queue across
languages, live callers and call-backs together, by when each first rang. When an agent's
part in a call ends (the caller hangs up, they hand over, they leave), they go into
after-call work for ``CALLFLOW_WRAP_UP`` seconds (callflow.presence) and the call's
outcome is recorded (the service's guess at once; the agent's word when they give it).

Ticks come from Twilio itself: while the caller waits, the conference fetches its wait
URL again and again, and each fetch lets the service ring the next agent or, after the
configured wait, end the call politely with a callback note.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from twilio.twiml.voice_response import VoiceResponse

from .access import Viewer, was_on_call
from .callbacks import Callbacks
from .context import Services, ServiceUser
from .errors import CallflowError, DirectoryError, FieldErrors, Forbidden
from .language import DEFAULT as DEFAULT_LANGUAGE
from .language import VOICES, message
from .lifecycle import Lifecycle
from .queue import Waiting, assign
from .records import Callback, CallRecord
from .store.base import Changed
from .twilio_adapter import FINAL_CALL_STATUSES
from .twiml import Links

log = logging.getLogger(__name__)

__all__ = ["CALL", "DRAFT_FIELDS", "OUTCOMES", "VstrsCalls"]

NAMESPACE = "vstrs_calls"
RECORD_TTL = 30 * 24 * 3600

CALL = Lifecycle(
    "verified call",
    states=(
        "waiting",
        "with_agent",
        "transferring",
        "handed_off",
        "agent_left",
        "no_agent",
        "ended",
    ),
    initial="waiting",
    moves=(
        ("connect", "waiting", "with_agent"),
        ("no_agent", "waiting", "no_agent"),
        ("begin_handoff", "with_agent", "transferring"),
        # A hand-off that did not happen: the caller back with the agent, or, the agent
        # gone meanwhile, alone.
        ("back_to_agent", "transferring", "with_agent"),
        ("handoff_failed_alone", "transferring", "agent_left"),
        ("hand_over", "transferring", "handed_off"),
        # The agent's leg left: on a call still theirs, the caller is alone; otherwise
        # (handed off, mid-hand-off, over) only their leaving is noted.
        ("agent_leaves", "with_agent", "agent_left"),
        ("agent_leaves", ("transferring", "handed_off", "ended"), None),
        (
            "end",
            ("waiting", "with_agent", "transferring", "handed_off", "agent_left", "no_agent"),
            "ended",
        ),
    ),
    final=("ended",),
)

#: What an agent may record as a call's outcome in their after-call work.
OUTCOMES = {
    "resolved": "Resolved by VSTRS",
    "handed_off": "Handed off to a specialist team",
    "caller_hung_up": "Caller hung up",
    "callback_arranged": "Call-back arranged",
    "other": "Other",
}
#: The hand-off form's fields, kept as the agent's draft on the call.
DRAFT_FIELDS = (
    "team",
    "customer_name",
    "reference",
    "issue",
    "need",
    "need_detail",
    "auth_type",
    "auth_day",
    "auth_month",
    "auth_year",
    "auth_reference",
    "urgent",
    "turnaround",
)
DRAFT_LIMITS = {"issue": 2000, "turnaround": 200, "customer_name": 100, "need_detail": 300}


#: How long a claim to ring an agent for a call lasts when nothing lets it go (a worker that
#: died mid-ring): the REST request itself gives up well before (service.TWILIO_TIMEOUT).
STALE_RING_CLAIM_SECONDS = 30


def _ring_key(call_sid: str) -> str:
    """The claim on ringing an agent for this call."""
    return f"ring:{call_sid}"


def conference_name(call_sid: str) -> str:
    """The caller's own conference."""
    return f"vstrs-{call_sid}"


def caller_of(conference: str) -> str | None:
    """The caller's CallSid from their conference's name."""
    return conference.removeprefix("vstrs-") if conference.startswith("vstrs-CA") else None


def call_index(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """A verified call's index entries: by each agent who took it (recent first), and its
    place in the queue while it waits with no agent being rung (by when the caller first
    rang, per language: see callflow.queue)."""
    entries = [(f"agent:{sees_id}", doc["waiting_since"]) for sees_id in set(doc["agents"])]
    if doc["state"] == "waiting":
        language = doc.get("language") or DEFAULT_LANGUAGE
        # Every caller waiting for an agent (being rung or not), for the floor's view.
        entries.append((f"waiting:{language}", float(doc["waiting_since"])))
        if doc["ringing"] is None:
            arrived = float(doc.get("arrived_at") or doc["waiting_since"])
            entries.append((f"queue:{language}", arrived))
    return entries


@dataclass(frozen=True)
class AgentLeft:
    """An agent left a call: the hand-off under way then, if any, and whether the caller
    had already gone (then the caller's end settles the hand-off)."""

    active_handoff: str | None
    caller_gone: bool
    #: The call's record just after the agent left (what lets a lone caller go reads).
    record: Mapping[str, Any]


class VstrsCalls(ServiceUser):
    """Caller to agent, driven by the flow, Twilio's callbacks and the hold ticks."""

    def __init__(self, services: Services, callbacks: Callbacks) -> None:
        super().__init__(services)
        #: Call-backs hold places in the queue beside live callers, and are owed when
        #: nobody answers (built before this: they never read the calls).
        self.callbacks = callbacks
        self.store.define_index(NAMESPACE, call_index, keep_seconds=RECORD_TTL)

    def get(self, call_sid: str) -> CallRecord | None:
        """A call's record."""
        return cast("CallRecord | None", self.store.get_doc(NAMESPACE, call_sid))

    def _update(self, call_sid: str, change: Any) -> CallRecord | None:
        return cast(
            "CallRecord | None",
            self.store.update_doc(NAMESPACE, call_sid, change, ttl_seconds=RECORD_TTL),
        )

    def _change(self, call_sid: str, change: Any) -> Changed:
        return self.store.change_doc(NAMESPACE, call_sid, change, ttl_seconds=RECORD_TTL)

    def _move(
        self,
        call_sid: str,
        event: str,
        *,
        check: Callable[[dict[str, Any]], bool] | None = None,
        change: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        **fields: Any,
    ) -> Changed:
        """Move a call's record by ``event`` if its lifecycle (``CALL``) allows that from
        the state it is in and ``check`` agrees, setting ``fields`` (and what ``change``
        makes of it): one atomic change."""

        def move(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if d is None:
                return None
            state = CALL.after(d["state"], event)
            if state is None or (check is not None and not check(d)):
                return None
            new = {**d, **fields, "state": state}
            return change(new) if change is not None else new

        return self._change(call_sid, move)

    @property
    def wrap_up(self) -> float:
        """An agent's after-call work (CALLFLOW_WRAP_UP)."""
        return float(self.settings.agent_wrap_up_seconds)

    def recent_for_agent(
        self, sees_id: str, offset: int = 0, count: int = 10
    ) -> list[dict[str, Any]]:
        """The calls an agent took, newest first, a page at a time."""
        return self.store.indexed(
            NAMESPACE, f"agent:{sees_id}", newest_first=True, offset=offset, count=count
        )

    # ------------------------------------------------------------ the queue

    def waiting(
        self,
        heads: int,
        also: CallRecord | None = None,
        free: list[Any] | None = None,
    ) -> list[Waiting]:
        """The heads of the queue in every language: the first ``heads`` live callers
        waiting with no agent being rung for them, and (while call-backs are being
        placed) the first ``heads`` call-backs holding their place; ``also``, a call's
        record, is always among them while it waits. ``free``: the agents free now (a
        call-back's language rule depends on them)."""
        callbacks = self.callbacks
        placing = callbacks.placing_now()
        found: dict[str, Waiting] = {}
        for language in VOICES:
            queued = self.store.indexed(NAMESPACE, f"queue:{language}", count=heads)
            for doc in cast("list[CallRecord]", queued):
                found[doc["call_sid"]] = self._waiting_call(doc, free)
            if placing:
                for cb in self.store.indexed(*callbacks.holding_index(language), count=heads):
                    found[cb["id"]] = callbacks.waiting_entry(cb, free)
        if also is not None and also["state"] == "waiting" and also["ringing"] is None:
            found[also["call_sid"]] = self._waiting_call(also, free)
        return list(found.values())

    def _waiting_call(self, doc: CallRecord, free: list[Any] | None) -> Waiting:
        """A live caller as the fair queue sees them: any agent may take them once their
        flow has fallen back to English, or would now (their language's wait is over with
        no speaker free and the flow's rule is English), whichever caller's tick asks."""
        language = doc.get("language") or DEFAULT_LANGUAGE
        routing = doc.get("routing") or {}
        falls_back = doc.get("language_fallback") == "english" or (
            language != DEFAULT_LANGUAGE
            and str(routing.get("then", "english")) == "english"
            and self.now() - doc["waiting_since"] >= float(routing.get("language_wait", 60))
            and free is not None
            and not any(agent.speaks(language) for agent in free)
        )
        return Waiting(
            key=doc["call_sid"],
            kind="call",
            language=language,
            arrived_at=float(doc.get("arrived_at") or doc["waiting_since"]),
            any_agent=falls_back,
            tried=frozenset(doc.get("tried", [])),
        )

    def would_wait(self, call_sid: str, language: str, arrived_at: float) -> bool:
        """Whether a caller about to join the queue would wait: no free agent would be
        offered to them, given the callers who rang before them (the fair queue)."""
        free = self.staff.idle_agents(self.now())
        if not free:
            return True
        waiting = self.waiting(len(free), free=free)
        waiting.append(Waiting(call_sid, "call", language or DEFAULT_LANGUAGE, arrived_at))
        return call_sid not in assign(free, waiting)

    # ------------------------------------------------------------ the caller arrives

    def start(
        self,
        call_sid: str,
        verified: dict[str, Any],
        caller_number: str,
        links: Links,
        language: str = DEFAULT_LANGUAGE,
        relay: bool = False,
        routing: dict[str, Any] | None = None,
        arrived_at: float | None = None,
        callback_id: str | None = None,
    ) -> str:
        """A verified caller is about to wait: open their record (agents are rung on join).

        The record keeps the call's language: what the service says to the caller from now
        on, and every hand-off and grant of the call, carry it. ``arrived_at``: when the
        caller first rang (their place in the queue); for a call-back's call
        (``callback_id``), when they first rang before it."""
        now = self.now()

        def create(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is not None:
                return None  # a repeated webhook: the call is already under way
            return {
                "call_sid": call_sid,
                "conference": conference_name(call_sid),
                "conference_sid": None,
                "verified": verified,
                "caller_number": caller_number,
                "language": language,
                # Relay UK: a relay assistant is on the line (the agent and, after a
                # hand-off, the specialist are told: a third party hears what is said).
                "relay": relay,
                # The flow's rule for a language no free agent speaks (see _language_rule).
                "routing": dict(routing or {}),
                "state": "waiting",
                "waiting_since": now,
                "arrived_at": arrived_at if arrived_at is not None else now,
                "callback_id": callback_id,
                "ringing": None,
                "tried": [],
                "agent": None,
                "agents": [],
                "handoffs": [],
                "ended_at": None,
                "end_reason": None,
            }

        # Agents are rung once the caller is in their conference (its participant-join).
        self._update(call_sid, create)
        return conference_name(call_sid)

    # ------------------------------------------------------------ ringing agents

    def ring_next(self, call_sid: str, links: Links, doc: CallRecord | None = None) -> bool:
        """Ring the free agent the fair queue offers this caller, if any (callflow.queue).

        Twilio asks for this from two places at about the same moment (the caller's
        participant-join callback and the conference's wait URL), as separate requests that
        any worker may serve. So the right to ring is claimed first, for the call, in one
        atomic step (``ring:<CallSid>``, one round trip); only its holder makes the REST
        request, notes the leg on the call's record (only if no ring is noted there), and
        holds the claim until that ring ends. A second path finds the claim held and does
        nothing. One agent per call, whatever the order. ``doc``: the record, when the
        caller has just read it.
        """
        doc = doc if doc is not None else self.get(call_sid)
        if doc is None or doc["state"] != "waiting" or doc["ringing"] is not None:
            return False
        free = self.staff.idle_agents(self.now())
        if not free:  # nobody to ring: no claim to take (the next tick looks again)
            log.info("call %s: no VSTRS agent free to ring", call_sid)
            return False
        doc = self._language_rule(call_sid, doc, free)
        if doc is None:
            return False
        matched = assign(free, self.waiting(len(free), also=doc, free=free))
        agent = matched.get(call_sid)
        if agent is None:
            log.info("call %s: earlier callers first for the %d free agents", call_sid, len(free))
            return False
        token = secrets.token_hex(8)
        if not self.store.claim(_ring_key(call_sid), token, STALE_RING_CLAIM_SECONDS):
            return False
        ring_for = self.settings.agent_ring_seconds
        if not self.staff.offer_agent(agent.sees_id, call_sid, ring_for + 60, self.now()):
            # Taken (or gone away) between the look and the claim: the next tick looks again.
            self.store.release(_ring_key(call_sid), token)
            log.info("call %s: agent %s no longer free", call_sid, agent.sees_id)
            return False
        try:
            leg = self.services.twilio().add_participant(
                conference_name(call_sid),
                to=agent.reach,  # type: ignore[attr-defined]
                from_=self.settings.vstrs_number,
                label="agent",
                status_callback=links.leg_status("agent", call_sid),
                conference_status_callback=links.conference_events(),
                start_conference_on_enter=True,
                end_conference_on_exit=False,
                timeout=ring_for,
            )
        except CallflowError as exc:
            self.staff.ring_over(agent.sees_id, call_sid, self.now())
            self.store.release(_ring_key(call_sid), token)
            log.error("call %s: could not ring agent %s: %s", call_sid, agent.sees_id, exc)
            return False
        return self._rang(call_sid, token, agent.sees_id, agent.name, leg)  # type: ignore[attr-defined]

    def set_agent_availability(
        self, sees_id: str, status: str, links: Links, reason: str | None = None
    ) -> dict[str, Any]:
        """An agent says Available, Away (with a reason) or Ready (their after-call work is
        over): their working state, and, when that leaves them free, the caller the fair
        queue gives them rung at once (``offer_free_agents``). The answer is their state
        as it then stands (Ringing when they were rung). Raises DirectoryError for a status
        that is none of these."""
        now = self.now()
        if status == "ready":
            presence = self.staff.ready(sees_id, now)
        else:
            presence = self.staff.set_availability(sees_id, status, now, reason)
        if presence.get("state") == "available" and self.offer_free_agents(links):
            presence = self.staff.availability(sees_id, self.now())
        return presence

    def offer_free_agents(self, links: Links) -> list[str]:
        """An agent has just become free (Available, Ready after after-call work, or a
        worker's pass): ring them for the caller the fair queue offers them now, instead of
        leaving them idle until that caller's hold loop next asks (up to its pause, 15 s,
        and the holding message). Each ring is claimed as ``ring_next`` claims it, so a hold
        tick asking at the same moment rings nobody twice. A caller not yet in their
        conference is left to its join (which rings for them). Call-backs whose turn it is
        are the call-back worker's to place. Returns the CallSids rung. It never raises:
        what made the agent free has happened whatever becomes of the offer, and a caller
        not rung now is looked at again by their next hold tick."""
        rung: list[str] = []
        try:
            free = self.staff.idle_agents(self.now())
            if not free:
                return rung
            waiting = self.waiting(len(free), free=free)
            callers = {w.key for w in waiting if w.kind == "call"}
            matched = sorted(k for k in assign(free, waiting) if k in callers)
        except CallflowError as exc:
            log.warning("free agents not offered now: %s", exc)
            return rung
        for key in matched:
            try:
                doc = self.get(key)
                if doc is None or not doc.get("conference_sid"):
                    continue  # not in their conference yet: its join rings for them
                if self.ring_next(key, links, doc):
                    rung.append(key)
            except CallflowError as exc:
                log.warning("call %s: not offered to a free agent now: %s", key, exc)
        return rung

    def _language_rule(
        self, call_sid: str, doc: CallRecord, free: list[Any]
    ) -> CallRecord | None:
        """Routing by skill: a call in a language beyond English is offered to agents who
        speak it. When none is free within the flow's ``routing.language_wait``, the
        flow's ``routing.then`` decides: ``english`` (any agent may take it from now on),
        ``wait`` (keep waiting for a speaker), or ``callback`` (note a call-back and end
        politely). What happened is audited. Returns the record to queue with, or None
        when the call is not to be offered now."""
        language = doc.get("language") or DEFAULT_LANGUAGE
        if language == DEFAULT_LANGUAGE or doc.get("language_fallback") == "english":
            return doc
        if any(agent.speaks(language) for agent in free):
            return doc
        routing = doc.get("routing") or {}
        if self.now() - doc["waiting_since"] < float(routing.get("language_wait", 60)):
            log.info("call %s: no %s-speaking agent free yet", call_sid, language)
            return None
        then = str(routing.get("then", "english"))
        if then == "wait":
            return None
        marked = self._change(
            call_sid,
            lambda d: (
                {**d, "language_fallback": then}
                if d and d["state"] == "waiting" and not d.get("language_fallback")
                else None
            ),
        )
        if marked.written:
            self._audit("agent.language_fallback", call_sid, language=language, outcome=then)
        if then == "callback":
            self.no_agent(call_sid)
            return None
        return cast("CallRecord | None", marked.after or marked.before)

    def _rang(self, call_sid: str, token: str, sees_id: str, name: str, leg: str) -> bool:
        """The agent's phone is ringing: note the leg on the record (or let it go)."""
        ringing = {
            "sees_id": sees_id,
            "name": name,
            "call_sid": leg,
            "since": self.now(),
            "claim": token,
        }

        def note(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if d is None or d["state"] != "waiting" or d["ringing"] is not None:
                return None
            return {
                **d,
                "ringing": ringing,
                "tried": [*d["tried"], sees_id],
                "rung": {**d.get("rung", {}), leg: sees_id},
                "early_joins": [j for j in d.get("early_joins", []) if j != leg],
            }

        noted = self._change(call_sid, note)
        if noted.before is None or not noted.written:
            # The call moved on while the phone started ringing (the caller hung up, the
            # wait ran out, a ring claimed after ours expired was noted first): this leg
            # must not reach the caller.
            log.info("call %s: agent %s rung after the call moved on: hung up", call_sid, sees_id)
            self.store.release(_ring_key(call_sid), token)
            self.staff.ring_over(sees_id, call_sid, self.now())
            try:
                self.services.twilio().hang_up(leg)
            except CallflowError as exc:
                log.info("call %s: agent leg %s already gone: %s", call_sid, leg, exc)
            return False
        self._audit("agent.ringing", call_sid, agent=sees_id, outcome="ringing")
        if leg in noted.before.get("early_joins", []):  # the join beat the record of the ring
            self.agent_joined(call_sid, leg, noted.before.get("conference_sid") or "")
        return True

    def _ring_over(self, call_sid: str, ringing: dict[str, Any] | None) -> None:
        """A ring ended unanswered: its claim goes, so the next agent can be rung. (Once a
        call has an agent, or is over, nothing rings it again: the claim lapses by itself.)"""
        if ringing and ringing.get("claim"):
            self.store.release(_ring_key(call_sid), ringing["claim"])

    def hold_tick(self, call_sid: str, links: Links) -> str:
        """The caller's conference asks for its wait TwiML: ring on, or end politely."""
        doc = self.get(call_sid)
        response = VoiceResponse()
        if doc is not None and doc["state"] == "waiting":
            if self.now() - doc["waiting_since"] >= self.settings.agent_wait_seconds:
                self.no_agent(call_sid)
            elif doc["ringing"] is None:
                self.ring_next(call_sid, links, doc)
        text, voice = message("holding", doc["language"] if doc else None)
        response.say(text, **voice)
        response.pause(length=15)
        return str(response)

    def no_agent(self, call_sid: str) -> None:
        """Nobody answered in time: tell the caller, owe them a call-back, end the call.

        The call-back keeps their place (when they first rang) and is made to their
        registered number. On a call-back's own call, this try failed: the call-back is
        tried again later (or dropped when its tries are used up)."""
        changed = self._move(call_sid, "no_agent", end_reason="no_agent")
        ended = changed.after
        if not changed.written or ended is None:
            return  # not waiting (any more): another path got here first
        verified = ended["verified"]
        callbacks = self.callbacks
        noted: Callback | None = None
        if ended.get("callback_id"):
            noted = callbacks.no_agent(ended["callback_id"], call_sid)
            if noted is not None and noted["status"] != "retry_wait":
                noted = None  # its tries are used up: the caller is not promised another
        else:
            noted = callbacks.note(
                call_sid,
                verified,
                arrived_at=float(ended.get("arrived_at") or ended["waiting_since"]),
                language=ended.get("language") or DEFAULT_LANGUAGE,
                relay=bool(ended.get("relay")),
                routing=ended.get("routing"),
                reason="no_agent",
            )
        self._update(call_sid, lambda d: {**d, "callback_noted": noted is not None} if d else None)
        self._audit(
            "agent.none_available",
            call_sid,
            adviser=verified["adviser_number"],
            outcome="callback_noted" if noted is not None else "no_callback",
        )
        ringing = ended.get("ringing")
        twilio = self.services.twilio()
        try:
            if ringing:
                twilio.hang_up(ringing["call_sid"])
            response = VoiceResponse()
            said = "no_agent" if noted is not None else "no_agent_call_again"
            text, voice = message(said, ended.get("language"))
            response.say(text, **voice)
            response.hangup()
            twilio.play(call_sid, str(response))
        except CallflowError as exc:
            log.error("call %s: could not end politely: %s", call_sid, exc)

    # ------------------------------------------------------------ Twilio's callbacks

    def agent_leg_status(
        self, call_sid: str, leg_sid: str, status: str, links: Links
    ) -> AgentLeft | None:
        """A status callback for an agent's leg on ``call_sid``: not answered (the next
        agent is rung), or over (the agent left: what it means for a hand-off is the
        caller of this method's to settle, from what it returns)."""
        if status not in FINAL_CALL_STATUSES:
            return None
        doc = self.get(call_sid)
        if doc is None:
            return None
        ringing, agent = doc.get("ringing"), doc.get("agent")
        if ringing and ringing["call_sid"] == leg_sid:
            self._update(
                call_sid,
                lambda d: (
                    {**d, "ringing": None}
                    if d and d["ringing"] and d["ringing"]["call_sid"] == leg_sid
                    else None
                ),
            )
            self._ring_over(call_sid, ringing)
            self.staff.ring_over(ringing["sees_id"], call_sid, self.now())
            self._audit("agent.no_answer", call_sid, agent=ringing["sees_id"], outcome=status)
            self.ring_next(call_sid, links)
        elif agent and agent["call_sid"] == leg_sid and agent.get("left_at") is None:
            return self.agent_left(call_sid, leg_sid)
        return None

    def agent_joined(self, call_sid: str, leg_sid: str, conference_sid: str) -> None:
        """An agent's leg joined the caller's conference: record their SEES ID on the call.

        Only the leg this call claimed and rang may stay. Any other agent leg (one nobody
        claimed this call for) is taken out of the call at once, before it hears anything
        more than the hold, and audited.
        """
        now = self.now()

        def join(d: dict[str, Any]) -> dict[str, Any]:
            ringing = d["ringing"]
            connected = {k: ringing[k] for k in ("sees_id", "name", "call_sid", "since")} | {
                "joined_at": now,
                "left_at": None,
            }
            return {
                **d,
                "ringing": None,
                "agent": connected,
                "agents": [*d["agents"], connected["sees_id"]],
                "conference_sid": conference_sid,
            }

        def early(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if d is None or d["ringing"] is not None or d["state"] != "waiting":
                return None
            return {**d, "early_joins": [*d.get("early_joins", []), leg_sid][-5:]}

        for _ in range(2):
            changed = self._move(
                call_sid,
                "connect",
                check=lambda d: bool(d["ringing"]) and d["ringing"]["call_sid"] == leg_sid,
                change=join,
            )
            doc = changed.before
            if changed.written and doc is not None:
                # The ring's claim may lapse on its own: nothing rings a call with an agent.
                sees_id = doc["ringing"]["sees_id"]
                self.staff.agent_connected(sees_id, call_sid, now)
                self._audit(
                    "agent.connected",
                    call_sid,
                    agent=sees_id,
                    outcome="connected",
                    # How long the caller waited for this agent (the floor's wait figures).
                    waited=round(now - float(doc["waiting_since"]), 1),
                    language=doc.get("language") or DEFAULT_LANGUAGE,
                    organisation=(doc.get("verified") or {}).get("organisation"),
                )
                if doc.get("callback_id"):
                    self.callbacks.connected(doc["callback_id"], call_sid, sees_id)
                else:
                    # Through on a call of their own: a call-back waiting for them is done.
                    self.callbacks.reached(doc["verified"]["adviser_number"], call_sid)
                return
            if doc is None or (doc["agent"] and doc["agent"]["call_sid"] == leg_sid):
                return  # unknown call, or the same join reported again
            if doc["ringing"] is not None or doc["state"] != "waiting":
                break
            # No ring noted yet, but one may be under way (its claim held): the join beat
            # the note. Keep it; the ringing path connects it (or hangs it up). If the
            # note lands meanwhile, look again.
            if not self.store.claimed_by(_ring_key(call_sid)):
                break
            if self._change(call_sid, early).written:
                return
        else:
            return
        sees_id = doc.get("rung", {}).get(leg_sid)
        log.warning("call %s: agent leg %s joined without a claim; removing it", call_sid, leg_sid)
        try:
            self.services.twilio().hang_up(leg_sid)
            outcome = "removed"
        except CallflowError as exc:
            log.error("call %s: could not remove agent leg %s: %s", call_sid, leg_sid, exc)
            outcome = "remove_failed"
        if sees_id:
            self.staff.ring_over(sees_id, call_sid, now)
        self._audit("agent.unclaimed_join", call_sid, agent=sees_id, leg=leg_sid, outcome=outcome)

    def agent_left(self, call_sid: str, leg_sid: str) -> AgentLeft | None:
        """The agent's leg left: the call is over for them (after-call work). Returns what
        the caller of this needs to settle the rest (None: not this call's agent, or told
        already): the hand-off under way, and whether the caller had gone first. A caller
        left alone is let go by :meth:`let_caller_go`."""
        now = self.now()
        changed = self._move(
            call_sid,
            "agent_leaves",
            check=lambda d: bool(d["agent"])
            and d["agent"]["call_sid"] == leg_sid
            and not d["agent"]["left_at"],
            change=lambda d: {**d, "agent": {**d["agent"], "left_at": now}},
        )
        left, doc = changed.before, changed.after
        if left is None or doc is None:
            return None
        # Whose leaving ended it: a caller who hung up takes the agent's leg with them.
        with_agent = left["state"] == "with_agent"
        caller_gone = with_agent and self._caller_gone(call_sid)
        self._after_call(call_sid, left["agent"]["sees_id"], doc, caller_gone=caller_gone)
        self._audit("agent.left", call_sid, agent=left["agent"]["sees_id"], outcome="left")
        active = left.get("active_handoff")
        if active and not with_agent:
            caller_gone = self._caller_gone(call_sid)  # asked once, whichever way it goes
        return AgentLeft(active, bool(active) and caller_gone, doc)

    def let_caller_go(self, call_sid: str, record: Mapping[str, Any] | None = None) -> None:
        """A caller whose agent left with nobody to take over hears why, and is let go.
        ``record``: the call's record as it stands, when the caller has it (else read)."""
        doc = record if record is not None else self.get(call_sid)
        if doc is None or doc["state"] != "agent_left":
            return
        try:
            response = VoiceResponse()
            text, voice = message("agent_left", doc.get("language"))
            response.say(text, **voice)
            response.hangup()
            self.services.twilio().play(call_sid, str(response))
        except CallflowError as exc:
            # Usually the caller has just gone too (their callback is on its way).
            log.info("call %s: could not end after the agent left: %s", call_sid, exc)

    def leg_live(self, leg_sid: str | None) -> bool:
        """Whether a leg is still connected (no answer from Twilio: not live)."""
        return self._call_status(leg_sid) == "in-progress"

    def _call_status(self, call_sid: str | None) -> str | None:
        """A leg's status by Twilio's word (callbacks can come in any order); None if unknown."""
        if not call_sid:
            return None
        try:
            return self.services.twilio().call_status(call_sid)
        except CallflowError:
            return None

    def _caller_gone(self, call_sid: str) -> bool:
        """Whether the caller's leg is over (no answer from Twilio: not gone)."""
        return self._call_status(call_sid) in FINAL_CALL_STATUSES

    def joined(self, call_sid: str, leg: str, label: str | None, params: dict[str, str],
               links: Links) -> None:  # fmt: skip
        """Someone joined the caller's conference: the caller (their conference is up, an
        agent is rung) or an agent (their SEES ID goes on the call). Other joins and the
        conference's other events are ``callflow.call_ends``'s to settle."""
        if leg == call_sid:
            doc = self._update(
                call_sid,
                lambda d: {**d, "conference_sid": params.get("ConferenceSid")} if d else None,
            )
            self.ring_next(call_sid, links, doc)
        elif label == "agent":
            self.agent_joined(call_sid, leg, params.get("ConferenceSid", ""))

    def caller_ended(self, call_sid: str, reason: str) -> CallRecord | None:
        """The caller's leg (or their conference) is over: stop ringing, the agent into
        their after-call work. Returns the call's record as it stood before (None when it
        was over already): its hand-offs are the caller of this method's to end."""
        now = self.now()
        changed = self._move(
            call_sid,
            "end",
            change=lambda d: {
                **d,
                "ended_at": now,
                "end_reason": d.get("end_reason") or reason,
            },
        )
        before = cast("CallRecord | None", changed.before)
        if before is None or not changed.written:
            return None
        ringing, agent = before.get("ringing"), before.get("agent")
        if ringing:
            self.staff.ring_over(ringing["sees_id"], call_sid, now)
            try:
                self.services.twilio().hang_up(ringing["call_sid"])
            except CallflowError as exc:
                log.info("call %s: ringing agent leg already gone: %s", call_sid, exc)
        if agent and agent.get("left_at") is None:
            self._after_call(call_sid, agent["sees_id"], changed.after or before)
        extra: dict[str, Any] = {}
        if before["state"] == "waiting":
            # The caller went before any agent took them: abandoned while waiting.
            extra = {
                "abandoned": True,
                "waited": round(now - float(before["waiting_since"]), 1),
                "language": before.get("language") or DEFAULT_LANGUAGE,
                "organisation": (before.get("verified") or {}).get("organisation"),
            }
        self._audit("call.ended", call_sid, outcome=reason, **extra)
        return before

    # ------------------------------------------------------------ hand-offs move the call

    def begin_handoff(self, call_sid: str, handoff_id: str) -> bool:
        """The agent hands the call off: it is transferring (one hand-off at a time)."""
        return self._move(
            call_sid,
            "begin_handoff",
            check=lambda d: not d.get("active_handoff"),
            change=lambda d: {
                **d,
                "active_handoff": handoff_id,
                "handoffs": [*d["handoffs"], handoff_id],
            },
        ).written

    def handoff_failed(self, call_sid: str, handoff_id: str) -> dict[str, Any] | None:
        """A hand-off did not happen: the caller is back with the agent (or alone, if the
        agent has gone meanwhile). Returns the record as it now stands (None when the
        hand-off was not the call's active one)."""

        def mine(d: dict[str, Any]) -> bool:
            return d.get("active_handoff") == handoff_id

        def agent_here(d: dict[str, Any]) -> bool:
            return bool(d["agent"]) and not d["agent"].get("left_at")

        def clear(d: dict[str, Any]) -> dict[str, Any]:
            return {**d, "active_handoff": None}

        back = self._move(
            call_sid,
            "back_to_agent",
            check=lambda d: mine(d) and agent_here(d),
            change=clear,
        )
        if back.written:
            return back.after
        alone = self._move(
            call_sid,
            "handoff_failed_alone",
            check=lambda d: mine(d) and not agent_here(d),
            change=clear,
        )
        return alone.after

    def handed_off(self, call_sid: str, handoff_id: str) -> None:
        """The specialist has taken the call over."""
        self._move(
            call_sid,
            "hand_over",
            check=lambda d: d.get("active_handoff") == handoff_id,
            change=lambda d: {**d, "active_handoff": None, "handed_over_at": self.now()},
        )

    # ------------------------------------------------------------ the agent's work on a call

    def _after_call(
        self, call_sid: str, sees_id: str, record: Mapping[str, Any], caller_gone: bool = False
    ) -> None:
        """The call is over for its agent: their after-call work begins, and the call's
        outcome is recorded as the service sees it until the agent gives theirs."""
        now = self.now()
        self.staff.call_over(sees_id, call_sid, now, self.wrap_up)
        if record["state"] == "handed_off" or record.get("handed_over_at"):
            guessed = "handed_off"
        elif caller_gone or record["state"] == "ended":
            guessed = "caller_hung_up"
        else:
            guessed = "resolved"

        def note(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if d is None or d.get("outcome"):
                return None
            return {
                **d,
                "after_call": {"sees_id": sees_id, "since": now},
                "outcome": {"code": guessed, "notes": "", "by": "service", "at": now},
            }

        if self._change(call_sid, note).written:
            self._audit(
                "call.after_call_work", call_sid, agent=sees_id, outcome=guessed, by="service"
            )

    def _agents_call(self, call_sid: str, viewer: Viewer) -> CallRecord:
        """The call's record, if the asker is an agent who took it (Forbidden otherwise)."""
        record = self.get(call_sid)
        if record is None or not was_on_call(viewer, record):
            raise Forbidden("this call is not yours: only the agent who took it may")
        return record

    def save_draft(
        self, call_sid: str, viewer: Viewer, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """Keep the agent's hand-off form as a draft on the call it belongs to, so a reload,
        the caller hanging up or a hand-off that did not happen loses nothing. Only the
        agent on the call (or in its after-call work) may; returns the draft kept."""
        record = self._agents_call(call_sid, viewer)
        if (record.get("agent") or {}).get("sees_id") != viewer.sees_id:
            raise Forbidden("this call is not yours: only the agent who took it may")
        draft: dict[str, Any] = {}
        for name in DRAFT_FIELDS:
            value = fields.get(name, "")
            if not isinstance(value, str):
                raise DirectoryError(f"{name}: text")
            if len(value) > DRAFT_LIMITS.get(name, 64):
                raise DirectoryError(
                    f"{name}: up to {DRAFT_LIMITS.get(name, 64)} characters"
                )
            draft[name] = value
        now = self.now()
        self._update(
            call_sid, lambda d: {**d, "draft": {**draft, "saved_at": now}} if d else None
        )
        return {**draft, "saved_at": now}

    def record_outcome(
        self, call_sid: str, viewer: Viewer, code: str, notes: str
    ) -> dict[str, Any]:
        """The agent records what became of the call (their after-call work): one of
        ``OUTCOMES``, with notes. Audited (the notes stay on the call, never in the log)."""
        self._agents_call(call_sid, viewer)
        errors = {}
        if code not in OUTCOMES:
            errors["outcome"] = f"one of {', '.join(OUTCOMES)}"
        if not isinstance(notes, str) or len(notes) > 2000:
            errors["notes"] = "up to 2000 characters"
        if errors:
            raise FieldErrors(errors)
        now = self.now()
        outcome = {
            "code": code,
            "notes": " ".join(notes.split()) if notes.strip() else "",
            "by": viewer.sees_id,
            "at": now,
        }
        self._update(call_sid, lambda d: {**d, "outcome": outcome} if d else None)
        self._audit("call.outcome", call_sid, agent=viewer.sees_id, outcome=code)
        return outcome

    # ------------------------------------------------------------ what staff see

    def public_view(self, record: CallRecord) -> dict[str, Any]:
        """A call as the VSTRS agent's screen shows it: never a secret, outcome only."""
        verified = record["verified"]
        agent = record.get("agent")
        live = record["ended_at"] is None
        return {
            "call_sid": record["call_sid"],
            "state": record["state"],
            "caller": {
                "adviser_number": verified["adviser_number"],
                "adviser_name": verified["adviser_name"],
                "organisation": verified["organisation"],
                "organisation_name": verified["organisation_name"],
                "consent_to_act": verified["consent_to_act"],
                "verified_by": verified["method"],
                "verified_at": verified["verified_at"],
            },
            "waiting_since": record["waiting_since"],
            "agent": (
                {k: agent[k] for k in ("sees_id", "name", "joined_at", "left_at")}
                if agent
                else None
            ),
            "handoffs": record["handoffs"],
            "language": record.get("language") or "en-GB",
            "relay": bool(record.get("relay")),
            "ended_at": record["ended_at"],
            "end_reason": record["end_reason"],
            # The VSTRS team's own authority: a verified caller, connected to VSTRS, now.
            "vstrs_authority": bool(live and agent and agent.get("left_at") is None),
            "outcome": _outcome_view(record.get("outcome")),
        }


def _outcome_view(outcome: dict[str, Any] | None) -> dict[str, Any] | None:
    """A call's outcome as staff read it."""
    if not outcome:
        return None
    return {**outcome, "label": OUTCOMES.get(outcome["code"], outcome["code"])}
