"""One fill as a bot receives it, whichever way it was learnt: the WebSocket's ``fill`` frame or
a ``GET /portfolio/fills`` page."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from kalshi_router.wire.fills import RestFill
from kalshi_router.wire.ws_models import Fill


class FillEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One side of one trade, counted once (by ``trade_id``). ``book_side`` is on the YES
    book: a ``bid`` fill bought ``count`` YES contracts at ``yes_price``, an ``ask`` sold them."""

    trade_id: str
    order_id: str
    client_order_id: str | None
    ticker: str
    book_side: Literal["bid", "ask"]
    yes_price: Decimal
    count: Decimal
    fee: Decimal
    is_taker: bool
    ts_ms: int


def fill_event(fill: Fill) -> FillEvent:
    """The feed's ``fill`` frame as a :class:`FillEvent` (an empty client_order_id is none)."""
    return FillEvent(
        trade_id=fill.trade_id,
        order_id=fill.order_id,
        client_order_id=fill.client_order_id or None,
        ticker=fill.market_ticker,
        book_side=fill.book_side,
        yes_price=fill.yes_price_dollars,
        count=fill.count_fp,
        fee=fill.fee_cost,
        is_taker=fill.is_taker,
        ts_ms=fill.ts_ms,
    )


def rest_fill_event(fill: RestFill, fallback_ts_ms: int) -> FillEvent:
    """A fill ``GET /portfolio/fills`` listed, as a :class:`FillEvent`; ``fallback_ts_ms`` when
    the answer gives no time (the two sides of one fill compare by ``trade_id``, not time)."""
    ts_ms = fill.ts_ms
    return FillEvent(
        trade_id=fill.trade_id,
        order_id=fill.order_id,
        client_order_id=fill.client_order_id or None,
        ticker=fill.market_ticker,
        book_side=fill.book_side,
        yes_price=fill.yes_price_dollars,
        count=fill.count_fp,
        fee=fill.fee_cost,
        is_taker=fill.is_taker,
        ts_ms=fallback_ts_ms if ts_ms is None else ts_ms,
    )
