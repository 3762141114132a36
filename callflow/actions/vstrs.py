"""VSTRS caller verification: adviser number, PIN, then one security question.

The caller hears the same thing whether the adviser number is unknown, the PIN is wrong
or the answer is wrong, so nobody can find out which adviser numbers exist. An unknown
adviser's PIN is still checked against a decoy hash, so it takes as long. Each check of a
known adviser is counted before it is made; after ``lockout_threshold`` consecutive
failures across calls the adviser is locked for ``lockout_seconds``.
"""

from __future__ import annotations

import logging

from ..context import CallContext
from ..directory import ADVISER_NUMBER, QUESTIONS, Adviser
from ..registry import REGISTRY
from ..secrets import normalise_answer

log = logging.getLogger(__name__)


@REGISTRY.action()
def capture_adviser_number(ctx: CallContext) -> None:
    """Keep the adviser number the caller keyed, if it is a registered adviser's.

    Anything else is kept as none: a caller who keys their PIN at this prompt by mistake
    must not find it stored on the call.
    """
    digits = ctx.digits()
    known = ADVISER_NUMBER.match(digits) and ctx.services.directory.get(digits) is not None
    ctx.data["adviser_number"] = digits if known else ""
    ctx.data.pop("question", None)
    ctx.data.pop("pin_accepted_for", None)


def _adviser(ctx: CallContext) -> Adviser | None:
    number = ctx.data.get("adviser_number") or ""
    adviser = ctx.services.directory.get(number) if number else None
    return adviser if adviser is not None and adviser.active else None


def _failed(ctx: CallContext, step: str, adviser: Adviser) -> None:
    settings = ctx.settings
    started = ctx.services.store.record_failure(
        adviser.number, settings.lockout_threshold, settings.lockout_seconds
    )
    ctx.audit(
        f"verification.{step}",
        adviser=adviser.number,
        organisation=adviser.organisation,
        outcome="failed",
    )
    if started:
        ctx.audit(
            "verification.lockout",
            adviser=adviser.number,
            organisation=adviser.organisation,
            outcome="locked",
            minutes=settings.lockout_seconds // 60,
        )
    ctx.raise_event("failed")


@REGISTRY.action(raises={"pin_accepted", "failed", "locked"}, provides={"security_question"})
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
    if not services.store.reserve_attempt(
        adviser.number, settings.lockout_threshold, settings.failure_window_seconds
    ):
        services.hasher.verify(pin, None)  # as long as a real check: no timing tell
        ctx.audit(
            "verification.pin",
            adviser=adviser.number,
            organisation=adviser.organisation,
            outcome="locked",
        )
        ctx.raise_event("locked")
        return
    if not services.hasher.verify(pin, adviser.pin_hash):
        _failed(ctx, "pin", adviser)
        return
    question = services.rng.choice(sorted(adviser.answer_hashes))
    ctx.data["question"] = question
    ctx.data["pin_accepted_for"] = adviser.number
    ctx.values["security_question"] = QUESTIONS[question].prompt
    ctx.audit(
        "verification.pin",
        adviser=adviser.number,
        organisation=adviser.organisation,
        outcome="accepted",
    )
    ctx.raise_event("pin_accepted")


@REGISTRY.action(raises={"verified", "failed"}, provides={"adviser_name", "organisation_name"})
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
    ctx.services.store.record_success(adviser.number)
    for field in (f"org:{adviser.organisation}", "all"):
        ctx.services.store.count("verified_calls", field)
    ctx.data.pop("pin_accepted_for", None)
    ctx.session.verified = {
        "adviser_number": adviser.number,
        "adviser_name": adviser.name,
        "organisation": adviser.organisation,
        "organisation_name": adviser.organisation_name,
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
