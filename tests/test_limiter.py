"""The write budget on virtual time: exact waits, batch sizes per tier, refunds, 429 cool-down."""

from __future__ import annotations

import asyncio

import pytest
from aiolimiter import AsyncLimiter

from kalshi_router.errors import ConfigError, KalshiRouterError
from kalshi_router.limiter import WriteBudget, check_internals
from tests.fakes import VirtualClock
from tests.fakes import clock_fixture as clock_fixture

# Basic tier: 100 tokens/s, bucket 100, and the router's default headroom of 0.05 s (5 tokens).
BASIC = {"refill_rate": 100.0, "capacity": 100.0, "headroom": 5.0}


def budget(**overrides: float) -> WriteBudget:
    fields = {**BASIC, **overrides}
    return WriteBudget(
        refill_rate=fields["refill_rate"],
        capacity=fields["capacity"],
        headroom=fields["headroom"],
        create_cost=10,
        cancel_cost=2,
        single_cost=10,
    )


@pytest.mark.parametrize(
    ("rate", "capacity", "headroom", "kind", "configured", "expected"),
    [
        pytest.param(100, 100, 5, "create", 20, 9, id="basic-create"),
        pytest.param(100, 100, 0, "create", 20, 10, id="basic-create-no-headroom"),
        pytest.param(100, 100, 5, "cancel", 20, 20, id="basic-cancel"),
        pytest.param(100, 100, 5, "cancel", 100, 47, id="basic-cancel-unbounded"),
        pytest.param(1000, 2000, 50, "create", 20, 20, id="premier-create"),
        pytest.param(1000, 2000, 50, "create", 5, 5, id="configured-max-wins"),
        pytest.param(1000, 2000, 50, "single", 20, 1, id="single-is-one"),
        pytest.param(10, 12, 0, "create", 20, 1, id="bucket-holds-one"),
    ],
)
def test_batch_limit(
    rate: float, capacity: float, headroom: float, kind: str, configured: int, expected: int
) -> None:
    made = budget(refill_rate=rate, capacity=capacity, headroom=headroom)
    assert made.batch_limit(kind, configured) == expected


@pytest.mark.parametrize(
    ("capacity", "headroom"),
    [pytest.param(9, 0, id="smaller-than-a-create"), pytest.param(12, 5, id="headroom-eats-it")],
)
def test_a_bucket_that_cannot_hold_one_request_is_refused(capacity: float, headroom: float) -> None:
    with pytest.raises(ConfigError, match=r"cannot hold one request costing 10 \(create\)"):
        budget(capacity=capacity, headroom=headroom)


def test_a_bucket_that_never_refills_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"limits\.write_refill_rate"):
        budget(refill_rate=0)


async def _spend_times(made: WriteBudget, clock: VirtualClock, amounts: list[int]) -> list[float]:
    times = []
    for amount in amounts:
        await made.spend(amount)
        times.append(round(clock.elapsed(), 9))
    return times


async def test_spend_takes_the_local_capacity_at_once_then_waits_for_the_refill(
    clock: VirtualClock,
) -> None:
    made = budget()
    # 95 local tokens go at once; then each 10 waits 10 / 100 tokens/s.
    assert await _spend_times(made, clock, [90, 5, 10, 10, 2]) == [0, 0, 0.1, 0.2, 0.22]
    assert made.spent == 117


async def test_the_bucket_refills_while_idle_but_never_beyond_its_local_capacity(
    clock: VirtualClock,
) -> None:
    made = budget()
    await made.spend(95)
    await asyncio.sleep(0.5)
    assert made.tokens() == pytest.approx(50)
    await asyncio.sleep(10)
    assert made.tokens() == pytest.approx(95)
    assert made.can_spend(95)
    assert not made.can_spend(96)


async def test_refund_gives_tokens_back_and_uncounts_them(clock: VirtualClock) -> None:
    made = budget()
    await made.spend(95)
    made.refund(40)
    assert made.spent == 55
    assert made.tokens() == pytest.approx(40)
    assert await _spend_times(made, clock, [40, 10]) == [0, 0.1]


async def test_a_refund_wakes_a_waiting_spend(clock: VirtualClock) -> None:
    made = budget()
    await made.spend(95)
    waiter = asyncio.ensure_future(made.spend(30))
    await asyncio.sleep(0.1)  # 10 tokens back by now; the waiter needs 30
    assert not waiter.done()
    made.refund(20)
    await waiter
    assert clock.elapsed() == pytest.approx(0.1)


async def test_rate_limited_empties_the_bucket_and_owes_the_headroom(clock: VirtualClock) -> None:
    made = budget()
    made.rate_limited()
    assert made.tokens() == pytest.approx(-5)
    assert not made.can_spend(2)
    # The headroom is rebuilt first (0.05 s), then the 10 tokens are earned (0.1 s).
    assert await _spend_times(made, clock, [10]) == [0.15]


async def test_rate_limited_while_a_spend_waits_makes_it_wait_longer(clock: VirtualClock) -> None:
    made = budget()
    await made.spend(95)
    waiter = asyncio.ensure_future(made.spend(10))
    await asyncio.sleep(0.05)
    made.rate_limited()
    await waiter
    assert clock.elapsed() == pytest.approx(0.05 + 0.15)


async def test_a_cancelled_spend_takes_nothing(clock: VirtualClock) -> None:
    made = budget()
    await made.spend(95)
    waiter = asyncio.ensure_future(made.spend(50))
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
    await made.spend(95)
    waiter = asyncio.ensure_future(made.spend(10))
    await asyncio.sleep(0.1)  # the limiter has just granted the waiter its tokens
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert waiter.cancelled()
    assert made.spent == 95
    assert made.tokens() == pytest.approx(10)


async def test_spending_more_than_the_local_bucket_is_an_error() -> None:
    made = budget()
    with pytest.raises(ValueError, match="maximum capacity"):
        await made.spend(96)
    assert made.spent == 0


async def test_spend_now_takes_only_what_the_bucket_holds(clock: VirtualClock) -> None:
    wallet = budget()  # 95 local tokens
    assert wallet.spend_now(90)
    assert not wallet.spend_now(10)  # 5 left: nothing taken
    assert wallet.spent == 90
    assert wallet.tokens() == pytest.approx(5.0)
    await asyncio.sleep(0.05)  # 5 more refilled
    assert wallet.spend_now(10)
    assert wallet.spent == 100
    assert wallet.tokens() == pytest.approx(0.0, abs=1e-6)


async def test_spend_now_leaves_a_waiting_spend_its_turn(clock: VirtualClock) -> None:
    wallet = budget()
    assert wallet.spend_now(95)
    waiting = asyncio.ensure_future(wallet.spend(50))
    await asyncio.sleep(0)
    wallet.refund(95)  # wakes the waiting spend, which takes 50 of the 95
    await waiting
    assert not wallet.spend_now(50)
    assert wallet.spend_now(45)
    assert wallet.spent == 95


async def test_the_aiolimiter_internals_the_bucket_uses_are_there() -> None:
    # The installed release passes the import-time check (or this module would not import) ...
    check_internals(AsyncLimiter)
    # ... and their meaning is what _Bucket assumes: _level counts tokens spent, _leak refills.
    limiter = AsyncLimiter(10, 1)
    assert limiter._level == 0
    assert limiter.has_capacity(10)
    limiter._level = 10
    assert not limiter.has_capacity(1)
    assert limiter._waiters == []


def test_an_aiolimiter_without_those_internals_is_refused_by_name() -> None:
    class Old(AsyncLimiter):  # as aiolimiter 1.1 was: no _wake_next
        def __getattribute__(self, name: str) -> object:
            if name == "_wake_next":
                raise AttributeError(name)
            return super().__getattribute__(name)

    with pytest.raises(KalshiRouterError, match=r"lacks _wake_next.*aiolimiter>=1\.2\.1,<1\.4"):
        check_internals(Old)
