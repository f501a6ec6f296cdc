"""The router against the simulator on loopback: a sim with a registered key, a started router,
control-route helpers, and the invariants that every fault test checks.

Fixtures come in two forms: pytest fixtures (``make_sim``, ``make_router``, ``sim``,
``router``) for ordinary tests, and the async context managers underneath them
(``running_sim``, ``running_router``) for the hypothesis test, which needs a fresh sim per
example and so cannot use function-scoped fixtures.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Protocol

import aiohttp
import msgspec
import pytest

from kalshi_router.config import LimitsConfig, RouterConfig
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, OrderOutcome, Unknown
from kalshi_router.router import OrderRouter
from kalshi_router.sim import FaultConfig, SimConfig, SimServer
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialect import DialectName
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.signer import Signer, generate_key, load_private_key

# The sim's user id for a key defaults to its key id, so this is also the user whose orders
# the engine is asked about.
KEY_ID = "router-it"
# Ed25519: generating it costs microseconds, and signing is ~8x cheaper than RSA.
PRIVATE_PEM, PUBLIC_PEM = generate_key("ed25519")

# Short backoff keeps retries (and so fault tests) fast; a long deadline means no intent
# expires merely because the machine is slow, so outcomes do not depend on timing.
FAST_RETRIES = RouterConfig(backoff_base_s=0.01, backoff_cap_s=0.1, deadline_s=20.0)


def make_signer() -> Signer:
    return Signer(KEY_ID, load_private_key(PRIVATE_PEM))


def sim_config_for(dialect: DialectName, **fields: Any) -> SimConfig:
    """A sim that serves ``dialect``. V1 orders cost 100 tokens each, as much as a whole Basic
    bucket, so V1 runs at Premier."""
    if dialect == "v1":
        fields = {"tier": "premier", "v1_mode": "serve"} | fields
    return SimConfig(**fields)


@asynccontextmanager
async def running_sim(config: SimConfig) -> AsyncIterator[SimServer]:
    """A SimServer on a free loopback port that knows our key."""
    async with SimServer(config) as sim:
        sim.register_key(KEY_ID, PUBLIC_PEM)
        yield sim


@asynccontextmanager
async def running_router(
    sim: SimServer,
    *,
    dialect: DialectName = "v2",
    router: RouterConfig = FAST_RETRIES,
    limits: LimitsConfig | None = None,
    timeout_s: float = 5.0,
) -> AsyncIterator[OrderRouter]:
    """A started router on its own transport to ``sim``, with seeded retry jitter."""
    transport = HttpTransport(
        sim.url, make_signer(), timeout_s=timeout_s, max_connections=router.max_in_flight + 2
    )
    client = ExchangeClient(transport, dialect_for(dialect))
    order_router = OrderRouter(
        client, router, limits or LimitsConfig(), rng=random.Random(0), owns_transport=True
    )
    async with order_router:
        yield order_router


class MakeSim(Protocol):
    async def __call__(self, config: SimConfig | None = None) -> SimServer: ...


class MakeRouter(Protocol):
    async def __call__(
        self,
        sim: SimServer,
        *,
        dialect: DialectName = "v2",
        router: RouterConfig = FAST_RETRIES,
        limits: LimitsConfig | None = None,
        timeout_s: float = 5.0,
    ) -> OrderRouter: ...


@pytest.fixture
async def exit_stack() -> AsyncIterator[AsyncExitStack]:
    """One stack for sims and routers, so teardown is last-in first-out: every router closes
    (and settles its futures) before the sim it talks to goes away."""
    async with AsyncExitStack() as stack:
        yield stack


@pytest.fixture
def make_sim(exit_stack: AsyncExitStack) -> MakeSim:
    async def start(config: SimConfig | None = None) -> SimServer:
        return await exit_stack.enter_async_context(running_sim(config or SimConfig()))

    return start


@pytest.fixture
def make_router(exit_stack: AsyncExitStack) -> MakeRouter:
    async def start(
        sim: SimServer,
        *,
        dialect: DialectName = "v2",
        router: RouterConfig = FAST_RETRIES,
        limits: LimitsConfig | None = None,
        timeout_s: float = 5.0,
    ) -> OrderRouter:
        return await exit_stack.enter_async_context(
            running_router(sim, dialect=dialect, router=router, limits=limits, timeout_s=timeout_s)
        )

    return start


@pytest.fixture(params=["v2", "v1"])
def dialect(request: pytest.FixtureRequest) -> DialectName:
    name: DialectName = request.param
    return name


@pytest.fixture
async def sim(make_sim: MakeSim, dialect: DialectName) -> SimServer:
    """A sim for ``dialect`` (V2: Basic, Kalshi's default tier; V1: Premier)."""
    return await make_sim(sim_config_for(dialect))


@pytest.fixture
async def router(make_router: MakeRouter, sim: SimServer, dialect: DialectName) -> OrderRouter:
    return await make_router(sim, dialect=dialect)


# --- control routes ---------------------------------------------------------------------------


def _control_url(sim: SimServer, route: str) -> str:
    # Control routes live at the root, outside /trade-api/v2, and need no signature.
    return f"http://127.0.0.1:{sim.port}/_sim/{route}"


async def set_faults(sim: SimServer, faults: FaultConfig) -> None:
    """Replace the sim's faults through ``PUT /_sim/faults``, as an operator would."""
    async with (
        aiohttp.ClientSession() as session,
        session.put(_control_url(sim, "faults"), data=msgspec.json.encode(faults)) as response,
    ):
        assert response.status == 200, await response.text()


async def sim_stats(sim: SimServer) -> dict[str, Any]:
    """``GET /_sim/stats``: requests by route and outcome, 429s, tokens spent."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(_control_url(sim, "stats")) as response,
    ):
        assert response.status == 200
        stats: dict[str, Any] = await response.json()
        return stats


# --- invariants -------------------------------------------------------------------------------


def check_outcomes(
    sim: SimServer,
    intents: Sequence[OrderIntent],
    futures: Sequence[asyncio.Future[OrderOutcome]],
) -> dict[str, OrderOutcome]:
    """Check what the router told its callers against what the exchange holds; returns the
    outcomes by client_order_id.

    - every future is done, with a result (no exception), for its own client_order_id;
    - the exchange holds each client_order_id at most once, and only ids we submitted;
    - every id it holds was reported Accepted (with the exchange's order id) or Unknown;
    - every id reported Rejected, Expired or Closed is not there.
    """
    assert len(intents) == len(futures)
    outcomes: dict[str, OrderOutcome] = {}
    for intent, future in zip(intents, futures, strict=True):
        assert future.done(), f"{intent.client_order_id} never settled"
        assert not future.cancelled()
        assert future.exception() is None, future.exception()
        outcome = future.result()
        # Matched by id, never by position: each outcome names its own intent.
        assert outcome.client_order_id == intent.client_order_id, outcome
        outcomes[intent.client_order_id] = outcome

    exchange = sim.state.exchange
    held = exchange.client_order_ids(KEY_ID)
    duplicated = {coid: n for coid, n in held.items() if n != 1}
    assert not duplicated, f"client_order_ids placed more than once: {duplicated}"
    strangers = set(held) - set(outcomes)
    assert not strangers, f"the exchange holds ids nobody submitted: {strangers}"
    for coid, outcome in outcomes.items():
        order = exchange.find_client_order_id(KEY_ID, coid)
        if isinstance(outcome, Accepted):
            assert order is not None, f"{coid} reported accepted but absent: {outcome}"
            assert order.order_id == outcome.order_id
        elif not isinstance(outcome, Unknown):
            assert order is None, f"{coid} is at the exchange but reported {outcome}"
    return outcomes


def check_settled_once(router: OrderRouter, count: int) -> None:
    """The router's own tally: exactly ``count`` intents settled, each once."""
    stats = router.stats()
    assert sum(stats.outcomes.values()) == count, stats.outcomes
    assert (stats.queue_depth, stats.in_flight) == (0, 0)
