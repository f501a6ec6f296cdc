"""The simulator's token buckets, driven by a fake clock."""

from __future__ import annotations

import dataclasses

import pytest

from kalshi_router.sim.buckets import (
    CANCEL_ITEM_COST,
    CREATE_ITEM_COST,
    DEFAULT_COST,
    ENDPOINT_COSTS,
    TIERS,
    V1_CREATE_ITEM_COST,
    AccountBuckets,
    TokenBucket,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_starts_full_and_spends_down_to_empty() -> None:
    clock = Clock()
    bucket = TokenBucket(100, 100, clock)
    assert bucket.tokens == 100
    assert all(bucket.try_spend(10) for _ in range(10))
    assert bucket.tokens == 0
    assert not bucket.try_spend(1)


def test_refused_request_spends_nothing() -> None:
    bucket = TokenBucket(100, 100, Clock())
    assert bucket.try_spend(95)
    assert not bucket.try_spend(10)
    assert bucket.tokens == 5


def test_refills_continuously_up_to_capacity() -> None:
    clock = Clock()
    bucket = TokenBucket(100, 200, clock)
    assert bucket.try_spend(200)
    clock.now += 0.25
    assert bucket.tokens == pytest.approx(25)
    assert not bucket.try_spend(30)
    clock.now += 0.05
    assert bucket.try_spend(30)
    clock.now += 60
    assert bucket.tokens == 200


def test_float_clock_steps_do_not_refuse_an_exact_fit() -> None:
    clock = Clock()
    bucket = TokenBucket(100, 100, clock)
    bucket.drain()
    for _ in range(3):
        clock.now += 0.1
    # 0.1 + 0.1 + 0.1 is not exactly 0.3 in binary floating point.
    assert bucket.try_spend(30)
    assert bucket.tokens == pytest.approx(0)


def test_cost_above_capacity_never_passes() -> None:
    clock = Clock()
    bucket = TokenBucket(100, 100, clock)
    clock.now += 1000
    assert not bucket.try_spend(101)
    assert bucket.try_spend(100)


def test_drain_empties_and_refill_resumes() -> None:
    clock = Clock()
    bucket = TokenBucket(300, 600, clock)
    bucket.drain()
    assert bucket.tokens == 0
    assert not bucket.try_spend(10)
    clock.now += 0.1
    assert bucket.try_spend(10)
    assert bucket.tokens == pytest.approx(20)


def test_a_clock_that_steps_back_does_not_mint_or_burn_tokens() -> None:
    clock = Clock()
    bucket = TokenBucket(100, 100, clock)
    bucket.drain()
    clock.now -= 5
    assert bucket.tokens == 0
    clock.now += 5.5
    assert bucket.tokens == pytest.approx(50)


@pytest.mark.parametrize(("rate", "capacity"), [(0, 10), (10, 0), (-1, 10)])
def test_rejects_non_positive_parameters(rate: int, capacity: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(rate, capacity, Clock())


def test_rejects_negative_cost() -> None:
    with pytest.raises(ValueError, match="negative"):
        TokenBucket(10, 10, Clock()).try_spend(-1)


def test_tiers_match_the_published_budgets() -> None:
    got = {
        name: (t.read_refill, t.read_capacity, t.write_refill, t.write_capacity)
        for name, t in TIERS.items()
    }
    assert got == {
        "basic": (200, 200, 100, 100),
        "advanced": (300, 300, 300, 600),
        "premier": (1000, 1000, 1000, 2000),
        "paragon": (2000, 2000, 2000, 4000),
        "prime": (4000, 4000, 4000, 8000),
    }
    assert all(t.name == name for name, t in TIERS.items())
    # Basic's write bucket holds one second; every other tier's holds two.
    for tier in TIERS.values():
        seconds = 1 if tier.name == "basic" else 2
        assert tier.write_capacity == seconds * tier.write_refill


def test_tiers_are_read_only() -> None:
    with pytest.raises(TypeError):
        TIERS["basic"] = TIERS["prime"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        TIERS["basic"].write_refill = 1  # type: ignore[misc]


def test_costs() -> None:
    assert DEFAULT_COST == 10
    assert set(ENDPOINT_COSTS) == {
        ("DELETE", "/portfolio/events/orders/{order_id}", 2),
        ("DELETE", "/portfolio/events/orders", 2),
        ("GET", "/portfolio/orders/{order_id}", 2),
    }
    assert all(not path.startswith("/trade-api") for _, path, _ in ENDPOINT_COSTS)
    assert (CREATE_ITEM_COST, CANCEL_ITEM_COST, V1_CREATE_ITEM_COST) == (10, 2, 100)


def test_basic_write_bucket_fits_ten_creates_then_refuses() -> None:
    clock = Clock()
    buckets = AccountBuckets(TIERS["basic"], clock)
    assert buckets.tier is TIERS["basic"]
    assert buckets.write.try_spend(10 * CREATE_ITEM_COST)
    assert not buckets.write.try_spend(CREATE_ITEM_COST)
    assert buckets.read.try_spend(DEFAULT_COST), "read and write buckets are independent"
    clock.now += 0.1
    assert buckets.write.try_spend(CREATE_ITEM_COST)


def test_advanced_write_bucket_bursts_two_seconds() -> None:
    buckets = AccountBuckets(TIERS["advanced"], Clock())
    assert (buckets.write.refill_rate, buckets.write.capacity) == (300, 600)
    assert buckets.write.try_spend(60 * CREATE_ITEM_COST)
    assert not buckets.write.try_spend(CANCEL_ITEM_COST)
    assert (buckets.read.refill_rate, buckets.read.capacity) == (300, 300)
