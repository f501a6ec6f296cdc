"""Kalshi's JSON bodies as msgspec Structs (OpenAPI 3.31.0 names and shapes).

Requests omit unset fields (``omit_defaults``) so that what we send is exactly what the spec
allows. Responses ignore unknown fields: Kalshi adds fields often and that must not break us.
Fixed-point strings decode straight into ``Decimal``, which takes ``"NaN"`` and ``"-1"`` too:
counts are checked before anything is settled from them (``impossible_count``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from kalshi_router.intent import BookSide, SelfTradePrevention, TimeInForce
from kalshi_router.outcome import ApiError


class _Request(msgspec.Struct, omit_defaults=True, kw_only=True):
    pass


_ZERO = Decimal(0)


def impossible_count(value: Decimal | None) -> bool:
    """A count no order can have: negative, or not a number (``"NaN"`` decodes to a Decimal)."""
    return value is not None and not (value.is_finite() and value >= _ZERO)


def impossible_amount(value: Decimal | None) -> bool:
    return value is not None and not value.is_finite()


class ErrorResponse(msgspec.Struct, frozen=True):
    """Kalshi's error triple as it arrives, any field absent or null.

    Decoding it leniently matters: a strict ``str`` field would turn one per-item error with a
    ``null`` detail into an unreadable body, and so a whole batch of definitive answers into an
    ambiguous one.
    """

    code: str | None = None
    message: str | None = None
    details: str | None = None

    def api_error(self) -> ApiError:
        # An error without a code is still an error; give callers something to match on.
        return ApiError(self.code or "unknown_error", self.message or "", self.details or "")


# V2 "event orders" family (current).


class CreateOrderV2Request(msgspec.Struct, omit_defaults=True):
    """Positional as well (not ``kw_only``): ``to_v2`` builds one per order sent, and fourteen
    keywords cost msgspec a search each."""

    ticker: str
    side: BookSide
    count: Decimal
    price: Decimal
    time_in_force: TimeInForce
    self_trade_prevention_type: SelfTradePrevention
    client_order_id: str | None = None
    expiration_time: int | None = None
    post_only: bool = False
    cancel_order_on_pause: bool = False
    reduce_only: bool = False
    subaccount: int | None = None
    order_group_id: str | None = None
    exchange_index: int | None = None


class BatchCreateOrdersV2Request(_Request):
    orders: list[CreateOrderV2Request]


class CreateOrderV2Item(msgspec.Struct):
    order_id: str | None = None
    client_order_id: str | None = None
    fill_count: Decimal | None = None
    remaining_count: Decimal | None = None
    average_fill_price: Decimal | None = None
    average_fee_paid: Decimal | None = None
    ts_ms: int | None = None
    error: ErrorResponse | None = None


class BatchCreateOrdersV2Response(msgspec.Struct):
    orders: list[CreateOrderV2Item]


class CreateOrderV2ItemText(msgspec.Struct):
    """``CreateOrderV2Item`` with its two counts as the exchange wrote them: decoding a
    ``Decimal`` costs a constructor call each, and an answer's counts are mostly the same few
    strings (``wire.v2`` makes each one's Decimal once)."""

    order_id: str | None = None
    client_order_id: str | None = None
    fill_count: str | None = None
    remaining_count: str | None = None
    average_fill_price: Decimal | None = None
    average_fee_paid: Decimal | None = None
    ts_ms: int | None = None
    error: ErrorResponse | None = None


class BatchCreateOrdersV2ResponseText(msgspec.Struct):
    orders: list[CreateOrderV2ItemText]


class CancelOrderV2Item(_Request):
    order_id: str
    subaccount: int | None = None
    exchange_index: int | None = None
    market_ticker: str | None = None


class BatchCancelOrdersV2Request(_Request):
    orders: list[CancelOrderV2Item]


class CancelOrderV2Result(msgspec.Struct, kw_only=True):
    order_id: str | None = None
    client_order_id: str | None = None
    reduced_by: Decimal | None = None
    ts_ms: int | None = None
    error: ErrorResponse | None = None


class BatchCancelOrdersV2Response(msgspec.Struct):
    orders: list[CancelOrderV2Result]


# V2 single-order requests (no batch form exists).


class AmendOrderV2Request(_Request):
    ticker: str
    side: BookSide
    price: Decimal
    count: Decimal
    client_order_id: str | None = None
    updated_client_order_id: str | None = None
    expiration_time: int | None = None
    exchange_index: int | None = None


class DecreaseOrderV2Request(_Request):
    reduce_by: Decimal | None = None
    reduce_to: Decimal | None = None
    exchange_index: int | None = None
    market_ticker: str | None = None


class SingleOrderV2Response(msgspec.Struct, kw_only=True):
    """The answer to an amend or a decrease (their shapes differ only in optional fields)."""

    order_id: str
    client_order_id: str | None = None
    remaining_count: Decimal | None = None
    fill_count: Decimal | None = None
    ts_ms: int | None = None


# Legacy V1 batch format (the original brief's `/portfolio/orders/batched`).


class CreateOrderV1Request(_Request):
    ticker: str
    side: Literal["yes", "no"]
    action: Literal["buy", "sell"]
    client_order_id: str | None = None
    count: int | None = None
    count_fp: Decimal | None = None
    yes_price: int | None = None
    no_price: int | None = None
    yes_price_dollars: Decimal | None = None
    no_price_dollars: Decimal | None = None
    expiration_ts: int | None = None
    time_in_force: TimeInForce | None = None
    buy_max_cost: int | None = None
    post_only: bool = False
    reduce_only: bool = False
    sell_position_floor: int | None = None
    self_trade_prevention_type: SelfTradePrevention | None = None
    order_group_id: str | None = None
    cancel_order_on_pause: bool = False
    subaccount: int | None = None
    exchange_index: int | None = None


class BatchCreateOrdersV1Request(_Request):
    orders: list[CreateOrderV1Request]


class CancelOrderV1Item(_Request):
    order_id: str
    subaccount: int | None = None
    exchange_index: int | None = None
    market_ticker: str | None = None


class BatchCancelOrdersV1Request(_Request):
    orders: list[CancelOrderV1Item]


# Reads: orders (for reconciliation), account limits and endpoint costs (for the limiter).


def check_decoded(
    struct: msgspec.Struct, counts: tuple[str, ...], amounts: tuple[str, ...]
) -> None:
    """Refuse impossible counts (and prices) and non-finite amounts as ``struct`` is decoded.

    Raised from ``__post_init__``, the ValueError becomes a decode error naming the field and
    where it is (``$.orders[3]``).
    """
    for name in counts:
        value = getattr(struct, name)
        if impossible_count(value):
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    for name in amounts:
        value = getattr(struct, name)
        if impossible_amount(value):
            raise ValueError(f"{name} must be a finite number, got {value}")


class Order(msgspec.Struct, kw_only=True):
    """The spec's ``Order``. Its required money fields default to 0 all the same: older
    answers (and V1 batch items) lack them, and nothing is settled from them."""

    order_id: str
    client_order_id: str
    ticker: str
    # Plain strings: a status or side Kalshi adds later must not make a whole answer unreadable.
    status: str
    book_side: str | None = None
    outcome_side: str | None = None
    yes_price_dollars: Decimal | None = None
    fill_count_fp: Decimal = Decimal(0)
    remaining_count_fp: Decimal = Decimal(0)
    initial_count_fp: Decimal | None = None
    taker_fees_dollars: Decimal = Decimal(0)
    maker_fees_dollars: Decimal = Decimal(0)
    taker_fill_cost_dollars: Decimal = Decimal(0)
    maker_fill_cost_dollars: Decimal = Decimal(0)
    created_time: str | None = None
    last_update_time: str | None = None
    expiration_time: str | None = None
    order_group_id: str | None = None
    subaccount_number: int | None = None
    exchange_index: int | None = None

    def __post_init__(self) -> None:
        # Lookups settle intents from the counts. Money is checked as the WebSocket's
        # user_order checks the same four fields (finite, sign free), so that a value one
        # source accepts the other does not refuse. Batch answer items are checked when
        # settled, which costs less than a __post_init__ per item.
        check_decoded(self, _ORDER_COUNTS, _ORDER_AMOUNTS)


_ORDER_COUNTS = ("fill_count_fp", "remaining_count_fp", "initial_count_fp", "yes_price_dollars")
_ORDER_AMOUNTS = (
    "taker_fees_dollars",
    "maker_fees_dollars",
    "taker_fill_cost_dollars",
    "maker_fill_cost_dollars",
)


class BatchCreateOrdersV1Item(msgspec.Struct, kw_only=True):
    client_order_id: str | None = None
    order: Order | None = None
    error: ErrorResponse | None = None


class BatchCreateOrdersV1Response(msgspec.Struct):
    orders: list[BatchCreateOrdersV1Item]


class BatchCancelOrdersV1Item(msgspec.Struct, kw_only=True):
    order_id: str | None = None
    order: Order | None = None
    reduced_by_fp: Decimal | None = None
    error: ErrorResponse | None = None


class BatchCancelOrdersV1Response(msgspec.Struct):
    orders: list[BatchCancelOrdersV1Item]


class GetOrdersResponse(msgspec.Struct):
    orders: list[Order]
    cursor: str | None = None


class GetOrderResponse(msgspec.Struct):
    order: Order


class BucketLimit(msgspec.Struct):
    refill_rate: int
    bucket_capacity: int


class GetAccountApiLimitsResponse(msgspec.Struct):
    usage_tier: str
    read: BucketLimit
    write: BucketLimit


class EndpointTokenCost(msgspec.Struct):
    method: str
    path: str
    cost: int


class GetAccountEndpointCostsResponse(msgspec.Struct):
    default_cost: int
    endpoint_costs: list[EndpointTokenCost]


class GetExchangeStatusResponse(msgspec.Struct, kw_only=True):
    """``GET /exchange/status`` (the spec's ExchangeStatus; the per-index breakdown unread)."""

    exchange_active: bool
    trading_active: bool
    exchange_estimated_resume_time: str | None = None


class ErrorEnvelope(msgspec.Struct):
    """Every error body Kalshi sends: ``{"error": {...}}``, ``{"error": "text"}`` (429), or the
    flat ``{code, message, details}`` of the OpenAPI ErrorResponse."""

    error: ErrorResponse | str | None = None
    code: str | None = None
    message: str | None = None
    details: str | None = None
