"""The V2 "event orders" dialect: ``/portfolio/events/orders/batched``, Kalshi's live surface."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import ClassVar, cast

import msgspec

from kalshi_router.errors import DialectError
from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.outcome import Accepted, Cancelled
from kalshi_router.wire.dialect import AnswerDecoder, DialectName, v2_costs
from kalshi_router.wire.models import (
    BatchCancelOrdersV2Request,
    BatchCancelOrdersV2Response,
    BatchCreateOrdersV2Request,
    BatchCreateOrdersV2ResponseText,
    CancelOrderV2Item,
    CancelOrderV2Result,
    CreateOrderV2Item,
    CreateOrderV2Request,
    GetAccountEndpointCostsResponse,
    impossible_count,
)
from kalshi_router.wire.reply import BatchItems, Outcome, Settled, SettledItem, rejection

_encoder = msgspec.json.Encoder(decimal_format="string")
_create_text_decoder = msgspec.json.Decoder(BatchCreateOrdersV2ResponseText)
_cancel_decoder = msgspec.json.Decoder(BatchCancelOrdersV2Response)
_ZERO = Decimal(0)
# Count strings seen in answers ("0.00", "10.00", ...) that are possible counts, and their
# Decimals, up to a bound.
_COUNTS: dict[str | None, Decimal] = {}
_MAX_COUNTS = 1024


def check_v2(intent: OrderIntent) -> None:
    if intent.buy_max_cost is not None:
        raise DialectError("buy_max_cost", "V1-only field; the V2 API has no cost cap")
    if intent.sell_position_floor is not None:
        raise DialectError("sell_position_floor", "V1-only field; use reduce_only in V2")


def to_v2(intents: Sequence[OrderIntent]) -> list[CreateOrderV2Request]:
    """The V2 bodies of ``intents``; raises ``DialectError`` for a V1-only field (the router
    checks at submit; this keeps any other caller from sending an order without it). One loop,
    no call per order: this runs for every order sent."""
    orders = []
    for intent in intents:
        if intent.buy_max_cost is not None or intent.sell_position_floor is not None:
            check_v2(intent)
        # Positional, in the fields' order.
        orders.append(
            CreateOrderV2Request(
                intent.ticker,
                intent.side,
                intent.count,
                intent.price,
                intent.time_in_force,
                intent.self_trade_prevention,
                intent.client_order_id,
                intent.expiration_time,
                intent.post_only,
                intent.cancel_order_on_pause,
                intent.reduce_only,
                intent.subaccount,
                intent.order_group_id,
                intent.exchange_index,
            )
        )
    return orders


def cancel_item(cancel: CancelIntent) -> CancelOrderV2Item:
    # market_ticker on every cancel: without it Kalshi may route the cancel to shard 0.
    return CancelOrderV2Item(
        order_id=cancel.order_id,
        subaccount=cancel.subaccount,
        exchange_index=cancel.exchange_index,
        market_ticker=cancel.ticker,
    )


def _possible_count(text: str) -> Decimal | None:
    """The Decimal of ``text`` if it is a count an order can have (finite, not negative), else
    None; kept for the next answers, up to a bound. A string ``Decimal`` refuses raises
    ``ValidationError``, as decoding it into a Decimal would (msgspec calls ``Decimal`` too)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise msgspec.ValidationError(f"Invalid decimal string {text!r}") from None
    if impossible_count(value):
        return None
    if len(_COUNTS) < _MAX_COUNTS:
        _COUNTS[text] = value
    return value


def _create_items(body: bytes) -> Settled:
    """A create answer read at once (``BatchItems``' fast path) and settled as it is read,
    ``(key, outcome)`` per item as ``_settle_create`` gives them: one loop, no call per order.
    Counts are read as the exchange's strings and looked up (only possible ones are kept: one
    found needs no checking). A count that is not a decimal raises ``ValidationError``, so the
    answer is read again item by item with Decimal fields, as any misfit is."""
    counts = _COUNTS
    settled = Settled()
    for item in _create_text_decoder.decode(body).orders:
        # Raises, whatever the item, for a count that is not a decimal: the whole answer is a
        # misfit then, and what was settled of it goes.
        fill_text, left_text = item.fill_count, item.remaining_count
        fill, left = counts.get(fill_text), counts.get(left_text)
        if fill is None and fill_text is not None:
            fill = _possible_count(fill_text)
        if left is None and left_text is not None:
            left = _possible_count(left_text)
        key = item.client_order_id
        if key is None:
            settled.append((None, None))
            settled.flawed = True
        elif item.error is not None:
            settled.append((key, rejection("client_order_id", key, item.error.api_error(), 201)))
        elif (
            not item.order_id
            or fill is None
            or left is None
            or (item.average_fill_price is not None and not item.average_fill_price.is_finite())
            or (item.average_fee_paid is not None and not item.average_fee_paid.is_finite())
        ):
            settled.append((key, None))
            settled.flawed = True
        else:
            # Positional, in the fields' order.
            accepted = Accepted(
                key,
                item.order_id,
                fill,
                left,
                item.average_fill_price,
                item.average_fee_paid,
                item.ts_ms,
            )
            settled.append((key, accepted))
    return settled


def _settle_create(item: CreateOrderV2Item | SettledItem) -> SettledItem:
    if type(item) is tuple:
        return item  # settled as the answer was read (``_create_items``)
    return _settle_decimals(cast("CreateOrderV2Item", item))


def _settle_decimals(item: CreateOrderV2Item) -> tuple[str | None, Outcome | None]:
    key = item.client_order_id
    if key is None:
        return None, None
    if item.error is not None:
        return key, rejection("client_order_id", key, item.error.api_error(), 201)
    fill, left = item.fill_count, item.remaining_count
    # Inline: this runs for every order placed.
    if (
        not item.order_id
        or fill is None
        or left is None
        or not (fill.is_finite() and left.is_finite() and fill >= _ZERO and left >= _ZERO)
        or (item.average_fill_price is not None and not item.average_fill_price.is_finite())
        or (item.average_fee_paid is not None and not item.average_fee_paid.is_finite())
    ):
        return key, None
    # Positional, in the fields' order.
    return key, Accepted(
        key,
        item.order_id,
        fill,
        left,
        item.average_fill_price,
        item.average_fee_paid,
        item.ts_ms,
    )


def _settle_cancel(item: CancelOrderV2Result) -> tuple[str | None, Outcome | None]:
    key = item.order_id
    if key is None:
        return None, None
    if item.error is not None:
        return key, rejection("order_id", key, item.error.api_error(), 200)
    if item.reduced_by is None or impossible_count(item.reduced_by):
        return key, None
    return key, Cancelled(
        order_id=key,
        reduced_by=item.reduced_by,
        client_order_id=item.client_order_id,
        ts_ms=item.ts_ms,
    )


class V2Dialect(AnswerDecoder[CreateOrderV2Item | SettledItem, CancelOrderV2Result]):
    name: ClassVar[DialectName] = "v2"
    create_path: ClassVar[str] = "/portfolio/events/orders/batched"
    cancel_path: ClassVar[str] = "/portfolio/events/orders/batched"

    def __init__(self) -> None:
        super().__init__(
            BatchItems[CreateOrderV2Item | SettledItem](
                _create_items,
                CreateOrderV2Item,
                lambda item: item.get("client_order_id"),
            ),
            _settle_create,
            BatchItems(
                lambda raw: _cancel_decoder.decode(raw).orders,
                CancelOrderV2Result,
                lambda item: item.get("order_id"),
            ),
            _settle_cancel,
        )

    # The function itself, not a method calling it: the router checks every intent it takes.
    check = staticmethod(check_v2)

    def costs(self, table: GetAccountEndpointCostsResponse | None) -> dict[str, int]:
        return v2_costs(table)

    def encode_create(self, intents: Sequence[OrderIntent]) -> bytes:
        return _encoder.encode(BatchCreateOrdersV2Request(orders=to_v2(intents)))

    def encode_cancel(self, cancels: Sequence[CancelIntent]) -> bytes:
        return _encoder.encode(BatchCancelOrdersV2Request(orders=[cancel_item(c) for c in cancels]))
