"""An order after acceptance: one state, one table of legal moves, and the pure reading of what
the exchange says about it (``user_order`` frames, fills, REST snapshots, the create's answer).

This continues :mod:`kalshi_router.pending`: an intent settled with an accepted outcome is an
order ``accepted`` here (or one first seen on the feed, which may run ahead of the REST answer).
The moves go one way, towards the four final states.

The two channels share no sequence and carry none (``kalshi_ws.md`` §8, §10), so frames come
late, twice and in any order: a ``fill`` may follow the ``user_order`` that says the order was
cancelled, and a ``resting`` snapshot may follow a fill it does not count yet. Every reading
therefore takes a state only when :data:`TABLE` has the move (a snapshot saying less than what
is known is older, and changes no state), and keeps counts monotone: fills count once each by
``trade_id``, and the filled count and fees are the larger of what the fills add up to and what
the newest snapshot says.

Final states, and the few ways they still change (:data:`CORRECTIONS`):

- The feed never moves one final state to another: the first wins.
- A REST snapshot is the exchange's truth. When it names a final state that contradicts ours
  (``executed`` where the feed said ``canceled``, or ``canceled`` where it said ``executed``),
  it corrects ours, with a reason saying so. REST gives no cancel reason, so its ``canceled``
  agrees with an ``expired`` we already know.
- A cancel learnt from REST or the answer has no reason; a later ``user_order`` for the same
  cancel gives Kalshi's (and turns it ``expired`` for ``ExpiryCancel``).
- ``reconciled_absent`` is the router's inference, not the exchange's word: any later evidence
  that the order is at the exchange (a frame, a fill, a snapshot) corrects it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Literal, TypeAlias, get_args

from kalshi_router.errors import IllegalTransition
from kalshi_router.orders.fills import FillEvent
from kalshi_router.wire.models import Order
from kalshi_router.wire.ws_models import BookSide, UserOrder

State: TypeAlias = Literal[
    "accepted",
    "resting",
    "partially_filled",
    "filled",
    "cancelled",
    "expired",
    "reconciled_absent",
]
STATES: tuple[State, ...] = get_args(State)
FINAL: frozenset[State] = frozenset({"filled", "cancelled", "expired", "reconciled_absent"})

Evidence: TypeAlias = Literal["user_order", "fill", "rest", "answer", "router"]
"""What moved a state: a ``user_order`` frame, a fill (feed or REST), a REST order snapshot,
the create's answer, or the router's own inference (an absence)."""

TABLE: tuple[tuple[State, State, str], ...] = (
    # (from, to, what says so)
    ("accepted", "resting", "user_order or REST: resting, nothing filled"),
    ("accepted", "partially_filled", "a fill, or a snapshot resting with some filled"),
    ("accepted", "filled", "executed, or fills reach the order's count"),
    ("accepted", "cancelled", "canceled (Kalshi's reason kept), or an answer leaving none resting"),
    ("accepted", "expired", "user_order canceled with ExpiryCancel"),
    ("accepted", "reconciled_absent", "REST: not at the exchange past the landing grace"),
    ("resting", "partially_filled", "a fill, or a snapshot resting with some filled"),
    ("resting", "filled", "executed, or fills reach the order's count"),
    ("resting", "cancelled", "canceled (Kalshi's reason kept)"),
    ("resting", "expired", "user_order canceled with ExpiryCancel"),
    ("resting", "reconciled_absent", "REST: not at the exchange past the landing grace"),
    ("partially_filled", "filled", "executed, or fills reach the order's count"),
    ("partially_filled", "cancelled", "canceled: the rest will not fill"),
    ("partially_filled", "expired", "user_order canceled with ExpiryCancel"),
)
"""Every legal move. An order with a fill was at the exchange, so it is never absent; a final
state has no way out but a correction."""

TRANSITIONS: Mapping[State, frozenset[State]] = MappingProxyType(
    {state: frozenset(to for was, to, _ in TABLE if was == state) for state in STATES}
)

_EVIDENCE_OF_LIFE: frozenset[Evidence] = frozenset({"user_order", "fill", "rest", "answer"})
CORRECTIONS: tuple[tuple[State, State, frozenset[Evidence], str], ...] = (
    # (from, to, who may say so, why)
    ("filled", "cancelled", frozenset({"rest"}), "REST says canceled: its word over the feed's"),
    ("cancelled", "filled", frozenset({"rest"}), "REST says executed: its word over the feed's"),
    ("expired", "filled", frozenset({"rest"}), "REST says executed: its word over the feed's"),
    (
        "cancelled",
        "expired",
        frozenset({"user_order"}),
        "ExpiryCancel, for a cancel only REST or the answer (no reasons) had reported",
    ),
    *(
        ("reconciled_absent", to, _EVIDENCE_OF_LIFE, "the order is at the exchange after all")
        for to in ("resting", "partially_filled", "filled", "cancelled", "expired")
    ),
)
"""The only moves out of a final state, each allowed to one kind of evidence."""

CORRECTION_MOVES: frozenset[tuple[State, State]] = frozenset((a, b) for a, b, _, _ in CORRECTIONS)
_CORRECTORS: Mapping[tuple[State, State], frozenset[Evidence]] = MappingProxyType(
    {(was, to): by for was, to, by, _ in CORRECTIONS}
)
_SIDES: Mapping[str, BookSide] = MappingProxyType({"bid": "bid", "ask": "ask"})
_REASONLESS: frozenset[Evidence | None] = frozenset({"rest", "answer"})
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class OrderView:
    """What the router knows of one order at the exchange; every change makes a new view.

    ``initial`` is the order's count: the largest any snapshot gave (an amend may raise it),
    so fills reaching it prove the order filled. ``yes_price`` is the price of the newest
    ``user_order`` by its timestamp (an amend may change it), else the first one known.
    ``reason`` is Kalshi's ``last_update_reason`` of the newest ``user_order`` that changed the
    order, or the router's for an absence or a correction; ``settled_by`` says what made the
    state final."""

    order_id: str
    client_order_id: str | None = None
    ticker: str | None = None
    book_side: BookSide | None = None
    yes_price: Decimal | None = None
    price_ts: int | None = None
    initial: Decimal | None = None
    state: State = "accepted"
    reason: str | None = None
    settled_by: Evidence | None = None
    trade_ids: frozenset[str] = frozenset()
    fills_count: Decimal = _ZERO
    fills_fees: Decimal = _ZERO
    fills_notional: Decimal = _ZERO
    """Sum of yes price times count over the fills counted."""
    said_filled: Decimal = _ZERO
    """The most any snapshot (``user_order``, REST, the answer) said had filled."""
    said_fees: Decimal = _ZERO
    said_remaining: Decimal | None = None
    """The least any snapshot said was left to fill."""

    @property
    def filled(self) -> Decimal:
        return max(self.fills_count, self.said_filled)

    @property
    def fees(self) -> Decimal:
        return max(self.fills_fees, self.said_fees)

    @property
    def remaining(self) -> Decimal | None:
        """Contracts that may still fill: none once final; ``None`` if the count is unknown."""
        if self.state in FINAL:
            return _ZERO
        left = None if self.initial is None else max(_ZERO, self.initial - self.filled)
        if self.said_remaining is None:
            return left
        return self.said_remaining if left is None else min(left, self.said_remaining)

    @property
    def average_yes_price(self) -> Decimal | None:
        """The average yes price over the fills counted (``None`` before the first)."""
        return self.fills_notional / self.fills_count if self.fills_count else None

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def move(self, to: State, reason: str | None = None, by: Evidence | None = None) -> OrderView:
        """This view moved to ``to``; raises :class:`IllegalTransition` unless :data:`TABLE`
        has the move."""
        if to not in TRANSITIONS[self.state]:
            raise IllegalTransition(self.order_id, self.state, to)
        return replace(self, state=to, reason=reason, settled_by=by if to in FINAL else None)

    def correct(self, to: State, reason: str | None, by: Evidence) -> OrderView:
        """This view corrected to ``to``; raises :class:`IllegalTransition` unless
        :data:`CORRECTIONS` lets ``by`` make the move."""
        if by not in _CORRECTORS.get((self.state, to), frozenset()):
            raise IllegalTransition(self.order_id, self.state, to)
        return replace(self, state=to, reason=reason, settled_by=by if to in FINAL else None)


def implied_state(status: str, filled: Decimal, reason: str | None = None) -> State | None:
    """The state an order snapshot's status says (``resting``, ``executed``, ``canceled``);
    ``None`` for a status that says none (``unknown``, or one the spec does not list)."""
    if status == "resting":
        return "partially_filled" if filled > _ZERO else "resting"
    if status == "executed":
        return "filled"
    if status == "canceled":
        return "expired" if reason == "ExpiryCancel" else "cancelled"
    return None


def _correctable(view: OrderView, to: State, by: Evidence) -> bool:
    if by not in _CORRECTORS.get((view.state, to), frozenset()):
        return False
    # Only a cancel whose reason nobody gave may learn it was an expiry.
    return (view.state, to) != ("cancelled", "expired") or view.settled_by in _REASONLESS


def _settle(view: OrderView, to: State | None, by: Evidence, reason: str | None) -> OrderView:
    """``view`` in state ``to`` if the table (or a correction) allows it; else unchanged: a
    state the table does not reach from here comes from an older snapshot."""
    if to is None:
        return view
    if to == view.state:
        if view.final and by == "user_order" and view.settled_by in _REASONLESS:
            return replace(view, reason=reason, settled_by=by)
        return view
    if to in TRANSITIONS[view.state]:
        return view.move(to, reason, by)
    if _correctable(view, to, by):
        if view.state == "reconciled_absent" and by != "user_order":
            reason = None  # the absence's reason no longer holds, and no other was given
        return view.correct(to, reason, by)
    return view


def _identify(
    view: OrderView,
    *,
    client_order_id: str | None,
    ticker: str | None,
    book_side: BookSide | None,
    yes_price: Decimal | None = None,
    price_ts: int | None = None,
) -> OrderView:
    newer_price = yes_price is not None and (
        view.yes_price is None
        or (price_ts is not None and (view.price_ts is None or price_ts > view.price_ts))
    )
    return replace(
        view,
        client_order_id=view.client_order_id or client_order_id or None,
        ticker=view.ticker or ticker,
        book_side=view.book_side or book_side,
        yes_price=yes_price if newer_price else view.yes_price,
        price_ts=price_ts if newer_price else view.price_ts,
    )


def _said(
    view: OrderView,
    *,
    initial: Decimal | None,
    filled: Decimal,
    remaining: Decimal,
    fees: Decimal | None = None,
) -> OrderView:
    if initial is None or (view.initial is not None and view.initial >= initial):
        initial = view.initial
    if view.said_remaining is not None:
        remaining = min(remaining, view.said_remaining)
    return replace(
        view,
        initial=initial,
        said_filled=max(view.said_filled, filled),
        said_fees=view.said_fees if fees is None else max(view.said_fees, fees),
        said_remaining=remaining,
    )


def _apply_user_order(view: OrderView, order: UserOrder) -> OrderView:
    known = _identify(
        view,
        client_order_id=order.client_order_id,
        ticker=order.ticker,
        book_side=order.book_side,
        yes_price=order.yes_price_dollars,
        price_ts=order.last_updated_ts_ms or order.created_ts_ms,
    )
    counted = _said(
        known,
        initial=order.initial_count_fp,
        filled=order.fill_count_fp,
        remaining=order.remaining_count_fp,
        fees=order.taker_fees_dollars + order.maker_fees_dollars,
    )
    reason = order.last_update_reason
    to = implied_state(order.status, order.fill_count_fp, reason)
    after = _settle(counted, to, "user_order", reason)
    if after.state == view.state and not view.final and after != view:
        # It told us something new without a move: its reason is the newest one.
        after = replace(after, reason=reason)
    return after


def _apply_fill(view: OrderView, fill: FillEvent) -> OrderView:
    if fill.trade_id in view.trade_ids:
        return view
    known = _identify(
        view, client_order_id=fill.client_order_id, ticker=fill.ticker, book_side=fill.book_side
    )
    counted = replace(
        known,
        trade_ids=known.trade_ids | {fill.trade_id},
        fills_count=known.fills_count + fill.count,
        fills_fees=known.fills_fees + fill.fee,
        fills_notional=known.fills_notional + fill.yes_price * fill.count,
    )
    done = counted.initial is not None and counted.filled >= counted.initial
    return _settle(counted, "filled" if done else "partially_filled", "fill", counted.reason)


def apply(view: OrderView, event: UserOrder | FillEvent) -> OrderView:
    """The view after one ``user_order`` or one fill (from the feed or REST) about this order
    (the caller routes them by ``order_id``). A fill already counted changes nothing."""
    if isinstance(event, UserOrder):
        return _apply_user_order(view, event)
    return _apply_fill(view, event)


def apply_rest(view: OrderView, order: Order) -> OrderView:
    """The view after a REST snapshot of the order: the exchange's truth, which corrects a
    final state it contradicts (see the module's docstring)."""
    known = _identify(
        view,
        client_order_id=order.client_order_id,
        ticker=order.ticker,
        book_side=_SIDES.get(order.book_side or ""),
        yes_price=order.yes_price_dollars,
    )
    counted = _said(
        known,
        initial=order.initial_count_fp,
        filled=order.fill_count_fp,
        remaining=order.remaining_count_fp,
        fees=order.taker_fees_dollars + order.maker_fees_dollars,
    )
    to = implied_state(order.status, order.fill_count_fp)
    reason = counted.reason
    if to in FINAL:
        reason = None  # REST gives no cancel reason
        if counted.final and (counted.state, to) in CORRECTION_MOVES:
            reason = f"REST says {order.status} (the feed said {counted.state})"
    return _settle(counted, to, "rest", reason)


def apply_answer(
    view: OrderView,
    *,
    client_order_id: str,
    ticker: str,
    book_side: BookSide,
    yes_price: Decimal,
    initial: Decimal,
    filled: Decimal,
    remaining: Decimal,
) -> OrderView:
    """The view after the create's accepted answer (counts as of placement): resting or partly
    filled if some remain, else filled, or cancelled (an immediate-or-cancel remainder)."""
    known = _identify(
        view,
        client_order_id=client_order_id,
        ticker=ticker,
        book_side=book_side,
        yes_price=yes_price,
    )
    counted = _said(known, initial=initial, filled=filled, remaining=remaining)
    to: State | None
    if remaining > _ZERO:
        to = "partially_filled" if filled > _ZERO else None
    else:
        to = "filled" if filled >= initial else "cancelled"
    return _settle(counted, to, "answer", None if to in FINAL else counted.reason)


def mark_absent(view: OrderView, reason: str) -> OrderView:
    """The view after REST did not list the order past the landing grace: ``reconciled_absent``
    where the table allows it (never once anything showed it at the exchange)."""
    return _settle(view, "reconciled_absent", "router", reason)
