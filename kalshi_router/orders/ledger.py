"""The order tracker's memory: every order the router follows after acceptance, read from the
create's answer, the feed (``user_order`` and ``fill``) and REST reconciliation.

Pure and synchronous: each method takes one thing the exchange (or the router) said, folds it
into that order's :class:`~kalshi_router.orders.state.OrderView` and returns the
:class:`OrderUpdate` it produced, or none when it changed nothing (a duplicate, an older
snapshot). Sources arrive in any order, so nothing waits for another:

- An order is tracked from whatever tells of it first: the answer (:meth:`Ledger.expect`), a
  ``user_order`` (orders the router never placed are tracked too), a fill, or a REST snapshot.
  A fill for an order not yet known is therefore kept at once (an order of unknown count, whose
  update carries the fill) and merged with what the order's first snapshot says; the answer read
  after the feed merges in the same way and never moves the order back.
- Fills count once by ``trade_id``, whichever source (feed or REST) brings them.
- The state moves only along :data:`~kalshi_router.orders.state.TABLE`; a REST snapshot is the
  exchange's truth and corrects a contradicting final state (the rules are in
  :mod:`kalshi_router.orders.state`).

Memory is bounded by the open orders: the ``keep_final`` (default 10,000) orders that became
final last are kept whole, trade_ids included, and older final orders are forgotten. A
forgotten order's id is remembered (the last ``keep_forgotten``, default 100,000) so that a
frame arriving after that (a late duplicate) is ignored instead of tracking the order anew and
counting its fill twice.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from msgspec.structs import replace

from kalshi_router.orders.state import OrderView, apply, apply_answer, apply_rest, mark_absent
from kalshi_router.orders.updates import FillEvent, OrderUpdate, Source
from kalshi_router.wire.models import Order
from kalshi_router.wire.ws_models import UserOrder

__all__ = ["Ledger", "LedgerStats", "update_of"]

# What each state shows as in a wire Order (``seen_as_order``): Kalshi's three statuses.
_STATUS = {"filled": "executed", "cancelled": "canceled", "expired": "canceled"}
_OUTCOME_SIDE = {"bid": "yes", "ask": "no"}


@dataclass(frozen=True, slots=True)
class LedgerStats:
    orders: int
    """Orders tracked now (open, and final ones not yet forgotten)."""
    open: int
    final: int
    fills: int
    """Distinct fills counted since the start."""
    forgotten: int
    """Final orders forgotten since the start to bound memory."""


def update_of(view: OrderView, source: Source, fill: FillEvent | None = None) -> OrderUpdate:
    """The whole of ``view`` as one update learnt from ``source``."""
    return OrderUpdate(
        order_id=view.order_id,
        client_order_id=view.client_order_id,
        ticker=view.ticker,
        state=view.state,
        source=source,
        reason=view.reason,
        book_side=view.book_side,
        yes_price=view.yes_price,
        initial=view.initial,
        filled=view.filled,
        remaining=view.remaining,
        fees=view.fees,
        average_fill_price=view.average_yes_price,
        fill=fill,
    )


def _same_view(one: OrderUpdate, other: OrderUpdate) -> bool:
    return replace(one, source=other.source, fill=other.fill) == other


class Ledger:
    """Every order followed after acceptance, by order_id (and client_order_id)."""

    def __init__(self, *, keep_final: int = 10_000, keep_forgotten: int = 100_000) -> None:
        if keep_final < 0 or keep_forgotten < 0:
            raise ValueError("keep_final and keep_forgotten must be >= 0")
        self._keep_final = keep_final
        self._keep_forgotten = keep_forgotten
        self._views: dict[str, OrderView] = {}
        self._latest: dict[str, OrderUpdate] = {}
        self._by_client: dict[str, str] = {}
        self._clients: dict[str, list[str]] = {}
        """order_id -> the client_order_ids indexed for it (an amend may give a new one)."""
        self._open: dict[str, None] = {}
        self._final: OrderedDict[str, None] = OrderedDict()
        """Final orders, the one that became final first in front: forgotten first."""
        self._forgotten: OrderedDict[str, None] = OrderedDict()
        self._fills = 0
        self._forgotten_count = 0

    # --- what the exchange says ---

    def expect(
        self,
        *,
        order_id: str,
        client_order_id: str,
        ticker: str,
        book_side: Literal["bid", "ask"],
        yes_price: Decimal,
        initial: Decimal,
        filled: Decimal,
        remaining: Decimal,
    ) -> list[OrderUpdate]:
        """An accepted answer to a create (``initial`` and the rest from its intent); source
        ``answer``. Merged with what the feed already said, never moving the order back."""

        def step(view: OrderView) -> OrderView:
            return apply_answer(
                view,
                client_order_id=client_order_id,
                ticker=ticker,
                book_side=book_side,
                yes_price=yes_price,
                initial=initial,
                filled=filled,
                remaining=remaining,
            )

        return self._change(order_id, step, "answer", clients=(client_order_id,))

    def on_user_order(self, order: UserOrder) -> list[OrderUpdate]:
        """A ``user_order`` frame; source ``ws``."""
        return self._change(
            order.order_id, lambda view: apply(view, order), "ws", clients=(order.client_order_id,)
        )

    def on_fill(self, fill: FillEvent, source: Source = "ws") -> list[OrderUpdate]:
        """One fill, from the feed (:func:`~kalshi_router.orders.updates.fill_event`) or REST;
        its update carries it, once per ``trade_id`` whatever the sources."""
        return self._change(
            fill.order_id,
            lambda view: apply(view, fill),
            source,
            clients=(fill.client_order_id,),
            fill=fill,
        )

    def on_rest_order(self, order: Order, source: Source = "rest") -> list[OrderUpdate]:
        """A REST snapshot of one order (GET /portfolio/orders): the exchange's truth. Counts
        never go down; the state moves along the table, and a final state it contradicts is
        corrected (REST ``canceled`` over the feed's ``executed``, and the reverse)."""
        return self._change(
            order.order_id,
            lambda view: apply_rest(view, order),
            source,
            clients=(order.client_order_id,),
        )

    def absent(self, order_id: str, reason: str) -> list[OrderUpdate]:
        """REST does not list the order past the landing grace: ``reconciled_absent`` with
        ``reason``, where the table allows it (not once anything showed it at the exchange).
        An order the ledger does not know is left alone."""
        return self._change(
            order_id, lambda view: mark_absent(view, reason), "rest", clients=(), create=False
        )

    # --- what the router reads ---

    def get(self, key: str) -> OrderUpdate | None:
        """The latest update of the order with order id (or else client_order_id) ``key``."""
        latest = self._latest.get(key)
        if latest is not None:
            return latest
        order_id = self._by_client.get(key)
        return None if order_id is None else self._latest.get(order_id)

    def view(self, key: str) -> OrderView | None:
        """The whole view (trade_ids included) of the order with order id or client id ``key``."""
        order_id = key if key in self._views else self._by_client.get(key)
        return None if order_id is None else self._views.get(order_id)

    def order_id_of(self, client_order_id: str) -> str | None:
        return self._by_client.get(client_order_id)

    def open_orders(self, ticker: str | None = None) -> list[OrderUpdate]:
        """Orders not in a final state (for one ticker or all), the first tracked first."""
        found = (self._latest[order_id] for order_id in self._open)
        return [update for update in found if ticker is None or update.ticker == ticker]

    def seen_as_order(self, client_order_id: str) -> Order | None:
        """What the ledger knows of the order placed with ``client_order_id``, as the wire
        ``Order`` a REST lookup would have found: proof that a create whose answer was lost
        landed. ``None`` when nothing showed it at the exchange, or when its count is unknown
        (only fills seen): then an ``Accepted`` built from it would guess its remaining count."""
        view = self.view(client_order_id)
        if view is None or view.state == "reconciled_absent":
            return None
        remaining = view.remaining
        if view.ticker is None or remaining is None:
            return None
        return Order(
            order_id=view.order_id,
            client_order_id=client_order_id,
            ticker=view.ticker,
            status=_STATUS.get(view.state, "resting"),
            book_side=view.book_side,
            outcome_side=_OUTCOME_SIDE.get(view.book_side or ""),
            yes_price_dollars=view.yes_price,
            fill_count_fp=view.filled,
            remaining_count_fp=remaining,
            initial_count_fp=view.initial,
        )

    def fills(self) -> int:
        """Distinct fills counted since the start."""
        return self._fills

    def stats(self) -> LedgerStats:
        return LedgerStats(
            orders=len(self._views),
            open=len(self._open),
            final=len(self._final),
            fills=self._fills,
            forgotten=self._forgotten_count,
        )

    # --- bookkeeping ---

    def _change(
        self,
        order_id: str,
        step: Callable[[OrderView], OrderView],
        source: Source,
        *,
        clients: tuple[str | None, ...],
        fill: FillEvent | None = None,
        create: bool = True,
    ) -> list[OrderUpdate]:
        if order_id in self._forgotten:
            return []
        before = self._views.get(order_id)
        if before is None and not create:
            return []
        after = step(before or OrderView(order_id))
        if after == before:
            return []
        self._views[order_id] = after
        self._index(order_id, clients)
        # A fill already counted changes nothing, so one that changed the view is new; other
        # changes may lie in what updates do not show (which snapshot said what).
        update = update_of(after, source, fill)
        latest = self._latest.get(order_id)
        news = fill is not None or latest is None or not _same_view(update, latest)
        if news:
            self._latest[order_id] = update
            if fill is not None:
                self._fills += 1
        self._file(order_id, was_final=before is not None and before.final, final=after.final)
        return [update] if news else []

    def _index(self, order_id: str, clients: tuple[str | None, ...]) -> None:
        for client_order_id in clients:
            # A key names one order: the first to claim it keeps it.
            if client_order_id and client_order_id not in self._by_client:
                self._by_client[client_order_id] = order_id
                self._clients.setdefault(order_id, []).append(client_order_id)

    def _file(self, order_id: str, *, was_final: bool, final: bool) -> None:
        if final and not was_final:
            self._open.pop(order_id, None)
            self._final[order_id] = None
            self._forget_beyond_bound()
        elif not final:
            self._open[order_id] = None
            self._final.pop(order_id, None)

    def _forget_beyond_bound(self) -> None:
        while len(self._final) > self._keep_final:
            order_id, _ = self._final.popitem(last=False)
            del self._views[order_id], self._latest[order_id]
            for client_order_id in self._clients.pop(order_id, []):
                del self._by_client[client_order_id]
            self._forgotten_count += 1
            self._forgotten[order_id] = None
            if len(self._forgotten) > self._keep_forgotten:
                self._forgotten.popitem(last=False)
