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

from kalshi_router.sim import FaultConfig, SimConfig, SimServer, serve_forever
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
