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
from typing import Any, Protocol

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kalshi_router.config import Config, ServiceConfig
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
