"""Redis stopped and restarted while a disclosure grant is active: never kept by doubt.

The caller's hang-up may arrive while Redis is down; its status callback cannot end the
grant and Twilio does not send it again. When the store answers again every active grant
is suspended until the sweep has asked Twilio whether its legs are still live.
"""

from __future__ import annotations

from callflow.clock import ManualClock
from callflow.handoff import IN_DOUBT
from callflow.store.breaker import CircuitBreaker
from callflow.store.redis import RedisStore
from tests.conftest import RedisProcess
from tests.rigs import Rig


def _rig_with_a_grant(own_redis: RedisProcess) -> tuple[Rig, object]:
    import time

    store = RedisStore.from_url(
        f"redis://127.0.0.1:{own_redis.port}/0",
        socket_timeout=0.3,
        breaker=CircuitBreaker(threshold=50, cooldown=0.5),
    )
    rig = Rig(store, ManualClock(time.time()))
    caller, _ = rig.taken_over()
    assert rig.grant(caller)["authorised"]
    return rig, caller


def _grant_answer(rig: Rig, caller: object) -> tuple[int, dict[str, object]]:
    response = rig.api.get(
        f"/api/calls/{caller.sid}/grant",  # type: ignore[attr-defined]
        headers=rig.auth(rig.specialist_token),
    )
    return response.status_code, response.get_json()


def test_a_hang_up_lost_in_an_outage_ends_the_grant_and_nothing_authorises_meanwhile(
    own_redis: RedisProcess,
) -> None:
    rig, caller = _rig_with_a_grant(own_redis)
    own_redis.kill()
    rig.sim.hang_up(caller)  # type: ignore[arg-type]
    rig.sim.run()  # the status callbacks meet a dead store
    status, answer = _grant_answer(rig, caller)
    assert status == 503 and answer.get("authorised") is not True

    own_redis.start()  # the data is back (AOF), the lost hang-up is not
    status, answer = _grant_answer(rig, caller)
    assert status == 200 and answer["authorised"] is False and answer["reason"] == IN_DOUBT

    ended = rig.svc.handoffs.sweep()  # asks Twilio (the simulator): the caller's leg is over
    assert [reason for _, reason in ended] == ["swept_caller_leg_completed"]
    status, answer = _grant_answer(rig, caller)
    assert answer["authorised"] is False and "call is over" in str(answer["reason"])
    kinds = [k for k, _ in rig.kinds(caller)]  # type: ignore[arg-type]
    assert kinds.count("grant.issued") == 1 and kinds.count("grant.ended") == 1


def test_a_call_still_live_after_an_outage_gets_its_authority_back_once_checked(
    own_redis: RedisProcess,
) -> None:
    rig, caller = _rig_with_a_grant(own_redis)
    own_redis.kill()
    assert _grant_answer(rig, caller)[0] == 503
    own_redis.start()
    status, answer = _grant_answer(rig, caller)
    assert status == 200 and answer["reason"] == IN_DOUBT
    assert rig.svc.handoffs.sweep() == []
    assert _grant_answer(rig, caller)[1]["authorised"] is True
