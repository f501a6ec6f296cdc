"""The service in-process: a simulator on loopback, a router with the service's metrics as its
observer, and the intake app on aiohttp's test server.

Teardown runs last-in first-out (one exit stack): the HTTP client and server go first, then
the router drains (settling every future), then the simulator stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kalshi_router.config import Config, ServiceConfig
from kalshi_router.orders.updates import FillEvent, OrderUpdate
from kalshi_router.orders.watch import Watch
from kalshi_router.router import OrderRouter
from kalshi_router.service import Metrics, build_service_app
from kalshi_router.service.context import SERVICE, Service
from kalshi_router.sim import FaultConfig, LatencyConfig, SimConfig, SimServer
from tests.integration.conftest import FAST_RETRIES, make_signer, running_sim

TOKEN = "test-token-not-a-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TICKER = "KXSERVICE-26DEC31-T50"


def resting(price: object = "0.30", count: object = "1", **fields: Any) -> dict[str, Any]:
    """An order intent as a client sends it: below the house's bids, so it rests."""
    return {"ticker": TICKER, "side": "bid", "price": price, "count": count, **fields}


async def eventually(condition: Callable[[], bool], within_s: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail (not hang) after ``within_s``."""
    step = 0.01
    for _ in range(int(within_s / step)):
        if condition():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met within {within_s} s")


@dataclass
class Running:
    """One service under test and what it is made of."""

    sim: SimServer
    router: OrderRouter
    metrics: Metrics
    app: web.Application
    http: TestClient[web.Request, web.Application]

    @property
    def service(self) -> Service:
        return self.app[SERVICE]


class MakeService(Protocol):
    async def __call__(
        self,
        settings: ServiceConfig | None = None,
        *,
        token: str | None = TOKEN,
        config: Config | None = None,
        sim: SimConfig | None = None,
    ) -> Running: ...


def slow_exchange(running: Running, ms: float) -> None:
    """Every order write takes ``ms`` at the sim: outcomes stay pending that long."""
    latency = LatencyConfig(kind="fixed", fixed_ms=ms)
    running.sim.state.faults.configure(FaultConfig(latency=latency))


@pytest.fixture
async def exit_stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def start_router(
    stack: AsyncExitStack, sim: SimServer, metrics: Metrics, config: Config | None = None
) -> OrderRouter:
    """A started router to ``sim``, built as ``serve`` builds it (a Config and a signer)."""
    router = OrderRouter.connect(
        config or Config(router=FAST_RETRIES), make_signer(), sim.url, observers=[metrics]
    )
    await stack.enter_async_context(router)
    metrics.bind(
        tokens=lambda: router.budget.spent,
        queue_depth=lambda: router.queue_depth,
        in_flight=lambda: router.in_flight,
    )
    return router


@pytest.fixture
def make_service(exit_stack: AsyncExitStack) -> MakeService:
    async def start(
        settings: ServiceConfig | None = None,
        *,
        token: str | None = TOKEN,
        config: Config | None = None,
        sim: SimConfig | None = None,
    ) -> Running:
        # Premier: bursts of tens of orders go out at once instead of over seconds.
        server = await exit_stack.enter_async_context(running_sim(sim or SimConfig(tier="premier")))
        metrics = Metrics()
        router = await start_router(exit_stack, server, metrics, config)
        app = build_service_app(router, settings or ServiceConfig(), metrics, token)
        http = await exit_stack.enter_async_context(TestClient(TestServer(app)))
        return Running(server, router, metrics, app, http)

    return start


@pytest.fixture
async def running(make_service: MakeService) -> Running:
    return await make_service()


# --- orders after acceptance: updates as the router pushes them, a service fed by a test ---


OTHER_TICKER = "KXSERVICE-26DEC31-T60"


def order_update(
    client_order_id: str | None,
    order_id: str | None = None,
    state: Literal["resting", "partially_filled", "filled", "cancelled"] = "resting",
    *,
    ticker: str = TICKER,
    fill: FillEvent | None = None,
) -> OrderUpdate:
    return OrderUpdate(
        order_id=order_id,
        client_order_id=client_order_id,
        ticker=ticker,
        state=state,
        source="ws",
        fill=fill,
    )


def a_fill(
    trade_id: str,
    order_id: str,
    side: Literal["bid", "ask"] = "bid",
    count: int = 2,
    price: str = "0.55",
    ticker: str = TICKER,
) -> FillEvent:
    return FillEvent(
        trade_id=trade_id,
        order_id=order_id,
        client_order_id=None,
        ticker=ticker,
        book_side=side,
        yes_price=Decimal(price),
        count=Decimal(count),
        fee=Decimal("0.01"),
        is_taker=True,
        ts_ms=1,
    )


async def start_with_orders(stack: AsyncExitStack, source: Watch | None) -> Running:
    """A service whose order updates come from ``source`` (None: it follows no orders)."""
    sim = await stack.enter_async_context(running_sim(SimConfig(tier="premier")))
    metrics = Metrics()
    router = await start_router(stack, sim, metrics)
    app = build_service_app(router, ServiceConfig(), metrics, TOKEN, orders=source)
    http = await stack.enter_async_context(TestClient(TestServer(app)))
    return Running(sim, router, metrics, app, http)
