"""The simulator's records and the steps that change them once an operation is validated.

``Ledger`` holds every book's resting entries, every order, every account's cash, reservations,
positions and fills, and the expiry queue. Its steps (fill, rest, cancel, shrink, expire)
cannot fail: :class:`~kalshi_router.sim.book.Exchange`, which derives from it, calls them only
after its checks and its matching plan have passed, so a rejected request changes nothing.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Collection, Iterator

from kalshi_router.sim._ladder import Book, Entry, Plan, taker_fee
from kalshi_router.sim._model import Account, SimFill, SimOrder, settle, unit_cost
from kalshi_router.sim.events import Event, Filled, Observer, OrderChanged, Reason


class Ledger:
    """Every book, order and account; see the module docstring."""

    def __init__(self, books: dict[str, Book], starting_balance: int) -> None:
        self._books = books
        self._starting_balance = starting_balance
        self._accounts: dict[str, Account] = {}
        self._orders: dict[str, SimOrder] = {}
        self._entries: dict[str, Entry] = {}
        self._expiries: list[tuple[int, int, str]] = []
        self._observers: list[Observer] = []

    def observe(self, observer: Observer) -> None:
        """Call ``observer`` with every order event from now on (the WebSocket feed's seam)."""
        self._observers.append(observer)

    def forget(self, observer: Observer) -> None:
        """Stop calling ``observer``."""
        self._observers.remove(observer)

    def _emit(self, event: Event) -> None:
        for observer in list(self._observers):
            observer(event)

    def _changed(self, order: SimOrder, reason: Reason | None, now: int) -> None:
        if self._observers:
            self._emit(OrderChanged(order, reason, now))

    def fills(
        self,
        user_id: str,
        *,
        before_seq: int | None = None,
        tickers: Collection[str] = (),
        order_id: str | None = None,
        min_ts_ms: int | None = None,
        max_ts_ms: int | None = None,
        subaccount: int | None = None,
    ) -> Iterator[SimFill]:
        """The user's fills newest first, from the one before ``before_seq`` (a page's cursor)
        on, filtered: any of ``tickers`` (none: every market), time bounds inclusive."""
        acct = self._accounts.get(user_id)
        if acct is None:
            return
        listed = acct.fills
        stop = len(listed) if before_seq is None else min(max(before_seq - 1, 0), len(listed))
        for i in range(stop - 1, -1, -1):
            fill = listed[i]
            if (
                (not tickers or fill.ticker in tickers)
                and (order_id is None or fill.order_id == order_id)
                and (min_ts_ms is None or fill.ts_ms >= min_ts_ms)
                and (max_ts_ms is None or fill.ts_ms <= max_ts_ms)
                and (subaccount is None or fill.subaccount == subaccount)
            ):
                yield fill

    def _account(self, user_id: str) -> Account:
        acct = self._accounts.get(user_id)
        if acct is None:
            acct = self._accounts[user_id] = Account(self._starting_balance)
        return acct

    @staticmethod
    def _available(acct: Account) -> int:
        return acct.cash - acct.reserved

    @staticmethod
    def _use_client_id(acct: Account, order: SimOrder, client_order_id: str) -> None:
        # An omitted client_order_id is stored as "" and never collides.
        order.client_order_id = client_order_id
        if client_order_id:
            acct.used_client_ids.add(client_order_id)
            acct.by_client_id[client_order_id] = order

    def _expire(self, now_ms: int) -> None:
        heap = self._expiries
        while heap and heap[0][0] * 1000 <= now_ms:
            expiry, _, order_id = heapq.heappop(heap)
            order = self._orders[order_id]
            # Stale heap items (cancelled, or re-dated by an amend) are skipped.
            if order.status == "resting" and order.expiration_time == expiry:
                self._cancel_resting(order, now_ms, "ExpiryCancel")

    def _execute(self, book: Book, order: SimOrder, plan: Plan, *, rest: bool, now: int) -> None:
        """Apply a plan to a taker that is off the book, then rest or close what is left."""
        for entry in plan.self_trades:
            self._cancel_resting(entry.order, now, "SelfTradeCancel")
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

    def _fill(self, book: Book, taker: SimOrder, entry: Entry, qty: int, now: int) -> None:
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
        settle(maker_acct, maker.side, maker.ticker, price, qty)
        trade_id = str(uuid.uuid4())
        taker.fill_count += qty
        taker.remaining_count -= qty
        taker.taker_fill_cost += price * qty
        taker.taker_fees += fee
        taker.last_update_ts_ms = now
        taker_acct = self._accounts[taker.user_id]
        settle(taker_acct, taker.side, taker.ticker, price, qty)
        taker_acct.cash -= fee
        # Sim assumption: Kalshi charges makers no fee here (the engine's model), so the
        # maker's fill carries fee 0. The account's fill list and the WebSocket's fill frames
        # get the same numbers from this one loop; the maker's order update follows its fill.
        for order, acct, is_taker, paid in (
            (maker, maker_acct, False, 0),
            (taker, taker_acct, True, fee),
        ):
            acct.fills.append(
                SimFill(
                    seq=len(acct.fills) + 1,
                    trade_id=trade_id,
                    order_id=order.order_id,
                    client_order_id=order.client_order_id,
                    ticker=order.ticker,
                    side=order.side,
                    is_taker=is_taker,
                    price=price,
                    qty=qty,
                    fee=paid,
                    ts_ms=now,
                    subaccount=order.subaccount,
                    exchange_index=order.exchange_index,
                )
            )
            if self._observers:
                position = acct.positions[order.ticker]
                self._emit(Filled(order, trade_id, is_taker, price, qty, paid, position, now))
        self._changed(maker, "Trade", now)

    def _unrest(self, order: SimOrder) -> None:
        """Take a resting order off its book and release its reservation (status unchanged)."""
        acct = self._accounts[order.user_id]
        acct.reserved -= unit_cost(order.side, order.price) * order.remaining_count
        del acct.resting[order.order_id]
        self._books[order.ticker].side(order.side).remove(
            self._entries.pop(order.order_id), order.remaining_count
        )

    def _cancel_resting(self, order: SimOrder, now: int, reason: Reason | None = None) -> None:
        self._unrest(order)
        order.remaining_count = 0
        order.status = "canceled"
        order.last_update_ts_ms = now
        self._changed(order, reason, now)

    def _shrink(self, order: SimOrder, by: int, now: int) -> None:
        self._accounts[order.user_id].reserved -= unit_cost(order.side, order.price) * by
        order.remaining_count -= by
        order.last_update_ts_ms = now
        self._books[order.ticker].side(order.side).reduce(self._entries[order.order_id], by)
