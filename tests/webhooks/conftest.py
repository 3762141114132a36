"""Fixtures for the web layer's tests: staff with console accounts."""

from __future__ import annotations

import pytest

from callflow.service import Callflow

PASSWORD = "correct horse battery"


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
    service.accounts.add(
        "sam", "Sam Specialist", "specialist", PASSWORD, now, team="debt_pursuit", by="tests"
    )
    return service
