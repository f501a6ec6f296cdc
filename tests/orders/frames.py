"""What the exchange says about an order, built for tests: ``user_order`` frames, fills (as the
feed's frame read into a FillEvent) and REST snapshots, of one order of 10 by default."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from kalshi_router.orders.updates import FillEvent, fill_event
from kalshi_router.wire.models import Order
from kalshi_router.wire.ws_models import Fill, UserOrder

ORDER_ID = "ee587a1c-8b87-4dcf-b721-9f6f790619fa"
CLIENT_ID = "c-1"
TICKER = "FED-23DEC-T3.00"
D = Decimal
Side = Literal["bid", "ask"]


def user_order(
    status: str,
    filled: str = "0",
    remaining: str = "10",
    *,
    fees: str = "0",
    reason: str | None = None,
    price: str = "0.35",
    ts: int | None = None,
    order_id: str = ORDER_ID,
    client_order_id: str = CLIENT_ID,
    ticker: str = TICKER,
    side: Side = "bid",
    initial: str = "10",
) -> UserOrder:
    return UserOrder(
        order_id=order_id,
        user_id="u",
        ticker=ticker,
        exchange_index=2,
        status=status,
        outcome_side="yes" if side == "bid" else "no",
        book_side=side,
        yes_price_dollars=D(price),
        fill_count_fp=D(filled),
        remaining_count_fp=D(remaining),
        initial_count_fp=D(initial),
        taker_fill_cost_dollars=D(0),
        maker_fill_cost_dollars=D(0),
        taker_fees_dollars=D(fees),
        maker_fees_dollars=D(0),
        client_order_id=client_order_id,
        created_ts_ms=1,
        last_updated_ts_ms=ts,
        last_update_reason=reason,
    )


def fill(
    trade_id: str,
    count: str,
    price: str = "0.35",
    fee: str = "0.01",
    *,
    order_id: str = ORDER_ID,
    client_order_id: str | None = CLIENT_ID,
    ticker: str = TICKER,
    side: Side = "bid",
) -> FillEvent:
    return fill_event(
        Fill(
            trade_id=trade_id,
            order_id=order_id,
            client_order_id=client_order_id,
            market_ticker=ticker,
            exchange_index=2,
            is_taker=True,
            yes_price_dollars=D(price),
            count_fp=D(count),
            fee_cost=D(fee),
            post_position_fp=D(count),
            outcome_side="yes" if side == "bid" else "no",
            book_side=side,
            ts_ms=1,
        )
    )


def rest(
    status: str,
    filled: str = "0",
    remaining: str = "10",
    *,
    order_id: str = ORDER_ID,
    client_order_id: str = CLIENT_ID,
    ticker: str = TICKER,
    side: Side = "bid",
    initial: str = "10",
) -> Order:
    return Order(
        order_id=order_id,
        client_order_id=client_order_id,
        ticker=ticker,
        status=status,
        book_side=side,
        yes_price_dollars=D("0.35"),
        fill_count_fp=D(filled),
        remaining_count_fp=D(remaining),
        initial_count_fp=D(initial),
    )
