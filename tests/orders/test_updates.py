"""The public types of orders after acceptance: the feed's fill read into a FillEvent."""

from __future__ import annotations

from decimal import Decimal

from kalshi_router.orders.state import FINAL, STATES
from kalshi_router.orders.updates import FillEvent, OrderUpdate, fill_event
from kalshi_router.wire.ws_models import FillFrame, decode_frame

# The spec's own example (kalshi_ws.md, section 6).
FILL = b"""{"type": "fill", "sid": 13, "msg": {
  "trade_id": "d91bc706-ee49-470d-82d8-11418bda6fed",
  "order_id": "ee587a1c-8b87-4dcf-b721-9f6f790619fa", "client_order_id": "my-order-1",
  "market_ticker": "HIGHNY-22DEC23-B53.5", "exchange_index": 2, "is_taker": true, "side": "yes",
  "yes_price_dollars": "0.7500", "count_fp": "278.00", "fee_cost": "0.010000", "action": "buy",
  "ts": 1671899397, "ts_ms": 1671899397000, "post_position_fp": "500.00",
  "purchased_side": "yes", "outcome_side": "yes", "book_side": "bid", "subaccount": 3}}"""


def test_fill_event_from_the_specs_example() -> None:
    frame = decode_frame(FILL)
    assert isinstance(frame, FillFrame)
    assert fill_event(frame.msg) == FillEvent(
        trade_id="d91bc706-ee49-470d-82d8-11418bda6fed",
        order_id="ee587a1c-8b87-4dcf-b721-9f6f790619fa",
        client_order_id="my-order-1",
        ticker="HIGHNY-22DEC23-B53.5",
        book_side="bid",
        yes_price=Decimal("0.75"),
        count=Decimal(278),
        fee=Decimal("0.01"),
        is_taker=True,
        ts_ms=1671899397000,
    )


def test_an_empty_client_order_id_is_none() -> None:
    frame = decode_frame(FILL.replace(b'"my-order-1"', b'""'))
    assert isinstance(frame, FillFrame)
    assert fill_event(frame.msg).client_order_id is None


def test_an_update_is_final_in_the_final_states() -> None:
    finals = {
        state
        for state in STATES
        if OrderUpdate(
            order_id="o", client_order_id=None, ticker=None, state=state, source="ws"
        ).final
    }
    assert finals == FINAL
