"""Kalshi's WebSocket frames on the order channels as msgspec Structs (AsyncAPI 2.0.0 names).

Commands (client to server) are tagged by ``cmd`` and omit unset fields, so what we send is
exactly what the spec allows. Server frames are tagged by ``type`` and read by one decoder,
:func:`decode_frame`. As in :mod:`kalshi_router.wire.models`, unknown fields are ignored,
fixed-point strings decode straight into ``Decimal`` and are checked as decoded, and statuses
and reasons stay plain strings: a value Kalshi adds later must not make an order update
unreadable (the order's state reads only the values it knows, see ``kalshi_router.orders``).

Deprecated fields the spec still lists as required (``side``, ``is_yes``, ``created_time``,
``ts``, ``action``, ``purchased_side``) are optional here: they "will not be removed before May
14, 2026", so they may be gone at any time, and the router reads none of them.

Only ``user_order``, ``fill`` and ``market_position`` frames carry no ``seq``: nothing on the
order channels shows a gap, which is why the router reconciles through REST after a reconnect.
"""

from __future__ import annotations

from collections.abc import Sized
from decimal import Decimal
from typing import Annotated, Literal, TypeAlias, get_args

import msgspec

from kalshi_router.errors import WireError
from kalshi_router.wire.models import impossible_amount, impossible_count

TERMINAL_ERROR_CODES = frozenset({10, 25})
"""Error codes after which "the user must resubscribe" (channel error, buffer overflow)."""

Channel: TypeAlias = Literal[
    "orderbook_delta",
    "ticker",
    "trade",
    "fill",
    "market_positions",
    "market_lifecycle_v2",
    "multivariate_market_lifecycle",
    "communications",
    "order_group_updates",
    "user_orders",
    "cfbenchmarks_value",
    "cfbenchmarks_value_5hz",
    "pyth_value",
]
CommandId = Annotated[int, msgspec.Meta(ge=0)]
Sid = Annotated[int, msgspec.Meta(ge=1)]
Seq = Annotated[int, msgspec.Meta(ge=1)]
Side: TypeAlias = Literal["yes", "no"]
BookSide: TypeAlias = Literal["bid", "ask"]


# Commands.


class _Params(msgspec.Struct, omit_defaults=True, kw_only=True):
    pass


def _one_of(params: object, first: str, second: str) -> None:
    if getattr(params, first) is not None and getattr(params, second) is not None:
        raise ValueError(f"{first} and {second} are mutually exclusive: give one")


def _not_empty(name: str, values: Sized | None) -> None:
    if values is not None and not values:
        raise ValueError(f"{name} must not be empty")


class SubscribeParams(_Params):
    """``user_orders`` takes ``market_tickers`` only; ``fill`` and ``market_positions`` take
    either filter; no filter means every market."""

    channels: list[Channel]
    market_ticker: str | None = None
    market_tickers: list[str] | None = None
    skip_ticker_ack: bool = False

    def __post_init__(self) -> None:
        _not_empty("channels", self.channels)
        _not_empty("market_tickers", self.market_tickers)
        _one_of(self, "market_ticker", "market_tickers")


class UnsubscribeParams(_Params):
    sids: list[int]

    def __post_init__(self) -> None:
        _not_empty("sids", self.sids)


class UpdateSubscriptionParams(_Params):
    """One subscription, by ``sid`` or a one-element ``sids`` ("not both")."""

    action: Literal["add_markets", "delete_markets"]
    sid: int | None = None
    sids: list[int] | None = None
    market_ticker: str | None = None
    market_tickers: list[str] | None = None

    def __post_init__(self) -> None:
        _one_of(self, "sid", "sids")
        if self.sid is None and (self.sids is None or len(self.sids) != 1):
            raise ValueError("sid or sids: exactly one subscription id is required")
        _one_of(self, "market_ticker", "market_tickers")


class _Command(msgspec.Struct, omit_defaults=True, kw_only=True, tag_field="cmd"):
    id: CommandId
    """Unique within the connection; 0 means no id, so the router counts from 1."""


class Subscribe(_Command, tag="subscribe"):
    params: SubscribeParams


class Unsubscribe(_Command, tag="unsubscribe"):
    params: UnsubscribeParams


class UpdateSubscription(_Command, tag="update_subscription"):
    params: UpdateSubscriptionParams


class ListSubscriptions(_Command, tag="list_subscriptions"):
    pass


Command: TypeAlias = Subscribe | Unsubscribe | UpdateSubscription | ListSubscriptions

_encoder = msgspec.json.Encoder()


def encode_command(command: Command) -> bytes:
    """The JSON text of one command frame."""
    return _encoder.encode(command)


# Server frames: answers to commands.


class _Frame(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class SubscribedMsg(msgspec.Struct, kw_only=True):
    channel: str
    sid: Sid


class SubscribedFrame(_Frame, tag="subscribed"):
    msg: SubscribedMsg
    id: CommandId | None = None


class UnsubscribedFrame(_Frame, tag="unsubscribed"):
    sid: Sid
    seq: Seq
    id: CommandId | None = None


class OkMsg(msgspec.Struct, kw_only=True):
    """The markets of the subscription after an ``update_subscription``."""

    market_tickers: list[str] | None = None
    market_ids: list[str] | None = None


class ListedSubscription(msgspec.Struct, kw_only=True):
    channel: str
    sid: Sid


class OkFrame(_Frame, tag="ok"):
    """An ``update_subscription`` ack (``msg`` an object) or the answer to
    ``list_subscriptions`` (``msg`` a list): the spec gives both ``"type": "ok"``, so one tag
    reads both and ``msg``'s shape says which."""

    id: CommandId | None = None
    sid: Sid | None = None
    seq: Seq | None = None
    msg: OkMsg | list[ListedSubscription] | None = None


class ErrorMsg(msgspec.Struct, kw_only=True):
    code: int
    msg: str
    market_ticker: str | None = None
    market_tickers: list[str] | None = None


class ErrorFrame(_Frame, tag="error"):
    msg: ErrorMsg
    id: CommandId | None = None
    sid: Sid | None = None
    """Present when the error is scoped to a subscription."""
    seq: Seq | None = None

    @property
    def terminal(self) -> bool:
        """The subscription is gone: subscribe again, then reconcile through REST."""
        return self.msg.code in TERMINAL_ERROR_CODES


# Server frames: the order channels.


def _check_counts(message: msgspec.Struct, counts: str, amounts: str) -> None:
    # Checked as decoded (the ValueError becomes a decode error naming the field): the order's
    # state is computed from these. The names come space-separated.
    for name in counts.split():
        value = getattr(message, name)
        if impossible_count(value):
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    for name in amounts.split():
        value = getattr(message, name)
        if impossible_amount(value):
            raise ValueError(f"{name} must be a finite number, got {value}")


class UserOrder(msgspec.Struct, kw_only=True):
    """An order "created, filled, canceled, or otherwise updated" (channel ``user_orders``)."""

    order_id: str
    user_id: str
    ticker: str
    exchange_index: int
    status: str
    """``resting``, ``canceled``, ``executed`` or ``unknown`` in the spec."""
    outcome_side: Side
    book_side: BookSide
    yes_price_dollars: Decimal
    fill_count_fp: Decimal
    remaining_count_fp: Decimal
    initial_count_fp: Decimal
    taker_fill_cost_dollars: Decimal
    maker_fill_cost_dollars: Decimal
    taker_fees_dollars: Decimal
    maker_fees_dollars: Decimal
    client_order_id: str
    created_ts_ms: int | None
    order_group_id: str | None = None
    self_trade_prevention_type: str | None = None
    last_updated_ts_ms: int | None = None
    expiration_ts_ms: int | None = None
    last_update_reason: str | None = None
    """Kalshi's reason (``ExpiryCancel``, ``SelfTradeCancel``, ``Trade``, ...); the spec's
    enum has no value for a cancel the user asked for."""
    subaccount_number: int | None = None
    side: Side | None = None
    is_yes: bool | None = None
    created_time: str | None = None
    last_update_time: str | None = None
    expiration_time: str | None = None

    def __post_init__(self) -> None:
        _check_counts(
            self,
            "fill_count_fp remaining_count_fp initial_count_fp yes_price_dollars",
            "taker_fill_cost_dollars maker_fill_cost_dollars taker_fees_dollars maker_fees_dollars",
        )


class UserOrderFrame(_Frame, tag="user_order"):
    sid: Sid
    msg: UserOrder


class Fill(msgspec.Struct, kw_only=True):
    """One fill of one of our orders; ``trade_id`` tells fills apart (channel ``fill``)."""

    trade_id: str
    order_id: str
    market_ticker: str
    exchange_index: int
    is_taker: bool
    yes_price_dollars: Decimal
    count_fp: Decimal
    fee_cost: Decimal
    post_position_fp: Decimal
    outcome_side: Side
    book_side: BookSide
    ts_ms: int
    client_order_id: str | None = None
    subaccount: int | None = None
    side: Side | None = None
    purchased_side: Side | None = None
    action: Literal["buy", "sell", "sell_partial", "sell_to_close", ""] | None = None
    ts: int | None = None

    def __post_init__(self) -> None:
        _check_counts(self, "count_fp yes_price_dollars", "fee_cost post_position_fp")


class FillFrame(_Frame, tag="fill"):
    sid: Sid
    msg: Fill


class MarketPosition(msgspec.Struct, kw_only=True):
    """The account's position in one market (channel ``market_positions``)."""

    user_id: str
    market_ticker: str
    position_fp: Decimal
    position_cost_dollars: Decimal
    realized_pnl_dollars: Decimal
    fees_paid_dollars: Decimal
    position_fee_cost_dollars: Decimal
    volume_fp: Decimal
    subaccount: int | None = None

    def __post_init__(self) -> None:
        _check_counts(
            self,
            "volume_fp",
            "position_fp position_cost_dollars realized_pnl_dollars fees_paid_dollars "
            "position_fee_cost_dollars",
        )


class MarketPositionFrame(_Frame, tag="market_position"):
    sid: Sid
    msg: MarketPosition


class OrderGroupUpdate(msgspec.Struct, kw_only=True):
    event_type: str
    """``created``, ``triggered``, ``reset``, ``deleted`` or ``limit_updated`` in the spec."""
    order_group_id: str
    ts_ms: int
    contracts_limit_fp: Decimal | None = None


class OrderGroupUpdatesFrame(_Frame, tag="order_group_updates"):
    sid: Sid
    seq: Seq
    msg: OrderGroupUpdate


class OtherFrame(msgspec.Struct, frozen=True):
    """A frame of a type this module does not know, kept as it came.

    Read rather than refused: the full API has many more frame types (market data, lifecycle,
    communications) and Kalshi adds more, and one unknown frame must not end the connection
    that carries every order update; the reader skips it (and may log its ``type``)."""

    type: str
    raw: bytes


Frame: TypeAlias = (
    SubscribedFrame
    | UnsubscribedFrame
    | OkFrame
    | ErrorFrame
    | UserOrderFrame
    | FillFrame
    | MarketPositionFrame
    | OrderGroupUpdatesFrame
)
_KNOWN = frozenset(kind.__struct_config__.tag for kind in get_args(Frame))


class _Head(msgspec.Struct):
    type: str


_decoder = msgspec.json.Decoder(Frame)
_head_decoder = msgspec.json.Decoder(_Head)


def decode_frame(data: bytes | str) -> Frame | OtherFrame:
    """Read one text frame from the server.

    A frame of an unknown ``type`` is an :class:`OtherFrame`; a known one that does not fit its
    schema (or text that is not a JSON object with a string ``type``) raises
    :class:`~kalshi_router.errors.WireError` naming the field.
    """
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        # Only the failing frame pays for the second look at its type.
        try:
            kind = _head_decoder.decode(data).type
        except msgspec.DecodeError:
            kind = None
        if kind is not None and kind not in _KNOWN:
            raw = data.encode() if isinstance(data, str) else bytes(data)
            return OtherFrame(kind, raw)
        raise WireError(f"WebSocket frame{f' {kind!r}' if kind else ''}: {exc}") from None
