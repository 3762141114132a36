"""Every exception callflow raises on purpose, in one tree.

CallflowError                  the base of them all
+-- ConfigError                settings missing or inconsistent at start-up
+-- FlowError                  a flow cannot be used
|   +-- FlowValidationError        a flow file has problems (all of them, with file:line)
|   +-- UnknownFlowError           no flow or flow version by that name
+-- FlowTestError              a flow's test file cannot be read (each problem, file:line)
+-- PublishRefused             a flow version may not be published (problems, failing tests)
|   +-- ReplayChanges              it would change recorded real calls: confirm to publish
+-- SoftphoneError             the softphone was asked for something it cannot play
+-- StoreError                 the store failed
|   +-- StoreUnavailable           the store cannot be reached (fail closed)
|   |   +-- AuditWriteFailed           an audit entry took its number but was not written
|   +-- CallBusy                   another webhook holds this call's lease for too long
+-- DirectoryError             a directory record is missing or invalid
|   +-- UnknownAdviser
|   +-- InvalidSecret              a PIN or security answer does not meet the rules
|   +-- FieldErrors                a form's fields do not meet the rules (each one named)
+-- TwilioError                Twilio refused a request or could not be reached
+-- AssuranceError             an assurance request that cannot be carried out
+-- RequestRefused             what the person asked for cannot be done, and why
|   +-- Unauthenticated            nobody is signed in, or the credential is unknown
|   +-- Forbidden                  the person asking may not see or do this
|   +-- NotFound                   no such thing (or not one the asker may know of)
|   +-- Conflict                   not now: the record's state does not allow it
|   +-- Invalid                    what was sent breaks the rules (``errors`` per field)
|   +-- Malformed                  what was sent is not the shape asked for
+-- HandOffError               a hand-off cannot be made or changed as asked
    +-- HandOffInvalid             (also Invalid) the request has errors
    +-- HandOffConflict            (also Conflict) the hand-off or call is not in a state for it
    +-- UnknownHandOff             (also NotFound) no such hand-off, or not the asker's
    +-- HandOffForbidden           (also Forbidden) not the asker's to do

No error here carries an HTTP status, an exit code or a TwiML answer: each entry point maps
errors to its own answers in one table (``webhooks.answers.STATUS``, the HTTP status for
the JSON API and the console pages alike, each drawing its own body from it;
``callflow.cli.common.EXIT`` for the command line; and the voice edge, which always
answers a caller with polite TwiML).
Simulator stand-ins for Twilio's own failures stay in ``callflow.simulator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .replay import ReplayReport


class CallflowError(Exception):
    """Base of every error callflow raises on purpose."""


class ConfigError(CallflowError):
    """Settings are missing or inconsistent."""


class FlowError(CallflowError):
    """A flow cannot be loaded or used."""


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a flow file, with where it is."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class FlowValidationError(FlowError):
    """A flow file has one or more problems; all of them are listed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UnknownFlowError(FlowError):
    """No flow (or flow version) by that name is known."""


class StoreError(CallflowError):
    """The store failed."""


class StoreUnavailable(StoreError):
    """The store cannot be reached; callers of it must fail closed."""


class AuditWriteFailed(StoreUnavailable):
    """An audit entry took its sequence number but could not be written: ``seq`` is the
    number left without an entry (the writer voids it once the store answers again)."""

    def __init__(self, message: str, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


class CallBusy(StoreError):
    """Another request held this call's lease for longer than we may wait."""


class DirectoryError(CallflowError):
    """A directory record is missing or invalid."""


class UnknownAdviser(DirectoryError):
    """No adviser is registered under that adviser number."""


class InvalidSecret(DirectoryError):
    """A PIN or security answer does not meet the rules."""


class FieldErrors(DirectoryError):
    """What was sent does not meet the rules: ``errors`` names each bad field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class FlowTestError(CallflowError):
    """A test file that cannot be read: its problems, each with file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class PublishRefused(CallflowError):
    """A flow that cannot be published: its problems or its failing tests, readably."""

    def __init__(self, message: str, report: str = "") -> None:
        self.report = report
        super().__init__(message + (f"\n{report}" if report else ""))


class ReplayChanges(PublishRefused):
    """The candidate would change recorded real calls: the designer looks at the report and
    confirms (or publishes something else)."""

    def __init__(self, version: str, report: ReplayReport) -> None:
        self.version = version
        self.replay = report
        super().__init__(
            f"version {version} of {report.flow} would change {len(report.changed)} of "
            f"{report.compared} compared call(s): look at the report, then confirm to publish "
            "it anyway",
            report.text(),
        )


class SoftphoneError(CallflowError):
    """The softphone was asked for something it cannot play."""


class TwilioError(CallflowError):
    """Twilio refused a request or could not be reached."""


class AssuranceError(CallflowError):
    """An assurance request that cannot be carried out."""


class RequestRefused(CallflowError):
    """What the person asked for cannot be done; ``errors`` names each bad field, if any."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors: dict[str, str] = dict(errors or {})


class Unauthenticated(RequestRefused):
    """Nobody is signed in, or the credential offered is unknown, lapsed or revoked."""


class Forbidden(RequestRefused):
    """The person asking may not see or do this."""


class NotFound(RequestRefused):
    """No such thing, or not one the person asking may know of."""


class Conflict(RequestRefused):
    """Not now: the record's state does not allow it (someone else may have got there)."""


class Invalid(RequestRefused):
    """What was sent breaks the rules; ``errors`` names each field and what is wrong."""


class Malformed(RequestRefused):
    """What was sent is not the shape asked for (not a JSON object, say)."""


class HandOffError(CallflowError):
    """A hand-off cannot be made or changed as asked (a kind below says which way)."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors: dict[str, str] = dict(errors or {})


class HandOffInvalid(HandOffError, Invalid):
    """The hand-off request has errors, each field named."""


class HandOffConflict(HandOffError, Conflict):
    """The hand-off, or its call, is not in a state for this (taken, ended, not briefing)."""


class UnknownHandOff(HandOffError, NotFound):
    """No such hand-off, or not one the person asking may know of."""


class HandOffForbidden(HandOffError, Forbidden):
    """The hand-off is not the asker's to change."""
