"""A meeting to call about, as the meeting tests and the trace and replay tests add it."""

from __future__ import annotations

from typing import Any

from callflow.service import Callflow

CUSTOMER = "+447700900123"

OFFICER = "4471203"

def add_meeting(service: Callflow, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "customer_name": "Pat Example",
        "customer_number": CUSTOMER,
        "reference": "DM-2041-77",
        "officer_number": OFFICER,
        "purpose": "other",
        "about": "agreeing time to pay",
        "bring": "your bank statements",
        "when": "2031-03-04T14:00",
        "where": "the H M R C office in Leeds",
        "place": "hmrc_office",
        "date_of_birth": "1970-03-21",
        "by": "tester",
    }
    values.update(extra)
    return service.meetings.add(**values)
