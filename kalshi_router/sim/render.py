"""Integers back to Kalshi's strings, engine orders and fills to Kalshi's ``Order`` and
``Fill``, and the responses that carry them.

Units: prices in $0.0001, counts in 0.01 contract, money in micro-dollars. Integer arithmetic
only: no float ever touches a price, a count or an amount.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from aiohttp import web
from msgspec import UNSET

from kalshi_router.sim.book import OrderRejected, SimFill, SimOrder
from kalshi_router.sim.schema import (
    RATE_LIMIT_BODY,
    ErrorBody,
    ErrorEnvelope,
    FillOut,
    OrderOut,
)
from kalshi_router.sim.validate import SimError

_PRICE_ONE = 10_000


def count_str(count: int) -> str:
    """FixedPointCount: always two decimals ("10.00"); signed for positions ("-1.50")."""
    whole, frac = divmod(abs(count), 100)
    return f"{'-' if count < 0 else ''}{whole}.{frac:02d}"


def price_str(price: int) -> str:
    """A price as FixedPointDollars with four decimals ("0.5600")."""
    whole, frac = divmod(price, _PRICE_ONE)
    return f"{whole}.{frac:04d}"


def money_str(micros: int) -> str:
    """Micro-dollars as FixedPointDollars: at least four decimals, at most six ("0.0012")."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    return f"{sign}{whole}.{f'{frac:06d}'.rstrip('0').ljust(4, '0')}"


def optional_money(micros: int | None) -> str | None:
    """``money_str`` that passes ``None`` through (averages exist only after a fill)."""
    return None if micros is None else money_str(micros)


def rfc3339_ms(ts_ms: int) -> str:
    """Epoch milliseconds as Go's RFC3339Nano prints them: UTC, trailing zeros dropped."""
    seconds, millis = divmod(ts_ms, 1000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{millis:03d}".rstrip("0")
    return f"{stamp}.{frac}Z" if frac else f"{stamp}Z"


def order_out(order: SimOrder) -> OrderOut:
    """The spec's ``Order`` for an engine order."""
    expiration = order.expiration_time
    return OrderOut(
        order_id=order.order_id,
        user_id=order.user_id,
        # Order.client_order_id is a required, non-nullable string: "" when none was given.
        client_order_id=order.client_order_id or "",
        ticker=order.ticker,
        outcome_side="yes" if order.side == "bid" else "no",
        book_side=order.side,
        type="limit",
        status=order.status,
        yes_price_dollars=price_str(order.price),
        no_price_dollars=price_str(_PRICE_ONE - order.price),
        fill_count_fp=count_str(order.fill_count),
        remaining_count_fp=count_str(order.remaining_count),
        initial_count_fp=count_str(order.initial_count),
        taker_fees_dollars=money_str(order.taker_fees),
        maker_fees_dollars=money_str(order.maker_fees),
        taker_fill_cost_dollars=money_str(order.taker_fill_cost),
        maker_fill_cost_dollars=money_str(order.maker_fill_cost),
        expiration_time=None if expiration is None else rfc3339_ms(expiration * 1000),
        created_time=rfc3339_ms(order.created_ts_ms),
        last_update_time=rfc3339_ms(order.last_update_ts_ms),
        self_trade_prevention_type=order.stp,
        order_group_id=order.order_group_id,
        cancel_order_on_pause=order.cancel_order_on_pause,
        subaccount_number=order.subaccount,
        exchange_index=order.exchange_index,
    )


def fill_out(fill: SimFill) -> FillOut:
    """The Get Fills page's ``Fill`` for one side of one trade.

    Sim assumption: a fill's id is its trade id (the page: ``trade_id`` is the "legacy field
    name, same as fill_id"); the maker's and the taker's fill share it, as on the WebSocket.
    """
    outcome: Literal["yes", "no"] = "yes" if fill.side == "bid" else "no"
    return FillOut(
        fill_id=fill.trade_id,
        exchange_index=fill.exchange_index,
        trade_id=fill.trade_id,
        order_id=fill.order_id,
        client_order_id=fill.client_order_id or UNSET,
        ticker=fill.ticker,
        market_ticker=fill.ticker,
        outcome_side=outcome,
        book_side=fill.side,
        count_fp=count_str(fill.qty),
        yes_price_dollars=price_str(fill.price),
        no_price_dollars=price_str(_PRICE_ONE - fill.price),
        is_taker=fill.is_taker,
        fee_cost=money_str(fill.fee),
        created_time=rfc3339_ms(fill.ts_ms),
        subaccount_number=fill.subaccount,
        ts=fill.ts_ms // 1000,
    )


_encoder = msgspec.json.Encoder()


def json_response(obj: Any, status: int = 200) -> web.Response:
    """Encode ``obj`` (a Struct, or plain data) with the shared encoder."""
    return web.Response(body=_encoder.encode(obj), status=status, content_type="application/json")


def error_response(status: int, code: str, message: str, details: str) -> web.Response:
    """Kalshi's wrapped error body, ``{"error": {code, message, details}}``."""
    return json_response(
        ErrorEnvelope(error=ErrorBody(code=code, message=message, details=details)), status
    )


def rejection_response(exc: SimError | OrderRejected) -> web.Response:
    """A whole-request rejection from validation or the engine."""
    status = exc.status if isinstance(exc, SimError) else exc.http_status
    return error_response(status, exc.code, exc.message, exc.details)


def rate_limited_response() -> web.Response:
    """429 with Kalshi's bare-string body and, as documented, no Retry-After header."""
    return web.Response(body=RATE_LIMIT_BODY, status=429, content_type="application/json")
