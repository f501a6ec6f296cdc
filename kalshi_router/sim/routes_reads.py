"""Handlers for the read endpoints: ``GET /portfolio/orders`` (paged), one order by id, and
``GET /portfolio/fills`` (paged)."""

from __future__ import annotations

import base64
import binascii
import itertools

from aiohttp import web

from kalshi_router.sim import render, validate
from kalshi_router.sim.book import Status
from kalshi_router.sim.render import json_response
from kalshi_router.sim.routes_v2 import owned, subaccount_query
from kalshi_router.sim.schema import GetFillsResponse, GetOrderResponse, GetOrdersResponse
from kalshi_router.sim.state import Call
from kalshi_router.sim.validate import invalid

_STATUSES: dict[str, Status] = {
    "resting": "resting",
    "canceled": "canceled",
    "executed": "executed",
}
_MAX_EVENT_TICKERS = 10
_MAX_FILL_TICKERS = 100


def _encode_cursor(seq: int, kind: str = "seq") -> str:
    return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode()


def _decode_cursor(cursor: str, kind: str = "seq") -> int:
    """The sequence number a page ends at; a cursor of another endpoint is refused."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid("cursor: not a cursor this server issued") from None
    found, _, seq = text.partition(":")
    if found != kind or not seq.isdigit():
        raise invalid("cursor: not a cursor this server issued")
    return int(seq)


def event_of(ticker: str) -> str:
    # Sim assumption: a market's event is its ticker up to the last "-"
    # (HIGHNY-24JAN01-T60 belongs to HIGHNY-24JAN01).
    return ticker.rpartition("-")[0] or ticker


async def get_orders(call: Call) -> web.Response:
    """GET /portfolio/orders: newest first, paged by an opaque cursor.

    Sim assumption: unknown query parameters are ignored, as Go handlers do.
    """
    call.spend()
    query = call.request.query
    raw_status = query.get("status")
    status = None if raw_status is None else _STATUSES.get(raw_status)
    if raw_status is not None and status is None:
        raise invalid(f"status: {raw_status!r} is not one of resting, canceled, executed")
    # MinTsQuery/MaxTsQuery are Unix seconds; sim assumption: both bounds are inclusive.
    min_ts = validate.query_int(query, "min_ts", low=0)
    max_ts = validate.query_int(query, "max_ts", low=0)
    limit = validate.query_int(query, "limit", low=1, high=1000) or 100
    shard = validate.query_int(query, "exchange_index", low=0)
    events = [e for e in query.get("event_ticker", "").split(",") if e]
    if len(events) > _MAX_EVENT_TICKERS:
        raise invalid(f"event_ticker: at most {_MAX_EVENT_TICKERS} event tickers")
    cursor = query.get("cursor", "")
    after_seq = _decode_cursor(cursor) if cursor else None
    found = call.exchange.orders(
        call.user_id,
        ticker=query.get("ticker") or None,
        status=status,
        min_ts_ms=None if min_ts is None else min_ts * 1000,
        max_ts_ms=None if max_ts is None else max_ts * 1000 + 999,
        subaccount=subaccount_query(call),
    )
    selected = [
        o
        for o in found
        if (after_seq is None or o.seq < after_seq)
        and (not events or event_of(o.ticker) in events)
        and (shard is None or o.exchange_index == shard)
    ]
    page = selected[:limit]
    next_cursor = _encode_cursor(page[-1].seq) if len(selected) > limit else ""
    return json_response(
        GetOrdersResponse(orders=[render.order_out(o) for o in page], cursor=next_cursor)
    )


async def get_order(call: Call) -> web.Response:
    """GET /portfolio/orders/{order_id}: the caller's order or 404."""
    call.spend()
    order = owned(call, call.request.match_info["order_id"], None)
    return json_response(GetOrderResponse(order=render.order_out(order)))


async def get_fills(call: Call) -> web.Response:
    """GET /portfolio/fills: the caller's fills newest first, paged by an opaque cursor.

    Sim assumptions: ``ticker`` takes one market or a comma-separated list of up to 100 (the
    changelog says Get Fills takes up to 100 tickers, not in what form); ``min_ts`` and
    ``max_ts`` are Unix seconds, both inclusive, on the fill's time.
    """
    call.spend()
    query = call.request.query
    tickers = [t for t in query.get("ticker", "").split(",") if t]
    if len(tickers) > _MAX_FILL_TICKERS:
        raise invalid(f"ticker: at most {_MAX_FILL_TICKERS} tickers")
    min_ts = validate.query_int(query, "min_ts", low=0)
    max_ts = validate.query_int(query, "max_ts", low=0)
    limit = validate.query_int(query, "limit", low=1, high=1000) or 100
    shard = validate.query_int(query, "exchange_index", low=0)
    cursor = query.get("cursor", "")
    found = call.exchange.fills(
        call.user_id,
        before_seq=_decode_cursor(cursor, "fill") if cursor else None,
        tickers=frozenset(tickers),
        order_id=query.get("order_id") or None,
        min_ts_ms=None if min_ts is None else min_ts * 1000,
        max_ts_ms=None if max_ts is None else max_ts * 1000 + 999,
        subaccount=subaccount_query(call),
    )
    # One more than a page says whether another page follows.
    selected = list(
        itertools.islice(
            (f for f in found if shard is None or f.exchange_index == shard), limit + 1
        )
    )
    page = selected[:limit]
    next_cursor = _encode_cursor(page[-1].seq, "fill") if len(selected) > limit else ""
    return json_response(
        GetFillsResponse(fills=[render.fill_out(f) for f in page], cursor=next_cursor)
    )
