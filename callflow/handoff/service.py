"""Hand-offs: the real-time hand-off of a verified VSTRS call to a specialist of Debt
Management, the SEES ID check, and the take-over that starts the disclosure grant.

The caller is held in their own conference while the team is rung: its available
specialists first, each on their own phone (those who speak the call's language first,
then longest idle first), then the team's own numbers, kept for people not yet
registered. Each hand-off is taken by one specialist, bound before the SEES ID check can
complete and audited (``handoff.taken_by``): the person whose own phone answered, or, on
a team number, the specialist who takes it on their console. The specialist's leg runs
``flows/specialist_handoff.yaml``: they hear who is calling, key the SEES ID the agent
gives them (it must be the agent on this call and an active VSTRS agent), and accept or
decline. On acceptance they join the agent for the brief; when the agent hands over (or
leaves) the caller comes off hold and the grant starts, for that specialist and that call.

Every move is an event of the hand-off's lifecycle (callflow.handoff.lifecycle), asked of
its table; records are updated atomically, so Twilio's callbacks may come twice or in any
order. Every step is audited.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from ..access import Viewer, was_on_call
from ..context import Services, ServiceUser
from ..errors import (
    CallflowError,
    Forbidden,
    HandOffConflict,
    HandOffForbidden,
    HandOffInvalid,
    UnknownHandOff,
)
from ..records import CallRecord, Grant, HandOff
from ..store.base import Changed
from ..twilio_adapter import FINAL_CALL_STATUSES
from ..twiml import Links
from ..vstrs import VstrsCalls
from .grants import RECORD_TTL, Grants
from .lifecycle import HANDOFF, IN_PROGRESS, LIVE
from .needs import HandoffNeeds
from .request import validate_request

log = logging.getLogger(__name__)

__all__ = [ "HandOffs"]

Doc = dict[str, Any] | None
NAMESPACE = "handoffs"
#: How long a specialist is held for a ring, beyond the ring itself (then for the call).
SPECIALIST_HOLD_SECONDS = 4 * 3600


def handoff_index(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """A hand-off's index entries: by team, organisation and state, all of them, the team's
    live ones, and the specialists it rang or was taken by."""
    at = doc["requested_at"]
    entries = [("all", at), (f"org:{doc['organisation']}", at)]
    if doc.get("team"):
        entries.append((f"team:{doc['team']}", at))
        if doc.get("state") in LIVE:
            entries.append((f"live:team:{doc['team']}", at))
            entries.append(("live", at))  # across teams: the supervisor's floor
    if doc.get("state"):
        entries.append((f"state:{doc['state']}", doc.get("updated_at", at)))
    people = {(doc.get("taken_by") or {}).get("id")}
    ringing = doc.get("ringing") or {}
    if doc.get("state") == "ringing":
        people.add((ringing.get("specialist") or {}).get("id"))
    entries.extend((f"specialist:{person}", at) for person in sorted(p for p in people if p))
    return entries


def _target(target: str) -> tuple[str, str]:
    """``specialist:300101`` -> (specialist, 300101); a bare number (an older record) is a
    team number."""
    kind, _, value = target.partition(":")
    if kind in {"specialist", "number"} and value:
        return kind, value
    return "number", target


class HandOffs(ServiceUser):
    """Hand-offs to specialists, and the grants they start."""

    def __init__(self, services: Services, vstrs: VstrsCalls) -> None:
        super().__init__(services)
        #: The VSTRS calls hand-offs are made from (built before this: they never read the
        #: hand-offs; ``callflow.call_ends`` tells both of a call's events).
        self.vstrs = vstrs
        self.needs = HandoffNeeds(self.store, services.audit, services.clock)
        self.store.define_index(NAMESPACE, handoff_index, keep_seconds=RECORD_TTL)
        self.grants = Grants(services, on_over=self._grant_call_over)

    @property
    def wrap_up(self) -> float:
        """A specialist's wrap-up time after a call (CALLFLOW_SPECIALIST_WRAP_UP)."""
        return float(self.settings.specialist_wrap_up_seconds)

    def get(self, handoff_id: str) -> HandOff | None:
        """A hand-off."""
        if not re.fullmatch(r"HO[0-9a-f]{16}", handoff_id or ""):
            return None
        return cast("HandOff | None", self.store.get_doc(NAMESPACE, handoff_id))

    def _move(
        self,
        handoff_id: str,
        event: str,
        *,
        check: Callable[[dict[str, Any]], bool] | None = None,
        note: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Changed:
        """Move a hand-off by ``event`` if its lifecycle allows that from the state it is in
        (and ``check`` agrees), setting ``fields``: one atomic change. A change of state, or
        a ``note``, goes in its history."""
        now = self.now()

        def change(d: Doc) -> Doc:
            if d is None:
                return None
            state = HANDOFF.after(d["state"], event)
            if state is None or (check is not None and not check(d)):
                return None
            history = d["history"]
            if state != d["state"] or note:
                entry = {"at": now, "state": state}
                if "reason" in fields:
                    entry["reason"] = fields["reason"]
                history = [*history, {**entry, **(note or {})}]
            return {**d, **fields, "state": state, "updated_at": now, "history": history}

        return self.store.change_doc(NAMESPACE, handoff_id, change, ttl_seconds=RECORD_TTL)

    # ------------------------------------------------------------ the agent asks

    def request(
        self, call_sid: str, agent_sees_id: str, body: dict[str, Any], links: Links
    ) -> HandOff:
        """The agent on ``call_sid`` hands it off; the caller is held, the team rung."""
        clean, errors = validate_request(body, datetime.fromtimestamp(self.now(), UTC).date())
        need, need_errors = self.needs.check(body.get("need"), body.get("need_detail"))
        errors.update(need_errors)
        team = self.staff.team(clean["team"]) if isinstance(clean["team"], str) else None
        if clean["team"] and "team" not in errors and (team is None or not team.active):
            errors["team"] = "no such specialist team"
        if errors:
            raise HandOffInvalid("the hand-off request has errors", errors)
        assert team is not None
        if not team.is_open(self.now()):
            # Why, and when it reopens: "closed: bank holiday (Christmas Day); reopens ...".
            why = team.status_text(self.now())
            raise HandOffInvalid(f"{team.name} is {why}", {"team": why})
        vstrs = self.vstrs
        record = vstrs.get(call_sid)
        if record is None or record["state"] != "with_agent" or record["ended_at"] is not None:
            raise HandOffConflict("the call is not with a VSTRS agent now")
        agent = record["agent"]
        if agent is None or agent["sees_id"] != agent_sees_id or agent.get("left_at"):
            raise HandOffForbidden("only the VSTRS agent on this call may hand it off")
        verified = record["verified"]
        adviser_record = self.services.directory.get(verified["adviser_number"])
        adviser: dict[str, Any] = {
            "name": verified["adviser_name"],
            "adviser_number": verified["adviser_number"],
        }
        if verified["consent_to_act"] and adviser_record is not None:
            adviser.update(phone=adviser_record.phone, email=adviser_record.email)
        handoff_id = "HO" + secrets.token_hex(8)
        now = self.now()
        language = record.get("language") or "en-GB"
        doc = {
            "id": handoff_id,
            "call_sid": call_sid,
            "conference": record["conference"],
            "conference_sid": record["conference_sid"],
            "team": team.id,
            "team_name": team.name,
            # The team's own numbers, rung after its available specialists: a Welsh call's
            # numbers answered in Welsh first.
            "numbers": team.numbers_for(language),
            "agent_sees_id": agent["sees_id"],
            "agent_name": agent["name"],
            "agent_call_sid": agent["call_sid"],
            "customer": clean["customer"],
            "organisation": verified["organisation"],
            "organisation_name": verified["organisation_name"],
            "adviser": adviser,
            "consent_to_act": verified["consent_to_act"],
            # The call's language: the specialist is rung with the whisper in it, and it
            # goes on the grant, so a Welsh call is served in Welsh after the hand-off.
            "language": language,
            "relay": bool(record.get("relay")),
            "issue": clean["issue"],
            # Why the case needed a specialist (the admin's list; the agent's words).
            "need": need,
            "callback": clean["callback"],
            "authorisation": clean["authorisation"],
            "state": "requested",
            "reason": None,
            "requested_at": now,
            "updated_at": now,
            "ringing": None,
            "tried": [],
            "specialist_call_sid": None,
            "taken_by": None,
            "grant_id": None,
            "history": [{"at": now, "state": "requested"}],
        }
        if not vstrs.begin_handoff(call_sid, handoff_id):
            raise HandOffConflict("another hand-off is already under way on this call")
        self.store.put_doc(NAMESPACE, handoff_id, doc, ttl_seconds=RECORD_TTL)
        self._audit(
            "handoff.requested",
            call_sid,
            handoff=handoff_id,
            team=team.id,
            agent=agent["sees_id"],
            organisation=verified["organisation"],
            need=need["id"] if need else None,
            outcome="requested",
        )
        for field in (
            f"org:{verified['organisation']}",
            f"agent:{agent['sees_id']}",
            f"team:{team.id}",
            "all",
        ):
            self.store.count("handoffs", field)
        try:
            self.services.twilio().hold(
                record["conference_sid"] or record["conference"],
                call_sid,
                True,
                links.hold(call_sid),
            )
        except CallflowError as exc:
            self.fail(handoff_id, "failed", links, detail=f"could not hold the caller: {exc}")
            raise HandOffConflict(
                "could not put the caller on hold; nothing was handed off"
            ) from exc
        self._ring(handoff_id, links)
        result = self.get(handoff_id)
        assert result is not None
        return result

    # ------------------------------------------------------------ ringing the team

    def _ring(self, handoff_id: str, links: Links) -> None:
        """Ring the next: the team's available specialists, then its numbers in order; with
        nobody left, the hand-off fails."""
        doc = self.get(handoff_id)
        if doc is None or not HANDOFF.can(doc["state"], "ring"):
            return
        tried = set(doc["tried"])
        specialist = None
        for person in self.staff.idle_specialists(
            doc["team"],
            doc.get("language"),
            exclude={_target(t)[1] for t in tried if _target(t)[0] == "specialist"},
        ):
            if self.staff.claim_specialist(
                person.id, handoff_id, self.settings.agent_ring_seconds + 60
            ):
                specialist = person
                break
        if specialist is not None:
            target, number = f"specialist:{specialist.id}", specialist.reach
        else:
            numbers = [
                n for n in doc["numbers"] if n not in tried and f"number:{n}" not in tried
            ]
            if not numbers:
                last = doc["history"][-1].get("reason") or "no_answer"
                self.fail(
                    handoff_id,
                    last if last in {"busy", "no_answer", "failed"} else "no_answer",
                    links,
                )
                return
            target, number = f"number:{numbers[0]}", numbers[0]
        try:
            leg = self.services.twilio().create_call(
                to=number,
                from_=self.settings.vstrs_number,
                url=links.incoming("specialist_handoff", handoff_id, doc.get("language") or None),
                status_callback=links.leg_status("specialist", doc["call_sid"]),
                timeout=self.settings.agent_ring_seconds,
            )
        except CallflowError as exc:
            log.error("hand-off %s: could not ring %s: %s", handoff_id, target, exc)
            if specialist is not None:
                self.staff.release_specialist(specialist.id, handoff_id, self.now())
            self.store.update_doc(
                NAMESPACE,
                handoff_id,
                lambda d: {**d, "tried": [*d["tried"], target]} if d else None,
                ttl_seconds=RECORD_TTL,
            )
            self._ring(handoff_id, links)
            return
        ringing = {
            "target": target,
            "number": number,
            "specialist": (
                {"id": specialist.id, "name": specialist.name} if specialist is not None else None
            ),
            "call_sid": leg,
            "since": self.now(),
        }
        moved = self._move(
            handoff_id,
            "ring",
            check=lambda d: target not in d["tried"],
            ringing=ringing,
            tried=[*doc["tried"], target],
        )
        if not moved.written:
            # The hand-off ended while the phone started ringing: it must not reach anyone.
            if specialist is not None:
                self.staff.release_specialist(specialist.id, handoff_id, self.now())
            try:
                self.services.twilio().hang_up(leg)
            except CallflowError as exc:
                log.info("hand-off %s: leg %s already gone: %s", handoff_id, leg, exc)
            return
        self._audit(
            "handoff.ringing",
            doc["call_sid"],
            handoff=handoff_id,
            team=doc["team"],
            specialist=specialist.id if specialist is not None else None,
            outcome="ringing",
        )

    def specialist_leg_status(self, call_sid: str, leg_sid: str, status: str, links: Links) -> None:
        """A status callback for a specialist's leg on ``call_sid``."""
        record = self.vstrs.get(call_sid)
        if record is None:
            return
        for handoff_id in reversed(record["handoffs"]):
            doc = self.get(handoff_id)
            if doc is None:
                continue
            ringing = doc.get("ringing") or {}
            if ringing.get("call_sid") == leg_sid or doc.get("specialist_call_sid") == leg_sid:
                self._specialist_status(doc, leg_sid, status, links)
                return

    def _specialist_status(
        self, doc: HandOff, leg_sid: str, status: str, links: Links
    ) -> None:
        handoff_id, call_sid = doc["id"], doc["call_sid"]
        if status in {"in-progress", "answered"} and doc["state"] == "ringing":
            self._answered(doc, leg_sid)
            return
        if status not in FINAL_CALL_STATUSES:
            return
        ringing = doc.get("ringing") or {}
        if doc["state"] == "ringing" and doc["specialist_call_sid"] is None:
            outcome = {"busy": "busy", "failed": "failed"}.get(status, "no_answer")
            moved = self._move(
                handoff_id,
                "ring",
                check=lambda d: (d.get("ringing") or {}).get("call_sid") == leg_sid,
                note={"reason": outcome},
                ringing=None,
            )
            if not moved.written:
                return
            person = (ringing.get("specialist") or {}).get("id")
            if person:
                self.staff.release_specialist(person, handoff_id, self.now())
            self._audit(
                "handoff.ring_outcome",
                call_sid,
                handoff=handoff_id,
                team=doc["team"],
                specialist=person,
                outcome=outcome,
            )
            self._ring(handoff_id, links)
        elif doc["state"] in IN_PROGRESS:
            self.fail(handoff_id, "specialist_hung_up", links)
        elif doc["state"] == "taken_over":
            self._call_over(doc, "specialist_leg_completed")

    def _answered(self, doc: HandOff, leg_sid: str) -> None:
        """The leg rung for the hand-off answered: checking; on a specialist's own phone,
        that specialist has taken it."""
        person = (doc.get("ringing") or {}).get("specialist")
        fields: dict[str, Any] = {"specialist_call_sid": leg_sid}
        if person:
            fields["taken_by"] = {**person, "how": "answered", "at": self.now()}
        moved = self._move(
            doc["id"],
            "answer",
            check=lambda d: (d.get("ringing") or {}).get("call_sid") == leg_sid
            and not (person and d.get("taken_by")),
            **fields,
        )
        if not moved.written:
            return
        self._audit(
            "handoff.answered", doc["call_sid"], handoff=doc["id"], team=doc["team"],
            outcome="answered",
        )  # fmt: skip
        if person:
            self.staff.claim_specialist(person["id"], doc["id"], SPECIALIST_HOLD_SECONDS)
            self._audit(
                "handoff.taken_by",
                doc["call_sid"],
                handoff=doc["id"],
                team=doc["team"],
                specialist=person["id"],
                how="answered",
                outcome="taken",
            )

    # ------------------------------------------------------------ a specialist takes it

    def take(self, handoff_id: str, viewer: Viewer) -> HandOff:
        """A specialist of the team takes a hand-off that rang a team number, on their
        console, before the SEES ID check completes. One wins, atomically; a hand-off
        someone else took is a conflict and nothing changes."""
        if viewer.role != "specialist" or not viewer.specialist:
            raise Forbidden("only a specialist may take a hand-off")
        doc = self.get(handoff_id)
        if doc is None or not viewer.is_team(doc["team"]):
            raise UnknownHandOff("no such hand-off for your team")
        taker = doc.get("taken_by") or {}
        if taker.get("id") == viewer.specialist:
            return doc  # taken already, by them: the same act twice
        if taker:
            raise HandOffConflict(f"{taker.get('name') or 'another specialist'} has taken it")
        if not HANDOFF.can(doc["state"], "take"):
            raise HandOffConflict(f"the hand-off is {doc['state']}: it can no longer be taken")
        if (doc.get("ringing") or {}).get("specialist"):
            raise HandOffConflict(
                "it is ringing a specialist's own phone: they take it by answering"
            )
        person = self.staff.specialist(viewer.specialist)
        if person is None or not person.active or person.team != doc["team"]:
            raise Forbidden("you are not an active specialist of this team")
        if not self.staff.claim_specialist(person.id, handoff_id, SPECIALIST_HOLD_SECONDS):
            held = self.staff.specialist_held_by(person.id)
            if held != handoff_id:
                raise HandOffConflict("you are on another hand-off: finish it first")
        taken = {"id": person.id, "name": person.name, "how": "claimed", "at": self.now()}
        moved = self._move(
            handoff_id,
            "take",
            check=lambda d: not d.get("taken_by")
            and not (d.get("ringing") or {}).get("specialist"),
            note={"taken_by": person.id},
            taken_by=taken,
        )
        if not moved.written:
            self.store.release(f"specialist:{person.id}", handoff_id)
            now_doc = moved.before or doc
            other = (now_doc.get("taken_by") or {}).get("name") or "another specialist"
            if now_doc.get("taken_by"):
                raise HandOffConflict(f"{other} has taken it")
            raise HandOffConflict(f"the hand-off is {now_doc['state']}: it can no longer be taken")
        self._audit(
            "handoff.taken_by",
            doc["call_sid"],
            handoff=handoff_id,
            team=doc["team"],
            specialist=person.id,
            how="claimed",
            outcome="taken",
        )
        assert moved.after is not None
        return cast(HandOff, moved.after)

    # ------------------------------------------------------------ the specialist's flow

    def for_specialist(self, handoff_id: str) -> HandOff | None:
        """The hand-off a specialist's leg is about, if it is still waiting for them."""
        doc = self.get(handoff_id)
        if doc is None or doc["state"] not in {"ringing", "checking"}:
            return None
        return doc

    def check_sees_id(self, handoff_id: str, keyed: str, specialist_call_sid: str) -> str:
        """``match`` when ``keyed`` is the SEES ID of the agent on this call and an active
        VSTRS agent; ``mismatch`` when not; ``unclaimed`` when no specialist has taken the
        hand-off yet (a team number answered: someone must take it on the console first)."""
        doc = self.get(handoff_id)
        if doc is None:
            return "mismatch"
        taker = doc["taken_by"]
        if not taker:
            return "unclaimed"
        agent = self.staff.agent(keyed) if keyed else None
        matched = bool(agent and agent.active and keyed == doc["agent_sees_id"])
        self._audit(
            "handoff.sees_check",
            doc["call_sid"],
            handoff=handoff_id,
            team=doc["team"],
            agent=doc["agent_sees_id"],
            specialist=taker["id"],
            outcome="match" if matched else "mismatch",
        )
        return "match" if matched else "mismatch"

    def accept(self, handoff_id: str, specialist_call_sid: str) -> dict[str, Any] | None:
        """The specialist checked the SEES ID and accepted: they join the agent for the brief."""
        moved = self._move(
            handoff_id,
            "accept",
            check=lambda d: bool(d.get("taken_by")),
            specialist_call_sid=specialist_call_sid,
        )
        doc = moved.after
        if doc is not None:
            self._audit(
                "handoff.accepted",
                doc["call_sid"],
                handoff=handoff_id,
                team=doc["team"],
                specialist=doc["taken_by"]["id"],
                outcome="accepted",
            )
        return doc

    def specialist_joined(self, call_sid: str, leg_sid: str) -> None:
        """The specialist's leg is in the caller's conference (the caller still held)."""
        record = self.vstrs.get(call_sid)
        handoff_id = record.get("active_handoff") if record else None
        if not handoff_id:
            return
        doc = self._move(handoff_id, "join").after
        if doc is not None and doc["specialist_call_sid"] == leg_sid:
            self._audit(
                "handoff.briefing", call_sid, handoff=handoff_id, team=doc["team"], outcome="joined"
            )

    # ------------------------------------------------------------ the agent hands over

    def complete(
        self, handoff_id: str, links: Links | None, agent_sees_id: str | None
    ) -> HandOff:
        """The brief is over: the caller comes off hold, the agent leaves, the grant starts.

        ``agent_sees_id``: the agent handing over, who must be the agent who asked; None
        when the agent's leaving the call is how they handed over (Twilio told us).

        The grant and its audit entry are written first: if either cannot be, nothing is
        handed over and the caller stays held with the agent and the specialist (fail closed).
        """
        current = self.get(handoff_id)
        if current is None:
            raise UnknownHandOff("no such hand-off")
        if agent_sees_id is not None and current["agent_sees_id"] != agent_sees_id:
            raise HandOffForbidden("only the VSTRS agent who asked may hand over")
        if not HANDOFF.can(current["state"], "take_over"):
            raise HandOffConflict(f"the hand-off is {current['state']}, not in its brief")
        if not current.get("taken_by"):
            raise HandOffConflict("no specialist has taken the hand-off: nobody to hand over to")
        grant_id = self.grants.issue(current)
        moved = self._move(handoff_id, "take_over", grant_id=grant_id)
        doc = moved.after
        if doc is None:  # something ended the hand-off meanwhile: the grant goes at once
            self.grants.end(grant_id, "handoff_ended_before_take_over")
            raise HandOffConflict("the hand-off ended before the take-over")
        call_sid = doc["call_sid"]
        self.vstrs.handed_off(call_sid, handoff_id)
        twilio = self.services.twilio()
        conference = doc["conference_sid"] or doc["conference"]
        try:
            twilio.hold(conference, call_sid, False)
            # Twilio took the caller off hold in a conference the specialist's leaving would
            # have ended: both legs are live now, by Twilio's word.
            self.grants.confirmed(grant_id, self.now())
            if agent_sees_id is not None:
                twilio.remove_participant(conference, doc["agent_call_sid"])
                # Twilio has taken the agent out: the call is over for them now (their
                # after-call work begins), whether or not the participant-leave callback
                # ever comes; when it does, it finds them gone already.
                self.vstrs.agent_left(call_sid, doc["agent_call_sid"])
        except CallflowError as exc:
            log.error("hand-off %s: taking over: %s", handoff_id, exc)
        self._audit(
            "handoff.taken_over",
            call_sid,
            handoff=handoff_id,
            team=doc["team"],
            specialist=(doc.get("taken_by") or {}).get("id"),
            outcome="taken_over",
        )
        result = self.get(handoff_id)
        assert result is not None
        return result

    def fail(
        self, handoff_id: str, reason: str, links: Links | None, detail: str = ""
    ) -> HandOff | None:
        """The hand-off did not happen: the caller comes back to the agent; nothing is granted."""
        doc = self._move(handoff_id, "fail", reason=reason).after
        if doc is None:
            return None
        call_sid = doc["call_sid"]
        back = self.vstrs.handoff_failed(call_sid, handoff_id)
        self._audit(
            "handoff.failed", call_sid, handoff=handoff_id, team=doc["team"], outcome=reason
        )
        for person in {
            (doc.get("taken_by") or {}).get("id"),
            ((doc.get("ringing") or {}).get("specialist") or {}).get("id"),
        } - {None}:
            self.staff.release_specialist(str(person), handoff_id, self.now())
        twilio = self.services.twilio()
        leg = doc.get("specialist_call_sid") or (doc.get("ringing") or {}).get("call_sid")
        try:
            if leg and reason not in {"specialist_hung_up", "declined", "sees_id_mismatch"}:
                twilio.hang_up(leg)
            if back is not None and back["ended_at"] is None and back["state"] == "with_agent":
                twilio.hold(doc["conference_sid"] or doc["conference"], call_sid, False)
        except CallflowError as exc:
            log.info("hand-off %s: after failing (%s): %s", handoff_id, reason, exc)
        if detail:
            log.warning("hand-off %s failed: %s", handoff_id, detail)
        return self.get(handoff_id)

    def retry(
        self, handoff_id: str, agent_sees_id: str, links: Links, team: str | None = None
    ) -> HandOff:
        """Hand off again after one that did not happen, with the same details (to the same
        team, or ``team``): the agent need not type the customer's details twice."""
        doc = self.get(handoff_id)
        if doc is None or doc["agent_sees_id"] != agent_sees_id:
            raise UnknownHandOff("no such hand-off of yours")
        if doc["state"] != "failed":
            raise HandOffConflict("only a hand-off that did not happen can be tried again")
        customer = doc["customer"]
        body = {
            "team": team or doc["team"],
            "customer": {"name": customer["name"], "reference": customer["reference"]},
            "issue": doc["issue"],
            "need": (doc.get("need") or {}).get("id"),
            "need_detail": (doc.get("need") or {}).get("detail", ""),
            "callback": doc["callback"],
            "authorisation": doc["authorisation"],
        }
        return self.request(doc["call_sid"], agent_sees_id, body, links)

    def cancel(self, handoff_id: str, agent_sees_id: str, links: Links | None) -> HandOff:
        """The agent cancels a hand-off in progress."""
        doc = self.get(handoff_id)
        if doc is None:
            raise UnknownHandOff("no such hand-off")
        if doc["agent_sees_id"] != agent_sees_id:
            raise HandOffForbidden("only the VSTRS agent who asked may cancel it")
        result = self.fail(handoff_id, "cancelled", links)
        if result is None:
            raise HandOffConflict(f"the hand-off is {doc['state']}: too late to cancel")
        return result

    # ------------------------------------------------------------ the end of the call

    def agent_left(self, handoff_id: str) -> bool:
        """The agent left while ``handoff_id`` was under way. Leaving after the brief is how
        an agent hands over: the specialist takes the call if they are still there, else the
        hand-off fails. Leaving before it fails the hand-off (the caller comes back to no
        one). True when the hand-off settled what becomes of the caller."""
        handoff = self.get(handoff_id)
        if handoff is not None and handoff["state"] == "briefing":
            # (When the specialist hangs up, the conference ends and the agent's leg with
            # it; that callback may come first.)
            if self.vstrs.leg_live(handoff.get("specialist_call_sid")):
                self.complete(handoff_id, links=None, agent_sees_id=None)
            else:
                self.fail(handoff_id, "specialist_gone", links=None)
            return True
        self.fail(handoff_id, "agent_left", links=None)
        return False

    def call_ended(
        self,
        call_sid: str,
        reason: str,
        links: Links | None,
        record: CallRecord | None = None,
    ) -> None:
        """The caller's leg or conference ended: any hand-off stops, any grant ends.

        ``record`` is the call's VSTRS record when the caller has just read it.
        """
        if record is None:
            record = self.vstrs.get(call_sid)
        if record is None:
            return
        for handoff_id in record["handoffs"]:
            doc = self.get(handoff_id)
            if doc is None:
                continue
            if doc["state"] in IN_PROGRESS:
                self.fail(handoff_id, "caller_hung_up", links)
            elif doc["state"] == "taken_over":
                self._call_over(doc, reason)

    def _call_over(self, doc: HandOff, reason: str) -> None:
        """A taken-over call is over: its grant ends, the hand-off ends, the specialist is
        free (into their wrap-up)."""
        self.grants.end(doc.get("grant_id"), reason)
        ended = self._move(doc["id"], "end", reason=reason)
        taker = (doc.get("taken_by") or {}).get("id")
        if taker:
            self.staff.release_specialist(str(taker), doc["id"], self.now())
        if ended.written:
            # The event the specialist's console redraws on: the grant's ending came a
            # moment before the hand-off's, and a console that drew between the two would
            # otherwise show "not authorised now" on a live card until its next refresh.
            self._audit(
                "handoff.ended",
                doc["call_sid"],
                handoff=doc["id"],
                team=doc["team"],
                specialist=taker,
                outcome=reason,
            )

    def _grant_call_over(self, grant: Grant, reason: str) -> None:
        """A check found a grant's call over (or past its lifetime)."""
        doc = self.get(grant["handoff_id"])
        if doc is not None:
            self._call_over(doc, reason)
        else:
            self.grants.end(grant["id"], reason)

    # ------------------------------------------------------------ grants, as people ask

    def grant_for_call(self, call_sid: str, viewer: Viewer) -> dict[str, Any]:
        """The authority on a call now (fail closed), for the agent who took the call, the
        specialist who took a hand-off of it, or an admin (Forbidden for anyone else)."""
        record = self.vstrs.get(call_sid)
        if record is None:
            if not viewer.is_admin and viewer.role not in {"vstrs_agent", "specialist"}:
                raise Forbidden("only staff on the call may ask about its grant")
            return {"authorised": False, "reason": "unknown call"}
        docs = [d for d in (self.get(h) for h in record["handoffs"]) if d is not None]
        takers = {(d.get("taken_by") or {}).get("id") for d in docs} - {None}
        related = (
            viewer.is_admin
            or was_on_call(viewer, record)
            or (viewer.role == "specialist" and viewer.specialist in takers)
        )
        if not related:
            raise Forbidden(
                "this call is not yours: only its agent and the specialist who took it may ask"
            )
        grants = []
        for doc in docs:
            if viewer.role == "specialist" and not viewer.is_specialist(
                (doc.get("taken_by") or {}).get("id")
            ):
                continue
            grant = self.grants.get(doc.get("grant_id"))
            if grant is not None:
                grants.append(grant)
        return self.grants.for_call(grants, viewer)

    def grants_for_customer(self, reference: str, viewer: Viewer) -> dict[str, Any]:
        """Whether the asker may disclose about this customer now (callflow.handoff.grants)."""
        return self.grants.for_customer(reference, viewer)

    def grant_status(self, grant: Grant) -> dict[str, Any]:
        """Whether a grant authorises disclosure now."""
        return self.grants.status(grant)

    def active_grants(self) -> int:
        """How many grants are active (an index's size)."""
        return self.grants.active()

    def mark_doubt(self) -> None:
        """The store is back after failing: no grant authorises until re-checked."""
        self.grants.mark_doubt()

    def sweep(self) -> list[tuple[str, str]]:
        """End every active grant whose call is over or whose lifetime is up."""
        return self.grants.sweep()

    # ------------------------------------------------------------ counted

    def stats(self, viewer: Viewer) -> dict[str, Any]:
        """Hand-offs counted (they should stay rare): by organisation and their share of
        verified calls for everyone; by agent and by team as the asker may see them."""
        handoffs = self.store.counters("handoffs")
        verified = self.store.counters("verified_calls")
        by: dict[str, dict[str, int]] = {"organisation": {}, "agent": {}, "team": {}}
        for key, value in handoffs.items():
            kind, _, name = key.partition(":")
            target = {"org": "organisation", "agent": "agent", "team": "team"}.get(kind)
            if target:
                by[target][name] = value
        if not viewer.is_admin:
            by["agent"] = {k: v for k, v in by["agent"].items() if viewer.is_agent(k)}
            by["team"] = {k: v for k, v in by["team"].items() if viewer.is_team(k)}
        share = {
            key[4:]: round(by["organisation"].get(key[4:], 0) / count, 4)
            for key, count in verified.items()
            if key.startswith("org:") and count
        }
        total = handoffs.get("all", 0)
        total_verified = verified.get("all", 0)
        return {
            "handoffs": total,
            "verified_calls": total_verified,
            "share_of_verified_calls": round(total / total_verified, 4) if total_verified else 0.0,
            "by_organisation": by["organisation"],
            "by_agent": by["agent"],
            "by_team": by["team"],
            "share_by_organisation": share,
        }

    # ------------------------------------------------------------ what desks ask

    def live_for_team(self, team: str, count: int = 50) -> list[dict[str, Any]]:
        """A team's hand-offs under way or taken over (an index of the live ones alone)."""
        return self.store.indexed(NAMESPACE, f"live:team:{team}", count=count)

    def of_specialist(self, specialist_id: str, count: int = 10) -> list[HandOff]:
        """The hand-offs that rang or were taken by a specialist, newest first."""
        found = self.store.indexed(
            NAMESPACE, f"specialist:{specialist_id}", newest_first=True, count=count
        )
        return cast("list[HandOff]", found)
