"""The local bucket's token arithmetic, without an event loop: a clock the test moves by hand.

Refill over time, refunds, the 429 overdraw with its headroom, batch sizes per tier, and the
property that matters: what the bucket grants never exceeds what Kalshi's bucket would.
(Waiting for tokens, which needs the loop, is in ``test_local_waits``.)
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.budget import LocalBudget
from kalshi_router.errors import ConfigError

# Basic tier: 100 tokens/s, bucket 100, and a headroom of 0.05 s (5 tokens).
BASIC = {"refill_rate": 100.0, "capacity": 100.0, "headroom": 5.0}
# Float slack for sums of refills over many small steps.
EPSILON = 1e-6


class HandClock:
    """Seconds, moved only by the test."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """``seconds`` and a nanosecond more, so that float rounding cannot leave a refill of
        exactly what is asked for a hair short."""
        self.now += seconds + 1e-9


def budget(clock: HandClock | None = None, **overrides: float) -> LocalBudget:
    fields = {**BASIC, **overrides}
    return LocalBudget(
        refill_rate=fields["refill_rate"],
        capacity=fields["capacity"],
        headroom=fields["headroom"],
        create_cost=10,
        cancel_cost=2,
        single_cost=10,
        clock=clock or HandClock(),
    )


@pytest.mark.parametrize(
    ("rate", "capacity", "headroom", "kind", "configured", "expected"),
    [
        pytest.param(100, 100, 5, "create", 20, 9, id="basic-create"),
        pytest.param(100, 100, 0, "create", 20, 10, id="basic-create-no-headroom"),
        pytest.param(100, 100, 25, "create", 20, 7, id="basic-create-default-headroom"),
        pytest.param(100, 100, 5, "cancel", 20, 20, id="basic-cancel"),
        pytest.param(100, 100, 5, "cancel", 100, 47, id="basic-cancel-unbounded"),
        pytest.param(400, 800, 100, "create", 20, 20, id="advanced-create"),
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


def test_the_bucket_starts_full_less_the_headroom_and_refills_up_to_that() -> None:
    clock = HandClock()
    made = budget(clock)
    assert made.tokens() == 95
    assert made.take("create", 95)
    assert made.tokens() == 0
    clock.now += 0.5
    assert made.tokens() == pytest.approx(50)
    clock.now += 10
    assert made.tokens() == pytest.approx(95)


def test_take_takes_only_what_the_bucket_holds() -> None:
    clock = HandClock()
    made = budget(clock)
    assert made.take("create", 90)
    assert not made.take("create", 10)  # 5 left: nothing taken
    assert made.spent == 90
    assert made.tokens() == pytest.approx(5)
    clock.advance(0.05)  # 5 more refilled
    assert made.take("create", 10)
    assert made.spent == 100
    assert made.tokens() == pytest.approx(0, abs=EPSILON)


def test_more_than_the_local_bucket_is_never_taken() -> None:
    made = budget()
    assert not made.take("create", 96)
    assert made.spent == 0


def test_a_refund_gives_tokens_back_and_uncounts_them() -> None:
    clock = HandClock()
    made = budget(clock)
    assert made.take("create", 95)
    made.refund("create", 40)
    assert made.spent == 55
    assert made.tokens() == pytest.approx(40)
    assert made.take("create", 40)
    assert not made.take("create", 10)
    clock.now += 0.1
    assert made.take("create", 10)


def test_a_refund_never_fills_the_bucket_beyond_its_local_capacity() -> None:
    clock = HandClock()
    made = budget(clock)
    assert made.take("create", 50)
    clock.now += 1  # full again
    made.refund("create", 50)
    assert made.tokens() == pytest.approx(95)
    assert not made.take("create", 96)


def test_a_429_empties_the_bucket_and_owes_the_headroom() -> None:
    clock = HandClock()
    made = budget(clock)
    made.rate_limited()
    assert made.tokens() == pytest.approx(-5)
    assert not made.take("create", 2)
    clock.now += 0.05  # the headroom is rebuilt first ...
    assert made.tokens() == pytest.approx(0, abs=EPSILON)
    clock.now += 0.0999  # ... then 10 tokens take 0.1 s
    assert not made.take("create", 10)
    clock.advance(0.0001)
    assert made.take("create", 10)


def test_a_429_without_headroom_only_empties_the_bucket() -> None:
    clock = HandClock()
    made = budget(clock, headroom=0)
    made.rate_limited()
    assert made.tokens() == pytest.approx(0)
    clock.now += 0.1
    assert made.take("create", 10)


# The property: whatever happens, the bucket never grants more than Kalshi's would.

TIERS = [(100.0, 100.0), (400.0, 800.0), (1000.0, 2000.0)]
# ("wait", seconds), ("take", tokens, then at once the refund of what the cut did not use, as
# the dispatcher does), ("429",).
Step = tuple[str, float, int]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("wait"), st.floats(0, 0.5), st.just(0)),
        st.tuples(st.just("take"), st.integers(1, 300).map(float), st.integers(0, 300)),
        st.tuples(st.just("429"), st.just(0.0), st.just(0)),
    ),
    max_size=60,
)


@given(st.sampled_from(TIERS), st.floats(0, 0.25), steps)
def test_granted_tokens_never_exceed_the_bucket(
    tier: tuple[float, float], headroom_s: float, script: list[Step]
) -> None:
    rate, capacity = tier
    headroom = rate * headroom_s
    local = capacity - headroom
    clock = HandClock()
    made = budget(clock, refill_rate=rate, capacity=capacity, headroom=headroom)
    start = clock.now
    # (time, tokens granted less the refund): what reached the exchange, and when.
    grants: list[tuple[float, float]] = []
    since_429: tuple[float, int] | None = None  # when, and how many grants came before
    for action, value, refund in script:
        if action == "wait":
            clock.now += value
        elif action == "429":
            made.rate_limited()
            since_429 = (clock.now, len(grants))
        elif made.take("create", int(value)):
            back = min(refund, int(value))
            made.refund("create", back)
            grants.append((clock.now, value - back))
        assert made.tokens() <= local + EPSILON
        assert made.spent == pytest.approx(sum(net for _, net in grants))
        # The whole run, as the issue states it ...
        assert made.spent <= local + rate * (clock.now - start) + EPSILON
        # ... and every stretch of it: a burst never beats the bucket either.
        for i, (at, _) in enumerate(grants):
            window = sum(net for _, net in grants[i:])
            assert window <= local + rate * (clock.now - at) + EPSILON
        # After a 429, only what has refilled since, less the headroom owed.
        if since_429 is not None:
            at, before = since_429
            after = sum(net for _, net in grants[before:])
            assert after <= max(0.0, rate * (clock.now - at) - headroom) + EPSILON
