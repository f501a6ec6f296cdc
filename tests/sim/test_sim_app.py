"""The order surface through HTTP: shapes against the spec, per-item errors, duplicates,
cancels, amends, reads, V1, and the control routes."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from kalshi_router.sim.schema import (
    AmendOrderV2Request,
    BatchCancelOrdersV2Request,
    BatchCreateOrdersV2Request,
    CreateOrderV2Request,
    DecreaseOrderV2Request,
)
from kalshi_router.sim.state import HOUSE_USER

from .conftest import MakeSim, Sim, SpecChecker, TestKey, order

BATCH = "/portfolio/events/orders/batched"
EVENTS = "/portfolio/events/orders"


def _resting(sim: Sim, user: str = "alice") -> dict[str, Any]:
    return {o.client_order_id: o for o in sim.state.exchange.orders(user, status="resting")}


async def test_every_response_fits_the_spec(make_sim: MakeSim, spec: SpecChecker) -> None:
    sim = await make_sim(tier="premier")
    answered: list[tuple[str, str, int, Any]] = []

    async def expect(status: int, method: str, route: str, order_id: str = "", **kw: Any) -> Any:
        got, body = await sim.call(method, route.replace("{order_id}", order_id), **kw)
        assert got == status, body
        answered.append((route, method, status, body))
        return body

    await expect(200, "GET", "/exchange/status", signed=False)
    await expect(200, "GET", "/account/endpoint_costs", signed=False)
    await expect(200, "GET", "/account/limits")
    created = await expect(201, "POST", EVENTS, json=order("s1"))
    taker = order(price="0.60", count="150", time_in_force="immediate_or_cancel")
    await expect(201, "POST", EVENTS, json=taker)
    batch = [
        order("b1", expiration_time=sim.clock() // 1000 + 60),
        order("b2", price="0.5"),
        order(None, side="ask", price="0.40", count="2.5", time_in_force="fill_or_kill"),
    ]
    placed = await expect(201, "POST", BATCH, json={"orders": batch})
    b1 = placed["orders"][0]["order_id"]
    await expect(200, "GET", "/portfolio/orders")
    await expect(200, "GET", "/portfolio/orders/{order_id}", b1)
    amend = {"ticker": "SIM-MKT", "side": "bid", "price": "0.31", "count": "3"}
    await expect(200, "POST", f"{EVENTS}/{{order_id}}/amend", b1, json=amend)
    await expect(200, "POST", f"{EVENTS}/{{order_id}}/amend", b1, json=amend)  # a no-op
    await expect(200, "POST", f"{EVENTS}/{{order_id}}/decrease", b1, json={"reduce_by": "1"})
    cancels = {"orders": [{"order_id": b1, "market_ticker": "SIM-MKT"}, {"order_id": "nope"}]}
    await expect(200, "DELETE", BATCH, json=cancels)
    await expect(200, "DELETE", f"{EVENTS}/{{order_id}}", created["order_id"])
    for route, method, status, body in answered:
        spec.check_operation(route, method, status, body)
    errors: list[tuple[int, str, str, dict[str, Any]]] = [
        (400, "POST", BATCH, {"json": {"orders": []}}),
        (401, "GET", "/account/limits", {"signed": False}),
        (404, "GET", "/portfolio/orders/nope", {}),
        (409, "POST", EVENTS, {"json": order("s1")}),
        (410, "POST", "/portfolio/orders/batched", {"json": {}}),
    ]
    for status, method, path, kw in errors:
        got, body = await sim.call(method, path, **kw)
        assert got == status
        spec.check_error(body)


async def test_v1_responses_fit_the_spec(make_sim: MakeSim, spec: SpecChecker) -> None:
    sim = await make_sim(tier="premier", v1_mode="serve")
    v1 = {"ticker": "SIM-MKT", "side": "no", "action": "buy", "count": 2, "no_price": 44}
    status, created = await sim.call("POST", "/portfolio/orders/batched", json={"orders": [v1]})
    assert status == 201
    spec.check("BatchCreateOrdersResponse", created)
    status, single = await sim.call("POST", "/portfolio/orders", json=v1 | {"client_order_id": "x"})
    assert status == 201
    spec.check("CreateOrderResponse", single)
    ids = [created["orders"][0]["order"]["order_id"], "nope"]
    status, cancelled = await sim.call("DELETE", "/portfolio/orders/batched", json={"ids": ids})
    assert status == 200
    spec.check("BatchCancelOrdersResponse", cancelled)


@pytest.mark.parametrize(
    ("schema", "struct"),
    [
        ("CreateOrderV2Request", CreateOrderV2Request),
        ("BatchCreateOrdersV2Request", BatchCreateOrdersV2Request),
        ("BatchCancelOrdersV2Request", BatchCancelOrdersV2Request),
        ("AmendOrderV2Request", AmendOrderV2Request),
        ("DecreaseOrderV2Request", DecreaseOrderV2Request),
    ],
)
def test_the_specs_request_examples_decode(spec: SpecChecker, schema: str, struct: type) -> None:
    msgspec.convert(spec.example(schema), struct)


async def test_batch_reports_errors_next_to_successes(make_sim: MakeSim) -> None:
    sim = await make_sim(tier="premier")
    past = sim.clock() // 1000 - 1
    items = [
        (order("ok-0"), None),
        (order("p", price="0.5"), "invalid_price"),
        (order("c0", count="0"), "invalid_order_size"),
        (order("c3", count="1.005"), "invalid_order_size"),
        (order("ro", reduce_only=True), "invalid_order"),
        (
            order("ioc", time_in_force="immediate_or_cancel", expiration_time=past + 99),
            "invalid_order",
        ),
        (order("past", expiration_time=past), "invalid_order"),
        (order("sub", subaccount=64), "invalid_parameters"),
        (order("x" * 65), "invalid_parameters"),
        (order("bad id"), "invalid_parameters"),
        (order("ok-0", price="0.31"), "duplicate_client_order_id"),
        (order("po", price="0.55", post_only=True), "invalid order"),
        (order("shard", exchange_index=3), "invalid_parameters"),
        (order("tick", price="0.301"), "invalid_price"),
        (order("ok-13", exchange_index=-1, subaccount=63), None),
    ]
    status, body = await sim.batch([o for o, _ in items])
    assert status == 201
    results = body["orders"]
    assert [r["client_order_id"] for r in results] == [o["client_order_id"] for o, _ in items]
    for (_, code), result in zip(items, results, strict=True):
        if code is None:
            assert "error" not in result
            assert result["ts_ms"] == sim.clock()
            assert (result["fill_count"], result["remaining_count"]) == ("0.00", "1.00")
        else:
            assert result["error"]["code"] == code, result
            assert "ts_ms" not in result
            assert "order_id" not in result
            assert result["fill_count"] is None
            assert result["remaining_count"] is None
    assert results[11]["error"]["details"] == "post only cross"
    assert results[6]["error"]["message"] == "Expiration timestamp must be in the future"
    assert results[1]["error"]["details"].startswith("orders[1].price")
    assert set(_resting(sim)) == {"ok-0", "ok-13"}


async def test_duplicate_ids_across_batches_even_after_cancel(sim: Sim) -> None:
    _, first = await sim.batch([order("dup")])
    order_id = first["orders"][0]["order_id"]
    status, _ = await sim.call("DELETE", f"{EVENTS}/{order_id}")
    assert status == 200
    _, second = await sim.batch([order("dup"), order("fresh")])
    assert second["orders"][0]["error"]["code"] == "duplicate_client_order_id"
    assert "error" not in second["orders"][1]
    status, body = await sim.create("dup")
    assert (status, body["error"]["code"]) == (409, "duplicate_client_order_id")


async def test_an_id_repeated_in_one_batch_loses_its_second_use(sim: Sim) -> None:
    # The first use fails on price; the second is still a duplicate within the batch.
    _, body = await sim.batch([order("twice", price="0.5"), order("twice")])
    codes = [r["error"]["code"] for r in body["orders"]]
    assert codes == ["invalid_price", "duplicate_client_order_id"]
    assert sim.state.exchange.orders("alice") == []


async def test_missing_client_order_id_is_null_in_batch_and_absent_in_single(sim: Sim) -> None:
    _, batch = await sim.batch([order(None)])
    assert batch["orders"][0]["client_order_id"] is None
    status, single = await sim.create(None)
    assert status == 201
    assert "client_order_id" not in single


@pytest.mark.parametrize(
    ("body", "code", "details"),
    [
        (b'{"orders": [', "bad_request", "body: "),
        (b'{"orders": [{"ticker": "T"}]}', "invalid_parameters", "orders[0].side"),
        (b'{"orders": [], "x": 1}', "invalid_parameters", "x: "),
        (b'{"orders": []}', "invalid_parameters", "orders: must not be empty"),
        (
            msgspec.json.encode({"orders": [order("a"), order("b"), order("c", count=10)]}),
            "invalid_parameters",
            "orders[2].count: Expected `str`, got `int`",
        ),
        (
            msgspec.json.encode({"orders": [order("a", side="buy")]}),
            "invalid_parameters",
            "orders[0].side",
        ),
        (
            msgspec.json.encode({"orders": [order("a", post_only=None)]}),
            "invalid_parameters",
            "orders[0].post_only",
        ),
    ],
)
async def test_structural_problems_fail_the_whole_batch(
    sim: Sim, body: bytes, code: str, details: str
) -> None:
    status, answer = await sim.call("POST", BATCH, body=body)
    assert status == 400
    assert answer["error"]["code"] == code
    assert answer["error"]["details"].startswith(details)
    assert sim.state.exchange.orders("alice") == []


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"price": "0.5"}, 400, "invalid_price"),
        ({"price": 0.5}, 400, "invalid_parameters"),
        ({"price": "0.56", "post_only": True, "side": "ask", "count": "1"}, 201, None),
        ({"price": "0.45", "post_only": True, "side": "ask"}, 400, "invalid order"),
        ({"reduce_only": True, "time_in_force": "immediate_or_cancel"}, 201, None),
    ],
)
async def test_single_create_answers_whole_request_errors(
    sim: Sim, fields: dict[str, Any], status: int, code: str | None
) -> None:
    got, body = await sim.create("one", **fields)
    assert got == status, body
    if code is not None:
        assert body["error"]["code"] == code


async def test_taking_house_liquidity(sim: Sim) -> None:
    status, body = await sim.create(
        "ioc", price="0.60", count="150", time_in_force="immediate_or_cancel"
    )
    assert status == 201
    # 100 at 0.55 and 50 at 0.56.
    assert (body["fill_count"], body["remaining_count"]) == ("150.00", "0.00")
    assert body["average_fill_price"] == "0.553333"
    status, body = await sim.create("fok", price="0.60", count="600", time_in_force="fill_or_kill")
    assert (body["fill_count"], body["remaining_count"]) == ("0.00", "0.00")
    assert "average_fill_price" not in body
    assert sim.state.exchange.position("alice", "SIM-MKT") == 15_000


async def test_no_house_liquidity_when_not_seeded(make_sim: MakeSim) -> None:
    sim = await make_sim(seed_liquidity=False)
    _, body = await sim.create("ioc", price="0.99", time_in_force="immediate_or_cancel")
    assert body["fill_count"] == "0.00"
    assert sim.state.exchange.orders(HOUSE_USER) == []


async def test_configured_markets_only(make_sim: MakeSim) -> None:
    sim = await make_sim(
        markets=[{"ticker": "KNOWN", "tick": "0.05", "min_price": "0.05", "max_price": "0.95"}],
        auto_create_markets=False,
    )
    # House orders are seeded at start, on the market's own ticks only.
    prices = sorted(o.price for o in sim.state.exchange.orders(HOUSE_USER))
    assert prices == [4000, 4500, 5500, 6000]
    _, body = await sim.batch([order("a", ticker="KNOWN"), order("b", ticker="OTHER")])
    assert "error" not in body["orders"][0]
    assert body["orders"][1]["error"]["code"] == "market_not_found"
    _, body = await sim.batch([order("c", ticker="KNOWN", price="0.31")])
    assert body["orders"][0]["error"]["code"] == "invalid_price"


async def test_cancel_single_and_its_routing(sim: Sim) -> None:
    _, body = await sim.batch([order("a"), order("b", subaccount=2)])
    a, b = (r["order_id"] for r in body["orders"])
    status, got = await sim.call("DELETE", f"{EVENTS}/{a}", params={"market_ticker": "OTHER"})
    assert (status, got["error"]["code"]) == (404, "not_found")
    status, got = await sim.call("DELETE", f"{EVENTS}/{a}", params={"exchange_index": "-1"})
    assert (status, got["error"]["details"]) == (
        400,
        "market_ticker: required to auto-route (exchange_index -1)",
    )
    status, got = await sim.call(
        "DELETE", f"{EVENTS}/{a}", params={"exchange_index": "-1", "market_ticker": "SIM-MKT"}
    )
    assert (status, got["reduced_by"], got["client_order_id"]) == (200, "1.00", "a")
    status, got = await sim.call("DELETE", f"{EVENTS}/{a}")
    assert (status, got["error"]["code"]) == (400, "order_not_resting")
    # The subaccount query defaults to 0.
    status, _ = await sim.call("DELETE", f"{EVENTS}/{b}")
    assert status == 404
    status, _ = await sim.call("DELETE", f"{EVENTS}/{b}", params={"subaccount": "2"})
    assert status == 200


async def test_batch_cancel_reports_per_item(sim: Sim, ed_key: TestKey) -> None:
    _, body = await sim.batch([order("a"), order("b"), order("c")])
    a, b, c = (r["order_id"] for r in body["orders"])
    status, theirs = await sim.call("POST", BATCH, json={"orders": [order("z")]}, key=ed_key)
    assert status == 201
    items = [
        {"order_id": a, "market_ticker": "SIM-MKT"},
        {"order_id": b, "market_ticker": "WRONG"},
        {"order_id": c, "exchange_index": -1},
        {"order_id": theirs["orders"][0]["order_id"]},
        {"order_id": a},
        {"order_id": c, "subaccount": 64},
    ]
    status, got = await sim.call("DELETE", BATCH, json={"orders": items})
    assert status == 200
    results = got["orders"]
    assert [r["order_id"] for r in results] == [i["order_id"] for i in items]
    assert results[0] == {
        "order_id": a,
        "client_order_id": "a",
        "reduced_by": "1.00",
        "ts_ms": sim.clock(),
    }
    codes = [r["error"]["code"] for r in results[1:]]
    assert codes == [
        "not_found",
        "invalid_parameters",
        "not_found",
        "order_not_resting",
        "invalid_parameters",
    ]
    for r in results[1:]:
        assert (r["reduced_by"], r["client_order_id"]) == ("0.00", None)
        assert "ts_ms" not in r
    assert set(_resting(sim)) == {"b", "c"}


async def test_cancel_all(sim: Sim) -> None:
    await sim.batch([order("a"), order("b", subaccount=1), order("c", subaccount=1)])
    status, body = await sim.call("DELETE", EVENTS, params={"subaccount": "1"})
    assert (status, body) == (204, None)
    assert set(_resting(sim)) == {"a"}
    status, _ = await sim.call("DELETE", EVENTS)
    assert status == 204
    assert _resting(sim) == {}


async def test_amend_and_decrease(make_sim: MakeSim) -> None:
    sim = await make_sim(tier="premier")
    _, created = await sim.create("a", count="3")
    path = f"{EVENTS}/{created['order_id']}"
    amend = {"ticker": "SIM-MKT", "side": "bid", "price": "0.30", "count": "3"}
    status, body = await sim.call("POST", f"{path}/amend", json=amend)
    # Nothing changed: no fill, same resting size, so the optional counts are null.
    assert (status, body["remaining_count"], body["fill_count"]) == (200, None, None)
    status, body = await sim.call(
        "POST", f"{path}/amend", json=amend | {"count": "5", "updated_client_order_id": "a2"}
    )
    assert (status, body["remaining_count"], body["client_order_id"]) == (200, "5.00", "a2")
    status, body = await sim.call("POST", f"{path}/amend", json=amend | {"side": "ask"})
    assert (status, body["error"]["code"]) == (400, "order_side_mismatch")
    status, body = await sim.call("POST", f"{path}/amend", json=amend | {"price": "0.5"})
    assert (status, body["error"]["code"]) == (400, "invalid_price")
    status, body = await sim.call(
        "POST", f"{path}/amend", json=amend | {"price": "0.56", "count": "5"}
    )
    assert (status, body["fill_count"], body["average_fill_price"]) == (200, "5.00", "0.5500")
    _, created = await sim.create("d", count="4")
    path = f"{EVENTS}/{created['order_id']}/decrease"
    status, body = await sim.call("POST", path, json={"reduce_by": "1"})
    assert (status, body["remaining_count"], body["client_order_id"]) == (200, "3.00", "d")
    status, body = await sim.call("POST", path, json={"reduce_to": "2.5", "reduce_by": None})
    assert (status, body["remaining_count"]) == (200, "2.50")
    for bad in ({}, {"reduce_by": "1", "reduce_to": "1"}, {"reduce_by": 1}):
        status, body = await sim.call("POST", path, json=bad)
        assert (status, body["error"]["code"]) == (400, "invalid_parameters")
    status, body = await sim.call("POST", path, json={"reduce_by": "1", "market_ticker": "X"})
    assert status == 404


async def test_get_orders_pages_with_an_opaque_cursor(sim: Sim) -> None:
    await sim.batch([order(f"o{i}") for i in range(5)])
    seen: list[str] = []
    cursor = ""
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        status, body = await sim.call("GET", "/portfolio/orders", params=params)
        assert status == 200
        seen += [o["client_order_id"] for o in body["orders"]]
        cursor = body["cursor"]
        if not cursor:
            break
    assert seen == ["o4", "o3", "o2", "o1", "o0"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"status": "open"},
        {"cursor": "garbage!"},
        {"subaccount": "64"},
        {"exchange_index": "-1"},
        {"event_ticker": ",".join(f"E{i}" for i in range(11))},
    ],
)
async def test_get_orders_rejects_bad_queries(sim: Sim, params: dict[str, str]) -> None:
    status, body = await sim.call("GET", "/portfolio/orders", params=params)
    assert (status, body["error"]["code"]) == (400, "invalid_parameters")
    assert body["error"]["details"].startswith(next(iter(params)))


async def test_get_orders_filters(sim: Sim, ed_key: TestKey) -> None:
    start_s = sim.clock() // 1000
    await sim.batch([order("early", ticker="EV-1-A")])
    sim.clock.advance(5)
    await sim.batch([order("late", ticker="EV-1-B"), order("other", ticker="EV-2-A")])
    await sim.call("POST", BATCH, json={"orders": [order("bobs")]}, key=ed_key)

    async def ids(**params: str) -> list[str]:
        status, body = await sim.call("GET", "/portfolio/orders", params=params)
        assert status == 200, body
        return [o["client_order_id"] for o in body["orders"]]

    assert await ids() == ["other", "late", "early"]
    # min_ts and max_ts are Unix seconds.
    assert await ids(min_ts=str(start_s + 1)) == ["other", "late"]
    assert await ids(max_ts=str(start_s)) == ["early"]
    assert await ids(min_ts=str(sim.clock())) == []
    assert await ids(ticker="EV-1-B") == ["late"]
    assert await ids(event_ticker="EV-1,EV-9") == ["late", "early"]
    assert await ids(status="canceled") == []
    assert await ids(exchange_index="0") == ["other", "late", "early"]
    assert await ids(exchange_index="1") == []


async def test_get_order_is_private(sim: Sim, ed_key: TestKey) -> None:
    _, body = await sim.create("mine")
    path = f"/portfolio/orders/{body['order_id']}"
    status, got = await sim.call("GET", path)
    assert (status, got["order"]["client_order_id"]) == (200, "mine")
    status, got = await sim.call("GET", path, key=ed_key)
    assert (status, got["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/portfolio/orders/batched"),
        ("DELETE", "/portfolio/orders/batched"),
        ("POST", "/portfolio/orders"),
    ],
)
async def test_v1_is_gone_by_default(sim: Sim, method: str, path: str) -> None:
    for signed in (True, False):
        status, body = await sim.call(method, path, json={"orders": []}, signed=signed)
        assert status == 410
        assert body == {
            "error": {
                "code": "deprecated_v1_order_endpoint",
                "message": "Please switch to the V2 endpoints",
                "details": "https://docs.kalshi.com/api-reference/orders/create-order-v2",
            }
        }


async def test_v1_serve_maps_no_orders_onto_the_yes_book(make_sim: MakeSim) -> None:
    sim = await make_sim(tier="premier", v1_mode="serve", seed_liquidity=False)
    items = [
        {
            "ticker": "SIM-MKT",
            "client_order_id": "n",
            "side": "no",
            "action": "buy",
            "count": 2,
            "no_price": 44,
        },
        {
            "ticker": "SIM-MKT",
            "client_order_id": "y",
            "side": "yes",
            "action": "sell",
            "count_fp": "1.50",
            "yes_price_dollars": "0.5700",
        },
        {"ticker": "SIM-MKT", "client_order_id": "bad", "side": "yes", "action": "buy", "count": 1},
    ]
    status, body = await sim.call("POST", "/portfolio/orders/batched", json={"orders": items})
    assert status == 201
    n, y, bad = body["orders"]
    assert (n["order"]["book_side"], n["order"]["yes_price_dollars"]) == ("ask", "0.5600")
    assert (n["order"]["outcome_side"], n["error"]) == ("no", None)
    assert (y["order"]["remaining_count_fp"], bad["order"]) == ("1.50", None)
    assert bad["error"]["code"] == "invalid_price"
    resting = _resting(sim)
    assert (resting["n"].side, resting["n"].price, resting["n"].remaining_count) == (
        "ask",
        5600,
        200,
    )
    cancel = {"orders": [{"order_id": n["order"]["order_id"]}], "ids": []}
    status, got = await sim.call("DELETE", "/portfolio/orders/batched", json=cancel)
    assert (status, got["error"]["details"]) == (400, "orders: give exactly one of orders or ids")
    del cancel["ids"]
    status, got = await sim.call("DELETE", "/portfolio/orders/batched", json=cancel)
    assert got["orders"][0]["reduced_by_fp"] == "2.00"
    assert got["orders"][0]["order"]["status"] == "canceled"


async def test_control_routes(sim: Sim) -> None:
    await sim.create("a")
    await sim.call("GET", "/account/limits", signed=False)
    status, orders = await sim.control("GET", "/_sim/orders")
    assert status == 200
    mine = [o for o in orders if o["user_id"] == "alice"]
    assert mine == [
        {
            "order_id": mine[0]["order_id"],
            "client_order_id": "a",
            "user_id": "alice",
            "ticker": "SIM-MKT",
            "side": "bid",
            "price": 3000,
            "status": "resting",
            "subaccount": 0,
            "initial_count": 100,
            "fill_count": 0,
            "remaining_count": 100,
        }
    ]
    assert len(orders) == 13  # twelve house levels, then ours
    status, stats = await sim.control("GET", "/_sim/stats")
    assert stats["requests"] == {
        "POST /portfolio/events/orders": {"201": 1},
        "GET /account/limits": {"401": 1},
    }
    assert stats["tokens_spent"] == {"read": 0.0, "write": 10.0}
    status, faults = await sim.control("GET", "/_sim/faults")
    assert (status, faults["error_503_rate"]) == (200, 0.0)
    status, body = await sim.control("PUT", "/_sim/faults", {"hang_rate": 2})
    assert (status, body["error"]["code"]) == (400, "invalid_parameters")
