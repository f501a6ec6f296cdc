"""The account's write budget, mirrored locally so our own traffic never earns a 429.

Kalshi's write limit is a token bucket: it refills ``refill_rate`` tokens/s up to ``capacity``
and a request passes only if the bucket covers its whole cost. aiolimiter's leaky bucket with
``max_rate = capacity`` over ``capacity / refill_rate`` seconds is exactly that bucket, seen
from the other side (its *level* is the tokens spent and not yet refilled).

Our clock and the exchange's differ by the network: a request that spent less time on the wire
than the one before it reaches the exchange "early". That costs a 429 only once the exchange's
bucket has been full: at start, after an idle spell, and every cycle where one batch costs
nearly the whole bucket (Basic, whose bucket holds one second). We keep ``headroom`` tokens
unused (local capacity = capacity - headroom) and size batches from the local capacity, so an
early arrival of up to (capacity - batch cost) / refill seconds, and at least headroom / refill,
is absorbed. The sustained rate is not lowered at all.

One bucket serves every kind: the order of the lanes, cancels first, is the dispatcher's, which
asks for one spend at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from importlib.metadata import version

from aiolimiter import AsyncLimiter

from kalshi_router.errors import ConfigError, KalshiRouterError

# aiolimiter's public API has no way to give tokens back or to empty the bucket, which a
# dropped batch and a 429 need, nor to read another clock than the running loop's, which tests
# of the arithmetic without a loop need; so ``_Bucket`` uses these internals of its leaky bucket
# (and replaces ``_leak``, its refill, with the same arithmetic on a clock of ours). pyproject
# pins aiolimiter to the releases that have them and that the tests run against (1.2.1 to 1.3.x;
# 1.1 has no ``_wake_next``). Checked at import, so that another release fails here, loudly,
# rather than at the first 429.
INTERNALS = ("_leak", "_wake_next", "_level", "_last_check", "_waiters")
Clock = Callable[[], float]


def check_internals(limiter: type[AsyncLimiter]) -> None:
    sample = limiter(1, 1)
    missing = [name for name in INTERNALS if not hasattr(sample, name)]
    if missing:
        raise KalshiRouterError(
            f"aiolimiter {version('aiolimiter')} lacks {', '.join(missing)}, which the write "
            "budget uses; install the release pyproject.toml pins (aiolimiter>=1.2.1,<1.4)"
        )


check_internals(AsyncLimiter)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


class _Bucket(AsyncLimiter):
    """aiolimiter plus the two moves a 429 and a dropped batch need, on a clock of ours (see
    ``INTERNALS``)."""

    __slots__ = ("_clock", "_per_s")

    def __init__(self, capacity: float, refill_rate: float, clock: Clock) -> None:
        super().__init__(capacity, capacity / refill_rate)
        # The loop's clock, which aiolimiter's timers run on too, unless a test gives another.
        self._clock = clock
        self._per_s = self.max_rate / self.time_period

    def _leak(self) -> None:
        # aiolimiter's refill, to the last rounding, on ``_clock``; aiolimiter calls it before
        # every decision.
        now = self._clock()
        self._level = max(self._level - (now - self._last_check) * self._per_s, 0.0)
        self._last_check = now

    def tokens(self) -> float:
        self._leak()
        return self.max_rate - self._level

    def take(self, amount: float) -> bool:
        """Take ``amount`` now if the bucket holds it (``acquire`` without its coroutine)."""
        if not self.has_capacity(amount):
            return False
        self._level += amount
        if self._waiters:
            self._wake_next()
        return True

    def overdraw(self, debt: float) -> None:
        """Empty the bucket and owe ``debt`` more, so the next spend waits for it too."""
        self._leak()
        self._level = self.max_rate + debt
        self._wake_next()

    def refund(self, amount: float) -> None:
        self._leak()
        self._level = max(self._level - amount, 0.0)
        self._wake_next()


class LocalBudget:
    """The ``WriteBudget`` of one router alone on its account: costs per created and cancelled
    order, the batch sizes they allow, and the bucket. ``clock``: seconds, the running loop's
    by default (give another only to a budget that never waits)."""

    def __init__(
        self,
        *,
        refill_rate: float,
        capacity: float,
        create_cost: int,
        cancel_cost: int,
        single_cost: int,
        headroom: float = 0.0,
        clock: Clock = _loop_time,
    ) -> None:
        local = capacity - headroom
        costs = {"create": create_cost, "cancel": cancel_cost, "single": single_cost}
        kind = max(costs, key=costs.__getitem__)
        if refill_rate <= 0:
            raise ConfigError(f"limits.write_refill_rate: must be > 0, got {refill_rate}")
        if local < costs[kind]:
            # A ConfigError (the library's tree, and a ValueError): the config is what can fix
            # it, e.g. V1 orders (100 tokens) at Basic (bucket 100) need headroom_s = 0.
            raise ConfigError(
                f"limits: a write bucket of {capacity:g} tokens less {headroom:g} of headroom "
                f"cannot hold one request costing {costs[kind]} ({kind}); lower "
                "limits.headroom_s or raise limits.write_bucket_capacity"
            )
        self.refill_rate = refill_rate
        self.capacity = capacity
        self.headroom = headroom
        self.costs = costs
        self._bucket = _Bucket(local, refill_rate, clock)
        self.spent = 0
        self.blocked: str | None = None
        """Never set: a local bucket is always there."""

    def batch_limit(self, kind: str, configured_max: int) -> int:
        """Largest batch of ``kind`` one full local bucket can pay for."""
        if kind == "single":
            return 1
        return max(1, min(configured_max, int(self._bucket.max_rate) // self.costs[kind]))

    def tokens(self) -> float:
        return self._bucket.tokens()

    def take(self, kind: str, amount: int) -> bool:
        """``spend_now`` without a coroutine: this bucket answers at once (see
        ``SpendsAtOnce``)."""
        if not self._bucket.take(amount):
            return False
        self.spent += amount
        return True

    async def spend_now(self, kind: str, amount: int) -> bool:
        return self.take(kind, amount)

    async def spend(self, kind: str, amount: int) -> None:
        """Wait until the bucket covers ``amount``, then take it. Cancellation-safe: a
        cancelled wait takes nothing."""
        await self._bucket.acquire(amount)
        self.spent += amount

    def refund(self, kind: str, amount: int) -> None:
        self._bucket.refund(amount)
        self.spent -= amount

    def rate_limited(self) -> None:
        """Empty the bucket and owe the headroom too, so that the margin above is rebuilt
        before we spend again."""
        self._bucket.overdraw(self.headroom)

    def figures(self) -> None:
        """A local bucket has nothing more to report than its ``BudgetView``."""

    async def aclose(self) -> None:
        """Nothing to let go of."""
