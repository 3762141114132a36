"""What the HTTP entry points answer for each error the product raises: one table.

The JSON API answers ``{"error": ..., "status": ...}`` with the status found here; a
console page answers a GOV.UK error page with the same status. The voice webhooks never
answer an error status to a caller (Twilio would play its own "application error"): they
say a polite goodbye in TwiML, and use this table only for the logs. The command line has
its own table of exit codes (``callflow.cli.common.EXIT``).
"""

from __future__ import annotations

from callflow.errors import (
    CallBusy,
    Conflict,
    FieldErrors,
    Forbidden,
    Invalid,
    InvalidSecret,
    Malformed,
    NotFound,
    StoreUnavailable,
    TwilioError,
    Unauthenticated,
    UnknownAdviser,
)

__all__ = ["PUBLIC_WORDS", "STATUS", "status_of"]

#: Each kind of error's HTTP status, most particular first: the first class the error is
#: an instance of wins. An error of no kind here is a 500 (logged), never a guess.
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (UnknownAdviser, 404),
    (Conflict, 409),
    (Malformed, 400),
    (Invalid, 422),
    (FieldErrors, 422),
    (InvalidSecret, 422),
    (StoreUnavailable, 503),
    (CallBusy, 503),
    (TwilioError, 502),
)

#: What is said for errors whose own words are for the logs, not the person asking.
PUBLIC_WORDS = {
    502: "Twilio could not be reached; try again shortly",
    503: "the store is unavailable; try again shortly",
}


def status_of(exc: BaseException) -> int | None:
    """``exc``'s status from :data:`STATUS`, or None: not an error these entry points answer."""
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return None
