"""``GET /portfolio/positions`` (wire.positions and ``ExchangeClient.get_positions``): Kalshi's
documented ``GetPositionsResponse`` (spec 3.34.0) decoded, what may be absent, the values
refused with an error naming the field, the query sent, and the simulator's answer read back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from kalshi_router import OrderIntent
from kalshi_router.errors import ExchangeError, WireError
from kalshi_router.sim import SimConfig
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.positions import GetPositionsResponse
from tests.integration.conftest import make_signer, running_sim
from tests.wire.test_client import client

_page = msgspec.json.Decoder(GetPositionsResponse)


def market(**changes: Any) -> dict[str, Any]:
    """A market position with every field of the Get Positions page (spec 3.34.0)."""
    position: dict[str, Any] = {
        "ticker": "KXT-26-A",
        "exchange_index": 2,
        "total_traded_dollars": "7.700000",
        "position_fp": "-6.00",
        "market_exposure_dollars": "3.3000",
        "realized_pnl_dollars": "-0.4000",
        "fees_paid_dollars": "0.3300",
        "last_updated_ts": "2026-01-01T00:00:01.25Z",
    }
    position.update(changes)
    return {key: value for key, value in position.items() if value is not None}


def event(**changes: Any) -> dict[str, Any]:
    position: dict[str, Any] = {
        "event_ticker": "KXT-26",
        "total_cost_dollars": "7.70",
        "total_cost_shares_fp": "14.00",
        "event_exposure_dollars": "3.30",
        "realized_pnl_dollars": "-0.40",
        "fees_paid_dollars": "0.33",
    }
    position.update(changes)
    return position


def decode(*markets: dict[str, Any], **body: Any) -> GetPositionsResponse:
    return _page.decode(msgspec.json.encode({"market_positions": list(markets), **body}))


def test_a_documented_page_decodes_into_decimals_and_milliseconds() -> None:
    page = decode(market(), event_positions=[event()], cursor="c2")
    (position,) = page.market_positions
    assert (position.ticker, position.exchange_index) == ("KXT-26-A", 2)
    assert position.position_fp == Decimal(-6)
    assert (position.market_exposure_dollars, position.realized_pnl_dollars) == (
        Decimal("3.3"),
        Decimal("-0.4"),
    )
    assert (position.fees_paid_dollars, position.total_traded_dollars) == (
        Decimal("0.33"),
        Decimal("7.7"),
    )
    assert position.updated_ms == 1_767_225_601_250
    (whole,) = page.event_positions
    assert (whole.event_ticker, whole.total_cost_shares_fp) == ("KXT-26", Decimal(14))
    assert whole.realized_pnl_dollars == Decimal("-0.4")
    assert page.cursor == "c2"


def test_what_older_answers_lack_may_be_absent_and_unknown_fields_are_ignored() -> None:
    bare = market(
        exchange_index=None,
        last_updated_ts=None,
        resting_orders_count=3,
        position=-6,  # the legacy cents and counts sit beside the fixed-point ones
        market_exposure=330,
        invented={"nested": [1]},
    )
    page = decode(bare)
    (position,) = page.market_positions
    assert (position.exchange_index, position.last_updated_ts, position.updated_ms) == (
        None,
        None,
        None,
    )
    assert position.resting_orders_count == 3
    assert (page.event_positions, page.cursor) == ([], None)
    offset = decode(market(last_updated_ts="2026-01-01T01:00:01.25+01:00")).market_positions[0]
    assert offset.updated_ms == 1_767_225_601_250


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"position_fp": "NaN"}, "position_fp must be a finite number, got NaN"),
        ({"realized_pnl_dollars": "-Infinity"}, "realized_pnl_dollars must be a finite number"),
        ({"market_exposure_dollars": "-1"}, "market_exposure_dollars must be a finite number >= 0"),
        ({"fees_paid_dollars": "NaN"}, "fees_paid_dollars must be a finite number >= 0"),
        ({"total_traded_dollars": "-0.01"}, "total_traded_dollars must be a finite number >= 0"),
        ({"position_fp": "lots"}, "Invalid decimal string"),
        ({"position_fp": None}, "missing required field `position_fp`"),
        ({"ticker": None}, "missing required field `ticker`"),
        ({"last_updated_ts": "yesterday"}, "Invalid RFC3339 encoded datetime"),
        ({"last_updated_ts": "2026-01-01T00:00:01"}, "last_updated_ts must name its time zone"),
    ],
)
def test_bad_values_are_refused_naming_the_field_and_the_position(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        decode(market(), market(**changes))
    assert message in str(info.value)
    assert "$.market_positions[1]" in str(info.value)


def test_a_bad_event_position_is_refused_too() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"total_cost_shares_fp must be a finite"):
        decode(event_positions=[event(total_cost_shares_fp="-1")])


async def test_get_positions_asks_one_page_with_only_the_filters_given() -> None:
    exchange, transport = client({"market_positions": [market()], "event_positions": []})
    page = await exchange.get_positions()
    assert transport.asked == [("GET", "/portfolio/positions", {"limit": "1000"})]
    assert page.market_positions[0].ticker == "KXT-26-A"
    await exchange.get_positions(
        ticker="KXT-26-A",
        event_ticker="KXT-26",
        count_filter="position,total_traded",
        settlement_status="all",
        subaccount=0,
        exchange_index=2,
        cursor="c2",
        limit=5,
    )
    assert transport.asked[-1][2] == {
        "limit": "5",
        "ticker": "KXT-26-A",
        "event_ticker": "KXT-26",
        "count_filter": "position,total_traded",
        "settlement_status": "all",
        "subaccount": "0",
        "exchange_index": "2",
        "cursor": "c2",
    }


async def test_an_impossible_position_makes_the_page_unreadable() -> None:
    exchange, _ = client({"market_positions": [market(position_fp="Infinity")]})
    with pytest.raises(WireError, match=r"unreadable answer.*position_fp"):
        await exchange.get_positions()


async def test_an_error_answer_raises_with_its_code() -> None:
    body = {"error": {"code": "invalid_parameters", "message": "bad", "details": "limit"}}
    exchange, _ = client(body, status=400)
    with pytest.raises(ExchangeError) as info:
        await exchange.get_positions(limit=0)
    assert (info.value.status, info.value.code) == (400, "invalid_parameters")


async def test_the_simulators_answer_reads_back_page_by_page() -> None:
    async with running_sim(SimConfig(tier="premier")) as sim:
        transport = HttpTransport(sim.url, make_signer(), timeout_s=5.0, max_connections=2)
        exchange = ExchangeClient(transport, dialect_for("v2"))
        try:
            for ticker in ("KXW-26-A", "KXW-26-B", "KXW-27-A"):
                intent = OrderIntent.bid(ticker, price="0.60", count=2)
                await exchange.create_batch([intent])
            first = await exchange.get_positions(limit=2)
            rest = await exchange.get_positions(limit=2, cursor=first.cursor)
        finally:
            await transport.close()
    tickers = [p.ticker for p in first.market_positions + rest.market_positions]
    assert tickers == ["KXW-26-A", "KXW-26-B", "KXW-27-A"]
    assert first.cursor
    assert not rest.cursor
    assert {p.position_fp for p in first.market_positions} == {Decimal(2)}
    assert all(p.updated_ms is not None for p in first.market_positions)
    assert [e.event_ticker for e in first.event_positions] == ["KXW-26"]
    assert first.event_positions[0].total_cost_shares_fp == Decimal(4)
