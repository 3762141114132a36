"""Fixtures for the web layer's tests: staff with console accounts."""

from __future__ import annotations

import pytest

from callflow.service import Callflow
from tests.rigs import PASSWORD

__all__ = ["PASSWORD", "staffed"]


@pytest.fixture
def staffed(service: Callflow) -> Callflow:
    now = service.clock.now()
    service.staff.add_agent("123456", "Amy Agent", "client:amy", now, by="tests")
    service.staff.add_team(
        "debt_pursuit",
        "Debt Pursuit",
        "",
        ["+441632960200"],
        "Mon-Sun 00:00-24:00",
        by="tests",
        nation="none",
    )
    service.accounts.add(
        "amy", "Amy Agent", "vstrs_agent", PASSWORD, now, sees_id="123456", by="tests"
    )
    service.staff.add_specialist(
        "300101", "Sam Specialist", "debt_pursuit", "client:sam", now, by="tests"
    )
    service.accounts.add(
        "sam", "Sam Specialist", "specialist", PASSWORD, now, specialist="300101", by="tests"
    )
    return service
