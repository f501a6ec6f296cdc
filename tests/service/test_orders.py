"""Each bot's own orders: ``OrderForwarding`` on its own (a Watch as the router's source, futures
as the creates' outcomes), then through the service's stream and HTTP reads, with a fake source
the test pushes updates into (the router's tracker end to end: test_orders_tracked.py)."""

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

from kalshi_router.orders.updates import OrderUpdate, Position
from kalshi_router.orders.watch import Watch
from kalshi_router.outcome import Accepted, Rejected, Unknown
from kalshi_router.service import orders as forwarding_module
from kalshi_router.service.orders import ORDERS_OFF, OrderForwarding
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


class Inbox:
    """A stream's outbox, as forwarding sees it."""

    def __init__(self) -> None:
        self.items: list[StreamOrderUpdate] = []

    def put_nowait(self, item: StreamOrderUpdate, /) -> None:
        self.items.append(item)


def accepted(key: str, order_id: str) -> asyncio.Future[Any]:
    future = asyncio.get_running_loop().create_future()
    outcome = Accepted(
        client_order_id=key, order_id=order_id, fill_count=Decimal(0), remaining_count=Decimal(1)
    )
    future.set_result(outcome)
    return future


async def settled() -> None:
    """Done callbacks run on the loop's next turn."""
    await asyncio.sleep(0)


# --- OrderForwarding on its own ----------------------------------------------------------------


async def test_each_update_goes_to_the_client_that_placed_the_order_and_no_other() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    a, b = Inbox(), Inbox()
    forwarding.attach("bot-a", a)
    forwarding.attach("bot-b", b)
    forwarding.placed("bot-a", "a-1", accepted("a-1", "o-a1"))
    forwarding.placed("bot-b", "b-1", accepted("b-1", "o-b1"))
    forwarding.forward(order_update("a-1", "o-a1"))
    forwarding.forward(order_update("b-1", "o-b1"))
    forwarding.forward(order_update("elsewhere", "o-x"))  # another process's order: nobody's
    # Fills name the order id only: the first update filed it under its client.
    forwarding.forward(order_update(None, "o-a1", "partially_filled", fill=a_fill("t-1", "o-a1")))
    assert [(m.seq, m.update.order_id) for m in a.items] == [(1, "o-a1"), (2, "o-a1")]
    assert [(m.seq, m.update.order_id) for m in b.items] == [(1, "o-b1")]
    assert forwarding.positions("bot-a").positions[TICKER].position == 2
    assert forwarding.positions("bot-b").positions == {}
    assert forwarding.positions("nobody") == PositionsBody(run="run-1", seq=0, positions={})


async def test_open_orders_are_scoped_to_the_client_and_filter_by_ticker() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    for key, ticker in (("a-1", TICKER), ("a-2", OTHER_TICKER), ("a-3", TICKER)):
        forwarding.placed("bot-a", key, accepted(key, f"o-{key}"))
        forwarding.forward(order_update(key, f"o-{key}", ticker=ticker))
    forwarding.placed("bot-b", "b-1", accepted("b-1", "o-b1"))
    forwarding.forward(order_update("b-1", "o-b1"))
    forwarding.forward(order_update("a-3", "o-a-3", "cancelled"))
    assert {u.client_order_id for u in forwarding.open_orders("bot-a", None).orders} == {
        "a-1",
        "a-2",
    }
    assert [u.client_order_id for u in forwarding.open_orders("bot-a", TICKER).orders] == ["a-1"]
    assert [u.client_order_id for u in forwarding.open_orders("bot-b", None).orders] == ["b-1"]


async def test_a_create_that_placed_nothing_is_forgotten_and_an_unknown_one_kept() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    inbox = Inbox()
    forwarding.attach("bot-a", inbox)
    loop = asyncio.get_running_loop()
    rejected, unknown = loop.create_future(), loop.create_future()
    forwarding.placed("bot-a", "a-rej", rejected)
    forwarding.placed("bot-a", "a-unk", unknown)
    rejected.set_result(Rejected(code="invalid_price", message="no", client_order_id="a-rej"))
    unknown.set_result(Unknown(reason="timed out", client_order_id="a-unk"))
    await settled()
    # Another process may use the same client_order_id later: not this bot's.
    forwarding.forward(order_update("a-rej", "o-1"))
    resolved = OrderUpdate(
        order_id=None,
        client_order_id="a-unk",
        ticker=TICKER,
        state="reconciled_absent",
        source="rest",
    )
    forwarding.forward(resolved)
    assert [m.update for m in inbox.items] == [resolved]


async def test_an_unnamed_client_is_followed_only_while_its_stream_is_open() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    forwarding.placed("#http", "h-1", accepted("h-1", "o-h1"))  # no stream: nowhere to send
    inbox = Inbox()
    forwarding.attach("#conn", inbox)
    forwarding.placed("#conn", "c-1", accepted("c-1", "o-c1"))
    forwarding.forward(order_update("h-1", "o-h1"))
    forwarding.forward(order_update("c-1", "o-c1"))
    assert [m.update.client_order_id for m in inbox.items] == ["c-1"]
    forwarding.detach("#conn", inbox)
    forwarding.forward(order_update("c-1", "o-c1", "cancelled"))
    assert len(inbox.items) == 1
    assert forwarding.open_orders("#conn", None).orders == []
    assert forwarding.open_orders("#http", None).orders == []


async def test_a_named_client_keeps_its_view_between_streams() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    first = Inbox()
    forwarding.attach("bot-a", first)
    forwarding.placed("bot-a", "a-1", accepted("a-1", "o-a1"))
    forwarding.forward(order_update("a-1", "o-a1"))
    forwarding.detach("bot-a", first)
    forwarding.forward(order_update("a-1", "o-a1", "filled", fill=a_fill("t-1", "o-a1")))
    second = Inbox()
    forwarding.attach("bot-a", second)
    forwarding.forward(order_update(None, "o-a1", "filled", fill=a_fill("t-2", "o-a1")))
    assert [m.seq for m in first.items] == [1]
    assert [m.seq for m in second.items] == [3]
    assert forwarding.positions("bot-a").positions[TICKER].position == 4


async def test_only_the_newest_final_orders_stay_filed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forwarding_module, "FINAL_KEPT", 2)
    forwarding = OrderForwarding(Watch(), "run-1")
    inbox = Inbox()
    forwarding.attach("bot-a", inbox)
    for n in range(3):
        forwarding.placed("bot-a", f"a-{n}", accepted(f"a-{n}", f"o-{n}"))
        forwarding.forward(order_update(f"a-{n}", f"o-{n}", "cancelled"))
    # Late fills after the cancels: the oldest order is no longer known as this bot's.
    for n in range(3):
        forwarding.forward(
            order_update(None, f"o-{n}", "cancelled", fill=a_fill(f"t-{n}", f"o-{n}"))
        )
    late = [m.update.order_id for m in inbox.items if m.update.fill is not None]
    assert late == ["o-1", "o-2"]


async def test_a_view_resends_exactly_what_was_missed_while_it_is_held() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    forwarding.placed("bot-a", "a-1", accepted("a-1", "o-a1"))
    for trade in range(5):
        forwarding.forward(order_update("a-1", "o-a1", fill=a_fill(f"t-{trade}", "o-a1")))
    view = forwarding.view("bot-a", "v", ViewRequest(run="run-1", since=2))
    assert view.missed is not None
    assert [m.seq for m in view.missed] == [3, 4, 5]
    assert (view.seq, view.open, view.positions) == (5, [], {})
    caught_up = forwarding.view("bot-a", "v", ViewRequest(run="run-1", since=5))
    assert (caught_up.missed, caught_up.seq) == ([], 5)


@pytest.mark.parametrize(
    ("run", "since"),
    [("run-0", 2), ("run-1", 0), ("run-1", 9)],
    ids=["another-run", "beyond-what-is-held", "ahead-of-the-service"],
)
async def test_otherwise_a_view_is_a_snapshot(
    monkeypatch: pytest.MonkeyPatch, run: str, since: int
) -> None:
    monkeypatch.setattr(forwarding_module, "REPLAY_KEPT", 3)
    forwarding = OrderForwarding(Watch(), "run-1")
    forwarding.placed("bot-a", "a-1", accepted("a-1", "o-a1"))
    forwarding.placed("bot-a", "a-2", accepted("a-2", "o-a2"))
    forwarding.forward(order_update("a-1", "o-a1"))
    forwarding.forward(order_update("a-2", "o-a2"))
    forwarding.forward(order_update("a-1", "o-a1", "filled", fill=a_fill("t-1", "o-a1", count=3)))
    forwarding.forward(
        order_update("a-2", "o-a2", "partially_filled", fill=a_fill("t-2", "o-a2", "ask"))
    )
    view = forwarding.view("bot-a", 7, ViewRequest(keys=["a-1", "no-such"], run=run, since=since))
    assert view.missed is None
    assert (view.id, view.run, view.seq) == (7, "run-1", 4)
    assert [u.client_order_id for u in view.open] == ["a-2"]
    assert [(u.client_order_id, u.state) for u in view.latest] == [("a-1", "filled")]
    assert view.positions[TICKER].position == 1  # bought 3, sold 2


async def test_a_snapshot_files_an_order_held_by_the_client_that_nobody_here_placed() -> None:
    # As after a restart of the service: the router follows the order, no client is known.
    source = Watch()
    before = order_update("a-old", "o-old", "partially_filled", fill=a_fill("t-0", "o-old"))
    source.push(before)
    forwarding = OrderForwarding(source, "run-2")
    inbox = Inbox()
    forwarding.attach("bot-a", inbox)
    forwarding.placed("bot-b", "b-1", accepted("b-1", "o-b1"))
    forwarding.forward(order_update("b-1", "o-b1"))
    view = forwarding.view("bot-a", 1, ViewRequest(keys=["a-old", "b-1"], run="run-1", since=4))
    # Another bot's order is not taken over; the fill before was counted in no view.
    assert [u.client_order_id for u in view.latest] == ["a-old"]
    assert view.latest[0].fill is None
    assert [u.client_order_id for u in view.open] == ["a-old"]
    assert view.positions == {}
    forwarding.forward(order_update(None, "o-old", "filled", fill=a_fill("t-1", "o-old")))
    assert [(m.seq, m.update.state) for m in inbox.items] == [(1, "filled")]


async def test_the_forwarding_task_reads_the_source_until_it_closes() -> None:
    source = Watch()
    forwarding = OrderForwarding(source, "run-1")
    inbox = Inbox()
    forwarding.attach("bot-a", inbox)
    forwarding.placed("bot-a", "a-1", accepted("a-1", "o-a1"))
    forwarding.start()
    await asyncio.sleep(0)  # the task subscribes
    source.push(order_update("a-1", "o-a1"))
    source.push(order_update("a-1", "o-a1", "cancelled"))
    source.close()
    await forwarding.finished(within_s=5)
    assert [m.update.state for m in inbox.items] == ["resting", "cancelled"]
    await forwarding.aclose()


async def test_aclose_stops_the_forwarding_task() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    forwarding.start()
    await asyncio.sleep(0)
    task = forwarding._task
    assert task is not None
    assert not task.done()  # the source is open: it would forward for ever
    await forwarding.aclose()
    assert task.cancelled()


# --- through the service -----------------------------------------------------------------------


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
