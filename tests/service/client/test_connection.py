"""RouterClient while the service goes away and comes back: the service's app in-process on a
fixed loopback port, stopped and started again around the same router and simulator (a new
app each time: a new run and an empty outcome book, as after a restart without a journal).
With a journal, through a real ``serve``: test_client_restart.py."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from decimal import Decimal

import pytest
from aiohttp import web

from kalshi_router.config import ServiceConfig
from kalshi_router.errors import QueueFull
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Amended, Cancelled, Closed, Expired, Rejected, Unknown
from kalshi_router.router import OrderRouter
from kalshi_router.service import Metrics, build_service_app
from kalshi_router.service.client import RouterClient
from kalshi_router.service.client.resume import after_reconnect
from kalshi_router.service.context import SERVICE, Service
from kalshi_router.service.protocol import OrderStatus
from kalshi_router.sim import FaultConfig, LatencyConfig, SimConfig, SimServer
from tests.integration.conftest import KEY_ID, running_sim
from tests.service.conftest import TICKER, TOKEN, eventually, start_router


@dataclass
class Restartable:
    sim: SimServer
    router: OrderRouter
    metrics: Metrics
    port: int
    token: str = TOKEN
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service(self) -> Service:
        assert self.runner is not None
        return self.runner.app[SERVICE]

    async def start(self) -> None:
        app = build_service_app(self.router, ServiceConfig(), self.metrics, self.token)
        self.runner = web.AppRunner(app, shutdown_timeout=1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self, *, abort: bool = False) -> None:
        """Gracefully (streams told the service is going away), or as if it died (``abort``:
        every connection cut, no close frame)."""
        runner, self.runner = self.runner, None
        if runner is None:
            return
        if abort and runner.server is not None:
            for connection in runner.server.connections:
                if connection.transport is not None:
                    connection.transport.abort()
        await runner.cleanup()

    def slow(self, ms: float) -> None:
        latency = LatencyConfig(kind="fixed", fixed_ms=ms)
        self.sim.state.faults.configure(FaultConfig(latency=latency))

    def at_exchange(self, client_order_id: str) -> bool:
        return self.sim.state.exchange.find_client_order_id(KEY_ID, client_order_id) is not None


@pytest.fixture
async def service(exit_stack: AsyncExitStack, unused_tcp_port: int) -> Restartable:
    sim = await exit_stack.enter_async_context(running_sim(SimConfig(tier="premier")))
    metrics = Metrics()
    router = await start_router(exit_stack, sim, metrics)
    restartable = Restartable(sim, router, metrics, unused_tcp_port)
    await restartable.start()
    exit_stack.push_async_callback(restartable.stop)
    return restartable


def client_of(service: Restartable, **options: object) -> RouterClient:
    return RouterClient(service.url, token=TOKEN, **options)  # type: ignore[arg-type]


def bid(**fields: str) -> OrderIntent:
    return OrderIntent.bid(TICKER, "0.30", 1, **fields)


async def gone(client: RouterClient) -> None:
    await eventually(lambda: not client.connected)


async def test_intents_wait_for_the_service_and_go_out_once_it_is_back(
    service: Restartable,
) -> None:
    async with client_of(service) as client:
        assert isinstance(await client.place(bid()), Accepted)
        await service.stop()
        await gone(client)
        intents = [bid() for _ in range(3)]
        waiting = client.submit_many(intents)
        assert client.queue_depth == 3
        await asyncio.sleep(0.05)
        assert not any(future.done() for future in waiting)
        await service.start()
        async with asyncio.timeout(10):
            outcomes = await asyncio.gather(*waiting)
        assert [type(outcome) for outcome in outcomes] == [Accepted] * 3
        assert all(service.at_exchange(intent.client_order_id) for intent in intents)
        assert client.connected
        assert client.queue_depth == 0
        assert isinstance(await client.place(bid()), Accepted)


async def test_an_intent_whose_deadline_passes_while_the_service_is_away_expires_unsent(
    service: Restartable,
) -> None:
    async with client_of(service) as client:
        await service.stop()
        await gone(client)
        stale = bid()
        async with asyncio.timeout(5):
            expired = await client.place(stale, deadline_s=0.05)
        assert isinstance(expired, Expired)
        assert expired.client_order_id == stale.client_order_id
        await service.start()
        assert isinstance(await client.place(bid()), Accepted)
    assert not service.at_exchange(stale.client_order_id)


async def test_the_intents_waiting_for_the_service_are_bounded(service: Restartable) -> None:
    async with client_of(service, queue_size=2) as client:
        await service.stop()
        await gone(client)
        waiting = client.submit_many([bid(), bid()])
        with pytest.raises(QueueFull):
            client.submit(bid())
        with pytest.raises(QueueFull):
            client.submit_many([bid()])
        assert client.queue_depth == 2
        async with asyncio.timeout(2):
            await client.aclose(drain_timeout=0.05)
    assert [type(future.result()) for future in waiting] == [Closed, Closed]


async def test_aclose_while_reconnecting_settles_everything_and_leaves_nothing_running(
    service: Restartable,
) -> None:
    service.slow(300)
    client = client_of(service)
    await client.connect()
    sent = client.submit_many([bid(), bid()])
    await eventually(lambda: service.router.in_flight == 2)
    await service.stop(abort=True)
    await gone(client)
    waiting = client.submit(bid())
    async with asyncio.timeout(2):  # never hangs, whatever the reconnecting is doing
        await client.aclose(drain_timeout=0.1)
    # As the embedded router's aclose: sent and unanswered, unknown; never sent, closed.
    assert [type(future.result()) for future in sent] == [Unknown, Unknown]
    assert isinstance(waiting.result(), Closed)
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("kalshi-router-client")] == []


async def test_what_was_in_flight_is_unknown_if_the_service_stays_away(
    service: Restartable,
) -> None:
    service.slow(300)
    async with client_of(service, outage_timeout=0.2) as client:
        sent = [bid(), bid()]
        futures = client.submit_many(sent)
        await eventually(lambda: service.router.in_flight == 2)
        await service.stop(abort=True)
        async with asyncio.timeout(5):
            outcomes = await asyncio.gather(*futures)
        assert [type(outcome) for outcome in outcomes] == [Unknown, Unknown]
        assert [o.client_order_id for o in outcomes] == [i.client_order_id for i in sent]
        assert "unreachable for 0.2 s" in outcomes[0].reason  # type: ignore[union-attr]


async def test_after_a_restart_without_a_journal_what_was_in_flight_is_unknown_not_resent(
    service: Restartable,
) -> None:
    service.slow(300)
    async with client_of(service) as client:
        sent = [bid(), bid()]
        futures = client.submit_many(sent)
        await eventually(lambda: service.router.in_flight == 2)
        await service.stop(abort=True)
        await service.start()  # a new run that does not know them
        async with asyncio.timeout(10):
            outcomes = await asyncio.gather(*futures)
        assert [type(outcome) for outcome in outcomes] == [Unknown, Unknown]
        assert "restarted without a journal" in outcomes[0].reason  # type: ignore[union-attr]
        assert isinstance(await client.place(bid()), Accepted)
    await service.router.flush()
    # They did reach the exchange (the router outlived the app), once each.
    assert all(service.at_exchange(intent.client_order_id) for intent in sent)
    assert service.router.stats().outcomes == {"accepted": 3}


async def test_intents_a_stopping_service_refuses_wait_for_the_next_one(
    service: Restartable,
) -> None:
    async with client_of(service) as client:
        service.service.draining = True
        futures = client.submit_many([bid(), bid()])
        await eventually(lambda: client.queue_depth == 2)
        assert not any(future.done() for future in futures)
        await service.stop()
        await service.start()
        async with asyncio.timeout(10):
            outcomes = await asyncio.gather(*futures)
        assert [type(outcome) for outcome in outcomes] == [Accepted] * 2


async def test_the_token_is_read_again_for_each_connection(service: Restartable) -> None:
    tokens = ["first-token"]
    service.token = tokens[0]
    await service.stop()
    await service.start()
    reads: list[str] = []

    def token() -> str:
        reads.append(tokens[-1])
        return tokens[-1]

    async with RouterClient(service.url, token=token) as client:
        await service.stop()
        service.token = "second-token"  # a restarted service generates a new one
        await service.start()
        waiting = client.submit(bid())
        await eventually(lambda: reads.count("first-token") >= 3)  # refused, tried again
        assert not waiting.done()
        tokens.append("second-token")
        async with asyncio.timeout(10):
            assert isinstance(await waiting, Accepted)


# --- the decision after a reconnect, without a loop ---------------------------------------------


def status(state: str, outcome: object = None) -> OrderStatus:
    return OrderStatus("k", state, outcome)  # type: ignore[arg-type]


ACCEPTED = Accepted(
    client_order_id="k", order_id="o", fill_count=Decimal(0), remaining_count=Decimal(1)
)
CANCELLED = Cancelled(order_id="k", reduced_by=Decimal(1))
AMENDED = Amended(order_id="k")
REJECTED = Rejected(code="not_found", message="no such order")


@pytest.mark.parametrize(
    ("verb", "found", "proven", "expected"),
    [
        ("submit", None, True, "resend"),
        ("cancel", None, True, "resend"),
        ("submit", None, False, Unknown),
        ("submit", status("pending"), False, "wait"),
        ("submit", status("settled", ACCEPTED), False, ACCEPTED),
        ("submit", status("settled", REJECTED), True, REJECTED),
        ("cancel", status("settled", CANCELLED), True, CANCELLED),
        ("decrease", status("settled", AMENDED), True, AMENDED),
        ("amend", status("settled", AMENDED), True, AMENDED),
        # Cancels, amends and decreases of one order share its id as key.
        ("amend", status("settled", CANCELLED), True, Unknown),
        ("cancel", status("settled", AMENDED), True, Unknown),
    ],
)
def test_after_reconnect(
    verb: str, found: OrderStatus | None, proven: bool, expected: object
) -> None:
    decision = after_reconnect(verb, "k", found, absence_proves_unsent=proven)  # type: ignore[arg-type]
    if isinstance(expected, type):
        assert isinstance(decision, Unknown)
        ids = (decision.client_order_id, decision.order_id)
        assert ids == (("k", None) if verb == "submit" else (None, "k"))
    else:
        assert decision == expected
