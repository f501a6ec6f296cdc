"""The simulator's WebSocket: signed upgrade, heartbeat, commands, and the order channels.

Every frame a test receives goes through ``Ws.recv``, which validates it against the AsyncAPI
extract's payload schema for its type (unknown fields refused), so the whole file is also the
conformance test for what the simulator sends.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from aiohttp import ClientWebSocketResponse, WSMsgType
from openapi_schema_validator import OAS31Validator, oas31_format_checker

from kalshi_router.sim.ws import WS_PATH
from tests.sim.conftest import MakeSim, Sim, TestKey, _forbid_unknown, order

ASYNCAPI = Path(__file__).resolve().parents[2].parent / "shared" / "spec"
ASYNCAPI_FILE = ASYNCAPI / "kalshi-asyncapi-2.0.0-orders.yaml"
_SCHEMA_BY_TYPE = {
    "subscribed": "subscribedResponsePayload",
    "unsubscribed": "unsubscribedResponsePayload",
    "error": "errorResponsePayload",
    "user_order": "userOrderPayload",
    "fill": "fillPayload",
    "market_position": "marketPositionPayload",
    "order_group_updates": "orderGroupUpdatesPayload",
}


@functools.cache
def _schemas() -> dict[str, Any]:
    with ASYNCAPI_FILE.open(encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    components: dict[str, Any] = _forbid_unknown(copy.deepcopy(spec["components"]))
    return components


def validate_frame(frame: dict[str, Any]) -> None:
    """Raise unless ``frame`` fits the AsyncAPI payload schema its ``type`` names."""
    if not ASYNCAPI_FILE.is_file():
        reason = f"Kalshi AsyncAPI extract not found at {ASYNCAPI_FILE}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    kind = frame["type"]
    if kind == "ok":
        list_ok = isinstance(frame.get("msg"), list)
        name = "listSubscriptionsResponsePayload" if list_ok else "okResponsePayload"
    else:
        name = _SCHEMA_BY_TYPE[kind]
    schema = {"$ref": f"#/components/schemas/{name}", "components": _schemas()}
    # AsyncAPI 3 payloads are JSON Schema (type lists, const); OAS 3.1's dialect is 2020-12.
    OAS31Validator(schema, format_checker=oas31_format_checker).validate(frame)


class Ws:
    """A client connection; ``recv`` validates every frame against the spec."""

    def __init__(self, conn: ClientWebSocketResponse) -> None:
        self.conn = conn
        self.next_id = 1

    async def send(self, body: Any) -> None:
        await self.conn.send_str(
            body if isinstance(body, str) else msgspec.json.encode(body).decode()
        )

    async def cmd(self, cmd: str, params: dict[str, Any] | None = None) -> int:
        id_, self.next_id = self.next_id, self.next_id + 1
        body: dict[str, Any] = {"id": id_, "cmd": cmd}
        if params is not None:
            body["params"] = params
        await self.send(body)
        return id_

    async def recv(self) -> dict[str, Any]:
        msg = await self.conn.receive(timeout=5)
        assert msg.type in (WSMsgType.TEXT, WSMsgType.BINARY), msg
        frame: dict[str, Any] = msgspec.json.decode(msg.data)
        validate_frame(frame)
        return frame

    async def recv_n(self, n: int) -> list[dict[str, Any]]:
        return [await self.recv() for _ in range(n)]

    async def subscribe(self, channel: str, **params: Any) -> int:
        await self.cmd("subscribe", {"channels": [channel], **params})
        frame = await self.recv()
        assert frame["type"] == "subscribed", frame
        sid: int = frame["msg"]["sid"]
        return sid

    async def quiet(self) -> None:
        """Nothing further is pending: a list_subscriptions answer comes next."""
        await self.cmd("list_subscriptions")
        frame = await self.recv()
        assert frame["type"] == "ok", frame
        assert isinstance(frame["msg"], list), frame


async def as_bob(sim: Sim, key: TestKey, coid: str, **fields: Any) -> tuple[int, Any]:
    return await sim.call("POST", "/portfolio/events/orders", json=order(coid, **fields), key=key)


def ws_headers(sim: Sim, key: TestKey | None = None) -> dict[str, str]:
    return (key or sim.key).headers("GET", WS_PATH, sim.clock())


async def connect(sim: Sim, key: TestKey | None = None, **kwargs: Any) -> Ws:
    conn = await sim.client.ws_connect(WS_PATH, headers=ws_headers(sim, key), **kwargs)
    return Ws(conn)


# --- connection ------------------------------------------------------------------------------


async def test_signed_upgrade_is_accepted_and_unsigned_refused(sim: Sim, ed_key: TestKey) -> None:
    for key in (sim.key, ed_key):
        ws = await connect(sim, key)
        await ws.quiet()
        await ws.conn.close()
    async with sim.client.get(WS_PATH) as resp:
        assert resp.status == 401
        body = await resp.json()
    assert body["error"]["code"] == "authentication_error"
    bad = ws_headers(sim) | {"KALSHI-ACCESS-SIGNATURE": sim.key.sign("0GET/trade-api/v2")}
    async with sim.client.get(WS_PATH, headers=bad) as resp:
        assert resp.status == 401


async def test_server_pings_with_heartbeat_body(make_sim: MakeSim) -> None:
    sim = await make_sim(ws_ping_interval_s=0.02)
    conn = await sim.client.ws_connect(WS_PATH, headers=ws_headers(sim), autoping=False)
    msg = await conn.receive(timeout=5)
    assert msg.type == WSMsgType.PING
    assert msg.data == b"heartbeat"
    await conn.close()


# --- commands --------------------------------------------------------------------------------


async def test_subscribe_list_update_unsubscribe(sim: Sim) -> None:
    ws = await connect(sim)
    await ws.cmd("subscribe", {"channels": ["user_orders", "fill"], "market_tickers": ["A-1"]})
    first, second = await ws.recv_n(2)
    assert first["id"] == second["id"] == 1
    assert [first["msg"]["channel"], second["msg"]["channel"]] == ["user_orders", "fill"]
    sids = [first["msg"]["sid"], second["msg"]["sid"]]
    await ws.cmd("list_subscriptions")
    listed = await ws.recv()
    assert listed == {
        "id": 2,
        "type": "ok",
        "msg": [{"channel": "user_orders", "sid": sids[0]}, {"channel": "fill", "sid": sids[1]}],
    }
    params = {"sids": [sids[0]], "market_tickers": ["B-2", "C-3"], "action": "add_markets"}
    await ws.cmd("update_subscription", params)
    ok = await ws.recv()
    assert ok == {"id": 3, "sid": sids[0], "seq": 1, "type": "ok",
                  "msg": {"market_tickers": ["A-1", "B-2", "C-3"]}}  # fmt: skip
    params = {"sid": sids[0], "market_tickers": ["A-1"], "action": "delete_markets"}
    await ws.cmd("update_subscription", params)
    assert (await ws.recv())["msg"] == {"market_tickers": ["B-2", "C-3"]}
    await ws.cmd("unsubscribe", {"sids": sids})
    gone = await ws.recv_n(2)
    assert [(f["type"], f["sid"], f["id"]) for f in gone] == [
        ("unsubscribed", sids[0], 5),
        ("unsubscribed", sids[1], 5),
    ]
    assert gone[0]["seq"] == 3
    await ws.cmd("list_subscriptions")
    assert (await ws.recv())["msg"] == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("not json", 1),
        ({"id": 1, "cmd": "dance"}, 5),
        ({"id": 1, "cmd": "subscribe"}, 2),
        ({"id": 1, "cmd": "subscribe", "params": {}}, 3),
        ({"id": 1, "cmd": "subscribe", "params": {"channels": []}}, 3),
        ({"id": 1, "cmd": "subscribe", "params": {"channels": ["nope"]}}, 8),
        ({"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"]}}, 8),
        (
            {
                "id": 1,
                "cmd": "subscribe",
                "params": {"channels": ["fill"], "market_ticker": "A", "market_tickers": ["B"]},
            },
            11,
        ),
        ({"id": 1, "cmd": "subscribe", "params": {"channels": ["fill"], "market_tickers": []}}, 11),
        ({"id": 1, "cmd": "unsubscribe", "params": {}}, 4),
        ({"id": 1, "cmd": "unsubscribe", "params": {"sids": [99]}}, 7),
        ({"id": 1, "cmd": "update_subscription", "params": {"sid": 1}}, 15),
        (
            {"id": 1, "cmd": "update_subscription", "params": {"sid": 1, "action": "get_snapshot"}},
            13,
        ),
        ({"id": 1, "cmd": "update_subscription", "params": {"action": "add_markets"}}, 12),
        (
            {
                "id": 1,
                "cmd": "update_subscription",
                "params": {"sid": 1, "sids": [1], "action": "add_markets"},
            },
            12,
        ),
        (
            {
                "id": 1,
                "cmd": "update_subscription",
                "params": {"sids": [99], "market_tickers": ["A"], "action": "add_markets"},
            },
            7,
        ),
    ],
)
async def test_bad_commands_get_the_spec_error_codes(sim: Sim, body: Any, code: int) -> None:
    ws = await connect(sim)
    await ws.send(body)
    frame = await ws.recv()
    assert frame["type"] == "error", frame
    assert frame["msg"]["code"] == code, frame
    assert frame.get("id") == (1 if isinstance(body, dict) else None)


async def test_update_needs_markets_and_a_filtered_subscription(sim: Sim) -> None:
    ws = await connect(sim)
    filtered = await ws.subscribe("fill", market_ticker="A-1")
    everything = await ws.subscribe("user_orders")
    await ws.cmd("update_subscription", {"sid": filtered, "action": "add_markets"})
    assert (await ws.recv())["msg"]["code"] == 14
    params = {"sid": everything, "market_tickers": ["A-1"], "action": "add_markets"}
    await ws.cmd("update_subscription", params)
    frame = await ws.recv()
    assert frame["msg"]["code"] == 11
    assert frame["sid"] == everything


async def test_id_zero_is_no_id(sim: Sim) -> None:
    ws = await connect(sim)
    await ws.send({"id": 0, "cmd": "list_subscriptions"})
    assert await ws.recv() == {"type": "ok", "msg": []}


# --- the order channels ----------------------------------------------------------------------


async def test_create_rest_then_cancel_frames(sim: Sim) -> None:
    ws = await connect(sim)
    await ws.subscribe("user_orders")
    status, body = await sim.create("c1", price="0.30", count="2")
    assert status == 201
    created = (await ws.recv())["msg"]
    assert created["order_id"] == body["order_id"]
    assert (created["status"], created["client_order_id"]) == ("resting", "c1")
    assert (created["yes_price_dollars"], created["remaining_count_fp"]) == ("0.3000", "2.00")
    assert "last_update_reason" not in created
    assert (created["outcome_side"], created["book_side"], created["is_yes"]) == (
        "yes",
        "bid",
        True,
    )
    status, _ = await sim.call("DELETE", f"/portfolio/events/orders/{body['order_id']}")
    assert status == 200
    cancelled = (await ws.recv())["msg"]
    assert (cancelled["status"], cancelled["remaining_count_fp"]) == ("canceled", "0.00")


async def test_amend_and_decrease_frames(sim: Sim) -> None:
    ws = await connect(sim)
    await ws.subscribe("user_orders")
    _, body = await sim.create("c1", price="0.30", count="5")
    await ws.recv()
    oid = body["order_id"]
    amend = {"ticker": "SIM-MKT", "side": "bid", "price": "0.31", "count": "4"}
    status, _ = await sim.call("POST", f"/portfolio/events/orders/{oid}/amend", json=amend)
    assert status == 200
    amended = (await ws.recv())["msg"]
    assert (amended["last_update_reason"], amended["yes_price_dollars"]) == ("Amend", "0.3100")
    assert amended["initial_count_fp"] == "4.00"
    decrease = {"reduce_by": "1"}
    status, _ = await sim.call("POST", f"/portfolio/events/orders/{oid}/decrease", json=decrease)
    assert status == 200
    decreased = (await ws.recv())["msg"]
    assert (decreased["last_update_reason"], decreased["remaining_count_fp"]) == (
        "Decrease",
        "3.00",
    )
    await sim.call("DELETE", "/portfolio/events/orders")
    assert (await ws.recv())["msg"]["status"] == "canceled"


async def test_fill_frames_on_both_sides(sim: Sim, ed_key: TestKey) -> None:
    maker_ws = await connect(sim)  # alice
    taker_ws = await connect(sim, ed_key)  # bob
    for ws in (maker_ws, taker_ws):
        await ws.subscribe("fill")
        await ws.subscribe("market_positions")
        await ws.subscribe("user_orders")
    _, rest = await sim.create("m1", side="ask", price="0.50", count="3")
    assert (await maker_ws.recv())["msg"]["status"] == "resting"
    status, take = await as_bob(sim, ed_key, "t1", side="bid", price="0.50", count="2")
    assert status == 201, take
    maker = await maker_ws.recv_n(3)
    taker = await taker_ws.recv_n(3)
    assert [f["type"] for f in maker] == ["fill", "market_position", "user_order"]
    assert [f["type"] for f in taker] == ["fill", "market_position", "user_order"]
    maker_fill, taker_fill = maker[0]["msg"], taker[0]["msg"]
    assert maker_fill["trade_id"] == taker_fill["trade_id"]
    assert (maker_fill["is_taker"], taker_fill["is_taker"]) == (False, True)
    assert maker_fill["order_id"] == rest["order_id"]
    assert taker_fill["order_id"] == take["order_id"]
    assert (maker_fill["post_position_fp"], taker_fill["post_position_fp"]) == ("-2.00", "2.00")
    assert maker_fill["yes_price_dollars"] == taker_fill["yes_price_dollars"] == "0.5000"
    assert (maker_fill["outcome_side"], taker_fill["outcome_side"]) == ("no", "yes")
    assert maker_fill["fee_cost"] == "0.000000"
    assert taker_fill["fee_cost"] != "0.000000"
    position = taker[1]["msg"]
    assert (position["position_fp"], position["volume_fp"]) == ("2.00", "2.00")
    assert position["position_cost_dollars"] == "1.000000"
    assert maker[1]["msg"]["position_cost_dollars"] == "1.000000"  # NO at $0.50, twice
    assert maker[2]["msg"]["last_update_reason"] == "Trade"
    assert maker[2]["msg"]["remaining_count_fp"] == "1.00"
    assert (taker[2]["msg"]["status"], taker[2]["msg"]["fill_count_fp"]) == ("executed", "2.00")
    # Sold back into the house bid at $0.45: the long closes $0.05 a contract down.
    await as_bob(sim, ed_key, "t2", side="ask", price="0.40", count="2")
    fill_frame, position_frame, _ = await taker_ws.recv_n(3)
    assert fill_frame["msg"]["post_position_fp"] == "0.00"
    assert position_frame["msg"]["realized_pnl_dollars"] == "-0.100000"


async def test_self_trade_and_expiry_reasons(sim: Sim) -> None:
    ws = await connect(sim)
    await ws.subscribe("user_orders")
    await sim.create("a", side="ask", price="0.50")
    await ws.recv()
    await sim.create("b", side="bid", price="0.50")  # taker_at_cross: the taker is cancelled
    crossed = (await ws.recv())["msg"]
    assert (crossed["client_order_id"], crossed["status"]) == ("b", "canceled")
    await sim.create("m", side="bid", price="0.51", self_trade_prevention_type="maker")
    resting_cancelled = (await ws.recv())["msg"]
    assert (resting_cancelled["client_order_id"], resting_cancelled["last_update_reason"]) == (
        "a",
        "SelfTradeCancel",
    )
    assert (await ws.recv())["msg"]["client_order_id"] == "m"
    expiry_s = sim.clock() // 1000 + 60
    await sim.create("e", price="0.20", expiration_time=expiry_s)
    assert (await ws.recv())["msg"]["expiration_ts_ms"] == expiry_s * 1000
    sim.clock.advance(61)
    await sim.call("GET", "/portfolio/orders")
    expired = (await ws.recv())["msg"]
    assert (expired["client_order_id"], expired["last_update_reason"]) == ("e", "ExpiryCancel")


async def test_frames_are_filtered_by_ticker_and_user(sim: Sim, ed_key: TestKey) -> None:
    ws = await connect(sim)
    sid = await ws.subscribe("user_orders", market_tickers=["WANTED"])
    await sim.create("other", ticker="OTHER")
    await as_bob(sim, ed_key, "bobs", ticker="WANTED")
    await sim.create("mine", ticker="WANTED")
    frame = await ws.recv()
    assert (frame["sid"], frame["msg"]["client_order_id"]) == (sid, "mine")
    await ws.cmd("update_subscription", {"sid": sid, "market_tickers": ["OTHER"],
                                         "action": "add_markets"})  # fmt: skip
    await ws.recv()
    await sim.create("other2", ticker="OTHER")
    assert (await ws.recv())["msg"]["client_order_id"] == "other2"
    await ws.quiet()


async def test_the_conformance_check_refuses_what_the_spec_does(sim: Sim) -> None:
    ws = await connect(sim)
    await ws.subscribe("user_orders")
    await sim.create("c1")
    frame = await ws.recv()
    for broken in (
        frame | {"msg": frame["msg"] | {"user_id": "alice"}},  # not a uuid
        frame | {"msg": frame["msg"] | {"invented": 1}},
        frame | {"msg": {k: v for k, v in frame["msg"].items() if k != "created_ts_ms"}},
    ):
        # jsonschema's ValidationError (jsonschema ships no type stubs).
        with pytest.raises(Exception, match=r"uuid|Additional properties|required property"):
            validate_frame(broken)
