"""The legacy V1 batch dialect of the original brief: ``/portfolio/orders/batched``.

Kalshi retired these paths in June 2026 (they answer 410 ``deprecated_v1_order_endpoint``); the
dialect stays for the simulator's V1 mode and for anyone still holding that format. An intent's
bid is sent as "buy yes" and its ask as "sell yes" at the YES price, which Kalshi nets the same
way as "buy no" at 1 - price.

V1 routes differently from V2: an omitted ``exchange_index`` means shard 0, and only ``-1``
auto-routes by ticker. An intent without an ``exchange_index`` asks for routing by its ticker (as
V2 does when the field is omitted), so V1 bodies say ``-1`` for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

import msgspec

from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.outcome import Accepted, Cancelled
from kalshi_router.wire.dialect import AnswerDecoder, DialectName, cost_of, v2_costs
from kalshi_router.wire.models import (
    BatchCancelOrdersV1Item,
    BatchCancelOrdersV1Request,
    BatchCancelOrdersV1Response,
    BatchCreateOrdersV1Item,
    BatchCreateOrdersV1Request,
    BatchCreateOrdersV1Response,
    CancelOrderV1Item,
    CreateOrderV1Request,
    GetAccountEndpointCostsResponse,
    impossible_count,
)
from kalshi_router.wire.reply import BatchItems, Outcome, rejection

_encoder = msgspec.json.Encoder(decimal_format="string")
_create_decoder = msgspec.json.Decoder(BatchCreateOrdersV1Response)
_cancel_decoder = msgspec.json.Decoder(BatchCancelOrdersV1Response)
_HUNDRED = Decimal(100)
V1_PENALTY = 10
AUTO_ROUTE = -1


def _route(exchange_index: int | None) -> int:
    return AUTO_ROUTE if exchange_index is None else exchange_index


def to_v1(intent: OrderIntent) -> CreateOrderV1Request:
    # Whole cents and whole contracts go in the original integer fields; anything finer needs
    # the fixed-point ones.
    cents = intent.price * _HUNDRED
    whole_cents = cents == cents.to_integral_value()
    whole_count = intent.count == intent.count.to_integral_value()
    return CreateOrderV1Request(
        ticker=intent.ticker,
        side="yes",
        action="buy" if intent.side == "bid" else "sell",
        client_order_id=intent.client_order_id,
        count=int(intent.count) if whole_count else None,
        count_fp=None if whole_count else intent.count,
        yes_price=int(cents) if whole_cents else None,
        yes_price_dollars=None if whole_cents else intent.price,
        expiration_ts=intent.expiration_time,
        time_in_force=intent.time_in_force,
        buy_max_cost=intent.buy_max_cost,
        post_only=intent.post_only,
        reduce_only=intent.reduce_only,
        sell_position_floor=intent.sell_position_floor,
        self_trade_prevention_type=intent.self_trade_prevention,
        order_group_id=intent.order_group_id,
        cancel_order_on_pause=intent.cancel_order_on_pause,
        subaccount=intent.subaccount,
        exchange_index=_route(intent.exchange_index),
    )


def _create_key(item: dict[str, Any]) -> object:
    """The key of an item that does not decode: on the item, else on its order."""
    order = item.get("order")
    return item.get("client_order_id") or (
        order.get("client_order_id") if isinstance(order, dict) else None
    )


def _settle_create(item: BatchCreateOrdersV1Item) -> tuple[str | None, Outcome | None]:
    key = item.client_order_id or (item.order.client_order_id if item.order else None)
    if key is None:
        return None, None
    if item.order is not None and item.order.client_order_id != key:
        # The item and its order name different orders: neither can be believed.
        return key, None
    if item.error is not None:
        if item.order is not None:
            # Refused and placed at once: the order may exist, so it is looked up.
            return key, None
        return key, rejection("client_order_id", key, item.error.api_error(), 201)
    if item.order is None or not item.order.order_id:
        return key, None
    return key, Accepted(
        client_order_id=key,
        order_id=item.order.order_id,
        fill_count=item.order.fill_count_fp,
        remaining_count=item.order.remaining_count_fp,
    )


def _settle_cancel(item: BatchCancelOrdersV1Item) -> tuple[str | None, Outcome | None]:
    key = item.order_id
    if key is None:
        return None, None
    if item.order is not None and item.order.order_id != key:
        return key, None
    if item.error is not None:
        return key, rejection("order_id", key, item.error.api_error(), 200)
    if item.reduced_by_fp is None or impossible_count(item.reduced_by_fp):
        return key, None
    return key, Cancelled(
        order_id=key,
        reduced_by=item.reduced_by_fp,
        client_order_id=item.order.client_order_id if item.order else None,
    )


class V1Dialect(AnswerDecoder[BatchCreateOrdersV1Item, BatchCancelOrdersV1Item]):
    name: ClassVar[DialectName] = "v1"
    create_path: ClassVar[str] = "/portfolio/orders/batched"
    cancel_path: ClassVar[str] = "/portfolio/orders/batched"

    def __init__(self) -> None:
        super().__init__(
            BatchItems(
                lambda raw: _create_decoder.decode(raw).orders,
                BatchCreateOrdersV1Item,
                _create_key,
            ),
            _settle_create,
            BatchItems(
                lambda raw: _cancel_decoder.decode(raw).orders,
                BatchCancelOrdersV1Item,
                lambda item: item.get("order_id"),
            ),
            _settle_cancel,
        )

    def check(self, intent: OrderIntent) -> None:
        """Every intent field has a V1 form."""

    def costs(self, table: GetAccountEndpointCostsResponse | None) -> dict[str, int]:
        # Reported since June 2026 (not in Kalshi's text we hold): legacy order writes cost ten
        # times the V2 price. A listed cost wins.
        v2 = v2_costs(table)
        return {
            "create": cost_of(table, "POST", self.create_path, V1_PENALTY * v2["create"]),
            "cancel": cost_of(table, "DELETE", self.cancel_path, V1_PENALTY * v2["cancel"]),
            "single": v2["single"],
        }

    def encode_create(self, intents: Sequence[OrderIntent]) -> bytes:
        return _encoder.encode(BatchCreateOrdersV1Request(orders=[to_v1(i) for i in intents]))

    def encode_cancel(self, cancels: Sequence[CancelIntent]) -> bytes:
        items = [
            CancelOrderV1Item(
                order_id=c.order_id,
                subaccount=c.subaccount,
                exchange_index=_route(c.exchange_index),
                market_ticker=c.ticker,
            )
            for c in cancels
        ]
        return _encoder.encode(BatchCancelOrdersV1Request(orders=items))
