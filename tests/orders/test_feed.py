"""The order feed against the simulator's WebSocket: subscribe, frames, reconnect, close."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kalshi_router.errors import ConfigError, CredentialsRefused, WireError
from kalshi_router.orders import OrderFeed, OrderFrame, ws_url
from kalshi_router.sim import SimConfig, SimServer
from kalshi_router.wire.signer import Signer, generate_key, load_private_key
from kalshi_router.wire.ws_models import FillFrame, UserOrderFrame
from tests.integration.conftest import KEY_ID, make_signer, running_sim
from tests.sim.conftest import order

ORDERS = "/portfolio/events/orders"


@pytest.mark.parametrize(
    ("rest", "ws"),
    [
        (
            "https://external-api.kalshi.com/trade-api/v2",
            "wss://external-api-ws.kalshi.com/trade-api/ws/v2",
        ),
        (
            "https://External-API.demo.kalshi.co/trade-api/v2/",
            "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2",
        ),
        (
            "https://api.elections.kalshi.com/trade-api/v2",
            "wss://api.elections.kalshi.com/trade-api/ws/v2",
        ),
        ("https://demo-api.kalshi.co/trade-api/v2", "wss://demo-api.kalshi.co/trade-api/ws/v2"),
        ("http://127.0.0.1:8123/trade-api/v2", "ws://127.0.0.1:8123/trade-api/ws/v2"),
        ("http://[::1]:8123/trade-api/v2", "ws://[::1]:8123/trade-api/ws/v2"),
    ],
)
def test_ws_url_from_the_rest_root(rest: str, ws: str) -> None:
    assert ws_url(rest) == ws


@pytest.mark.parametrize(
    "rest", ["ftp://h/trade-api/v2", "https://h/trade-api/v1", "https://h/trade-api/v2?x=1"]
)
def test_ws_url_refuses_what_is_no_rest_root(rest: str) -> None:
    with pytest.raises(ConfigError, match=r"^exchange\.base_url: "):
        ws_url(rest)


@pytest.mark.parametrize(
    ("url", "verify", "setting"),
    [
        ("http://example.com/trade-api/v2", True, "exchange.base_url"),
        ("https://example.com/trade-api/v2", False, "exchange.verify_tls"),
    ],
)
def test_off_loopback_needs_verified_tls(url: str, verify: bool, setting: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{setting}: "):
        OrderFeed(url, make_signer(), lambda _: None, on_reconnect=lambda: None, verify_tls=verify)


class Recorder:
    """What the feed hands over, with a way to wait for a frame of one type."""

    def __init__(self) -> None:
        self.frames: list[OrderFrame] = []
        self.reconnects = 0
        self.changed = asyncio.Event()

    def on_frame(self, frame: OrderFrame) -> None:
        self.frames.append(frame)
        self.changed.set()

    def on_reconnect(self) -> None:
        self.reconnects += 1
        self.changed.set()

    async def until(self, check: Any) -> None:
        async with asyncio.timeout(5):
            while not check():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with running_sim(SimConfig()) as server:
        yield server


async def place(sim: SimServer, **fields: Any) -> None:
    async with aiohttp.ClientSession() as session:
        headers = make_signer().headers("POST", "/trade-api/v2" + ORDERS)
        async with session.post(
            sim.url + ORDERS, data=msgspec.json.encode(order(**fields)), headers=headers
        ) as resp:
            assert resp.status == 201, await resp.text()


def feed_for(sim: SimServer, recorder: Recorder, signer: Signer | None = None) -> OrderFeed:
    return OrderFeed(
        sim.url,
        signer or make_signer(),
        recorder.on_frame,
        on_reconnect=recorder.on_reconnect,
        backoff_base_s=0.01,
        backoff_cap_s=0.05,
        rng=random.Random(0),
    )


async def test_user_order_and_fill_frames_reach_the_callback(sim: SimServer) -> None:
    recorder = Recorder()
    async with feed_for(sim, recorder) as feed:
        assert feed.url.startswith("ws://127.0.0.1:")
        # The sim's house book bids 0.45 and asks 0.55: 0.30 rests, 0.60 takes.
        await place(sim, side="bid", price="0.30")
        await recorder.until(lambda: [type(f) for f in recorder.frames] == [UserOrderFrame])
        await place(sim, side="bid", price="0.60")
        await recorder.until(lambda: any(isinstance(f, FillFrame) for f in recorder.frames))
    assert recorder.reconnects == 0
    fill = next(f for f in recorder.frames if isinstance(f, FillFrame))
    assert (fill.msg.is_taker, fill.msg.yes_price_dollars) == (True, Decimal("0.55"))


async def test_a_dropped_connection_reconnects_resubscribes_and_frames_flow(
    sim: SimServer,
) -> None:
    recorder = Recorder()
    async with feed_for(sim, recorder) as feed:
        await sim.restart()
        await recorder.until(lambda: recorder.reconnects == 1)
        assert feed.connections == 2
        await place(sim)
        await recorder.until(lambda: any(isinstance(f, UserOrderFrame) for f in recorder.frames))


def feed_tasks() -> list[asyncio.Task[Any]]:
    """The tasks running the feed's code (the sim's server tasks share the loop)."""
    names = {t: getattr(t.get_coro(), "__qualname__", "") for t in asyncio.all_tasks()}
    return [t for t, name in names.items() if name.startswith("OrderFeed.")]


async def test_aclose_leaves_no_task_behind(sim: SimServer) -> None:
    feed = feed_for(sim, Recorder())
    await feed.start()
    assert len(feed_tasks()) == 1
    await feed.aclose()
    assert feed_tasks() == []
    await feed.wait()  # closed on purpose: no error to raise
    await feed.aclose()  # a second close does nothing


async def test_a_wrong_key_ends_the_feed_with_a_clear_error(sim: SimServer) -> None:
    private, _ = generate_key("ed25519")
    stranger = Signer(KEY_ID, load_private_key(private))
    with pytest.raises(CredentialsRefused) as caught:
        async with feed_for(sim, Recorder(), stranger):
            pytest.fail("a refused handshake must not start the feed")
    message = str(caught.value)
    assert "HTTP 401" in message
    assert "WebSocket" in message
    assert "KALSHI_API_KEY_ID" in message
    assert "a simulator on this machine" in message
    assert feed_tasks() == []


async def refusing_exchange(code: int) -> AsyncIterator[str]:
    """An exchange whose WebSocket answers every subscribe with error ``code``; yields its
    REST root. Counts the connections in ``hits``."""
    hits: list[int] = []

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        hits.append(1)
        async for message in ws:
            command = msgspec.json.decode(message.data)
            error = {"code": code, "msg": "refused"}
            await ws.send_str(
                msgspec.json.encode({"id": command["id"], "type": "error", "msg": error}).decode()
            )
        return ws

    app = web.Application()
    app.router.add_get("/trade-api/ws/v2", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/trade-api/v2"))
    finally:
        await server.close()


async def test_a_subscribe_refused_for_good_ends_the_feed_with_the_exchanges_words() -> None:
    async for url in refusing_exchange(8):
        feed = OrderFeed(url, make_signer(), Recorder().on_frame, on_reconnect=lambda: None)
        with pytest.raises(WireError, match=r"refused to subscribe .*error 8: refused"):
            await asyncio.wait_for(feed.start(), 5)
        assert feed_tasks() == []


async def test_a_subscribe_refused_for_now_is_tried_again() -> None:
    async for url in refusing_exchange(18):
        recorder = Recorder()
        feed = OrderFeed(
            url,
            make_signer(),
            recorder.on_frame,
            on_reconnect=recorder.on_reconnect,
            backoff_base_s=0.001,
            backoff_cap_s=0.005,
            rng=random.Random(0),
        )
        start = asyncio.create_task(feed.start())
        # It keeps reconnecting (never subscribed, never ended) until the caller gives up.
        done, _ = await asyncio.wait({start}, timeout=0.3)
        assert done == set()
        start.cancel()
        with pytest.raises(asyncio.CancelledError):
            await start
        assert feed_tasks() == []
