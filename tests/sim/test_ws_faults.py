"""The simulator's WebSocket faults: each does what it says, on a seeded stream, is counted, and
leaves the frames valid against the AsyncAPI schemas; with none set, nothing changes.

Which frame a probabilistic fault strikes is chosen by searching seeds with the sim's own draw
(``ws_faults.draw`` on ``connection_rng``), so the tests state the pattern they need and stay
true whatever the draw order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import WSMsgType
from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.sim import SimConfig, SimServer
from kalshi_router.sim.config import WsFaultConfig
from kalshi_router.sim.ws import WS_PATH
from kalshi_router.sim.ws_faults import FramePlan, connection_rng, draw

from .conftest import MakeSim, Sim, TestKey, order, wait_until
from .test_ws import Ws, as_bob, connect, ws_headers

BATCH = "/portfolio/events/orders/batched"
CLOSED = (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)


@pytest.fixture(autouse=True)
def quiet_server(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No WebSocket fault may make aiohttp log a warning or a traceback."""
    caplog.set_level(logging.DEBUG)
    yield
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []


def seed_for(config: dict[str, Any], wanted: list[FramePlan], connection: int = 0) -> int:
    """A seed whose ``connection``-th connection plans ``wanted`` for its first data frames."""
    ws = WsFaultConfig(**config)
    for seed in range(10_000):
        rng = connection_rng(seed, connection)
        if [draw(ws, rng) for _ in wanted] == wanted:
            return seed
    raise AssertionError("no seed gives that pattern")


async def ws_sim(make_sim: MakeSim, seed: int = 0, **ws: Any) -> Sim:
    return await make_sim(seed=seed, faults={"ws": ws})


def coids(frames: list[dict[str, Any]]) -> list[str]:
    return [f["msg"]["client_order_id"] for f in frames]


async def batch(sim: Sim, *names: str) -> list[dict[str, Any]]:
    status, body = await sim.batch([order(name) for name in names])
    assert status == 201, body
    answers: list[dict[str, Any]] = body["orders"]
    return answers


async def closed(ws: Ws) -> WSMsgType:
    """What the client reads once the server has gone: no frame, the connection's end."""
    msg = await ws.conn.receive(timeout=5)
    assert msg.type in CLOSED, msg
    return msg.type


def ws_stats(sim: Sim) -> dict[str, int]:
    return sim.state.stats.ws.as_json()


# --- the draw --------------------------------------------------------------------------------


@given(
    seed=st.integers(0, 2**32),
    rates=st.tuples(*(st.floats(0, 1) for _ in range(4))),
    delay=st.tuples(st.floats(0, 500), st.floats(0, 500)).map(sorted),
)
def test_every_frame_draws_five_numbers_and_one_drop_at_most(
    seed: int, rates: tuple[float, float, float, float], delay: list[float]
) -> None:
    connection, frame, stall, delayed = rates
    config = WsFaultConfig(
        drop_connection_rate=connection,
        drop_frame_rate=frame,
        stall_rate=stall,
        delay_rate=delayed,
        delay_min_ms=delay[0],
        delay_max_ms=delay[1],
    )
    rng, twin = connection_rng(seed, 0), connection_rng(seed, 0)
    plan = draw(config, rng)
    for _ in range(5):
        twin.random()
    assert rng.getstate() == twin.getstate()
    if plan.drop_connection or plan.drop_frame:
        assert plan == FramePlan(drop_connection=plan.drop_connection, drop_frame=plan.drop_frame)
    assert not plan.delay_s or delay[0] / 1e3 <= plan.delay_s <= delay[1] / 1e3


def test_all_off_never_faults_a_frame() -> None:
    rng = connection_rng(0, 0)
    assert {draw(WsFaultConfig(), rng) for _ in range(1000)} == {FramePlan()}


def test_settings_are_checked() -> None:
    for bad in (
        {"drop_frame_rate": 1.5},
        {"stall_s": -1},
        {"delay_min_ms": 50, "delay_max_ms": 10},
        {"drop_connection_every_frames": -1},
    ):
        with pytest.raises(msgspec.ValidationError, match=r"ws\."):
            msgspec.convert({"faults": {"ws": bad}}, SimConfig)


# --- nothing set -----------------------------------------------------------------------------


async def test_no_ws_fault_changes_nothing(sim: Sim, ed_key: TestKey) -> None:
    ws = await connect(sim)
    for channel in ("user_orders", "fill", "market_positions"):
        await ws.subscribe(channel)
    await batch(sim, "a", "b", "c")
    await sim.create("m", side="ask", price="0.50")
    await as_bob(sim, ed_key, "t", side="bid", price="0.50")
    frames = await ws.recv_n(7)
    assert [f["type"] for f in frames] == ["user_order"] * 4 + [
        "fill",
        "market_position",
        "user_order",
    ]
    assert coids(frames[:4]) == ["a", "b", "c", "m"]
    await ws.quiet()
    stats = ws_stats(sim)
    assert stats == {
        "connections": 1,
        "connections_dropped": 0,
        "stalls": 0,
        "frames_sent": 3 + 7 + 1,
        "frames_dropped": 0,
        "frames_delayed": 0,
        "frames_reordered": 0,
        "late_answers": 0,
    }
    _, body = await sim.control("GET", "/_sim/stats")
    assert body["ws"] == stats
    _, faults = await sim.control("GET", "/_sim/faults")
    assert faults["ws"] == msgspec.to_builtins(WsFaultConfig())


async def test_ws_faults_leave_rest_faults_and_the_engine_alone(make_sim: MakeSim) -> None:
    """The same REST fault draws, answers and orders with WebSocket faults on and off."""
    noisy = {"drop_frame_rate": 0.5, "delay_rate": 0.5, "delay_max_ms": 5.0}
    runs = []
    for ws_faults in ({}, noisy):
        sim = await make_sim(seed=4, faults={"error_503_rate": 0.5, "ws": ws_faults})
        ws = await connect(sim)
        await ws.subscribe("user_orders")
        statuses = [(await sim.create(f"o{i}"))[0] for i in range(8)]
        _, orders = await sim.control("GET", "/_sim/orders")
        runs.append((statuses, [(o["client_order_id"], o["status"]) for o in orders]))
        await ws.conn.close()
    assert runs[0] == runs[1]
    assert sorted(set(runs[0][0])) == [201, 503]


# --- dropped connections ---------------------------------------------------------------------


async def test_drop_hook_aborts_every_connection_and_a_new_one_works(
    sim: Sim, ed_key: TestKey
) -> None:
    first, second = await connect(sim), await connect(sim, ed_key)
    await first.subscribe("user_orders")
    assert await sim.control("POST", "/_sim/ws/drop") == (200, {"dropped": 2})
    for ws in (first, second):
        await closed(ws)
        assert ws.conn.close_code != 1000  # no close frame: an abort
    again = await connect(sim)
    await again.subscribe("user_orders")
    await sim.create("after")
    assert coids([await again.recv()]) == ["after"]
    stats = ws_stats(sim)
    assert (stats["connections"], stats["connections_dropped"]) == (3, 2)


async def test_drop_every_n_frames(make_sim: MakeSim) -> None:
    sim = await ws_sim(make_sim, drop_connection_every_frames=2)
    ws = await connect(sim)
    await ws.subscribe("user_orders")
    await batch(sim, "a", "b", "c")
    assert coids(await ws.recv_n(2)) == ["a", "b"]
    await closed(ws)
    ws = await connect(sim)  # a new connection gets its own two frames
    await ws.subscribe("user_orders")
    await batch(sim, "d")
    assert coids([await ws.recv()]) == ["d"]
    await ws.quiet()
    assert ws_stats(sim)["connections_dropped"] == 1


async def test_drop_connection_rate_loses_the_frame_with_it(make_sim: MakeSim) -> None:
    config = {"drop_connection_rate": 0.5}
    seed = seed_for(config, [FramePlan(), FramePlan(drop_connection=True)])
    sim = await ws_sim(make_sim, seed, **config)
    ws = await connect(sim)
    await ws.subscribe("user_orders")
    await batch(sim, "a", "b", "c")
    assert coids([await ws.recv()]) == ["a"]
    await closed(ws)
    _, orders = await sim.call("GET", "/portfolio/orders")
    assert sorted(o["client_order_id"] for o in orders["orders"]) == ["a", "b", "c"]
    assert ws_stats(sim)["connections_dropped"] == 1


# --- stalls ----------------------------------------------------------------------------------


async def read_until_quiet(
    conn: aiohttp.ClientWebSocketResponse, quiet_s: float, heartbeats: int
) -> None:
    """Read until ``quiet_s`` passes without a frame; what comes before may only be up to
    ``heartbeats`` of the sim's heartbeat pings."""
    for _ in range(heartbeats + 1):
        try:
            msg = await conn.receive(timeout=quiet_s)
        except TimeoutError:
            return
        assert (msg.type, msg.data) == (WSMsgType.PING, b"heartbeat"), msg
    raise AssertionError(f"more than {heartbeats} heartbeats and no {quiet_s} s of quiet")


async def test_stall_hook_silences_frames_pings_and_pongs_then_resumes(make_sim: MakeSim) -> None:
    interval_s = 0.02
    sim = await make_sim(ws_ping_interval_s=interval_s)
    conn = await sim.client.ws_connect(WS_PATH, headers=ws_headers(sim), autoping=False)
    ws = Ws(conn)
    loop = asyncio.get_running_loop()
    unread_since = loop.time()
    await ws.cmd("subscribe", {"channels": ["user_orders"]})
    while (msg := await conn.receive(timeout=5)).type is WSMsgType.PING:
        pass
    assert msgspec.json.decode(msg.data)["type"] == "subscribed"
    assert await sim.control("POST", "/_sim/ws/stall", {"stall_s": 60}) == (200, {"stalled": 1})
    # Heartbeats sent before the stall may not have been read yet (many, on a busy machine):
    # at most one per interval since "subscribed", which the pinger never beats.
    sent_before = int((loop.time() - unread_since) / interval_s) + 1
    assert (await sim.create("held"))[0] == 201  # REST is not stalled
    await sim.control("POST", "/_sim/ws/stall", {"stall_s": 30})  # a new end, the same stall
    await conn.ping(b"are you there")
    # A stall lasts 60 s: nothing, not even a ping, once those are read.
    await read_until_quiet(conn, 0.15, heartbeats=sent_before)
    assert not conn.closed  # the TCP connection stays open
    await sim.control("POST", "/_sim/ws/stall", {"stall_s": 0})
    seen: set[Any] = set()
    while not {"held", WSMsgType.PONG} <= seen:
        msg = await conn.receive(timeout=5)
        if msg.type is WSMsgType.PONG:
            assert msg.data == b"are you there"
            seen.add(msg.type)
        elif msg.type is WSMsgType.BINARY:
            seen.add(msgspec.json.decode(msg.data)["msg"]["client_order_id"])
    assert ws_stats(sim)["stalls"] == 1


async def test_a_client_heartbeat_notices_a_stall(sim: Sim) -> None:
    ws = await connect(sim, heartbeat=0.05)
    await ws.quiet()  # pongs come while the connection is healthy
    await sim.control("POST", "/_sim/ws/stall", {"stall_s": 60})
    assert await closed(ws) is WSMsgType.ERROR
    assert isinstance(ws.conn.exception(), aiohttp.ServerTimeoutError)
    await sim.control("POST", "/_sim/ws/stall", {"stall_s": 0})


async def test_stall_rate_holds_the_connection_before_the_frame(make_sim: MakeSim) -> None:
    sim = await ws_sim(make_sim, stall_rate=1.0, stall_s=0.03)
    ws = await connect(sim)
    await ws.subscribe("user_orders")
    await batch(sim, "a", "b")
    assert coids(await ws.recv_n(2)) == ["a", "b"]
    await ws.quiet()
    assert ws_stats(sim)["stalls"] == 2


async def test_shutdown_ends_a_stall(ed_key: TestKey) -> None:
    async with SimServer(SimConfig()) as server:
        server.register_key(ed_key.key_id, ed_key.private.public_key())
        headers = ed_key.headers("GET", WS_PATH, server.state.clock_ms())
        url = server.url.removesuffix("/trade-api/v2") + WS_PATH
        async with aiohttp.ClientSession() as session:
            conn = await session.ws_connect(url, headers=headers)
            await wait_until(lambda: server.state.stats.ws.connections == 1)
            assert server.state.ws_faults.stall_connections(60) == 1
            await conn.send_str('{"id": 1, "cmd": "list_subscriptions"}')
            shutdown = asyncio.ensure_future(server.__aexit__(None, None, None))
            while (await conn.receive(timeout=5)).type not in CLOSED:
                pass
            await shutdown
            assert conn.close_code == 1001  # the server's own goodbye: no stall holds it up


# --- held-back frames ------------------------------------------------------------------------


async def test_a_held_back_frame_is_overtaken(make_sim: MakeSim) -> None:
    config = {"delay_rate": 0.5, "delay_min_ms": 60.0, "delay_max_ms": 60.0}
    late = FramePlan(delay_s=0.06)
    seed = seed_for(config, [late, FramePlan(), FramePlan()])
    sim = await ws_sim(make_sim, seed, **config)
    ws = await connect(sim)
    await ws.subscribe("user_orders")
    await batch(sim, "a", "b", "c")
    assert coids(await ws.recv_n(3)) == ["b", "c", "a"]
    stats = ws_stats(sim)
    assert (stats["frames_delayed"], stats["frames_reordered"]) == (1, 1)


async def trade(sim: Sim, ed_key: TestKey) -> None:
    """Alice rests three bids and three asks; Bob takes the asks: 15 frames for Alice."""
    await batch(sim, *(f"m{i}" for i in range(3)))
    await sim.batch([order(f"m{i}", side="ask", price="0.50") for i in range(3, 6)])
    status, _ = await as_bob(sim, ed_key, "t", side="bid", price="0.50", count="3")
    assert status == 201


async def drain(sim: Sim, ws: Ws) -> list[dict[str, Any]]:
    """Every data frame still to come: once the sim has sent or lost all it queued, the answer
    to a command comes after them."""
    await sim.state.ws_faults.flushed()
    await ws.cmd("list_subscriptions")
    frames = []
    while not isinstance((frame := await ws.recv())["msg"], list):
        frames.append(frame)
    return frames


async def subscribe_all(ws: Ws) -> None:
    for channel in ("user_orders", "fill", "market_positions"):
        await ws.subscribe(channel)


def kinds(frames: list[dict[str, Any]]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for frame in frames:
        counted[frame["type"]] = counted.get(frame["type"], 0) + 1
    return counted


async def test_held_back_frames_all_arrive_across_channels(
    make_sim: MakeSim, ed_key: TestKey
) -> None:
    sim = await ws_sim(make_sim, 3, delay_rate=1.0, delay_min_ms=1.0, delay_max_ms=20.0)
    ws = await connect(sim)
    await subscribe_all(ws)
    await trade(sim, ed_key)
    frames = await drain(sim, ws)
    assert kinds(frames) == {"user_order": 9, "fill": 3, "market_position": 3}
    assert ws_stats(sim)["frames_delayed"] == 15


# --- dropped frames --------------------------------------------------------------------------


async def test_dropped_frames_are_never_sent_but_rest_has_the_orders(make_sim: MakeSim) -> None:
    config = {"drop_frame_rate": 0.5}
    gone = FramePlan(drop_frame=True)
    seed = seed_for(config, [gone, FramePlan(), gone, FramePlan()])
    sim = await ws_sim(make_sim, seed, **config)
    ws = await connect(sim)
    await ws.subscribe("user_orders")
    await batch(sim, "a", "b", "c", "d")
    assert coids(await drain(sim, ws)) == ["b", "d"]
    _, orders = await sim.call("GET", "/portfolio/orders")
    assert sorted(o["client_order_id"] for o in orders["orders"]) == ["a", "b", "c", "d"]
    assert ws_stats(sim)["frames_dropped"] == 2


# --- every fault at once ---------------------------------------------------------------------

MIXED = {
    "drop_frame_rate": 0.3,
    "delay_rate": 0.3,
    "delay_max_ms": 10.0,
    "stall_rate": 0.2,
    "stall_s": 0.01,
}


async def test_frames_stay_valid_and_are_accounted_for_under_faults(
    make_sim: MakeSim, ed_key: TestKey
) -> None:
    sim = await ws_sim(make_sim, 11, **MIXED)
    ws = await connect(sim)
    await subscribe_all(ws)
    await trade(sim, ed_key)
    frames = await drain(sim, ws)  # each one checked against the AsyncAPI schema
    stats = ws_stats(sim)
    assert len(frames) + stats["frames_dropped"] == 15
    assert stats["frames_dropped"] > 0
    assert stats["frames_delayed"] > 0
    assert stats["stalls"] > 0


async def test_the_same_seed_drops_the_same_frames(make_sim: MakeSim, ed_key: TestKey) -> None:
    runs = []
    for _ in range(2):
        sim = await ws_sim(make_sim, 5, drop_frame_rate=0.4)
        ws = await connect(sim)
        await subscribe_all(ws)
        await trade(sim, ed_key)
        frames = await drain(sim, ws)
        runs.append([(f["type"], f["msg"].get("order_id")) for f in frames])
        await ws.conn.close()
    assert len(runs[0]) < 15
    assert [kind for kind, _ in runs[0]] == [kind for kind, _ in runs[1]]


# --- late create answers ---------------------------------------------------------------------


async def test_a_user_order_arrives_before_its_create_answer(make_sim: MakeSim) -> None:
    sim = await ws_sim(make_sim, late_create_answer_rate=1.0, late_create_answer_ms=50.0)
    ws = await connect(sim)
    await ws.subscribe("user_orders")
    single = asyncio.ensure_future(sim.create("single"))
    assert coids([await ws.recv()]) == ["single"]
    assert not single.done()
    assert (await single)[0] == 201
    batched = asyncio.ensure_future(sim.batch([order("x"), order("y")]))
    assert coids(await ws.recv_n(2)) == ["x", "y"]
    assert not batched.done()
    assert (await batched)[0] == 201
    assert ws_stats(sim)["late_answers"] == 2


async def test_a_late_answer_waits_for_held_back_frames(make_sim: MakeSim) -> None:
    sim = await ws_sim(
        make_sim,
        late_create_answer_rate=1.0,
        late_create_answer_ms=20.0,
        delay_rate=1.0,
        delay_min_ms=40.0,
        delay_max_ms=40.0,
    )
    ws = await connect(sim)
    await ws.subscribe("user_orders")
    answer = asyncio.ensure_future(sim.create("held"))
    assert coids([await ws.recv()]) == ["held"]
    assert not answer.done()
    assert (await answer)[0] == 201


async def test_late_answers_are_drawn_at_the_configured_rate(make_sim: MakeSim) -> None:
    late = {"late_create_answer_rate": 0.5, "late_create_answer_ms": 0.0}
    sim = await make_sim(tier="premier", seed=2, faults={"ws": late})
    for i in range(20):
        assert (await sim.create(f"o{i}"))[0] == 201
    held = ws_stats(sim)["late_answers"]
    assert 0 < held < 20
    await sim.call("DELETE", "/portfolio/events/orders")  # not a create: never held
    assert ws_stats(sim)["late_answers"] == held


# --- configured at runtime -------------------------------------------------------------------


async def test_faults_route_sets_ws_faults_at_runtime(sim: Sim) -> None:
    ws = await connect(sim)
    await ws.subscribe("user_orders")
    status, body = await sim.control("PUT", "/_sim/faults", {"ws": {"drop_frame_rate": 1.0}})
    assert (status, body["ws"]["drop_frame_rate"]) == (200, 1.0)
    await batch(sim, "a", "b")
    assert await drain(sim, ws) == []
    await sim.control("PUT", "/_sim/faults", {})
    await batch(sim, "c")
    assert coids(await drain(sim, ws)) == ["c"]
    assert ws_stats(sim)["frames_dropped"] == 2
    status, body = await sim.control("PUT", "/_sim/faults", {"ws": {"stall_rate": 2}})
    assert (status, body["error"]["code"]) == (400, "invalid_parameters")
    status, body = await sim.control("POST", "/_sim/ws/stall", {"stall_s": -1})
    assert status == 400
