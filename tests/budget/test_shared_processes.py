"""Routers in separate processes share one account's write budget through Redis (issue 15),
measured where the exchange counts: the simulator in a process of its own and each router in
another (``benchmarks/_shared_budget``: same key, one TOML config naming the sim and Redis).
Each router alone asks for more than the whole budget, and cancels its resting orders now and
then. Over the steady window (the harness's rule): no 429, at least 98 % of the exchange's
budget used, and no cancel waits behind another host's creates (the bucket booked every
cancel to go at once). Also: Redis restarted mid-run, and a router killed with SIGKILL.

The default suite runs N = 4 at Premier and 8 at Prime, 3 s each, and one run with both
events (N = 2 at Basic is in tests/benchmarks/test_bench_shared_budget.py);
``KALSHI_ROUTER_CHAOS_LONG=1`` every N of 2, 4, 8 at each of the three tiers, 8 s each.
Measured on two cores: even 8 routers at Prime use under 10 % of a core each (the budget is
20 batches a second), so no router is CPU-bound; starting 8 interpreters takes a few seconds.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from _shared_budget import Event, Plan, fitting_credit, run
from _sim import tier

from tests.long import is_long
from tests.redis_server import RedisServer

LONG = is_long("CHAOS")
SECONDS = 8.0 if LONG else 3.0
TIERS = ("basic", "premier", "prime")
MATRIX = [(t, n) for t in TIERS for n in (2, 4, 8)]
# N = 2 at Basic runs in the default suite too, in tests/benchmarks/test_bench_shared_budget.py.
RUNS = MATRIX if LONG else [("premier", 4), ("prime", 8)]
USED = 0.98
CANCEL_COST = 2
"""Tokens per cancel (V2's, and the simulator's)."""
MAX_LATE_MS = 250.0
"""A booking may be sent up to the whole headroom late (``limits.headroom_s``, 0.25 s): the
most lateness the model absorbs, so the hardest case for 429s. And a busy machine (8 routers,
Redis and the simulator on two cores, beside the rest of the suite) stalls a router or Redis
past the default 50 ms now and then: the booking is forfeited, or creates are blocked until
Redis answers in time again, and the batch goes a round later; in a 3 s window, one batch is
2 % of the budget at Prime, 8 % at Premier."""


def _plan(tier_name: str, routers: int, redis_url: str, **more: Any) -> Plan:
    namespace = f"test-shared-{tier_name}-{routers}-{uuid.uuid4().hex[:8]}"
    return Plan(
        tier_name,
        routers,
        redis_url=redis_url,
        namespace=namespace,
        seconds=SECONDS,
        max_late_ms=MAX_LATE_MS,
        cancel_credit=fitting_credit(tier_name, routers),
        **more,
    )


def _show(result: dict[str, Any]) -> str:
    """What a failure needs: the figures, and how busy the machine was."""
    keys = ("utilization", "http_429_sim", "http_429_routers", "shared_budget", "cpu")
    return repr({key: result[key] for key in keys})


def _no_429(result: dict[str, Any]) -> None:
    assert result["http_429_sim"] == 0, _show(result)
    assert result["http_429_routers"] == 0, _show(result)


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("tier_name", "routers"), RUNS)
async def test_routers_in_processes_use_the_budget_without_a_429(
    redis_url: str, tier_name: str, routers: int
) -> None:
    result = await run(_plan(tier_name, routers, redis_url))
    _no_429(result)
    # At most the modelled refill (0.995 of the exchange's), give or take the fit's noise.
    assert USED <= result["utilization"] <= 1.02, _show(result)
    # Every cancel was booked to go at once: none queued behind anyone's creates. One may go on
    # credit instead, unbooked, when a stall on a busy machine made Redis's answer later than
    # max_late_ms (seen once in a full run: 257 booked of 258); those are counted apart.
    booked = result["cancel_booked_wait_us"]
    on_credit = result["shared_budget"]["credit_spent"] // CANCEL_COST
    assert booked["count"] + on_credit >= result["cancel_queue_wait_ms"]["count"] > 0, booked
    assert booked["nonzero"] == 0, booked
    assert list(result["outcomes"]["cancel"]) == ["cancelled"]


@pytest.mark.timeout(120)
async def test_a_redis_restart_then_a_router_killed_mid_run_earn_no_429(
    redis_server: RedisServer,
) -> None:
    events = (Event(1.0, "redis_restart"), Event(1.8, "kill", router=2))
    plan = _plan("premier", 3, redis_server.url, events=events)
    result = await run(replace(plan, seconds=max(SECONDS, 3.5)), redis=redis_server)
    _no_429(result)
    restart, kill = result["events"]
    # Unknown is empty: creates wait for the refill, then resume within about a bucket.
    figures = tier("premier")
    assert restart["create_gap_s"] <= figures.write_capacity / figures.write_refill
    # The others go on: they report, and use the whole budget between them.
    assert [r["router"] for r in result["per_router"]] == [0, 1]
    assert kill["utilization_after"] >= USED, _show(result)
