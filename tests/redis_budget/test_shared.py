"""RedisBudget against a real Redis server of its own (``redis_server``), which the tests stop,
restart and slow down: unknown is empty, creates fail closed, cancels go on credit that is
repaid, bookings are never used late, and nothing is left running or held when cancelled.

The numbers are ``tests.redis_budget.support``'s: a modelled bucket of 120 tokens at 995/s,
creates of 10 leaving 25 to cancels of 1, 20 tokens of credit, and bookings forfeited 40 ms
late."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import pytest
import redis.asyncio as aioredis

from kalshi_router.budget import Budget
from kalshi_router.budget.opening import open_budget
from kalshi_router.errors import ConfigError
from kalshi_router.redis_budget.shared import RedisBudget
from tests.redis_budget.support import (
    COSTS,
    CREDIT,
    LIMITS,
    MODELLED_RATE,
    RESERVE,
    DelayProxy,
    budget_config,
    open_shared,
    shared,
    wait_until,
)
from tests.redis_server import RedisServer

PER = 1e6 / MODELLED_RATE  # µs a token
CAPACITY = 120
# A create (10) on an empty bucket waits until it holds the reserve and the create.
EMPTY_CREATE_WAIT = (RESERVE + 10) / MODELLED_RATE


async def state(url: str, budget: RedisBudget) -> dict[str, float]:
    """The bucket's hash in Redis, with ``available`` (tokens) at the server's now."""
    client = aioredis.Redis.from_url(url)
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.hgetall(f"{budget_namespace(budget)}:write")
            pipe.time()
            fields, (seconds, micros) = await pipe.execute()
    finally:
        await client.aclose()
    found = {k.decode(): float(v) for k, v in fields.items() if k != b"run" and k != b"sig"}
    now = seconds * 1e6 + micros
    found["available"] = CAPACITY - (found["tat"] - now) / PER
    return found


def budget_namespace(budget: RedisBudget) -> str:
    return budget._key.removesuffix(":write")


async def test_a_new_bucket_is_empty(redis_server: RedisServer) -> None:
    async with shared(budget_config(redis_server.url)) as budget:
        assert budget.figures().fresh_starts == 1
        assert budget.tokens() < 1
        started = time.monotonic()
        await budget.spend("create", 10)
        assert EMPTY_CREATE_WAIT <= time.monotonic() - started < EMPTY_CREATE_WAIT + 0.1


async def test_a_restart_mid_run_starts_the_bucket_empty(redis_server: RedisServer) -> None:
    async with shared(budget_config(redis_server.url)) as budget:
        await asyncio.sleep(CAPACITY / MODELLED_RATE)  # full again
        assert await budget.spend_now("create", 10)
        redis_server.restart()
        started = time.monotonic()
        await budget.spend("create", 10)
        waited = time.monotonic() - started
        figures = budget.figures()
        assert figures.fresh_starts == 2
        assert figures.blocked is None
        # Before the restart it went at once; after, it waited for an empty bucket to refill.
        assert EMPTY_CREATE_WAIT <= waited < EMPTY_CREATE_WAIT + 0.2


async def test_while_redis_is_down_creates_wait_and_cancels_spend_the_credit(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    password = "s3cret-pw"
    admin = aioredis.Redis.from_url(redis_server.url)
    await admin.config_set("requirepass", password)
    await admin.aclose()
    url = f"redis://:{password}@127.0.0.1:{redis_server.port}/0"
    caplog.set_level(logging.DEBUG)
    async with shared(budget_config(url)) as budget:
        await asyncio.sleep(CAPACITY / MODELLED_RATE)
        redis_server.stop()
        create = asyncio.ensure_future(budget.spend("create", 10))
        await asyncio.sleep(0.05)
        assert not create.done(), "a create went out without the shared budget"
        assert budget.blocked is not None
        assert f"unreachable (Redis at 127.0.0.1:{redis_server.port}" in budget.blocked
        # Cancels go on, on this router's credit, and wait once it is spent.
        for _ in range(CREDIT):
            await asyncio.wait_for(budget.spend("cancel", 1), 0.1)
        cancel = asyncio.ensure_future(budget.spend("cancel", 1))
        await asyncio.sleep(0.05)
        assert not cancel.done(), "a cancel went out beyond the credit"
        assert (budget.figures().credit_spent, budget.figures().credit_left) == (CREDIT, 0)

        redis_server.start()
        # The credit is repaid, but whole again only once the bucket holds what it was debited
        # (the restarted bucket is empty, so the debit leaves it 20 tokens short: were the
        # credit back before they are refilled, an outage then could spend them twice).
        await wait_until(lambda: budget.figures().credit_left == CREDIT)
        assert (await state(redis_server.url, budget))["available"] >= -0.5
        await asyncio.wait_for(asyncio.gather(create, cancel), 2)
        assert budget.blocked is None
        # Booked since the fresh start: the create, the cancel and the debit, which reached Redis
        # (and, on a loaded machine, what of a forfeited booking its refund could not give back).
        after = await state(redis_server.url, budget)
        booked = (after["tat"] - after["gen"]) / PER - CAPACITY
        if budget.figures().forfeited:
            assert booked >= 10 + 1 + CREDIT - 1e-6
        else:
            assert booked == pytest.approx(10 + 1 + CREDIT, abs=1e-3)
    assert password not in caplog.text
    assert password not in (budget.figures().blocked or "")


async def test_a_router_with_another_model_is_refused_at_start(redis_url: str) -> None:
    config = budget_config(redis_url)
    async with shared(config):
        other = budget_config(redis_url, namespace=config.namespace, cancel_reserve=30)
        with pytest.raises(ConfigError) as refused:
            await open_shared(other)
    message = str(refused.value)
    assert f"{config.namespace}:write" in message
    assert f"reserve {RESERVE}" in message
    assert "reserve 30" in message


async def test_without_the_redis_package_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    for name in list(sys.modules):
        if name == "redis" or name.startswith("redis."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "kalshi_router.redis_budget.shared")
    with pytest.raises(ConfigError, match=r"pip install 'kalshi-router\[redis\]'"):
        await open_budget(budget_config(redis_url), Budget(1000, 200, 100, COSTS), LIMITS, "k")


async def test_a_spend_cancelled_while_it_waits_gives_its_tokens_back(
    redis_server: RedisServer,
) -> None:
    async with shared(budget_config(redis_server.url)) as budget:
        # Cancels book at once (a create would first be told to come back): 30 of them on an
        # empty bucket may go in 30 ms.
        spend = asyncio.ensure_future(budget.spend("cancel", 30))
        await asyncio.sleep(0.01)  # booked; sleeping it out
        spend.cancel()
        with pytest.raises(asyncio.CancelledError):
            await spend
    # aclose waited for the refund: all 30 tokens are back in Redis.
    assert (await state(redis_server.url, budget))["given"] == pytest.approx(30 * PER)
    assert budget.spent == 0


async def test_aclose_waits_for_what_the_budget_is_telling_redis(
    redis_server: RedisServer,
) -> None:
    redis_server.stop()
    budget = await open_shared(budget_config(redis_server.url))
    await budget.spend("cancel", 1)  # on credit
    redis_server.start()
    # The drain reaches Redis, which answers: that repays the credit, in a task of its own.
    budget.rate_limited()
    await budget.aclose()
    assert budget.figures().credit_left == CREDIT
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    assert not others, others


async def test_a_booking_woken_too_late_is_forfeited_given_back_and_booked_again(
    redis_server: RedisServer,
) -> None:
    async with shared(budget_config(redis_server.url)) as budget:
        spend = asyncio.ensure_future(budget.spend("cancel", 30))  # may go in 30 ms
        await asyncio.sleep(0.005)
        time.sleep(0.08)  # noqa: ASYNC251 - the loop stalls: the spend wakes 55 ms late
        await spend
        figures = budget.figures()
        assert (figures.forfeited, figures.blocked, budget.spent) == (1, None, 30)
    # The forfeited booking was given back, as much of it as the bucket still held: the
    # booking weighs until 120 ms (a cancel's tolerance) after its time, so all of it.
    assert (await state(redis_server.url, budget))["given"] > 20 * PER


async def test_a_redis_too_slow_to_book_in_time_blocks_creates_without_livelock(
    redis_server: RedisServer,
) -> None:
    # 30 ms each way: every answer comes 60 ms after its question, so no booking can be used
    # within max_late_ms (40) of its time.
    async with (
        DelayProxy(redis_server.port, 0.03) as proxy,
        shared(budget_config(proxy.url())) as budget,
    ):
        await asyncio.sleep(CAPACITY / MODELLED_RATE)
        create = asyncio.ensure_future(budget.spend("create", 10))
        # Cancels do not wait on a budget they cannot use in time: they go on credit.
        await asyncio.wait_for(budget.spend("cancel", 1), 0.5)
        assert budget.figures().credit_spent == 1
        await asyncio.sleep(0.3)
        assert not create.done(), "a create went out on a booking used late"
        figures = budget.figures()
        assert figures.blocked is not None
        assert "answers too slowly" in figures.blocked
        # Asking again with a backoff, not at every answer (which would book, and forfeit, 10
        # tokens of the shared bucket every 60 ms): about 3 attempts in 0.3 s.
        assert 1 <= figures.forfeited <= 4
        create.cancel()
        with pytest.raises(asyncio.CancelledError):
            await create


async def test_once_redis_is_known_unreachable_cancels_go_on_credit_at_once(
    redis_server: RedisServer,
) -> None:
    async with (
        DelayProxy(redis_server.port, 0.0) as proxy,
        shared(budget_config(proxy.url())) as budget,
    ):
        proxy.delay_s = 10.0  # a black hole: nothing answers, nothing is refused
        create = asyncio.ensure_future(budget.spend("create", 10))
        await wait_until(lambda: budget.blocked is not None)  # its call timed out (200 ms)
        started = time.monotonic()
        for _ in range(3):
            await budget.spend("cancel", 1)
        # Not 200 ms each, waiting for Redis to time out again first.
        assert time.monotonic() - started < 0.05
        assert budget.figures().credit_spent == 3
        create.cancel()
        with pytest.raises(asyncio.CancelledError):
            await create
