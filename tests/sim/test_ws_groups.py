"""The simulator's ``order_group_updates`` channel (sim.ws_session, sim.ws_feed): one frame per
group event, each validated against the AsyncAPI extract's ``orderGroupUpdatesPayload`` by
``Ws.recv``, with a per-subscription ``seq``; and the ``user_order`` frames of the orders a
group cancels."""

from __future__ import annotations

from typing import Any

from tests.sim.conftest import MakeSim, Sim, TestKey
from tests.sim.test_ws import Ws, connect

GROUPS = "/portfolio/order_groups"


async def new_group(sim: Sim, limit: int, key: TestKey | None = None) -> str:
    status, body = await sim.call(
        "POST", f"{GROUPS}/create", json={"contracts_limit": limit}, key=key
    )
    assert status == 201, body
    group_id: str = body["order_group_id"]
    return group_id


async def put(sim: Sim, group_id: str, action: str, body: Any = None) -> None:
    status, answer = await sim.call("PUT", f"{GROUPS}/{group_id}/{action}", json=body)
    assert (status, answer) == (200, {})


async def group_frame(ws: Ws) -> dict[str, Any]:
    frame = await ws.recv()
    assert frame["type"] == "order_group_updates", frame
    return frame


async def test_every_group_event_is_one_sequenced_frame(make_sim: MakeSim) -> None:
    sim = await make_sim(tier="premier")
    ws = await connect(sim)
    sid = await ws.subscribe("order_group_updates")
    group_id = await new_group(sim, 2)
    # A fill that reaches the limit triggers the group.
    status, _ = await sim.create("taker", order_group_id=group_id, price="0.60", count="2")
    assert status == 201
    await put(sim, group_id, "reset")
    await put(sim, group_id, "limit", {"contracts_limit_fp": "1.5"})
    await put(sim, group_id, "trigger", {})
    assert (await sim.call("DELETE", f"{GROUPS}/{group_id}"))[0] == 200
    frames = [await group_frame(ws) for _ in range(6)]
    now = sim.clock()
    assert [f["msg"] for f in frames] == [
        {"event_type": kind, "order_group_id": group_id, "ts_ms": now} | extra
        for kind, extra in (
            ("created", {"contracts_limit_fp": "2.00"}),
            ("triggered", {}),
            ("reset", {}),
            ("limit_updated", {"contracts_limit_fp": "1.50"}),
            ("triggered", {}),
            ("deleted", {}),
        )
    ]
    assert [(f["sid"], f["seq"]) for f in frames] == [(sid, n) for n in range(1, 7)]
    await ws.quiet()


async def test_market_lists_are_ignored_and_other_users_groups_unseen(
    sim: Sim, ed_key: TestKey
) -> None:
    ws = await connect(sim)
    sid = await ws.subscribe("order_group_updates", market_tickers=["SOME-MARKET"])
    other = await ws.subscribe("order_group_updates")
    await new_group(sim, 1, key=ed_key)
    mine = await new_group(sim, 1)
    frames = [await group_frame(ws) for _ in range(2)]
    # "Market specification ignored": both subscriptions get the frame, each with its own seq.
    assert sorted((f["sid"], f["seq"], f["msg"]["order_group_id"]) for f in frames) == sorted(
        [(sid, 1, mine), (other, 1, mine)]
    )
    await ws.quiet()


async def test_a_groups_cancels_reach_user_orders_without_a_reason(sim: Sim) -> None:
    ws = await connect(sim)
    await ws.subscribe("user_orders")
    group_id = await new_group(sim, 5)
    _, placed = await sim.create("rests", order_group_id=group_id)
    created = await ws.recv()
    assert created["msg"]["order_group_id"] == group_id
    await put(sim, group_id, "trigger")
    cancelled = (await ws.recv())["msg"]
    assert (cancelled["order_id"], cancelled["status"]) == (placed["order_id"], "canceled")
    assert "last_update_reason" not in cancelled
    await ws.quiet()


async def test_unsubscribing_counts_in_the_same_seq(sim: Sim) -> None:
    ws = await connect(sim)
    sid = await ws.subscribe("order_group_updates")
    await new_group(sim, 1)
    assert (await group_frame(ws))["seq"] == 1
    await ws.cmd("unsubscribe", {"sids": [sid]})
    assert await ws.recv() == {"id": 2, "type": "unsubscribed", "sid": sid, "seq": 2}
    await new_group(sim, 1)
    await ws.quiet()
