"""Routers on the simulator whose write budget is shared on a real Redis that is restarted,
stopped, slowed down or holds another model: no 429 ever, creates fail closed naming why,
cancels go on, and the router starts (or refuses to) as it should.

The sim's write bucket: 1000 tokens/s, 200 tokens; creates cost 10, cancels 2. With 40 ms of
headroom (bookings forfeited 40 ms late) and one router (10 tokens of cancel credit) the
modelled bucket holds 150 tokens, and creates leave a reserve of 30 to cancels: batches of 12
creates."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis.asyncio as aioredis

from kalshi_router.config import BudgetConfig, LimitsConfig, RouterConfig
from kalshi_router.errors import ConfigError
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Cancelled, Expired
from kalshi_router.router import OrderRouter
from kalshi_router.sim import SimConfig
from tests.integration.conftest import KEY_ID, running_sim, sim_stats
from tests.redis_budget.support import (
    DelayProxy,
    budget_config,
    figures_of,
    shared_router,
    wait_until,
)
from tests.redis_server import RedisServer

SIM = SimConfig(write_refill=1000, write_capacity=200)
LIMITS = LimitsConfig(headroom_s=0.04)
ROUTER = RouterConfig(backoff_base_s=0.01, backoff_cap_s=0.1, deadline_s=10.0)
BUCKET_TIME = 150 / 995  # s: the modelled bucket, refilled from empty
TICKER = "KXROUTER-26DEC31-T50"


def one_router(url: str, max_late_ms: float = 40) -> BudgetConfig:
    """The budget of one router alone on the account: its cancel credit is 5 cancels' worth."""
    return budget_config(url, routers=1, cancel_credit=0, max_late_ms=max_late_ms)


def resting_bids(n: int) -> list[OrderIntent]:
    """Bids below the house's, so they rest and never trade."""
    return [OrderIntent.bid(TICKER, "0.30", 1) for _ in range(n)]


async def place_resting(router: OrderRouter, n: int) -> list[Accepted]:
    outcomes = await asyncio.gather(*router.submit_many(resting_bids(n)))
    assert all(isinstance(o, Accepted) for o in outcomes), outcomes
    return [o for o in outcomes if isinstance(o, Accepted)]


async def no_429(router: OrderRouter, sim: object) -> None:
    assert router.stats().http_429 == 0
    assert (await sim_stats(sim))["rate_limited"] == 0  # type: ignore[arg-type]


async def test_a_restart_mid_run_starts_the_bucket_empty_and_costs_no_429(
    redis_server: RedisServer,
) -> None:
    async with (
        running_sim(SIM) as sim,
        shared_router(sim, one_router(redis_server.url), LIMITS, ROUTER) as router,
    ):
        # 50 creates, 500 tokens; Redis restarts (in a thread: the router runs on, its creates
        # blocked) right after the second batch, with more queued.
        await asyncio.sleep(BUCKET_TIME)  # the bucket, empty at start, is full
        before = router.submit_many(resting_bids(30))
        await wait_until(lambda: router.stats().items_sent >= 24)
        await asyncio.to_thread(redis_server.restart)
        restarted = time.monotonic()
        after = router.submit_many(resting_bids(20))
        await next(asyncio.as_completed(after))
        resumed = time.monotonic() - restarted
        outcomes = await asyncio.gather(*before, *after)
        assert all(isinstance(o, Accepted) for o in outcomes), outcomes
        await no_429(router, sim)
        assert figures_of(router).figures().fresh_starts == 2
        # From empty, the first batch waits for the reserve and itself: at most 30 + 120
        # tokens, one bucket of time (and the failed call's backoff).
        assert resumed < BUCKET_TIME + 0.2


async def test_a_failover_to_a_stale_copy_starts_the_bucket_empty_and_costs_no_429(
    redis_url: str,
) -> None:
    config = one_router(redis_url)
    admin = aioredis.Redis.from_url(redis_url)
    async with running_sim(SIM) as sim, shared_router(sim, config, LIMITS, ROUTER) as router:
        await asyncio.sleep(BUCKET_TIME)  # the bucket, empty at start, is full
        # Another router of the account spends the bucket: booked in Redis, spent at the
        # exchange (whose bucket keeps 50 tokens the model does not use).
        await figures_of(router).spend("cancel", 150)
        assert sim.state.buckets_for(KEY_ID).write.try_spend(150)
        # A replica whose copy lags is promoted (or a restart reloads an old snapshot): the
        # state Redis holds is another server run's, and says the bucket is full.
        await admin.hset(f"{config.namespace}:write", mapping={"run": "0" * 40, "tat": "0"})
        await admin.aclose()
        started = time.monotonic()
        outcomes = await asyncio.gather(*router.submit_many(resting_bids(12)))
        waited = time.monotonic() - started
        assert all(isinstance(o, Accepted) for o in outcomes), outcomes
        # Taken for empty: the batch (120 tokens) waited for the reserve and itself, not sent
        # at once into the 50 tokens the exchange had left.
        await no_429(router, sim)
        assert figures_of(router).figures().fresh_starts == 2
        assert waited >= (30 + 120) / 995


async def test_while_redis_is_down_creates_expire_naming_it_and_cancels_go_on_credit(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    password = "s3cret-pw"
    admin = aioredis.Redis.from_url(redis_server.url)
    await admin.config_set("requirepass", password)
    await admin.aclose()
    url = f"redis://:{password}@127.0.0.1:{redis_server.port}/0"
    caplog.set_level(logging.DEBUG)
    config = one_router(url)
    async with running_sim(SIM) as sim, shared_router(sim, config, LIMITS, ROUTER) as router:
        resting = await place_resting(router, 8)
        redis_server.stop()
        creates = router.submit_many(resting_bids(3), deadline_s=0.2)
        # The credit (10 tokens) pays for 5 cancels; the others wait for Redis.
        cancels = [router.cancel(o.order_id, TICKER) for o in resting[:5]]
        done = await asyncio.wait_for(asyncio.gather(*cancels), 1)
        assert all(isinstance(o, Cancelled) for o in done), done
        waiting = [router.cancel(o.order_id, TICKER) for o in resting[5:]]
        for outcome in await asyncio.gather(*creates):
            assert isinstance(outcome, Expired), outcome
            assert "unreachable (Redis at 127.0.0.1:" in outcome.reason, outcome.reason
            assert str(redis_server.port) in outcome.reason
            assert password not in outcome.reason
        assert not any(f.done() for f in waiting)
        budget = figures_of(router)
        assert (budget.figures().credit_spent, budget.figures().credit_left) == (10, 0)

        redis_server.start()
        later = await asyncio.wait_for(asyncio.gather(*waiting), 2)
        assert all(isinstance(o, Cancelled) for o in later), later
        await place_resting(router, 3)
        assert budget.figures().credit_left == 10  # repaid
        await no_429(router, sim)
    assert password not in caplog.text


async def test_a_router_modelling_another_bucket_is_refused_at_start(redis_url: str) -> None:
    config = one_router(redis_url)
    async with running_sim(SIM) as sim, shared_router(sim, config, LIMITS, ROUTER):
        with pytest.raises(ConfigError) as refused:
            async with shared_router(sim, config, LimitsConfig(headroom_s=0.07), ROUTER):
                pass
    # Both models, each with its own bucket: 200 less 40 or 70 of headroom and 10 of credit.
    assert "bucket 150" in str(refused.value)
    assert "bucket 120" in str(refused.value)


async def test_a_delay_on_redis_within_max_late_costs_no_429(redis_server: RedisServer) -> None:
    # 20 ms each way: every booking is answered 40 ms after it was asked, within the 100 ms of
    # lateness the model absorbs.
    limits = LimitsConfig(headroom_s=0.1)
    async with (
        DelayProxy(redis_server.port, 0.02) as proxy,
        running_sim(SIM) as sim,
        shared_router(sim, one_router(proxy.url(), 100), limits, ROUTER) as router,
    ):
        await place_resting(router, 20)
        await no_429(router, sim)
        figures = figures_of(router).figures()
        assert figures.forfeited == 0
        assert figures.call_p50_us >= 40_000


async def test_a_delay_beyond_max_late_blocks_creates_and_cancels_go_on(
    redis_server: RedisServer,
) -> None:
    async with (
        DelayProxy(redis_server.port, 0.0) as proxy,
        running_sim(SIM) as sim,
        shared_router(sim, one_router(proxy.url()), LIMITS, ROUTER) as router,
    ):
        resting = await place_resting(router, 3)
        proxy.delay_s = 0.03  # now every answer takes 60 ms: none can be used within 40
        creates = router.submit_many(resting_bids(3), deadline_s=0.3)
        cancels = [router.cancel(o.order_id, TICKER) for o in resting]
        done = await asyncio.wait_for(asyncio.gather(*cancels), 1)
        assert all(isinstance(o, Cancelled) for o in done), done
        for outcome in await asyncio.gather(*creates):
            assert isinstance(outcome, Expired), outcome
            assert "answers too slowly" in outcome.reason, outcome.reason
        figures = figures_of(router).figures()
        assert figures.forfeited >= 1
        assert figures.credit_spent == 6
        # Back to a fast link: creates resume.
        proxy.delay_s = 0.0
        await place_resting(router, 3)
        await no_429(router, sim)
