"""The local bucket's waits, on virtual time: exact waits, refunds and 429s while a spend waits,
cancellation; and the aiolimiter internals it relies on."""

from __future__ import annotations

import asyncio

import pytest
from aiolimiter import AsyncLimiter

from kalshi_router.budget import LocalBudget, WriteBudget
from kalshi_router.budget.local import check_internals
from kalshi_router.errors import KalshiRouterError
from tests.fakes import VirtualClock
from tests.fakes import clock_fixture as clock_fixture


def budget() -> LocalBudget:
    """Basic tier (100 tokens/s, bucket 100) less a headroom of 0.05 s: 95 local tokens, on the
    loop's clock."""
    return LocalBudget(
        refill_rate=100.0,
        capacity=100.0,
        headroom=5.0,
        create_cost=10,
        cancel_cost=2,
        single_cost=10,
    )


async def _spend_times(made: WriteBudget, clock: VirtualClock, amounts: list[int]) -> list[float]:
    times = []
    for amount in amounts:
        await made.spend("create", amount)
        times.append(round(clock.elapsed(), 9))
    return times


async def test_spend_takes_the_local_capacity_at_once_then_waits_for_the_refill(
    clock: VirtualClock,
) -> None:
    made = budget()
    # 95 local tokens go at once; then each 10 waits 10 / 100 tokens/s.
    assert await _spend_times(made, clock, [90, 5, 10, 10, 2]) == [0, 0, 0.1, 0.2, 0.22]
    assert made.spent == 117


async def test_a_spend_after_a_refund_waits_only_for_what_is_missing(clock: VirtualClock) -> None:
    made = budget()
    await made.spend("create", 95)
    made.refund("create", 40)
    assert await _spend_times(made, clock, [40, 10]) == [0, 0.1]


async def test_a_refund_wakes_a_waiting_spend(clock: VirtualClock) -> None:
    made = budget()
    await made.spend("create", 95)
    waiter = asyncio.ensure_future(made.spend("create", 30))
    await asyncio.sleep(0.1)  # 10 tokens back by now; the waiter needs 30
    assert not waiter.done()
    made.refund("create", 20)
    await waiter
    assert clock.elapsed() == pytest.approx(0.1)


async def test_a_429_makes_the_next_spend_wait_for_the_headroom_too(clock: VirtualClock) -> None:
    made = budget()
    made.rate_limited()
    # The headroom is rebuilt first (0.05 s), then the 10 tokens are earned (0.1 s).
    assert await _spend_times(made, clock, [10]) == [0.15]


async def test_rate_limited_while_a_spend_waits_makes_it_wait_longer(clock: VirtualClock) -> None:
    made = budget()
    await made.spend("create", 95)
    waiter = asyncio.ensure_future(made.spend("create", 10))
    await asyncio.sleep(0.05)
    made.rate_limited()
    await waiter
    assert clock.elapsed() == pytest.approx(0.05 + 0.15)


async def test_a_cancelled_spend_takes_nothing(clock: VirtualClock) -> None:
    made = budget()
    await made.spend("create", 95)
    waiter = asyncio.ensure_future(made.spend("create", 50))
    await asyncio.sleep(0.2)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert made.spent == 95
    assert made.tokens() == pytest.approx(20)
    # Nothing is owed for the abandoned wait: 20 tokens now, the next 10 come in 0.1 s.
    assert await _spend_times(made, clock, [20, 10]) == [0.2, 0.3]


async def test_a_spend_cancelled_just_as_its_tokens_arrive_takes_nothing(
    clock: VirtualClock,
) -> None:
    made = budget()
    await made.spend("create", 95)
    waiter = asyncio.ensure_future(made.spend("create", 10))
    await asyncio.sleep(0.1)  # the limiter has just granted the waiter its tokens
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert waiter.cancelled()
    assert made.spent == 95
    assert made.tokens() == pytest.approx(10)


async def test_spending_more_than_the_local_bucket_is_an_error() -> None:
    made = budget()
    with pytest.raises(ValueError, match="maximum capacity"):
        await made.spend("create", 96)
    assert made.spent == 0


async def test_spend_now_takes_without_waiting(clock: VirtualClock) -> None:
    made: WriteBudget = budget()
    assert await made.spend_now("create", 90)
    assert not await made.spend_now("cancel", 10)  # 5 left: nothing taken, nothing waited
    assert made.spent == 90
    assert clock.elapsed() == pytest.approx(0, abs=1e-9)


async def test_spend_now_leaves_a_waiting_spend_its_turn(clock: VirtualClock) -> None:
    wallet = budget()
    assert await wallet.spend_now("create", 95)
    waiting = asyncio.ensure_future(wallet.spend("create", 50))
    await asyncio.sleep(0)
    wallet.refund("create", 95)  # wakes the waiting spend, which takes 50 of the 95
    await waiting
    assert not await wallet.spend_now("create", 50)
    assert await wallet.spend_now("create", 45)
    assert wallet.spent == 95


async def test_the_aiolimiter_internals_the_bucket_uses_are_there() -> None:
    # The installed release passes the import-time check (or this module would not import) ...
    check_internals(AsyncLimiter)
    # ... and their meaning is what _Bucket assumes: _level counts tokens spent, _leak refills
    # from _last_check on, and acquire asks has_capacity, which asks _leak.
    limiter = AsyncLimiter(10, 1)
    assert limiter._level == 0
    assert limiter.has_capacity(10)
    limiter._level = 10
    assert not limiter.has_capacity(1)
    limiter._last_check -= 0.5
    limiter._leak()
    assert limiter._level == pytest.approx(5, abs=0.01)
    assert limiter._waiters == []


def test_an_aiolimiter_without_those_internals_is_refused_by_name() -> None:
    class Old(AsyncLimiter):  # as aiolimiter 1.1 was: no _wake_next
        def __getattribute__(self, name: str) -> object:
            if name == "_wake_next":
                raise AttributeError(name)
            return super().__getattribute__(name)

    with pytest.raises(KalshiRouterError, match=r"lacks _wake_next.*aiolimiter>=1\.2\.1,<1\.4"):
        check_internals(Old)
