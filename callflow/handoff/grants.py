"""Disclosure grants: the authority to disclose as if a 64-8 were on the customer's record,
for one handed-off call, to the specialist who took it, and only while that call lasts.

A grant is written (with its audit entry) before the caller comes off hold at take-over;
it ends the moment the caller's or the specialist's leg ends or the conference ends,
whichever Twilio reports first. Callbacks can be lost, so "authorised" is never based on
leg liveness older than ``CALLFLOW_GRANT_FRESHNESS``: an older confirmation asks Twilio
for both legs before answering, and an answer that cannot be had is "no". A maximum
lifetime and ``callflow sweep`` back that up; after a store outage no grant authorises
until the sweep has re-checked every active grant's legs (``DOUBT``).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, cast

from ..access import Viewer, grant_for_viewer
from ..context import Services, ServiceUser
from ..errors import CallflowError, Forbidden
from ..records import Grant, HandOff
from ..twilio_adapter import FINAL_CALL_STATUSES

log = logging.getLogger(__name__)

__all__ = ["CANNOT_CONFIRM", "DOUBT", "IN_DOUBT", "NO_AUTHORITY", "Grants", "LiveCheck"]

Doc = dict[str, Any] | None
#: Hand-offs and grants are kept about as long as the audit log, for HMRC's assurance
#: sampling; then they expire (personal data is never kept for ever).
RECORD_TTL = 400 * 24 * 3600
NAMESPACE = "grants"
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
NO_AUTHORITY = (
    "no real-time hand-off from VSTRS is in progress for this customer: "
    "the usual authority requirements apply"
)
#: While this document exists, active grants do not authorise (see Grants.mark_doubt).
DOUBT = ("ops", "grant_doubt")
IN_DOUBT = (
    "the service lost its store for a while and this call may have ended unseen: not "
    "authorised until the call is confirmed live (the sweep checks within about 30 seconds)"
)
CANNOT_CONFIRM = (
    "cannot confirm the call is live now (Twilio could not be asked): not authorised; "
    "ask again in a moment"
)


def _leg_reason(reason: str) -> str | None:
    """``checked_caller_leg_completed`` -> "the caller's call ended (Twilio: completed)"."""
    match = re.fullmatch(r"(?:checked|swept)_(caller|specialist)_leg_([a-z-]+)", reason)
    if not match:
        return None
    whose = "the caller's" if match.group(1) == "caller" else "your"
    return f"{whose} call leg ended (Twilio: {match.group(2)})"


def end_reason_text(reason: str | None) -> str:
    """How a grant's end reads: "the caller hung up", "your call leg ended", ..."""
    reason = reason or "ended"
    return END_REASONS.get(reason) or _leg_reason(reason) or reason.replace("_", " ")


def grant_index(doc: dict[str, Any]) -> list[tuple[str, float]]:
    """A grant's index entries: by customer, call, team, specialist, all, and active."""
    at = doc["started_at"]
    entries = [
        (f"customer:{doc['customer']['reference']}", at),
        (f"call:{doc['call_sid']}", at),
        (f"team:{doc['team']}", at),
        ("all", at),
    ]
    holder = (doc.get("specialist") or {}).get("id")
    if holder:
        entries.append((f"specialist:{holder}", at))
    if doc["ended_at"] is None:
        entries.append(("active", at))
    return entries


@dataclass(frozen=True)
class LiveCheck:
    """What asking Twilio about a grant's legs found: confirmed (when), ended (the grant as
    it now stands), or neither (``why`` says what stopped the check)."""

    confirmed_at: float | None
    ended: Grant | None
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


class Grants(ServiceUser):
    """Grants: issued at take-over, ended with the call, asked about by the people they
    concern. ``on_over`` is told when a check finds a grant's call over (the hand-off
    ends with it)."""

    def __init__(
        self, services: Services, on_over: Callable[[Grant, str], None]
    ) -> None:
        super().__init__(services)
        self.on_over = on_over
        self.store.define_index(NAMESPACE, grant_index, keep_seconds=RECORD_TTL)

    @property
    def wrap_up(self) -> float:
        """How long the specialist who held a grant still sees it in full after it ends."""
        return float(self.settings.specialist_wrap_up_seconds)

    def get(self, grant_id: str | None) -> Grant | None:
        """A grant."""
        if not grant_id or not re.fullmatch(r"GR[0-9a-f]{16}", grant_id):
            return None
        return cast("Grant | None", self.store.get_doc(NAMESPACE, grant_id))

    # ------------------------------------------------------------ issuing and ending

    def issue(self, handoff: HandOff) -> str:
        """Record the authority to disclose as if a 64-8 were on record, for this call only,
        to the specialist who took it."""
        taker = handoff.get("taken_by")
        if not taker:
            raise CallflowError("no specialist has taken the hand-off: nobody to authorise")
        grant_id = "GR" + secrets.token_hex(8)
        now = self.now()
        adviser = handoff.get("adviser") or handoff.get("representative") or {}
        grant = {
            "id": grant_id,
            "handoff_id": handoff["id"],
            "call_sid": handoff["call_sid"],
            "specialist_call_sid": handoff["specialist_call_sid"],
            "conference": handoff["conference"],
            "customer": handoff["customer"],
            # What the authority covers: the hand-off's issue, as the agent gave it.
            "matter": handoff.get("issue") or "",
            "organisation": handoff["organisation"],
            "organisation_name": handoff["organisation_name"],
            "adviser": {k: adviser.get(k) for k in ("name", "adviser_number")},
            "team": handoff["team"],
            "team_name": handoff["team_name"],
            "specialist": {"id": taker["id"], "name": taker["name"]},
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
            specialist=taker["id"],
            agent=handoff["agent_sees_id"],
            language=grant["language"],
            relay=grant["relay"],
            outcome="active",
        )
        self.store.put_doc(NAMESPACE, grant_id, grant, ttl_seconds=RECORD_TTL)
        return grant_id

    def confirmed(self, grant_id: str, at: float) -> None:
        """Twilio confirmed both legs live at ``at`` (taking the caller off hold)."""
        self.store.update_doc(
            NAMESPACE,
            grant_id,
            lambda d: {**d, "confirmed_live_at": at} if d and not d["ended_at"] else None,
            ttl_seconds=RECORD_TTL,
        )

    def end(self, grant_id: str | None, reason: str) -> dict[str, Any] | None:
        """End a grant (once; later callbacks change nothing). Returns the grant as it was
        when this call ended it, else None."""
        if not grant_id:
            return None
        now = self.now()

        def end(d: Doc) -> Doc:
            if d is None or d["ended_at"] is not None:
                return None
            return {**d, "ended_at": now, "end_reason": reason}

        changed = self.store.change_doc(NAMESPACE, grant_id, end, ttl_seconds=RECORD_TTL)
        ended = changed.before
        if not changed.written or ended is None:
            return None
        self._audit(
            "grant.ended",
            ended["call_sid"],
            grant=grant_id,
            handoff=ended["handoff_id"],
            team=ended["team"],
            specialist=(ended.get("specialist") or {}).get("id"),
            organisation=ended["organisation"],
            minutes=round((now - ended["started_at"]) / 60, 2),
            outcome=reason,
        )
        return ended

    # ------------------------------------------------------------ asking

    def status(self, grant: Grant) -> dict[str, Any]:
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

    def _ended_answer(self, grant: Grant) -> dict[str, Any]:
        why = end_reason_text(grant.get("end_reason"))
        return {
            "authorised": False,
            "reason": (
                f"the handed-off call is over ({why}): the usual authority requirements apply"
            ),
            "confirmed_live_at": grant.get("confirmed_live_at"),
        }

    def _not_authorised(self, grant: Grant, now: float) -> dict[str, Any] | None:
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

    def confirm_live(self, grant: Grant, by: str = "checked") -> LiveCheck:
        """Ask Twilio for both legs of a grant at once, within the check budget.

        Both in progress: the confirmation is recorded on the grant (and any doubt the
        sweep raised is lifted). A leg over: the grant ends now (and ``on_over`` hears of
        it). Otherwise (Twilio unreachable, slow, a leg unknown): nothing is confirmed.
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
                self.on_over(grant, reason)
                return LiveCheck(None, self.get(grant["id"]), reason)
        if problems or any(status != "in-progress" for status in statuses.values()):
            why = "; ".join(problems) or ", ".join(f"{r} leg {s}" for r, s in statuses.items())
            log.warning("grant %s: cannot confirm its call is live: %s", grant["id"], why)
            return LiveCheck(None, None, why)
        now = self.now()
        self.store.update_doc(
            NAMESPACE,
            grant["id"],
            lambda d: (
                {**d, "confirmed_live_at": now, "unconfirmed_since": None}
                if d and d["ended_at"] is None
                else None
            ),
            ttl_seconds=RECORD_TTL,
        )
        return LiveCheck(now, None, "")

    def for_call(
        self, grants: list[Grant], viewer: Viewer
    ) -> dict[str, Any]:
        """The authority on a call now (fail closed), from the grants of its hand-offs, as
        this person may see it."""
        if not grants:
            return {
                "authorised": False,
                "reason": "this call has not been handed off to a specialist",
            }
        latest = max(grants, key=lambda g: g["started_at"])
        return grant_for_viewer(viewer, latest, self.status(latest), self.now(), self.wrap_up)

    def for_customer(self, reference: str, viewer: Viewer) -> dict[str, Any]:
        """Whether the asker (an admin: anyone) may disclose about this customer now.

        A specialist hears only of the grants they hold themselves (a grant authorises the
        specialist who took the call, not their team), with no customer name or reference
        back (they sent it); a VSTRS agent may not ask.
        """
        if not (viewer.is_admin or viewer.role == "specialist"):
            raise Forbidden("only specialists and admins may ask about a customer's grants")
        folded = (reference or "").replace(" ", "").upper()
        grants = [
            g
            for g in cast("list[Grant]", self.store.indexed(NAMESPACE, f"customer:{folded}"))
            if viewer.is_admin or viewer.is_specialist((g.get("specialist") or {}).get("id"))
        ]
        now = self.now()
        statuses = [
            grant_for_viewer(
                viewer, g, self.status(g), now, self.wrap_up, brief=not viewer.is_admin
            )
            for g in sorted(grants, key=lambda g: g["started_at"])
        ]
        if any(s["authorised"] for s in statuses):
            return {"authorised": True, "grants": statuses}
        return {"authorised": False, "reason": NO_AUTHORITY, "grants": statuses}

    # ------------------------------------------------------------ the backstop sweep

    def mark_doubt(self) -> None:
        """The store failed and is back: call ends may have been lost meanwhile.

        A status callback that arrived while Redis was unreachable could not end its grant,
        and Twilio does not send it again. So no active grant authorises until the sweep
        has asked Twilio that its legs are still live (fail closed, never kept by doubt).
        """
        log.warning("store recovered: active grants suspended until their calls are re-checked")
        self.store.put_doc(DOUBT[0], DOUBT[1], {"since": self.now(), "id": secrets.token_hex(8)})

    def active(self) -> int:
        """How many grants are active (an index's size: never a scan)."""
        return self.store.index_size(NAMESPACE, "active")

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
        for grant in cast("list[Grant]", self.store.indexed(NAMESPACE, "active")):
            if grant["ended_at"] is not None:
                continue
            if now >= grant["max_until"]:
                self.on_over(grant, "max_lifetime")
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

    def _doubt(self, grant: Grant, why: str) -> None:
        """The sweep could not check a grant's legs: it stops authorising; audited once."""
        now = self.now()

        def doubt(d: Doc) -> Doc:
            if d is None or d["ended_at"] is not None or d.get("unconfirmed_since"):
                return None
            return {**d, "unconfirmed_since": now, "confirmed_live_at": None}

        if self.store.change_doc(NAMESPACE, grant["id"], doubt, ttl_seconds=RECORD_TTL).written:
            log.warning("sweep: grant %s in doubt: %s", grant["id"], why)
            self._audit(
                "grant.unconfirmed",
                grant["call_sid"],
                grant=grant["id"],
                handoff=grant["handoff_id"],
                team=grant["team"],
                outcome="cannot_check",
            )
