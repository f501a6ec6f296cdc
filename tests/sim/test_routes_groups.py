"""The simulator's order-group endpoints over HTTP (sim.routes_groups): each answer checked
against the order-groups extract's schema, the limit rules, 404s, costs and buckets, the
rolling window on the fake clock, orders refused by a group, and a trigger mid-batch."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sim.conftest import MakeSim, Sim, SpecChecker, order

GROUPS = "/portfolio/order_groups"
CREATE = "/portfolio/order_groups/create"
ONE = "/portfolio/order_groups/{order_group_id}"
BATCH = "/portfolio/events/orders/batched"
# The sim's house asks start at $0.55 (100 contracts a level): a bid at $0.60 fills at once.
CROSSING = "0.60"


def status_of(sim: Sim, order_id: str) -> str:
    order = sim.state.exchange.get("alice", order_id)
    assert order is not None
    return order.status


def one(group_id: str, action: str = "") -> str:
    return f"{GROUPS}/{group_id}" + (f"/{action}" if action else "")


@pytest.fixture
async def sim(make_sim: MakeSim) -> Sim:
    # Premier: these tests make more writes than a Basic bucket holds, on a clock that is still.
    return await make_sim(tier="premier")


async def create(sim: Sim, spec: SpecChecker, **body: Any) -> str:
    status, answer = await sim.call("POST", CREATE, json=body or {"contracts_limit": 5})
    assert status == 201, answer
    spec.check_operation(CREATE, "POST", 201, answer)
    group_id: str = answer["order_group_id"]
    return group_id


async def refused(
    sim: Sim, spec: SpecChecker, status: int, method: str, path: str, **kw: Any
) -> str:
    got, body = await sim.call(method, path, **kw)
    assert got == status, body
    spec.check_error(body)
    code: str = body["error"]["code"]
    return code


async def test_create_answers_201_with_the_ids(sim: Sim, group_spec: SpecChecker) -> None:
    status, body = await sim.call(
        "POST", CREATE, json={"contracts_limit": 5, "subaccount": 3, "exchange_index": 0}
    )
    assert status == 201
    group_spec.check_operation(CREATE, "POST", 201, body)
    assert body["subaccount"] == 3
    assert body["exchange_index"] == 0
    assert sim.state.exchange.order_group("alice", body["order_group_id"], 3).limit == 500


@pytest.mark.parametrize(
    ("body", "limit"),
    [
        ({"contracts_limit": 7}, 700),
        ({"contracts_limit_fp": "2.5"}, 250),
        ({"contracts_limit_fp": "0.01"}, 1),
        ({"contracts_limit": 3, "contracts_limit_fp": "3.00"}, 300),
        ({"contracts_limit": 4, "contracts_limit_fp": None}, 400),
    ],
)
async def test_either_limit_field_sets_the_limit(
    sim: Sim, group_spec: SpecChecker, body: dict[str, Any], limit: int
) -> None:
    group_id = await create(sim, group_spec, **body)
    status, answer = await sim.call("GET", one(group_id))
    assert status == 200
    group_spec.check_operation(ONE, "GET", 200, answer)
    assert answer["contracts_limit_fp"] == f"{limit // 100}.{limit % 100:02d}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "contracts_limit"),
        ({"contracts_limit_fp": None}, "contracts_limit"),
        ({"contracts_limit": 0}, "contracts_limit"),
        ({"contracts_limit": -2}, "contracts_limit"),
        ({"contracts_limit_fp": "0"}, "contracts_limit_fp"),
        ({"contracts_limit_fp": "1.234"}, "contracts_limit_fp"),
        ({"contracts_limit_fp": "-1"}, "contracts_limit_fp"),
        ({"contracts_limit": 3, "contracts_limit_fp": "3.01"}, "contracts_limit_fp"),
        ({"contracts_limit": 3, "subaccount": 64}, "subaccount"),
        ({"contracts_limit": 3, "exchange_index": 2}, "exchange_index"),
        ({"contracts_limit": 3, "exchange_index": -1}, "exchange_index"),
        ({"contracts_limit": 3.5}, "contracts_limit"),
        ({"contracts_limit": 3, "name": "x"}, "name"),
    ],
)
async def test_a_bad_limit_body_is_a_400_naming_the_field(
    sim: Sim, group_spec: SpecChecker, body: dict[str, Any], field: str
) -> None:
    status, answer = await sim.call("POST", CREATE, json=body)
    assert status == 400, answer
    group_spec.check_error(answer)
    assert answer["error"]["code"] == "invalid_parameters"
    assert answer["error"]["details"].startswith(field), answer
    assert sim.state.exchange.order_groups("alice") == []


async def test_list_and_get(sim: Sim, group_spec: SpecChecker) -> None:
    first = await create(sim, group_spec, contracts_limit=5)
    second = await create(sim, group_spec, contracts_limit_fp="1.50", subaccount=2)
    status, body = await sim.call("GET", GROUPS)
    assert status == 200
    group_spec.check_operation(GROUPS, "GET", 200, body)
    assert body == {
        "order_groups": [
            {
                "id": first,
                "contracts_limit_fp": "5.00",
                "is_auto_cancel_enabled": True,
                "exchange_index": 0,
            },
            {
                "id": second,
                "contracts_limit_fp": "1.50",
                "is_auto_cancel_enabled": True,
                "exchange_index": 0,
            },
        ]
    }
    _, only = await sim.call("GET", GROUPS, params={"subaccount": "2"})
    assert [g["id"] for g in only["order_groups"]] == [second]
    _, none = await sim.call("GET", GROUPS, key=None, params={"subaccount": "7"})
    assert none == {"order_groups": []}

    status, placed = await sim.create("in-group", order_group_id=first)
    assert status == 201, placed
    await sim.create("outside")
    status, got = await sim.call("GET", one(first))
    assert status == 200
    group_spec.check_operation(ONE, "GET", 200, got)
    assert got == {
        "is_auto_cancel_enabled": True,
        "contracts_limit_fp": "5.00",
        "orders": [placed["order_id"]],
        "exchange_index": 0,
    }
    # Get's subaccount is a filter: the group is in 2, so asking in 0 finds nothing.
    assert (await sim.call("GET", one(second), params={"subaccount": "2"}))[0] == 200
    assert await refused(sim, group_spec, 404, "GET", one(second), params={"subaccount": "0"})


async def test_bobs_groups_are_not_alices(
    make_sim: MakeSim, group_spec: SpecChecker, ed_key: Any
) -> None:
    sim = await make_sim(tier="premier")
    status, body = await sim.call("POST", CREATE, json={"contracts_limit": 2}, key=ed_key)
    assert status == 201
    bobs = body["order_group_id"]
    assert (await sim.call("GET", GROUPS))[1] == {"order_groups": []}
    for method, path in (
        ("GET", one(bobs)),
        ("DELETE", one(bobs)),
        ("PUT", one(bobs, "reset")),
        ("PUT", one(bobs, "trigger")),
    ):
        assert await refused(sim, group_spec, 404, method, path) == "not_found"
    code = await refused(
        sim, group_spec, 404, "PUT", one(bobs, "limit"), json={"contracts_limit": 1}
    )
    assert code == "not_found"
    code = await refused(
        sim,
        group_spec,
        400,
        "POST",
        "/portfolio/events/orders",
        json=order("x", order_group_id=bobs),
    )
    assert code == "order_group_not_found"


@pytest.mark.parametrize("action", ["reset", "trigger"])
@pytest.mark.parametrize("body", [None, {}])
async def test_reset_and_trigger_answer_an_empty_object(
    sim: Sim, group_spec: SpecChecker, action: str, body: Any
) -> None:
    group_id = await create(sim, group_spec)
    status, answer = await sim.call("PUT", one(group_id, action), json=body)
    assert status == 200
    group_spec.check_operation(f"{ONE}/{action}", "PUT", 200, answer)
    assert answer == {}
    code = await refused(sim, group_spec, 400, "PUT", one(group_id, action), json={"x": 1})
    assert code == "invalid_parameters"
    assert await refused(sim, group_spec, 404, "PUT", one("nope", action)) == "not_found"


async def test_trigger_cancels_and_refuses_until_reset(sim: Sim, group_spec: SpecChecker) -> None:
    group_id = await create(sim, group_spec)
    _, resting = await sim.create("rests", order_group_id=group_id)
    assert (await sim.call("PUT", one(group_id, "trigger")))[0] == 200
    _, got = await sim.call("GET", f"/portfolio/orders/{resting['order_id']}")
    assert got["order"]["status"] == "canceled"
    code = await refused(
        sim,
        group_spec,
        400,
        "POST",
        "/portfolio/events/orders",
        json=order("no", order_group_id=group_id),
    )
    assert code == "order_group_triggered"
    assert (await sim.call("PUT", one(group_id, "reset")))[0] == 200
    assert (await sim.create("yes", order_group_id=group_id))[0] == 201


async def test_update_limit_that_the_window_reaches_triggers(
    sim: Sim, group_spec: SpecChecker
) -> None:
    group_id = await create(sim, group_spec, contracts_limit=10)
    assert (await sim.create("taker", order_group_id=group_id, price=CROSSING, count="3"))[0] == 201
    _, resting = await sim.create("rests", order_group_id=group_id)
    status, answer = await sim.call("PUT", one(group_id, "limit"), json={"contracts_limit_fp": "4"})
    assert (status, answer) == (200, {})
    group_spec.check_operation(f"{ONE}/limit", "PUT", 200, answer)
    assert status_of(sim, resting["order_id"]) == "resting"
    assert (await sim.call("PUT", one(group_id, "limit"), json={"contracts_limit": 3}))[0] == 200
    assert status_of(sim, resting["order_id"]) == "canceled"
    _, got = await sim.call("GET", one(group_id))
    assert got["contracts_limit_fp"] == "3.00"
    # The limit body is required, and follows the create's rules.
    assert await refused(sim, group_spec, 400, "PUT", one(group_id, "limit")) == "bad_request"
    code = await refused(sim, group_spec, 400, "PUT", one(group_id, "limit"), json={})
    assert code == "invalid_parameters"


async def test_delete_cancels_and_removes(sim: Sim, group_spec: SpecChecker) -> None:
    group_id = await create(sim, group_spec)
    _, resting = await sim.create("rests", order_group_id=group_id)
    status, answer = await sim.call("DELETE", one(group_id))
    assert (status, answer) == (200, {})
    group_spec.check_operation(ONE, "DELETE", 200, answer)
    assert status_of(sim, resting["order_id"]) == "canceled"
    assert await refused(sim, group_spec, 404, "DELETE", one(group_id)) == "not_found"
    assert await refused(sim, group_spec, 404, "GET", one(group_id)) == "not_found"
    code = await refused(
        sim,
        group_spec,
        400,
        "POST",
        "/portfolio/events/orders",
        json=order("x", order_group_id=group_id),
    )
    assert code == "order_group_not_found"


async def test_the_changing_calls_address_the_groups_subaccount(
    sim: Sim, group_spec: SpecChecker
) -> None:
    group_id = await create(sim, group_spec, contracts_limit=5, subaccount=4)
    # "Defaults to 0": without the subaccount the group is not found.
    assert await refused(sim, group_spec, 404, "PUT", one(group_id, "trigger")) == "not_found"
    params = {"subaccount": "4", "exchange_index": "0"}
    assert (await sim.call("PUT", one(group_id, "trigger"), params=params))[0] == 200
    bad = {"subaccount": "4", "exchange_index": "3"}
    assert await refused(sim, group_spec, 400, "PUT", one(group_id, "reset"), params=bad)
    assert (await sim.call("DELETE", one(group_id), params={"subaccount": "4"}))[0] == 200


async def test_an_order_into_an_unknown_group_is_refused(sim: Sim, group_spec: SpecChecker) -> None:
    code = await refused(
        sim,
        group_spec,
        400,
        "POST",
        "/portfolio/events/orders",
        json=order("x", order_group_id="nope"),
    )
    assert code == "order_group_not_found"
    # "" is no group at all (Go cannot tell it from absent).
    assert (await sim.create("plain", order_group_id=""))[0] == 201


async def test_a_trigger_mid_batch_refuses_the_rest_of_the_group(
    sim: Sim, spec: SpecChecker, group_spec: SpecChecker
) -> None:
    group_id = await create(sim, group_spec, contracts_limit=2)
    other = await create(sim, group_spec, contracts_limit=100)
    status, body = await sim.batch(
        [
            order("before", order_group_id=group_id),
            order("trips", order_group_id=group_id, price=CROSSING, count="3"),
            order("after", order_group_id=group_id),
            order("no-group"),
            order("other-group", order_group_id=other),
            order("after-too", order_group_id=group_id),
        ]
    )
    assert status == 201
    spec.check_operation(BATCH, "POST", 201, body)
    items = body["orders"]
    errors = [item.get("error", {}).get("code") for item in items]
    assert errors == [None, None, "order_group_triggered", None, None, "order_group_triggered"]
    # The order that tripped the group filled in full (its match is not cut at the limit).
    assert (items[1]["fill_count"], items[1]["remaining_count"]) == ("3.00", "0.00")
    exchange = sim.state.exchange
    statuses = {
        coid: o.status
        for coid in ("before", "trips", "no-group", "other-group")
        if (o := exchange.find_client_order_id("alice", coid)) is not None
    }
    assert statuses == {
        "before": "canceled",
        "trips": "executed",
        "no-group": "resting",
        "other-group": "resting",
    }
    assert exchange.find_client_order_id("alice", "after") is None


async def test_the_window_rolls_on_the_simulators_clock(sim: Sim, group_spec: SpecChecker) -> None:
    group_id = await create(sim, group_spec, contracts_limit=3)
    taker = {"order_group_id": group_id, "price": CROSSING, "time_in_force": "immediate_or_cancel"}
    assert (await sim.create("a", count="2", **taker))[0] == 201
    sim.clock.advance(14.999)
    assert (await sim.create("b", count="0.5", **taker))[0] == 201
    sim.clock.advance(0.001)
    # The first 2 have left the window: 0.5 + 2 is below 3.
    assert (await sim.create("c", count="2", **taker))[0] == 201
    assert (await sim.create("d", count="0.5", **taker))[0] == 201
    code = await refused(
        sim, group_spec, 400, "POST", "/portfolio/events/orders", json=order("e", **taker)
    )
    assert code == "order_group_triggered"


async def test_costs_and_buckets(make_sim: MakeSim, group_spec: SpecChecker) -> None:
    sim = await make_sim(tier="premier")
    _, costs = await sim.call("GET", "/account/endpoint_costs", signed=False)
    # Every group endpoint costs the default, so the table of other costs names none.
    assert costs["default_cost"] == 10
    assert not [c for c in costs["endpoint_costs"] if "order_groups" in c["path"]]
    spent = sim.state.stats.tokens_spent
    group_id = await create(sim, group_spec)
    assert spent == {"read": 0.0, "write": 10.0}
    await sim.call("GET", GROUPS)
    await sim.call("GET", one(group_id))
    assert spent == {"read": 20.0, "write": 10.0}
    for method, path, body in (
        ("PUT", one(group_id, "limit"), {"contracts_limit": 9}),
        ("PUT", one(group_id, "trigger"), None),
        ("PUT", one(group_id, "reset"), None),
        ("DELETE", one(group_id), None),
    ):
        assert (await sim.call(method, path, json=body))[0] == 200
    assert spent == {"read": 20.0, "write": 50.0}


async def test_an_empty_write_bucket_answers_429(make_sim: MakeSim) -> None:
    sim = await make_sim()  # Basic: 100 write tokens, refilled only as the fake clock moves
    for _ in range(10):
        assert (await sim.call("POST", CREATE, json={"contracts_limit": 1}))[0] == 201
    status, body = await sim.call("POST", CREATE, json={"contracts_limit": 1})
    assert (status, body) == (429, {"error": "too many requests"})
    assert len(sim.state.exchange.order_groups("alice")) == 10
