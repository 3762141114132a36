"""The TypedDicts in callflow/records.py are the stored documents' real shapes: a whole
handed-off call, a call-back, a meeting, a trace summary and a release, each written by
its owning service, have every required key and no key the type does not name."""

from __future__ import annotations

from typing import Any, NotRequired, get_origin, get_type_hints

import pytest

from callflow.clock import ManualClock
from callflow.records import (
    Attempt,
    Callback,
    CallRecord,
    Grant,
    HandOff,
    Meeting,
    Release,
    TraceSummary,
)
from callflow.store import Store
from tests.conftest import FLOWS, person
from tests.rigs import Rig
from tests.rigs.meetings import add_meeting


def fits(doc: dict[str, Any] | None, shape: type) -> None:
    assert doc is not None, shape.__name__
    hints = get_type_hints(shape, include_extras=True)
    keys = set(hints)
    # (__required_keys__ counts every key under postponed annotations: read NotRequired here)
    required = {k for k, hint in hints.items() if get_origin(hint) is not NotRequired}
    assert required <= set(doc), f"{shape.__name__} lacks {sorted(required - set(doc))}"
    assert set(doc) <= keys, f"{shape.__name__} does not name {sorted(set(doc) - keys)}"


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    return Rig(store, clock)


def test_a_handed_off_call_is_stored_as_its_types_say(rig: Rig) -> None:
    caller, handoff = rig.taken_over()
    record = rig.svc.vstrs.get(caller.sid)
    fits(dict(record) if record else None, CallRecord)
    stored = rig.svc.handoffs.get(handoff["id"])
    fits(dict(stored) if stored else None, HandOff)
    assert stored is not None and stored["grant_id"]
    grant = rig.svc.handoffs.grants.get(stored["grant_id"])
    fits(dict(grant) if grant else None, Grant)
    rig.sim.hang_up(caller)
    rig.sim.run()
    summary = rig.svc.store.get_doc("traces", caller.sid)
    fits(summary, TraceSummary)


def test_a_call_back_a_meeting_and_a_release_are_stored_as_their_types_say(rig: Rig) -> None:
    svc = rig.svc
    verified = {"adviser_number": "1001", "adviser_name": "Sam Adviser",
                "organisation": "taxaid", "organisation_name": "Tax Aid"}  # fmt: skip
    callback = svc.callbacks.note(
        "CA" + "4" * 32, verified, arrived_at=svc.clock.now(), language="en-GB", relay=False,
        routing=None, reason="no_agent",
    )  # fmt: skip
    fits(dict(callback) if callback else None, Callback)
    svc.staff.add_officer("4471203", "Alex Morgan", svc.clock.now(), by="tests")
    meeting = add_meeting(svc)
    fits(dict(meeting), Meeting)
    source = (FLOWS / "officer_check.yaml").read_text().replace(
        "Thank you for calling. Goodbye.", "Thank you for checking. Goodbye."
    )
    tests = (FLOWS / "officer_check.test.yaml").read_text()
    svc.releases.publish(source, tests, person("dana"), message="a warmer goodbye")
    release = svc.releases.release("officer_check")
    fits(dict(release) if release else None, Release)


def test_an_attempt_is_what_the_outbound_module_records() -> None:
    assert set(get_type_hints(Attempt)) == {"call_sid", "at", "result", "claim"}
