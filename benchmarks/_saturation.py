"""bench_saturation's two scenarios, each against a simulator subprocess of the tier's own:
the write budget kept full (``saturation``), and N intents at once into an idle router
(``burst``). What they measure and how: see bench_saturation's docstring.

    result = await saturation("premier", key, args)
    result = await burst("premier", 500, key, args)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import math
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec
from _data import make_intents
from _keys import BenchKey
from _report import budget_met, quantiles
from _sim import SimProcess, tier
from _timeline import GcPauses, Timeline, answer_starts, batch_fill, late_answers, latency_ms

from kalshi_router import Config, OrderIntent, OrderRouter
from kalshi_router.config import LimitsConfig, RouterConfig
from kalshi_router.sim.buckets import CREATE_ITEM_COST


def _spent_tokens(label: str) -> bool:
    """Answered per item (accepted or refused by the engine): the sim charged its cost."""
    return label == "accepted" or label.startswith("rejected:")


def _budget(tier_name: str, headroom_s: float, max_batch: int) -> dict[str, Any]:
    """The bucket as the sim keeps it and as the router mirrors it (see kalshi_router.budget)."""
    figures = tier(tier_name)
    headroom = figures.write_refill * headroom_s
    local = figures.write_capacity - headroom
    return {
        "refill": figures.write_refill,
        "capacity": figures.write_capacity,
        "headroom_tokens": headroom,
        "local_capacity": local,
        "batch_limit": max(1, min(max_batch, int(local) // CREATE_ITEM_COST)),
    }


def _config(args: argparse.Namespace, **router: Any) -> Config:
    return Config(
        limits=LimitsConfig(headroom_s=args.headroom_s),
        router=RouterConfig(max_in_flight=args.max_in_flight, **router),
    )


# -- saturation ------------------------------------------------------------------------------


async def _produce(router: OrderRouter, intents: Sequence[OrderIntent], timeline: Timeline) -> int:
    """Submit in order, waiting for room: the queue stays at its capacity the whole run."""
    for intent in intents:
        submitted = time.perf_counter()
        future = await router.submit_wait(intent)
        timeline.track(future, submitted)
    return len(intents)


async def _spend_initial_bucket(
    sim: SimProcess, budget: dict[str, Any], started_at: float, args: argparse.Namespace
) -> tuple[float, float]:
    """Warm up until the initial full bucket is spent; return the warm-up taken and the sim's
    bucket level then.

    The level is estimated as capacity + refill x time since start - tokens spent: exact while
    the bucket never caps, i.e. while the router spends at least as fast as it refills. A fixed
    warm-up is not enough: a router limited by its in-flight slots drains the initial bucket at
    only (its rate - refill), which can take many seconds. So wait at least ``--warmup`` s, then
    until the level is down to about two batches, or stops falling (slot-bound: it never will),
    or ``--max-warmup`` s have passed.
    """
    batch_cost = budget["batch_limit"] * CREATE_ITEM_COST
    steady = 2 * batch_cost + budget["headroom_tokens"]
    poll_s = 0.25
    await asyncio.sleep(args.warmup)
    previous = math.inf
    while True:
        spent = (await sim.stats())["tokens_spent"]["write"]
        age = time.perf_counter() - started_at
        level = budget["capacity"] + budget["refill"] * age - spent
        not_falling = level > previous - 0.01 * budget["capacity"]
        if level <= steady or not_falling or age >= args.max_warmup:
            # Past capacity the estimate only says the bucket capped (a slot-bound router).
            return age, min(level, budget["capacity"])
        previous = level
        await asyncio.sleep(poll_s)


async def saturation(tier_name: str, key: BenchKey, args: argparse.Namespace) -> dict[str, Any]:
    budget = _budget(tier_name, args.headroom_s, RouterConfig().max_batch_size)
    orders_per_s = budget["refill"] / CREATE_ITEM_COST
    # Deep enough that the dispatcher never finds the lane short of a full batch, shallow
    # enough that queue wait (queue_size / orders_per_s) stays inside the 5 s default deadline.
    queue_size = max(math.ceil(args.queue_seconds * orders_per_s), 2 * budget["batch_limit"])
    config = _config(args, queue_size=queue_size)
    run_s = args.max_warmup + args.seconds + args.queue_seconds + 5
    total = queue_size + math.ceil(budget["capacity"] / CREATE_ITEM_COST + orders_per_s * run_s)
    intents = make_intents(math.ceil(total * 1.2), args.seed, f"sat-{tier_name}")
    timeline = Timeline()
    if args.gc_freeze:
        # The pre-made intents are the benchmark's data, not the router's: keep them out of
        # every collection, as a bot that makes intents as it goes would.
        gc.collect()
        gc.freeze()

    try:
        with GcPauses() as gc_pauses:
            return await _saturate(tier_name, key, args, config, intents, timeline, gc_pauses)
    finally:
        if args.gc_freeze:
            gc.unfreeze()


async def _saturate(
    tier_name: str,
    key: BenchKey,
    args: argparse.Namespace,
    config: Config,
    intents: Sequence[OrderIntent],
    timeline: Timeline,
    gc_pauses: GcPauses,
) -> dict[str, Any]:
    budget = _budget(tier_name, args.headroom_s, RouterConfig().max_batch_size)
    orders_per_s = budget["refill"] / CREATE_ITEM_COST
    cycle_s = budget["batch_limit"] * CREATE_ITEM_COST / budget["refill"]
    stall_s = max(5.0, 5 * cycle_s)
    async with SimProcess(tier_name, [key], seed=args.seed) as sim:
        await _inject_latency(sim, args)
        router = OrderRouter.connect(config, key.signer(), base_url=sim.url)
        # The sim creates the account's buckets, full, on the first signed request (the
        # GET /account/limits of start()); they stay full until the producer's first batch.
        await router.start()
        started_at = time.perf_counter()
        producer = asyncio.create_task(_produce(router, intents, timeline))
        try:
            warmup_s, level0 = await _spend_initial_bucket(sim, budget, started_at, args)
            start_at, start_i = await timeline.next_answer(stall_s)
            sim0 = await sim.stats()
            router0 = router.stats()
            sim_cpu0, cpu0 = sim.cpu_seconds(), time.process_time()
            await asyncio.sleep(args.seconds)
            end_at, end_i = await timeline.next_answer(stall_s)
            sim1 = await sim.stats()
            cpu1, sim_cpu1 = time.process_time(), sim.cpu_seconds()
            router1 = router.stats()
            if producer.done():
                raise RuntimeError(f"the producer stopped early: {producer.result()} submitted")
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
            await router.aclose()
        limits = router.batch_limits

    window_s = end_at - start_at
    window = timeline.settled[start_i:end_i]
    labels = Counter(label for _, _, label in window)
    answered = sum(n for label, n in labels.items() if _spent_tokens(label))
    tokens = sim1["tokens_spent"]["write"] - sim0["tokens_spent"]["write"]
    available = budget["refill"] * window_s
    run_tokens = sim1["tokens_spent"]["write"]
    run_available = budget["capacity"] + budget["refill"] * (end_at - started_at)
    batches, fill = batch_fill(router0, router1)
    starts = answer_starts([at for at, _, _ in window])
    gaps = sorted(b - a for a, b in itertools.pairwise(starts))
    sim_cpu = None if sim_cpu0 is None or sim_cpu1 is None else sim_cpu1 - sim_cpu0
    result: dict[str, Any] = {
        **budget,
        "batch_limit": limits["create"],
        "max_in_flight": args.max_in_flight,
        "queue_size": config.router.queue_size,
        "warmup_s": warmup_s,
        "sim_bucket_level_at_window_start_est": level0,
        "window_s": window_s,
        "sim_tokens_window": tokens,
        "router_tokens_window": answered * CREATE_ITEM_COST,
        "available_tokens_window": available,
        "utilization": tokens / available,
        "utilization_answered": answered * CREATE_ITEM_COST / available,
        "run_tokens": run_tokens,
        "run_available_tokens": run_available,
        "utilization_incl_burst": run_tokens / run_available,
        "http_429_router_window": router1.http_429 - router0.http_429,
        "http_429_router_run": router1.http_429,
        "sim_rate_limited_window": sim1["rate_limited"] - sim0["rate_limited"],
        "sim_rate_limited_run": sim1["rate_limited"],
        "retries_run": router1.retries,
        "outcomes_window": dict(labels),
        "orders_window": answered,
        "orders_per_s": answered / window_s,
        "ideal_orders_per_s": orders_per_s,
        "batches_window": batches,
        "average_batch_fill": fill,
        "submit_to_outcome_ms": latency_ms([lat for _, lat, _ in window]),
        "router_cpu_s": cpu1 - cpu0,
        "router_cpu_us_per_order": (cpu1 - cpu0) / answered * 1e6 if answered else None,
        "sim_cpu_us_per_order": sim_cpu / answered * 1e6 if sim_cpu and answered else None,
        "answer_gap_ms": {
            "ideal": cycle_s * 1e3,
            "count": len(gaps),
            **quantiles(gaps, ("p50", "p99", "max"), 1e3),
        },
        "late_answers": late_answers(starts, cycle_s, gc_pauses, start_at),
        "gc_pauses_window": gc_pauses.summary(start_at, end_at),
        "router_stats_run": {
            name: msgspec.structs.asdict(getattr(router1, name))
            for name in ("queue_wait", "limiter_wait", "round_trip")
        },
        "sim_requests_run": sim1["requests"],
    }
    result["goals"] = budget_met(
        result["utilization"], result["http_429_router_run"], result["sim_rate_limited_run"]
    )
    return result


# -- burst ------------------------------------------------------------------------------------


async def burst(
    tier_name: str, size: int, key: BenchKey, args: argparse.Namespace
) -> dict[str, Any]:
    budget = _budget(tier_name, args.headroom_s, RouterConfig().max_batch_size)
    bound_s = max(0.0, size * CREATE_ITEM_COST - budget["capacity"]) / budget["refill"]
    # Long enough that no intent of the burst expires while it waits for its tokens.
    deadline_s = 2 * bound_s + 10
    config = _config(args, queue_size=max(RouterConfig().queue_size, size), deadline_s=deadline_s)
    intents = make_intents(size, args.seed, f"burst-{tier_name}")
    timeline = Timeline()
    async with SimProcess(tier_name, [key], seed=args.seed) as sim:
        await _inject_latency(sim, args)
        async with OrderRouter.connect(config, key.signer(), base_url=sim.url) as router:
            sim0 = await sim.stats()
            router0 = router.stats()
            cpu0 = time.process_time()
            started = time.perf_counter()
            futures = router.submit_many(intents)
            for future in futures:
                timeline.track(future, started)
            await asyncio.wait(futures)
            cpu1 = time.process_time()
            router1 = router.stats()
            sim1 = await sim.stats()
            limits = router.batch_limits
    drained_s = max(at for at, _, _ in timeline.settled) - started
    labels = Counter(label for _, _, label in timeline.settled)
    batches, fill = batch_fill(router0, router1)
    return {
        **budget,
        "batch_limit": limits["create"],
        "max_in_flight": args.max_in_flight,
        "size": size,
        "drain_s": drained_s,
        "bound_s": bound_s,
        "batches": batches,
        "min_batches": math.ceil(size / limits["create"]),
        "average_batch_fill": fill,
        "outcomes": dict(labels),
        "http_429_router": router1.http_429 - router0.http_429,
        "sim_rate_limited": sim1["rate_limited"] - sim0["rate_limited"],
        "sim_tokens": sim1["tokens_spent"]["write"] - sim0["tokens_spent"]["write"],
        "submit_to_outcome_ms": latency_ms([lat for _, lat, _ in timeline.settled]),
        "router_cpu_us_per_order": (cpu1 - cpu0) / size * 1e6,
    }


async def _inject_latency(sim: SimProcess, args: argparse.Namespace) -> None:
    if args.latency_ms is None:
        return
    low, high = args.latency_ms
    await sim.set_faults({"latency": {"kind": "uniform", "min_ms": low, "max_ms": high}})
