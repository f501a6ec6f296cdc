"""End to end: the service's router follows its orders (``[orders] track``: its tracker on the
simulator's WebSocket, reconciled through REST), and each bot's ``RouterClient.orders`` shows
that bot's orders only: handles that resolve when the order is final, fills that reach the bot
that placed the order, positions per bot; one bot written against ``Router`` reads the same on
the embedded router; and a real ``serve`` that follows orders stops cleanly."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kalshi_router.api import Router
from kalshi_router.config import Config, OrdersConfig
from kalshi_router.intent import OrderIntent
from kalshi_router.orders.updates import Position
from kalshi_router.outcome import Accepted
from kalshi_router.service.client import RouterClient
from kalshi_router.service.protocol import PositionsBody
from tests.integration.conftest import FAST_RETRIES
from tests.service.conftest import AUTH, TICKER, TOKEN, MakeService, Running, eventually
from tests.service.test_serve_e2e import TOKEN as SERVE_TOKEN
from tests.service.test_serve_e2e import Sim, serve, serve_config

TRACKED = Config(router=FAST_RETRIES, orders=OrdersConfig(track=True))
RESTS, TAKES = "0.30", "0.55"  # below the house's bids; at its best ask


def client(running: Running, name: str) -> RouterClient:
    return RouterClient(str(running.http.make_url("")), token=TOKEN, name=name)


@pytest.fixture
async def tracked(make_service: MakeService) -> Running:
    return await make_service(config=TRACKED)


def bought(count: int, price: str = TAKES) -> Position:
    paid = Decimal(price) * count
    return Position(ticker=TICKER, position=Decimal(count), cost=paid, volume=Decimal(count))


def without_fees(position: Position | None) -> Position | None:
    # The simulator's fee schedule is its own business: the count and the cost are the test's.
    return None if position is None else msgspec.structs.replace(position, fees=Decimal(0))


async def test_two_bots_each_follow_their_own_orders(tracked: Running) -> None:
    async with client(tracked, "bot-a") as a, client(tracked, "bot-b") as b:
        rests = OrderIntent.bid(TICKER, RESTS, 2)
        placed = await a.place(rests)
        assert isinstance(placed, Accepted)
        # Its first update came before its outcome: the handle is there at once.
        handle_a = a.orders.handle(rests.client_order_id)
        takes = OrderIntent.bid(TICKER, TAKES, 3)
        assert isinstance(await b.place(takes), Accepted)
        handle_b = b.orders.handle(takes.client_order_id)
        filled = await asyncio.wait_for(handle_b.final(), 10)
        assert (filled.state, filled.filled) == ("filled", Decimal(3))
        # The fill frame may come after the order's: positions count it when it does.
        await eventually(lambda: without_fees(b.orders.positions().get(TICKER)) == bought(3))
        assert a.orders.positions() == {}
        assert a.orders.get(takes.client_order_id) is None
        assert b.orders.get(rests.client_order_id) is None
        assert [u.order_id for u in a.orders.open_orders(TICKER)] == [placed.order_id]
        assert b.orders.open_orders() == []
        assert (await a.cancel(placed.order_id, TICKER)).ok
        cancelled = await asyncio.wait_for(handle_a.final(), 10)
        assert (cancelled.state, cancelled.order_id) == ("cancelled", placed.order_id)
        assert a.orders.open_orders() == []
        headers = {**AUTH, "X-Client-Name": "bot-b"}
        async with tracked.http.get("/v1/positions", headers=headers) as response:
            body = msgspec.json.decode(await response.read(), type=PositionsBody)
        assert body.positions == b.orders.positions()


async def test_a_bot_away_when_its_order_fills_finds_it_filled(tracked: Running) -> None:
    async with client(tracked, "bot-a") as a:
        rests = OrderIntent.bid(TICKER, RESTS, 1)
        placed = await a.place(rests)
        assert isinstance(placed, Accepted)
        handle = a.orders.handle(rests.client_order_id)
        waiting = asyncio.create_task(handle.final())
        forwarding = tracked.service.orders
        assert forwarding is not None
        sinks = forwarding._clients["bot-a"].sinks
        old = set(sinks)
        for socket in list(tracked.service.streams):
            await socket.close()
        await eventually(lambda: not old & sinks)
        # Cancelled by someone else while the bot is away (an HTTP client, unnamed).
        item = {"order_id": placed.order_id, "ticker": TICKER}
        async with tracked.http.post("/v1/cancels", json={"items": [item]}, headers=AUTH) as r:
            assert r.status == 200
        final = await asyncio.wait_for(waiting, 10)
        assert final.state == "cancelled"
        await eventually(lambda: a.connected)
        assert a.orders.open_orders() == []


async def follow(router: Router) -> dict[str, Any]:
    """A bot that reads its orders, written once against ``Router``."""
    rests = OrderIntent.bid(TICKER, RESTS, 2)
    placed = await router.place(rests)
    assert isinstance(placed, Accepted)
    handle = router.orders.handle(rests.client_order_id)
    opened = [u.order_id for u in router.orders.open_orders(TICKER)]
    await router.cancel(placed.order_id, TICKER)
    cancelled = await asyncio.wait_for(handle.final(), 10)
    takes = OrderIntent.bid(TICKER, TAKES, 1)
    assert isinstance(await router.place(takes), Accepted)
    filled = await asyncio.wait_for(router.orders.handle(takes.client_order_id).final(), 10)
    await eventually(lambda: TICKER in router.orders.positions())
    got = router.orders.get(placed.order_id)
    return {
        "open then": opened == [placed.order_id],
        "cancelled": (cancelled.state, cancelled.remaining),
        "filled": (filled.state, filled.filled, filled.remaining),
        "by order id": got is not None and got.client_order_id == rests.client_order_id,
        "open now": list(router.orders.open_orders()),
        "position": without_fees(router.orders.positions()[TICKER]),
    }


async def test_one_bot_reads_the_same_on_the_embedded_router_and_the_service(
    tracked: Running, make_service: MakeService
) -> None:
    async with client(tracked, "bot") as remote:
        through_service = await follow(remote)
    embedded = (await make_service(config=TRACKED)).router
    assert await follow(embedded) == through_service
    assert through_service["position"] == bought(1)
    assert through_service["cancelled"] == ("cancelled", Decimal(0))


async def test_serve_following_orders_forwards_them_and_stops_cleanly(tmp_path: Path) -> None:
    async with Sim(tmp_path, "premier") as sim:
        config = serve_config(tmp_path, sim)
        config.write_text(config.read_text() + "\n[orders]\ntrack = true\n")
        async with serve(tmp_path, config) as service:
            async with RouterClient(service.url, token=SERVE_TOKEN, name="bot") as bot:
                takes = OrderIntent.bid(TICKER, TAKES, 2)
                assert isinstance(await bot.place(takes), Accepted)
                filled = await asyncio.wait_for(
                    bot.orders.handle(takes.client_order_id).final(), 10
                )
                assert filled.state == "filled"
                await eventually(
                    lambda: without_fees(bot.orders.positions().get(TICKER)) == bought(2)
                )
                rests = OrderIntent.bid(TICKER, RESTS, 1)
                assert isinstance(await bot.place(rests), Accepted)
                code, _ = await service.stop()
            assert code == 0, service.log()
            assert "Traceback" not in service.log()
