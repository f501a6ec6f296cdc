"""The simulator's own wire types: strict request Structs and response Structs (spec 3.31.0).

Requests reject unknown fields and wrong JSON types. A field that the spec does not mark
nullable is typed ``X | UnsetType`` so that an explicit ``null`` is a type error, as it would
be for Kalshi's Go decoder, while leaving it out stays allowed.

Responses separate "absent" (``UNSET``, never encoded) from "null" (``None``). Where the spec
marks a field ``x-omitempty: false`` and ``nullable``, Kalshi's Go server emits ``null`` for a
missing value, so the sim does too.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

BookSide = Literal["bid", "ask"]
TimeInForce = Literal["fill_or_kill", "good_till_canceled", "immediate_or_cancel"]
SelfTradePrevention = Literal["taker_at_cross", "maker"]
Ticker = Annotated[str, Meta(min_length=1)]


class _Request(Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class CreateOrderV2Request(_Request, kw_only=True):
    ticker: Ticker
    side: BookSide
    count: str
    price: str
    time_in_force: TimeInForce
    self_trade_prevention_type: SelfTradePrevention
    client_order_id: str | UnsetType = UNSET
    expiration_time: int | UnsetType = UNSET
    post_only: bool = False
    cancel_order_on_pause: bool = False
    reduce_only: bool = False
    subaccount: int | UnsetType = UNSET
    order_group_id: str | UnsetType = UNSET
    exchange_index: int | UnsetType = UNSET


class BatchCreateOrdersV2Request(_Request, kw_only=True):
    orders: list[CreateOrderV2Request]


class CancelItemV2(_Request, kw_only=True):
    order_id: str
    subaccount: int | UnsetType = UNSET
    exchange_index: int | UnsetType = UNSET
    market_ticker: str | UnsetType = UNSET


class BatchCancelOrdersV2Request(_Request, kw_only=True):
    orders: list[CancelItemV2]


class AmendOrderV2Request(_Request, kw_only=True):
    ticker: Ticker
    side: BookSide
    price: str
    count: str
    client_order_id: str | UnsetType = UNSET
    updated_client_order_id: str | UnsetType = UNSET
    expiration_time: int | UnsetType = UNSET
    exchange_index: int | UnsetType = UNSET


class DecreaseOrderV2Request(_Request, kw_only=True):
    # The only request fields the spec marks nullable.
    reduce_by: str | UnsetType | None = UNSET
    reduce_to: str | UnsetType | None = UNSET
    exchange_index: int | UnsetType = UNSET
    market_ticker: str | UnsetType = UNSET


class CreateOrderV1Request(_Request, kw_only=True):
    ticker: Ticker
    side: Literal["yes", "no"]
    action: Literal["buy", "sell"]
    client_order_id: str | UnsetType = UNSET
    count: int | UnsetType = UNSET
    count_fp: str | UnsetType | None = UNSET
    yes_price: int | UnsetType = UNSET
    no_price: int | UnsetType = UNSET
    yes_price_dollars: str | UnsetType = UNSET
    no_price_dollars: str | UnsetType = UNSET
    expiration_ts: int | UnsetType = UNSET
    time_in_force: TimeInForce | UnsetType = UNSET
    buy_max_cost: int | UnsetType = UNSET
    post_only: bool = False
    reduce_only: bool = False
    sell_position_floor: int | UnsetType = UNSET
    self_trade_prevention_type: SelfTradePrevention | UnsetType = UNSET
    order_group_id: str | UnsetType = UNSET
    cancel_order_on_pause: bool = False
    subaccount: int | UnsetType = UNSET
    exchange_index: int | UnsetType = UNSET


class BatchCreateOrdersV1Request(_Request, kw_only=True):
    orders: list[CreateOrderV1Request]


class CancelItemV1(_Request, kw_only=True):
    order_id: str
    subaccount: int | UnsetType = UNSET
    exchange_index: int | UnsetType = UNSET
    market_ticker: str | UnsetType = UNSET


class BatchCancelOrdersV1Request(_Request, kw_only=True):
    ids: list[str] | UnsetType = UNSET
    orders: list[CancelItemV1] | UnsetType = UNSET


# --- responses -------------------------------------------------------------------------------


class ErrorBody(Struct, kw_only=True):
    """The flat ErrorResponse: per-item ``error`` in batches, and inside the HTTP envelope."""

    code: str
    message: str
    details: str


class ErrorEnvelope(Struct, kw_only=True):
    error: ErrorBody


class CreateOrderV2Response(Struct, kw_only=True):
    order_id: str
    client_order_id: str | UnsetType = UNSET
    fill_count: str
    remaining_count: str
    average_fill_price: str | UnsetType = UNSET
    average_fee_paid: str | UnsetType = UNSET
    ts_ms: int


class BatchCreateItemV2(Struct, kw_only=True):
    order_id: str | UnsetType = UNSET
    client_order_id: str | None
    fill_count: str | None
    remaining_count: str | None
    average_fill_price: str | None
    average_fee_paid: str | None
    ts_ms: int | UnsetType = UNSET
    error: ErrorBody | UnsetType = UNSET


class BatchCreateOrdersV2Response(Struct, kw_only=True):
    orders: list[BatchCreateItemV2]


class CancelOrderV2Response(Struct, kw_only=True):
    order_id: str
    client_order_id: str | UnsetType = UNSET
    reduced_by: str
    ts_ms: int


class BatchCancelItemV2(Struct, kw_only=True):
    order_id: str
    client_order_id: str | None
    reduced_by: str
    ts_ms: int | UnsetType = UNSET
    error: ErrorBody | UnsetType = UNSET


class BatchCancelOrdersV2Response(Struct, kw_only=True):
    orders: list[BatchCancelItemV2]


class AmendOrderV2Response(Struct, kw_only=True):
    order_id: str
    client_order_id: str | UnsetType = UNSET
    remaining_count: str | None
    fill_count: str | None
    average_fill_price: str | None
    average_fee_paid: str | None
    ts_ms: int


class DecreaseOrderV2Response(Struct, kw_only=True):
    order_id: str
    client_order_id: str | UnsetType = UNSET
    remaining_count: str
    ts_ms: int


class OrderOut(Struct, kw_only=True):
    """Kalshi's ``Order``.

    Sim assumption: the deprecated ``side``/``action`` (kept "not before May 14, 2026") are
    left out, so that no client comes to depend on them.
    """

    order_id: str
    user_id: str
    client_order_id: str
    ticker: str
    outcome_side: Literal["yes", "no"]
    book_side: BookSide
    type: Literal["limit"]
    status: str
    yes_price_dollars: str
    no_price_dollars: str
    fill_count_fp: str
    remaining_count_fp: str
    initial_count_fp: str
    taker_fees_dollars: str
    maker_fees_dollars: str
    taker_fill_cost_dollars: str
    maker_fill_cost_dollars: str
    expiration_time: str | None
    created_time: str
    last_update_time: str
    self_trade_prevention_type: SelfTradePrevention
    order_group_id: str | None
    cancel_order_on_pause: bool
    subaccount_number: int
    exchange_index: int


class GetOrdersResponse(Struct, kw_only=True):
    orders: list[OrderOut]
    cursor: str


class GetOrderResponse(Struct, kw_only=True):
    order: OrderOut


class FillOut(Struct, kw_only=True):
    """Kalshi's ``Fill`` (``GET /portfolio/fills``; not in the 3.31.0 extract: the Get Fills
    page of spec 3.29.0).

    Sim assumptions: ``client_order_id`` (listed until 3.15.0) is sent when the order has one;
    the deprecated ``side``/``action`` are left out, as on ``OrderOut``.
    """

    fill_id: str
    exchange_index: int
    trade_id: str
    order_id: str
    client_order_id: str | UnsetType = UNSET
    ticker: str
    market_ticker: str
    outcome_side: Literal["yes", "no"]
    book_side: BookSide
    count_fp: str
    yes_price_dollars: str
    no_price_dollars: str
    is_taker: bool
    fee_cost: str
    created_time: str
    subaccount_number: int
    ts: int


class GetFillsResponse(Struct, kw_only=True):
    fills: list[FillOut]
    cursor: str


class MarketPositionOut(Struct, kw_only=True):
    """Kalshi's ``MarketPosition`` (``GET /portfolio/positions``; not in the 3.31.0 extract:
    Kalshi's Get Positions page, spec 3.34.0). Sim assumption: ``resting_orders_count``, which
    older specs listed and 3.34.0 does not, is not sent."""

    ticker: str
    exchange_index: int
    total_traded_dollars: str
    position_fp: str
    market_exposure_dollars: str
    realized_pnl_dollars: str
    fees_paid_dollars: str
    last_updated_ts: str


class EventPositionOut(Struct, kw_only=True):
    """Kalshi's ``EventPosition`` (spec 3.34.0)."""

    event_ticker: str
    total_cost_dollars: str
    total_cost_shares_fp: str
    event_exposure_dollars: str
    realized_pnl_dollars: str
    fees_paid_dollars: str


class GetPositionsResponse(Struct, kw_only=True):
    market_positions: list[MarketPositionOut]
    event_positions: list[EventPositionOut]
    cursor: str


class CreateOrderV1Response(Struct, kw_only=True):
    order: OrderOut


class BatchCreateItemV1(Struct, kw_only=True):
    client_order_id: str | None
    order: OrderOut | None
    error: ErrorBody | None


class BatchCreateOrdersV1Response(Struct, kw_only=True):
    orders: list[BatchCreateItemV1]


class BatchCancelItemV1(Struct, kw_only=True):
    order_id: str
    order: OrderOut | None
    reduced_by_fp: str
    error: ErrorBody | None


class BatchCancelOrdersV1Response(Struct, kw_only=True):
    orders: list[BatchCancelItemV1]


class BucketLimit(Struct, kw_only=True):
    refill_rate: int
    bucket_capacity: int


class GetAccountApiLimitsResponse(Struct, kw_only=True):
    usage_tier: str
    read: BucketLimit
    write: BucketLimit
    grants: list[dict[str, object]]


class EndpointTokenCost(Struct, kw_only=True):
    method: str
    path: str
    cost: int


class GetAccountEndpointCostsResponse(Struct, kw_only=True):
    default_cost: int
    endpoint_costs: list[EndpointTokenCost]


class ExchangeStatus(Struct, kw_only=True):
    exchange_active: bool
    trading_active: bool
    intra_exchange_transfers_active: bool
    exchange_estimated_resume_time: str | None


# The one error body that is a bare string (rate_limits page).
RATE_LIMIT_BODY = msgspec.json.encode({"error": "too many requests"})
