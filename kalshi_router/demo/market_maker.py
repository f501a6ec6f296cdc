"""A small market maker for the demo: what a quoting bot sends, against the simulator's books,
and what it learns of its orders afterwards (``router.orders``).

Each cycle it cancels its resting quotes and waits for the cancels (the router sends them
first), then quotes both sides of each market around a mid that walks. A quote is sized so
that the bot's worst case, its inventory plus everything its orders still out could fill, stays
within the inventory limit: a side at the limit is not quoted until trades bring the inventory
back inside. Now and then it sends an order the exchange refuses or one that takes liquidity,
and once, halfway, a burst larger than the write bucket (far from the touch, on a market it
does not quote, so that the burst's resting bids do not count against the quotes' limit).
Quotes live one cycle: when the budget cannot send them in time they expire unsent, as a stale
quote should.

Every fill reaches it through ``router.orders.updates()`` as it happens and goes into its
:class:`~kalshi_router.demo.inventory.Inventory` (inventory, P&L, the limit's worst case).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from kalshi_router.demo.inventory import BookSide, Inventory
from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.orders.updates import FillEvent, OrderUpdate
from kalshi_router.outcome import Accepted, Cancelled, Outcome, outcome_name
from kalshi_router.router import OrderRouter

CENT = Decimal("0.01")
# The simulator seeds house liquidity: bids 0.40-0.45 and asks 0.55-0.60. Quotes between them
# rest; a post-only bid at 0.60 crosses (refused); an IOC bid at 0.56 takes an ask (filled).
QUOTE_BAND = (Decimal("0.47"), Decimal("0.53"))
INVENTORY_LIMIT = Decimal(5)
"""Contracts per market, long or short, that the bot's worst case may reach."""
CATCH_UP_S = 2.0


@dataclass
class Tally:
    """Every intent the load sent, and when its outcome came."""

    submitted: int = 0
    settled: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    crashed: int = 0

    def track(
        self, future: asyncio.Future[Any], on_outcome: Callable[[Outcome], None] | None = None
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
            if on_outcome is not None:
                on_outcome(outcome)

        future.add_done_callback(done)


@dataclass(frozen=True, slots=True)
class LimitEvent:
    """A side of a market stopped (``paused``) or started again being quoted. ``held`` is the
    inventory that way (long YES for bids, short for asks), ``on_order`` what the bot's orders
    on that side may still fill: their sum is what the limit bounds."""

    ticker: str
    side: BookSide
    paused: bool
    held: Decimal
    on_order: Decimal


@dataclass
class MarketMaker:
    router: OrderRouter
    tickers: tuple[str, ...]
    burst_ticker: str
    seed: int = 7
    limit: Decimal = INVENTORY_LIMIT
    on_fill: Callable[[FillEvent], None] | None = None
    on_limit: Callable[[LimitEvent], None] | None = None
    tally: Tally = field(default_factory=Tally)
    inventory: Inventory = field(default_factory=Inventory)
    limit_events: list[LimitEvent] = field(default_factory=list)
    resting: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Per market, the (client_order_id, order_id) of each order accepted with some left."""
    futures: list[asyncio.Future[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - a price walk, not a secret
        self._mids = {ticker: Decimal("0.50") for ticker in self.tickers}
        self._paused: set[tuple[str, BookSide]] = set()
        self._markets = {*self.tickers, self.burst_ticker}

    def mid(self, ticker: str) -> Decimal:
        """Where the bot centres its quotes on ``ticker``: what its inventory is marked to."""
        return self._mids[ticker]

    def cycle_seconds(self) -> float:
        """Long enough for the write budget to pay one cycle's cancels and quotes."""
        budget = self.router.budget
        cost = len(self.tickers) * 2 * (budget.costs["create"] + budget.costs["cancel"])
        return max(0.25, 1.2 * cost / budget.refill_rate)

    # Sending.

    def _send(self, intent: OrderIntent, deadline_s: float, rest: bool = False) -> None:
        self.inventory.submitted(intent.client_order_id, intent.ticker, intent.side, intent.count)
        future = self.router.submit(intent, deadline_s=deadline_s)
        self.futures.append(future)
        self.tally.track(future, partial(self._settled, intent, rest))

    def _settled(self, intent: OrderIntent, rest: bool, outcome: Outcome) -> None:
        self.inventory.settled(intent.client_order_id, outcome)
        if rest and isinstance(outcome, Accepted) and outcome.remaining_count:
            self.resting.setdefault(intent.ticker, []).append(
                (intent.client_order_id, outcome.order_id)
            )

    def _cancelled(self, key: str, outcome: Outcome) -> None:
        if isinstance(outcome, Cancelled):
            self.inventory.cancelled(key, outcome)

    async def _cancel_resting(self, tickers: tuple[str, ...]) -> None:
        """Cancel what rests on ``tickers`` and wait for the answers, so that the next quotes
        are sized knowing what the old ones filled."""
        cancels: list[asyncio.Future[Any]] = []
        for ticker in tickers:
            for key, order_id in self.resting.pop(ticker, []):
                future = self.router.cancel(CancelIntent(order_id=order_id, ticker=ticker))
                self.futures.append(future)
                self.tally.track(future, partial(self._cancelled, key))
                cancels.append(future)
        if cancels:
            await asyncio.wait(cancels)

    def _room(self, ticker: str, side: BookSide, wanted: Decimal) -> Decimal:
        """What ``side`` of ``ticker`` may quote now (at most ``wanted``); a change between
        zero and some is a pause or a resumption of that side."""
        room = self.inventory.room(ticker, side, self.limit)
        paused = room <= 0
        if paused != ((ticker, side) in self._paused):
            self._paused.symmetric_difference_update({(ticker, side)})
            on_order = self.inventory.out(ticker, side)
            held = self.inventory.worst_case(ticker, side) - on_order
            event = LimitEvent(ticker, side, paused, held, on_order)
            self.limit_events.append(event)
            if self.on_limit is not None:
                self.on_limit(event)
        return min(room, wanted)

    def is_paused(self, ticker: str, side: BookSide) -> bool:
        return (ticker, side) in self._paused

    async def step(self, cycle: int, lifetime_s: float) -> None:
        """One cycle: cancel the quotes; now and then take liquidity or send an order the
        exchange refuses (before the new quotes, which it would otherwise meet: self-trade);
        then quote anew within the inventory limit."""
        await self._cancel_resting(self.tickers)
        one = Decimal(1)
        ticker = self.tickers[cycle % len(self.tickers)]
        if cycle % 3 == 2 and self.inventory.room(ticker, "bid", self.limit) >= one:
            self._send(OrderIntent.bid(ticker, "0.60", one, post_only=True), lifetime_s)
        if cycle % 4 == 3 and self.inventory.room(ticker, "bid", self.limit) >= one:
            ioc = OrderIntent.bid(ticker, "0.56", one, time_in_force="immediate_or_cancel")
            self._send(ioc, lifetime_s)
        for ticker in self.tickers:
            step = Decimal(self._rng.choice((-1, 0, 1))) * CENT
            mid = min(max(self._mids[ticker] + step, QUOTE_BAND[0] + CENT), QUOTE_BAND[1] - CENT)
            self._mids[ticker] = mid
            size = Decimal(self._rng.randint(1, 5))
            if (count := self._room(ticker, "bid", size)) > 0:
                bid = OrderIntent.bid(ticker, mid - CENT, count, post_only=True)
                self._send(bid, lifetime_s, rest=True)
            if (count := self._room(ticker, "ask", size)) > 0:
                ask = OrderIntent.ask(ticker, mid + CENT, count, post_only=True)
                self._send(ask, lifetime_s, rest=True)

    def burst(self, count: int) -> None:
        """More than the bucket holds at once: far from the touch, patient deadlines."""
        budget = self.router.budget
        patience = 5 + count * budget.costs["create"] / budget.refill_rate
        for n in range(count):
            price = Decimal("0.20") + Decimal(n % 10) * CENT
            self._send(OrderIntent.bid(self.burst_ticker, price, 1), patience, True)

    # Following.

    def updates(self) -> Callable[[], Coroutine[Any, Any, None]]:
        """Subscribe to ``router.orders`` now; the coroutine function returned feeds every
        update to the inventory (and each new fill to ``on_fill``) until cancelled."""
        stream = self.router.orders.updates()

        async def follow() -> None:
            async for update in stream:
                self.on_update(update)

        return follow

    def on_update(self, update: OrderUpdate) -> None:
        # Orders of the account on other markets (the demo's showcase) are not the bot's.
        if update.ticker is not None and update.ticker not in self._markets:
            return
        fill = self.inventory.on_update(update)
        if fill is not None and self.on_fill is not None and fill.ticker in self._mids:
            self.on_fill(fill)

    def agrees_with_router(self) -> bool:
        """Whether the inventory from the fills seen equals ``router.orders.positions()`` on
        every market the bot quotes (position, net cost, fees)."""
        positions = self.router.orders.positions()
        for ticker in self.tickers:
            market = self.inventory.markets.get(ticker)
            theirs = positions.get(ticker)
            mine = (0, 0, 0) if market is None else (market.position, -market.cash, market.fees)
            other = (0, 0, 0) if theirs is None else (theirs.position, theirs.cost, theirs.fees)
            if mine != other:
                return False
        return True

    # Running.

    async def run(
        self,
        seconds: float,
        burst: int,
        on_tick: Callable[[float], None],
        alongside: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> bool:
        """Quote for ``seconds`` while ``alongside`` (the rest of the market) runs, then cancel
        everything, reconcile with the exchange, and return whether the inventory agrees with
        the router's positions."""
        follower = asyncio.create_task(self.updates()(), name="demo-follow-orders")
        try:
            others = asyncio.create_task(alongside(), name="demo-market") if alongside else None
            try:
                await self._quote_for(seconds, burst, on_tick)
            finally:
                if others is not None:
                    others.cancel()
                    await asyncio.gather(others, return_exceptions=True)
            started = time.monotonic()
            await self._settle_all(lambda: on_tick(seconds + time.monotonic() - started))
            await self._cancel_resting((*self.tickers, self.burst_ticker))
            await self._settle_all(lambda: None)
            # What the socket may have missed, REST finds: then the books must agree.
            await self.router.reconcile_orders()
            agrees = await self._caught_up()
            if follower.done():
                follower.result()  # it ends early only by failing: say why
            return agrees
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)

    async def _quote_for(
        self, seconds: float, burst: int, on_tick: Callable[[float], None]
    ) -> None:
        interval = self.cycle_seconds()
        started = time.monotonic()
        cycle = 0
        burst_at = seconds / 2
        while (elapsed := time.monotonic() - started) < seconds:
            if burst and elapsed >= burst_at:
                self.burst(burst)
                burst = 0
            # Unsent quotes expire just before the next cycle, which then counts only what the
            # exchange has (queued ones could still be sent, so they would count as on order).
            await self.step(cycle, 0.9 * interval)
            cycle += 1
            on_tick(elapsed)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started - elapsed)))

    async def _caught_up(self) -> bool:
        # The follower reads the updates the reconciliation pushed on its next turns.
        for _ in range(round(CATCH_UP_S / 0.01)):
            if self.agrees_with_router():
                return True
            await asyncio.sleep(0.01)
        return self.agrees_with_router()

    async def _settle_all(self, tick: Callable[[], None]) -> None:
        while self.futures:
            pending, self.futures = self.futures, []
            await asyncio.wait(pending)
            tick()
