"""A meeting to call about, as the meeting tests and the trace and replay tests add it."""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta
from typing import Any

from callflow.config import Settings
from callflow.hours import LONDON
from callflow.service import Callflow
from callflow.simulator import Simulator
from callflow.simulator.session import in_process
from callflow.store import Store
from tests.conftest import FLOWS

CUSTOMER = "+447700900123"

OFFICER = "4471203"

def add_meeting(service: Callflow, **extra: Any) -> dict[str, Any]:
    """A meeting (Tuesday 4 March 2031 at 2pm, or the next weekday at 2pm its officer is
    free then, unless ``when`` is given: an officer never has two meetings at once)."""
    officer = str(extra.get("officer_number", OFFICER))
    day = date(2031, 3, 4)
    while day.weekday() >= 5 or service.meetings.diary.holder(
        officer, datetime.combine(day, time(14, 0), LONDON)
    ):
        day += timedelta(days=1)
    values: dict[str, Any] = {
        "customer_name": "Pat Example",
        "customer_number": CUSTOMER,
        "reference": "DM-2041-77",
        "officer_number": OFFICER,
        "purpose": "other",
        "about": "agreeing time to pay",
        "bring": "your bank statements",
        "when": f"{day.isoformat()}T14:00",
        "where": "the H M R C office in Leeds",
        "place": "hmrc_office",
        "date_of_birth": "1970-03-21",
        "by": "tester",
    }
    values.update(extra)
    return service.meetings.add(**values)


def meeting_world(store: Store, start: float) -> tuple[Simulator, Callflow]:
    """The simulator and a service on ``store`` reaching each other, on a virtual clock
    from ``start``: where meeting calls are placed and answered."""
    token = secrets.token_hex(16)

    def make(client: Any, clock: Any) -> Callflow:
        settings = Settings(
            twilio_auth_token=token,
            public_base_url="http://callflow.test",
            secret_key=secrets.token_bytes(32),
            hash_cost=10,
            flows_dir=FLOWS,
        ).checked()
        return Callflow(settings, store=store, clock=clock, twilio_client=client)

    return in_process(make, token, start=start)
