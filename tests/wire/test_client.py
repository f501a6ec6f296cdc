"""The exchange client's reads (wire.client): the query each one sends, and what it makes of
the answer, on a scripted transport."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from kalshi_router.errors import ExchangeError, WireError
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.http import Response
from kalshi_router.wire.v2 import V2Dialect
from tests.wire.test_fills import documented


class Transport:
    """Answers every request with ``status`` and ``body``; records what was asked."""

    def __init__(self, body: Any, status: int = 200) -> None:
        self.body = msgspec.json.encode(body)
        self.status = status
        self.asked: list[tuple[str, str, dict[str, str]]] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Response:
        self.asked.append((method, path, dict(params or {})))
        return Response(self.status, self.body, None)

    async def close(self) -> None:
        pass


def client(body: Any, status: int = 200) -> tuple[ExchangeClient, Transport]:
    transport = Transport(body, status)
    return ExchangeClient(transport, V2Dialect()), transport


def an_order(**changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "order_id": "o-1",
        "user_id": "u-1",
        "client_order_id": "c-1",
        "ticker": "KXT",
        "outcome_side": "yes",
        "book_side": "bid",
        "type": "limit",
        "status": "executed",
        "yes_price_dollars": "0.5600",
        "no_price_dollars": "0.4400",
        "fill_count_fp": "2.00",
        "remaining_count_fp": "0.00",
        "initial_count_fp": "2.00",
        "taker_fees_dollars": "0.0400",
        "maker_fees_dollars": "0.0000",
        "taker_fill_cost_dollars": "1.120000",
        "maker_fill_cost_dollars": "0.0000",
        "expiration_time": None,
        "created_time": "2026-01-01T00:00:00Z",
        "last_update_time": "2026-01-01T00:00:01Z",
        "order_group_id": "g-1",
        "self_trade_prevention_type": "taker_at_cross",
        "cancel_order_on_pause": False,
        "subaccount_number": 0,
        "exchange_index": 0,
    }
    order.update(changes)
    return order


async def test_get_fills_asks_one_page_with_only_the_filters_given() -> None:
    exchange, transport = client({"fills": [documented()], "cursor": "c2"})
    page = await exchange.get_fills()
    assert transport.asked == [("GET", "/portfolio/fills", {"limit": "1000"})]
    assert (page.cursor, page.fills[0].trade_id) == ("c2", "t-1")
    await exchange.get_fills(
        ticker="KXT", order_id="o-1", min_ts=10, max_ts=20, cursor="c2", limit=5
    )
    assert transport.asked[-1][2] == {
        "limit": "5",
        "ticker": "KXT",
        "order_id": "o-1",
        "min_ts": "10",
        "max_ts": "20",
        "cursor": "c2",
    }
    await exchange.get_fills(cursor="")  # the first page again
    assert transport.asked[-1][2] == {"limit": "1000"}


async def test_get_orders_takes_status_max_ts_and_event_tickers() -> None:
    exchange, transport = client({"orders": [an_order()], "cursor": ""})
    page = await exchange.get_orders(
        status="resting", event_ticker="EV-1,EV-2", min_ts=1, max_ts=2, ticker="KXT"
    )
    assert transport.asked == [
        (
            "GET",
            "/portfolio/orders",
            {
                "limit": "1000",
                "ticker": "KXT",
                "event_ticker": "EV-1,EV-2",
                "status": "resting",
                "min_ts": "1",
                "max_ts": "2",
            },
        )
    ]
    (order,) = page.orders
    assert (order.taker_fees_dollars, order.maker_fees_dollars) == (Decimal("0.04"), Decimal(0))
    assert (order.taker_fill_cost_dollars, order.maker_fill_cost_dollars) == (
        Decimal("1.12"),
        Decimal(0),
    )
    assert (order.last_update_time, order.order_group_id, order.expiration_time) == (
        "2026-01-01T00:00:01Z",
        "g-1",
        None,
    )


async def test_an_order_without_the_money_fields_reads_as_zero() -> None:
    bare = {
        k: v
        for k, v in an_order().items()
        if not k.endswith(("_fees_dollars", "_cost_dollars", "_time")) and k != "order_group_id"
    }
    exchange, _ = client({"order": bare})
    order = await exchange.get_order("o-1")
    assert order is not None
    assert (order.taker_fees_dollars, order.maker_fill_cost_dollars) == (Decimal(0), Decimal(0))
    assert (order.last_update_time, order.order_group_id) == (None, None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"fills": [documented(), documented(count_fp="NaN")], "cursor": ""},
            "count_fp must be a finite number >= 0, got NaN - at `$.fills[1]`",
        ),
        (
            {"fills": [documented(fee_cost="-Infinity")], "cursor": ""},
            "fee_cost must be a finite number, got -Infinity - at `$.fills[0]`",
        ),
        ({"cursor": ""}, "missing required field `fills`"),
    ],
)
async def test_an_impossible_fill_makes_the_page_unreadable(body: Any, message: str) -> None:
    exchange, _ = client(body)
    with pytest.raises(WireError, match="unreadable answer") as info:
        await exchange.get_fills()
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("taker_fees_dollars", "NaN"),
        ("maker_fill_cost_dollars", "Infinity"),
        ("fill_count_fp", "-2"),
    ],
)
async def test_an_impossible_order_makes_the_page_unreadable(field: str, value: str) -> None:
    exchange, _ = client({"orders": [an_order(**{field: value})], "cursor": ""})
    with pytest.raises(WireError, match=rf"{field} must be a finite number.*\$\.orders\[0\]"):
        await exchange.get_orders()


async def test_a_refused_read_is_an_exchange_error() -> None:
    body = {"error": {"code": "invalid_parameters", "message": "bad", "details": "limit"}}
    exchange, _ = client(body, 400)
    with pytest.raises(ExchangeError) as info:
        await exchange.get_fills(limit=0)
    assert (info.value.status, info.value.code, info.value.details) == (
        400,
        "invalid_parameters",
        "limit",
    )
