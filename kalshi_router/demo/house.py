"""The demo's other side: a house trader inside the embedded simulator that now and then takes
the market maker's best quote, so the bot's quotes get maker fills as they would on an exchange.

It trades through the simulator's engine directly (``Exchange.seed``, a house order priced at
the quote), never through REST, so it spends none of the bot's budget. Its flow persists:
it keeps hitting the same side of a market for a while, which pushes the bot's inventory
towards its limit, and turns when the bot stops quoting that side.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Literal

from kalshi_router.sim.book import Exchange, SimOrder

Side = Literal["bid", "ask"]
HOUSE = "house"
_OTHER: dict[Side, Side] = {"bid": "ask", "ask": "bid"}


@dataclass(frozen=True, slots=True)
class HouseTrade:
    """The house took ``count`` (hundredths) of the bot's quote on ``side`` at ``price``
    ($0.0001): a hit ``bid`` sold YES to the bot, a lifted ``ask`` bought YES from it."""

    ticker: str
    side: Side
    price: int
    count: int


@dataclass
class HouseTaker:
    """Takes the best quote of ``user_id`` (the bot) on one side of one of ``tickers``."""

    exchange: Exchange
    user_id: str
    tickers: tuple[str, ...]
    seed: int = 11
    mean_gap_s: float = 0.3
    max_contracts: int = 3
    persistence: float = 0.85
    """The chance that the next trade on a market hits the same side as the last."""
    trades: list[HouseTrade] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - a trading pattern, not a secret
        self._flow: dict[str, Side] = {t: self._rng.choice(("bid", "ask")) for t in self.tickers}

    def _best_quote(self, ticker: str, side: Side) -> tuple[int, int] | None:
        """The bot's best price on ``side`` and what rests there, if it is better than every
        house order on that side (so the house meets the bot's quote and nothing of its own)."""
        mine = self.exchange.orders(self.user_id, ticker=ticker, status="resting")
        house = self.exchange.orders(HOUSE, ticker=ticker, status="resting")
        quotes = [o for o in mine if o.side == side]
        if not quotes:
            return None
        prices = [o.price for o in quotes]
        houses = [o.price for o in house if o.side == side]
        if side == "bid":
            best = max(prices)
            reachable = not houses or best > max(houses)
        else:
            best = min(prices)
            reachable = not houses or best < min(houses)
        if not reachable:
            return None
        return best, sum(o.remaining_count for o in quotes if o.price == best)

    def take(self, ticker: str, side: Side, contracts: int) -> HouseTrade | None:
        """Trade up to ``contracts`` against the bot's best quote on ``side`` of ``ticker``;
        None when the bot quotes nothing there the house can reach."""
        found = self._best_quote(ticker, side)
        if found is None:
            return None
        price, resting = found
        count = min(contracts * 100, resting)
        order: SimOrder = self.exchange.seed(ticker, HOUSE, _OTHER[side], price, count)
        if order.status == "resting":
            # Nothing is left over when the quote was as large as listed; should the book
            # have changed, the house leaves no order of its own behind.
            self.exchange.cancel(HOUSE, order.order_id)
        traded = order.fill_count
        if not traded:
            return None
        trade = HouseTrade(ticker, side, price, traded)
        self.trades.append(trade)
        return trade

    def trade_once(self) -> HouseTrade | None:
        """One trade on a market picked at random, on the side its flow says (or the other
        when the bot quotes nothing there)."""
        ticker = self._rng.choice(self.tickers)
        if self._rng.random() > self.persistence:
            self._flow[ticker] = _OTHER[self._flow[ticker]]
        contracts = self._rng.randint(1, self.max_contracts)
        trade = self.take(ticker, self._flow[ticker], contracts)
        if trade is None:
            self._flow[ticker] = _OTHER[self._flow[ticker]]
            trade = self.take(ticker, self._flow[ticker], contracts)
        return trade

    async def run(self) -> None:
        """Trade now and then until cancelled."""
        while True:
            await asyncio.sleep(self._rng.expovariate(1 / self.mean_gap_s))
            self.trade_once()
