"""Pydantic models shaped like the official Kalshi SDK's, for ``bench_wire``'s comparison.

The official SDKs (``kalshi-python``, ``kalshi-python-async``) are generated from Kalshi's
OpenAPI spec as pydantic v2 models: fixed-point figures are strings, enums are validated
strings, optional fields default to ``None`` and are left out of the body
(``exclude_none``). These are the V2 batch create request and answer in that style, so
the micro benchmark can time what such a client pays without installing it (the official
async SDK needs Python >= 3.13). Importing this module needs pydantic (the ``bench`` extra).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class CreateOrderV2Request(BaseModel):
    ticker: str
    side: Literal["bid", "ask"]
    count: str
    price: str
    time_in_force: Literal["fill_or_kill", "good_till_canceled", "immediate_or_cancel"]
    self_trade_prevention_type: Literal["taker_at_cross", "maker"]
    client_order_id: str | None = None
    expiration_time: int | None = None
    post_only: bool | None = None
    cancel_order_on_pause: bool | None = None
    reduce_only: bool | None = None
    subaccount: int | None = None
    order_group_id: str | None = None
    exchange_index: int | None = None


class BatchCreateOrdersV2Request(BaseModel):
    orders: list[CreateOrderV2Request]


class ErrorResponse(BaseModel):
    code: str | None = None
    message: str | None = None
    details: str | None = None


class CreateOrderV2Result(BaseModel):
    order_id: str | None = None
    client_order_id: str | None = None
    fill_count: str | None = None
    remaining_count: str | None = None
    average_fill_price: str | None = None
    average_fee_paid: str | None = None
    ts_ms: int | None = None
    error: ErrorResponse | None = None


class BatchCreateOrdersV2Response(BaseModel):
    orders: list[CreateOrderV2Result]
