"""VSTRS calls after verification: the caller waits in a conference of their own while the
service rings the longest-idle available VSTRS agent, who joins it.

The record of each call (``vstrs_calls/<CallSid>``) holds the verified identity, the agent
being rung and the agent connected (with their SEES ID), and what happened. Every change
to it is an atomic update, so Twilio's callbacks may arrive twice or in any order.

Ticks come from Twilio itself: while the caller waits, the conference fetches its wait
URL again and again, and each fetch lets the service ring the next agent or, after the
configured wait, end the call politely with a callback note.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

from twilio.twiml.voice_response import VoiceResponse

from .context import Services, ServiceUser
from .errors import CallflowError
from .language import DEFAULT as DEFAULT_LANGUAGE
from .language import message
from .store.base import Changed
from .twilio_adapter import FINAL_CALL_STATUSES
from .twiml import Links

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

__all__ = ["VstrsCalls"]

NAMESPACE = "vstrs_calls"
RECORD_TTL = 30 * 24 * 3600


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
    rang, per language: see :meth:`VstrsCalls.ahead`)."""
    entries = [(f"agent:{sees_id}", doc["waiting_since"]) for sees_id in set(doc["agents"])]
    if doc["state"] == "waiting" and doc["ringing"] is None:
        language = doc.get("language") or DEFAULT_LANGUAGE
        entries.append((f"queue:{language}", float(doc.get("arrived_at") or doc["waiting_since"])))
    return entries


#: Two callers who first rang this close together are level: neither waits for the other.
LEVEL_SECONDS = 0.001


class VstrsCalls(ServiceUser):
    """Caller to agent, driven by the flow, Twilio's callbacks and the hold ticks."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.store.define_index(NAMESPACE, call_index, keep_seconds=RECORD_TTL)

    def live_ahead(self, language: str, arrived_at: float) -> int:
        """How many live callers in ``language`` wait (no agent being rung for them) who
        first rang before ``arrived_at``."""
        return self.store.index_size(
            NAMESPACE, f"queue:{language}", max_score=arrived_at - LEVEL_SECONDS
        )

    def ahead(self, language: str, arrived_at: float) -> int:
        """How many callers are ahead of one who first rang at ``arrived_at``: live callers
        waiting and call-backs holding their place, in the same language. A caller is
        offered an agent only while fewer are ahead of them than agents free to take them,
        so the queue is served in the order callers first rang."""
        callbacks = self.services.callbacks
        if callbacks is None or not callbacks.placing_now():
            return self.live_ahead(language, arrived_at)
        # Live callers and call-backs ahead: both counts in one round trip.
        return sum(
            self.store.index_sizes(
                [(NAMESPACE, f"queue:{language}"), callbacks.holding_index(language)],
                max_score=arrived_at - LEVEL_SECONDS,
            )
        )

    def recent_for_agent(
        self, sees_id: str, offset: int = 0, count: int = 10
    ) -> list[dict[str, Any]]:
        """The calls an agent took, newest first, a page at a time."""
        return self.store.indexed(
            NAMESPACE, f"agent:{sees_id}", newest_first=True, offset=offset, count=count
        )

    def get(self, call_sid: str) -> dict[str, Any] | None:
        """A call's record."""
        return self.store.get_doc(NAMESPACE, call_sid)

    def _update(self, call_sid: str, change: Any) -> dict[str, Any] | None:
        return self.store.update_doc(NAMESPACE, call_sid, change, ttl_seconds=RECORD_TTL)

    def _change(self, call_sid: str, change: Any) -> Changed:
        return self.store.change_doc(NAMESPACE, call_sid, change, ttl_seconds=RECORD_TTL)

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
                # The flow's rule for a language no free agent speaks (see _by_language).
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

    def ring_next(self, call_sid: str, links: Links, doc: dict[str, Any] | None = None) -> bool:
        """Ring the longest-idle available agent not yet tried on this call (then anyone again).

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
        tried = set(doc["tried"])
        candidates = self.staff.idle_agents(exclude=tried) or self.staff.idle_agents()
        candidates = self._by_language(call_sid, doc, candidates)
        if not candidates:  # nobody to ring: no claim to take (the next tick looks again)
            log.info("call %s: no VSTRS agent free to ring", call_sid)
            return False
        language = doc.get("language") or DEFAULT_LANGUAGE
        ahead = self.ahead(language, float(doc.get("arrived_at") or doc["waiting_since"]))
        if ahead >= len(candidates):
            log.info("call %s: %d earlier callers first for %d free agents", call_sid, ahead,
                     len(candidates))  # fmt: skip
            return False
        token = secrets.token_hex(8)
        if not self.store.claim(_ring_key(call_sid), token, STALE_RING_CLAIM_SECONDS):
            return False
        ring_for = self.settings.agent_ring_seconds
        for agent in candidates:
            if not self.staff.claim_agent(agent.sees_id, call_sid, ring_for + 60):
                continue
            try:
                leg = self.services.twilio().add_participant(
                    conference_name(call_sid),
                    to=agent.reach,
                    from_=self.settings.vstrs_number,
                    label="agent",
                    status_callback=links.leg_status("agent", call_sid),
                    conference_status_callback=links.conference_events(),
                    start_conference_on_enter=True,
                    end_conference_on_exit=False,
                    timeout=ring_for,
                )
            except CallflowError as exc:
                self.staff.release_agent(agent.sees_id, call_sid, self.now())
                log.error("call %s: could not ring agent %s: %s", call_sid, agent.sees_id, exc)
                continue
            return self._rang(call_sid, token, agent.sees_id, agent.name, leg)
        self.store.release(_ring_key(call_sid), token)
        log.info("call %s: no VSTRS agent free to ring", call_sid)
        return False

    def _by_language(self, call_sid: str, doc: dict[str, Any], candidates: list[Any]) -> list[Any]:
        """Routing by skill: a call in a language beyond English is offered to the agents
        who speak it (longest idle first). When none is free within the flow's
        ``routing.language_wait``, the flow's ``routing.then`` decides: ``english`` (offer
        any agent), ``wait`` (keep waiting for a speaker), or ``callback`` (note a call-back
        and end politely). What happened is audited."""
        language = doc.get("language") or DEFAULT_LANGUAGE
        if language == DEFAULT_LANGUAGE:
            return candidates
        speakers = [agent for agent in candidates if agent.speaks(language)]
        if speakers or doc.get("language_fallback") == "english":
            return speakers or candidates
        routing = doc.get("routing") or {}
        if self.now() - doc["waiting_since"] < float(routing.get("language_wait", 60)):
            log.info("call %s: no %s-speaking agent free yet", call_sid, language)
            return []
        then = str(routing.get("then", "english"))
        if then == "wait":
            return []
        marked = self._update(
            call_sid,
            lambda d: (
                {**d, "language_fallback": then}
                if d and d["state"] == "waiting" and not d.get("language_fallback")
                else None
            ),
        )
        if marked is not None and marked.get("language_fallback") == then:
            self._audit("agent.language_fallback", call_sid, language=language, outcome=then)
        if then == "callback":
            self.no_agent(call_sid)
            return []
        return candidates

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
            self.staff.release_agent(sees_id, call_sid, self.now())
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
        text, voice = message("holding", (doc or {}).get("language"))
        response.say(text, **voice)
        response.pause(length=15)
        return str(response)

    def no_agent(self, call_sid: str) -> None:
        """Nobody answered in time: tell the caller, owe them a call-back, end the call.

        The call-back keeps their place (when they first rang) and is made to their
        registered number. On a call-back's own call, this try failed: the call-back is
        tried again later (or dropped when its tries are used up)."""
        changed = self._change(
            call_sid,
            lambda d: (
                {**d, "state": "no_agent", "end_reason": "no_agent"}
                if d and d["state"] == "waiting"
                else None
            ),
        )
        ended = changed.after
        if not changed.written or ended is None:
            return  # not waiting (any more): another path got here first
        verified = ended["verified"]
        callbacks = self.services.callbacks
        noted: dict[str, Any] | None = None
        if callbacks is not None and ended.get("callback_id"):
            noted = callbacks.no_agent(ended["callback_id"], call_sid)
            if noted is not None and noted["status"] != "retry_wait":
                noted = None  # its tries are used up: the caller is not promised another
        elif callbacks is not None:
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

    def agent_leg_status(self, call_sid: str, leg_sid: str, status: str, links: Links) -> None:
        """A status callback for an agent's leg on ``call_sid``."""
        if status not in FINAL_CALL_STATUSES:
            return
        doc = self.get(call_sid)
        if doc is None:
            return
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
            self.staff.release_agent(ringing["sees_id"], call_sid, self.now())
            self._audit("agent.no_answer", call_sid, agent=ringing["sees_id"], outcome=status)
            self.ring_next(call_sid, links)
        elif agent and agent["call_sid"] == leg_sid and agent.get("left_at") is None:
            self.agent_left(call_sid, leg_sid)

    def agent_joined(self, call_sid: str, leg_sid: str, conference_sid: str) -> None:
        """An agent's leg joined the caller's conference: record their SEES ID on the call.

        Only the leg this call claimed and rang may stay. Any other agent leg (one nobody
        claimed this call for) is taken out of the call at once, before it hears anything
        more than the hold, and audited.
        """
        now = self.now()

        def join(d: dict[str, Any] | None) -> dict[str, Any] | None:
            ringing = d["ringing"] if d else None
            if d is None or not ringing or ringing["call_sid"] != leg_sid:
                return None
            connected = {k: ringing[k] for k in ("sees_id", "name", "call_sid", "since")} | {
                "joined_at": now,
                "left_at": None,
            }
            return {
                **d,
                "state": "with_agent",
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
            changed = self._change(call_sid, join)
            doc = changed.before
            if changed.written and doc is not None:
                # The ring's claim may lapse on its own: nothing rings a call with an agent.
                sees_id = doc["ringing"]["sees_id"]
                self.staff.claim_agent(sees_id, call_sid, 4 * 3600)
                self._audit("agent.connected", call_sid, agent=sees_id, outcome="connected")
                callbacks = self.services.callbacks
                if doc.get("callback_id") and callbacks is not None:
                    callbacks.connected(doc["callback_id"], call_sid, sees_id)
                elif callbacks is not None:
                    # Through on a call of their own: a call-back waiting for them is done.
                    callbacks.reached(doc["verified"]["adviser_number"], call_sid)
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
            self.staff.release_agent(sees_id, call_sid, now)
        self._audit("agent.unclaimed_join", call_sid, agent=sees_id, leg=leg_sid, outcome=outcome)

    def agent_left(self, call_sid: str, leg_sid: str) -> None:
        """The agent's leg left: free the agent; a caller left alone is told and let go."""
        now = self.now()

        def leave(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if (
                d is None
                or not d["agent"]
                or d["agent"]["call_sid"] != leg_sid
                or d["agent"]["left_at"]
            ):
                return None
            state = (
                d["state"]
                if d["state"] in {"handed_off", "ended", "transferring"}
                else "agent_left"
            )
            return {**d, "agent": {**d["agent"], "left_at": now}, "state": state}

        changed = self._change(call_sid, leave)
        left, doc = changed.before, changed.after
        if left is None or doc is None:
            return
        self.staff.release_agent(left["agent"]["sees_id"], call_sid, now)
        self._audit("agent.left", call_sid, agent=left["agent"]["sees_id"], outcome="left")
        handoffs = self.services.handoffs
        active = left.get("active_handoff")
        if active and self._caller_gone(call_sid):
            # The agent was let go because the caller hung up: that is what ended it.
            self.caller_ended(call_sid, "completed")
            return
        if handoffs is not None and active:
            handoff = handoffs.get(active)
            if handoff is not None and handoff["state"] == "briefing":
                # Leaving after the brief is how an agent hands over: the specialist takes
                # it, if they are still there. (When the specialist hangs up, the conference
                # ends and the agent's leg with it; that callback may come first.)
                if self._leg_live(handoff.get("specialist_call_sid")):
                    handoffs.complete(active, links=None, by_agent_leaving=True)
                    return
                handoffs.fail(active, "specialist_gone", links=None)
                return
            handoffs.fail(active, "agent_left", links=None)
            doc = self.get(call_sid) or doc
        if doc["state"] == "agent_left":
            try:
                response = VoiceResponse()
                text, voice = message("agent_left", doc.get("language"))
                response.say(text, **voice)
                response.hangup()
                self.services.twilio().play(call_sid, str(response))
            except CallflowError as exc:
                # Usually the caller has just gone too (their callback is on its way).
                log.info("call %s: could not end after the agent left: %s", call_sid, exc)

    def _call_status(self, call_sid: str | None) -> str | None:
        """A leg's status by Twilio's word (callbacks can come in any order); None if unknown."""
        if not call_sid:
            return None
        try:
            return self.services.twilio().call_status(call_sid)
        except CallflowError:
            return None

    def _leg_live(self, leg_sid: str | None) -> bool:
        """Whether a leg is still connected (no answer from Twilio: not live)."""
        return self._call_status(leg_sid) == "in-progress"

    def _caller_gone(self, call_sid: str) -> bool:
        """Whether the caller's leg is over (no answer from Twilio: not gone)."""
        return self._call_status(call_sid) in FINAL_CALL_STATUSES

    def conference_event(self, params: dict[str, str], links: Links) -> None:
        """A conference status callback (participant-join, conference-end, ...)."""
        call_sid = caller_of(params.get("FriendlyName", ""))
        if call_sid is None:
            return
        event = params.get("StatusCallbackEvent", "")
        leg = params.get("CallSid", "")
        label = params.get("ParticipantLabel")
        if event == "participant-join" and leg == call_sid:
            doc = self._update(
                call_sid,
                lambda d: {**d, "conference_sid": params.get("ConferenceSid")} if d else None,
            )
            self.ring_next(call_sid, links, doc)
        elif event == "participant-join" and label == "agent":
            self.agent_joined(call_sid, leg, params.get("ConferenceSid", ""))
        elif event == "participant-join" and label == "specialist" and self.services.handoffs:
            self.services.handoffs.specialist_joined(call_sid, leg)
        elif event == "participant-leave" and label == "agent":
            if params.get("ReasonParticipantLeft") == "conference_ended":
                return  # the caller went: conference-end (next) settles everything
            self.agent_left(call_sid, leg)
        elif event == "conference-end":
            self.caller_ended(call_sid, params.get("ReasonConferenceEnded", "conference-ended"))

    def caller_ended(self, call_sid: str, reason: str) -> None:
        """The caller's leg (or their conference) is over: stop ringing, free the agent."""
        now = self.now()

        def end(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if d is None or d["ended_at"] is not None:
                return None
            return {
                **d,
                "ended_at": now,
                "end_reason": d.get("end_reason") or reason,
                "state": "ended",
            }

        changed = self._change(call_sid, end)
        before = changed.before
        if before is None or not changed.written:
            return
        ringing, agent = before.get("ringing"), before.get("agent")
        if ringing:
            self.staff.release_agent(ringing["sees_id"], call_sid, now)
            try:
                self.services.twilio().hang_up(ringing["call_sid"])
            except CallflowError as exc:
                log.info("call %s: ringing agent leg already gone: %s", call_sid, exc)
        if agent and agent.get("left_at") is None:
            self.staff.release_agent(agent["sees_id"], call_sid, now)
        if self.services.handoffs is not None:
            self.services.handoffs.call_ended(call_sid, reason, links=None, record=before)
        self._audit("call.ended", call_sid, outcome=reason)

    # ------------------------------------------------------------ what staff see

    def public_view(self, record: dict[str, Any]) -> dict[str, Any]:
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
        }
