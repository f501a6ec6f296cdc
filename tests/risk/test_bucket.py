"""The orders-per-second bucket: full at start, refills at its rate up to its capacity, never
waits, and a clock that steps back neither refills nor drains it."""

from __future__ import annotations

import pytest

from kalshi_router.risk.bucket import TokenBucket


def test_full_at_start_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, capacity=2.0, now=100.0)
    for _ in range(2):
        assert bucket.ready(100.0)
        bucket.take(100.0)
    assert not bucket.ready(100.0)
    assert bucket.wait(100.0) == pytest.approx(0.5)
    assert not bucket.ready(100.25)
    assert bucket.ready(100.5)
    assert bucket.wait(100.5) == 0.0


def test_capacity_caps_the_refill() -> None:
    bucket = TokenBucket(rate=5.0, capacity=5.0, now=0.0)
    bucket.take(0.0)
    assert bucket.full(1_000.0)
    for _ in range(5):
        bucket.take(1_000.0)
    assert not bucket.ready(1_000.0)


def test_a_slow_rate_holds_one_token() -> None:
    bucket = TokenBucket(rate=0.5, capacity=1.0, now=0.0)
    bucket.take(0.0)
    assert not bucket.ready(1.9)
    assert bucket.ready(2.0)


def test_a_clock_stepping_back_changes_nothing() -> None:
    bucket = TokenBucket(rate=1.0, capacity=1.0, now=10.0)
    bucket.take(10.0)
    assert not bucket.ready(5.0)
    assert bucket.wait(5.0) == pytest.approx(1.0)
    assert bucket.ready(11.0)


@pytest.mark.parametrize(("rate", "capacity"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.5)])
def test_bad_arguments(rate: float, capacity: float) -> None:
    with pytest.raises(ValueError, match="rate > 0 and capacity >= 1"):
        TokenBucket(rate, capacity, 0.0)
