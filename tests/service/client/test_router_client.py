"""RouterClient against the service in-process (on a real loopback port or a Unix socket), and
open_router's choice between the embedded router and the client. Reconnecting after the service
restarts: test_client_reconnect.py; the same bot on both through a real ``serve``:
test_client_protocol.py."""

from __future__ import annotations

import asyncio
import inspect
import math
import stat
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from kalshi_router.api import Router
from kalshi_router.config import Config, ExchangeConfig, ServiceConfig
from kalshi_router.errors import (
    ConfigError,
    IntentError,
    QueueFull,
    RouterClosed,
    RouterCrashed,
    ServiceError,
)
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.outcome import Accepted, Outcome, Rejected, Unknown
from kalshi_router.pending import Pending
from kalshi_router.router import OrderRouter
from kalshi_router.service import Metrics, build_service_app
from kalshi_router.service.client import RouterClient, open_router
from kalshi_router.service.protocol import StreamAck, StreamFrame, StreamState
from kalshi_router.service.serve import _listen
from kalshi_router.sim import SimConfig
from tests.integration.conftest import FAST_RETRIES, PRIVATE_PEM, make_signer, running_sim
from tests.service.conftest import (
    AUTH,
    TICKER,
    TOKEN,
    MakeService,
    Running,
    eventually,
    resting,
    slow_exchange,
    start_router,
)

_frames = msgspec.json.Decoder(StreamFrame)


def client_of(running: Running, drain_timeout: float = 10.0) -> RouterClient:
    return RouterClient(str(running.http.make_url("")), token=TOKEN, drain_timeout=drain_timeout)


def bid(price: str = "0.30", count: int = 1) -> OrderIntent:
    return OrderIntent.bid(TICKER, price, count)


# --- the same API, the same outcomes -----------------------------------------------------------


def summary(outcome: Outcome) -> tuple[str, str]:
    return type(outcome).__name__, outcome.code if isinstance(outcome, Rejected) else ""


async def scenario(router: Router) -> list[tuple[str, str]]:
    """A bot's session, written once against the shared API."""
    placed = await router.place(bid(count=3))
    assert isinstance(placed, Accepted)
    refused = await router.place(bid("0.305"))
    many = await router.place_many([bid(), bid(), bid()])
    waited = await (await router.submit_wait(bid(), queue_timeout=1.0))
    order_id = placed.order_id
    amended = await router.amend(
        AmendIntent(
            order_id=order_id, ticker=TICKER, side="bid", price=Decimal("0.31"), count=Decimal(5)
        )
    )
    decreased = await router.decrease(
        DecreaseIntent(order_id=order_id, ticker=TICKER, reduce_by=Decimal(1))
    )
    cancelled = await router.cancel(placed.order_id, TICKER)
    others = [
        CancelIntent(order_id=o.order_id, ticker=TICKER) for o in many if isinstance(o, Accepted)
    ]
    rest = await asyncio.gather(*router.cancel_many(others))
    missing = await router.cancel(CancelIntent(order_id="no-such-order", ticker=TICKER))
    pending = router.submit(bid())
    await router.flush()
    assert pending.done()
    outcomes = [placed, refused, *many, waited, amended, decreased, cancelled, *rest, missing]
    return [*map(summary, outcomes), summary(pending.result())]


EXPECTED = [
    ("Accepted", ""),
    ("Rejected", "invalid_price"),
    *[("Accepted", "")] * 4,
    ("Amended", ""),
    ("Amended", ""),
    *[("Cancelled", "")] * 4,
    ("Rejected", "not_found"),
    ("Accepted", ""),
]


@pytest.fixture(params=["embedded", "service"])
async def api(
    request: pytest.FixtureRequest, make_service: MakeService
) -> AsyncIterator[tuple[Router, OrderRouter]]:
    """The API under test, and the router that serves it (itself, or the service's)."""
    running = await make_service()
    if request.param == "embedded":
        yield running.router, running.router
    else:
        async with client_of(running) as client:
            yield client, running.router


async def test_embedded_and_service_give_the_same_outcomes(
    api: tuple[Router, OrderRouter],
) -> None:
    router, serving = api
    assert await scenario(router) == EXPECTED
    # After flush, the client's report includes every outcome it waited for.
    stats = router.stats()
    assert stats.outcomes == {"accepted": 6, "rejected": 2, "amended": 2, "cancelled": 4}
    assert (stats.queue_depth, stats.in_flight) == (0, 0)
    assert (router.queue_depth, router.in_flight, router.crashed) == (0, 0, None)
    assert dict(router.batch_limits) == serving.batch_limits
    budget, real = router.budget, serving.budget
    assert (budget.capacity, budget.refill_rate, budget.headroom) == (
        real.capacity,
        real.refill_rate,
        real.headroom,
    )
    assert dict(budget.costs) == real.costs
    assert budget.spent == real.spent == stats.tokens_spent
    assert 0 <= budget.tokens() <= budget.capacity


def shape(member: object) -> str:
    if isinstance(member, property):
        return "property"
    return "async" if inspect.iscoroutinefunction(member) else "plain"


def test_both_are_a_router() -> None:
    """mypy checks these assignments against the protocol; at run time, every member is
    there on both, with the same shape (property, plain call or coroutine)."""
    embedded: Router = OrderRouter.connect(Config(), make_signer())
    remote: Router = RouterClient("http://127.0.0.1:1")
    members = {
        name: shape(member)
        for name, member in vars(Router).items()
        if not name.startswith("_") or name in ("__aenter__", "__aexit__")
    }
    assert {"stats", "queue_depth", "budget", "crashed", "batch_limits"} <= set(members)
    for implementation in (type(embedded), type(remote)):
        found = {name: shape(getattr(implementation, name, None)) for name in members}
        assert found == members, implementation


async def test_an_invalid_intent_is_an_intent_error_naming_the_field(running: Running) -> None:
    # The client does not validate again: build a valid intent, then break it behind
    # __post_init__'s back, as a buggy or foreign client would send it.
    broken = bid()
    msgspec.structs.force_setattr(broken, "price", Decimal("1.5"))
    async with client_of(running) as client:
        with pytest.raises(IntentError) as refused:
            await client.place(broken)
        assert refused.value.field == "price"
        assert "between 0 and 1" in refused.value.rule
        # The connection carries on.
        assert isinstance(await client.place(bid()), Accepted)


async def test_a_full_queue_is_queue_full(make_service: MakeService) -> None:
    router = msgspec.structs.replace(FAST_RETRIES, max_in_flight=1, queue_size=1)
    running = await make_service(config=Config(router=router))
    slow_exchange(running, 300)
    async with client_of(running) as client:
        first = client.submit(bid())
        await eventually(lambda: running.router.in_flight == 1)
        second = client.submit(bid())
        third = client.submit(bid())
        with pytest.raises(QueueFull):
            await third
        assert isinstance(await first, Accepted)
        assert isinstance(await second, Accepted)


def drop_connections(running: Running) -> None:
    """The connections are lost (the network went): no close frame."""
    runner = running.http.server.runner
    assert runner is not None
    assert runner.server is not None
    for connection in runner.server.connections:
        assert connection.transport is not None
        connection.transport.abort()


@pytest.mark.parametrize(
    "close",
    [
        pytest.param("going-away", id="service-closes-streams"),
        pytest.param("connection-lost", id="connection-lost"),
    ],
)
async def test_a_broken_stream_is_reopened_and_what_was_pending_gets_its_outcome(
    running: Running, close: str
) -> None:
    slow_exchange(running, 500)
    async with client_of(running) as client:
        pending = [client.submit(bid()) for _ in range(3)]
        await eventually(lambda: running.router.in_flight == 3)
        if close == "going-away":
            await running.service.close_streams()
        else:
            drop_connections(running)
        async with asyncio.timeout(10):  # never hangs
            results = await asyncio.gather(*pending)
        # The service kept them pending; the client asked for them by key until they settled.
        assert [type(r) for r in results] == [Accepted] * 3
        assert isinstance(await client.place(bid()), Accepted)
    assert running.router.stats().outcomes == {"accepted": 4}


async def test_aclose_waits_for_the_outcomes_due(running: Running) -> None:
    slow_exchange(running, 200)
    client = client_of(running)
    await client.connect()
    futures = client.submit_many([bid(), bid()])
    await client.aclose()
    assert [type(f.result()) for f in futures] == [Accepted, Accepted]
    with pytest.raises(RouterClosed):
        client.submit(bid())


async def test_aclose_gives_up_after_its_drain_timeout(running: Running) -> None:
    slow_exchange(running, 500)
    client = client_of(running, drain_timeout=0.05)
    await client.connect()
    future = client.submit(bid())
    async with asyncio.timeout(0.4):
        await client.aclose()
    # As the embedded router settles what is in flight when its drain runs out.
    unknown = future.result()
    assert isinstance(unknown, Unknown)
    assert unknown.client_order_id is not None


async def test_the_service_pushes_its_state_to_streams_that_ask(running: Running) -> None:
    async with running.http.ws_connect("/v1/stream?state=1", headers=AUTH) as socket:
        first = _frames.decode((await socket.receive(timeout=5)).data)
        later = _frames.decode((await socket.receive(timeout=5)).data)
    assert isinstance(first, StreamState)
    assert isinstance(later, StreamState)
    assert later.seq > first.seq
    assert (first.run, first.journal) == (running.service.run, False)
    assert first.deadline_s == running.router.deadline_s
    assert first.batch_limits == running.router.batch_limits
    assert first.budget.capacity == running.router.budget.capacity
    async with running.http.get("/v1/state", headers=AUTH) as response:
        asked = _frames.decode(await response.read())
    assert isinstance(asked, StreamState)
    assert asked.seq > later.seq
    # A stream that did not ask gets the protocol it always had: an ack first.
    async with running.http.ws_connect("/v1/stream", headers=AUTH) as socket:
        await socket.send_json({"type": "submit", "id": 1, "item": resting()})
        assert isinstance(_frames.decode((await socket.receive(timeout=5)).data), StreamAck)


class ExplodingJournal:
    """A bug below the dispatcher: its first send raises."""

    def taken(self, pending: Pending) -> None:
        pass

    def sending(self, batch: Sequence[Pending]) -> None:
        raise RuntimeError("disk on fire")

    def settled(self, pending: Pending, outcome: Outcome) -> None:
        pass

    def resolve_later(self, kind: str, key: str, outcome: Outcome) -> bool:
        return False


async def test_a_crash_of_the_service_router_is_the_clients_crashed(
    exit_stack: AsyncExitStack,
) -> None:
    sim = await exit_stack.enter_async_context(running_sim(SimConfig(tier="premier")))
    config = Config(router=FAST_RETRIES)
    router = OrderRouter.connect(config, make_signer(), sim.url, journal=ExplodingJournal())
    await exit_stack.enter_async_context(router)
    app = build_service_app(router, ServiceConfig(), Metrics(), TOKEN)
    server = await exit_stack.enter_async_context(TestServer(app))
    async with RouterClient(str(server.make_url("")), token=TOKEN) as client:
        assert client.crashed is None
        with pytest.raises(ServiceError, match="dispatcher crashed"):
            await client.place(bid())
        await client.flush()
        crashed = client.crashed
        assert isinstance(crashed, RouterCrashed)
        assert client.crashed is crashed
        assert "disk on fire" in str(crashed)
        assert router.crashed is not None


async def test_a_wrong_token_is_refused_at_connect(running: Running) -> None:
    client = RouterClient(str(running.http.make_url("")), token="wrong")
    with pytest.raises(ServiceError, match=r"refused the stream: 401 \(check the token\)"):
        await client.connect()


async def test_nothing_listening_is_a_service_error(refused_port: int) -> None:
    client = RouterClient(f"http://127.0.0.1:{refused_port}", token=TOKEN)
    with pytest.raises(ServiceError, match="cannot open the stream"):
        await client.connect()


async def test_a_reply_the_client_cannot_read_fails_loudly(running: Running) -> None:
    """A service speaking another protocol: pending futures fail, new intents too, nothing
    hangs, leaks or reconnects."""
    state = running.service.state()

    async def garbage(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(msgspec.json.encode(state).decode())
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await socket.send_str('{"type": "verdict", "id": 1}')
        return socket

    app = web.Application()
    app.router.add_get("/v1/stream", garbage)
    async with TestServer(app) as server, RouterClient(str(server.make_url(""))) as client:
        future = client.submit(bid())
        async with asyncio.timeout(5):
            with pytest.raises(ServiceError, match="undecodable reply"):
                await future
        with pytest.raises(ServiceError, match="undecodable reply"):
            client.submit(bid())


async def test_a_service_that_sends_no_state_is_refused_at_connect() -> None:
    async def silent(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str('{"type": "ack", "id": 1, "key": "k"}')
        return socket

    app = web.Application()
    app.router.add_get("/v1/stream", silent)
    async with TestServer(app) as server:
        with pytest.raises(ServiceError, match="sent no state frame first"):
            await RouterClient(str(server.make_url(""))).connect()


# --- Unix socket -------------------------------------------------------------------------------


async def test_unix_socket_mode(tmp_path: Path) -> None:
    path = tmp_path / "router.sock"
    metrics = Metrics()
    async with running_sim(SimConfig(tier="premier")) as sim, AsyncExitStack() as stack:
        router = await start_router(stack, sim, metrics)
        # No token: on a Unix socket the file's mode is the guard.
        app = build_service_app(router, ServiceConfig(unix_socket=str(path)), metrics, None)
        runner = web.AppRunner(app)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        address = await _listen(runner, ServiceConfig(unix_socket=str(path)))
        assert address == f"unix:{path}"
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        config = Config(
            exchange=ExchangeConfig(target="service"),
            service=ServiceConfig(unix_socket=str(path)),
        )
        client = open_router(config)
        assert isinstance(client, RouterClient)
        async with client:
            outcome = await client.place(bid())
        assert isinstance(outcome, Accepted)
        assert sim.state.exchange.find_client_order_id("router-it", outcome.client_order_id)


# --- open_router -------------------------------------------------------------------------------


def test_open_router_embedded_for_url() -> None:
    config = Config(exchange=ExchangeConfig(target="url"), router=FAST_RETRIES)
    router = open_router(config, make_signer())
    # Not started: no session exists yet, so nothing needs closing.
    assert isinstance(router, OrderRouter)


def test_open_router_embedded_reads_credentials_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(PRIVATE_PEM)
    key.chmod(0o600)
    monkeypatch.setenv("KALSHI_API_KEY_ID", "router-it")
    monkeypatch.setenv("KALSHI_PRIVATE_KEY_PATH", str(key))
    monkeypatch.delenv("KALSHI_PRIVATE_KEY", raising=False)
    assert isinstance(open_router(Config(exchange=ExchangeConfig(target="url"))), OrderRouter)


def test_open_router_refuses_the_in_process_simulator() -> None:
    with pytest.raises(ConfigError, match=r'exchange.target: "sim"'):
        open_router(Config(exchange=ExchangeConfig(target="sim")), make_signer())


def test_open_router_refuses_port_zero_for_a_client() -> None:
    config = Config(exchange=ExchangeConfig(target="service"), service=ServiceConfig(port=0))
    with pytest.raises(ConfigError, match=r"service\.port"):
        open_router(config)


@pytest.mark.parametrize(
    ("host", "url"),
    [("127.0.0.1", "http://127.0.0.1:8123"), ("::1", "http://[::1]:8123")],
)
def test_open_router_service_url(
    host: str, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALSHI_ROUTER_TOKEN", "x")
    settings = ServiceConfig(host=host, port=8123, token_file=str(tmp_path / "t"))
    client = open_router(Config(exchange=ExchangeConfig(target="service"), service=settings))
    assert isinstance(client, RouterClient)
    assert client.url == url


@pytest.mark.parametrize("source", ["environment", "token-file"])
async def test_open_router_finds_the_token(
    running: Running, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    monkeypatch.delenv("KALSHI_ROUTER_TOKEN", raising=False)
    if source == "environment":
        monkeypatch.setenv("KALSHI_ROUTER_TOKEN", TOKEN)
    else:
        token_file.write_text(TOKEN + "\n")
    url = running.http.make_url("")
    assert url.port is not None
    settings = ServiceConfig(host="127.0.0.1", port=url.port, token_file=str(token_file))
    client = open_router(Config(exchange=ExchangeConfig(target="service"), service=settings))
    assert isinstance(client, RouterClient)
    async with client:
        assert isinstance(await client.place(bid()), Accepted)


# --- what the embedded router should refuse too ------------------------------------------------


@pytest.mark.parametrize("deadline", [math.nan, math.inf, -1.0])
async def test_the_embedded_router_refuses_a_deadline_it_cannot_keep(
    running: Running, deadline: float
) -> None:
    with pytest.raises(IntentError, match="deadline_s"):
        running.router.submit(bid(), deadline_s=deadline)
    await running.router.flush()
