"""A small market maker for the demo: what a quoting bot sends, against the simulator's books.

Each cycle it cancels its resting quotes and replaces them (cancels go first: the router gives
them priority), now and then sends an order the exchange refuses or one that takes liquidity,
and once, halfway, a burst larger than the write bucket. Quotes live one cycle: when the budget
cannot send them in time they expire unsent, as a stale quote should.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.outcome import Accepted, outcome_name
from kalshi_router.router import OrderRouter

CENT = Decimal("0.01")
# The simulator seeds house liquidity: bids 0.40-0.45 and asks 0.55-0.60. Quotes between them
# rest; a post-only bid at 0.60 crosses (refused); an IOC bid at 0.56 takes an ask (filled).
QUOTE_BAND = (Decimal("0.47"), Decimal("0.53"))


@dataclass
class Tally:
    """Every intent the load sent, and when its outcome came."""

    submitted: int = 0
    settled: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    crashed: int = 0

    def track(
        self, future: asyncio.Future[Any], on_accept: Callable[[Accepted], None] | None = None
    ) -> None:
        self.submitted += 1
        started = time.perf_counter()

        def done(settled: asyncio.Future[Any]) -> None:
            self.settled += 1
            self.latencies.append(time.perf_counter() - started)
            if settled.cancelled() or settled.exception() is not None:
                self.crashed += 1
                return
            outcome = settled.result()
            self.outcomes[outcome_name(outcome)] += 1
            if on_accept is not None and isinstance(outcome, Accepted):
                on_accept(outcome)

        future.add_done_callback(done)


@dataclass
class MarketMaker:
    router: OrderRouter
    tickers: tuple[str, ...]
    seed: int = 7
    tally: Tally = field(default_factory=Tally)
    resting: dict[str, list[str]] = field(default_factory=dict)
    futures: list[asyncio.Future[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - a price walk, not a secret
        self._mids = {ticker: Decimal("0.50") for ticker in self.tickers}

    def cycle_seconds(self) -> float:
        """Long enough for the write budget to pay one cycle's cancels and quotes."""
        budget = self.router.budget
        cost = len(self.tickers) * 2 * (budget.costs["create"] + budget.costs["cancel"])
        return max(0.25, 1.2 * cost / budget.refill_rate)

    def _send(self, intent: OrderIntent, deadline_s: float, rest: bool = False) -> None:
        future = self.router.submit(intent, deadline_s=deadline_s)
        self.futures.append(future)
        if rest:
            ticker = intent.ticker
            self.tally.track(
                future, lambda o: self.resting.setdefault(ticker, []).append(o.order_id)
            )
        else:
            self.tally.track(future)

    def _cancel_resting(self, ticker: str) -> None:
        for order_id in self.resting.pop(ticker, []):
            future = self.router.cancel(CancelIntent(order_id=order_id, ticker=ticker))
            self.futures.append(future)
            self.tally.track(future)

    def quote(self, cycle: int, lifetime_s: float) -> None:
        for ticker in self.tickers:
            step = Decimal(self._rng.choice((-1, 0, 1))) * CENT
            mid = min(max(self._mids[ticker] + step, QUOTE_BAND[0] + CENT), QUOTE_BAND[1] - CENT)
            self._mids[ticker] = mid
            self._cancel_resting(ticker)
            size = self._rng.randint(1, 5)
            self._send(OrderIntent.bid(ticker, mid - CENT, size, post_only=True), lifetime_s, True)
            self._send(OrderIntent.ask(ticker, mid + CENT, size, post_only=True), lifetime_s, True)
        ticker = self.tickers[cycle % len(self.tickers)]
        if cycle % 3 == 2:
            self._send(OrderIntent.bid(ticker, "0.60", 1, post_only=True), lifetime_s)
        if cycle % 4 == 3:
            self._send(
                OrderIntent.bid(ticker, "0.56", 1, time_in_force="immediate_or_cancel"), lifetime_s
            )

    def burst(self, count: int) -> None:
        """More than the bucket holds at once: far from the touch, patient deadlines."""
        budget = self.router.budget
        patience = 5 + count * budget.costs["create"] / budget.refill_rate
        for n in range(count):
            ticker = self.tickers[n % len(self.tickers)]
            price = Decimal("0.20") + Decimal(n % 10) * CENT
            self._send(OrderIntent.bid(ticker, price, 1), patience, True)

    async def run(self, seconds: float, burst: int, on_tick: Callable[[float], None]) -> None:
        interval = self.cycle_seconds()
        started = time.monotonic()
        cycle = 0
        burst_at = seconds / 2
        while (elapsed := time.monotonic() - started) < seconds:
            if burst and elapsed >= burst_at:
                self.burst(burst)
                burst = 0
            self.quote(cycle, interval)
            cycle += 1
            on_tick(elapsed)
            await asyncio.sleep(interval)
        await self._settle_all(lambda: on_tick(time.monotonic() - started))
        for ticker in list(self.resting):
            self._cancel_resting(ticker)
        await self._settle_all(lambda: None)

    async def _settle_all(self, tick: Callable[[], None]) -> None:
        while self.futures:
            pending, self.futures = self.futures, []
            await asyncio.wait(pending)
            tick()
