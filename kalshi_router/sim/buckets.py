"""Kalshi's per-account token buckets (rate_limits page, OpenAPI 3.31.0 ``BucketLimit``).

Every request deducts its endpoint cost from the read or the write bucket; each bucket refills
continuously at its per-second budget up to its capacity, and a request the bucket cannot cover is
answered 429. Tokens are floats: this is the rate limiter, not the money path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

# A fake clock stepping by 0.1 s sums to 0.30000000000000004 and the like; without some slack a
# request that exactly fits the refilled budget would be refused one step late.
_EPSILON = 1e-9


class TokenBucket:
    """Starts full; refills at ``refill_rate`` tokens per second up to ``capacity``."""

    __slots__ = ("_clock", "_last", "_tokens", "capacity", "refill_rate")

    def __init__(self, refill_rate: int, capacity: int, clock: Callable[[], float]) -> None:
        if refill_rate <= 0 or capacity <= 0:
            raise ValueError("refill_rate and capacity must be positive")
        self.refill_rate = refill_rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = float(capacity)
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        if now > self._last:
            self._tokens = min(
                float(self.capacity), self._tokens + (now - self._last) * self.refill_rate
            )
            self._last = now

    @property
    def tokens(self) -> float:
        """The current level, after refilling up to now."""
        self._refill()
        return self._tokens

    def try_spend(self, cost: int) -> bool:
        """Deduct ``cost`` if the bucket covers it; a refused request spends nothing."""
        if cost < 0:
            raise ValueError("cost must not be negative")
        self._refill()
        if self._tokens + _EPSILON < cost:
            return False
        self._tokens = max(0.0, self._tokens - cost)
        return True

    def drain(self) -> None:
        """Empty the bucket now (to provoke a 429 storm)."""
        self._refill()
        self._tokens = 0.0


@dataclass(frozen=True, slots=True)
class Tier:
    """Per-second budgets and bucket capacities of one usage tier."""

    name: str
    read_refill: int
    read_capacity: int
    write_refill: int
    write_capacity: int


# Basic's write bucket holds one second of budget, every other tier's two seconds. Read burst
# capacity is undocumented; one second is the conservative guess.
TIERS: Mapping[str, Tier] = MappingProxyType(
    {
        t.name: t
        for t in (
            Tier("basic", 200, 200, 100, 100),
            Tier("advanced", 300, 300, 300, 600),
            Tier("premier", 1000, 1000, 1000, 2000),
            Tier("paragon", 2000, 2000, 2000, 4000),
            Tier("prime", 4000, 4000, 4000, 8000),
        )
    }
)

DEFAULT_COST = 10
# What GET /account/endpoint_costs lists: only costs that differ from DEFAULT_COST ("Configured
# token cost for an endpoint whose cost differs from the default cost"). The order-group
# endpoints are absent: the spec gives them no cost of their own (sim assumption: the default).
ENDPOINT_COSTS: tuple[tuple[str, str, int], ...] = (
    ("DELETE", "/portfolio/events/orders/{order_id}", 2),
    ("DELETE", "/portfolio/events/orders", 2),
    ("GET", "/portfolio/orders/{order_id}", 2),
)
CREATE_ITEM_COST = 10
CANCEL_ITEM_COST = 2
# Third-party reports (pmxt-dev/pmxt#903, #1731): legacy V1 creates cost ten times the V2 price.
V1_CREATE_ITEM_COST = 100


class AccountBuckets:
    """The independent read and write buckets of one account."""

    __slots__ = ("read", "tier", "write")

    def __init__(self, tier: Tier, clock: Callable[[], float]) -> None:
        self.tier = tier
        self.read = TokenBucket(tier.read_refill, tier.read_capacity, clock)
        self.write = TokenBucket(tier.write_refill, tier.write_capacity, clock)
