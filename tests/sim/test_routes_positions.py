"""``GET /portfolio/positions`` on the simulator: Kalshi's documented shape (spec 3.34.0), the
numbers a series of trades leaves, agreement with the ``market_position`` frames and the fills,
paging, filters, refusals and cost."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from kalshi_router.sim.routes_reads import _encode_cursor
from tests.sim.conftest import MakeSim, Sim, TestKey, _forbid_unknown
from tests.sim.test_routes_reads import drain, fills
from tests.sim.test_ws import as_bob, connect

POSITIONS = "/portfolio/positions"
D = Decimal
_DOLLARS = {"type": "string", "pattern": r"^-?\d+\.\d{2,6}$"}
_COUNT = {"type": "string", "pattern": r"^-?\d+\.\d{2}$"}

# Kalshi's GetPositionsResponse from its Get Positions page (spec 3.34.0; the endpoint is not
# in the 3.31.0 extract), written out here with unknown fields refused.
_MARKET: dict[str, Any] = {
    "type": "object",
    "required": [
        "ticker",
        "exchange_index",
        "total_traded_dollars",
        "position_fp",
        "market_exposure_dollars",
        "realized_pnl_dollars",
        "fees_paid_dollars",
        "last_updated_ts",
    ],
    "properties": {
        "ticker": {"type": "string"},
        "exchange_index": {"type": "integer"},
        "total_traded_dollars": _DOLLARS,
        "position_fp": _COUNT,
        "market_exposure_dollars": _DOLLARS,
        "realized_pnl_dollars": _DOLLARS,
        "fees_paid_dollars": _DOLLARS,
        "last_updated_ts": {"type": "string", "format": "date-time"},
    },
}
_EVENT: dict[str, Any] = {
    "type": "object",
    "required": [
        "event_ticker",
        "total_cost_dollars",
        "total_cost_shares_fp",
        "event_exposure_dollars",
        "realized_pnl_dollars",
        "fees_paid_dollars",
    ],
    "properties": {
        "event_ticker": {"type": "string"},
        "total_cost_dollars": _DOLLARS,
        "total_cost_shares_fp": _COUNT,
        "event_exposure_dollars": _DOLLARS,
        "realized_pnl_dollars": _DOLLARS,
        "fees_paid_dollars": _DOLLARS,
    },
}
_PAGE: dict[str, Any] = _forbid_unknown(
    {
        "type": "object",
        "required": ["market_positions", "event_positions"],
        "properties": {
            "cursor": {"type": "string"},
            "market_positions": {"type": "array", "items": copy.deepcopy(_MARKET)},
            "event_positions": {"type": "array", "items": copy.deepcopy(_EVENT)},
        },
    }
)


async def page(sim: Sim, key: TestKey | None = None, /, **params: str) -> dict[str, Any]:
    status, body = await sim.call("GET", POSITIONS, params=params, key=key)
    assert status == 200, body
    OAS30Validator(_PAGE, format_checker=oas30_format_checker).validate(body)
    return body  # type: ignore[no-any-return]


async def markets(sim: Sim, key: TestKey | None = None, /, **params: str) -> list[dict[str, Any]]:
    """Every page's market positions."""
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        body = await page(sim, key, **params, **({"cursor": cursor} if cursor else {}))
        found += body["market_positions"]
        cursor = body["cursor"]
        if not cursor:
            return found


async def take(sim: Sim, ticker: str, side: str, count: str) -> None:
    """Alice trades ``count`` against the house at once: a bid at $0.55 buys YES, an ask at
    $0.45 sells it."""
    price = "0.55" if side == "bid" else "0.45"
    status, body = await sim.create(
        ticker=ticker, side=side, price=price, count=count, time_in_force="immediate_or_cancel"
    )
    assert status == 201, body


async def test_a_position_bought_then_partly_sold(sim: Sim) -> None:
    await take(sim, "KXONE-26-A", "bid", "10")  # 10 YES at $0.55: $5.50
    sim.clock.advance(1.25)
    await take(sim, "KXONE-26-A", "ask", "4")  # 4 sold at $0.45: NO bought at $0.55
    body = await page(sim)
    [market] = body["market_positions"]
    fees = sum(D(f["fee_cost"]) for f in await fills(sim))
    assert market["ticker"] == "KXONE-26-A"
    assert market["exchange_index"] == 0
    assert market["position_fp"] == "6.00"
    # Average cost: the 4 closed took 4/10 of $5.50, and paid $1 a pair less $0.55 each.
    assert D(market["market_exposure_dollars"]) == D("3.30")
    assert D(market["realized_pnl_dollars"]) == D("-0.40")
    assert D(market["total_traded_dollars"]) == D("7.70")
    assert D(market["fees_paid_dollars"]) == fees > 0
    assert market["last_updated_ts"] == "2026-01-01T00:00:01.25Z"
    # What the YES trades cost net ($5.50 - 4 x $0.45) is exposure less realized P&L.
    net = D(market["market_exposure_dollars"]) - D(market["realized_pnl_dollars"])
    assert net == D("5.50") - 4 * D("0.45")
    [event] = body["event_positions"]
    assert event["event_ticker"] == "KXONE-26"
    assert event["total_cost_shares_fp"] == "14.00"
    assert D(event["event_exposure_dollars"]) == D("3.30")
    assert D(event["total_cost_dollars"]) == D("7.70")
    assert body["cursor"] == ""


async def test_the_same_numbers_as_the_market_position_frames(sim: Sim, ed_key: TestKey) -> None:
    ws = await connect(sim)
    await ws.subscribe("market_positions")
    await take(sim, "KXONE-26-A", "bid", "3")
    await take(sim, "KXONE-26-A", "ask", "5")  # through zero: short 2
    await take(sim, "KXONE-26-B", "ask", "2.5")
    await take(sim, "KXONE-26-B", "bid", "1")
    _, rest = await sim.create("maker", ticker="KXTWO-26-A", side="ask", price="0.50", count="3")
    await as_bob(sim, ed_key, "bob", ticker="KXTWO-26-A", price="0.50", count="2")
    assert rest["order_id"]
    frames = {f["msg"]["market_ticker"]: f["msg"] for f in await drain(ws)}
    listed = {m["ticker"]: m for m in await markets(sim)}
    assert sorted(listed) == sorted(frames) == ["KXONE-26-A", "KXONE-26-B", "KXTWO-26-A"]
    for ticker, market in listed.items():
        frame = frames[ticker]
        assert market["position_fp"] == frame["position_fp"], ticker
        assert D(market["market_exposure_dollars"]) == D(frame["position_cost_dollars"]), ticker
        assert D(market["realized_pnl_dollars"]) == D(frame["realized_pnl_dollars"]), ticker
        assert D(market["fees_paid_dollars"]) == D(frame["fees_paid_dollars"]), ticker
    assert [listed[t]["position_fp"] for t in sorted(listed)] == ["-2.00", "-1.50", "-2.00"]
    events = {e["event_ticker"]: e for e in (await page(sim))["event_positions"]}
    volumes = [D(frames[t]["volume_fp"]) for t in ("KXONE-26-A", "KXONE-26-B")]
    assert D(events["KXONE-26"]["total_cost_shares_fp"]) == sum(volumes)
    assert events["KXTWO-26"]["total_cost_shares_fp"] == frames["KXTWO-26-A"]["volume_fp"]
    # Bob sees his own side only.
    [bobs] = await markets(sim, ed_key)
    assert (bobs["ticker"], bobs["position_fp"]) == ("KXTWO-26-A", "2.00")


async def test_pages_and_filters(sim: Sim) -> None:
    for ticker in ("KXONE-26-A", "KXONE-26-B", "KXTWO-26-A"):
        await take(sim, ticker, "bid", "2")
    await take(sim, "KXONE-26-B", "ask", "2")  # closed out: position 0, still traded
    await sim.create("resting-only", ticker="KXTHREE-26-A", price="0.10")

    async def tickers(**params: str) -> list[str]:
        return [m["ticker"] for m in await markets(sim, **params)]

    everything = ["KXONE-26-A", "KXONE-26-B", "KXTWO-26-A"]
    assert await tickers() == everything
    assert await tickers(limit="1") == everything
    first = await page(sim, limit="2")
    assert [m["ticker"] for m in first["market_positions"]] == everything[:2]
    assert [e["event_ticker"] for e in first["event_positions"]] == ["KXONE-26"]
    assert first["cursor"]
    assert await tickers(count_filter="position") == ["KXONE-26-A", "KXTWO-26-A"]
    assert await tickers(count_filter="total_traded") == everything
    assert await tickers(count_filter="position,total_traded") == everything
    assert await tickers(ticker="KXONE-26-B") == ["KXONE-26-B"]
    assert await tickers(event_ticker="KXONE-26") == ["KXONE-26-A", "KXONE-26-B"]
    assert await tickers(settlement_status="unsettled") == everything
    assert await tickers(settlement_status="all") == everything
    assert await tickers(settlement_status="settled") == []
    assert await tickers(subaccount="0") == await tickers(subaccount="7") == everything
    assert await tickers(exchange_index="0") == everything
    assert await tickers(exchange_index="1") == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"cursor": "garbage!"},
        {"cursor": _encode_cursor(3)},  # GET /portfolio/orders's
        {"count_filter": "position,volume"},
        {"settlement_status": "open"},
        {"event_ticker": "KXONE-26,KXTWO-26"},
        {"subaccount": "64"},
        {"exchange_index": "-1"},
    ],
)
async def test_bad_queries_are_refused(sim: Sim, params: dict[str, str]) -> None:
    status, body = await sim.call("GET", POSITIONS, params=params)
    assert (status, body["error"]["code"]) == (400, "invalid_parameters")
    assert body["error"]["details"].startswith(next(iter(params)))


async def test_signed_and_paid_from_the_read_bucket(make_sim: MakeSim) -> None:
    sim = await make_sim(read_capacity=25, read_refill=1)
    status, body = await sim.call("GET", POSITIONS, signed=False)
    assert (status, body["error"]["code"]) == (401, "authentication_error")
    spent = sim.state.stats.tokens_spent
    for expected in (200, 200, 429):
        status, _ = await sim.call("GET", POSITIONS)
        assert status == expected
    assert spent == {"read": 20, "write": 0}
