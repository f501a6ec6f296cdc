"""A router whose write budget is shared on Redis never takes the idle fast path: its spends
must ask Redis first, so ``place()`` cannot send in the caller's own turn."""

from __future__ import annotations

import asyncio

from kalshi_router.config import RouterConfig
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted
from kalshi_router.sim import SimConfig
from tests.integration.conftest import running_sim
from tests.redis_budget.support import LIMITS, budget_config, shared_router
from tests.redis_server import RedisServer

SIM = SimConfig(write_refill=1000, write_capacity=200)
TICKER = "KXROUTER-26DEC31-T50"


async def test_place_on_a_shared_budget_goes_the_usual_way(redis_server: RedisServer) -> None:
    budget = budget_config(redis_server.url, routers=1, cancel_credit=0)
    async with (
        running_sim(SIM) as sim,
        shared_router(sim, budget, LIMITS, RouterConfig(deadline_s=10.0)) as router,
    ):
        await asyncio.sleep(0.2)  # the bucket, empty at start, has refilled
        outcome = await router.place(OrderIntent.bid(TICKER, "0.30", 1))
        assert isinstance(outcome, Accepted)
        assert router.stats().fast_path_sends == 0
