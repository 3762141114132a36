#!/usr/bin/env python3
"""Day 400 as fast as day 1: the questions the service answers, after a day's work and
after a year of history.

    .venv/bin/python bench/history.py --records 100000     # the target run (minutes)
    .venv/bin/python bench/history.py --records 1000000    # a bigger year (an hour or so)
    .venv/bin/python bench/history.py --records 1000       # a quick look

It uses Redis database 14 (flushed before and after; CALLFLOW_BENCH_REDIS_URL picks
another). Each run writes through the service's own code: verified calls (each with an
agent), hand-offs, grants (issued and ended, each with its audit entries) and meetings
(added and settled, each with its audit entries), one of each per record.

- N=0 is day one: the store holds only today's work (``TODAY`` records in the last day:
  ten calls for each agent, ten grants for each of forty customers), the things asked
  about.
- N is day 400: the same day's work, after N records of history spread over the year
  before it (the last 28 days included, so the auditor's period is as full as it would be).

Both runs ask the same questions about the same subjects, so any difference is the cost
of history. Each question is asked ``--repeat`` times, and p50 and p99 are taken:

- the grant on a call;
- the grants for a customer;
- the agent's and the specialist's console state;
- the auditor's page (the last 28 days);
- the hand-off stats;
- a /metrics scrape;
- one sweep pass;
- one hand-off end to end, through the local Twilio simulator (verification, agent,
  warm transfer, SEES ID check, grant, hang-up).

Redis keeps its own time, so nothing expires while the bench fills the store. That makes
it the worst case: a year of call records that would normally have gone after 30 days.
Redis memory per record is measured over the history (one record = one of each kind), as
the MEMORY USAGE of the database's keys, so other tenants of the instance do not count.
Results go to bench/results/history.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from twilio.rest import Client  # noqa: E402

from callflow.access import Viewer  # noqa: E402
from callflow.clock import ManualClock  # noqa: E402
from callflow.config import Settings  # noqa: E402
from callflow.desks import AgentDesk, AuditorDesk, SpecialistDesk  # noqa: E402
from callflow.handoff.grants import RECORD_TTL  # noqa: E402
from callflow.links import ServiceLinks  # noqa: E402
from callflow.metrics import exposition  # noqa: E402
from callflow.reports import today_utc  # noqa: E402
from callflow.service import Callflow  # noqa: E402
from callflow.simulator import Callee, Script, Simulator, WsgiTransport  # noqa: E402
from callflow.simulator.rest import RestApi, SimulatorHttpClient  # noqa: E402
from callflow.store.redis import RedisStore  # noqa: E402
from callflow.vstrs import RECORD_TTL as CALL_TTL  # noqa: E402

REDIS_URL = os.environ.get("CALLFLOW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
#: Day one lives beside day 400, in a database of its own on the same Redis, so the two
#: are asked in turn (ABAB) and the machine's noise falls on both alike.
BASELINE_URL = os.environ.get("CALLFLOW_BENCH_BASELINE_REDIS_URL", "redis://127.0.0.1:6379/13")
RESULTS = ROOT / "bench" / "results"
BASE = "https://callflow.bench"
VSTRS = "+441632960999"
TEAM_NUMBER = "+441632960200"
ADVISER, PIN = "1001", "246810"
ANSWERS = {"first_school": "Hill Top", "favourite_colour": "blue"}
YEAR = 366 * 86400
AGENTS = 40
TEAMS = 8
CUSTOMERS_PER = 10  # grants per customer, on average
TODAY = AGENTS * 10  # a day's work: ten calls for each agent
TODAY_CUSTOMERS = 9_000_000_000  # today's customers' references start here


class Bench:
    """The service on Redis, the simulator in process, agents, teams and an adviser."""

    def __init__(self, start: float, url: str = REDIS_URL) -> None:
        raw = redis.Redis.from_url(url, decode_responses=True)
        raw.flushdb()
        self.raw = raw
        self.clock = ManualClock(start)
        token = secrets.token_hex(16)
        self.sim = Simulator(None, token, clock=self.clock)
        client = Client(
            self.sim.account_sid, token, http_client=SimulatorHttpClient(RestApi(self.sim))
        )
        settings = Settings(
            twilio_auth_token=token,
            public_base_url=BASE,
            secret_key=secrets.token_bytes(32),
            hash_cost=10,
            metrics_token="m" * 32,
        ).checked()
        self.svc = Callflow(
            settings,
            store=RedisStore.from_url(url),
            clock=self.clock,
            rng=random.Random(1),
            twilio_client=client,
        )
        from webhooks import create_app

        self.sim.transport = WsgiTransport(create_app({"CALLFLOW_SERVICE": self.svc}))
        self.sim.configure_number(
            VSTRS, f"{BASE}/voice/incoming", status_callback=f"{BASE}/voice/status"
        )
        self.links = ServiceLinks(BASE)
        now = self.clock.now()
        svc = self.svc
        svc.directory.add(
            ADVISER,
            "Sam Adviser",
            "taxaid",
            phone="+44 20 7946 0000",
            consent_to_act=True,
            now=now,
            by="bench",
        )
        svc.directory.set_pin(ADVISER, PIN, now, by="bench")
        svc.directory.set_answers(ADVISER, ANSWERS, now, by="bench")
        for n in range(AGENTS):
            svc.staff.add_agent(f"{200000 + n}", f"Agent {n}", f"client:agent{n}", now, by="bench")
        for n in range(TEAMS):
            svc.staff.add_team(
                f"team_{n}",
                f"Team {n}",
                "",
                [f"+4416329602{n:02d}"],
                "Mon-Sun 00:00-24:00",
                by="bench",
                nation="none",
            )
            # Each team's specialist, on a phone of their own.
            svc.staff.add_specialist(
                f"{300000 + n}", f"Specialist {n}", f"team_{n}", f"client:spec{n}", now, by="bench"
            )
        svc.staff.add_officer("4471203", "Alex Morgan", now, by="bench")

    # -- one hand-off end to end, through the simulator

    def handoff_end_to_end(self) -> None:
        svc, sim = self.svc, self.sim
        agent = "200000"
        svc.staff.set_availability(agent, "available", self.clock.now())
        sim.add_callee(
            "client:agent0", Callee("answered", after=2, script=Script().hang_up(after=5000))
        )
        script = (
            Script()
            .press(f"{ADVISER}#")
            .press(f"{PIN}#")
            .answer({"first school": "Hill Top", "colour": "blue"})
            .hang_up(after=5000)
        )
        caller = sim.call(VSTRS, f"+4477{random.randrange(10**8):08d}", script)
        assert sim.run_until(lambda: (svc.vstrs.get(caller.sid) or {}).get("state") == "with_agent")
        specialist = Script().press(f"{agent}#").press("1").hang_up(after=5000)
        sim.add_callee("client:spec0", Callee("answered", after=3, script=specialist))
        svc.staff.set_specialist_availability("300000", "available", self.clock.now())
        body = {
            "team": "team_0",
            "customer": {"name": "Pat Example", "reference": "AB123456C"},
            "issue": "Time to pay",
            "need": "time_to_pay",
            "authorisation": {
                "type": "signed",
                "date": today_utc(self.clock.now()).isoformat(),
                "reference": "B-1",
            },
        }
        handoff = svc.handoffs.request(caller.sid, agent, body, self.links)
        assert sim.run_until(
            lambda: (svc.handoffs.get(handoff["id"]) or {}).get("state") == "briefing"
        )
        svc.handoffs.complete(handoff["id"], self.links, agent_sees_id=agent)
        sim.hang_up(caller)
        sim.run(max_seconds=120)
        assert (svc.handoffs.get(handoff["id"]) or {}).get("state") == "ended"

    # -- a year of history, written by the service's own code

    def fill(self, records: int, start: float, end: float, customer_base: int) -> float:
        """Write ``records`` of each kind, evenly between ``start`` and ``end``."""
        svc = self.svc
        began = time.perf_counter()
        step = (end - start) / max(records, 1)
        customers = max(records // CUSTOMERS_PER, 1)
        for i in range(records):
            self.clock.set(start + i * step)
            now = self.clock.now()
            call_sid = "CA" + secrets.token_hex(16)
            agent = f"{200000 + i % AGENTS}"
            team = f"team_{i % TEAMS}"
            verified = {
                "adviser_number": ADVISER, "adviser_name": "Sam Adviser", "organisation": "taxaid",
                "organisation_name": "Tax Aid", "consent_to_act": True, "method": "keypad",
                "question": "first_school", "verified_at": now,
            }  # fmt: skip
            svc.vstrs.start(call_sid, verified, "+447700900000", self.links)
            handoff_id = "HO" + secrets.token_hex(8)
            leg = "CA" + secrets.token_hex(16)

            def connected(
                d: dict[str, Any] | None,
                agent: str = agent,
                hid: str = handoff_id,
                now: float = now,
            ) -> dict[str, Any] | None:
                if d is None:
                    return None
                person = {"sees_id": agent, "name": f"Agent {agent}", "call_sid": "CA" + "1" * 32,
                          "since": now, "joined_at": now, "left_at": now + 300}  # fmt: skip
                return {**d, "state": "ended", "agent": person, "agents": [agent],
                        "handoffs": [hid], "ended_at": now + 600, "end_reason": "completed"}  # fmt: skip

            svc.store.update_doc("vstrs_calls", call_sid, connected, ttl_seconds=CALL_TTL)
            reference = f"{customer_base + i % customers}"
            handoff = {
                "id": handoff_id, "call_sid": call_sid, "conference": f"vstrs-{call_sid}",
                "conference_sid": None, "team": team, "team_name": f"Team {team}",
                "numbers": ["+441632960200"], "agent_sees_id": agent, "agent_name": "Agent",
                "agent_call_sid": "CA" + "1" * 32,
                "customer": {"name": "Pat Example", "reference_type": "utr", "reference": reference},
                "organisation": "taxaid", "organisation_name": "Tax Aid",
                "adviser": {"name": "Sam Adviser", "adviser_number": ADVISER},
                "taken_by": {"id": f"{300000 + i % TEAMS}", "name": "Specialist",
                             "how": "answered", "at": now},
                "consent_to_act": False, "issue": "Time to pay",
                "callback": {"urgent": False, "turnaround": ""},
                "authorisation": {"type": "signed", "date": "2026-01-01", "reference": "B-1"},
                "state": "taken_over", "reason": None, "requested_at": now, "updated_at": now,
                "ringing": None, "tried": [], "specialist_call_sid": leg, "grant_id": None,
                "history": [{"at": now, "state": "requested"}],
            }  # fmt: skip
            svc.store.put_doc("handoffs", handoff_id, handoff, ttl_seconds=RECORD_TTL)
            grant_id = svc.handoffs.grants.issue(handoff)  # its audit entry, then the grant
            self.clock.advance(240)
            svc.handoffs.grants.end(grant_id, "completed")  # and its end, audited
            svc.store.update_doc(
                "handoffs", handoff_id,
                lambda d, g=grant_id: {**d, "state": "ended", "grant_id": g} if d else None,
                ttl_seconds=RECORD_TTL,
            )  # fmt: skip
            for field in ("org:taxaid", f"agent:{agent}", f"team:{team}", "all"):
                svc.store.count("handoffs", field)
            meeting = svc.meetings.add(
                customer_name="Pat Example", customer_number="+447700900123", reference=f"DM-{i}",
                officer_number="4471203", purpose="time_to_pay", bring="statements", place="hmrc_office",
                when="2031-03-04T14:00", where="Leeds", date_of_birth="1970-03-21", by="bench",
                call_at=now + YEAR,
            )  # fmt: skip
            svc.meetings.cancel(meeting["id"], "bench")
            if i and i % 10000 == 0:
                rate = i / (time.perf_counter() - began)
                print(f"  {i} records written ({rate:.0f}/s)", flush=True)
        return time.perf_counter() - began


def stored_bytes(raw: redis.Redis) -> int:
    """What this database's keys take in Redis (MEMORY USAGE of each), so another
    database's tenants on the same instance (a test run, the baseline) do not count."""
    total = 0
    batch: list[str] = []

    def flush() -> int:
        pipe = raw.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
        sizes = pipe.execute()
        batch.clear()
        return sum(size or 0 for size in sizes)

    for key in raw.scan_iter(count=2000):
        batch.append(key)
        if len(batch) >= 2000:
            total += flush()
    if batch:
        total += flush()
    return total


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p99 (nearest rank) of samples in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {"p50_ms": round(statistics.median(ordered), 3), "p99_ms": round(p99, 3)}


def questions(bench: Bench) -> dict[str, Callable[[], Any]]:
    """The questions, about today's subjects (the same in every run)."""
    svc = bench.svc
    (record,) = svc.vstrs.recent_for_agent("200001", count=1)
    call_sid = record["call_sid"]
    specialist = Viewer("specialist", team="team_1", specialist="300001")
    agent = Viewer("vstrs_agent", sees_id="200001")
    admin = Viewer("admin")
    day = today_utc(bench.clock.now())
    since = day - timedelta(days=27)
    customer = f"{TODAY_CUSTOMERS + 1}"
    return {
        "grant_for_call": lambda: svc.handoffs.grant_for_call(call_sid, admin),
        "grants_for_customer": lambda: svc.handoffs.grants_for_customer(customer, specialist),
        "agent_console": lambda: AgentDesk(svc).state(agent),
        "specialist_console": lambda: SpecialistDesk(svc).state(specialist),
        "auditor_page": lambda: AuditorDesk(svc).page(since, day, None),
        "handoff_stats": lambda: svc.handoffs.stats(admin),
        "metrics_scrape": lambda: exposition(svc.store),
        "sweep_pass": svc.handoffs.sweep,
        "handoff_end_to_end": bench.handoff_end_to_end,
    }


def redis_commands(bench: Bench, work: Callable[[], Any]) -> int:
    """How many Redis commands one answer takes (INFO commandstats around one call)."""
    bench.raw.config_resetstat()
    work()
    stats = bench.raw.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if not k.startswith("cmdstat_config"))


def measure(
    runs: dict[str, Bench], repeat: int, end_to_end: int
) -> dict[str, dict[str, dict[str, float]]]:
    """Every question, asked of each run in turn (the order swapped each round), after one
    unmeasured round: p50, p99 and Redis commands per answer, per run."""
    asked = {label: questions(bench) for label, bench in runs.items()}
    labels = list(runs)
    results: dict[str, dict[str, dict[str, float]]] = {label: {} for label in labels}
    for name in asked[labels[0]]:
        rounds = end_to_end if name == "handoff_end_to_end" else repeat
        samples: dict[str, list[float]] = {label: [] for label in labels}
        for r in range(rounds + 1):
            for label in labels if r % 2 else reversed(labels):
                started = time.perf_counter()
                asked[label][name]()
                if r:
                    samples[label].append((time.perf_counter() - started) * 1000)
        for label in labels:
            commands = redis_commands(runs[label], asked[label][name])
            results[label][name] = {**percentiles(samples[label]), "redis_commands": commands}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1000, help="times each question is asked")
    parser.add_argument(
        "--end-to-end", type=int, default=30, help="hand-offs end to end in each run"
    )
    parser.add_argument("--output", default=str(RESULTS / "history.json"))
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the service logs every step; the bench is about time
    end = time.time()
    start, today = end - YEAR, end - 86400

    def day_one(bench: Bench) -> None:
        bench.fill(TODAY, today, end, TODAY_CUSTOMERS)
        bench.clock.set(end)
        bench.handoff_end_to_end()  # every code path once, in both, before measuring

    baseline = Bench(start, BASELINE_URL)
    bench = Bench(start)
    try:
        print(f"day one: {TODAY} records today", flush=True)
        day_one(baseline)
        print(
            f"day 400: {args.records} records over the year before, then the same day", flush=True
        )
        memory_before = stored_bytes(bench.raw)
        seconds = bench.fill(args.records, start, today, 1_000_000_000)
        memory_after = stored_bytes(bench.raw)
        day_one(bench)
        print(f"  filled in {seconds:.0f} s; measuring, the two in turn", flush=True)
        measured = measure({"empty": baseline, "full": bench}, args.repeat, args.end_to_end)
        empty, full = measured["empty"], measured["full"]
        ratios = {
            name: round(full[name]["p99_ms"] / empty[name]["p99_ms"], 2)
            if empty[name]["p99_ms"]
            else None
            for name in empty
        }
        results = {
            "records": args.records,
            "repeat": args.repeat,
            "end_to_end": args.end_to_end,
            "fill_seconds": round(seconds, 1),
            "redis_bytes_per_record": round((memory_after - memory_before) / max(args.records, 1)),
            "redis_keys": bench.raw.dbsize(),
            "empty": empty,
            "full": full,
            "p99_ratio": ratios,
            "target": "every p99 at N within 1.2x of N=0",
            "met": all(r is not None and r <= 1.2 for r in ratios.values()),
        }
    finally:
        bench.raw.flushdb()
        baseline.raw.flushdb()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))
    width = max(len(n) for n in empty)
    print(
        f"{'question':<{width}}  N=0 p50/p99 ms  (cmds)   N={args.records} p50/p99 ms  (cmds)"
        "   p99 ratio"
    )
    for name in empty:
        e, f = empty[name], full[name]
        print(
            f"{name:<{width}}  {e['p50_ms']:7.2f} {e['p99_ms']:8.2f} ({e['redis_commands']:4})   "
            f"{f['p50_ms']:8.2f} {f['p99_ms']:8.2f} ({f['redis_commands']:4})    {ratios[name]}"
        )
    print(f"Redis bytes per record (one of each kind): {results['redis_bytes_per_record']}")
    print(f"target met: {results['met']}")


if __name__ == "__main__":
    main()
