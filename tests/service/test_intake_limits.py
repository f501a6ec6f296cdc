"""The intake's limits and timeouts against a real listening service (``web.AppRunner`` on a
loopback port, configured as ``serve`` configures it), driven over raw sockets: oversized
bodies and frames, too many items, a trickled body, a connection that never sends a whole
request, and a stream that stops answering pings. Timeouts are real but tiny."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import math
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from kalshi_router.config import ServiceConfig
from kalshi_router.errors import ConfigError
from kalshi_router.service import Metrics, build_service_app
from kalshi_router.service.app import server_options
from kalshi_router.service.context import SERVICE, Service
from kalshi_router.sim import SimConfig
from tests.integration.conftest import running_sim
from tests.service.conftest import AUTH, TOKEN, eventually, resting, start_router

SETTINGS = ServiceConfig(
    max_body_bytes=4096,
    max_items=5,
    body_timeout_s=0.3,
    idle_timeout_s=0.5,
    stream_heartbeat_s=0.4,
)
# Generous: these bound how long a test waits for something that must happen, on a busy box.
PATIENCE_S = 5.0


def test_the_defaults() -> None:
    defaults = ServiceConfig()
    assert (defaults.max_body_bytes, defaults.max_items) == (1_048_576, 1000)
    assert (defaults.body_timeout_s, defaults.idle_timeout_s) == (10.0, 30.0)
    assert defaults.stream_heartbeat_s == 20.0
    assert server_options(defaults) == {"keepalive_timeout": 30.0, "lingering_time": 1.0}


@pytest.mark.parametrize("name", ["body_timeout_s", "idle_timeout_s", "stream_heartbeat_s"])
@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf])
def test_a_timeout_must_be_finite_and_positive(name: str, value: float) -> None:
    fields: dict[str, Any] = {name: value}
    with pytest.raises(ConfigError, match=f"^service.{name}: must be a finite number > 0$"):
        ServiceConfig(**fields)


@dataclass
class Listening:
    port: int
    service: Service

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def listening() -> AsyncIterator[Listening]:
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(running_sim(SimConfig(tier="premier")))
        metrics = Metrics()
        router = await start_router(stack, sim, metrics)
        app = build_service_app(router, SETTINGS, metrics, TOKEN)
        runner = web.AppRunner(app, access_log=None, **server_options(SETTINGS))
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield Listening(runner.addresses[0][1], app[SERVICE])


def head(path: str, length: int | None, *, chunked: bool = False, extra: str = "") -> bytes:
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n{extra}\r\n"
    ).encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length: status, headers (lower-case), body."""
    async with asyncio.timeout(PATIENCE_S):
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines if line)
        }
        body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closes the connection (whatever it still sent first is skipped)."""
    async with asyncio.timeout(PATIENCE_S):
        try:
            while await reader.read(65536):
                pass
        except ConnectionResetError:
            pass
    return reader.at_eof()


async def place_one(listening: Listening) -> int:
    """A normal client's request: the status it gets."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{listening.url}/v1/orders", json={"items": [resting()]}, headers=AUTH
        ) as response,
    ):
        return response.status


# --- size ----------------------------------------------------------------------------------------


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    listening: Listening,
) -> None:
    reader, writer = await listening.connect()
    writer.write(head("/v1/orders", 10**9))
    status, headers, body = await read_response(reader)
    assert status == 413
    assert msgspec.json.decode(body) == {
        "error": "request body larger than 4096 bytes",
        "field": None,
    }
    assert headers["content-type"].startswith("application/json")
    writer.close()


async def test_a_chunked_body_over_the_limit_is_a_413(listening: Listening) -> None:
    reader, writer = await listening.connect()
    writer.write(head("/v1/orders", None, chunked=True))
    chunk = b'{"items": [' + b" " * 1000
    for _ in range(5):
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    status, _, body = await read_response(reader)
    assert (status, msgspec.json.decode(body)["error"]) == (
        413,
        "request body larger than 4096 bytes",
    )
    writer.close()
    assert await place_one(listening) == 200


async def test_a_compressed_body_is_measured_after_decompression(listening: Listening) -> None:
    # 10 kB on the wire, 10 MB once inflated.
    body = gzip.compress(b'{"items": [' + b" " * 10_000_000 + b"]}")
    reader, writer = await listening.connect()
    writer.write(head("/v1/orders", len(body), extra="Content-Encoding: gzip\r\n") + body)
    status, _, answer = await read_response(reader)
    assert (status, msgspec.json.decode(answer)["error"]) == (
        413,
        "request body larger than 4096 bytes",
    )
    writer.close()


async def test_too_many_items_is_a_413_naming_the_limit(listening: Listening) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{listening.url}/v1/orders", json={"items": [resting()] * 6}, headers=AUTH
        ) as response,
    ):
        assert response.status == 413
        assert await response.json() == {"error": "6 items; at most 5", "field": "items"}


# --- slow and silent clients ---------------------------------------------------------------------


async def test_a_trickled_body_gets_408_and_the_connection_is_closed(
    listening: Listening,
) -> None:
    reader, writer = await listening.connect()
    writer.write(head("/v1/orders", 1000))
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def trickle() -> None:
        # A byte every 50 ms: never idle, never done, until the server hangs up.
        with contextlib.suppress(ConnectionError):
            while not reader.at_eof():
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)

    trickler = asyncio.create_task(trickle())
    # Meanwhile the service serves others.
    assert await place_one(listening) == 200
    status, headers, body = await read_response(reader)
    assert loop.time() - started >= SETTINGS.body_timeout_s
    assert status == 408
    assert headers["connection"] == "close"
    assert msgspec.json.decode(body)["error"] == "request body not received within 0.3 s"
    assert await closed_by_server(reader)
    await trickler
    writer.close()


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n", id="half-a-head"),
    ],
)
async def test_a_connection_that_sends_no_whole_request_is_closed(
    listening: Listening, sent: bytes
) -> None:
    reader, writer = await listening.connect()
    writer.write(sent)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await closed_by_server(reader)
    assert loop.time() - started >= SETTINGS.idle_timeout_s * 0.9
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed(listening: Listening) -> None:
    reader, writer = await listening.connect()
    writer.write(
        f"GET /v1/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    status, headers, _ = await read_response(reader)
    assert status == 200
    assert headers.get("connection", "keep-alive").lower() == "keep-alive"
    assert await closed_by_server(reader)
    writer.close()


# --- the stream ----------------------------------------------------------------------------------


async def test_a_frame_over_the_limit_closes_the_stream_with_1009_and_why(
    listening: Listening,
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{listening.url}/v1/stream", headers=AUTH) as socket,
    ):
        await socket.send_str("x" * 5000)
        closing = await socket.receive(timeout=PATIENCE_S)
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert (closing.data, closing.extra) == (
            aiohttp.WSCloseCode.MESSAGE_TOO_BIG,
            "frame larger than 4096 bytes",
        )
    await eventually(lambda: not listening.service.streams, PATIENCE_S)
    assert await place_one(listening) == 200


async def test_a_stream_that_answers_pings_may_stay_quiet(listening: Listening) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{listening.url}/v1/stream", headers=AUTH) as socket,
    ):
        # Three heartbeats, answered by the client's automatic pongs (inside receive, whose
        # own timeout restarts with every ping).
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(SETTINGS.stream_heartbeat_s * 3):
                await socket.receive()
        assert not socket.closed
        await socket.send_json({"type": "submit", "id": 1, "item": resting()})
        ack = await socket.receive_json(timeout=PATIENCE_S)
        assert (ack["type"], ack["id"]) == ("ack", 1)


async def test_a_stream_that_stops_answering_pings_is_closed(listening: Listening) -> None:
    """A half-open peer: the handshake done, then silence (pings unanswered)."""
    reader, writer = await listening.connect()
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    async with asyncio.timeout(PATIENCE_S):
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    await eventually(lambda: len(listening.service.streams) == 1, PATIENCE_S)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await closed_by_server(reader)
    # A ping after one heartbeat, then half of one to answer it.
    assert loop.time() - started >= SETTINGS.stream_heartbeat_s
    await eventually(lambda: not listening.service.streams, PATIENCE_S)
    writer.close()
