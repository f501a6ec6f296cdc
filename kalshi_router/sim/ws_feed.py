"""Engine events to WebSocket frames: ``user_order``, ``fill``, ``market_position`` and
``order_group_updates``.

Pure and synchronous. Units in: prices in $0.0001, counts in 0.01 contract, money in
micro-dollars; out: the spec's fixed-point strings (prices 4 decimals, counts 2, money 6).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from msgspec import UNSET

from kalshi_router.sim._model import PRICE_ONE, SimOrder, unit_cost
from kalshi_router.sim.events import Event, Filled, GroupChanged, OrderChanged
from kalshi_router.sim.render import count_str, price_str, rfc3339_ms
from kalshi_router.sim.ws_schema import (
    Fill,
    FillMsg,
    MarketPosition,
    MarketPositionMsg,
    OrderGroupUpdateMsg,
    OrderGroupUpdates,
    UserOrder,
    UserOrderMsg,
    YesNo,
)

# Sim assumption: the spec's user_id is a uuid and the sim's users are names; the WS frames
# carry a uuid derived from the name, the same on every run.
_USER_NAMESPACE = uuid.UUID("6f1c2b9e-5d0a-4c6e-9a57-3e0d7c1b2a44")


def ws_user_id(user_id: str) -> str:
    """The uuid the WebSocket frames name ``user_id`` by."""
    return str(uuid.uuid5(_USER_NAMESPACE, user_id))


def dollars6(micros: int) -> str:
    """Micro-dollars, signed, with six decimals ("0.010000")."""
    whole, frac = divmod(abs(micros), 1_000_000)
    return f"{'-' if micros < 0 else ''}{whole}.{frac:06d}"


def _outcome(order: SimOrder) -> YesNo:
    # A V2 bid buys YES and an ask buys NO.
    return "yes" if order.side == "bid" else "no"


def user_order(sid: int, order: SimOrder, event: OrderChanged) -> UserOrder:
    """The ``user_order`` frame for the order as it stands after ``event``."""
    outcome = _outcome(order)
    expiry_ms = None if order.expiration_time is None else order.expiration_time * 1000
    return UserOrder(
        sid=sid,
        msg=UserOrderMsg(
            order_id=order.order_id,
            user_id=ws_user_id(order.user_id),
            ticker=order.ticker,
            exchange_index=order.exchange_index,
            status=order.status,
            side=outcome,
            is_yes=outcome == "yes",
            outcome_side=outcome,
            book_side=order.side,
            yes_price_dollars=price_str(order.price),
            fill_count_fp=count_str(order.fill_count),
            remaining_count_fp=count_str(order.remaining_count),
            initial_count_fp=count_str(order.initial_count),
            taker_fill_cost_dollars=dollars6(order.taker_fill_cost),
            maker_fill_cost_dollars=dollars6(order.maker_fill_cost),
            taker_fees_dollars=dollars6(order.taker_fees),
            maker_fees_dollars=dollars6(order.maker_fees),
            # Sim assumption: an order created without a client_order_id carries "".
            client_order_id=order.client_order_id,
            order_group_id=order.order_group_id or UNSET,
            self_trade_prevention_type=order.stp,
            created_time=rfc3339_ms(order.created_ts_ms),
            created_ts_ms=order.created_ts_ms,
            last_update_time=rfc3339_ms(order.last_update_ts_ms),
            last_updated_ts_ms=order.last_update_ts_ms,
            expiration_time=UNSET if expiry_ms is None else rfc3339_ms(expiry_ms),
            expiration_ts_ms=UNSET if expiry_ms is None else expiry_ms,
            last_update_reason=UNSET if event.reason is None else event.reason,
            subaccount_number=order.subaccount,
        ),
    )


def fill(sid: int, event: Filled) -> Fill:
    """The ``fill`` frame for one side of one trade."""
    order = event.order
    outcome = _outcome(order)
    return Fill(
        sid=sid,
        msg=FillMsg(
            trade_id=event.trade_id,
            order_id=order.order_id,
            client_order_id=order.client_order_id or UNSET,
            market_ticker=order.ticker,
            exchange_index=order.exchange_index,
            is_taker=event.is_taker,
            side=outcome,
            yes_price_dollars=price_str(event.price),
            count_fp=count_str(event.qty),
            fee_cost=dollars6(event.fee),
            # Sim assumption: V2 orders only buy an outcome, so the legacy action is "buy".
            action="buy",
            ts=event.ts_ms // 1000,
            ts_ms=event.ts_ms,
            post_position_fp=count_str(event.position),
            purchased_side=outcome,
            outcome_side=outcome,
            book_side=order.side,
            subaccount=order.subaccount,
        ),
    )


def order_group_update(sid: int, seq: int, event: GroupChanged) -> OrderGroupUpdates:
    """The ``order_group_updates`` frame for one group event; ``seq`` is the subscription's."""
    limit = event.contracts_limit
    return OrderGroupUpdates(
        sid=sid,
        seq=seq,
        msg=OrderGroupUpdateMsg(
            event_type=event.event_type,
            order_group_id=event.order_group_id,
            contracts_limit_fp=UNSET if limit is None else count_str(limit),
            ts_ms=event.ts_ms,
        ),
    )


@dataclass(slots=True)
class Holding:
    """One user's record in one market, in the engine's units (micro-dollars, 0.01 contract).
    The position itself is the engine's (``Exchange.position``)."""

    cost: int = 0  # micro-dollars paid for the contracts held (of whichever outcome)
    realized: int = 0
    fees: int = 0
    volume: int = 0
    traded: int = 0
    """Micro-dollars every fill cost, at the price of the outcome it bought (closing ones too)."""
    updated_ms: int = 0
    """When a fill last changed it (the fill's time)."""


class Positions:
    """Per user and market: cost basis (average cost), realized P&L, fees, volume, dollars
    traded and the time of the last change.

    Fed every fill from the simulator's start, whether or not anyone is subscribed; the
    ``market_position`` frames and ``GET /portfolio/positions`` both read it. Sim assumptions:
    realized P&L excludes fees; a fill that closes held contracts realizes $1 per closed pair
    less the average cost and the closing price; position fee cost is the fees paid.
    """

    def __init__(self) -> None:
        self._by_user: dict[str, dict[str, Holding]] = {}

    def __call__(self, event: Event) -> None:
        if not isinstance(event, Filled):
            return
        order = event.order
        pos = self._by_user.setdefault(order.user_id, {}).setdefault(order.ticker, Holding())
        delta = event.qty if order.side == "bid" else -event.qty
        before = event.position - delta
        unit = unit_cost(order.side, event.price)
        closed = min(event.qty, max(-before if delta > 0 else before, 0))
        if closed:
            average = pos.cost * closed // abs(before)
            pos.cost -= average
            pos.realized += PRICE_ONE * closed - average - unit * closed
        pos.cost += unit * (event.qty - closed)
        pos.fees += event.fee
        pos.volume += event.qty
        pos.traded += unit * event.qty
        pos.updated_ms = event.ts_ms

    def held(self, user_id: str) -> dict[str, Holding]:
        """The user's records by ticker: every market the user has a fill in (live, not a
        copy: read them at once)."""
        return self._by_user.get(user_id, {})

    def frame(self, sid: int, event: Filled) -> MarketPosition:
        """The ``market_position`` frame after ``event`` (already counted)."""
        order = event.order
        pos = self._by_user[order.user_id][order.ticker]
        return MarketPosition(
            sid=sid,
            msg=MarketPositionMsg(
                user_id=ws_user_id(order.user_id),
                market_ticker=order.ticker,
                position_fp=count_str(event.position),
                position_cost_dollars=dollars6(pos.cost),
                realized_pnl_dollars=dollars6(pos.realized),
                fees_paid_dollars=dollars6(pos.fees),
                position_fee_cost_dollars=dollars6(pos.fees),
                volume_fp=count_str(pos.volume),
                subaccount=order.subaccount,
            ),
        )
