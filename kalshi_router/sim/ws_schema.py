"""The simulator's WebSocket frames (Kalshi AsyncAPI 2.0.0), server to client, as msgspec Structs.

Optional fields are ``UNSET`` when absent and never encoded; money and counts are fixed-point
strings, as the spec's payload schemas say.
"""

from __future__ import annotations

from typing import Literal

from msgspec import UNSET, Struct, UnsetType

YesNo = Literal["yes", "no"]
BookSide = Literal["bid", "ask"]


class _Frame(Struct, kw_only=True, omit_defaults=True):
    pass


class SubscribedMsg(_Frame, kw_only=True):
    channel: str
    sid: int


class Subscribed(_Frame, tag_field="type", tag="subscribed", kw_only=True):
    id: int | UnsetType = UNSET
    msg: SubscribedMsg


class Unsubscribed(_Frame, tag_field="type", tag="unsubscribed", kw_only=True):
    id: int | UnsetType = UNSET
    sid: int
    seq: int


class OkMsg(_Frame, kw_only=True):
    market_tickers: list[str] | UnsetType = UNSET


class Ok(_Frame, tag_field="type", tag="ok", kw_only=True):
    id: int | UnsetType = UNSET
    sid: int
    seq: int
    msg: OkMsg


class ListSubscriptions(_Frame, tag_field="type", tag="ok", kw_only=True):
    id: int | UnsetType = UNSET
    msg: list[SubscribedMsg]


class ErrorMsg(_Frame, kw_only=True):
    code: int
    msg: str


class Error(_Frame, tag_field="type", tag="error", kw_only=True):
    id: int | UnsetType = UNSET
    sid: int | UnsetType = UNSET
    msg: ErrorMsg


class UserOrderMsg(_Frame, kw_only=True):
    order_id: str
    user_id: str
    ticker: str
    exchange_index: int
    status: Literal["resting", "canceled", "executed"]
    side: YesNo
    is_yes: bool
    outcome_side: YesNo
    book_side: BookSide
    yes_price_dollars: str
    fill_count_fp: str
    remaining_count_fp: str
    initial_count_fp: str
    taker_fill_cost_dollars: str
    maker_fill_cost_dollars: str
    taker_fees_dollars: str
    maker_fees_dollars: str
    client_order_id: str
    order_group_id: str | UnsetType = UNSET
    self_trade_prevention_type: Literal["taker_at_cross", "maker"]
    created_time: str
    created_ts_ms: int
    last_update_time: str
    last_updated_ts_ms: int
    expiration_time: str | UnsetType = UNSET
    expiration_ts_ms: int | UnsetType = UNSET
    last_update_reason: str | UnsetType = UNSET
    subaccount_number: int


class UserOrder(_Frame, tag_field="type", tag="user_order", kw_only=True):
    sid: int
    msg: UserOrderMsg


class FillMsg(_Frame, kw_only=True):
    trade_id: str
    order_id: str
    client_order_id: str | UnsetType = UNSET
    market_ticker: str
    exchange_index: int
    is_taker: bool
    side: YesNo
    yes_price_dollars: str
    count_fp: str
    fee_cost: str
    action: Literal["buy", "sell"]
    ts: int
    ts_ms: int
    post_position_fp: str
    purchased_side: YesNo
    outcome_side: YesNo
    book_side: BookSide
    subaccount: int


class Fill(_Frame, tag_field="type", tag="fill", kw_only=True):
    sid: int
    msg: FillMsg


class MarketPositionMsg(_Frame, kw_only=True):
    user_id: str
    market_ticker: str
    position_fp: str
    position_cost_dollars: str
    realized_pnl_dollars: str
    fees_paid_dollars: str
    position_fee_cost_dollars: str
    volume_fp: str
    subaccount: int


class MarketPosition(_Frame, tag_field="type", tag="market_position", kw_only=True):
    sid: int
    msg: MarketPositionMsg


class OrderGroupUpdateMsg(_Frame, kw_only=True):
    event_type: Literal["created", "triggered", "reset", "deleted", "limit_updated"]
    order_group_id: str
    contracts_limit_fp: str | UnsetType = UNSET
    ts_ms: int


class OrderGroupUpdates(_Frame, tag_field="type", tag="order_group_updates", kw_only=True):
    sid: int
    seq: int
    msg: OrderGroupUpdateMsg


Frame = (
    Subscribed
    | Unsubscribed
    | Ok
    | ListSubscriptions
    | Error
    | UserOrder
    | Fill
    | MarketPosition
    | OrderGroupUpdates
)
