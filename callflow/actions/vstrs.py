"""VSTRS caller verification: adviser number, PIN, then one security question.

The caller hears the same thing whether the adviser number is unknown, the PIN is wrong
or the answer is wrong, so nobody can find out which adviser numbers exist. An unknown
adviser's PIN is still checked against a decoy hash, so it takes as long.

Lockout (docs/lockout.md): each attempt on a known adviser is counted for the calling
number before it is checked, so concurrent calls can never get more checks than allowed.
A number that has had its attempts waits out its window; many consecutive failures across
numbers lock the adviser to numbers that have not verified them lately, so strangers
cannot lock an adviser out of their usual line. Every refusal and lock is audited.
"""

from __future__ import annotations

import logging

from ..context import CallContext
from ..directory import ADVISER_NUMBER, QUESTIONS, Adviser
from ..metrics import ADVISER_LOCKOUTS
from ..registry import REGISTRY
from ..secrets import normalise_answer
from ..store.base import Attempt
from .common import caller_number as _caller
from .common import relayed as _relayed

log = logging.getLogger(__name__)

#: Why a counted attempt was refused, as the audit records it.
REFUSED = {"throttled": "throttled", "locked": "locked", "hard_locked": "hard_locked"}


@REGISTRY.action()
def capture_adviser_number(ctx: CallContext) -> None:
    """Keep the adviser number the caller keyed, if it is a registered adviser's.

    Anything else is kept as none: a caller who keys their PIN at this prompt by mistake
    must not find it stored on the call.
    """
    digits = ctx.digits()
    known = ADVISER_NUMBER.match(digits) and ctx.services.directory.get(digits) is not None
    expected = ctx.data.get("callback_for")
    if expected and digits != expected:
        # A call-back verifies only the adviser it is for: any other number fails like an
        # unknown one (the PIN is still checked against a decoy, as long).
        known = False
    # A trace shows the digits only when they are a registered adviser's number (a PIN
    # keyed here by mistake must never appear in it).
    ctx.trace_input = digits if known else "keyed, not an adviser number"
    ctx.data["adviser_number"] = digits if known else ""
    ctx.data.pop("question", None)
    ctx.data.pop("pin_accepted_for", None)


def _adviser(ctx: CallContext) -> Adviser | None:
    number = ctx.data.get("adviser_number") or ""
    adviser = ctx.services.directory.get(number) if number else None
    return adviser if adviser is not None and adviser.active else None


def _failed(ctx: CallContext, step: str, adviser: Adviser) -> None:
    settings = ctx.settings
    attempt = Attempt(True, "ok", **ctx.data.pop("attempt", {"known": False}))
    number_locked = ctx.services.store.attempt_failed(
        adviser.number, _caller(ctx), ctx.now(), settings.guard, relay=_relayed(ctx)
    )
    started = "number_locked" if number_locked else attempt.lock_on_failure(settings.guard)
    ctx.audit(
        f"verification.{step}",
        adviser=adviser.number,
        organisation=adviser.organisation,
        outcome="failed",
    )
    if started:
        _lockout(ctx, adviser, started)
    ctx.raise_event("failed")


def _lockout(ctx: CallContext, adviser: Adviser, outcome: str) -> None:
    """A lock started (or was renewed): audited, logged at error, counted: an alert."""

    settings = ctx.settings
    minutes = settings.lockout_seconds // 60 if outcome == "locked" else None
    ctx.audit(
        "verification.lockout",
        adviser=adviser.number,
        organisation=adviser.organisation,
        outcome=outcome,
        minutes=minutes,
    )
    ADVISER_LOCKOUTS.inc()
    log.error(
        "call %s: adviser %s %s after repeated failed verifications (see callflow advisers "
        "status %s)",
        ctx.call_sid,
        adviser.number,
        outcome.replace("_", " "),
        adviser.number,
    )


@REGISTRY.action(
    raises={"pin_accepted", "failed", "locked"}, provides={"security_question"}, secret=True
)
def check_pin(ctx: CallContext) -> None:
    """Check the PIN keyed in this webhook against the adviser's; pick a security question."""
    services = ctx.services
    settings = ctx.settings
    pin = ctx.digits()
    adviser = _adviser(ctx)
    if adviser is None:
        services.hasher.verify(pin, None)
        ctx.audit("verification.pin", adviser=None, outcome="unknown_adviser")
        ctx.raise_event("failed")
        return
    if not adviser.answer_hashes:
        services.hasher.verify(pin, None)
        ctx.audit(
            "verification.pin",
            adviser=adviser.number,
            organisation=adviser.organisation,
            outcome="not_enrolled",
        )
        ctx.raise_event("failed")
        return
    relayed = _relayed(ctx)
    attempt = services.store.begin_attempt(
        adviser.number, _caller(ctx), ctx.now(), settings.guard, relay=relayed
    )
    if not attempt.allowed:
        services.hasher.verify(pin, None)  # as long as a real check: no timing tell
        ctx.audit(
            "verification.pin",
            adviser=adviser.number,
            organisation=adviser.organisation,
            outcome=REFUSED[attempt.reason],
            known_number=attempt.known,
        )
        ctx.raise_event("locked")
        return
    ctx.data["attempt"] = {"known": attempt.known, "ordinal": attempt.ordinal}
    if not services.hasher.verify(pin, adviser.pin_hash):
        _failed(ctx, "pin", adviser)
        return
    language = ctx.values.get("language")
    registered = sorted(adviser.answer_hashes)
    if language == "cy-GB" or ctx.data.get("relay"):
        # Speech recognition for Welsh cannot be relied on, and a Relay UK caller keys:
        # a keyed answer where the adviser has one registered.
        registered = [q for q in registered if QUESTIONS[q].keypad] or registered
    question = services.rng.choice(registered)
    ctx.data["question"] = question
    ctx.data["pin_accepted_for"] = adviser.number
    ctx.values["security_question"] = QUESTIONS[question].text(language)
    ctx.audit(
        "verification.pin",
        adviser=adviser.number,
        organisation=adviser.organisation,
        outcome="accepted",
    )
    ctx.raise_event("pin_accepted")


@REGISTRY.action(
    raises={"verified", "failed"}, provides={"adviser_name", "organisation_name"}, secret=True
)
def check_answer(ctx: CallContext) -> None:
    """Check the answer given in this webhook (speech if any, else keys); verify the caller."""
    adviser = _adviser(ctx)
    question = ctx.data.get("question")
    if adviser is None or question is None or ctx.data.get("pin_accepted_for") != adviser.number:
        ctx.services.hasher.verify("", None)
        ctx.audit("verification.answer", adviser=None, outcome="no_pin_accepted")
        ctx.raise_event("failed")
        return
    spoken = ctx.speech()
    method = "speech" if spoken else "keypad"
    given = normalise_answer(spoken or ctx.digits())
    if not ctx.services.hasher.verify(given, adviser.answer_hashes.get(question)):
        ctx.data.pop("pin_accepted_for", None)
        _failed(ctx, "answer", adviser)
        return
    ctx.data.pop("attempt", None)
    ctx.services.store.attempt_succeeded(
        adviser.number, _caller(ctx), ctx.now(), ctx.settings.guard, relay=_relayed(ctx)
    )
    for field in (f"org:{adviser.organisation}", "all"):
        ctx.services.store.count("verified_calls", field)
    ctx.data.pop("pin_accepted_for", None)
    ctx.session.verified = {
        **adviser.identity(),
        "consent_to_act": adviser.consent_to_act,
        "question": question,
        "method": method,
        "verified_at": ctx.now(),
    }
    ctx.values["adviser_name"] = adviser.name
    ctx.values["organisation_name"] = adviser.organisation_name
    ctx.audit(
        "verification.verified",
        adviser=adviser.number,
        organisation=adviser.organisation,
        outcome="verified",
        method=method,
    )
    log.info("call %s: adviser %s verified (%s)", ctx.call_sid, adviser.number, method)
    ctx.raise_event("verified")
