"""A hand-off request as the agent sends it: each field checked, each error named.

The customer's reference is a UTR (whose first digit checks the other nine, so a
mistyped one is caught before a specialist discloses about the wrong customer) or a
National Insurance number; the authorisation is the one the voluntary organisation holds
from the customer (signed or recorded oral, its date and the organisation's reference).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from stdnum.gb import utr

__all__ = ["FIELDS", "NINO", "UTR", "validate_request"]

NINO = re.compile(r"^(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]$")
UTR = re.compile(r"^[0-9]{10}$")
#: The request's top-level fields.
FIELDS = frozenset(
    {"team", "customer", "issue", "need", "need_detail", "callback", "authorisation"}
)


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
    unknown = set(body) - FIELDS
    for key in sorted(unknown):
        errors[key] = "unknown field"
    return clean, errors


