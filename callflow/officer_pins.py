"""Officers' PINs for the meeting start line: an officer who rings it to record the outdoor
call verification checks as a meeting begins (DMBM510150) keys their identity number and
this PIN first.

A PIN is kept as a keyed scrypt hash (``callflow.secrets``, as advisers' PINs are), in a
document of its own (``officer_pins``), never beside the officer's record that consoles and
the API show. Attempts are counted by the same lockout as advisers' (``Store.begin_attempt``
on ``officer:<number>``, docs/lockout.md): counted before the check, a caller's number
throttled, a stranger's run of failures locking only the numbers that have not verified the
officer lately; an officer who verifies from their own phone clears it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .context import ServiceUser
from .errors import DirectoryError
from .secrets import check_pin_rules, issue_pin

__all__ = ["OfficerPins", "PinCheck", "subject"]

NAMESPACE = "officer_pins"


def subject(number: str) -> str:
    """Whose attempts the lockout counts for an officer: never an adviser's number."""
    return f"officer:{number}"


@dataclass(frozen=True)
class PinCheck:
    """What a PIN check found: ``verified``, ``failed`` (unknown officer, inactive, no PIN
    set, wrong PIN: all alike to the caller) or ``locked``; and the lock it started, if any."""

    outcome: str
    lock: str = ""


class OfficerPins(ServiceUser):
    """Set and check officers' PINs."""

    def set_pin(self, number: str, pin: str | None, *, by: str) -> str:
        """Set an officer's PIN (a random one when ``pin`` is None); returns it, to be given
        to the officer once. Audited, never with the PIN."""
        officer = self.staff.officer(number)
        if officer is None:
            raise DirectoryError(f"no officer {number}")
        issued = pin is None
        pin = issue_pin() if pin is None else pin
        check_pin_rules(pin)
        self.store.put_doc(NAMESPACE, number, {"pin_hash": self.services.hasher.hash(pin)})
        self.services.audit.record(
            "staff.officer_pin", officer=number, by=by, outcome="issued" if issued else "set"
        )
        return pin

    def has_pin(self, number: str) -> bool:
        """Whether the officer has a PIN for the meeting start line."""
        return self.store.get_doc(NAMESPACE, number) is not None

    def check(self, number: str, pin: str, caller: str, *, relay: bool = False) -> PinCheck:
        """Check a keyed PIN: counted first (concurrent attempts never get more checks
        than allowed), then compared in constant time; as slow for an unknown officer as
        for a known one, so the line tells nobody which identity numbers exist."""
        hasher, guard, now = self.services.hasher, self.settings.guard, self.now()
        officer = self.staff.officer(number)
        stored = self.store.get_doc(NAMESPACE, number) if officer is not None else None
        if officer is None or not officer.active or stored is None:
            hasher.verify(pin, None)
            return PinCheck("failed")
        attempt = self.store.begin_attempt(subject(number), caller, now, guard, relay=relay)
        if not attempt.allowed:
            hasher.verify(pin, None)
            return PinCheck("locked")
        if hasher.verify(pin, stored["pin_hash"]):
            self.store.attempt_succeeded(subject(number), caller, now, guard, relay=relay)
            return PinCheck("verified")
        number_locked = self.store.attempt_failed(
            subject(number), caller, now, guard, relay=relay
        )
        return PinCheck(
            "failed", "number_locked" if number_locked else attempt.lock_on_failure(guard)
        )
