"""Hand-offs: the warm transfer of a verified VSTRS call to a specialist team, the SEES ID
check, and the disclosure grant that lasts only as long as the handed-off call.

    requested -> ringing -> checking -> accepted -> briefing -> taken_over -> ended
                    |          |           |           |
                    +----------+-----------+-----------+--> failed (no_answer, busy,
                                                            declined, sees_id_mismatch,
                                                            cancelled, specialist_hung_up,
                                                            caller_hung_up, agent_left)

The caller is held in their own conference while the team's numbers are rung in order.
The specialist's leg runs ``flows/specialist_handoff.yaml``: it hears who is calling, keys
the SEES ID the agent gives them (it must be the agent on this call and an active VSTRS
agent), and accepts or declines. On acceptance the specialist joins the agent for the
brief; when the agent completes the hand-off (or leaves) the caller comes off hold and the
grant starts. It ends the moment the caller's or the specialist's leg ends or the
conference ends, whichever Twilio reports first; a maximum lifetime and ``callflow sweep``
back that up. Every step is audited; records are updated atomically, so callbacks may come
twice or in any order.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from stdnum.gb import utr

from .access import Forbidden, Viewer, grant_for_viewer, was_on_call
from .context import Services, ServiceUser
from .errors import CallflowError
from .twilio_adapter import FINAL_CALL_STATUSES
from .twiml import Links

log = logging.getLogger(__name__)

__all__ = ["HandOffError", "HandOffs", "validate_request"]

Doc = dict[str, Any] | None
#: Hand-offs and grants are kept about as long as the audit log, for HMRC's assurance
#: sampling; then they expire (personal data is never kept for ever).
RECORD_TTL = 400 * 24 * 3600
IN_PROGRESS = frozenset({"requested", "ringing", "checking", "accepted", "briefing"})
NINO = re.compile(r"^(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]$")
UTR = re.compile(r"^[0-9]{10}$")
#: How a grant's end reads to a specialist.
END_REASONS = {
    "completed": "the caller hung up",
    "caller_hung_up": "the caller hung up",
    "specialist_leg_completed": "your call leg ended",
    "participant-with-end-conference-on-exit-left": "the call ended",
    "participant-with-end-conference-on-exit-kicked": "the call was ended",
    "last-participant-left": "the call ended",
    "conference-ended-via-api": "the call was ended",
    "max_lifetime": "it reached its maximum lifetime",
}


def _leg_reason(reason: str) -> str | None:
    """``checked_caller_leg_completed`` -> "the caller's call ended (Twilio: completed)"."""
    match = re.fullmatch(r"(?:checked|swept)_(caller|specialist)_leg_([a-z-]+)", reason)
    if not match:
        return None
    whose = "the caller's" if match.group(1) == "caller" else "your"
    return f"{whose} call leg ended (Twilio: {match.group(2)})"


NO_AUTHORITY = (
    "no real-time hand-off from VSTRS is in progress for this customer: "
    "the usual authority requirements apply"
)


#: While this document exists, active grants do not authorise (see HandOffs.mark_doubt).
DOUBT = ("ops", "grant_doubt")
IN_DOUBT = (
    "the service lost its store for a while and this call may have ended unseen: not "
    "authorised until the call is confirmed live (the sweep checks within about 30 seconds)"
)


CANNOT_CONFIRM = (
    "cannot confirm the call is live now (Twilio could not be asked): not authorised; "
    "ask again in a moment"
)


@dataclass(frozen=True)
class LiveCheck:
    """What asking Twilio about a grant's legs found: confirmed (when), ended (the grant as
    it now stands), or neither (``why`` says what stopped the check)."""

    confirmed_at: float | None
    ended: dict[str, Any] | None
    why: str


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _checks_pool() -> ThreadPoolExecutor:
    """Threads that ask Twilio about legs in parallel (made after gunicorn forks)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="grant-check")
        return _POOL


class HandOffError(CallflowError):
    """A hand-off cannot be made or changed as asked."""

    def __init__(
        self, message: str, errors: dict[str, str] | None = None, status: int = 409
    ) -> None:
        super().__init__(message)
        self.errors = errors or {}
        self.status = status


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        return None
    return " ".join(value.split())


def validate_request(
    body: dict[str, Any], today: date | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The hand-off request's fields, cleaned, and an error for each bad one."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    today = today or date.today()
    team = body.get("team")
    if not isinstance(team, str) or not team:
        errors["team"] = "required: the specialist team's id"
    clean["team"] = team
    customer = body.get("customer")
    if not isinstance(customer, dict):
        errors["customer"] = "required: {name, reference}"
        customer = {}
    name = _text(customer.get("name"), 100)
    if name is None:
        errors["customer.name"] = "required, up to 100 characters"
    reference = customer.get("reference")
    ref_type, ref_value = None, None
    if isinstance(reference, str):
        folded = reference.replace(" ", "").upper()
        if UTR.match(folded):
            ref_type, ref_value = "utr", folded
        elif NINO.match(folded):
            ref_type, ref_value = "nino", folded
    if ref_type == "utr" and not utr.is_valid(str(ref_value)):
        # The first digit of a UTR checks the other nine: a mistyped one is caught here,
        # before a specialist discloses about the wrong customer.
        errors["customer.reference"] = (
            "that UTR's check digit does not match: check the 10 digits with the caller"
        )
    elif ref_type is None:
        errors["customer.reference"] = (
            "a UTR (10 digits) or a National Insurance number (like AB123456C)"
        )
    clean["customer"] = {"name": name, "reference_type": ref_type, "reference": ref_value}
    issue = _text(body.get("issue"), 2000)
    if issue is None:
        errors["issue"] = "required, up to 2000 characters"
    clean["issue"] = issue
    callback = body.get("callback", {})
    if not isinstance(callback, dict):
        errors["callback"] = "an object: {urgent, turnaround}"
        callback = {}
    urgent = callback.get("urgent", False)
    if not isinstance(urgent, bool):
        errors["callback.urgent"] = "true or false"
    turnaround = callback.get("turnaround", "")
    if turnaround and _text(turnaround, 200) is None:
        errors["callback.turnaround"] = "up to 200 characters, like '2 working days'"
    clean["callback"] = {"urgent": urgent is True, "turnaround": _text(turnaround, 200) or ""}
    authorisation = body.get("authorisation")
    if not isinstance(authorisation, dict):
        errors["authorisation"] = (
            "required: {type, date, reference} of the customer's authorisation"
        )
        authorisation = {}
    kind = authorisation.get("type")
    if kind not in {"signed", "recorded_oral"}:
        errors["authorisation.type"] = "signed or recorded_oral"
    given = authorisation.get("date")
    try:
        day = date.fromisoformat(given) if isinstance(given, str) else None
    except ValueError:
        day = None
    if day is None or day > today:
        errors["authorisation.date"] = "the date it was given, YYYY-MM-DD, not in the future"
    reference = _text(authorisation.get("reference"), 64)
    if reference is None:
        errors["authorisation.reference"] = (
            "the organisation's reference for it, up to 64 characters"
        )
    clean["authorisation"] = {"type": kind, "date": given, "reference": reference}
    unknown = set(body) - {"team", "customer", "issue", "callback", "authorisation"}
    for key in sorted(unknown):
        errors[key] = "unknown field"
    return clean, errors


def handoff_index(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """A hand-off's index entries: by team, by organisation, by state, and all of them."""
    at = doc["requested_at"]
    entries = [("all", at), (f"org:{doc['organisation']}", at)]
    if doc.get("team"):
        entries.append((f"team:{doc['team']}", at))
    if doc.get("state"):
        entries.append((f"state:{doc['state']}", doc.get("updated_at", at)))
    return entries


def grant_index(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """A grant's index entries: by customer, by call, by team, all, and the active ones."""
    at = doc["started_at"]
    entries = [
        (f"customer:{doc['customer']['reference']}", at),
        (f"call:{doc['call_sid']}", at),
        (f"team:{doc['team']}", at),
        ("all", at),
    ]
    if doc["ended_at"] is None:
        entries.append(("active", at))
    return entries


class HandOffs(ServiceUser):
    """Warm transfers and grants."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.store.define_index("handoffs", handoff_index, keep_seconds=RECORD_TTL)
        self.store.define_index("grants", grant_index, keep_seconds=RECORD_TTL)

    def get(self, handoff_id: str) -> dict[str, Any] | None:
        """A hand-off."""
        if not re.fullmatch(r"HO[0-9a-f]{16}", handoff_id or ""):
            return None
        return self.store.get_doc("handoffs", handoff_id)

    def _update(self, handoff_id: str, change: Any) -> dict[str, Any] | None:
        return self.store.update_doc("handoffs", handoff_id, change, ttl_seconds=RECORD_TTL)

    def _move(
        self, handoff_id: str, allowed: set[str] | frozenset[str], state: str, **fields: Any
    ) -> Doc:
        """Move a hand-off to ``state`` if it is in one of ``allowed``; None if it was not."""
        now = self.now()

        def change(d: Doc) -> Doc:
            if d is None or d["state"] not in allowed:
                return None
            history = [
                *d["history"],
                {"at": now, "state": state, **{k: v for k, v in fields.items() if k == "reason"}},
            ]
            return {**d, **fields, "state": state, "updated_at": now, "history": history}

        return self.store.change_doc("handoffs", handoff_id, change, ttl_seconds=RECORD_TTL).after

    # ------------------------------------------------------------ the agent asks

    def request(
        self, call_sid: str, agent_sees_id: str, body: dict[str, Any], links: Links
    ) -> dict[str, Any]:
        """The agent on ``call_sid`` asks for a warm transfer; the caller is held, the team rung."""
        clean, errors = validate_request(body, datetime.fromtimestamp(self.now(), UTC).date())
        team = self.staff.team(clean["team"]) if isinstance(clean["team"], str) else None
        if clean["team"] and "team" not in errors and (team is None or not team.active):
            errors["team"] = "no such specialist team"
        if errors:
            raise HandOffError("the hand-off request has errors", errors, status=422)
        assert team is not None
        if not team.is_open(self.now()):
            # Why, and when it reopens: "closed: bank holiday (Christmas Day); reopens ...".
            why = team.status_text(self.now())
            raise HandOffError(f"{team.name} is {why}", {"team": why}, 422)
        vstrs = self.services.vstrs
        assert vstrs is not None
        record = vstrs.get(call_sid)
        if (
            record is None
            or record["state"] not in {"with_agent"}
            or record["ended_at"] is not None
        ):
            raise HandOffError("the call is not with a VSTRS agent now")
        agent = record["agent"]
        if agent is None or agent["sees_id"] != agent_sees_id or agent.get("left_at"):
            raise HandOffError("only the VSTRS agent on this call may hand it off", status=403)
        verified = record["verified"]
        adviser = self.services.directory.get(verified["adviser_number"])
        representative: dict[str, Any] = {
            "name": verified["adviser_name"],
            "adviser_number": verified["adviser_number"],
        }
        if verified["consent_to_act"] and adviser is not None:
            representative.update(phone=adviser.phone, email=adviser.email)
        handoff_id = "HO" + secrets.token_hex(8)
        now = self.now()
        doc = {
            "id": handoff_id,
            "call_sid": call_sid,
            "conference": record["conference"],
            "conference_sid": record["conference_sid"],
            "team": team.id,
            "team_name": team.name,
            # Rung in order: a Welsh call's team numbers answered in Welsh first.
            "numbers": team.numbers_for(record.get("language")),
            "agent_sees_id": agent["sees_id"],
            "agent_name": agent["name"],
            "agent_call_sid": agent["call_sid"],
            "customer": clean["customer"],
            "organisation": verified["organisation"],
            "organisation_name": verified["organisation_name"],
            "representative": representative,
            "consent_to_act": verified["consent_to_act"],
            # The call's language: the specialist is rung with the whisper in it, and it
            # goes on the grant, so a Welsh call is served in Welsh after the hand-off.
            "language": record.get("language") or "en-GB",
            "relay": bool(record.get("relay")),
            "issue": clean["issue"],
            "callback": clean["callback"],
            "authorisation": clean["authorisation"],
            "state": "requested",
            "reason": None,
            "requested_at": now,
            "updated_at": now,
            "ringing": None,
            "tried": [],
            "specialist_call_sid": None,
            "grant_id": None,
            "history": [{"at": now, "state": "requested"}],
        }

        def claim(d: Doc) -> Doc:
            if d is None or d["state"] != "with_agent" or d.get("active_handoff"):
                return None
            return {
                **d,
                "state": "transferring",
                "active_handoff": handoff_id,
                "handoffs": [*d["handoffs"], handoff_id],
            }

        if not vstrs._change(call_sid, claim).written:
            raise HandOffError("another hand-off is already under way on this call")
        self.store.put_doc("handoffs", handoff_id, doc, ttl_seconds=RECORD_TTL)
        self._audit(
            "handoff.requested",
            call_sid,
            handoff=handoff_id,
            team=team.id,
            agent=agent["sees_id"],
            organisation=verified["organisation"],
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
            raise HandOffError("could not put the caller on hold; nothing was handed off") from exc
        self._ring(handoff_id, links)
        result = self.get(handoff_id)
        assert result is not None
        return result

    # ------------------------------------------------------------ ringing the team

    def _ring(self, handoff_id: str, links: Links) -> None:
        """Ring the team's next number, in order; none left: the hand-off fails."""
        doc = self.get(handoff_id)
        if doc is None or doc["state"] not in {"requested", "ringing"}:
            return
        remaining = [n for n in doc["numbers"] if n not in doc["tried"]]
        if not remaining:
            last = doc["history"][-1].get("reason") or "no_answer"
            self.fail(
                handoff_id, last if last in {"busy", "no_answer", "failed"} else "no_answer", links
            )
            return
        number = remaining[0]
        try:
            leg = self.services.twilio().create_call(
                to=number,
                from_=self.settings.vstrs_number,
                url=links.incoming(
                    "specialist_handoff", handoff_id, doc.get("language") or None
                ),
                status_callback=links.leg_status("specialist", doc["call_sid"]),
                timeout=self.settings.agent_ring_seconds,
            )
        except CallflowError as exc:
            log.error("hand-off %s: could not ring %s: %s", handoff_id, number, exc)
            self._update(handoff_id, lambda d: {**d, "tried": [*d["tried"], number]} if d else None)
            self._ring(handoff_id, links)
            return

        def ringing(d: Doc) -> Doc:
            if d is None or d["state"] not in {"requested", "ringing"}:
                return None
            return {
                **d,
                "state": "ringing",
                "ringing": {"number": number, "call_sid": leg, "since": self.now()},
                "tried": [*d["tried"], number],
                "updated_at": self.now(),
            }

        self._update(handoff_id, ringing)
        self._audit(
            "handoff.ringing",
            doc["call_sid"],
            handoff=handoff_id,
            team=doc["team"],
            outcome="ringing",
        )

    def specialist_leg_status(self, call_sid: str, leg_sid: str, status: str, links: Links) -> None:
        """A status callback for a specialist's leg on ``call_sid``."""
        vstrs = self.services.vstrs
        assert vstrs is not None
        record = vstrs.get(call_sid)
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
        self, doc: dict[str, Any], leg_sid: str, status: str, links: Links
    ) -> None:
        handoff_id, call_sid = doc["id"], doc["call_sid"]
        if status in {"in-progress", "answered"} and doc["state"] == "ringing":
            self._move(handoff_id, {"ringing"}, "checking", specialist_call_sid=leg_sid)
            self._audit(
                "handoff.answered",
                call_sid,
                handoff=handoff_id,
                team=doc["team"],
                outcome="answered",
            )
            return
        if status not in FINAL_CALL_STATUSES:
            return
        if doc["state"] == "ringing" and doc["specialist_call_sid"] is None:
            outcome = {"busy": "busy", "failed": "failed"}.get(status, "no_answer")
            self._update(
                handoff_id,
                lambda d: (
                    {
                        **d,
                        "ringing": None,
                        "history": [
                            *d["history"],
                            {"at": self.now(), "state": "ringing", "reason": outcome},
                        ],
                    }
                    if d
                    else None
                ),
            )
            self._audit(
                "handoff.ring_outcome",
                call_sid,
                handoff=handoff_id,
                team=doc["team"],
                outcome=outcome,
            )
            self._ring(handoff_id, links)
        elif doc["state"] in {"ringing", "checking", "accepted", "briefing"}:
            self.fail(handoff_id, "specialist_hung_up", links)
        elif doc["state"] == "taken_over":
            self.end_grant(doc.get("grant_id"), "specialist_leg_completed")
            self._move(handoff_id, {"taken_over"}, "ended", reason="specialist_leg_completed")

    # ------------------------------------------------------------ the specialist's flow

    def for_specialist(self, handoff_id: str) -> dict[str, Any] | None:
        """The hand-off a specialist's leg is about, if it is still waiting for them."""
        doc = self.get(handoff_id)
        if doc is None or doc["state"] not in {"ringing", "checking"}:
            return None
        return doc

    def check_sees_id(self, handoff_id: str, keyed: str, specialist_call_sid: str) -> bool:
        """Whether ``keyed`` is the SEES ID of the agent on this call and an active VSTRS agent."""
        doc = self.get(handoff_id)
        if doc is None:
            return False
        agent = self.staff.agent(keyed) if keyed else None
        matched = bool(agent and agent.active and keyed == doc["agent_sees_id"])
        self._audit(
            "handoff.sees_check",
            doc["call_sid"],
            handoff=handoff_id,
            team=doc["team"],
            agent=doc["agent_sees_id"],
            outcome="match" if matched else "mismatch",
        )
        return matched

    def accept(self, handoff_id: str, specialist_call_sid: str) -> dict[str, Any] | None:
        """The specialist checked the SEES ID and accepted: they join the agent for the brief."""
        doc = self._move(
            handoff_id, {"ringing", "checking"}, "accepted", specialist_call_sid=specialist_call_sid
        )
        if doc is not None:
            self._audit(
                "handoff.accepted",
                doc["call_sid"],
                handoff=handoff_id,
                team=doc["team"],
                outcome="accepted",
            )
        return doc

    def specialist_joined(self, call_sid: str, leg_sid: str) -> None:
        """The specialist's leg is in the caller's conference (the caller still held)."""
        vstrs = self.services.vstrs
        assert vstrs is not None
        record = vstrs.get(call_sid)
        handoff_id = record.get("active_handoff") if record else None
        if not handoff_id:
            return
        doc = self._move(handoff_id, {"accepted"}, "briefing")
        if doc is not None and doc["specialist_call_sid"] == leg_sid:
            self._audit(
                "handoff.briefing", call_sid, handoff=handoff_id, team=doc["team"], outcome="joined"
            )

    def complete(
        self, handoff_id: str, links: Links | None, by_agent_leaving: bool = False
    ) -> dict[str, Any]:
        """The brief is over: the caller comes off hold, the agent leaves, the grant starts.

        The grant and its audit entry are written first: if either cannot be, nothing is
        handed over and the caller stays held with the agent and the specialist (fail closed).
        """
        current = self.get(handoff_id)
        if current is None or current["state"] != "briefing":
            raise HandOffError(
                f"the hand-off is {current['state'] if current else 'unknown'}, not in its brief"
            )
        grant_id = self.issue_grant(current)
        doc = self._move(handoff_id, {"briefing"}, "taken_over", grant_id=grant_id)
        if doc is None:  # something ended the hand-off meanwhile: the grant goes at once
            self.end_grant(grant_id, "handoff_ended_before_take_over")
            raise HandOffError("the hand-off ended before the take-over")
        call_sid = doc["call_sid"]
        vstrs = self.services.vstrs
        assert vstrs is not None
        vstrs._update(
            call_sid, lambda d: {**d, "state": "handed_off", "active_handoff": None} if d else None
        )
        twilio = self.services.twilio()
        conference = doc["conference_sid"] or doc["conference"]
        try:
            twilio.hold(conference, call_sid, False)
            # Twilio took the caller off hold in a conference the specialist's leaving would
            # have ended: both legs are live now, by Twilio's word.
            confirmed = self.now()
            self.store.update_doc(
                "grants",
                grant_id,
                lambda d: (
                    {**d, "confirmed_live_at": confirmed} if d and not d["ended_at"] else None
                ),
                ttl_seconds=RECORD_TTL,
            )
            if not by_agent_leaving:
                twilio.remove_participant(conference, doc["agent_call_sid"])
        except CallflowError as exc:
            log.error("hand-off %s: taking over: %s", handoff_id, exc)
        self._audit(
            "handoff.taken_over",
            call_sid,
            handoff=handoff_id,
            team=doc["team"],
            outcome="taken_over",
        )
        result = self.get(handoff_id)
        assert result is not None
        return result

    def fail(
        self, handoff_id: str, reason: str, links: Links | None, detail: str = ""
    ) -> dict[str, Any] | None:
        """The hand-off did not happen: the caller comes back to the agent; nothing is granted."""
        doc = self._move(handoff_id, IN_PROGRESS, "failed", reason=reason)
        if doc is None:
            return None
        call_sid = doc["call_sid"]
        vstrs = self.services.vstrs
        assert vstrs is not None

        def back_to_agent(d: Doc) -> Doc:
            if d is None or d.get("active_handoff") != handoff_id or d["state"] != "transferring":
                return None
            agent_here = bool(d["agent"]) and not d["agent"].get("left_at")
            return {
                **d,
                "state": "with_agent" if agent_here else "agent_left",
                "active_handoff": None,
            }

        back = vstrs._update(call_sid, back_to_agent)
        self._audit(
            "handoff.failed", call_sid, handoff=handoff_id, team=doc["team"], outcome=reason
        )
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
    ) -> dict[str, Any]:
        """Ask again for a transfer that did not happen, with the same details (to the same
        team, or ``team``): the agent need not type the customer's details twice."""
        doc = self.get(handoff_id)
        if doc is None or doc["agent_sees_id"] != agent_sees_id:
            raise HandOffError("no such hand-off of yours", status=404)
        if doc["state"] != "failed":
            raise HandOffError("only a transfer that did not happen can be tried again")
        customer = doc["customer"]
        body = {
            "team": team or doc["team"],
            "customer": {"name": customer["name"], "reference": customer["reference"]},
            "issue": doc["issue"],
            "callback": doc["callback"],
            "authorisation": doc["authorisation"],
        }
        return self.request(doc["call_sid"], agent_sees_id, body, links)

    def cancel(self, handoff_id: str, agent_sees_id: str, links: Links | None) -> dict[str, Any]:
        """The agent cancels a hand-off in progress."""
        doc = self.get(handoff_id)
        if doc is None:
            raise HandOffError("no such hand-off", status=404)
        if doc["agent_sees_id"] != agent_sees_id:
            raise HandOffError("only the VSTRS agent who asked may cancel it", status=403)
        result = self.fail(handoff_id, "cancelled", links)
        if result is None:
            raise HandOffError(f"the hand-off is {doc['state']}: too late to cancel")
        return result

    def call_ended(
        self,
        call_sid: str,
        reason: str,
        links: Links | None,
        record: dict[str, Any] | None = None,
    ) -> None:
        """The caller's leg or conference ended: any hand-off stops, any grant ends.

        ``record`` is the call's VSTRS record when the caller has just read it.
        """
        vstrs = self.services.vstrs
        assert vstrs is not None
        if record is None:
            record = vstrs.get(call_sid)
        if record is None:
            return
        for handoff_id in record["handoffs"]:
            doc = self.get(handoff_id)
            if doc is None:
                continue
            if doc["state"] in IN_PROGRESS:
                self.fail(handoff_id, "caller_hung_up", links)
            elif doc["state"] == "taken_over":
                self.end_grant(doc.get("grant_id"), reason)
                self._move(handoff_id, {"taken_over"}, "ended", reason=reason)

    # ------------------------------------------------------------ grants

    def issue_grant(self, handoff: dict[str, Any]) -> str:
        """Record the authority to disclose as if a 64-8 were on record, for this call only."""
        grant_id = "GR" + secrets.token_hex(8)
        now = self.now()
        grant = {
            "id": grant_id,
            "handoff_id": handoff["id"],
            "call_sid": handoff["call_sid"],
            "specialist_call_sid": handoff["specialist_call_sid"],
            "conference": handoff["conference"],
            "customer": handoff["customer"],
            "organisation": handoff["organisation"],
            "organisation_name": handoff["organisation_name"],
            "representative": {k: handoff["representative"][k] for k in ("name", "adviser_number")},
            "team": handoff["team"],
            "team_name": handoff["team_name"],
            "agent_sees_id": handoff["agent_sees_id"],
            "language": handoff.get("language") or "en-GB",
            "relay": bool(handoff.get("relay")),
            "started_at": now,
            "max_until": now + self.settings.grant_max_seconds,
            "ended_at": None,
            "end_reason": None,
            "confirmed_live_at": None,
        }
        # The audit entry first: a grant nobody can account for must never exist.
        self._audit(
            "grant.issued",
            handoff["call_sid"],
            grant=grant_id,
            handoff=handoff["id"],
            team=handoff["team"],
            agent=handoff["agent_sees_id"],
            language=grant["language"],
            relay=grant["relay"],
            outcome="active",
        )
        self.store.put_doc("grants", grant_id, grant, ttl_seconds=RECORD_TTL)
        return grant_id

    def end_grant(self, grant_id: str | None, reason: str) -> None:
        """End a grant (once; later callbacks change nothing)."""
        if not grant_id:
            return
        now = self.now()

        def end(d: Doc) -> Doc:
            if d is None or d["ended_at"] is not None:
                return None
            return {**d, "ended_at": now, "end_reason": reason}

        changed = self.store.change_doc("grants", grant_id, end, ttl_seconds=RECORD_TTL)
        ended = changed.before
        if changed.written and ended is not None:
            self._audit(
                "grant.ended",
                ended["call_sid"],
                grant=grant_id,
                handoff=ended["handoff_id"],
                team=ended["team"],
                organisation=ended["organisation"],
                minutes=round((now - ended["started_at"]) / 60, 2),
                outcome=reason,
            )

    def grant_status(self, grant: dict[str, Any]) -> dict[str, Any]:
        """Whether a grant authorises disclosure now, and why not if it does not.

        "Authorised" is never based on leg liveness older than the freshness setting
        (``CALLFLOW_GRANT_FRESHNESS``, 10 s): when no callback or Twilio fetch has
        confirmed both legs within it, Twilio is asked for both (in parallel, within
        ``CALLFLOW_GRANT_CHECK_BUDGET``) before answering; if it cannot be asked, the
        answer is no. The answer carries ``confirmed_live_at``.
        """
        now = self.now()
        ended = self._not_authorised(grant, now)
        if ended is not None:
            return ended
        confirmed = grant.get("confirmed_live_at")
        if confirmed is None or now - confirmed > self.settings.grant_freshness_seconds:
            check = self.confirm_live(grant)
            if check.ended is not None:
                return self._not_authorised(check.ended, now) or self._ended_answer(check.ended)
            if check.confirmed_at is None:
                return {
                    "authorised": False,
                    "reason": CANNOT_CONFIRM,
                    "confirmed_live_at": confirmed,
                }
            confirmed = check.confirmed_at
        return {
            "authorised": True,
            "to": {"team": grant["team"], "team_name": grant["team_name"]},
            "since": grant["started_at"],
            "confirmed_live_at": confirmed,
        }

    def _ended_answer(self, grant: dict[str, Any]) -> dict[str, Any]:
        reason = grant.get("end_reason") or "ended"
        why = END_REASONS.get(reason) or _leg_reason(reason) or reason.replace("_", " ")
        return {
            "authorised": False,
            "reason": (
                f"the handed-off call is over ({why}): the usual authority requirements apply"
            ),
            "confirmed_live_at": grant.get("confirmed_live_at"),
        }

    def _not_authorised(self, grant: dict[str, Any], now: float) -> dict[str, Any] | None:
        """The answer for a grant that cannot authorise whatever its legs say, else None."""
        if grant["ended_at"] is not None:
            return self._ended_answer(grant)
        if now >= grant["max_until"]:
            return {
                "authorised": False,
                "reason": "past the grant's maximum lifetime",
                "confirmed_live_at": grant.get("confirmed_live_at"),
            }
        if self.store.get_doc(*DOUBT) is not None:
            return {
                "authorised": False,
                "reason": IN_DOUBT,
                "confirmed_live_at": grant.get("confirmed_live_at"),
            }
        return None

    def confirm_live(self, grant: dict[str, Any], by: str = "checked") -> LiveCheck:
        """Ask Twilio for both legs of a grant at once, within the check budget.

        Both in progress: the confirmation is recorded on the grant (and any doubt the
        sweep raised is lifted). A leg over: the grant ends now. Otherwise (Twilio
        unreachable, slow, a leg unknown): nothing is confirmed.
        """
        legs = {"caller": grant.get("call_sid"), "specialist": grant.get("specialist_call_sid")}
        if not all(legs.values()):
            return LiveCheck(None, None, "a leg of the call is not known")
        try:
            twilio = self.services.twilio()
        except CallflowError as exc:
            return LiveCheck(None, None, f"Twilio cannot be asked: {exc}")
        pool = _checks_pool()
        futures = {role: pool.submit(twilio.call_status, str(sid)) for role, sid in legs.items()}
        done, _ = wait(futures.values(), timeout=self.settings.grant_check_budget_seconds)
        statuses: dict[str, str] = {}
        problems = []
        for role, future in futures.items():
            if future not in done:
                future.cancel()
                problems.append(f"{role} leg: Twilio did not answer in time")
            elif future.exception() is not None:
                problems.append(f"{role} leg: {future.exception()}")
            else:
                statuses[role] = str(future.result())
        for role, status in statuses.items():
            if status in FINAL_CALL_STATUSES:
                reason = f"{by}_{role}_leg_{status}"
                self.end_grant(grant["id"], reason)
                self._move(grant["handoff_id"], {"taken_over"}, "ended", reason=reason)
                return LiveCheck(None, self.store.get_doc("grants", grant["id"]), reason)
        if problems or any(status != "in-progress" for status in statuses.values()):
            why = "; ".join(problems) or ", ".join(f"{r} leg {s}" for r, s in statuses.items())
            log.warning("grant %s: cannot confirm its call is live: %s", grant["id"], why)
            return LiveCheck(None, None, why)
        now = self.now()
        self.store.update_doc(
            "grants",
            grant["id"],
            lambda d: (
                {**d, "confirmed_live_at": now, "unconfirmed_since": None}
                if d and d["ended_at"] is None
                else None
            ),
            ttl_seconds=RECORD_TTL,
        )
        return LiveCheck(now, None, "")

    def _grants_of(self, record: dict[str, Any], viewer: Viewer) -> list[dict[str, Any]]:
        """The grants on a call's hand-offs that this person may ask about."""
        grants: list[dict[str, Any]] = []
        for handoff_id in record["handoffs"]:
            handoff = self.get(handoff_id)
            if handoff is None or not handoff["grant_id"]:
                continue
            if viewer.role == "specialist" and not viewer.is_team(handoff["team"]):
                continue
            grant = self.store.get_doc("grants", handoff["grant_id"])
            if grant is not None:
                grants.append(grant)
        return grants

    def grant_for_call(self, call_sid: str, viewer: Viewer) -> dict[str, Any]:
        """The authority on a call now (fail closed), for the agent who took the call, the
        specialists of a team it was handed to, or an admin (Forbidden for anyone else)."""
        vstrs = self.services.vstrs
        assert vstrs is not None
        record = vstrs.get(call_sid)
        if record is None:
            if not viewer.is_admin and viewer.role not in {"vstrs_agent", "specialist"}:
                raise Forbidden("only staff on the call may ask about its grant")
            return {"authorised": False, "reason": "unknown call"}
        teams = set()
        for handoff_id in record["handoffs"]:
            handoff = self.get(handoff_id)
            if handoff is not None:
                teams.add(handoff["team"])
        related = (
            viewer.is_admin
            or was_on_call(viewer, record)
            or (viewer.role == "specialist" and viewer.team in teams)
        )
        if not related:
            raise Forbidden("this call is not yours: only its agent and its team may ask")
        grants = self._grants_of(record, viewer)
        if not grants:
            return {
                "authorised": False,
                "reason": "this call has not been handed off to a specialist",
            }
        latest = max(grants, key=lambda g: g["started_at"])
        return grant_for_viewer(viewer, latest, self.grant_status(latest))

    def grants_for_customer(self, reference: str, viewer: Viewer) -> dict[str, Any]:
        """Whether the asker's team (an admin: anyone) may disclose about this customer now.

        A specialist sees only their own team's grants, and gets no customer name or
        reference back (they sent it); a VSTRS agent may not ask.
        """
        if not (viewer.is_admin or viewer.role == "specialist"):
            raise Forbidden("only specialists and admins may ask about a customer's grants")
        folded = (reference or "").replace(" ", "").upper()
        grants = [
            g
            for g in self.store.indexed("grants", f"customer:{folded}")
            if viewer.is_admin or viewer.is_team(g["team"])
        ]
        statuses = [
            grant_for_viewer(viewer, g, self.grant_status(g), brief=not viewer.is_admin)
            for g in sorted(grants, key=lambda g: g["started_at"])
        ]
        if any(s["authorised"] for s in statuses):
            return {"authorised": True, "grants": statuses}
        return {"authorised": False, "reason": NO_AUTHORITY, "grants": statuses}

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

    # ------------------------------------------------------------ the backstop sweep

    def mark_doubt(self) -> None:
        """The store failed and is back: call ends may have been lost meanwhile.

        A status callback that arrived while Redis was unreachable could not end its grant,
        and Twilio does not send it again. So no active grant authorises until the sweep
        has asked Twilio that its legs are still live (fail closed, never kept by doubt).
        """
        log.warning("store recovered: active grants suspended until their calls are re-checked")
        self.store.put_doc(DOUBT[0], DOUBT[1], {"since": self.now(), "id": secrets.token_hex(8)})

    def active_grants(self) -> int:
        """How many grants are active (an index's size: never a scan)."""
        return self.store.index_size("grants", "active")

    def sweep(self) -> list[tuple[str, str]]:
        """End every active grant whose legs are over or whose lifetime is up (it reads the
        active grants' index alone).

        For lost callbacks: asks Twilio for both legs of each active grant. A grant whose
        legs cannot be checked is in doubt: it stops authorising until they can be (its
        next question asks Twilio again), and the doubt is audited once. Returns (grant
        id, reason) for each grant it ended.
        """
        ended: list[tuple[str, str]] = []
        now = self.now()
        doubt = self.store.get_doc(*DOUBT)
        unchecked = 0
        for grant in self.store.indexed("grants", "active"):
            if grant["ended_at"] is not None:
                continue
            if now >= grant["max_until"]:
                self.end_grant(grant["id"], "max_lifetime")
                self._move(grant["handoff_id"], {"taken_over"}, "ended", reason="max_lifetime")
                ended.append((grant["id"], "max_lifetime"))
                continue
            check = self.confirm_live(grant, by="swept")
            if check.ended is not None:
                ended.append((grant["id"], check.why))
            elif check.confirmed_at is None:
                unchecked += 1
                self._doubt(grant, check.why)
        current = self.store.get_doc(*DOUBT)
        if doubt is not None and current == doubt and not unchecked:
            self.store.delete_doc(*DOUBT)
            log.warning("sweep: every active grant's call re-checked after a store outage")
        return ended

    def _doubt(self, grant: dict[str, Any], why: str) -> None:
        """The sweep could not check a grant's legs: it stops authorising; audited once."""
        now = self.now()

        def doubt(d: Doc) -> Doc:
            if d is None or d["ended_at"] is not None or d.get("unconfirmed_since"):
                return None
            return {**d, "unconfirmed_since": now, "confirmed_live_at": None}

        if self.store.change_doc("grants", grant["id"], doubt, ttl_seconds=RECORD_TTL).written:
            log.warning("sweep: grant %s in doubt: %s", grant["id"], why)
            self._audit(
                "grant.unconfirmed",
                grant["call_sid"],
                grant=grant["id"],
                handoff=grant["handoff_id"],
                team=grant["team"],
                outcome="cannot_check",
            )
