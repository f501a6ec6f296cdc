"""The simulator's matching engine: one ``Exchange`` holding every market's order book.

Pure and synchronous; the aiohttp app wraps it. Units: prices in $0.0001, counts in hundredths
of a contract, money in micro-dollars. Every operation validates first and mutates only once
nothing can fail any more, so a rejected request changes no order, book or balance.
"""

from __future__ import annotations

import heapq
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias

from kalshi_router.sim._ladder import PRICE_ONE, Entry, Ladder, taker_fee, unit_cost

Side: TypeAlias = Literal["bid", "ask"]
TimeInForce: TypeAlias = Literal["fill_or_kill", "good_till_canceled", "immediate_or_cancel"]
Stp: TypeAlias = Literal["taker_at_cross", "maker"]
Status: TypeAlias = Literal["resting", "canceled", "executed"]


@dataclass(frozen=True, slots=True)
class Market:
    """A market's price structure and trading state."""

    ticker: str
    tick: int = 100
    min_price: int = 100
    max_price: int = 9900
    fractional: bool = True
    trading_active: bool = True

    def __post_init__(self) -> None:
        if not (self.tick > 0 and 0 < self.min_price <= self.max_price < PRICE_ONE):
            raise ValueError(f"bad price structure for {self.ticker}")


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A create request, already parsed into integer units."""

    user_id: str
    ticker: str
    client_order_id: str
    side: Side
    price: int
    count: int
    time_in_force: TimeInForce
    stp: Stp
    post_only: bool = False
    reduce_only: bool = False
    expiration_time: int | None = None
    order_group_id: str | None = None
    subaccount: int = 0
    cancel_order_on_pause: bool = False
    exchange_index: int = 0
    buy_max_cost: int | None = None


class OrderRejected(Exception):
    """The exchange refused a request; carries Kalshi's error triple and the HTTP status."""

    def __init__(self, code: str, message: str, details: str = "", http_status: int = 400) -> None:
        super().__init__(f"{code}: {message}" + (f" ({details})" if details else ""))
        self.code = code
        self.message = message
        self.details = details
        self.http_status = http_status


@dataclass(slots=True)
class SimOrder:
    """The exchange's record of one order; mutable, owned by ``Exchange``."""

    order_id: str
    user_id: str
    client_order_id: str
    ticker: str
    side: Side
    price: int
    initial_count: int
    fill_count: int
    remaining_count: int
    time_in_force: TimeInForce
    stp: Stp
    post_only: bool
    reduce_only: bool
    expiration_time: int | None
    order_group_id: str | None
    subaccount: int
    cancel_order_on_pause: bool
    exchange_index: int
    status: Status
    taker_fill_cost: int
    maker_fill_cost: int
    taker_fees: int
    maker_fees: int
    created_ts_ms: int
    last_update_ts_ms: int
    seq: int


@dataclass(frozen=True, slots=True)
class Placed:
    """What a create did; averages are micro-dollars per contract, None when nothing filled."""

    order: SimOrder
    fill_count: int
    remaining_count: int
    average_fill_price: int | None
    average_fee_paid: int | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Reduced:
    """What a cancel, decrease or amend did; ``fill_count`` counts fills an amend caused."""

    order: SimOrder
    reduced_by: int
    fill_count: int
    average_fill_price: int | None
    average_fee_paid: int | None
    ts_ms: int


@dataclass(slots=True)
class _Account:
    cash: int
    reserved: int = 0
    positions: dict[str, int] = field(default_factory=dict)
    orders: list[SimOrder] = field(default_factory=list)
    resting: dict[str, SimOrder] = field(default_factory=dict)
    used_client_ids: set[str] = field(default_factory=set)
    by_client_id: dict[str, SimOrder] = field(default_factory=dict)


@dataclass(slots=True)
class _Book:
    market: Market
    bids: Ladder = field(default_factory=lambda: Ladder("bid"))
    asks: Ladder = field(default_factory=lambda: Ladder("ask"))

    def side(self, side: Side) -> Ladder:
        return self.bids if side == "bid" else self.asks

    def opposite(self, side: Side) -> Ladder:
        return self.asks if side == "bid" else self.bids


@dataclass(slots=True)
class _Plan:
    """The fills an incoming order would make, worked out before anything changes."""

    fills: list[tuple[Entry, int]] = field(default_factory=list)
    self_trades: list[Entry] = field(default_factory=list)  # own makers that "maker" STP cancels
    stopped: bool = False  # "taker_at_cross" STP ended matching
    qty: int = 0
    notional: int = 0  # sum of price * count: the fill cost Kalshi reports
    cost: int = 0  # what the taker pays: YES at price, or NO at 1 - price
    fees: int = 0

    @property
    def self_crossed(self) -> bool:
        return self.stopped or bool(self.self_trades)

    def averages(self) -> tuple[int | None, int | None]:
        if not self.qty:
            return None, None
        return self.notional * 100 // self.qty, self.fees * 100 // self.qty


def _invalid_order(details: str, message: str = "invalid order") -> OrderRejected:
    return OrderRejected("invalid_order", message, details)


def _check_price(market: Market, price: int) -> None:
    if not market.min_price <= price <= market.max_price or price % market.tick:
        raise OrderRejected("invalid_price", "invalid price", f"{market.ticker}: {price}")


def _check_count(market: Market, count: int, what: str = "count") -> None:
    if count < 1 or (not market.fractional and count % 100):
        raise OrderRejected("invalid_order_size", "invalid order size", f"{what}: {count}")


def _check_expiration(expiration_time: int, now_ms: int) -> None:
    if expiration_time * 1000 <= now_ms:
        raise _invalid_order(str(expiration_time), "Expiration timestamp must be in the future")


def _check_trading(market: Market) -> None:
    # Sim assumption: Kalshi documents no code for orders on a paused market.
    if not market.trading_active:
        raise OrderRejected("trading_is_paused", "trading is paused", market.ticker)


def _not_found(order_id: str) -> OrderRejected:
    return OrderRejected("not_found", "order not found", order_id, http_status=404)


def _not_resting(order: SimOrder) -> OrderRejected:
    return OrderRejected("order_not_resting", "order is not resting", order.status)


def _duplicate(client_order_id: str) -> OrderRejected:
    return OrderRejected(
        "duplicate_client_order_id", "client order id already exists", client_order_id, 409
    )


class Exchange:
    """Every market's book, every user's orders, cash and positions."""

    def __init__(
        self,
        *,
        clock_ms: Callable[[], int],
        markets: Iterable[Market] = (),
        auto_create_markets: bool = True,
        starting_balance: int = 1_000_000 * 1_000_000,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        self._clock_ms = clock_ms
        self._auto_create = auto_create_markets
        self._starting_balance = starting_balance
        self._new_id = id_factory or (lambda: str(uuid.uuid4()))
        self._books = {m.ticker: _Book(m) for m in markets}
        self._accounts: dict[str, _Account] = {}
        self._orders: dict[str, SimOrder] = {}
        self._entries: dict[str, Entry] = {}
        self._expiries: list[tuple[int, int, str]] = []
        self._seq = 0

    # -- markets ---------------------------------------------------------------------------

    def _book(self, ticker: str) -> _Book:
        book = self._books.get(ticker)
        if book is None:
            if not self._auto_create:
                raise OrderRejected("market_not_found", "market not found", ticker, 404)
            book = self._books[ticker] = _Book(Market(ticker))
        return book

    def market(self, ticker: str) -> Market:
        """The market called ``ticker``, created with defaults if auto-creation is on."""
        return self._book(ticker).market

    def pause_market(self, ticker: str) -> None:
        """Stop trading; resting orders flagged ``cancel_order_on_pause`` are cancelled."""
        book = self._book(ticker)
        book.market = replace(book.market, trading_active=False)
        now = self._clock_ms()
        doomed = [
            e.order
            for ladder in (book.bids, book.asks)
            for e in ladder.entries()
            if e.order.cancel_order_on_pause
        ]
        for order in doomed:
            self._cancel_resting(order, now)

    def resume_market(self, ticker: str) -> None:
        """Reopen trading on a paused market."""
        book = self._book(ticker)
        book.market = replace(book.market, trading_active=True)

    # -- creating ------------------------------------------------------------------------------

    def place(self, order: NewOrder) -> Placed:
        """Validate, match and (for GTC) rest a new order; raises ``OrderRejected``."""
        return self._place(order, check_balance=True)

    def seed(self, ticker: str, user_id: str, side: Side, price: int, count: int) -> SimOrder:
        """Add GTC liquidity for a house user whose balance is never checked (it may go negative)."""
        new = NewOrder(user_id, ticker, "", side, price, count, "good_till_canceled", "maker")
        return self._place(new, check_balance=False).order

    def _place(self, new: NewOrder, *, check_balance: bool) -> Placed:
        now = self._clock_ms()
        book = self._book(new.ticker)
        market = book.market
        _check_trading(market)
        _check_price(market, new.price)
        _check_count(market, new.count)
        # V1's buy_max_cost "will automatically have Fill-or-Kill (FoK) behavior".
        tif: TimeInForce = "fill_or_kill" if new.buy_max_cost is not None else new.time_in_force
        if new.reduce_only and tif != "immediate_or_cancel":
            raise _invalid_order("reduce_only requires time_in_force immediate_or_cancel")
        if new.expiration_time is not None:
            if tif == "immediate_or_cancel":
                raise _invalid_order(
                    "immediate_or_cancel with expiration_time",
                    "Cannot specify both immediate_or_cancel and expiration_time",
                )
            _check_expiration(new.expiration_time, now)
        acct = self._account(new.user_id)
        if new.client_order_id in acct.used_client_ids:
            raise _duplicate(new.client_order_id)
        self._expire(now)
        qty = new.count
        if new.reduce_only:
            position = acct.positions.get(new.ticker, 0)
            qty = min(qty, max(-position if new.side == "bid" else position, 0))
        if new.post_only and book.opposite(new.side).crosses(new.price):
            # Kalshi's changelog (Oct 24, 2025) spells this code with a space.
            raise OrderRejected("invalid order", "invalid order", "post only cross")
        plan = self._plan(book, new.user_id, new.side, new.price, qty, new.stp)
        # Checked against the limit price, which no fill can be worse than, plus the exact fees.
        if check_balance and unit_cost(new.side, new.price) * qty + plan.fees > self._available(
            acct
        ):
            raise OrderRejected(
                "available_balance_too_low", "available balance too low", new.client_order_id
            )
        # A FoK that meets its own order is not rolled back: it finishes like an IoC
        # (changelog Sep 25, 2025). buy_max_cost (cents) is taken to exclude fees.
        if tif == "fill_or_kill" and (
            (plan.qty < new.count and not plan.self_crossed)
            or (new.buy_max_cost is not None and plan.cost > new.buy_max_cost * 10_000)
        ):
            plan = _Plan()

        self._seq += 1
        order = SimOrder(
            order_id=self._new_id(),
            user_id=new.user_id,
            client_order_id=new.client_order_id,
            ticker=new.ticker,
            side=new.side,
            price=new.price,
            initial_count=new.count,
            fill_count=0,
            remaining_count=new.count,
            time_in_force=tif,
            stp=new.stp,
            post_only=new.post_only,
            reduce_only=new.reduce_only,
            expiration_time=new.expiration_time,
            order_group_id=new.order_group_id,
            subaccount=new.subaccount,
            cancel_order_on_pause=new.cancel_order_on_pause,
            exchange_index=new.exchange_index,
            status="resting",
            taker_fill_cost=0,
            maker_fill_cost=0,
            taker_fees=0,
            maker_fees=0,
            created_ts_ms=now,
            last_update_ts_ms=now,
            seq=self._seq,
        )
        self._orders[order.order_id] = order
        acct.orders.append(order)
        self._use_client_id(acct, order, new.client_order_id)
        self._execute(book, order, plan, rest=tif == "good_till_canceled", now=now)
        avg_price, avg_fee = plan.averages()
        return Placed(order, plan.qty, order.remaining_count, avg_price, avg_fee, now)

    # -- changing ------------------------------------------------------------------------------

    def cancel(self, user_id: str, order_id: str, subaccount: int | None = None) -> Reduced:
        """Cancel a resting order; ``reduced_by`` is what was still resting."""
        now = self._clock_ms()
        self._expire(now)
        order = self._resting_order(user_id, order_id)
        if subaccount is not None and order.subaccount != subaccount:
            raise _not_found(order_id)
        reduced = order.remaining_count
        self._cancel_resting(order, now)
        return Reduced(order, reduced, 0, None, None, now)

    def cancel_all(self, user_id: str, subaccount: int | None = None) -> int:
        """Cancel every resting order of the user (of one subaccount if given); returns how many."""
        now = self._clock_ms()
        self._expire(now)
        acct = self._accounts.get(user_id)
        if acct is None:
            return 0
        doomed = [
            o for o in acct.resting.values() if subaccount is None or o.subaccount == subaccount
        ]
        for order in doomed:
            self._cancel_resting(order, now)
        return len(doomed)

    def decrease(
        self,
        user_id: str,
        order_id: str,
        *,
        reduce_by: int | None = None,
        reduce_to: int | None = None,
    ) -> Reduced:
        """Shrink a resting order in place (keeping its queue position); to zero cancels it."""
        if (reduce_by is None) == (reduce_to is None):
            raise OrderRejected(
                "invalid_parameters", "invalid parameters", "exactly one of reduce_by or reduce_to"
            )
        now = self._clock_ms()
        self._expire(now)
        order = self._resting_order(user_id, order_id)
        market = self._books[order.ticker].market
        if reduce_to is None:
            _check_count(market, reduce_by or 0, "reduce_by")
            # Sim assumption: reducing by more than rests cancels rather than errs.
            target = max(order.remaining_count - (reduce_by or 0), 0)
        else:
            if reduce_to:
                _check_count(market, reduce_to, "reduce_to")
            if not 0 <= reduce_to <= order.remaining_count:
                raise OrderRejected(
                    "invalid_parameters", "invalid parameters", "reduce_to must not increase"
                )
            target = reduce_to
        reduced = order.remaining_count - target
        if target == 0:
            self._cancel_resting(order, now)
        else:
            self._shrink(order, reduced, now)
        return Reduced(order, reduced, 0, None, None, now)

    def amend(
        self,
        user_id: str,
        order_id: str,
        *,
        ticker: str,
        side: Side,
        price: int,
        count: int,
        client_order_id: str | None = None,
        updated_client_order_id: str | None = None,
        expiration_time: int | None = None,
    ) -> Reduced:
        """V2 amend: ``count`` is the new total (filled + resting); ``expiration_time`` 0 clears.

        A price change or size increase re-queues the order at the back and may trade.
        """
        now = self._clock_ms()
        self._expire(now)
        order = self._owned(user_id, order_id)
        if order.ticker != ticker:
            raise OrderRejected("order_ticker_mismatch", "order ticker mismatch", ticker)
        if order.side != side:
            raise OrderRejected("order_side_mismatch", "order side mismatch", side)
        if client_order_id is not None and client_order_id != order.client_order_id:
            raise OrderRejected(
                "order_id_and_client_order_id_mismatch",
                "order id and client order id mismatch",
                client_order_id,
            )
        if order.status != "resting":
            raise _not_resting(order)
        book = self._books[ticker]
        _check_trading(book.market)
        _check_price(book.market, price)
        _check_count(book.market, count)
        if count <= order.fill_count:
            raise OrderRejected(
                "invalid_order_size", "invalid order size", "count must exceed the filled count"
            )
        expiry = order.expiration_time
        if expiration_time is not None:
            if expiration_time:
                _check_expiration(expiration_time, now)
            expiry = expiration_time or None
        acct = self._accounts[user_id]
        rename = (
            updated_client_order_id
            if updated_client_order_id not in (None, order.client_order_id)
            else None
        )
        if rename is not None and rename in acct.used_client_ids:
            raise _duplicate(rename)
        new_remaining = count - order.fill_count
        old_remaining = order.remaining_count
        requeue = price != order.price or new_remaining > old_remaining
        plan = _Plan()
        if requeue:
            if order.post_only and book.opposite(side).crosses(price):
                raise OrderRejected("invalid order", "invalid order", "post only cross")
            plan = self._plan(book, user_id, side, price, new_remaining, order.stp)
            released = unit_cost(side, order.price) * old_remaining
            needed = unit_cost(side, price) * new_remaining + plan.fees
            if needed > self._available(acct) + released:
                raise OrderRejected(
                    "available_balance_too_low", "available balance too low", order_id
                )

        if rename is not None:
            acct.by_client_id.pop(order.client_order_id, None)
            self._use_client_id(acct, order, rename)
        if expiry != order.expiration_time:
            order.expiration_time = expiry
            if expiry is not None:
                heapq.heappush(self._expiries, (expiry, order.seq, order.order_id))
        order.initial_count = count
        order.last_update_ts_ms = now
        if requeue:
            self._unrest(order)
            order.price = price
            order.remaining_count = new_remaining
            self._execute(book, order, plan, rest=True, now=now)
        elif new_remaining < old_remaining:
            self._shrink(order, old_remaining - new_remaining, now)
        avg_price, avg_fee = plan.averages()
        reduced = max(old_remaining - new_remaining, 0)
        return Reduced(order, reduced, plan.qty, avg_price, avg_fee, now)

    # -- reading -------------------------------------------------------------------------------

    def get(self, user_id: str, order_id: str) -> SimOrder | None:
        """The user's order, or None if it is unknown or someone else's."""
        self._expire(self._clock_ms())
        order = self._orders.get(order_id)
        return order if order is not None and order.user_id == user_id else None

    def find_client_order_id(self, user_id: str, client_order_id: str) -> SimOrder | None:
        """The user's order currently carrying ``client_order_id``."""
        self._expire(self._clock_ms())
        acct = self._accounts.get(user_id)
        return None if acct is None else acct.by_client_id.get(client_order_id)

    def orders(
        self,
        user_id: str | None = None,
        *,
        ticker: str | None = None,
        status: Status | None = None,
        min_ts_ms: int | None = None,
        max_ts_ms: int | None = None,
        subaccount: int | None = None,
    ) -> list[SimOrder]:
        """Orders newest first, filtered; creation-time bounds are inclusive; no user = all."""
        self._expire(self._clock_ms())
        if user_id is None:
            source: Iterable[SimOrder] = reversed(self._orders.values())
        else:
            acct = self._accounts.get(user_id)
            source = reversed(acct.orders) if acct is not None else ()
        return [
            o
            for o in source
            if (ticker is None or o.ticker == ticker)
            and (status is None or o.status == status)
            and (min_ts_ms is None or o.created_ts_ms >= min_ts_ms)
            and (max_ts_ms is None or o.created_ts_ms <= max_ts_ms)
            and (subaccount is None or o.subaccount == subaccount)
        ]

    def client_order_ids(self, user_id: str) -> Counter[str]:
        """How many of the user's orders carry each (non-empty) client order id."""
        acct = self._accounts.get(user_id)
        orders = acct.orders if acct is not None else []
        return Counter(o.client_order_id for o in orders if o.client_order_id)

    def position(self, user_id: str, ticker: str) -> int:
        """Signed YES position in hundredths: bid fills add, ask fills subtract."""
        acct = self._accounts.get(user_id)
        return 0 if acct is None else acct.positions.get(ticker, 0)

    def balance(self, user_id: str) -> int:
        """Available cash in micro-dollars: cash less what resting orders reserve."""
        acct = self._accounts.get(user_id)
        return self._starting_balance if acct is None else self._available(acct)

    # -- internals -----------------------------------------------------------------------------

    def _account(self, user_id: str) -> _Account:
        acct = self._accounts.get(user_id)
        if acct is None:
            acct = self._accounts[user_id] = _Account(self._starting_balance)
        return acct

    @staticmethod
    def _available(acct: _Account) -> int:
        return acct.cash - acct.reserved

    @staticmethod
    def _use_client_id(acct: _Account, order: SimOrder, client_order_id: str) -> None:
        # An omitted client_order_id is stored as "" and never collides.
        order.client_order_id = client_order_id
        if client_order_id:
            acct.used_client_ids.add(client_order_id)
            acct.by_client_id[client_order_id] = order

    def _owned(self, user_id: str, order_id: str) -> SimOrder:
        order = self._orders.get(order_id)
        if order is None or order.user_id != user_id:
            raise _not_found(order_id)
        return order

    def _resting_order(self, user_id: str, order_id: str) -> SimOrder:
        order = self._owned(user_id, order_id)
        if order.status != "resting":
            raise _not_resting(order)
        return order

    def _expire(self, now_ms: int) -> None:
        heap = self._expiries
        while heap and heap[0][0] * 1000 <= now_ms:
            expiry, _, order_id = heapq.heappop(heap)
            order = self._orders[order_id]
            # Stale heap items (cancelled, or re-dated by an amend) are skipped.
            if order.status == "resting" and order.expiration_time == expiry:
                self._cancel_resting(order, now_ms)

    def _plan(self, book: _Book, user_id: str, side: Side, price: int, qty: int, stp: Stp) -> _Plan:
        plan = _Plan()
        left = qty
        for entry in book.opposite(side).crossing(price):
            if not left:
                break
            maker = entry.order
            if maker.user_id == user_id:
                if stp == "taker_at_cross":
                    plan.stopped = True
                    break
                plan.self_trades.append(entry)
                continue
            fill = min(left, maker.remaining_count)
            left -= fill
            plan.fills.append((entry, fill))
            plan.qty += fill
            plan.notional += maker.price * fill
            plan.cost += unit_cost(side, maker.price) * fill
            plan.fees += taker_fee(maker.price, fill)
        return plan

    def _execute(self, book: _Book, order: SimOrder, plan: _Plan, *, rest: bool, now: int) -> None:
        """Apply a plan to a taker that is off the book, then rest or close what is left."""
        for entry in plan.self_trades:
            self._cancel_resting(entry.order, now)
        for entry, qty in plan.fills:
            self._fill(book, order, entry, qty, now)
        acct = self._accounts[order.user_id]
        if rest and order.remaining_count and not plan.stopped:
            order.status = "resting"
            acct.resting[order.order_id] = order
            acct.reserved += unit_cost(order.side, order.price) * order.remaining_count
            self._entries[order.order_id] = book.side(order.side).add(order)
            if order.expiration_time is not None:
                heapq.heappush(self._expiries, (order.expiration_time, order.seq, order.order_id))
        else:
            order.remaining_count = 0
            order.status = "executed" if order.fill_count == order.initial_count else "canceled"

    def _fill(self, book: _Book, taker: SimOrder, entry: Entry, qty: int, now: int) -> None:
        maker = entry.order
        price = maker.price
        fee = taker_fee(price, qty)
        maker.fill_count += qty
        maker.remaining_count -= qty
        maker.maker_fill_cost += price * qty
        maker.last_update_ts_ms = now
        maker_acct = self._accounts[maker.user_id]
        maker_acct.reserved -= unit_cost(maker.side, price) * qty
        if maker.remaining_count:
            book.side(maker.side).reduce(entry, qty)
        else:
            maker.status = "executed"
            book.side(maker.side).remove(entry, qty)
            del self._entries[maker.order_id]
            del maker_acct.resting[maker.order_id]
        self._settle(maker_acct, maker.side, maker.ticker, price, qty)
        taker.fill_count += qty
        taker.remaining_count -= qty
        taker.taker_fill_cost += price * qty
        taker.taker_fees += fee
        taker.last_update_ts_ms = now
        taker_acct = self._accounts[taker.user_id]
        self._settle(taker_acct, taker.side, taker.ticker, price, qty)
        taker_acct.cash -= fee

    @staticmethod
    def _settle(acct: _Account, side: Side, ticker: str, price: int, qty: int) -> None:
        # Buying YES against a short (or NO against a long) closes pairs that pay out $1 each.
        position = acct.positions.get(ticker, 0)
        acct.cash -= unit_cost(side, price) * qty
        closing = -position if side == "bid" else position
        acct.cash += PRICE_ONE * min(qty, max(closing, 0))
        acct.positions[ticker] = position + (qty if side == "bid" else -qty)

    def _unrest(self, order: SimOrder) -> None:
        """Take a resting order off its book and release its reservation (status unchanged)."""
        acct = self._accounts[order.user_id]
        acct.reserved -= unit_cost(order.side, order.price) * order.remaining_count
        del acct.resting[order.order_id]
        self._books[order.ticker].side(order.side).remove(
            self._entries.pop(order.order_id), order.remaining_count
        )

    def _cancel_resting(self, order: SimOrder, now: int) -> None:
        self._unrest(order)
        order.remaining_count = 0
        order.status = "canceled"
        order.last_update_ts_ms = now

    def _shrink(self, order: SimOrder, by: int, now: int) -> None:
        self._accounts[order.user_id].reserved -= unit_cost(order.side, order.price) * by
        order.remaining_count -= by
        order.last_update_ts_ms = now
        self._books[order.ticker].side(order.side).reduce(self._entries[order.order_id], by)
