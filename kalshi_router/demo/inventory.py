"""The market maker's books: inventory and P&L per market from its fills, and the worst case
its orders still out could bring, which the inventory limit is checked against.

Pure and synchronous: fed the bot's fill events and order updates (``router.orders``) and the
outcomes of its intents, it answers how many more contracts each side may quote.

P&L, per market, in dollars: *realized* is what closing trades made against the average cost
of the contracts they closed; *unrealized* marks what is held to a mid price,
``inventory x (mid - average cost)``; fees are the fees the fills paid. ``pnl(mid)`` =
realized + unrealized - fees, which is also cash received - cash paid + inventory x mid.
Inventory is the signed YES position: a bid fill buys YES, an ask fill sells it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from kalshi_router.orders.updates import FillEvent, OrderUpdate
from kalshi_router.outcome import Accepted, Cancelled, Outcome, Unknown

BookSide = Literal["bid", "ask"]
ZERO = Decimal(0)


@dataclass(slots=True)
class Market:
    """One market's inventory and P&L, from its fills in the order they came."""

    ticker: str
    position: Decimal = ZERO
    basis: Decimal = ZERO
    """The signed cost of the contracts held: ``position x average cost``."""
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    bought: Decimal = ZERO
    sold: Decimal = ZERO
    cash: Decimal = ZERO
    """Received for YES sold less paid for YES bought (fees apart)."""
    fills: int = 0
    maker_fills: int = 0

    def apply(self, fill: FillEvent) -> None:
        count, price = fill.count, fill.yes_price
        delta = count if fill.book_side == "bid" else -count
        self.fills += 1
        self.maker_fills += not fill.is_taker
        self.fees += fill.fee
        self.cash -= price * delta
        if fill.book_side == "bid":
            self.bought += count
        else:
            self.sold += count
        held = self.position
        if held == 0 or (held > 0) == (delta > 0):
            self.basis += price * delta
            self.position += delta
            return
        # Closing (part of) the position: realize against its average cost.
        closed = min(count, abs(held))
        average = self.basis / held
        sign = 1 if held > 0 else -1
        self.realized += closed * (price - average) * sign
        self.basis -= average * closed * sign
        self.position += delta
        if self.position == 0:
            self.basis = ZERO  # no rounding residue left on a flat book
        elif (self.position > 0) != (held > 0):
            # Went through flat: what is left was opened at this fill's price.
            self.basis = price * self.position

    @property
    def average_cost(self) -> Decimal | None:
        return None if self.position == 0 else self.basis / self.position

    def unrealized(self, mid: Decimal) -> Decimal:
        return self.position * mid - self.basis

    def pnl(self, mid: Decimal) -> Decimal:
        return self.realized + self.unrealized(mid) - self.fees


@dataclass(slots=True)
class _Order:
    ticker: str
    side: BookSide
    count: Decimal
    order_id: str | None = None
    counted: Decimal = ZERO
    """Filled, as the fill events seen so far add up."""
    final_filled: Decimal | None = None
    """Filled in all, once the order can trade no more."""

    @property
    def may_still_fill(self) -> Decimal:
        """What this order can still add to the position that its fills have not yet."""
        cap = self.count if self.final_filled is None else self.final_filled
        return max(cap - self.counted, ZERO)


@dataclass(slots=True)
class Inventory:
    """Every market the bot trades and every order it has out; see the module docstring."""

    markets: dict[str, Market] = field(default_factory=dict)
    _orders: dict[str, _Order] = field(default_factory=dict)
    _by_order_id: dict[str, str] = field(default_factory=dict)
    _trades: set[str] = field(default_factory=set)

    def market(self, ticker: str) -> Market:
        found = self.markets.get(ticker)
        if found is None:
            found = self.markets[ticker] = Market(ticker)
        return found

    # What the bot sends and what it hears back.

    def submitted(self, key: str, ticker: str, side: BookSide, count: Decimal) -> None:
        """An order intent went out under client_order_id ``key``: until it is known to be
        refused, all of it may fill."""
        self._orders[key] = _Order(ticker, side, count)

    def settled(self, key: str, outcome: Outcome) -> None:
        """The create's outcome: an order that never reached the book cannot fill."""
        order = self._orders.get(key)
        if order is None:
            return
        if isinstance(outcome, Accepted):
            order.order_id = outcome.order_id
            self._by_order_id[outcome.order_id] = key
            if outcome.remaining_count == 0:
                self._final(key, order, outcome.fill_count)
        elif not isinstance(outcome, Unknown):
            self._final(key, order, ZERO)

    def cancelled(self, key: str, outcome: Cancelled) -> None:
        """A cancel took what rested off the book: what had filled is all it will fill."""
        order = self._orders.get(key)
        if order is not None:
            self._final(key, order, order.count - outcome.reduced_by)

    def on_update(self, update: OrderUpdate) -> FillEvent | None:
        """One of ``router.orders.updates()``; returns its fill when it brings a new one."""
        key = self._key(update.client_order_id, update.order_id)
        order = self._orders.get(key) if key is not None else None
        fill = update.fill
        new = fill is not None and fill.trade_id not in self._trades
        if fill is not None and new:
            self._trades.add(fill.trade_id)
            self.market(fill.ticker).apply(fill)
            fill_key = self._key(fill.client_order_id, fill.order_id)
            filled = self._orders.get(fill_key) if fill_key is not None else None
            if filled is not None and fill_key is not None:
                filled.counted += fill.count
                self._forget_if_done(fill_key, filled)
        if order is not None and key is not None and update.final:
            # reconciled_absent is final too, with nothing filled.
            self._final(key, order, update.filled)
        return fill if new else None

    def _key(self, client_order_id: str | None, order_id: str | None) -> str | None:
        if client_order_id and client_order_id in self._orders:
            return client_order_id
        return self._by_order_id.get(order_id) if order_id else None

    def _final(self, key: str, order: _Order, filled: Decimal) -> None:
        order.final_filled = filled
        self._forget_if_done(key, order)

    def _forget_if_done(self, key: str, order: _Order) -> None:
        if order.final_filled is not None and order.may_still_fill == 0:
            self._orders.pop(key, None)
            if order.order_id is not None:
                self._by_order_id.pop(order.order_id, None)

    # What the limit is checked against.

    def out(self, ticker: str, side: BookSide) -> Decimal:
        """What the bot's orders on ``side`` of ``ticker`` may still fill."""
        mine = (o for o in self._orders.values() if (o.ticker, o.side) == (ticker, side))
        return sum((o.may_still_fill for o in mine), ZERO)

    def worst_case(self, ticker: str, side: BookSide) -> Decimal:
        """How long YES (``bid``) or how short (``ask``) the bot would be if every order it has
        out on that side filled: the figure the inventory limit bounds."""
        position = self.markets[ticker].position if ticker in self.markets else ZERO
        held = position if side == "bid" else -position
        return held + self.out(ticker, side)

    def room(self, ticker: str, side: BookSide, limit: Decimal) -> Decimal:
        """How many more contracts ``side`` may quote without passing ``limit``."""
        return max(limit - self.worst_case(ticker, side), ZERO)
