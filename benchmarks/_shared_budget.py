"""Several routers on one account, each in a process of its own, against the simulator in
another: what ``[budget] backend = "redis"`` is for, measured where the exchange counts.

    result = await run(Plan("premier", routers=4, backend="redis", redis_url=url,
                            namespace="bench-1"), redis=server)

Each router is an embedded ``OrderRouter`` in ``_shared_child`` (same key, so the same account;
one TOML config: the sim's URL, ``[budget]``), whose bot keeps ``queue_s`` of the
account's creates (and two batches) unsettled, so that each router alone asks for more than the
whole budget, and cancels one of its resting orders now and then (``cancel_share`` of the
budget, spread over the routers). All start, then all are told to go; ``seconds`` later all
stop and report. Meanwhile the simulator's counters are read every ``SAMPLE_S``.

Window rule: from ``warmup`` after go to the stop. At go the exchange's bucket is full, and so
is each local one; the shared one is made empty (its key deleted just before go: unknown is
empty), or it would be full too, having refilled while the routers started. The warm-up is
0.5 s (every router sending) plus, for the local backend, one exchange bucket of time
(capacity / refill), in which the bursts of the full buckets and the 429s they earn settle.

Utilization: the simulator's counters are read every ``SAMPLE_S``; each reading gives one
point of its cumulative accepted write tokens just after a batch of creates was accepted
(``last_spend``: when, and the tokens spent by then). Those points sit at one phase of the
send cycle (the bucket just spent down to what is kept back), so they lie on one line whatever
the batches' sizes and wherever the window's ends fall (one batch is 0.4-0.7 s of refill at
Basic: a plain difference of two readings would be off by up to that). Utilization = the
median slope between points of the window at least half of it apart / the refill rate (so a
stall of the simulator near one end, its backlog stamped late, does not tilt it).

``events`` happen during the run, at seconds after go: Redis restarted (a new run id, an empty
keyspace), stopped, started again, or a router killed with SIGKILL; each is stamped when done.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from _keys import BenchKey, key_spec
from _shared_child import SCRIPT
from _shared_figures import (
    SETTLE_S,
    booked,
    event_figures,
    merge,
    shared_figures,
    utilization,
    waits_ms,
)
from _sim import SimProcess, tier
from _sim_child import SimChild
from redis.asyncio import Redis

from kalshi_router.config import LimitsConfig
from kalshi_router.errors import ConfigError
from kalshi_router.redis_budget.config import BudgetConfig
from kalshi_router.redis_budget.script import Model
from kalshi_router.sim.buckets import CANCEL_ITEM_COST, CREATE_ITEM_COST

TICKERS = tuple(f"KXSHARED-26DEC31-T{n}" for n in range(8))
SAMPLE_S = 0.02
CREATES = "POST /portfolio/events/orders/batched"
START_TIMEOUT_S = 60.0
"""Eight interpreters importing at once on two cores take a few seconds; allow for more."""
Backend = Literal["local", "redis"]
Action = Literal["redis_restart", "redis_stop", "redis_start", "kill"]


class RedisControl(Protocol):
    """What the events need of the Redis server (``tests.redis_server.RedisServer``)."""

    def start(self) -> None: ...

    def stop(self, *, kill: bool = False) -> None: ...

    def restart(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Event:
    at_s: float
    action: Action
    router: int = 0
    """The router killed (``kill``)."""


@dataclass(frozen=True, slots=True)
class Plan:
    tier: str
    routers: int
    backend: Backend = "redis"
    seconds: float = 3.0
    """From go to stop."""
    redis_url: str = ""
    namespace: str = ""
    """The shared bucket's (``[budget] namespace``): one a run, so runs never share keys."""
    seed: int = 0
    cancel_share: float = 0.05
    """Of the write budget, asked for by cancels."""
    events: tuple[Event, ...] = ()
    queue_s: float = 1.0
    """Each router keeps this many seconds of the account's creates unsettled (plus two
    batches): by default each alone asks for more than the whole budget."""
    deadline_s: float = 600.0
    """The routers' ``[router] deadline_s``: by default no create expires while queued."""
    max_late_ms: float | None = None
    """The routers' ``[budget] max_late_ms`` (None: its default)."""
    cancel_credit: int | None = None
    """The routers' ``[budget] cancel_credit`` (None: its default)."""

    def __post_init__(self) -> None:
        if self.backend == "redis" and not (self.redis_url and self.namespace):
            raise ValueError("a shared budget's run needs a redis_url and a namespace of its own")

    @property
    def warmup(self) -> float:
        """The window rule's (module docstring)."""
        figures = tier(self.tier)
        bucket_s = figures.write_capacity / figures.write_refill
        return SETTLE_S + (bucket_s if self.backend == "local" else 0.0)


def fitting_credit(tier_name: str, routers: int) -> int | None:
    """The ``cancel_credit`` the routers need: None (the default) where the shared model holds
    a create with it, else one cancel's worth (Basic's 100 tokens do not hold 8 routers' five
    cancels each; the router refuses to start, saying so)."""
    figures = tier(tier_name)
    try:
        Model.of(
            BudgetConfig(backend="redis", routers=routers),
            rate=figures.write_refill,
            capacity=figures.write_capacity,
            headroom_s=LimitsConfig().headroom_s,
            create_cost=CREATE_ITEM_COST,
            cancel_cost=CANCEL_ITEM_COST,
        )
    except ConfigError:
        return CANCEL_ITEM_COST
    return None


def config_text(plan: Plan, url: str) -> str:
    """The routers' TOML: the simulator, creates that never expire while queued, ``[budget]``."""
    lines = ["[exchange]", 'target = "url"', f'base_url = "{url}"', "verify_tls = false"]
    # The bot keeps more queued than the budget sends in the run: none may expire meanwhile.
    lines += ["[router]", f"deadline_s = {plan.deadline_s!r}"]
    lines += ["[budget]", f'backend = "{plan.backend}"']
    if plan.backend == "redis":
        lines += [f'redis_url = "{plan.redis_url}"', f'namespace = "{plan.namespace}"']
        lines += [f"routers = {plan.routers}"]
        if plan.max_late_ms is not None:
            lines += [f"max_late_ms = {plan.max_late_ms!r}"]
        if plan.cancel_credit is not None:
            lines += [f"cancel_credit = {plan.cancel_credit}"]
    return "\n".join(lines) + "\n"


def hello(plan: Plan, config: Path, key: BenchKey, index: int) -> dict[str, Any]:
    figures = tier(plan.tier)
    creates_per_s = figures.write_refill // 10
    cancels_per_s = plan.cancel_share * figures.write_refill / 2
    return {
        "config": str(config),
        "key": key_spec(key),
        "seed": plan.seed * 1000 + index,
        "tickers": list(TICKERS),
        # Plus two full batches, or a second's worth at Basic, whose batches are smaller.
        "outstanding": math.ceil(creates_per_s * plan.queue_s) + min(40, creates_per_s),
        "cancel_every_s": plan.routers / cancels_per_s if cancels_per_s else None,
        "warmup_s": plan.warmup,
    }


class RouterChild(SimChild):
    def __init__(self, hello: dict[str, Any], index: int) -> None:
        super().__init__(SCRIPT, f"router {index}", hello, START_TIMEOUT_S)
        self.index = index
        self.killed = False


class Sampler:
    """The simulator's counters every ``SAMPLE_S``: ``points`` (when a batch of creates was
    last accepted, write tokens accepted by then), and ``refused`` (clock_s, write 429s)."""

    def __init__(self, sim: SimProcess) -> None:
        self.sim = sim
        self.points: dict[float, float] = {}
        self.refused: list[tuple[float, int]] = []

    async def run(self) -> None:
        while True:
            stats = await self.sim.stats()
            if last := stats["last_spend"].get(CREATES):
                self.points[last["at_s"]] = last["tokens_spent"]
            self.refused.append((stats["clock_s"], stats["refused"]["write"]))
            await asyncio.sleep(SAMPLE_S)


async def empty_shared_bucket(plan: Plan) -> None:
    """Delete the account's key (``<namespace>:write``): the next booking finds it missing
    and starts the bucket empty."""
    redis = Redis.from_url(plan.redis_url)
    try:
        await redis.delete(f"{plan.namespace}:write")
    finally:
        await redis.aclose()


async def _act(event: Event, children: list[RouterChild], redis: RedisControl | None) -> None:
    if event.action == "kill":
        child = children[event.router]
        child.killed = True
        os.kill(child.pid, signal.SIGKILL)
        return
    if redis is None:
        raise ValueError(f"{event.action} needs a Redis server to control")
    move = {"redis_restart": redis.restart, "redis_stop": redis.stop, "redis_start": redis.start}
    # Blocking (a process stopped, or started and waited for): not on the loop.
    await asyncio.to_thread(move[event.action])


async def _drive(
    plan: Plan, sim: SimProcess, children: list[RouterChild], redis: RedisControl | None
) -> tuple[float, float, list[dict[str, Any]], Sampler, list[dict[str, Any]]]:
    sampler = Sampler(sim)
    if plan.backend == "redis":
        await empty_shared_bucket(plan)
    go = time.monotonic()
    for child in children:
        await child.ask({"cmd": "go"}, 10)
    sampling = asyncio.create_task(sampler.run())
    done: list[dict[str, Any]] = []
    try:
        for event in sorted(plan.events, key=lambda e: e.at_s):
            await asyncio.sleep(max(0.0, go + event.at_s - time.monotonic()))
            started = time.monotonic()
            await _act(event, children, redis)
            done.append({"action": event.action, "router": event.router})
            done[-1] |= {"at": started, "done": time.monotonic()}
        await asyncio.sleep(max(0.0, go + plan.seconds - time.monotonic()))
        stop = time.monotonic()
    finally:
        sampling.cancel()
        await asyncio.gather(sampling, return_exceptions=True)
    live = [c for c in children if not c.killed]
    reports = await asyncio.gather(*(c.ask({"cmd": "stop"}, 30) for c in live))
    for child, report in zip(live, reports, strict=True):
        report["router"] = child.index
    return go, stop, list(reports), sampler, done


async def run(plan: Plan, redis: RedisControl | None = None) -> dict[str, Any]:
    """One run: the simulator, ``plan.routers`` router processes, the figures."""
    key = BenchKey.generate("ed25519")
    async with SimProcess(plan.tier, [key], seed=plan.seed) as sim:
        with tempfile.TemporaryDirectory(prefix="kalshi-shared-") as directory:
            config = Path(directory) / "router.toml"
            config.write_text(config_text(plan, sim.url), encoding="utf-8")
            children = [RouterChild(hello(plan, config, key, i), i) for i in range(plan.routers)]
            try:
                await asyncio.gather(*(c.__aenter__() for c in children))
                cpu0 = sim.cpu_seconds()
                go, stop, reports, sampler, events = await _drive(plan, sim, children, redis)
                sim_cpu = (sim.cpu_seconds() or 0.0) - (cpu0 or 0.0)
                final = await sim.stats()
            finally:
                await asyncio.gather(
                    *(c.__aexit__(None, None, None) for c in children), return_exceptions=True
                )
    return summarise(plan, go, stop, reports, sampler, events, final, sim_cpu)


def summarise(
    plan: Plan,
    go: float,
    stop: float,
    reports: list[dict[str, Any]],
    sampler: Sampler,
    events: list[dict[str, Any]],
    final: dict[str, Any],
    sim_cpu_s: float,
) -> dict[str, Any]:
    figures = tier(plan.tier)
    refill, bucket_s = figures.write_refill, figures.write_capacity / figures.write_refill
    tokens = sorted(sampler.points.items())
    start = go + plan.warmup
    refused = [n for t, n in sampler.refused if start <= t <= stop]
    event_figures(events, [r["timeline"] for r in reports], tokens, stop, refill, bucket_s)
    return {
        "tier": plan.tier,
        "routers": plan.routers,
        "backend": plan.backend,
        "seconds": plan.seconds,
        "go": go,
        "stop": stop,
        "warmup_s": plan.warmup,
        "window_s": stop - start,
        "utilization": utilization(tokens, start, stop, refill),
        "http_429_sim": final["refused"]["write"],
        "http_429_sim_window": refused[-1] - refused[0] if refused else None,
        "http_429_routers": sum(r["http_429"] for r in reports),
        "outcomes": merge(r["outcomes"] for r in reports),
        "details": merge({"n": r["details"]} for r in reports).get("n", {}),
        "cancel_queue_wait_ms": waits_ms([w for r in reports for w in r["cancel_queue_wait_s"]]),
        "cancel_outcome_ms": waits_ms([w for r in reports for w in r["cancel_outcome_s"]]),
        "cancel_token_wait_ms": waits_ms(
            [w for r in reports for w in r["limiter_wait_s"]["cancel"]]
        ),
        "cancel_booked_wait_us": booked([r["cancel_booked_wait_us"] for r in reports]),
        "create_token_wait_ms": waits_ms(
            [w for r in reports for w in r["limiter_wait_s"]["create"]]
        ),
        "events": events,
        "shared_budget": shared_figures([r["shared_budget"] for r in reports]),
        "cpu": {
            "sim_s": sim_cpu_s,
            "routers_s": [round(r["cpu_s"], 3) for r in reports],
            "loop_lag_max_ms": max((r["loop_lag_max_ms"] for r in reports), default=0.0),
        },
        "per_router": [
            {k: r[k] for k in ("router", "http_429", "tokens_spent", "batches", "outcomes")}
            for r in reports
        ],
        "timelines": [r["timeline"] for r in reports],
    }
