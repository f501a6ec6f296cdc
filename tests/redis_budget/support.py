"""What the shared budget's tests share: budgets on a real Redis with small, fast numbers, a
router on the simulator using one, and a TCP proxy that delays Redis's bytes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from kalshi_router.budget import Budget
from kalshi_router.budget.opening import open_budget
from kalshi_router.config import BudgetConfig, LimitsConfig, RouterConfig
from kalshi_router.redis_budget.shared import RedisBudget
from kalshi_router.router import OrderRouter
from kalshi_router.sim import SimServer
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport
from tests.integration.conftest import KEY_ID, make_signer

# The exchange's bucket in the budget-only tests: 1000 tokens/s, 200 tokens; 40 of them kept
# as headroom (for bookings up to 40 ms late); two routers with 20 tokens of cancel credit
# each. So the modelled bucket holds 120 tokens, refills at 995/s, and creates (10 tokens)
# leave a reserve of 25 to cancels (1).
RATE = 1000
BUCKET = 200
COSTS = {"create": 10, "cancel": 1, "single": 10}
LIMITS = LimitsConfig(headroom_s=0.04)
CREDIT = 20
MODELLED_RATE = 995.0
RESERVE = 25
_namespaces = itertools.count()


def budget_config(url: str, **fields: Any) -> BudgetConfig:
    """A ``[budget]`` of its own namespace on ``url``."""
    settings: dict[str, Any] = {
        "backend": "redis",
        "redis_url": url,
        "namespace": f"test-shared-{next(_namespaces)}-{random.getrandbits(32)}",
        "routers": 2,
        "cancel_credit": CREDIT,
        "max_late_ms": 40.0,
        "redis_timeout_ms": 200.0,
    }
    return BudgetConfig(**(settings | fields))


async def open_shared(config: BudgetConfig) -> RedisBudget:
    budget = await open_budget(config, Budget(RATE, BUCKET, 100, dict(COSTS)), LIMITS, KEY_ID)
    assert isinstance(budget, RedisBudget)
    return budget


@asynccontextmanager
async def shared(config: BudgetConfig) -> AsyncIterator[RedisBudget]:
    budget = await open_shared(config)
    try:
        yield budget
    finally:
        await budget.aclose()


@asynccontextmanager
async def shared_router(
    sim: SimServer, budget: BudgetConfig, limits: LimitsConfig, router: RouterConfig
) -> AsyncIterator[OrderRouter]:
    """A started router on ``sim`` whose write budget is ``budget``."""
    transport = HttpTransport(
        sim.url, make_signer(), timeout_s=5.0, max_connections=router.max_in_flight + 2
    )
    made = OrderRouter(
        ExchangeClient(transport, dialect_for("v2")),
        router,
        limits,
        rng=random.Random(0),
        owns_transport=True,
        budget=budget,
        key_id=KEY_ID,
    )
    async with made:
        yield made


def figures_of(router: OrderRouter) -> RedisBudget:
    budget = router.budget
    assert isinstance(budget, RedisBudget)
    return budget


async def wait_until(check: Callable[[], bool], within_s: float = 2.0) -> None:
    """Poll ``check`` every ms until it holds (so its moment is caught); fail after
    ``within_s``."""
    for _ in range(int(within_s / 0.001)):
        if check():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"not within {within_s} s")


class DelayProxy:
    """A TCP proxy on loopback that hands every byte on ``delay_s`` after it came, each way,
    in order (a slow network, not a slow server)."""

    def __init__(self, port: int, delay_s: float) -> None:
        self._target = port
        self.delay_s = delay_s
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    def url(self, password: str = "") -> str:
        auth = f":{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    async def __aenter__(self) -> DelayProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _own(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._own(self._pump(reader, upstream_writer))
        self._own(self._pump(upstream_reader, writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        delivering = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((loop.time() + self.delay_s, data))
            queue.put_nowait((loop.time() + self.delay_s, b""))
            await delivering
        finally:
            delivering.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await delivering
            writer.close()
