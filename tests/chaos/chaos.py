"""The chaos harness: sustained load through the router (embedded) or the service (in-process,
over its WebSocket stream and HTTP), while the simulator injects faults on a schedule drawn
from a seed; then the invariants, and the run's record.

One run:

1. *chaos*: a producer keeps ``outstanding`` intents in flight (resting orders that never
   trade) while a schedule from ``random.Random(seed)`` sets fault episodes through
   ``PUT /_sim/faults`` (three fault kinds at a time, every kind once per pass through a
   shuffled list) and restarts the simulator once through ``POST /_sim/restart``;
2. *recovery*: faults off, load on: consecutive windows measure write-budget utilization
   (tokens the simulator accepted between two batch answers / refill x time between them)
   until two in a row reach ``UTILIZATION_GOAL``;
3. *drain and check*: every intent has exactly one outcome, which matches the simulator's
   books; then a few new intents must be accepted.

The simulator runs in the test's loop (``SimServer``), so its token counter is read in the
very callback that sees a batch's answer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import msgspec
from aiohttp.test_utils import TestClient, TestServer

from kalshi_router.config import Config, ExchangeConfig, RouterConfig, ServiceConfig
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, OrderOutcome, Unknown
from kalshi_router.router import OrderRouter
from kalshi_router.service import Metrics, build_service_app
from kalshi_router.service.client import RouterClient
from kalshi_router.service.protocol import ResultsBody
from kalshi_router.sim import FaultConfig, SimConfig, SimServer
from kalshi_router.sim.config import ORDER_WRITE_PATHS
from tests.integration.conftest import KEY_ID, make_signer, running_sim

UTILIZATION_GOAL = 0.99
TOKEN = "chaos-token-not-a-secret"
TICKERS = tuple(f"KXCHAOS-26DEC31-T{n:02d}" for n in range(16))
# Past this, a request is a read timeout: hangs, held requests and slow trickles beyond it are.
REQUEST_TIMEOUT_S = 0.4
# A small, fast account: 400 orders a second, a one-second bucket.
WRITE_REFILL = 4000
SIM = SimConfig(tier="premier", write_refill=WRITE_REFILL, write_capacity=WRITE_REFILL)
ROUTER = RouterConfig(
    max_batch_size=5, deadline_s=3.0, backoff_base_s=0.01, backoff_cap_s=0.1, drain_timeout_s=5
)
# About one second of budget in flight: a full queue, and queue waits well inside deadlines.
OUTSTANDING = WRITE_REFILL // 10
READS = "GET /portfolio/orders"


@dataclass(frozen=True)
class Mode:
    """How long each phase lasts."""

    chaos_s: float
    window_s: float
    recovery_limit_s: float
    episode_s: tuple[float, float] = (0.15, 0.3)
    # Quiet between episodes. Short in the fast mode: every kind must strike within 1.5 s.
    # Longer in the long one: twenty seconds of 90 % failures with no let-up would be an
    # outage, not weather (lookups, limited by the read budget, then miss their deadlines).
    gap_s: tuple[float, float] = (0.0, 0.1)


FAST = Mode(chaos_s=1.5, window_s=0.75, recovery_limit_s=6.0)
LONG = Mode(chaos_s=20.0, window_s=2.0, recovery_limit_s=10.0, gap_s=(0.2, 0.8))


# --- the fault schedule -----------------------------------------------------------------------


def _kinds(rng: random.Random) -> dict[str, dict[str, Any]]:
    """Every fault kind as FaultConfig fields; durations drawn from ``rng``, around the
    router's request timeout so that some answers arrive late and some never."""
    return {
        "storm_429": {"storm_429_rate": 0.3, "storm_429_s": rng.uniform(0.05, 0.3)},
        "error_503": {"error_503_rate": 0.3},
        "error_500": {"error_500_rate": 0.3},
        "reset_before": {"reset_before_rate": 0.3},
        "reset_after": {"reset_after_rate": 0.3},
        "timeout_before": {"timeout_before_rate": 0.3, "timeout_s": 2 * REQUEST_TIMEOUT_S},
        "timeout_after": {"timeout_after_rate": 0.3, "timeout_s": 2 * REQUEST_TIMEOUT_S},
        "hang": {"hang_rate": 0.3, "hang_s": rng.uniform(0.1, 2.5 * REQUEST_TIMEOUT_S)},
        "trickle": {
            "trickle_rate": 0.3,
            "trickle_chunks": 4,
            "trickle_interval_ms": rng.uniform(20, REQUEST_TIMEOUT_S * 500),
        },
        "malformed": {"malformed_rate": 0.3},
        "truncated": {"truncated_rate": 0.3},
        "text_plain": {"text_plain_rate": 0.3},
        "proxy_502": {"proxy_502_rate": 0.3},
    }


KINDS = tuple(_kinds(random.Random(0)))
# Three outcome rates of 0.3: 90 % of the requests of an episode go wrong.
KINDS_AT_ONCE = 3


@dataclass(frozen=True)
class Episode:
    at_s: float
    kinds: tuple[str, ...]
    faults: FaultConfig
    duration_s: float


@dataclass(frozen=True)
class Schedule:
    episodes: list[Episode]
    restart_at_s: float
    restart_down_s: float


def schedule(seed: int, mode: Mode) -> Schedule:
    """Fault episodes filling ``mode.chaos_s``, three kinds each, every kind once per pass
    through a shuffled list; quiet gaps between them; one restart. Reads (the lookups after an
    ambiguous answer) are faulted in about half the episodes."""
    rng = random.Random(seed)
    episodes: list[Episode] = []
    at = rng.uniform(0.0, 0.1)
    order: list[str] = []
    while at < mode.chaos_s:
        if len(order) < KINDS_AT_ONCE:
            order += rng.sample(KINDS, len(KINDS))
        kinds, order = tuple(order[:KINDS_AT_ONCE]), order[KINDS_AT_ONCE:]
        fields: dict[str, Any] = {}
        drawn = _kinds(rng)
        for kind in kinds:
            fields |= drawn[kind]
        paths = [*ORDER_WRITE_PATHS, READS] if rng.random() < 0.5 else list(ORDER_WRITE_PATHS)
        duration = rng.uniform(*mode.episode_s)
        faults = msgspec.convert(fields | {"paths": paths}, FaultConfig)
        episodes.append(Episode(at, kinds, faults, duration))
        at += duration + rng.uniform(*mode.gap_s)
    return Schedule(
        episodes,
        restart_at_s=rng.uniform(0.3, 0.7) * mode.chaos_s,
        restart_down_s=rng.uniform(0.05, 0.3),
    )


# --- the record of a run ----------------------------------------------------------------------


@dataclass
class ChaosReport:
    """What one run did and found; ``summary`` is a line for ``pytest -s``."""

    target: str
    seed: int
    intents: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    unknown_at_exchange: int = 0
    unknown_absent: int = 0
    router: dict[str, int] = field(default_factory=dict)
    utilization_windows: list[float] = field(default_factory=list)
    recovery_s: float | None = None
    wall_s: float = 0.0

    @property
    def utilization(self) -> float:
        return self.utilization_windows[-1] if self.utilization_windows else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "seed": self.seed,
            "intents": self.intents,
            "faults": dict(self.faults),
            "outcomes": dict(self.outcomes),
            "unknown_at_exchange": self.unknown_at_exchange,
            "unknown_absent": self.unknown_absent,
            "router": self.router,
            "utilization_windows": self.utilization_windows,
            "recovery_s": self.recovery_s,
            "wall_s": self.wall_s,
        }

    def summary(self) -> str:
        recovered = "never" if self.recovery_s is None else f"{self.recovery_s:.2f} s"
        return (
            f"chaos {self.target} seed {self.seed}: {self.intents} intents in {self.wall_s:.1f} s; "
            f"outcomes {dict(self.outcomes)} (unknown: {self.unknown_at_exchange} at the "
            f"exchange, {self.unknown_absent} absent); faults {dict(self.faults)}; router "
            f"{self.router}; utilization {self.utilization:.3f} (recovered in {recovered})"
        )


def summarise(reports: Iterable[ChaosReport]) -> dict[str, Any]:
    """Totals over runs, for the long mode."""
    runs = list(reports)
    faults: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for report in runs:
        faults.update(report.faults)
        outcomes.update(report.outcomes)
    recoveries = [r.recovery_s for r in runs if r.recovery_s is not None]
    return {
        "runs": len(runs),
        "intents": sum(r.intents for r in runs),
        "faults": dict(faults.most_common()),
        "outcomes": dict(outcomes.most_common()),
        "unknown_at_exchange": sum(r.unknown_at_exchange for r in runs),
        "unknown_absent": sum(r.unknown_absent for r in runs),
        "utilization_min": min((r.utilization for r in runs), default=0.0),
        "recovery_s_max": max(recoveries, default=None),
        "not_recovered": sum(r.recovery_s is None for r in runs),
        "wall_s": sum(r.wall_s for r in runs),
        "by_run": [r.as_json() for r in runs],
    }


def dump(reports: Iterable[ChaosReport]) -> str:
    return json.dumps(summarise(reports), indent=2, sort_keys=True)


# --- load -------------------------------------------------------------------------------------


class Target(Protocol):
    """What the producer submits to: the embedded router, or the service's client."""

    def submit(self, intent: OrderIntent) -> asyncio.Future[OrderOutcome]: ...


Outcomes = dict[str, list[OrderOutcome | BaseException]]


class Load:
    """Resting orders, ``outstanding`` at a time; each outcome kept by client_order_id, and the
    sim's write-token count read as each batch's answer arrives."""

    def __init__(self, sim: SimServer, seed: int, outstanding: int) -> None:
        self._sim = sim
        self._rng = random.Random(seed)
        self._room = asyncio.Semaphore(outstanding)
        self._ids = itertools.count()
        self._seed = seed
        self.outcomes: Outcomes = {}
        self.submitted = 0
        self._answer = asyncio.Event()
        self._answer_at = (0.0, 0.0)

    def intent(self, tag: str = "c") -> OrderIntent:
        """A bid at 1-30 c or an ask at 70-99 c: never meets the house's quotes or another."""
        rng = self._rng
        cid = f"chaos-{self._seed}-{tag}{next(self._ids)}"
        ticker = rng.choice(TICKERS)
        if rng.random() < 0.5:
            return OrderIntent.bid(ticker, rng.randint(1, 30), 1, client_order_id=cid)
        return OrderIntent.ask(ticker, rng.randint(70, 99), 1, client_order_id=cid)

    def track(self, key: str, future: asyncio.Future[Any]) -> None:
        self.outcomes[key] = []
        self.submitted += 1
        future.add_done_callback(lambda done: self._settled(key, done))

    def record(self, key: str, outcome: OrderOutcome | BaseException) -> None:
        self.outcomes.setdefault(key, []).append(outcome)

    def _settled(self, key: str, future: asyncio.Future[Any]) -> None:
        self._room.release()
        result = future.exception() if not future.cancelled() else asyncio.CancelledError()
        self.record(key, future.result() if result is None else result)
        if not self._answer.is_set():
            self._answer_at = (time.monotonic(), self._sim.state.stats.tokens_spent["write"])
            self._answer.set()

    async def produce(self, target: Target, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._room.acquire()
            intent = self.intent()
            self.track(intent.client_order_id, target.submit(intent))

    async def next_answer(self) -> tuple[float, float]:
        """When the next batch's answer arrived, and the sim's write tokens spent by then."""
        self._answer.clear()
        async with asyncio.timeout(10):
            await self._answer.wait()
        return self._answer_at

    async def utilization(self, window_s: float) -> float:
        """Tokens the sim accepted between two answers ``window_s`` apart / refill x time."""
        start_at, start_tokens = await self.next_answer()
        await asyncio.sleep(window_s)
        end_at, end_tokens = await self.next_answer()
        return (end_tokens - start_tokens) / (WRITE_REFILL * (end_at - start_at))


# --- invariants -------------------------------------------------------------------------------


def check(sim: SimServer, load: Load, report: ChaosReport) -> None:
    """Exactly one outcome per intent, for its own id; the exchange holds every accepted one
    (as the order the caller was told of), none that was refused, expired or closed, no id
    twice and nothing nobody submitted. Fills ``report``'s outcome counts."""
    exchange = sim.state.exchange
    held = exchange.client_order_ids(KEY_ID)
    assert {coid: n for coid, n in held.items() if n != 1} == {}, "an id placed twice"
    assert set(held) <= set(load.outcomes), "the exchange holds ids nobody submitted"
    for coid, found in load.outcomes.items():
        assert len(found) == 1, f"{coid}: {len(found)} outcomes: {found}"
        outcome = found[0]
        assert not isinstance(outcome, BaseException), f"{coid}: {outcome!r}"
        assert outcome.client_order_id == coid, outcome
        report.outcomes[type(outcome).__name__.lower()] += 1
        order = exchange.find_client_order_id(KEY_ID, coid)
        if isinstance(outcome, Accepted):
            assert order is not None, f"{coid} reported accepted but absent: {outcome}"
            assert order.order_id == outcome.order_id, (order, outcome)
        elif isinstance(outcome, Unknown):
            if order is None:
                report.unknown_absent += 1
            else:
                report.unknown_at_exchange += 1
        else:
            assert order is None, f"{coid} is at the exchange but reported {outcome}"
    report.intents = len(load.outcomes)


def count_faults(stats: dict[str, Any], restarts: int) -> Counter[str]:
    """Faults that struck, from the sim's stats: every answer label that is not a status."""
    struck: Counter[str] = Counter()
    for outcomes in stats["requests"].values():
        for label, n in outcomes.items():
            if not label.isdigit():
                struck[label] += n
            elif label == "429":
                struck["bucket_429"] += n
    struck["restart"] = restarts
    return struck


# --- the run ----------------------------------------------------------------------------------


async def _control(
    session: aiohttp.ClientSession, sim: SimServer, method: str, route: str, body: Any
) -> None:
    origin = sim.url.removesuffix("/trade-api/v2")
    async with session.request(method, f"{origin}/_sim/{route}", json=body) as response:
        assert response.status in (200, 202), await response.text()


async def inflict(sim: SimServer, plan: Schedule, session: aiohttp.ClientSession) -> None:
    """Play the schedule through the control routes, as an operator would; faults off at the
    end."""
    started = time.monotonic()

    async def at(offset_s: float) -> None:
        await asyncio.sleep(max(0.0, started + offset_s - time.monotonic()))

    restarted = False
    for episode in plan.episodes:
        await at(episode.at_s)
        if not restarted and episode.at_s >= plan.restart_at_s:
            restarted = True
            await _control(session, sim, "POST", "restart", {"down_s": plan.restart_down_s})
            await sim.wait_restarted()
        await _control(session, sim, "PUT", "faults", msgspec.to_builtins(episode.faults))
        await at(episode.at_s + episode.duration_s)
        await _control(session, sim, "PUT", "faults", {})


Submitter = Callable[[Load, asyncio.Event], Coroutine[Any, Any, None]]


async def run_chaos(
    target_name: str,
    seed: int,
    mode: Mode,
    sim: SimServer,
    producers: list[Submitter],
    load: Load,
    flush: Callable[[], Awaitable[None]],
    router_stats: Callable[[], Awaitable[dict[str, int]]],
) -> ChaosReport:
    """Chaos, recovery, drain, check; the producers run until recovery is measured."""
    report = ChaosReport(target_name, seed)
    started = time.monotonic()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(produce(load, stop)) for produce in producers]
    try:
        async with aiohttp.ClientSession() as session:
            await inflict(sim, schedule(seed, mode), session)
        calm = time.monotonic()
        # Recovered: two windows in a row at the goal (one could be the bucket that filled up
        # while the faults held the router back); the time is to the end of the first.
        recovered_at: float | None = None
        while time.monotonic() - calm <= mode.recovery_limit_s:
            report.utilization_windows.append(await load.utilization(mode.window_s))
            if report.utilization < UTILIZATION_GOAL:
                recovered_at = None
            elif recovered_at is not None:
                report.recovery_s = recovered_at - calm
                break
            else:
                recovered_at = time.monotonic()
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    await flush()
    report.faults = count_faults(sim.state.stats.as_json(), sim.restarts)
    report.router = await router_stats()
    check(sim, load, report)
    report.wall_s = time.monotonic() - started
    return report


def _router_counts(stats: Any) -> dict[str, int]:
    return {
        "http_429": stats.http_429,
        "retries": stats.retries,
        "reconciliations": stats.reconciliations,
        "batches": stats.batches_sent,
    }


def _config() -> Config:
    return Config(router=ROUTER, exchange=ExchangeConfig(request_timeout_s=REQUEST_TIMEOUT_S))


async def probe_router(router: OrderRouter, load: Load) -> None:
    """The router still takes and routes new intents."""
    fresh = [load.intent("probe") for _ in range(5)]
    outcomes = await asyncio.gather(*router.submit_many(fresh))
    assert all(isinstance(o, Accepted) for o in outcomes), outcomes


async def chaos_router(seed: int, mode: Mode) -> ChaosReport:
    """A run through the embedded router."""
    async with running_sim(msgspec.structs.replace(SIM, seed=seed)) as sim:
        router = OrderRouter.connect(_config(), make_signer(), sim.url)
        async with router:
            load = Load(sim, seed, OUTSTANDING)

            async def produce(load: Load, stop: asyncio.Event) -> None:
                await load.produce(router, stop)

            async def stats() -> dict[str, int]:
                return _router_counts(router.stats())

            report = await run_chaos(
                "router", seed, mode, sim, [produce], load, router.flush, stats
            )
            await probe_router(router, load)
        return report


@asynccontextmanager
async def running_service(
    sim: SimServer,
) -> AsyncIterator[tuple[TestClient[Any, Any], RouterClient]]:
    """The service as ``serve`` builds it, on a loopback test server, and a client of it."""
    async with AsyncExitStack() as stack:
        metrics = Metrics()
        router = OrderRouter.connect(_config(), make_signer(), sim.url, observers=[metrics])
        await stack.enter_async_context(router)
        app = build_service_app(router, ServiceConfig(), metrics, TOKEN)
        http: TestClient[Any, Any] = await stack.enter_async_context(TestClient(TestServer(app)))
        client = await stack.enter_async_context(RouterClient(str(http.make_url("")), token=TOKEN))
        yield http, client


async def post_orders(
    http: TestClient[Any, Any], load: Load, count: int, tag: str = "h"
) -> list[str]:
    """``POST /v1/orders`` with ``wait``: each result recorded as its intent's outcome."""
    intents = [load.intent(tag) for _ in range(count)]
    body = {"items": [msgspec.to_builtins(i) for i in intents], "wait": True}
    keys = [i.client_order_id for i in intents]
    for key in keys:
        load.outcomes[key] = []
    load.submitted += count
    async with http.post(
        "/v1/orders", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        assert response.status == 200, await response.text()
        results = msgspec.json.decode(await response.read(), type=ResultsBody).results
    for result in results:
        key = keys[result.index]
        assert result.error is None, result
        assert isinstance(result.outcome, OrderOutcome), result
        load.record(key, result.outcome)
    return keys


async def chaos_service(seed: int, mode: Mode) -> ChaosReport:
    """A run through the service: most intents over its stream, some by HTTP."""
    async with (
        running_sim(msgspec.structs.replace(SIM, seed=seed)) as sim,
        running_service(sim) as (http, client),
    ):
        load = Load(sim, seed, OUTSTANDING)

        async def stream(load: Load, stop: asyncio.Event) -> None:
            await load.produce(client, stop)

        async def posts(load: Load, stop: asyncio.Event) -> None:
            while not stop.is_set():
                await post_orders(http, load, 3)

        async def stats() -> dict[str, int]:
            return _router_counts(client.stats())

        report = await run_chaos(
            "service", seed, mode, sim, [stream, posts], load, client.flush, stats
        )
        keys = await post_orders(http, load, 3, "probe")
        assert all(isinstance(load.outcomes[k][0], Accepted) for k in keys)
        placed = await asyncio.gather(*(client.place(load.intent("probe")) for _ in range(3)))
        assert all(isinstance(outcome, Accepted) for outcome in placed), placed
        return report
