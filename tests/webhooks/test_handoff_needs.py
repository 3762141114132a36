"""Hand-offs watched (DMBM512015: they should stay minimal): every hand-off says why it
needed a specialist, from a list the admin keeps; the reasons are counted on the
supervisor's and auditor's pages and in /metrics; a share over
CALLFLOW_HANDOFF_SHARE_ALERT is warned of; the grant carries the matter. Both stores."""

from __future__ import annotations

import json
import re

import pytest

from callflow.clock import ManualClock
from callflow.desks import SupervisorDesk
from callflow.gauges import MIN_VERIFIED, handoff_share
from callflow.store import Store
from tests.conftest import METRICS_TOKEN
from tests.rigs import PASSWORD, SUE, TEAM_FIRST, Rig, accepting, csrf_from, sign_in


@pytest.fixture
def rig(store: Store, clock: ManualClock) -> Rig:
    rig = Rig(store, clock, handoff_share_alert=0.5)
    now = clock.now()
    for username, role in (("ada", "admin"), ("amy", "auditor"), ("sue", "supervisor")):
        rig.svc.accounts.add(username, username.title(), role, PASSWORD, now, by="tests")
    return rig


def test_a_hand_off_records_why_and_it_is_counted_everywhere(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting())
    response = rig.request(caller, need="enforcement", need_detail="  bailiffs   booked ")
    assert response.status_code == 201, response.get_json()
    handoff = rig.handoff(response.get_json()["id"])
    assert handoff["need"] == {
        "id": "enforcement",
        "label": "Enforcement action",
        "detail": "bailiffs booked",
    }
    (requested,) = [e for e in rig.svc.audit.entries() if e["kind"] == "handoff.requested"]
    assert requested["need"] == "enforcement"
    today = SupervisorDesk(rig.svc).floor(SUE)["today"]
    assert today["needs"] == [
        {"id": "enforcement", "label": "Enforcement action", "count": 1}
    ]
    # One verified call, one hand-off: a share of 1, over the threshold of 0.5.
    assert today["handoff_share"] == 1.0 and today["share_over"]
    sue = rig.app.test_client()
    assert sign_in(sue, "sue").status_code == 303
    page = sue.get("/console/supervisor").get_data(as_text=True)
    assert 'id="share-warning"' in page and "100% of verified calls today" in page
    assert "Enforcement action" in page
    amy = rig.app.test_client()
    assert sign_in(amy, "amy").status_code == 303
    auditor = amy.get("/console/auditor").get_data(as_text=True)
    assert "Hand-offs by why a specialist was needed" in auditor
    assert "<title>hand-offs, Enforcement action: 1</title>" in auditor
    assert 'id="share-warning"' in auditor and "Tax Aid (100%)" in auditor


def test_the_metrics_count_reasons_and_say_when_the_share_is_over(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting())
    assert rig.request(caller, need="insolvency").status_code == 201
    page = rig.api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    text = page.get_data(as_text=True)
    assert 'callflow_handoffs_today{need="insolvency"} 1.0' in text
    assert "callflow_handoff_share_today 1.0" in text
    assert "callflow_handoff_share_threshold 0.5" in text
    # One verified call is not a trend: the alert waits for MIN_VERIFIED of them.
    assert "callflow_handoff_share_over_threshold 0.0" in text
    assert "callflow_worker_heartbeat{worker=\"callbacks\"} 0.0" in text
    assert re.search(r"callflow_audit_chain_ok -1\.0", text), "no checkpoint to compare with"
    verified, handoffs, needs = handoff_share(
        {"v|taxaid|verified": MIN_VERIFIED, "ho|taxaid|t": 12, "hn|taxaid|other": 12}
    )
    assert (verified, handoffs, needs) == (MIN_VERIFIED, 12, {"other": 12})


def test_the_admin_keeps_the_list_and_a_retired_reason_stays_on_old_hand_offs(rig: Rig) -> None:
    caller = rig.caller_with_agent()
    rig.specialist(TEAM_FIRST, accepting())
    first = rig.request(caller, need="disputed_debt").get_json()
    ada = rig.app.test_client()
    assert sign_in(ada, "ada").status_code == 303
    page = ada.get("/console/admin/needs")
    assert page.status_code == 200 and "Disputed debt" in page.get_data(as_text=True)
    token = csrf_from(page.data)
    bad = ada.post("/console/admin/needs/add", data={"csrf_token": token, "id": "Bad Id", "label": ""})
    assert bad.status_code == 400
    assert "Enter an id of lower-case letters" in bad.get_data(as_text=True)
    added = ada.post(
        "/console/admin/needs/add",
        data={"csrf_token": token, "id": "hardship", "label": "Severe financial hardship"},
    )
    assert added.status_code == 303
    retired = ada.post("/console/admin/needs/retire", data={"csrf_token": token, "id": "disputed_debt"})
    assert retired.status_code == 303
    offered = [n["id"] for n in rig.svc.handoffs.needs.active()]
    assert "hardship" in offered and "disputed_debt" not in offered
    assert rig.handoff(first["id"])["need"]["id"] == "disputed_debt", "kept on the hand-off"
    kinds = [(e["kind"], e["by"]) for e in rig.svc.audit.entries() if e["kind"].startswith("handoff.need")]
    assert kinds == [("handoff.need_added", "ada"), ("handoff.need_retired", "ada")]
    # An agent can no longer choose it.
    need, errors = rig.svc.handoffs.needs.check("disputed_debt", "")
    assert need is None and "one of" in errors["need"] and "disputed_debt" not in errors["need"]
    form = ada.get("/console/admin/needs").get_data(as_text=True)
    assert "Retired" in form and "Severe financial hardship" in form


def test_the_cli_keeps_the_list_as_a_signed_in_admin(
    redis_store: object, monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    from callflow.cli.main import main
    from callflow.config import Settings
    from callflow.service import Callflow
    from tests.conftest import TEST_REDIS_URL, cli_sign_in

    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setenv("CALLFLOW_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("CALLFLOW_HASH_COST", "10")
    svc = Callflow(Settings.from_env())
    assert main(["handoff-reasons", "add", "hardship", "--label", "Hardship"]) == 1
    assert "callflow login" in capsys.readouterr().err
    cli_sign_in(monkeypatch, Path(str(tmp_path)), svc, "admin")
    assert main(["handoff-reasons", "add", "hardship", "--label", "Hardship"]) == 0
    assert main(["handoff-reasons", "retire", "other"]) == 0
    assert main(["handoff-reasons", "list"]) == 0
    listed = capsys.readouterr().out
    assert "hardship             offered  Hardship" in listed
    assert "other                retired" in listed


def test_the_grant_carries_the_matter(rig: Rig) -> None:
    caller, _handoff = rig.taken_over(accepting())
    grant = rig.grant(caller)
    assert grant["authorised"] and grant["grant"]["matter"] == "Wants time to pay"
    assert "matter" not in json.dumps(rig.grant(caller, rig.agent_token).get("grant", {})), (
        "the agent sees which team holds it, never the matter"
    )
