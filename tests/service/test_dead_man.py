"""Cancel on disconnect. ``DeadMan`` on its own (virtual clock, fake router), then through the
service with its router following orders at the simulator: a bot that opted in and whose
connection is cut, or who stops answering pings, has its resting orders cancelled N s later,
and no other bot's; one back under its name sooner keeps them; a create in flight when the
timer fires is cancelled once accepted; the opt-in is refused without ``orders.track``, without
a name, or with a bad value. A real ``serve`` and a bot killed with SIGKILL:
test_serve_cancels.py."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import aiohttp
import msgspec
import pytest

from kalshi_router.config import Config, ExchangeConfig, OrdersConfig, ServiceConfig
from kalshi_router.errors import ConfigError, IntentError, ServiceError
from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.orders.updates import OrderUpdate
from kalshi_router.outcome import Accepted, Cancelled, CancelOutcome, Rejected
from kalshi_router.service.client import RouterClient, open_router
from kalshi_router.service.dead_man import DeadMan, cancel_open_orders
from kalshi_router.service.protocol import ErrorBody, StreamAck, StreamOutcome, StreamReply
from tests.fakes import VirtualClock
from tests.fakes import clock_fixture as clock_fixture
from tests.integration.conftest import FAST_RETRIES
from tests.service.conftest import (
    AUTH,
    TICKER,
    TOKEN,
    MakeService,
    Running,
    eventually,
    order_update,
    resting,
    slow_exchange,
)

TRACKED = Config(router=FAST_RETRIES, orders=OrdersConfig(track=True))
_replies = msgspec.json.Decoder(StreamReply)

# --- DeadMan on its own ------------------------------------------------------------------------


class FakeRouter:
    """The service's side of a DeadMan: each client's open orders, and the cancels sent."""

    def __init__(self) -> None:
        self.open: dict[str, list[OrderUpdate]] = {}
        self.sent: list[tuple[str | None, CancelIntent]] = []
        self.counted: list[tuple[str, int]] = []
        self.refuse: set[str] = set()

    def open_orders(self, client: str) -> Iterable[OrderUpdate]:
        return self.open.get(client, [])

    def cancel(self, client: str | None, intent: CancelIntent) -> asyncio.Future[CancelOutcome]:
        if intent.order_id in self.refuse:
            raise IntentError("order_id", f"{intent.order_id!r} already has a pending cancel")
        self.sent.append((client, intent))
        future: asyncio.Future[CancelOutcome] = asyncio.get_running_loop().create_future()
        future.set_result(Cancelled(order_id=intent.order_id, reduced_by=Decimal(1)))
        return future

    def count(self, client: str, count: int) -> None:
        self.counted.append((client, count))

    def dead_man(self) -> DeadMan:
        return DeadMan(self.open_orders, self.cancel, self.count)

    def cancelled(self) -> list[tuple[str | None, str]]:
        return [(client, intent.order_id) for client, intent in self.sent]


def opened(*order_ids: str, ticker: str = TICKER) -> list[OrderUpdate]:
    return [order_update(f"c-{order_id}", order_id, ticker=ticker) for order_id in order_ids]


def create(key: str, subaccount: int | None = None) -> tuple[OrderIntent, asyncio.Future[Any]]:
    intent = OrderIntent.bid(TICKER, "0.30", 1, client_order_id=key, subaccount=subaccount)
    return intent, asyncio.get_running_loop().create_future()


def accepted(key: str, order_id: str, remaining: int = 1) -> Accepted:
    return Accepted(
        client_order_id=key,
        order_id=order_id,
        fill_count=Decimal(1 - remaining if remaining < 1 else 0),
        remaining_count=Decimal(remaining),
    )


async def test_the_timer_starts_when_the_last_stream_closes_and_fires_n_s_later(
    clock: VirtualClock,
) -> None:
    router = FakeRouter()
    router.open = {"a": opened("o1", "o2"), "b": opened("o3")}
    dead_man = router.dead_man()
    dead_man.connected("a", 0.5)
    dead_man.connected("a", 0.5)
    dead_man.connected("b", 0.5)
    dead_man.disconnected("a")
    assert not dead_man.armed("a")  # it still has a stream
    await asyncio.sleep(5)
    dead_man.disconnected("a")
    closed_at = clock.elapsed()
    assert dead_man.armed("a")
    await asyncio.sleep(0.499)
    assert router.sent == []
    await asyncio.sleep(0.002)
    assert clock.elapsed() == pytest.approx(closed_at + 0.501)
    assert router.cancelled() == [("a", "o1"), ("a", "o2")]
    assert router.counted == [("a", 1), ("a", 1)]
    assert {intent.ticker for _, intent in router.sent} == {TICKER}
    assert not dead_man.armed("a")
    await asyncio.sleep(10)  # once
    assert len(router.sent) == 2
    dead_man.close()


async def test_a_stream_of_the_same_name_stops_the_timer(clock: VirtualClock) -> None:
    router = FakeRouter()
    router.open = {"a": opened("o1")}
    dead_man = router.dead_man()
    dead_man.connected("a", 0.5)
    dead_man.disconnected("a")
    await asyncio.sleep(0.4)
    dead_man.connected("a", 0.5)
    assert not dead_man.armed("a")
    await asyncio.sleep(10)
    assert router.sent == []
    # Still asked for by the new stream: its closing starts the timer again.
    dead_man.disconnected("a")
    await asyncio.sleep(1)
    assert router.cancelled() == [("a", "o1")]


async def test_a_stream_opened_without_it_withdraws_it(clock: VirtualClock) -> None:
    router = FakeRouter()
    router.open = {"a": opened("o1")}
    dead_man = router.dead_man()
    dead_man.connected("a", 0.5)
    dead_man.connected("a", None)
    dead_man.disconnected("a")
    dead_man.disconnected("a")
    assert not dead_man.armed("a")
    await asyncio.sleep(10)
    assert router.sent == []


async def test_a_create_in_flight_is_cancelled_once_accepted_unless_the_bot_is_back(
    clock: VirtualClock,
) -> None:
    router = FakeRouter()
    router.open = {"a": opened("o1")}
    dead_man = router.dead_man()
    dead_man.connected("a", 0.5)
    placed = [create("k1", subaccount=2), create("k2"), create("k3"), create("k4"), create("k5")]
    for intent, future in placed:
        dead_man.placed("a", intent, future)
    dead_man.disconnected("a")
    await asyncio.sleep(1)
    assert router.cancelled() == [("a", "o1")]
    placed[0][1].set_result(accepted("k1", "o11"))
    placed[1][1].set_result(accepted("k2", "o12", remaining=0))  # filled: nothing rests
    placed[2][1].set_result(Rejected(code="invalid_order", message="no", client_order_id="k3"))
    placed[3][1].set_result(accepted("k4", "o1"))  # its order was cancelled already
    await asyncio.sleep(0)
    assert router.cancelled() == [("a", "o1"), ("a", "o11")]
    assert router.sent[-1][1].subaccount == 2
    dead_man.connected("a", 0.5)  # back: what is accepted from now on stays
    placed[4][1].set_result(accepted("k5", "o15"))
    await asyncio.sleep(0)
    assert router.cancelled() == [("a", "o1"), ("a", "o11")]


async def test_creates_sent_with_no_stream_open_are_not_the_dead_bots(
    clock: VirtualClock,
) -> None:
    router = FakeRouter()
    dead_man = router.dead_man()
    dead_man.connected("a", 0.5)
    dead_man.disconnected("a")
    intent, future = create("http-1")
    dead_man.placed("a", intent, future)  # over HTTP: the bot is alive after all
    await asyncio.sleep(1)
    future.set_result(accepted("http-1", "o9"))
    await asyncio.sleep(0)
    assert router.sent == []


async def test_a_cancel_the_router_refuses_is_skipped_and_logged(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    router = FakeRouter()
    router.open = {"a": opened("o1", "o2", "o3")}
    router.refuse = {"o2"}
    dead_man = router.dead_man()
    dead_man.connected("a", 0.5)
    dead_man.disconnected("a")
    await asyncio.sleep(1)
    assert router.cancelled() == [("a", "o1"), ("a", "o3")]
    assert router.counted == [("a", 1), ("a", 1)]
    assert "cancel on disconnect of o2 not sent" in caplog.text
    assert "client a had no stream for 0.5 s: cancelled 2 open orders" in caplog.text


async def test_close_stops_every_timer_and_later_streams_change_nothing(
    clock: VirtualClock,
) -> None:
    router = FakeRouter()
    router.open = {"a": opened("o1"), "b": opened("o2")}
    dead_man = router.dead_man()
    dead_man.connected("a", 0.5)
    dead_man.connected("b", 0.5)
    dead_man.disconnected("a")
    dead_man.close()
    dead_man.disconnected("b")  # the service closing its streams
    dead_man.connected("c", 0.5)
    assert not any(dead_man.armed(name) for name in "abc")
    await asyncio.sleep(10)
    assert router.sent == []


async def test_cancel_open_orders_sends_one_cancel_per_open_order_and_counts_confirmed() -> None:
    router = FakeRouter()
    router.refuse = {"o3"}
    orders = [
        *opened("o1", "o2", "o3"),
        order_update("c-o4", "o4", "cancelled"),  # final already
        order_update("c-none", None),  # no order id yet: nothing to cancel by
    ]
    assert await cancel_open_orders(orders, router.cancel, 1.0) == (2, 2)
    assert router.cancelled() == [(None, "o1"), (None, "o2")]


# --- through the service -----------------------------------------------------------------------


@pytest.fixture
async def tracked(make_service: MakeService) -> Running:
    return await make_service(config=TRACKED)


class RawBot:
    """A bot on a raw stream, so that a test can cut its connection as a killed process's is
    cut (no close frame), or have it stop answering pings (``autoping=False``, never read)."""

    def __init__(
        self, running: Running, name: str | None, seconds: float | None, *, autoping: bool = True
    ) -> None:
        self._url = running.http.make_url("/v1/stream")
        self._headers = AUTH if name is None else {**AUTH, "X-Client-Name": name}
        self._params = {} if seconds is None else {"cancel_on_disconnect": str(seconds)}
        self._autoping = autoping
        self._session = aiohttp.ClientSession()
        self._ids = 0
        self.socket: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> Self:
        self.socket = await self._session.ws_connect(
            self._url, params=self._params, headers=self._headers, autoping=self._autoping
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.socket is not None:
            await self.socket.close()
        await self._session.close()

    async def place(self, count: int) -> list[str]:
        """``count`` resting orders: their order ids."""
        assert self.socket is not None
        for request_id in range(self._ids + 1, self._ids + count + 1):
            item = {"type": "submit", "id": request_id, "item": resting()}
            await self.socket.send_str(msgspec.json.encode(item).decode())
        self._ids += count
        order_ids: list[str] = []
        while len(order_ids) < count:
            message = await self.socket.receive(timeout=10)
            if message.type != aiohttp.WSMsgType.TEXT:
                continue  # a ping this bot does not answer
            reply = _replies.decode(message.data)
            if isinstance(reply, StreamOutcome):
                assert isinstance(reply.outcome, Accepted), reply
                order_ids.append(reply.outcome.order_id)
        return order_ids

    def cut(self) -> None:
        """The connection is gone, as when the kernel closes a killed process's sockets."""
        assert self.socket is not None
        connection = self.socket._conn
        assert connection is not None
        assert connection.transport is not None
        connection.transport.abort()


def statuses(running: Running, order_ids: Iterable[str]) -> dict[str, str]:
    """Each order's status in the simulator's books."""
    books = {order.order_id: order.status for order in running.sim.state.exchange.orders()}
    return {order_id: books[order_id] for order_id in order_ids}


def all_are(status: str, running: Running, order_ids: list[str]) -> bool:
    return set(statuses(running, order_ids).values()) == {status}


async def test_a_cut_bots_orders_are_cancelled_within_n_s_and_no_other_bots(
    tracked: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "kalshi_router.service")
    seconds = 0.3
    async with (
        RawBot(tracked, "doomed", seconds) as doomed,
        RawBot(tracked, "survivor", seconds) as survivor,  # opted in too, and stays
        RawBot(tracked, "bystander", None) as bystander,  # cut too, but never asked
    ):
        doomed_ids = await doomed.place(3)
        kept = [*await survivor.place(2), *await bystander.place(2)]
        cut_at = time.monotonic()
        doomed.cut()
        bystander.cut()
        await eventually(lambda: all_are("canceled", tracked, doomed_ids))
        took = time.monotonic() - cut_at
        print(
            f"\ncut bot's 3 orders cancelled at the simulator {took:.3f} s after the cut "
            f"(N={seconds} s)"
        )
        assert took >= seconds - 0.01  # the timer never fires early
        assert all_are("resting", tracked, kept)
        assert tracked.service.stats().clients["doomed"].disconnect_cancels == 3
        assert "client doomed had no stream for 0.3 s: cancelled 3 open orders" in caplog.text
        async with tracked.http.get(f"/v1/orders/{doomed_ids[0]}", headers=AUTH) as response:
            actions = (await response.json())["actions"]
        assert [(a["action"], a["outcome"]["type"]) for a in actions] == [
            ("place", "accepted"),
            ("cancel", "cancelled"),
        ]
        # The survivor's own view was never touched either.
        assert all(update.state == "resting" for update in survivor_view(tracked))


def drop_connections(running: Running) -> None:
    """The service's connections are lost (the network went): no close frame."""
    runner = running.http.server.runner
    assert runner is not None
    assert runner.server is not None
    for connection in runner.server.connections:
        assert connection.transport is not None
        connection.transport.abort()


def survivor_view(running: Running) -> list[OrderUpdate]:
    assert running.service.orders is not None
    return running.service.orders.open_orders("survivor", None).orders


async def test_a_bot_that_stops_answering_pings_loses_its_orders(tracked: Running) -> None:
    seconds = 0.2
    async with RawBot(tracked, "hung", seconds, autoping=False) as hung:
        order_ids = await hung.place(2)
        silent_since = time.monotonic()
        # Its socket stays open; it reads nothing more and answers no ping.
        await eventually(lambda: all_are("canceled", tracked, order_ids))
        took = time.monotonic() - silent_since
        print(f"\nhung bot's 2 orders cancelled {took:.3f} s after its last word (N={seconds} s)")
        # Pinged N after the last frame the service read from it (a little before its last
        # outcome came back), closed N/2 later with no pong, then N more: 2.5 N, less that.
        assert took >= 2 * seconds


async def test_a_bot_back_within_n_s_keeps_its_orders(
    tracked: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "kalshi_router.service")
    dead_man = tracked.service.dead_man
    assert dead_man is not None
    async with RawBot(tracked, "blip", 0.3) as first:
        order_ids = await first.place(2)
        first.cut()
        await eventually(lambda: dead_man.armed("blip"))
    async with RawBot(tracked, "blip", 0.3) as second:
        assert not dead_man.armed("blip")
        assert "client blip is back: its orders stay" in caplog.text
        await asyncio.sleep(0.2)
        await asyncio.sleep(0.2)  # past the first stream's N
        assert all_are("resting", tracked, order_ids)
        second.cut()
        # The new stream asked too: the orders placed on the old one go when it does.
        await eventually(lambda: all_are("canceled", tracked, order_ids))


async def test_a_router_client_reconnecting_keeps_its_orders_and_closing_arms_the_timer(
    tracked: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "kalshi_router.service")
    dead_man = tracked.service.dead_man
    assert dead_man is not None
    url = str(tracked.http.make_url(""))
    client = RouterClient(url, token=TOKEN, name="mm", cancel_on_disconnect=5.0)
    async with client:
        placed = await client.place(OrderIntent.bid(TICKER, "0.30", 1))
        assert isinstance(placed, Accepted)
        drop_connections(tracked)
        await eventually(lambda: "client mm has no stream" in caplog.text)
        await eventually(lambda: client.connected)
        assert not dead_man.armed("mm")
        assert "client mm is back: its orders stay" in caplog.text
        assert all_are("resting", tracked, [placed.order_id])
    # A bot closing on purpose is gone as well: its orders go N s later.
    await eventually(lambda: dead_man.armed("mm"))


async def test_a_create_in_flight_when_the_timer_fires_is_cancelled_once_accepted(
    tracked: Running, caplog: pytest.LogCaptureFixture
) -> None:
    slow_exchange(tracked, 300)
    async with RawBot(tracked, "quick", 0.1) as bot:
        assert bot.socket is not None
        item = resting(client_order_id="in-flight-1")
        await bot.socket.send_str(
            msgspec.json.encode({"type": "submit", "id": 1, "item": item}).decode()
        )
        ack = _replies.decode((await bot.socket.receive(timeout=10)).data)
        assert isinstance(ack, StreamAck)
        bot.cut()  # before the exchange answered
        await eventually(lambda: "1 creates still in flight" in caplog.text)
        await eventually(
            lambda: any(
                order.client_order_id == "in-flight-1" and order.status == "canceled"
                for order in tracked.sim.state.exchange.orders()
            )
        )
    assert tracked.service.stats().clients["quick"].disconnect_cancels == 1


# --- refusals ----------------------------------------------------------------------------------


async def handshake(running: Running, params: dict[str, str], name: str | None) -> tuple[int, Any]:
    headers = AUTH if name is None else {**AUTH, "X-Client-Name": name}
    async with running.http.get("/v1/stream", params=params, headers=headers) as response:
        return response.status, msgspec.json.decode(await response.read(), type=ErrorBody)


async def test_without_orders_track_the_opt_in_is_refused_naming_it(running: Running) -> None:
    status, body = await handshake(running, {"cancel_on_disconnect": "0.2"}, "bot")
    assert status == 409
    assert body.field == "orders.track"
    assert "cancel_on_disconnect needs the service to follow orders" in body.error
    assert "[orders] track = true" in body.error
    url = str(running.http.make_url(""))
    client = RouterClient(url, token=TOKEN, name="bot", cancel_on_disconnect=0.2)
    with pytest.raises(ServiceError, match=r"refused the stream: 409 \(orders.track: cancel_on"):
        await client.connect()
    await client.aclose()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon", "86401", ""])
async def test_a_bad_value_is_refused_naming_the_parameter(tracked: Running, value: str) -> None:
    status, body = await handshake(tracked, {"cancel_on_disconnect": value}, "bot")
    assert (status, body.field) == (400, "cancel_on_disconnect")
    assert "a number > 0 and <= 86400" in body.error


async def test_an_unnamed_bot_is_refused(tracked: Running) -> None:
    status, body = await handshake(tracked, {"cancel_on_disconnect": "0.2"}, None)
    assert (status, body.field) == (400, "X-Client-Name")
    assert "needs a named client" in body.error


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cancel_on_disconnect": 0.2}, "cancel_on_disconnect: needs a name"),
        ({"cancel_on_disconnect": 0.0, "name": "bot"}, "a number > 0"),
        ({"cancel_on_disconnect": math.nan, "name": "bot"}, "a number > 0"),
    ],
)
def test_the_client_checks_the_option(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RouterClient("http://127.0.0.1:1", **kwargs)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"client_cancel_on_disconnect_s": 1.0}, "needs service.client_name"),
        (
            {"client_cancel_on_disconnect_s": -1.0, "client_name": "b"},
            "must be between 0 and 86400",
        ),
        (
            {"client_cancel_on_disconnect_s": math.nan, "client_name": "b"},
            "must be between 0 and 86400",
        ),
    ],
)
def test_the_config_checks_the_option(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=f"service.client_cancel_on_disconnect_s: .*{message}"):
        ServiceConfig(**settings)


async def test_open_router_asks_for_it_from_the_config(
    tracked: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALSHI_ROUTER_TOKEN", TOKEN)
    port = tracked.http.port
    assert port is not None
    config = Config(
        exchange=ExchangeConfig(target="service"),
        service=ServiceConfig(port=port, client_name="cfg-bot", client_cancel_on_disconnect_s=30),
    )
    dead_man = tracked.service.dead_man
    assert dead_man is not None
    async with open_router(config):
        assert not dead_man.armed("cfg-bot")
    await eventually(lambda: dead_man.armed("cfg-bot"))
