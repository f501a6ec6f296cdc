"""Every fault observably happening, the exchange state before/after, reproducibility, and the
server's lifecycle under faults."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import msgspec
import pytest

from kalshi_router.sim import FaultConfig, LatencyConfig, SimConfig, SimServer, serve_forever
from kalshi_router.sim.faults import FaultInjector

from .conftest import FakeClock, MakeSim, Sim, TestKey, order, wait_until

EVENTS = "/portfolio/events/orders"
BATCH = "/portfolio/events/orders/batched"


@pytest.fixture(autouse=True)
def quiet_server(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No fault may make aiohttp log a warning or a traceback."""
    caplog.set_level(logging.DEBUG)
    yield
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []


def _executed(sim: Sim, coid: str) -> bool:
    return sim.state.exchange.find_client_order_id("alice", coid) is not None


@pytest.mark.parametrize(("fault", "executed"), [("reset_before", False), ("reset_after", True)])
async def test_reset_drops_the_connection(make_sim: MakeSim, fault: str, executed: bool) -> None:
    sim = await make_sim(faults={f"{fault}_rate": 1.0})
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await sim.batch([order("r")])
    assert _executed(sim, "r") == executed
    _, stats = await sim.control("GET", "/_sim/stats")
    assert stats["requests"] == {f"POST {BATCH}": {fault: 1}}


@pytest.mark.parametrize(("status", "executed"), [(503, False), (500, True)])
async def test_5xx(make_sim: MakeSim, status: int, executed: bool) -> None:
    sim = await make_sim(faults={f"error_{status}_rate": 1.0})
    got, body = await sim.create("e")
    assert got == status
    assert set(body["error"]) == {"code", "message", "details"}
    assert _executed(sim, "e") == executed


async def test_malformed_body_after_processing(make_sim: MakeSim) -> None:
    sim = await make_sim(faults={"malformed_rate": 1.0})
    async with await sim.request("POST", BATCH, json={"orders": [order("m")]}) as resp:
        assert resp.status == 201
        raw = await resp.read()
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(raw)
    assert _executed(sim, "m")


async def test_truncated_body_after_processing(make_sim: MakeSim) -> None:
    sim = await make_sim(faults={"truncated_rate": 1.0})
    async with await sim.request("POST", BATCH, json={"orders": [order("t")]}) as resp:
        assert resp.status == 201
        assert resp.content_length is not None
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    assert _executed(sim, "t")


async def test_truncated_without_a_body_drops_the_connection(make_sim: MakeSim) -> None:
    sim = await make_sim(faults={"truncated_rate": 1.0})
    # Cancel-all answers an empty 204: there is no body to cut short.
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await sim.call("DELETE", EVENTS)


async def test_hang_holds_the_answer_after_processing(make_sim: MakeSim) -> None:
    sim = await make_sim(faults={"hang_rate": 1.0, "hang_s": 0.2})
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await sim.create("h1")
    assert _executed(sim, "h1")
    started = time.monotonic()
    status, _ = await sim.create("h2")
    assert status == 201
    assert time.monotonic() - started >= 0.2


async def test_latency_delays_before_processing(make_sim: MakeSim) -> None:
    sim = await make_sim(faults={"latency": {"kind": "fixed", "fixed_ms": 60}})
    started = time.monotonic()
    status, _ = await sim.create("slow")
    assert status == 201
    assert time.monotonic() - started >= 0.06


async def test_a_429_storm_refuses_every_write_until_it_passes(make_sim: MakeSim) -> None:
    sim = await make_sim(faults={"storm_429_rate": 1.0, "storm_429_s": 1.0})
    for coid in ("s1", "s2"):
        async with await sim.request("POST", EVENTS, json=order(coid)) as resp:
            assert resp.status == 429
            assert await resp.read() == b'{"error":"too many requests"}'
    status, _ = await sim.call("DELETE", EVENTS)
    assert status == 429
    # Reads are not faulted endpoints by default.
    status, _ = await sim.call("GET", "/portfolio/orders")
    assert status == 200
    assert sim.state.exchange.orders("alice") == []
    # Replacing the fault settings ends the storm.
    sim.state.faults.configure(FaultConfig(storm_429_rate=0.0))
    assert (await sim.create("s3"))[0] == 201


def test_a_storm_lasts_storm_429_s_whatever_the_draws() -> None:
    clock = FakeClock()
    injector = FaultInjector(
        FaultConfig(storm_429_rate=0.2, storm_429_s=1.0), seed=3, clock_s=lambda: clock() / 1000
    )
    plans = [injector.plan() for _ in range(200)]
    first = next(i for i, p in enumerate(plans) if p is not None)
    assert all(p is not None and p.storm for p in plans[first:])  # the clock never moved
    clock.advance(1.0)
    later = [injector.plan() for _ in range(200)]
    assert any(p is None for p in later)


async def test_faults_apply_only_to_their_paths(make_sim: MakeSim) -> None:
    sim = await make_sim(faults={"error_503_rate": 1.0, "paths": ["GET /portfolio/orders"]})
    assert (await sim.call("GET", "/portfolio/orders"))[0] == 503
    assert (await sim.create("fine"))[0] == 201
    status, _ = await sim.control("PUT", "/_sim/faults", {"error_503_rate": 1.0})
    assert status == 200
    assert (await sim.call("GET", "/portfolio/orders"))[0] == 200
    assert (await sim.create("down"))[0] == 503
    assert (await sim.control("PUT", "/_sim/faults", {}))[0] == 200
    assert (await sim.create("up"))[0] == 201


async def _outcomes(make_sim: MakeSim, seed: int) -> list[Any]:
    faults = {
        "error_503_rate": 0.2,
        "error_500_rate": 0.2,
        "malformed_rate": 0.2,
        "latency": {"kind": "exponential", "mean_ms": 1},
    }
    sim = await make_sim(tier="prime", seed=seed, faults=faults)
    seen = []
    for i in range(30):
        async with await sim.request("POST", EVENTS, json=order(f"o{i}")) as resp:
            seen.append((resp.status, (await resp.read())[:1]))
    return seen


async def test_the_same_seed_gives_the_same_faults(make_sim: MakeSim) -> None:
    first = await _outcomes(make_sim, 7)
    assert first == await _outcomes(make_sim, 7)
    assert first != await _outcomes(make_sim, 8)
    assert {status for status, _ in first} == {201, 500, 503}


async def test_sim_server_lifecycle(rsa_key: TestKey) -> None:
    config = {"api_keys": [{"key_id": "cfg", "public_key_pem": rsa_key.public_pem()}]}
    async with SimServer(msgspec.convert(config, SimConfig)) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/trade-api/v2"
        server.register_key(rsa_key.key_id, rsa_key.private.public_key(), user_id="dana")
        path = "/trade-api/v2/account/limits"
        headers = rsa_key.headers("GET", path, time.time_ns() // 1_000_000)
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.url + "/account/limits", headers=headers) as resp,
        ):
            assert resp.status == 200
        assert server.state.config.tier == "basic"
    with pytest.raises(RuntimeError):
        _ = server.port


async def test_shutdown_does_not_wait_for_a_hang(ed_key: TestKey) -> None:
    config = SimConfig(faults=FaultConfig(hang_rate=1.0, hang_s=30))
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        async with SimServer(config) as server:
            server.register_key(ed_key.key_id, ed_key.public_pem())
            path = "/trade-api/v2" + EVENTS
            request = asyncio.create_task(
                session.post(
                    server.url + EVENTS,
                    data=msgspec.json.encode(order("h")),
                    headers=ed_key.headers("POST", path, time.time_ns() // 1_000_000),
                )
            )
            exchange = server.state.exchange
            await wait_until(lambda: exchange.find_client_order_id(ed_key.key_id, "h") is not None)
        assert time.monotonic() - started < 5
        async with await request as response:
            assert response.status == 201


async def test_serve_forever_prints_its_url(capsys: pytest.CaptureFixture[str]) -> None:
    task = asyncio.create_task(serve_forever(SimConfig(), "127.0.0.1", 0))
    printed: list[str] = []

    def listening() -> bool:
        printed.append(capsys.readouterr().out)
        return "listening on" in "".join(printed)

    await wait_until(listening)
    url = "".join(printed).split("listening on ")[1].strip()
    async with aiohttp.ClientSession() as session, session.get(url + "/exchange/status") as resp:
        assert resp.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- read timeouts, slow and mislabelled bodies, restarts ---------------------------------------


@pytest.mark.parametrize(
    ("fault", "executed"), [("timeout_before", False), ("timeout_after", True)]
)
async def test_a_read_timeout_holds_then_drops_unanswered(
    make_sim: MakeSim, fault: str, executed: bool
) -> None:
    sim = await make_sim(faults={f"{fault}_rate": 1.0, "timeout_s": 0.3})
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await sim.create("rt1")
    assert _executed(sim, "rt1") == executed
    # A client more patient than the gateway gets no answer either: the connection drops.
    started = time.monotonic()
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await sim.create("rt2")
    assert time.monotonic() - started >= 0.3
    assert _executed(sim, "rt2") == executed


async def test_a_trickled_answer_is_slow_but_whole(make_sim: MakeSim) -> None:
    sim = await make_sim(
        faults={"trickle_rate": 1.0, "trickle_chunks": 5, "trickle_interval_ms": 40}
    )
    started = time.monotonic()
    async with await sim.request("POST", BATCH, json={"orders": [order("tr")]}) as resp:
        assert resp.status == 201
        pieces = [chunk async for chunk in resp.content.iter_any()]
    assert time.monotonic() - started >= 4 * 0.04
    assert len(pieces) > 1
    body = msgspec.json.decode(b"".join(pieces))
    assert body["orders"][0]["client_order_id"] == "tr"
    assert _executed(sim, "tr")


async def test_a_client_that_stops_waiting_for_a_trickle_is_no_error(make_sim: MakeSim) -> None:
    sim = await make_sim(
        faults={"trickle_rate": 1.0, "trickle_chunks": 4, "trickle_interval_ms": 100}
    )
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await sim.create("gone")
    assert _executed(sim, "gone")
    # The handler finds the connection closed at its next piece and gives up quietly (the
    # autouse fixture fails the test on any warning the server logs).
    requests = sim.state.stats.requests
    await wait_until(lambda: requests[(f"POST {EVENTS}", "trickle")] == 1)


async def test_text_plain_labels_the_real_answer_wrongly(make_sim: MakeSim) -> None:
    sim = await make_sim(faults={"text_plain_rate": 1.0})
    async with await sim.request("POST", EVENTS, json=order("tp")) as resp:
        assert resp.status == 201
        assert resp.content_type == "text/plain"
        body = msgspec.json.decode(await resp.read())
    assert body["client_order_id"] == "tp"


async def test_a_proxy_502_page_replaces_the_answer(make_sim: MakeSim) -> None:
    sim = await make_sim(faults={"proxy_502_rate": 1.0})
    async with await sim.request("POST", EVENTS, json=order("px")) as resp:
        assert resp.status == 502
        assert resp.content_type == "text/html"
        assert b"502 Bad Gateway" in await resp.read()
    assert _executed(sim, "px")


def test_new_fault_settings_are_checked() -> None:
    with pytest.raises(msgspec.ValidationError, match="trickle_chunks"):
        msgspec.convert({"trickle_chunks": 0}, FaultConfig)
    with pytest.raises(msgspec.ValidationError, match="timeout_s"):
        msgspec.convert({"timeout_s": -1}, FaultConfig)
    with pytest.raises(msgspec.ValidationError, match="sum to at most 1"):
        msgspec.convert({"trickle_rate": 0.6, "proxy_502_rate": 0.5}, FaultConfig)


def test_new_outcomes_are_drawn_reproducibly_and_leave_old_draws_alone() -> None:
    old = FaultConfig(error_503_rate=0.3, hang_rate=0.2)
    new = msgspec.structs.replace(
        old, timeout_after_rate=0.1, text_plain_rate=0.1, trickle_rate=0.1
    )

    def outcomes(config: FaultConfig, seed: int) -> list[str]:
        injector = FaultInjector(config, seed=seed, clock_s=lambda: 0.0)
        return [p.outcome if (p := injector.plan()) else "none" for _ in range(300)]

    assert outcomes(new, 5) == outcomes(new, 5)
    assert {"timeout_after", "text_plain", "trickle", "error_503", "hang"} <= set(outcomes(new, 5))
    # The new bands sit after the old ones: every old fault falls where it fell before.
    kept = [o if o in ("error_503", "hang") else "none" for o in outcomes(new, 5)]
    assert kept == outcomes(old, 5)


async def _signed_post(
    session: aiohttp.ClientSession, server: SimServer, key: TestKey, coid: str
) -> tuple[int, Any]:
    path = "/trade-api/v2" + EVENTS
    async with session.post(
        server.url + EVENTS,
        data=msgspec.json.encode(order(coid)),
        headers=key.headers("POST", path, time.time_ns() // 1_000_000),
    ) as response:
        return response.status, await response.json()


async def test_a_restart_drops_connections_and_keeps_the_exchange(ed_key: TestKey) -> None:
    async with SimServer(SimConfig()) as server, aiohttp.ClientSession() as session:
        server.register_key(ed_key.key_id, ed_key.public_pem())
        port = server.port
        status, placed = await _signed_post(session, server, ed_key, "before")
        assert status == 201
        # A request held before processing when the restart comes is never processed.
        server.state.faults.configure(
            FaultConfig(latency=LatencyConfig(kind="fixed", fixed_ms=5000))
        )
        held = asyncio.create_task(_signed_post(session, server, ed_key, "held"))
        await asyncio.sleep(0.05)
        async with session.post(
            server.url.removesuffix("/trade-api/v2") + "/_sim/restart", json={"down_s": 0.3}
        ) as response:
            assert response.status == 202
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await held
        # Down: connections are refused until it listens again.
        with pytest.raises(aiohttp.ClientConnectorError):
            await _signed_post(session, server, ed_key, "while-down")
        await server.wait_restarted()
        assert (server.port, server.restarts) == (port, 1)
        server.state.faults.configure(FaultConfig())
        exchange = server.state.exchange
        assert exchange.find_client_order_id(ed_key.key_id, "held") is None
        assert exchange.find_client_order_id(ed_key.key_id, "while-down") is None
        before = exchange.find_client_order_id(ed_key.key_id, "before")
        assert before is not None
        assert before.order_id == placed["order_id"]
        # The same state: the id is still used, the stats still count what came before.
        status, body = await _signed_post(session, server, ed_key, "before")
        assert status == 409, body
        assert (await _signed_post(session, server, ed_key, "after"))[0] == 201
        requests = server.state.stats.requests
        assert requests[(f"POST {EVENTS}", "shutdown")] == 1
        assert requests[(f"POST {EVENTS}", "201")] == 2


async def test_restart_requests_are_checked() -> None:
    async with SimServer(SimConfig()) as server, aiohttp.ClientSession() as session:
        url = server.url.removesuffix("/trade-api/v2") + "/_sim/restart"
        for bad in ({"down_s": -1}, {"down": 1}):
            async with session.post(url, json=bad) as response:
                assert response.status == 400
        async with session.post(url) as response:
            assert (response.status, await response.json()) == (
                202,
                {"restarting": True, "down_s": 0.0},
            )
        await server.wait_restarted()
        assert server.restarts == 1
