"""Call-backs that keep the caller's place in the queue.

A verified adviser whom no agent could take (the wait ran out, or they pressed 1 when the
flow offered a call-back) is owed a call-back. The call-back keeps their place: the queue
is ordered by when each caller first rang, live callers and call-backs together (see
``VstrsCalls.ahead``), per language.

``dispatch`` (``callflow callbacks run``, a worker) places a call-back when it is its turn
and an agent who speaks its language is free, and only while the VSTRS line is open. It
rings the adviser's *registered* number, read from the directory at that moment: never a
number keyed or presented on the call (anyone can present any number). The call runs
``vstrs_callback``, which verifies the adviser again (adviser number, which must be the
adviser the call-back is for; PIN; security question) before they join the queue, in the
call's language. An attempt that reaches nobody, or whose verification fails, is retried on
a schedule (CALLFLOW_CALLBACK_RETRIES); when the schedule runs out, or the call-back is
older than CALLFLOW_CALLBACK_EXPIRY_HOURS, it is dropped. Every step is audited.

States: ``to_call_back`` (waiting its turn) -> ``calling`` (the adviser's phone rings, or
they are verifying) -> ``in_queue`` (verified, waiting for the agent) -> ``done`` (an agent
joined); from ``calling`` or ``in_queue``: ``retry_wait`` (its next try at
``next_attempt_at``, then back to ``to_call_back`` with the same place) or ``dropped``;
``cancelled`` by staff from any open state.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from .context import Services, ServiceUser
from .errors import CallflowError, Conflict, DirectoryError, NotFound
from .language import DEFAULT as DEFAULT_LANGUAGE
from .links import ServiceLinks
from .outbound import OutboundCalls, attempt
from .queue import Waiting
from .records import Callback
from .store.base import Changed
from .twilio_adapter import FINAL_CALL_STATUSES

__all__ = ["FLOW", "OPEN", "Callbacks", "dialable"]

log = logging.getLogger(__name__)

NAMESPACE = "callbacks"
RECORD_TTL = 30 * 24 * 3600
#: The flow a call-back runs (it verifies the adviser again).
FLOW = "vstrs_callback"
#: Holding a place in the queue: waiting for its turn, or being rung for it.
WAITING = frozenset({"to_call_back", "calling"})
#: Not settled yet (what the agents' console lists).
OPEN = WAITING | {"in_queue", "retry_wait"}
#: Settled without reaching an agent: a supervisor may reopen it (its place kept).
REOPENABLE = frozenset({"dropped", "cancelled"})
#: How long the adviser's phone rings.
RING_SECONDS = 30
#: How long one placing holds the call-back before another worker may try.
CLAIM_SECONDS = 120
#: A call-back still "calling" this long with no word from Twilio: ask Twilio how it ended.
#: Short, because a call-back being rung or verified holds its place, and live callers
#: behind it wait (ringing and verifying again take two or three minutes at most).
STUCK_SECONDS = 5 * 60
#: The worker's heartbeat lives this long: while it does, live callers leave the agents to
#: call-backs ahead of them (with no worker running, nobody would place those).
HEARTBEAT_SECONDS = 60
HEARTBEAT = "callbacks:dispatcher"
LONDON = ZoneInfo("Europe/London")
_UK_LOCAL = re.compile(r"^0[1-9][0-9]{8,9}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def dialable(phone: str) -> str | None:
    """A registered phone number as Twilio dials it (E.164), or None when it cannot be:
    ``+44 20 7946 0000`` and ``020 7946 0000`` both give ``+442079460000``."""
    compact = re.sub(r"[ ()-]", "", phone or "")
    if _E164.match(compact):
        return compact
    if _UK_LOCAL.match(compact):
        return "+44" + compact[1:]
    return None


def callback_index(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """A call-back's entries: its place while it holds one (by when the caller first rang,
    per language), every open one (for the console), retries by when they are due, and
    calls in progress (to settle one whose end was never reported)."""
    status = doc.get("status")
    arrived = float(doc.get("arrived_at") or doc.get("noted_at") or 0)
    entries: list[tuple[str, float]] = []
    if status in WAITING:
        entries.append((f"waiting:{doc.get('language') or DEFAULT_LANGUAGE}", arrived))
    if status in OPEN:
        entries.append(("open", arrived))
        entries.append((f"adviser:{doc['adviser_number']}", arrived))
    if status == "retry_wait" and doc.get("next_attempt_at") is not None:
        entries.append(("due", float(doc["next_attempt_at"])))
    if status == "calling" and doc.get("attempts"):
        entries.append(("calling", float(doc["attempts"][-1]["at"])))
    if status in REOPENABLE and doc.get("ended_at") is not None:
        entries.append(("closed", float(doc["ended_at"])))  # a supervisor may reopen it
    return entries


def _tried(doc: dict[str, Any] | None, call_sid: str, result: str) -> list[Any] | None:
    """A call-back's tries with the current one's result set; None unless ``call_sid`` is
    its current try."""
    attempts = doc["attempts"] if doc else []
    if not attempts or attempts[-1]["call_sid"] != call_sid:
        return None
    return [*attempts[:-1], {**attempts[-1], "result": result}]


class Callbacks(ServiceUser):
    """Call-backs owed to verified advisers: noted, placed in turn, retried, dropped."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.outbound = OutboundCalls(services.store, services.twilio, services.clock)
        self.store.define_index(NAMESPACE, callback_index, keep_seconds=RECORD_TTL)

    # ------------------------------------------------------------ reading

    def _change(self, callback_id: str, change: Any) -> Changed:
        return self.store.change_doc(NAMESPACE, callback_id, change, ttl_seconds=RECORD_TTL)

    def get(self, callback_id: str) -> Callback | None:
        """A call-back's record."""
        return cast("Callback | None", self.store.get_doc(NAMESPACE, callback_id))

    def require(self, callback_id: str) -> Callback:
        """A call-back's record, or a clear error."""
        doc = self.get(callback_id)
        if doc is None:
            raise DirectoryError(f"no call-back {callback_id}")
        return doc

    def open(self, offset: int = 0, count: int = 20) -> list[dict[str, Any]]:
        """Call-backs not settled yet, in their callers' order (a page)."""
        return self.store.indexed(NAMESPACE, "open", offset=offset, count=count)

    def count_open(self) -> int:
        """How many call-backs are not settled yet (an index's size)."""
        return self.store.index_size(NAMESPACE, "open")

    def dispatcher_running(self) -> bool:
        """Whether a worker is placing call-backs (its heartbeat is fresh)."""
        return self.store.claimed_by(HEARTBEAT) is not None

    def placing_now(self) -> bool:
        """Whether call-backs are being placed now: a worker runs and the line is open.
        Otherwise nobody places them, and live callers must not wait behind them."""
        return self.dispatcher_running() and self.line_open(self.now())

    @staticmethod
    def holding_index(language: str) -> tuple[str, str]:
        """The index of the call-backs in ``language`` holding a place in the queue."""
        return NAMESPACE, f"waiting:{language}"

    def holding_places(self, language: str, before: float) -> int:
        """How many call-backs in ``language`` hold a place ahead of ``before`` (none while
        they are not being placed: see :meth:`placing_now`)."""
        if not self.placing_now():
            return 0
        return self.store.index_size(*self.holding_index(language), max_score=before)

    @staticmethod
    def public(doc: dict[str, Any]) -> dict[str, Any]:
        """A call-back as staff see it: who, their place, where it stands; never a number."""
        attempts = doc.get("attempts", [])
        return {
            "id": doc["id"],
            "adviser_number": doc["adviser_number"],
            "adviser_name": doc["adviser_name"],
            "organisation": doc["organisation"],
            "organisation_name": doc.get("organisation_name", ""),
            "language": doc.get("language") or DEFAULT_LANGUAGE,
            "relay": bool(doc.get("relay")),
            "reason": doc.get("reason", "no_agent"),
            "arrived_at": doc["arrived_at"],
            "noted_at": doc["noted_at"],
            "status": doc["status"],
            "attempts": len(attempts),
            "last_result": attempts[-1]["result"] if attempts else None,
            "next_attempt_at": doc.get("next_attempt_at"),
            "ended_reason": doc.get("ended_reason"),
        }

    # ------------------------------------------------------------ noting one

    def note(
        self,
        call_sid: str,
        verified: dict[str, Any],
        *,
        arrived_at: float,
        language: str,
        relay: bool,
        routing: dict[str, Any] | None,
        reason: str,
    ) -> Callback | None:
        """Owe the verified caller of ``call_sid`` a call-back that keeps their place.

        None when one cannot be made: the adviser has no registered number the service can
        dial (audited). The call-back is keyed by the call, so a repeated request notes it
        once."""
        adviser_number = verified["adviser_number"]
        adviser = self.services.directory.get(adviser_number)
        if adviser is None or dialable(adviser.phone) is None:
            self._audit(
                "callback.not_possible",
                call_sid,
                adviser=adviser_number,
                outcome="no_registered_number",
            )
            return None
        now = self.now()
        doc = {
            "id": call_sid,
            "call_sid": call_sid,
            "adviser_number": adviser_number,
            "adviser_name": verified["adviser_name"],
            "organisation": verified["organisation"],
            "organisation_name": verified.get("organisation_name", ""),
            "language": language or DEFAULT_LANGUAGE,
            "relay": bool(relay),
            "routing": dict(routing or {}),
            # Their place in the queue: when they first rang, not when they gave up.
            "arrived_at": arrived_at,
            "noted_at": now,
            "reason": reason,
            "status": "to_call_back",
            "attempts": [],
            "next_attempt_at": None,
            "expires_at": now + self.settings.callback_expiry_hours * 3600,
            "ended_reason": None,
        }
        if not self.store.add_doc(NAMESPACE, call_sid, doc, ttl_seconds=RECORD_TTL):
            return self.get(call_sid)
        self._audit(
            "callback.noted",
            call_sid,
            callback=call_sid,
            adviser=adviser_number,
            organisation=verified["organisation"],
            reason=reason,
            outcome="to_call_back",
        )
        return cast(Callback, doc)

    def reached(self, adviser_number: str, call_sid: str) -> list[str]:
        """The adviser got through to an agent on a call of their own (``call_sid``): a
        call-back still waiting for them is no longer owed (one being rung or verified is
        left to finish). Returns the call-backs settled; each is audited."""
        settled = []
        for doc in self.store.indexed(NAMESPACE, f"adviser:{adviser_number}", count=20):
            waiting = doc["status"] in {"to_call_back", "retry_wait"} and doc["id"] != call_sid
            if waiting and self._drop(doc["id"], "adviser_got_through", call_sid):
                settled.append(doc["id"])
        return settled

    def cancel(self, callback_id: str, by: str) -> dict[str, Any]:
        """Staff settle a call-back by hand (the adviser rang in again, say). Audited."""

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None or doc["status"] not in OPEN:
                return None
            return {
                **doc,
                "status": "cancelled",
                "ended_reason": "cancelled",
                "ended_at": self.now(),
                "next_attempt_at": None,
            }

        changed = self._change(callback_id, change)
        if changed.before is None:
            raise DirectoryError(f"no call-back {callback_id}")
        if not changed.written:
            raise DirectoryError(
                f"call-back {callback_id} is {changed.before['status']}: nothing to cancel"
            )
        self._audit(
            "callback.cancelled",
            callback_id,
            callback=callback_id,
            adviser=changed.before["adviser_number"],
            by=by,
            outcome="cancelled",
        )
        return changed.after or changed.before

    def reopen(self, callback_id: str, by: str) -> dict[str, Any]:
        """A supervisor reopens a dropped or cancelled call-back: it waits its turn again
        with the place it had (when the caller first rang), its tries start afresh and
        its expiry runs from now. Audited."""
        now = self.now()
        expiry = self.settings.callback_expiry_hours * 3600

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None or doc["status"] not in REOPENABLE:
                return None
            return {
                **doc,
                "status": "to_call_back",
                "ended_reason": None,
                "ended_at": None,
                "next_attempt_at": None,
                "expires_at": now + expiry,
                "retry_base": len(doc.get("attempts", [])),
            }

        changed = self._change(callback_id, change)
        if changed.before is None:
            raise NotFound(f"no call-back {callback_id}")
        if not changed.written:
            raise Conflict(
                f"call-back {callback_id} is {changed.before['status'].replace('_', ' ')}: "
                "only a dropped or cancelled call-back is reopened"
            )
        self._audit(
            "callback.reopened",
            callback_id,
            callback=callback_id,
            adviser=changed.before["adviser_number"],
            was=changed.before["status"],
            by=by,
            outcome="reopened",
        )
        return changed.after or changed.before

    def closed_since(self, since: float, count: int = 50) -> list[dict[str, Any]]:
        """Call-backs dropped or cancelled since ``since``, newest first (from an index)."""
        return self.store.indexed(
            NAMESPACE, "closed", newest_first=True, min_score=since, count=count
        )

    # ------------------------------------------------------------ placing them

    def line_open(self, now: float) -> bool:
        """Whether call-backs may be placed now: the line's hours, and no closure."""
        if self.staff.closure(now) is not None:
            return False
        return self.staff.calendar("line").is_open(datetime.fromtimestamp(now, LONDON))

    def waiting_entry(self, doc: dict[str, Any], free: list[Any] | None = None) -> Waiting:
        """A call-back holding its place, as the fair queue sees it. Its flow's rule for a
        language no free agent speaks applies at once (the caller has already waited):
        with no speaker free, one that falls back to English (the default) may go to any
        agent; one that waits for a speaker waits."""
        language = doc.get("language") or DEFAULT_LANGUAGE
        falls_back = (doc.get("routing") or {}).get("then", "english") == "english"
        return Waiting(
            key=doc["id"],
            kind="callback",
            language=language,
            arrived_at=float(doc.get("arrived_at") or doc.get("noted_at") or 0),
            any_agent=falls_back and free is not None and not any(a.speaks(language) for a in free),
        )

    def beat(self) -> None:
        """The dispatcher is running: its heartbeat, renewed for a fresh lifetime from now
        (the flows offer a call-back only while it beats)."""
        self.store.release(HEARTBEAT, "running")
        self.store.claim(HEARTBEAT, "running", HEARTBEAT_SECONDS)

    def settle_and_promote(self) -> list[tuple[str, str]]:
        """Settle tries whose end never came, and bring due retries back to their place."""
        done = [(cb_id, f"settled: {status}") for cb_id, status in self.recover_stuck()]
        return done + self._promote_due(self.now())

    def place_in_turn(self, key: str, links: ServiceLinks) -> tuple[str, str] | None:
        """The fair queue offered call-back ``key`` a free agent: place it (or drop it, past
        its expiry). None when it is not waiting to be placed (being rung: it holds its
        place, and the agent it will need)."""
        doc = self.get(key)
        if doc is None or doc["status"] != "to_call_back":
            return None
        now = self.now()
        if now >= float(doc.get("expires_at") or now + 1):
            self._drop(doc["id"], "expired", None)
            return (doc["id"], "dropped: expired")
        try:
            return (doc["id"], self.place(doc["id"], links))
        except CallflowError as exc:
            log.error("call-back %s: not placed: %s", doc["id"], exc)
            return (doc["id"], f"error: {exc}")

    def _promote_due(self, now: float) -> list[tuple[str, str]]:
        """Retries whose time has come take their place in the queue again."""
        promoted = []
        for doc in self.store.indexed(NAMESPACE, "due", max_score=now):
            changed = self._change(
                doc["id"],
                lambda d: (
                    {**d, "status": "to_call_back", "next_attempt_at": None}
                    if d and d["status"] == "retry_wait"
                    else None
                ),
            )
            if changed.written:
                promoted.append((doc["id"], "due again"))
        return promoted

    def place(self, callback_id: str, links: ServiceLinks) -> str:
        """Ring the adviser's registered number now; the new CallSid. One worker at a time."""
        doc = self.require(callback_id)
        if doc["status"] != "to_call_back":
            raise DirectoryError(f"call-back {callback_id} is {doc['status']}, not waiting")
        adviser = self.services.directory.get(doc["adviser_number"])
        to = dialable(adviser.phone) if adviser is not None and adviser.active else None
        if to is None:
            # Removed, deactivated, or their registered number gone since the call.
            self._drop(callback_id, "no_registered_number", None)
            return "dropped: no registered number"
        language = doc.get("language") or DEFAULT_LANGUAGE
        url = links.incoming(FLOW, callback_id, language)
        if doc.get("relay"):
            url += "&relay=1"
        placed = self.outbound.place(
            "callback",
            callback_id,
            to=to,
            from_=self.settings.vstrs_number,
            url=url,
            status_callback=links.callback_status(callback_id),
            ring_seconds=RING_SECONDS,
            claim_seconds=CLAIM_SECONDS,
        )
        call_sid = placed.call_sid

        def calling(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if d is None or d["status"] != "to_call_back":
                return None
            return {**d, "status": "calling", "attempts": [*d["attempts"], attempt(placed)]}

        if not self._change(callback_id, calling).written:
            # Cancelled while the phone started ringing: it must not reach anyone.
            self.outbound.let_go("callback", callback_id, placed, hang_up=True)
            return "not placed: it changed meanwhile"
        self._audit(
            "callback.placed",
            call_sid,
            callback=callback_id,
            adviser=doc["adviser_number"],
            attempt=len(doc["attempts"]) + 1,
            language=language,
            outcome="placed",
        )
        return call_sid

    # ------------------------------------------------------------ the call-back's call

    def current(self, callback_id: str, call_sid: str) -> Callback | None:
        """The call-back ``call_sid`` was placed for, while that call is its current try
        (else None: an old leg, a cancelled call-back, or a call nobody placed)."""
        doc = self.get(callback_id)
        if doc is None or doc["status"] not in {"calling", "in_queue"} or not doc["attempts"]:
            return None
        return doc if doc["attempts"][-1]["call_sid"] == call_sid else None

    def _result(self, callback_id: str, call_sid: str, result: str) -> None:
        """Note what became of the current try, before its leg's end is reported."""

        def note(d: dict[str, Any] | None) -> dict[str, Any] | None:
            attempts = _tried(d, call_sid, result)
            return {**d, "attempts": attempts} if d and attempts else None

        self._change(callback_id, note)

    def not_verified(self, callback_id: str, call_sid: str) -> None:
        """Whoever answered could not be verified as the adviser: this try failed."""
        self._result(callback_id, call_sid, "not_verified")

    def machine(self, callback_id: str, call_sid: str) -> None:
        """An answering machine took the call-back: nothing was said; this try failed."""
        self._result(callback_id, call_sid, "machine")

    def in_queue(
        self, callback_id: str, call_sid: str, adviser_number: str
    ) -> Callback | None:
        """The adviser answered and is verified again: they wait for an agent, with their
        place (the record of the call carries the call-back's arrival). None unless this
        call is the call-back's current try and ``adviser_number`` the adviser it is for."""

        def queue(d: dict[str, Any] | None) -> dict[str, Any] | None:
            attempts = _tried(d, call_sid, "verified")
            if d is None or attempts is None or d["status"] != "calling":
                return None
            if d["adviser_number"] != adviser_number:
                return None
            return {**d, "status": "in_queue", "attempts": attempts}

        changed = self._change(callback_id, queue)
        if changed.written:
            self._audit(
                "callback.verified",
                call_sid,
                callback=callback_id,
                adviser=changed.before["adviser_number"] if changed.before else None,
                outcome="in_queue",
            )
        return cast("Callback | None", changed.after) if changed.written else None

    def connected(self, callback_id: str, call_sid: str, sees_id: str) -> None:
        """An agent joined the call-back's call: it is done."""

        def finish(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if d is None or d["status"] != "in_queue":
                return None
            return {**d, "status": "done", "ended_reason": "connected"}

        changed = self._change(callback_id, finish)
        if changed.written:
            self._audit(
                "callback.connected",
                call_sid,
                callback=callback_id,
                agent=sees_id,
                outcome="connected",
            )

    def no_agent(self, callback_id: str, call_sid: str) -> Callback | None:
        """The verified adviser waited on the call-back's call and no agent came: this try
        failed; the call-back is retried (keeping its place) or dropped. Returns the
        call-back as it now stands."""
        return self._settle(callback_id, call_sid, "no_agent")

    def leg_ended(self, callback_id: str, call_sid: str, status: str) -> Callback | None:
        """A call-back's leg ended (its status callback): settle the try it was."""
        if status not in FINAL_CALL_STATUSES:
            return None
        doc = self.get(callback_id)
        if doc is None:
            log.warning("call %s: %s for unknown call-back %s", call_sid, status, callback_id)
            return None
        tried = next((a for a in doc["attempts"] if a["call_sid"] == call_sid), None)
        if tried is None:
            return doc
        self.outbound.leg_ended("callback", callback_id, tried)
        if doc["status"] == "in_queue" and tried is doc["attempts"][-1]:
            # Verified and waiting, then gone without an agent: the adviser hung up.
            self._drop(callback_id, "caller_left", call_sid)
            return self.get(callback_id)
        result = tried["result"] or ("no_person" if status == "completed" else status)
        return self._settle(callback_id, call_sid, result)

    def _settle(self, callback_id: str, call_sid: str, result: str) -> Callback | None:
        """A try failed: retry it on the schedule, or drop the call-back."""
        now = self.now()
        schedule = self.settings.callback_retry_minutes
        decided: dict[str, Any] = {}

        def change(d: dict[str, Any] | None) -> dict[str, Any] | None:
            decided.clear()
            attempts = _tried(d, call_sid, result)
            if d is None or attempts is None or d["status"] not in {"calling", "in_queue"}:
                return None
            tried = len(attempts) - int(d.get("retry_base") or 0)  # since it was (re)opened
            if tried <= len(schedule) and now < float(d.get("expires_at") or now + 1):
                decided.update(status="retry_wait", next_attempt_at=now + schedule[tried - 1] * 60)
            else:
                decided.update(
                    status="dropped", next_attempt_at=None, ended_reason="retries", ended_at=now
                )
            return {**d, "attempts": attempts, **decided}

        changed = self._change(callback_id, change)
        if not changed.written or changed.before is None:
            return cast("Callback | None", changed.before)
        self._audit(
            "callback.attempt",
            call_sid,
            callback=callback_id,
            adviser=changed.before["adviser_number"],
            outcome=result,
            next=decided["status"],
        )
        if decided["status"] == "dropped":
            self._audit(
                "callback.dropped",
                call_sid,
                callback=callback_id,
                adviser=changed.before["adviser_number"],
                outcome="retries_exhausted",
            )
        return cast("Callback | None", changed.after)

    def _drop(self, callback_id: str, why: str, call_sid: str | None) -> bool:
        def drop(d: dict[str, Any] | None) -> dict[str, Any] | None:
            if d is None or d["status"] not in OPEN:
                return None
            if why == "adviser_got_through" and d["status"] not in {"to_call_back", "retry_wait"}:
                return None
            return {
                **d,
                "status": "dropped",
                "next_attempt_at": None,
                "ended_reason": why,
                "ended_at": self.now(),
            }

        changed = self._change(callback_id, drop)
        if changed.written and changed.before is not None:
            self._audit(
                "callback.dropped",
                call_sid or callback_id,
                callback=callback_id,
                adviser=changed.before["adviser_number"],
                outcome=why,
            )
        return changed.written

    def recover_stuck(self) -> list[tuple[str, str]]:
        """Call-backs whose leg's final status never came: ask Twilio, settle them."""
        stale = self.store.indexed(NAMESPACE, "calling", max_score=self.now() - STUCK_SECONDS)
        return self.outbound.settle_stale(
            "call-back", stale, lambda doc: doc["status"] == "calling", self.leg_ended
        )
