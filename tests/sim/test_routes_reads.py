"""The simulator's read endpoints that reconciliation leans on: ``GET /portfolio/fills`` (shape,
paging, filters, cost, and agreement with the WebSocket's fill frames) and the money and status
of ``GET /portfolio/orders``."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from kalshi_router.sim.routes_reads import _encode_cursor
from tests.sim.conftest import MakeSim, Sim, SpecChecker, TestKey, _forbid_unknown
from tests.sim.test_ws import Ws, as_bob, connect

FILLS = "/portfolio/fills"
BATCH = "/portfolio/events/orders/batched"
D = Decimal

# Kalshi's ``Fill`` from its Get Fills page (spec 3.29.0; the endpoint is not in the 3.31.0
# extract), plus ``client_order_id`` from the page of 3.15.0. Written out here, so unknown
# fields are refused as the extract's checks refuse them.
_FILL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "fill_id",
        "exchange_index",
        "trade_id",
        "order_id",
        "ticker",
        "market_ticker",
        "outcome_side",
        "book_side",
        "count_fp",
        "yes_price_dollars",
        "no_price_dollars",
        "is_taker",
        "fee_cost",
    ],
    "properties": {
        "fill_id": {"type": "string"},
        "exchange_index": {"type": "integer"},
        "trade_id": {"type": "string"},
        "order_id": {"type": "string"},
        "client_order_id": {"type": "string"},
        "ticker": {"type": "string"},
        "market_ticker": {"type": "string"},
        "side": {"type": "string", "enum": ["yes", "no"]},
        "action": {"type": "string", "enum": ["buy", "sell"]},
        "outcome_side": {"type": "string", "enum": ["yes", "no"]},
        "book_side": {"type": "string", "enum": ["bid", "ask"]},
        "count_fp": {"type": "string", "pattern": r"^\d+\.\d{2}$"},
        "yes_price_dollars": {"type": "string", "pattern": r"^\d+\.\d{2,6}$"},
        "no_price_dollars": {"type": "string", "pattern": r"^\d+\.\d{2,6}$"},
        "is_taker": {"type": "boolean"},
        "created_time": {"type": "string", "format": "date-time"},
        "fee_cost": {"type": "string", "pattern": r"^\d+\.\d{2,6}$"},
        "subaccount_number": {"type": "integer", "nullable": True},
        "ts": {"type": "integer", "format": "int64"},
    },
}
_PAGE_SCHEMA: dict[str, Any] = _forbid_unknown(
    {
        "type": "object",
        "required": ["fills", "cursor"],
        "properties": {
            "fills": {"type": "array", "items": copy.deepcopy(_FILL_SCHEMA)},
            "cursor": {"type": "string"},
        },
    }
)


def check_page(body: Any) -> None:
    OAS30Validator(_PAGE_SCHEMA, format_checker=oas30_format_checker).validate(body)


async def fills(sim: Sim, key: TestKey | None = None, /, **params: str) -> list[dict[str, Any]]:
    """Every page of the caller's fills, each page checked against the schema."""
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        status, body = await sim.call("GET", FILLS, params=query, key=key)
        assert status == 200, body
        check_page(body)
        found += body["fills"]
        cursor = body["cursor"]
        if not cursor:
            return found


async def trades(sim: Sim, bob: TestKey) -> dict[str, str]:
    """Alice sweeps three house ask levels ($0.55, $0.56, $0.57) with one order, then takes part of
    an ask Bob rests at $0.50; the order ids by client_order_id."""
    ids: dict[str, str] = {}
    _, body = await sim.create("sweep", price="0.57", count="250", time_in_force="fill_or_kill")
    ids["sweep"] = body["order_id"]
    _, body = await as_bob(sim, bob, "bobs-ask", side="ask", price="0.50", count="3")
    ids["bobs-ask"] = body["order_id"]
    sim.clock.advance(2)
    _, body = await sim.create("lift", price="0.50", count="2")
    ids["lift"] = body["order_id"]
    return ids


async def test_fills_fit_kalshis_fill_and_say_what_traded(sim: Sim, ed_key: TestKey) -> None:
    ids = await trades(sim, ed_key)
    alice = await fills(sim)
    assert [(f["order_id"], f["yes_price_dollars"], f["count_fp"]) for f in alice] == [
        (ids["lift"], "0.5000", "2.00"),
        (ids["sweep"], "0.5700", "50.00"),
        (ids["sweep"], "0.5600", "100.00"),
        (ids["sweep"], "0.5500", "100.00"),
    ]
    lift = alice[0]
    assert lift["fill_id"] == lift["trade_id"]
    assert (lift["ticker"], lift["market_ticker"]) == ("SIM-MKT", "SIM-MKT")
    assert (lift["book_side"], lift["outcome_side"], lift["no_price_dollars"]) == (
        "bid",
        "yes",
        "0.5000",
    )
    assert (lift["is_taker"], lift["fee_cost"], lift["client_order_id"]) == (True, "0.0400", "lift")
    assert (lift["ts"], lift["created_time"]) == (sim.clock() // 1000, "2026-01-01T00:00:02Z")
    (bobs,) = await fills(sim, ed_key)
    assert bobs["trade_id"] == lift["trade_id"]
    assert (bobs["order_id"], bobs["is_taker"], bobs["fee_cost"]) == (
        ids["bobs-ask"],
        False,
        "0.0000",
    )
    assert (bobs["book_side"], bobs["outcome_side"]) == ("ask", "no")


async def test_orders_carry_the_sum_of_their_fills(
    sim: Sim, ed_key: TestKey, spec: SpecChecker
) -> None:
    await trades(sim, ed_key)
    for key in (sim.key, ed_key):
        listed = await fills(sim, key)
        status, body = await sim.call("GET", "/portfolio/orders", key=key)
        assert status == 200
        spec.check_operation("/portfolio/orders", "GET", 200, body)
        for placed in body["orders"]:
            status, one = await sim.call("GET", f"/portfolio/orders/{placed['order_id']}", key=key)
            assert (status, one["order"]) == (200, placed)
            mine = [f for f in listed if f["order_id"] == placed["order_id"]]
            taker = [f for f in mine if f["is_taker"]]
            maker = [f for f in mine if not f["is_taker"]]
            assert D(placed["taker_fees_dollars"]) == sum(D(f["fee_cost"]) for f in taker)
            assert D(placed["maker_fees_dollars"]) == sum(D(f["fee_cost"]) for f in maker)
            for side, group in (("taker", taker), ("maker", maker)):
                cost = sum(D(f["count_fp"]) * D(f["yes_price_dollars"]) for f in group)
                assert D(placed[f"{side}_fill_cost_dollars"]) == cost
            assert D(placed["fill_count_fp"]) == sum(D(f["count_fp"]) for f in mine)
    status, body = await sim.call("GET", "/portfolio/orders")
    sweep = next(o for o in body["orders"] if o["client_order_id"] == "sweep")
    # $1.74 + $1.73 + $0.86 on 100, 100 and 50 contracts; $55 + $56 + $28.50 of YES.
    assert (sweep["taker_fees_dollars"], sweep["taker_fill_cost_dollars"]) == ("4.3300", "139.5000")


async def test_get_orders_by_status(sim: Sim, ed_key: TestKey) -> None:
    await trades(sim, ed_key)
    await sim.create("resting", price="0.20")
    _, gone = await sim.create("gone", price="0.21")
    await sim.call("DELETE", f"/portfolio/events/orders/{gone['order_id']}")

    async def by_status(status: str) -> list[str]:
        code, body = await sim.call("GET", "/portfolio/orders", params={"status": status})
        assert code == 200, body
        assert {o["status"] for o in body["orders"]} <= {status}
        return [o["client_order_id"] for o in body["orders"]]

    assert await by_status("resting") == ["resting"]
    assert await by_status("canceled") == ["gone"]
    assert await by_status("executed") == ["lift", "sweep"]


async def test_pages_are_stable_while_new_fills_arrive(sim: Sim) -> None:
    for n in range(5):
        await sim.create(f"t{n}", price="0.55", count="0.1", time_in_force="immediate_or_cancel")
    status, first = await sim.call("GET", FILLS, params={"limit": "2"})
    assert status == 200
    await sim.create("late", price="0.55", count="0.1", time_in_force="immediate_or_cancel")
    rest = await fills(sim, limit="2", cursor=first["cursor"])
    seen = [f["client_order_id"] for f in first["fills"] + rest]
    assert seen == ["t4", "t3", "t2", "t1", "t0"]
    everything = [f["client_order_id"] for f in await fills(sim, limit="1000")]
    assert everything == ["late", *seen]


async def test_filters(sim: Sim, ed_key: TestKey) -> None:
    start_s = sim.clock() // 1000
    _, early = await sim.create("early", ticker="EV-A", price="0.55", time_in_force="fill_or_kill")
    sim.clock.advance(5)
    await sim.create("late", ticker="EV-B", price="0.55", time_in_force="fill_or_kill")
    await sim.create("sub", ticker="EV-C", price="0.55", subaccount=3, time_in_force="fill_or_kill")
    await as_bob(sim, ed_key, "bobs", ticker="EV-A", price="0.55", time_in_force="fill_or_kill")

    async def coids(**params: str) -> list[str]:
        return [f["client_order_id"] for f in await fills(sim, **params)]

    assert await coids() == ["sub", "late", "early"]
    assert await coids(ticker="EV-A") == ["early"]
    assert await coids(ticker="EV-A,EV-B") == ["late", "early"]
    assert await coids(order_id=early["order_id"]) == ["early"]
    assert await coids(min_ts=str(start_s + 1)) == ["sub", "late"]
    assert await coids(max_ts=str(start_s)) == ["early"]
    assert await coids(min_ts=str(start_s + 5), max_ts=str(start_s + 5)) == ["sub", "late"]
    assert await coids(subaccount="3") == ["sub"]
    assert await coids(exchange_index="0") == ["sub", "late", "early"]
    assert await coids(exchange_index="1") == []
    assert [f["client_order_id"] for f in await fills(sim, ed_key)] == ["bobs"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"min_ts": "soon"},
        {"max_ts": "-1"},
        {"cursor": "garbage!"},
        {"cursor": _encode_cursor(3)},  # GET /portfolio/orders's
        {"subaccount": "64"},
        {"exchange_index": "-1"},
        {"ticker": ",".join(f"T{i}" for i in range(101))},
    ],
)
async def test_bad_queries_are_refused(sim: Sim, params: dict[str, str]) -> None:
    status, body = await sim.call("GET", FILLS, params=params)
    assert (status, body["error"]["code"]) == (400, "invalid_parameters")
    assert body["error"]["details"].startswith(next(iter(params)))


async def test_signed_and_paid_from_the_read_bucket(make_sim: MakeSim) -> None:
    sim = await make_sim(read_capacity=25, read_refill=1)
    status, body = await sim.call("GET", FILLS, signed=False)
    assert (status, body["error"]["code"]) == (401, "authentication_error")
    spent = sim.state.stats.tokens_spent
    for expected in (200, 200, 429):
        status, _ = await sim.call("GET", FILLS)
        assert status == expected
    assert spent == {"read": 20, "write": 0}


async def drain(ws: Ws) -> list[dict[str, Any]]:
    """Every frame sent so far: a list_subscriptions answer comes after them."""
    await ws.cmd("list_subscriptions")
    frames = []
    while (frame := await ws.recv())["type"] != "ok":
        frames.append(frame)
    return frames


async def test_every_websocket_fill_is_listed_once_with_the_same_numbers(
    sim: Sim, ed_key: TestKey
) -> None:
    sockets = {"alice": await connect(sim), "bob": await connect(sim, ed_key)}
    for ws in sockets.values():
        await ws.subscribe("fill")
    await trades(sim, ed_key)
    _, resting = await as_bob(sim, ed_key, "bobs-bid", price="0.48", count="4")
    # An amend that crosses: Alice's ask meets Bob's bid, and then the house's.
    _, ask = await sim.create("alices-ask", side="ask", price="0.49", count="5")
    await sim.call(
        "POST",
        f"/portfolio/events/orders/{ask['order_id']}/amend",
        json={"ticker": "SIM-MKT", "side": "ask", "price": "0.45", "count": "5"},
    )
    assert resting["order_id"]
    for user, key in (("alice", sim.key), ("bob", ed_key)):
        sent = [frame["msg"] for frame in await drain(sockets[user])]
        listed = {f["trade_id"]: f for f in await fills(sim, key)}
        assert len(sent) == len(listed) >= 2
        for frame in sent:
            fill = listed.pop(frame["trade_id"])
            for name in ("order_id", "is_taker", "book_side", "outcome_side", "exchange_index"):
                assert fill[name] == frame[name], name
            for name in ("count_fp", "yes_price_dollars", "fee_cost"):
                assert D(fill[name]) == D(frame[name]), name
            assert fill["ts"] == frame["ts_ms"] // 1000
        assert listed == {}
