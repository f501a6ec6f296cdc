"""An order after acceptance: one state, one table of legal moves, and the pure reading of the
exchange's ``user_order`` and ``fill`` frames into it.

This continues :mod:`kalshi_router.pending`: an intent settled with an accepted outcome is an
order ``accepted`` here (or one first seen on the feed, which may run ahead of the REST answer).
The moves go one way, towards the four final states; nothing leaves a final state.

The two channels share no sequence and carry none (``kalshi_ws.md`` §8, §10), so frames come
late, twice and in any order: a ``fill`` may follow the ``user_order`` that says the order was
cancelled, and a ``resting`` snapshot may follow a fill it does not count yet. :func:`apply`
therefore takes a frame's state only when the table has the move (a frame saying less than
what is known is older, and changes no state), and keeps its counts monotone: fills count once
each by ``trade_id``, and the filled count and fees are the larger of what the fills add up
to and what the newest ``user_order`` says. Two final states that disagree (``executed`` then
``canceled``) keep the first: REST reconciliation, not the feed, settles such a conflict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Literal, TypeAlias, get_args

from kalshi_router.errors import IllegalTransition
from kalshi_router.wire.ws_models import Fill, FillFrame, UserOrder, UserOrderFrame

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

TABLE: tuple[tuple[State, State, str], ...] = (
    # (from, to, what says so)
    ("accepted", "resting", "user_order resting, nothing filled"),
    ("accepted", "partially_filled", "a fill, or user_order resting with some filled"),
    ("accepted", "filled", "user_order executed, or fills reach the order's count"),
    ("accepted", "cancelled", "user_order canceled (Kalshi's reason kept)"),
    ("accepted", "expired", "user_order canceled with ExpiryCancel"),
    ("accepted", "reconciled_absent", "REST: not at the exchange past the landing grace"),
    ("resting", "partially_filled", "a fill, or user_order resting with some filled"),
    ("resting", "filled", "user_order executed, or fills reach the order's count"),
    ("resting", "cancelled", "user_order canceled (Kalshi's reason kept)"),
    ("resting", "expired", "user_order canceled with ExpiryCancel"),
    ("resting", "reconciled_absent", "REST: not at the exchange past the landing grace"),
    ("partially_filled", "filled", "user_order executed, or fills reach the order's count"),
    ("partially_filled", "cancelled", "user_order canceled: the rest will not fill"),
    ("partially_filled", "expired", "user_order canceled with ExpiryCancel"),
)
"""Every legal move. An order with a fill was at the exchange, so it is never absent; a final
state has no way out."""

TRANSITIONS: Mapping[State, frozenset[State]] = MappingProxyType(
    {state: frozenset(to for was, to, _ in TABLE if was == state) for state in STATES}
)

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class OrderView:
    """What the router knows of one order at the exchange; every change makes a new view.

    ``initial`` is the order's count (from the REST answer, or the first ``user_order``);
    ``reason`` is Kalshi's ``last_update_reason`` of the frame that cancelled it."""

    order_id: str
    client_order_id: str | None = None
    initial: Decimal | None = None
    state: State = "accepted"
    reason: str | None = None
    trade_ids: frozenset[str] = frozenset()
    fills_count: Decimal = _ZERO
    fills_fees: Decimal = _ZERO
    fills_notional: Decimal = _ZERO
    """Sum of yes price times count over the fills counted."""
    feed_filled: Decimal = _ZERO
    feed_fees: Decimal = _ZERO
    feed_remaining: Decimal | None = None

    @property
    def filled(self) -> Decimal:
        return max(self.fills_count, self.feed_filled)

    @property
    def fees(self) -> Decimal:
        return max(self.fills_fees, self.feed_fees)

    @property
    def remaining(self) -> Decimal | None:
        """Contracts that may still fill: none once final; ``None`` if the count is unknown."""
        if self.state in FINAL:
            return _ZERO
        left = None if self.initial is None else max(_ZERO, self.initial - self.filled)
        if self.feed_remaining is None:
            return left
        return self.feed_remaining if left is None else min(left, self.feed_remaining)

    @property
    def average_yes_price(self) -> Decimal | None:
        """The average yes price over the fills counted (``None`` before the first)."""
        return self.fills_notional / self.fills_count if self.fills_count else None

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def move(self, to: State, reason: str | None = None) -> OrderView:
        """This view moved to ``to``; raises :class:`IllegalTransition` unless :data:`TABLE`
        has the move."""
        if to not in TRANSITIONS[self.state]:
            raise IllegalTransition(self.order_id, self.state, to)
        return replace(self, state=to, reason=reason)


def implied_by_user_order(order: UserOrder) -> State | None:
    """The state a ``user_order`` says the order is in; ``None`` for a status that says none
    (``unknown``, or one the spec does not list)."""
    if order.status == "resting":
        return "partially_filled" if order.fill_count_fp > _ZERO else "resting"
    if order.status == "executed":
        return "filled"
    if order.status == "canceled":
        return "expired" if order.last_update_reason == "ExpiryCancel" else "cancelled"
    return None


def _advance(view: OrderView, to: State | None, reason: str | None = None) -> OrderView:
    # A state the table does not reach from here comes from an older frame: keep ours.
    if to is None or to not in TRANSITIONS[view.state]:
        return view
    return view.move(to, reason)


def _apply_user_order(view: OrderView, order: UserOrder) -> OrderView:
    remaining = order.remaining_count_fp
    if view.feed_remaining is not None:
        remaining = min(remaining, view.feed_remaining)
    counted = replace(
        view,
        client_order_id=view.client_order_id or order.client_order_id,
        initial=order.initial_count_fp if view.initial is None else view.initial,
        feed_filled=max(view.feed_filled, order.fill_count_fp),
        feed_fees=max(view.feed_fees, order.taker_fees_dollars + order.maker_fees_dollars),
        feed_remaining=remaining,
    )
    return _advance(counted, implied_by_user_order(order), order.last_update_reason)


def _apply_fill(view: OrderView, fill: Fill) -> OrderView:
    if fill.trade_id in view.trade_ids:
        return view
    counted = replace(
        view,
        client_order_id=view.client_order_id or fill.client_order_id,
        trade_ids=view.trade_ids | {fill.trade_id},
        fills_count=view.fills_count + fill.count_fp,
        fills_fees=view.fills_fees + fill.fee_cost,
        fills_notional=view.fills_notional + fill.yes_price_dollars * fill.count_fp,
    )
    done = counted.initial is not None and counted.filled >= counted.initial
    return _advance(counted, "filled" if done else "partially_filled")


def apply(view: OrderView, frame: UserOrderFrame | FillFrame) -> OrderView:
    """The view after one frame about this order (the caller routes frames by ``order_id``)."""
    if isinstance(frame, FillFrame):
        return _apply_fill(view, frame.msg)
    return _apply_user_order(view, frame.msg)
