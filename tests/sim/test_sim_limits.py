"""Token-bucket arithmetic through HTTP, on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import MakeSim, Sim, order

BATCH = "/portfolio/events/orders/batched"
EVENTS = "/portfolio/events/orders"


async def _creates(sim: Sim, n: int) -> list[int]:
    return [(await sim.create())[0] for _ in range(n)]


async def test_basic_allows_ten_creates_then_refills_one_per_tenth_of_a_second(sim: Sim) -> None:
    assert await _creates(sim, 10) == [201] * 10
    async with await sim.request("POST", EVENTS, json=order()) as resp:
        assert resp.status == 429
        assert await resp.read() == b'{"error":"too many requests"}'
        assert "Retry-After" not in resp.headers
        assert not [h for h in resp.headers if h.lower().startswith("x-ratelimit")]
    sim.clock.advance(0.05)
    assert await _creates(sim, 1) == [429]
    sim.clock.advance(0.05)
    assert await _creates(sim, 2) == [201, 429]


async def test_a_batch_costs_ten_per_item_and_can_never_exceed_capacity(sim: Sim) -> None:
    status, _ = await sim.batch([order() for _ in range(11)])
    assert status == 429
    sim.clock.advance(60)
    status, _ = await sim.batch([order() for _ in range(11)])
    assert status == 429
    status, body = await sim.batch([order() for _ in range(10)])
    assert (status, len(body["orders"])) == (201, 10)
    assert await _creates(sim, 1) == [429]


async def test_cancels_cost_two(sim: Sim) -> None:
    _, body = await sim.batch([order() for _ in range(9)])
    ids = [o["order_id"] for o in body["orders"]]
    # Ten tokens left: five single cancels.
    statuses = [(await sim.call("DELETE", f"{EVENTS}/{i}"))[0] for i in ids[:6]]
    assert statuses == [200] * 5 + [429]
    sim.clock.advance(1)
    items = {"orders": [{"order_id": i} for i in ids] * 6}  # 54 items, 108 tokens
    status, _ = await sim.call("DELETE", BATCH, json=items)
    assert status == 429
    status, _ = await sim.call("DELETE", BATCH, json={"orders": items["orders"][:50]})
    assert status == 200


async def test_reads_have_their_own_bucket(sim: Sim) -> None:
    await _creates(sim, 10)
    assert await _creates(sim, 1) == [429]
    statuses = [(await sim.call("GET", "/portfolio/orders"))[0] for _ in range(21)]
    assert statuses == [200] * 20 + [429]
    # GET /portfolio/orders/{order_id} costs 2.
    sim.clock.advance(0.01)
    status, _ = await sim.call("GET", "/portfolio/orders/nope")
    assert status == 404


@pytest.mark.parametrize(("spend", "after"), [(False, 201), (True, 429)])
async def test_whether_a_refused_request_spends(make_sim: MakeSim, spend: bool, after: int) -> None:
    sim = await make_sim(rejected_requests_spend_tokens=spend)
    await _creates(sim, 9)  # ten tokens left
    status, _ = await sim.batch([order(), order()])  # costs twenty: refused
    assert status == 429
    assert await _creates(sim, 1) == [after]


@pytest.mark.parametrize(
    ("config", "largest"),
    [({"tier": "advanced"}, 60), ({"tier": "prime"}, 800), ({"write_capacity": 50}, 5)],
)
async def test_the_largest_batch_scales_with_the_tier(
    make_sim: MakeSim, config: dict[str, Any], largest: int
) -> None:
    sim = await make_sim(**config)
    status, _ = await sim.batch([order() for _ in range(largest + 1)])
    assert status == 429
    status, _ = await sim.batch([order() for _ in range(largest)])
    assert status == 201


async def test_limits_and_costs_are_published(make_sim: MakeSim) -> None:
    sim = await make_sim(tier="advanced", read_refill=250)
    status, limits = await sim.call("GET", "/account/limits")
    assert (status, limits) == (
        200,
        {
            "usage_tier": "advanced",
            "read": {"refill_rate": 250, "bucket_capacity": 300},
            "write": {"refill_rate": 300, "bucket_capacity": 600},
            "grants": [],
        },
    )
    _, costs = await sim.call("GET", "/account/endpoint_costs", signed=False)
    assert costs["default_cost"] == 10
    assert {"method": "DELETE", "path": "/portfolio/events/orders/{order_id}", "cost": 2} in costs[
        "endpoint_costs"
    ]


async def test_v1_creates_cost_a_hundred(make_sim: MakeSim) -> None:
    sim = await make_sim(v1_mode="serve")
    v1 = {"ticker": "SIM-MKT", "side": "yes", "action": "buy", "count": 1, "yes_price": 30}
    status, _ = await sim.call("POST", "/portfolio/orders/batched", json={"orders": [v1, v1]})
    assert status == 429
    status, _ = await sim.call("POST", "/portfolio/orders/batched", json={"orders": [v1]})
    assert status == 201
    assert await _creates(sim, 1) == [429]


async def test_stats_count_refusals_and_tokens(sim: Sim) -> None:
    await _creates(sim, 11)
    _, stats = await sim.control("GET", "/_sim/stats")
    assert stats["rate_limited"] == 1
    assert stats["tokens_spent"]["write"] == 100
    assert stats["requests"]["POST /portfolio/events/orders"] == {"201": 10, "429": 1}


async def test_stats_tell_each_buckets_refusals_and_the_buckets_clock(sim: Sim) -> None:
    # Utilization over a window needs the tokens and the time on the buckets' own clock.
    _, before = await sim.control("GET", "/_sim/stats")
    await _creates(sim, 11)
    for _ in range(21):
        await sim.call("GET", "/portfolio/orders")
    sim.clock.advance(0.5)
    _, after = await sim.control("GET", "/_sim/stats")
    assert after["refused"] == {"read": 1, "write": 1}
    assert after["clock_s"] - before["clock_s"] == pytest.approx(0.5)


async def test_structural_400s_spend_nothing(sim: Sim) -> None:
    for _ in range(20):
        status, _ = await sim.call("POST", BATCH, body=b"{")
        assert status == 400
    assert await _creates(sim, 10) == [201] * 10


async def test_stats_tell_where_each_route_last_spent_on_the_cumulative_count(sim: Sim) -> None:
    # (time, tokens spent so far) just after a batch of creates: points of the cumulative curve
    # at one phase of the send cycle, whatever cancels spent between them.
    _, body = await sim.batch([order(), order()])
    ids = [o["order_id"] for o in body["orders"]]
    _, first = await sim.control("GET", "/_sim/stats")
    sim.clock.advance(0.25)
    await sim.batch([order()])
    sim.clock.advance(0.25)
    await sim.call("DELETE", f"{EVENTS}/{ids[0]}")
    _, after = await sim.control("GET", "/_sim/stats")
    created = after["last_spend"]["POST /portfolio/events/orders/batched"]
    assert created == {
        "at_s": pytest.approx(first["clock_s"] + 0.25),
        "tokens_spent": 30.0,
    }
    cancelled = after["last_spend"]["DELETE /portfolio/events/orders/{order_id}"]
    assert cancelled == {"at_s": pytest.approx(after["clock_s"]), "tokens_spent": 32.0}
