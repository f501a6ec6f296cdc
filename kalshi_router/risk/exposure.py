"""What the account may hold at worst, per ticker: the risk gate's view of exposure.

Pure and synchronous. Three things count, each at its worst case (as if everything that may
still fill did; Kalshi's own FCM cap reserves "open and in-flight orders at their full
worst-case cost" the same way):

- the **position**: signed YES contracts, moved by fills (each ``trade_id`` once);
- **open orders**: what each order the tracker reports may still fill, on its side;
- **pending creates**: reserved at admission (:meth:`Exposure.reserve`) at their full count,
  until the tracker reports the order (its view replaces the reservation) or the create fails
  (:meth:`Exposure.release`). An amend that raises an order's count reserves its new total the
  same way (:meth:`Exposure.reserve_amend`).

An order may still move the position by ``total - counted``: its total (filled + remaining, as
the tracker last said; the create's count until the tracker says; an amend's new total while it
is pending) less the fills already counted into the position. So a fill the order's snapshot
shows before its ``fill`` update arrives still counts, once, and one that arrives first is not
counted twice. Worst case long = position + that sum over bids; worst case short = that sum over
asks - position.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from kalshi_router.intent import AmendIntent, OrderIntent
from kalshi_router.orders.updates import FillEvent, OrderUpdate

__all__ = ["Exposure", "cost"]

Side = Literal["bid", "ask"]
_ZERO = Decimal(0)
_ONE = Decimal(1)
_DAY_S = 86_400
_DAY_MS = 86_400_000
KEEP_TRADE_IDS = 100_000
"""Trade ids remembered to drop a repeated fill (the tracker already counts each once)."""
KEEP_GONE = 10_000
"""Finished orders whose counted fills are remembered, should the tracker correct one back."""


def cost(side: Side, yes_price: Decimal) -> Decimal:
    """What one contract costs at worst: the YES price for a bid, the NO price for an ask."""
    return yes_price if side == "bid" else _ONE - yes_price


@dataclass(slots=True)
class _Target:
    """A pending amend's new total, at its price."""

    total: Decimal
    price: Decimal


class _Order:
    """One order as exposure counts it. A plain slotted class: one is made per admitted create,
    on the hot path."""

    __slots__ = (
        "client_order_id",
        "counted",
        "filled",
        "final",
        "keys",
        "notional",
        "open",
        "order_id",
        "price",
        "remaining",
        "reserved",
        "seen",
        "side",
        "targets",
        "ticker",
        "worst",
    )

    def __init__(
        self,
        ticker: str,
        side: Side,
        price: Decimal,
        client_order_id: str | None,
        order_id: str | None = None,
    ) -> None:
        self.ticker = ticker
        self.side = side
        self.price = price
        self.client_order_id = client_order_id
        self.order_id = order_id
        self.reserved: Decimal | None = None
        """The create's count, until the tracker reports the order's own."""
        self.seen = False
        """The tracker reported it."""
        self.filled = _ZERO
        self.remaining: Decimal | None = None
        self.counted = _ZERO
        """Its fills counted into the position."""
        self.final = False
        self.targets: tuple[_Target, ...] = ()
        self.keys: tuple[str, ...] = ()
        """The keys it was reserved under (its create's, its amends'), dropped when it ends."""
        # What it adds now (kept so that a change takes off exactly what it added).
        self.worst = _ZERO
        self.notional = _ZERO
        self.open = False

    def measure(self) -> tuple[Decimal, Decimal, bool]:
        if self.remaining is not None:
            total = self.filled + self.remaining
        else:
            total = max(self.reserved or _ZERO, self.filled)
        unit = cost(self.side, self.price)
        if not self.final:
            for target in self.targets:
                total = max(total, target.total)
                unit = max(unit, cost(self.side, target.price))
        worst = max(_ZERO, total - self.counted)
        return worst, worst * unit, not self.final


@dataclass(slots=True)
class _Book:
    position: Decimal = _ZERO
    bids: Decimal = _ZERO
    asks: Decimal = _ZERO
    open_orders: int = 0


class Exposure:
    """Position, open orders and pending creates per ticker, at their worst case."""

    def __init__(self) -> None:
        self._books: dict[str, _Book] = {}
        self._by_client: dict[str, _Order] = {}
        self._by_id: dict[str, _Order] = {}
        self._creates: dict[str, _Order] = {}
        """Creates reserved and not yet settled, by key."""
        self._amends: dict[str, tuple[_Order, _Target]] = {}
        self._trade_ids: OrderedDict[str, None] = OrderedDict()
        self._gone: OrderedDict[str, Decimal] = OrderedDict()
        self._filled_by_day: dict[int, Decimal] = {}
        self._open_notional = _ZERO
        self._today = -1

    # --- reservations (the gate) ---

    def reserve(self, key: str, intent: OrderIntent) -> None:
        """Count a create admitted under ``key`` (its client_order_id) at its full size."""
        # What _change would do, written out: this runs for every admitted create.
        side, count, price = intent.side, intent.count, intent.price
        order = _Order(intent.ticker, side, price, intent.client_order_id)
        order.reserved = order.worst = count
        order.notional = notional = count * (price if side == "bid" else _ONE - price)
        order.open = True
        order.keys = (key,)
        book = self._books.get(intent.ticker) or self._book(intent.ticker)
        if side == "bid":
            book.bids += count
        else:
            book.asks += count
        book.open_orders += 1
        self._open_notional += notional
        self._creates[key] = order
        self._by_client[intent.client_order_id] = order

    def release(self, key: str) -> None:
        """The create reserved under ``key`` failed (rejected, expired, closed, or an unknown
        proved absent): it counts no more, unless the tracker has seen the order after all."""
        order = self._creates.pop(key, None)
        if order is not None:
            order.reserved = None
            self._change(order)

    def settled(self, key: str) -> None:
        """The create under ``key`` was accepted: its reservation stays until the tracker
        reports the order, but the key is done."""
        self._creates.pop(key, None)

    def reserve_amend(self, key: str, intent: AmendIntent) -> None:
        """Count an amend admitted under ``key`` at its new total (and the dearer price) until
        the tracker shows the order that large, or the amend fails."""
        order = self._by_id.get(intent.order_id)
        if order is None:
            order = _Order(intent.ticker, intent.side, intent.price, intent.client_order_id)
            order.order_id = intent.order_id
            self._by_id[intent.order_id] = order
        target = _Target(intent.count, intent.price)
        order.targets += (target,)
        order.keys += (key,)
        self._amends[key] = (order, target)
        self._change(order)

    def release_amend(self, key: str) -> None:
        """The amend under ``key`` failed: its new total counts no more."""
        found = self._amends.pop(key, None)
        if found is not None:
            order, target = found
            order.targets = tuple(kept for kept in order.targets if kept is not target)
            self._change(order)

    def amend_settled(self, key: str) -> None:
        """The amend under ``key`` took effect: its total stays until the tracker shows it."""
        self._amends.pop(key, None)

    # --- the tracker ---

    def on_update(self, update: OrderUpdate) -> None:
        """One update from the order tracker (``router.orders.updates()``)."""
        order = self._find(update)
        if order is None:
            if update.fill is not None:
                self._count_fill(update.fill, None)
            return
        fill = update.fill
        if fill is not None:
            self._count_fill(fill, order)
        order.filled = max(order.filled, update.filled)
        if update.remaining is not None:
            order.remaining = update.remaining
        order.final = update.final
        if order.final:
            order.remaining = _ZERO
        if order.remaining is not None:
            # The tracker's view replaces the create's reservation, and any amend it shows.
            order.reserved = None
            total = order.filled + order.remaining
            if order.targets:
                order.targets = tuple(kept for kept in order.targets if kept.total > total)
        if update.yes_price is not None:
            order.price = update.yes_price
        if order.order_id is None and update.order_id is not None:
            order.order_id = update.order_id
            self._by_id[update.order_id] = order
        order.seen = True
        self._change(order)

    def set_position(self, ticker: str, position: Decimal) -> None:
        """The position in ``ticker`` as known elsewhere (the tracker's ``positions()`` at
        start, or the exchange's): fills counted from now on move it."""
        self._book(ticker).position = position

    # --- what the gate reads ---

    def position(self, ticker: str) -> Decimal:
        book = self._books.get(ticker)
        return _ZERO if book is None else book.position

    def bids(self, ticker: str) -> Decimal:
        """Contracts open and pending on the bid side: what may still buy YES."""
        book = self._books.get(ticker)
        return _ZERO if book is None else book.bids

    def asks(self, ticker: str) -> Decimal:
        book = self._books.get(ticker)
        return _ZERO if book is None else book.asks

    def worst_long(self, ticker: str) -> Decimal:
        """YES contracts held if every open and pending bid filled and no ask did."""
        book = self._books.get(ticker)
        return _ZERO if book is None else book.position + book.bids

    def worst_short(self, ticker: str) -> Decimal:
        """YES contracts short (NO held) if every open and pending ask filled and no bid did."""
        book = self._books.get(ticker)
        return _ZERO if book is None else book.asks - book.position

    def open_orders(self, ticker: str) -> int:
        """Orders open on ``ticker``: those the tracker shows open, and pending creates."""
        book = self._books.get(ticker)
        return 0 if book is None else book.open_orders

    def bought_today(self, now: float) -> Decimal:
        """Dollars bought in the UTC day of ``now`` (Unix seconds): fills that day, at their
        cost on their side, plus the worst-case cost of every open and pending order."""
        today = int(now // _DAY_S)
        if today != self._today:
            self._today = today
            for day in [day for day in self._filled_by_day if day < today]:
                del self._filled_by_day[day]
        return self._filled_by_day.get(today, _ZERO) + self._open_notional

    def order_total(self, order_id: str) -> Decimal | None:
        """The most the order may come to (filled + remaining, or a pending amend's total), or
        ``None`` when it is not known."""
        order = self._by_id.get(order_id)
        if order is None:
            return None
        return order.counted + order.worst

    def reserved_creates(self) -> int:
        return len(self._creates)

    def reserved_amends(self) -> int:
        return len(self._amends)

    def orders(self) -> int:
        """Orders counted (open, pending, or final with fills still to come)."""
        return len({id(order) for order in (*self._by_client.values(), *self._by_id.values())})

    # --- bookkeeping ---

    def _find(self, update: OrderUpdate) -> _Order | None:
        order = None if update.order_id is None else self._by_id.get(update.order_id)
        if order is None and update.client_order_id is not None:
            order = self._by_client.get(update.client_order_id)
        if order is not None:
            return order
        ticker, side = update.ticker, update.book_side
        fill = update.fill
        price = update.yes_price or (None if fill is None else fill.yes_price)
        if ticker is None or side is None or price is None:
            return None
        # An order the router did not reserve (placed elsewhere, or before a restart).
        order = _Order(ticker, side, price, update.client_order_id, update.order_id)
        if update.order_id is not None:
            order.counted = self._gone.pop(update.order_id, _ZERO)
            self._by_id[update.order_id] = order
        if update.client_order_id is not None:
            self._by_client[update.client_order_id] = order
        return order

    def _count_fill(self, fill: FillEvent, order: _Order | None) -> None:
        if fill.trade_id in self._trade_ids:
            return
        self._trade_ids[fill.trade_id] = None
        if len(self._trade_ids) > KEEP_TRADE_IDS:
            self._trade_ids.popitem(last=False)
        book = self._book(fill.ticker)
        book.position += fill.count if fill.book_side == "bid" else -fill.count
        day = fill.ts_ms // _DAY_MS
        spent = fill.count * cost(fill.book_side, fill.yes_price)
        self._filled_by_day[day] = self._filled_by_day.get(day, _ZERO) + spent
        if order is not None:
            # What the order may still add shrinks by as much: _change, called next with the
            # rest of the update, takes off what it added before and adds what it adds now.
            order.counted += fill.count

    def _change(self, order: _Order) -> None:
        """Count ``order`` anew after its fields changed: what it added before (kept in
        ``worst``, ``notional``, ``open``) comes off, what it adds now goes on."""
        book = self._book(order.ticker)
        self._add(order, book, -1)
        order.worst, order.notional, order.open = order.measure()
        self._add(order, book, 1)
        if order.worst == 0 and (order.final or not (order.seen or order.reserved)):
            self._forget(order)

    def _add(self, order: _Order, book: _Book, sign: int) -> None:
        if sign > 0:
            if order.side == "bid":
                book.bids += order.worst
            else:
                book.asks += order.worst
            book.open_orders += order.open
            self._open_notional += order.notional
        else:
            if order.side == "bid":
                book.bids -= order.worst
            else:
                book.asks -= order.worst
            book.open_orders -= order.open
            self._open_notional -= order.notional

    def _forget(self, order: _Order) -> None:
        if order.open:
            # Not yet counted out: an empty order still open (a placeholder) counts as none.
            self._book(order.ticker).open_orders -= 1
            order.open = False
        for key in order.keys:
            # Keys an unknown outcome left behind (the tracker has resolved it since).
            if self._creates.get(key) is order:
                del self._creates[key]
            amend = self._amends.get(key)
            if amend is not None and amend[0] is order:
                del self._amends[key]
        order.keys = ()
        if (
            order.client_order_id is not None
            and self._by_client.get(order.client_order_id) is order
        ):
            del self._by_client[order.client_order_id]
        if order.order_id is not None and self._by_id.get(order.order_id) is order:
            del self._by_id[order.order_id]
            self._gone[order.order_id] = order.counted
            if len(self._gone) > KEEP_GONE:
                self._gone.popitem(last=False)

    def _book(self, ticker: str) -> _Book:
        book = self._books.get(ticker)
        if book is None:
            book = self._books[ticker] = _Book()
        return book
