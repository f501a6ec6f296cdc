"""The simulator's matching engine: one ``Exchange`` holding every market's order book.

Pure and synchronous; the aiohttp app wraps it. Units: prices in $0.0001, counts in hundredths
of a contract, money in micro-dollars. Every operation validates first and mutates only once
nothing can fail any more, so a rejected request changes no order, book or balance: this module
validates and plans, ``_ledger`` holds the records and applies what was planned, and ``groups``
adds the order groups.
"""

from __future__ import annotations

import heapq
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace

from kalshi_router.sim._ladder import Book, Plan, plan_match
from kalshi_router.sim._model import (
    Market,
    NewOrder,
    OrderRejected,
    Placed,
    Reduced,
    Side,
    SimFill,
    SimOrder,
    Status,
    Stp,
    TimeInForce,
    balance_too_low,
    check_amend_target,
    check_count,
    check_expiration,
    check_new_order,
    check_price,
    check_trading,
    duplicate,
    invalid_parameters,
    new_record,
    not_found,
    not_resting,
    post_only_cross,
    unit_cost,
)
from kalshi_router.sim.groups import MAX_ORDER_GROUPS, GroupLedger

__all__ = [
    "Exchange",
    "Market",
    "NewOrder",
    "OrderRejected",
    "Placed",
    "Reduced",
    "Side",
    "SimFill",
    "SimOrder",
    "Status",
    "Stp",
    "TimeInForce",
]


class Exchange(GroupLedger):
    """Every market's book, every user's orders, order groups, cash and positions.

    Each operation checks its request and plans its trades here; the records it changes, and
    the steps that change them, are the :class:`~kalshi_router.sim._ledger.Ledger`'s (and, for
    order groups, the :class:`~kalshi_router.sim.groups.GroupLedger`'s)."""

    def __init__(
        self,
        *,
        clock_ms: Callable[[], int],
        markets: Iterable[Market] = (),
        auto_create_markets: bool = True,
        starting_balance: int = 1_000_000 * 1_000_000,
        id_factory: Callable[[], str] | None = None,
        max_order_groups: int = MAX_ORDER_GROUPS,
    ) -> None:
        super().__init__(
            {m.ticker: Book(m) for m in markets},
            starting_balance,
            clock_ms,
            id_factory or (lambda: str(uuid.uuid4())),
            max_order_groups,
        )
        self._auto_create = auto_create_markets
        self._seq = 0

    # -- markets ---------------------------------------------------------------------------

    def _book(self, ticker: str) -> Book:
        book = self._books.get(ticker)
        if book is None:
            if not self._auto_create:
                raise OrderRejected("market_not_found", "market not found", ticker, 404)
            book = self._books[ticker] = Book(Market(ticker))
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
            # Sim assumption: a pause's cancel reports the spec's HaltCancel.
            self._cancel_resting(order, now, "HaltCancel")

    def resume_market(self, ticker: str) -> None:
        """Reopen trading on a paused market."""
        book = self._book(ticker)
        book.market = replace(book.market, trading_active=True)

    # -- creating ------------------------------------------------------------------------------

    def place(self, order: NewOrder) -> Placed:
        """Validate, match and (for GTC) rest a new order; raises ``OrderRejected``."""
        return self._place(order, check_balance=True)

    def seed(self, ticker: str, user_id: str, side: Side, price: int, count: int) -> SimOrder:
        """GTC liquidity from a house user whose balance is never checked (it may go negative).

        Its ``maker`` STP lets fresh house quotes replace crossing older ones.
        """
        new = NewOrder(user_id, ticker, "", side, price, count, "good_till_canceled", "maker")
        return self._place(new, check_balance=False).order

    def _place(self, new: NewOrder, *, check_balance: bool) -> Placed:
        now = self._clock_ms()
        book = self._book(new.ticker)
        tif = check_new_order(book.market, new, now)
        acct = self._account(new.user_id)
        if new.client_order_id in acct.used_client_ids:
            raise duplicate(new.client_order_id)
        self._check_group(new)
        self._expire(now)
        qty = new.count
        if new.reduce_only:
            position = acct.positions.get(new.ticker, 0)
            qty = min(qty, max(-position if new.side == "bid" else position, 0))
        opposite = book.opposite(new.side)
        if new.post_only and opposite.crosses(new.price):
            raise post_only_cross()
        plan = plan_match(opposite, new.user_id, new.side, new.price, qty, new.stp)
        # Checked at the limit price, which no fill can be worse than, plus the exact fees.
        needed = unit_cost(new.side, new.price) * qty + plan.fees
        if check_balance and needed > self._available(acct):
            raise balance_too_low(new.client_order_id)
        # A FoK that meets its own order is not rolled back: it finishes like an IoC
        # (changelog Sep 25, 2025). buy_max_cost (cents) is taken to exclude fees.
        if tif == "fill_or_kill" and (
            (plan.qty < new.count and not plan.self_crossed)
            or (new.buy_max_cost is not None and plan.cost > new.buy_max_cost * 10_000)
        ):
            plan = Plan()

        self._seq += 1
        order = new_record(new, self._new_id(), tif, now, self._seq)
        self._orders[order.order_id] = order
        acct.orders.append(order)
        self._use_client_id(acct, order, new.client_order_id)
        self._execute(book, order, plan, rest=tif == "good_till_canceled", now=now)
        self._changed(order, None, now)
        self._trip_groups(now)
        avg_price, avg_fee = plan.averages()
        return Placed(order, plan.qty, order.remaining_count, avg_price, avg_fee, now)

    # -- changing ------------------------------------------------------------------------------

    def cancel(self, user_id: str, order_id: str, subaccount: int | None = None) -> Reduced:
        """Cancel a resting order; ``reduced_by`` is what was still resting."""
        now = self._clock_ms()
        self._expire(now)
        order = self._owned(user_id, order_id)
        if subaccount is not None and order.subaccount != subaccount:
            raise not_found(order_id)
        if order.status != "resting":
            raise not_resting(order)
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
            raise invalid_parameters("exactly one of reduce_by or reduce_to")
        now = self._clock_ms()
        self._expire(now)
        order = self._resting_order(user_id, order_id)
        market = self._books[order.ticker].market
        if reduce_to is None:
            check_count(market, reduce_by or 0, "reduce_by")
            # Sim assumption: reducing by more than rests cancels rather than errs.
            target = max(order.remaining_count - (reduce_by or 0), 0)
        else:
            if reduce_to:
                check_count(market, reduce_to, "reduce_to")
            if not 0 <= reduce_to <= order.remaining_count:
                raise invalid_parameters("reduce_to must not exceed the remaining count")
            target = reduce_to
        reduced = order.remaining_count - target
        if target == 0:
            self._cancel_resting(order, now, "Decrease")
        else:
            self._shrink(order, reduced, now)
            self._changed(order, "Decrease", now)
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
        check_amend_target(order, ticker, side, client_order_id)
        book = self._books[ticker]
        check_trading(book.market)
        check_price(book.market, price)
        check_count(book.market, count)
        if count <= order.fill_count:
            raise OrderRejected(
                "invalid_order_size", "invalid order size", "count must exceed the filled count"
            )
        expiry = order.expiration_time
        if expiration_time is not None:
            if expiration_time:
                check_expiration(expiration_time, now)
            expiry = expiration_time or None
        acct = self._accounts[user_id]
        rename = (
            updated_client_order_id
            if updated_client_order_id not in (None, order.client_order_id)
            else None
        )
        if rename is not None and rename in acct.used_client_ids:
            raise duplicate(rename)
        new_remaining = count - order.fill_count
        old_remaining = order.remaining_count
        requeue = price != order.price or new_remaining > old_remaining
        plan = Plan()
        if requeue:
            opposite = book.opposite(side)
            if order.post_only and opposite.crosses(price):
                raise post_only_cross()
            plan = plan_match(opposite, user_id, side, price, new_remaining, order.stp)
            released = unit_cost(side, order.price) * old_remaining
            needed = unit_cost(side, price) * new_remaining + plan.fees
            if needed > self._available(acct) + released:
                raise balance_too_low(order_id)

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
        self._changed(order, "Amend", now)
        self._trip_groups(now)
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

    # -- finding the order a request names ------------------------------------------------

    def _owned(self, user_id: str, order_id: str) -> SimOrder:
        order = self._orders.get(order_id)
        if order is None or order.user_id != user_id:
            raise not_found(order_id)
        return order

    def _resting_order(self, user_id: str, order_id: str) -> SimOrder:
        order = self._owned(user_id, order_id)
        if order.status != "resting":
            raise not_resting(order)
        return order
