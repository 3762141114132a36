"""The exceptions callflow raises.

CallflowError
+-- ConfigError            settings missing or inconsistent at start-up
+-- FlowError              a flow cannot be used
|   +-- FlowValidationError    a flow file has problems (all of them, with file:line)
|   +-- UnknownFlowError       no flow or flow version by that name
+-- StoreError             the store failed
|   +-- StoreUnavailable       the store cannot be reached (fail closed)
|   +-- CallBusy               another webhook holds this call's lease for too long
+-- DirectoryError         a directory record is missing or invalid
    +-- UnknownAdviser
    +-- InvalidSecret          a PIN or security answer does not meet the rules
    +-- FieldErrors            a form's fields do not meet the rules (each one named)
"""

from __future__ import annotations

from dataclasses import dataclass


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
