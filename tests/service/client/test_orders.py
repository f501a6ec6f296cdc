"""``RouterClient.orders``: on its own against ``OrderForwarding`` (a property over streams that
break and come back), then through the service with a source the test pushes updates into:
two bots, handles, positions, a reconnect, a restart of the service, tracking off. With the
router's own tracker end to end: test_orders_tracked.py."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalshi_router.config import ServiceConfig
from kalshi_router.errors import ConfigError
from kalshi_router.intent import OrderIntent
from kalshi_router.orders.watch import Watch
from kalshi_router.outcome import Accepted
from kalshi_router.service import Metrics, build_service_app
from kalshi_router.service import orders as forwarding_module
from kalshi_router.service.client import RouterClient
from kalshi_router.service.client.orders import RemoteOrders
from kalshi_router.service.orders import OrderForwarding
from kalshi_router.service.protocol import StreamOrderUpdate, ViewRequest
from kalshi_router.sim import SimConfig
from tests.integration.conftest import running_sim
from tests.service.conftest import (
    OTHER_TICKER,
    TICKER,
    TOKEN,
    Running,
    a_fill,
    eventually,
    order_update,
    start_router,
    start_with_orders,
)

# --- RemoteOrders against OrderForwarding, no network --------------------------------------------


class Wire:
    """One bot's stream to ``forwarding``, delivered at once; it can break and open again."""

    def __init__(self, forwarding: OrderForwarding, orders: RemoteOrders) -> None:
        self.forwarding = forwarding
        self.orders = orders
        self.open = False

    def put_nowait(self, item: StreamOrderUpdate, /) -> None:
        self.orders.on_reply(item)

    def send(self, held: object, frame: str) -> None:
        """The view request: answered in order, as the service's stream answers it."""
        message = msgspec.json.decode(frame)
        request = msgspec.convert(message["item"], ViewRequest)
        self.orders.on_reply(self.forwarding.view("bot", message["id"], request))

    async def connect(self) -> None:
        self.forwarding.attach("bot", self)
        self.open = True
        await self.orders.sync(self)  # type: ignore[arg-type]  # a Link as far as sync goes

    def drop(self) -> None:
        self.forwarding.detach("bot", self)
        self.orders.dropped()
        self.open = False


_ORDERS = [f"k-{n}" for n in range(4)]
_steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("fill"),
            st.sampled_from(_ORDERS),
            st.sampled_from(["bid", "ask"]),
            st.integers(1, 5),
            st.sampled_from([TICKER, OTHER_TICKER]),
        ),
        st.tuples(st.just("final"), st.sampled_from(_ORDERS)),
        st.tuples(st.just("drop")),
        st.tuples(st.just("connect")),
    ),
    min_size=5,
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_steps, kept=st.integers(1, 3))
async def test_streams_that_break_and_come_back_lose_nothing_and_count_each_fill_once(
    steps: list[tuple[Any, ...]], kept: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(forwarding_module, "REPLAY_KEPT", kept)
        forwarding = OrderForwarding(Watch(), "run-1")
        everything = Watch()  # every update the bot's orders had, each once
        orders = RemoteOrders()
        wire = Wire(forwarding, orders)
        await wire.connect()
        for key in _ORDERS:
            forwarding.placed("bot", key, accepted_future(key))
            first = order_update(key, f"o-{key}")
            forwarding.forward(first)
            everything.push(first)
        for trade, step in enumerate(steps):
            if step[0] == "fill":
                _, key, side, count, ticker = step
                fill = a_fill(f"t-{trade}", f"o-{key}", side, count, ticker=ticker)
                news = order_update(None, f"o-{key}", "partially_filled", fill=fill)
            elif step[0] == "final":
                news = order_update(step[1], f"o-{step[1]}", "cancelled")
            elif step[0] == "drop" and wire.open:
                wire.drop()
                continue
            elif step[0] == "connect" and not wire.open:
                await wire.connect()
                continue
            else:
                continue
            forwarding.forward(news)
            everything.push(news)
        if not wire.open:
            await wire.connect()
    assert orders.positions() == everything.positions()
    assert orders.positions() == forwarding.positions("bot").positions
    assert sorted_keys(orders.open_orders()) == sorted_keys(everything.open_orders())
    for key in _ORDERS:
        assert orders.get(key) == everything.get(key)


def sorted_keys(updates: Any) -> list[str | None]:
    return sorted(update.order_id for update in updates)


def accepted_future(key: str) -> asyncio.Future[Any]:
    future = asyncio.get_running_loop().create_future()
    zero, one = Decimal(0), Decimal(1)
    outcome = Accepted(
        client_order_id=key, order_id=f"o-{key}", fill_count=zero, remaining_count=one
    )
    future.set_result(outcome)
    return future


async def test_updates_on_a_new_stream_before_its_view_are_left_to_the_view() -> None:
    orders = RemoteOrders()
    orders.dropped()
    early = StreamOrderUpdate(3, order_update("k", "o-k"))
    assert orders.on_reply(early)  # taken, and dropped: the view covers it
    assert orders.get("k") is None


# --- through the service -----------------------------------------------------------------------


def client(running: Running | str, name: str | None) -> RouterClient:
    url = running if isinstance(running, str) else str(running.http.make_url(""))
    return RouterClient(url, token=TOKEN, name=name)


def bid(key: str, price: str = "0.30") -> OrderIntent:
    return OrderIntent.bid(TICKER, price, 1, client_order_id=key)


async def place(router: RouterClient, key: str) -> str:
    outcome = await router.place(bid(key))
    assert isinstance(outcome, Accepted)
    return outcome.order_id


@pytest.fixture
async def source() -> Watch:
    return Watch()


@pytest.fixture
async def running(exit_stack: AsyncExitStack, source: Watch) -> Running:
    return await start_with_orders(exit_stack, source)


async def test_two_bots_each_see_their_own_orders_and_handles_resolve_when_final(
    running: Running, source: Watch
) -> None:
    async with client(running, "bot-a") as a, client(running, "bot-b") as b:
        order_a, order_b = await place(a, "cl-a-1"), await place(b, "cl-b-1")
        seen_by_a = a.orders.updates()
        source.push(order_update("cl-a-1", order_a))
        source.push(order_update("cl-b-1", order_b))
        source.push(order_update("elsewhere", "o-elsewhere"))
        await eventually(lambda: a.orders.get("cl-a-1") is not None)
        await eventually(lambda: b.orders.get("cl-b-1") is not None)
        handle = a.orders.handle("cl-a-1")
        waiting = asyncio.create_task(handle.final())
        fill = a_fill("t-1", order_a, count=1, price="0.30")
        source.push(order_update(None, order_a, "filled", fill=fill))
        final = await asyncio.wait_for(waiting, 10)
        assert (final.state, final.fill) == ("filled", fill)
        assert [(await anext(seen_by_a)).state for _ in range(2)] == ["resting", "filled"]
        assert a.orders.get("cl-b-1") is None
        assert b.orders.get("cl-a-1") is None
        assert b.orders.get("elsewhere") is None
        assert a.orders.get("elsewhere") is None
        assert a.orders.open_orders() == []
        assert [u.client_order_id for u in b.orders.open_orders(TICKER)] == ["cl-b-1"]
        assert a.orders.positions()[TICKER].position == 1
        assert b.orders.positions() == {}


async def test_a_reconnected_client_keeps_its_view(running: Running, source: Watch) -> None:
    async with client(running, "bot-a") as a:
        order_1, order_2 = await place(a, "cl-1"), await place(a, "cl-2")
        source.push(order_update("cl-1", order_1))
        source.push(order_update("cl-2", order_2))
        source.push(order_update(None, order_1, "partially_filled", fill=a_fill("t-1", order_1)))
        await eventually(lambda: TICKER in a.orders.positions())
        handle = a.orders.handle("cl-2")
        waiting = asyncio.create_task(handle.final())
        await cut_streams(running)
        # Away: the service keeps what the bot misses.
        source.push(order_update(None, order_1, "partially_filled", fill=a_fill("t-2", order_1)))
        source.push(order_update("cl-2", order_2, "cancelled"))
        assert (await asyncio.wait_for(waiting, 10)).state == "cancelled"
        await eventually(lambda: a.connected)
        assert a.orders.positions()[TICKER].position == 4
        assert [u.order_id for u in a.orders.open_orders()] == [order_1]
        # And it goes on: the next update comes on the new stream.
        source.push(order_update("cl-1", order_1, "cancelled"))
        await eventually(lambda: a.orders.open_orders() == [])
        assert a.orders.positions()[TICKER].position == 4


async def test_a_client_away_too_long_gets_a_snapshot(
    running: Running, source: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forwarding_module, "REPLAY_KEPT", 1)
    async with client(running, "bot-a") as a:
        order_1 = await place(a, "cl-1")
        source.push(order_update("cl-1", order_1))
        source.push(order_update(None, order_1, "partially_filled", fill=a_fill("t-1", order_1)))
        await eventually(lambda: TICKER in a.orders.positions())
        await cut_streams(running)
        for trade in range(2, 5):
            fill = a_fill(f"t-{trade}", order_1, "ask", count=1)
            source.push(order_update(None, order_1, "partially_filled", fill=fill))
        await eventually(lambda: a.connected)
        await eventually(lambda: a.orders.positions()[TICKER].position == -1)
        latest = a.orders.get("cl-1")
        assert latest is not None
        assert latest.fill is not None
        assert latest.fill.trade_id == "t-4"


async def cut_streams(running: Running) -> None:
    """Close every stream from the service's side, and wait until the bot's is detached."""
    forwarding = running.service.orders
    assert forwarding is not None
    sinks = forwarding._clients["bot-a"].sinks
    old = set(sinks)
    for socket in list(running.service.streams):
        await socket.close()
    # The bot may be back on a new stream already: the old one is gone all the same.
    await eventually(lambda: not old & sinks)


async def test_orders_survive_a_restart_of_the_service_when_the_bot_held_them(
    exit_stack: AsyncExitStack, unused_tcp_port: int, source: Watch
) -> None:
    sim = await exit_stack.enter_async_context(running_sim(SimConfig(tier="premier")))
    metrics = Metrics()
    router = await start_router(exit_stack, sim, metrics)

    async def start() -> web.AppRunner:
        app = build_service_app(router, ServiceConfig(), metrics, TOKEN, orders=source)
        runner = web.AppRunner(app, shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
        return runner

    runner = await start()
    async with client(f"http://127.0.0.1:{unused_tcp_port}", "bot-a") as a:
        order_id = await place(a, "cl-1")
        source.push(order_update("cl-1", order_id))
        await eventually(lambda: a.orders.get("cl-1") is not None)
        await runner.cleanup()
        # The new run knows no client of this order: the update goes to nobody ...
        source.push(order_update(None, order_id, "partially_filled", fill=a_fill("t-1", order_id)))
        runner = await start()
        # ... until the bot, back, asks for the order it holds open.
        await eventually(lambda: a.connected)
        await eventually(lambda: a.orders.get("cl-1") != order_update("cl-1", order_id))
        assert a.orders.get("cl-1") == order_update(None, order_id, "partially_filled")
        assert a.orders.positions() == {}  # counted in no run of the service this bot saw
        source.push(order_update("cl-1", order_id, "cancelled"))
        await eventually(lambda: a.orders.open_orders() == [])
    await runner.cleanup()


async def test_without_tracking_orders_names_orders_track(exit_stack: AsyncExitStack) -> None:
    untracked = await start_with_orders(exit_stack, None)
    async with client(untracked, "bot-a") as a:
        with pytest.raises(ConfigError, match=r"orders\.track"):
            _ = a.orders
        assert isinstance(await a.place(bid("cl-1")), Accepted)  # intents go on as before
