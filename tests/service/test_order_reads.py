"""Each bot's own orders through the service: streams opened with ``?orders=1``, the ``view``
request, ``GET /v1/open_orders`` and ``GET /v1/positions``, scoped to the calling bot, with a
source the test pushes updates into; and the clear error when the service follows no orders."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from kalshi_router.orders.updates import Position
from kalshi_router.orders.watch import Watch
from kalshi_router.outcome import Accepted
from kalshi_router.service.orders import ORDERS_OFF
from kalshi_router.service.protocol import (
    ErrorBody,
    OpenOrdersBody,
    PositionsBody,
    StreamError,
    StreamFrame,
    StreamOrderUpdate,
    StreamOutcome,
    StreamState,
    StreamView,
    ViewRequest,
)
from tests.service.conftest import (
    AUTH,
    OTHER_TICKER,
    TICKER,
    Running,
    a_fill,
    order_update,
    resting,
    start_with_orders,
)

_frames = msgspec.json.Decoder(StreamFrame)


@dataclass
class Tracked:
    """A service whose order updates come from ``source`` (the test pushes into it)."""

    running: Running
    source: Watch

    @property
    def http(self) -> TestClient[Any, Any]:
        return self.running.http


@pytest.fixture
async def tracked(exit_stack: AsyncExitStack) -> Tracked:
    source = Watch()
    return Tracked(await start_with_orders(exit_stack, source), source)


class Bot:
    """A raw stream with ``?orders=1``, named."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket

    @classmethod
    async def open(cls, http: TestClient[Any, Any], name: str) -> Bot:
        headers = {**AUTH, "X-Client-Name": name}
        return cls(await http.ws_connect("/v1/stream?orders=1&state=1", headers=headers))

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send_str(msgspec.json.encode(message).decode())

    async def next(self, kind: type[Any]) -> Any:
        """The next frame of ``kind`` (state frames and others skipped)."""
        async with asyncio.timeout(10):
            while True:
                message = await self.socket.receive()
                assert message.type == aiohttp.WSMsgType.TEXT, message
                frame = _frames.decode(message.data)
                if isinstance(frame, kind):
                    return frame

    async def place(self, key: str) -> Accepted:
        await self.send({"type": "submit", "id": key, "item": resting(client_order_id=key)})
        outcome = (await self.next(StreamOutcome)).outcome
        assert isinstance(outcome, Accepted)
        return outcome


async def test_two_bots_each_see_only_their_own_updates(tracked: Tracked) -> None:
    a = await Bot.open(tracked.http, "bot-a")
    b = await Bot.open(tracked.http, "bot-b")
    placed_a = await a.place("svc-a-1")
    placed_b = await b.place("svc-b-1")
    tracked.source.push(order_update("svc-b-1", placed_b.order_id))
    tracked.source.push(order_update("not-placed-here", "o-elsewhere"))
    tracked.source.push(order_update("svc-a-1", placed_a.order_id))
    filled = order_update(None, placed_a.order_id, "filled", fill=a_fill("t-1", placed_a.order_id))
    tracked.source.push(filled)
    first_a, second_a = await a.next(StreamOrderUpdate), await a.next(StreamOrderUpdate)
    assert (first_a.seq, first_a.update.client_order_id) == (1, "svc-a-1")
    assert (second_a.seq, second_a.update) == (2, filled)
    only_b = await b.next(StreamOrderUpdate)
    assert (only_b.seq, only_b.update.client_order_id) == (1, "svc-b-1")
    # Nothing else reached B: its next update is the next one of its own.
    tracked.source.push(order_update("svc-b-1", placed_b.order_id, "cancelled"))
    assert (await b.next(StreamOrderUpdate)).seq == 2


async def test_the_http_reads_are_the_calling_bots(tracked: Tracked) -> None:
    a = await Bot.open(tracked.http, "bot-a")
    placed = await a.place("svc-a-1")
    order_id = placed.order_id
    tracked.source.push(
        order_update("svc-a-1", order_id, "partially_filled", fill=a_fill("t", order_id))
    )
    await a.next(StreamOrderUpdate)

    async def get(path: str, name: str) -> bytes:
        headers = {**AUTH, "X-Client-Name": name}
        async with tracked.http.get(path, headers=headers) as response:
            assert response.status == 200
            return await response.read()

    mine = msgspec.json.decode(await get("/v1/open_orders", "bot-a"), type=OpenOrdersBody)
    assert [(u.order_id, u.state) for u in mine.orders] == [(order_id, "partially_filled")]
    other = f"/v1/open_orders?ticker={OTHER_TICKER}"
    assert msgspec.json.decode(await get(other, "bot-a"), type=OpenOrdersBody).orders == []
    theirs = msgspec.json.decode(await get("/v1/open_orders", "bot-b"), type=OpenOrdersBody)
    assert theirs.orders == []
    positions = msgspec.json.decode(await get("/v1/positions", "bot-a"), type=PositionsBody)
    expected = Position(
        ticker=TICKER,
        position=Decimal(2),
        cost=Decimal("1.10"),
        fees=Decimal("0.01"),
        volume=Decimal(2),
    )
    assert (positions.seq, positions.positions) == (1, {TICKER: expected})
    empty = msgspec.json.decode(await get("/v1/positions", "bot-b"), type=PositionsBody)
    assert empty.positions == {}


async def test_the_reads_need_the_token(tracked: Tracked) -> None:
    for path in ("/v1/open_orders", "/v1/positions"):
        async with tracked.http.get(path) as response:
            assert response.status == 401


async def test_a_view_over_the_stream_is_answered_in_order(tracked: Tracked) -> None:
    a = await Bot.open(tracked.http, "bot-a")
    placed = await a.place("svc-a-1")
    tracked.source.push(order_update("svc-a-1", placed.order_id))
    assert (await a.next(StreamOrderUpdate)).seq == 1
    request = ViewRequest(keys=["svc-a-1"])
    await a.send({"type": "view", "id": "v1", "item": msgspec.to_builtins(request)})
    view = await a.next(StreamView)
    assert (view.id, view.seq, view.missed) == ("v1", 1, None)
    assert [u.order_id for u in view.latest] == [placed.order_id]
    await a.send({"type": "view", "id": "v2", "item": {"since": "x"}})
    error = await a.next(StreamError)
    assert (error.id, error.field) == ("v2", "since")


@pytest.fixture
async def untracked(exit_stack: AsyncExitStack) -> Running:
    return await start_with_orders(exit_stack, None)


async def test_without_tracking_the_reads_name_orders_track(untracked: Running) -> None:
    for path in ("/v1/open_orders", "/v1/positions"):
        async with untracked.http.get(path, headers=AUTH) as response:
            assert response.status == 409
            body = msgspec.json.decode(await response.read(), type=ErrorBody)
            assert body == ErrorBody(ORDERS_OFF, "orders.track")
    socket = await untracked.http.ws_connect("/v1/stream?orders=1&state=1", headers=AUTH)
    bot = Bot(socket)
    state = await bot.next(StreamState)
    assert state.orders is False
    await bot.send({"type": "view", "id": 1, "item": {}})
    error = await bot.next(StreamError)
    assert (error.id, error.field, error.message) == (1, "orders.track", ORDERS_OFF)
    assert untracked.service.orders is None
