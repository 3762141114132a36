"""How much of a working day's real calls the replay gate reproduces, per shipped flow.

    .venv/bin/python bench/replay.py [CALLERS]     # default 30 callers: about 20 s

The demo world (callflow/demo_world.py: its advisers, agents Alex and Robin, specialists on
their own phones, call-backs) takes CALLERS scripted calls on a virtual clock, on the
embedded store; then every live flow is replayed against itself, as a publish would
replay it against a candidate. Each call should come out "same": a call that does not is
listed with where it parted from its real path.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter

from callflow.demo_world import DemoWorld
from callflow.replay import Replayer


def main() -> int:
    logging.disable(logging.WARNING)
    callers = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    world = DemoWorld(base_url="http://callflow.demo", say=lambda _text: None)
    world.seed()
    started = time.monotonic()
    for _ in range(callers):  # a caller every 40 s of virtual time; Robin works meanwhile
        world._caller()
        for _ in range(8):
            world.sim.advance(5)
            world._robot_step()
            world.workers()
    for _ in range(50):  # the day ends: the last calls finish, call-backs are made
        world.sim.advance(30)
        world._robot_step()
        world.workers()
    made = time.monotonic() - started
    svc = world.service
    replayer = Replayer(svc, svc.settings.flows_dir, svc.registry)
    total: Counter[str] = Counter()
    started = time.monotonic()
    for name in sorted(svc.library.live_versions()):
        report = replayer.replay(svc.library.live(name), svc.settings.replay_calls)
        outcomes = Counter(c.outcome for c in report.calls)
        total.update(outcomes)
        print(f"{name:<20} {len(report.calls):>4} calls  {dict(outcomes)}"
              + ("  (too few compared)" if report.too_few and report.calls else ""))  # fmt: skip
        for call in report.calls:
            if call.outcome != "same":
                print(f"    {call.call_sid} {call.outcome}: {call.why}")
    calls = sum(total.values())
    same = total.get("same", 0)
    print(f"reproduced {same} of {calls} ({100 * same / max(calls, 1):.0f}%); the day took "
          f"{made:.1f} s to make, its replay {time.monotonic() - started:.1f} s")  # fmt: skip
    return 0 if same == calls else 1


if __name__ == "__main__":
    raise SystemExit(main())
