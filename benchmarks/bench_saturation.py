"""How much of the account's write budget the router turns into orders, with the queue never empty.

    python benchmarks/bench_saturation.py [--tiers basic,premier|all] [--seconds 10]
        [--burst N] [--loop uvloop|asyncio] [--key rsa|ed25519] [--latency-ms MIN[:MAX]]
        [--headroom-s S] [--max-in-flight N] [--json FILE]

Per tier, the simulator runs in its own subprocess (so this process's CPU is the router's) and
the router in this one. Two scenarios:

saturation  A producer keeps the router's queue full (``submit_wait`` against a queue sized to
            ``--queue-seconds`` of budget) with resting orders spread over many tickers and far
            from the simulator's house liquidity. Once the initial full bucket is spent (at
            least ``--warmup`` s; see ``_spend_initial_bucket``) a steady window opens at the
            arrival of one batch's answer and closes at the arrival of another. Utilization =
            write tokens the SIMULATOR accepted between the two answers / (refill rate x the
            time between them): a router that sends each batch the moment the exchange's
            bucket covers it scores 100 % whatever the bucket's level, since both ends of the
            window sit at the same point of the send cycle. "incl. burst" is the whole run's
            figure, counting the initial bucket as capacity: tokens accepted / (bucket
            capacity + refill x time since the router started, when the bucket is full).
burst       N intents submitted at once into an idle router (both buckets full): average batch
            fill and time until the last outcome, against the exchange's own bound
            max(0, N x cost - capacity) / refill.

``--latency-ms`` makes the simulator wait a uniform random time before processing each order
request: delay variation between the router's clock and the exchange's, which is what
``limits.headroom_s`` and the batch size must absorb. The window's ends are answer arrivals,
so with it the utilization figure is good to about (MAX - MIN) / window either way. Under
saturation, submit-to-outcome is mostly queue wait (``--queue-seconds``) by construction; the
router's own share is the round trip and the answer-gap jitter.

Latencies are measured per future (submit to outcome, perf_counter), not taken from
``stats()``. Goals (utilization >= 99 %, no 429) are reported, never asserted: the exit code is
non-zero only when the benchmark itself fails. Fixed seed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from _harness import (
    TIER_NAMES,
    BenchKey,
    SimProcess,
    describe_machine,
    format_machine,
    percentile,
    tier,
)

from kalshi_router import Accepted, Config, OrderIntent, OrderRouter, Rejected, RouterStats
from kalshi_router.config import LimitsConfig, RouterConfig
from kalshi_router.loop import loop_factory
from kalshi_router.loop import run as run_uvloop
from kalshi_router.sim.buckets import CREATE_ITEM_COST

T = TypeVar("T")

UTILIZATION_GOAL = 0.99
TICKERS = 64
# Answers of one batch settle their futures in one loop turn; answers of two batches this far
# apart (or more) are two batches. Batches are >= 50 ms apart at the highest tier.
BATCH_GAP_S = 0.002
DEFINITION = (
    "utilization = write tokens the sim accepted between two batch answers / "
    "(refill x time between them), after the warm-up; incl. burst = tokens accepted / "
    "(capacity + refill x time since the router started)"
)


# -- orders ----------------------------------------------------------------------------------


def make_intents(count: int, seed: int, tag: str) -> list[OrderIntent]:
    """Resting GTC orders: bids at 1-30 c and asks at 70-99 c never meet the house's quotes
    (bids 40-45 c, asks 55-60 c) nor each other, so the books only grow; 64 tickers keep each
    book small. Ids are deterministic; every run talks to a fresh simulator."""
    rng = random.Random(seed)
    intents = []
    for i in range(count):
        ticker = f"KXBENCH-26DEC31-T{rng.randrange(TICKERS):02d}"
        size = Decimal(rng.randint(1, 10))
        cid = f"{tag}-{seed}-{i}"
        if rng.random() < 0.5:
            price = Decimal(rng.randint(1, 30)) / 100
            intents.append(
                OrderIntent(ticker=ticker, side="bid", price=price, count=size, client_order_id=cid)
            )
        else:
            price = Decimal(rng.randint(70, 99)) / 100
            intents.append(
                OrderIntent(ticker=ticker, side="ask", price=price, count=size, client_order_id=cid)
            )
    return intents


def _label(future: asyncio.Future[Any]) -> str:
    if future.cancelled():
        return "cancelled"
    if (exc := future.exception()) is not None:
        return f"error:{type(exc).__name__}"
    outcome = future.result()
    if isinstance(outcome, Rejected):
        return f"rejected:{outcome.code}"
    if isinstance(outcome, Accepted):
        return "accepted"
    return type(outcome).__name__.lower()


def _spent_tokens(label: str) -> bool:
    """Answered per item (accepted or refused by the engine): the sim charged its cost."""
    return label == "accepted" or label.startswith("rejected:")


class GcPauses:
    """Stop-the-world collections while installed: they delay the dispatcher like any pause."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, int, float]] = []  # (started at, generation, seconds)
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(
                (self._started, info["generation"], time.perf_counter() - self._started)
            )

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def summary(self, start: float, end: float) -> dict[str, Any]:
        inside = [(gen, s) for at, gen, s in self.pauses if start <= at < end]
        return {
            "count": len(inside),
            "by_generation": dict(Counter(gen for gen, _ in inside)),
            "total_ms": sum(s for _, s in inside) * 1e3,
            "max_ms": max((s for _, s in inside), default=0.0) * 1e3,
        }


class Timeline:
    """Submit and outcome times of every future (perf_counter), in settle order."""

    def __init__(self) -> None:
        self.settled: list[tuple[float, float, str]] = []  # (settled at, latency, label)
        self._answer = asyncio.Event()
        self._answer_at = 0.0

    def track(self, future: asyncio.Future[Any], submitted: float) -> None:
        future.add_done_callback(partial(self._done, submitted))

    def _done(self, submitted: float, future: asyncio.Future[Any]) -> None:
        now = time.perf_counter()
        self.settled.append((now, now - submitted, _label(future)))
        if not self._answer.is_set():
            self._answer_at = now
            self._answer.set()

    async def next_answer(self, timeout_s: float) -> tuple[float, int]:
        """Wait for the next batch's answer: when its first future settled, and how many had
        settled once all of its futures had. Their callbacks were queued together, before the
        wake-up of this task, so they have all run when it resumes."""
        self._answer.clear()
        try:
            await asyncio.wait_for(self._answer.wait(), timeout_s)
        except TimeoutError:
            raise RuntimeError(f"no outcome for {timeout_s:.1f} s: the router stalled") from None
        return self._answer_at, len(self.settled)


def _latency_ms(latencies: Sequence[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "count": len(ordered),
        "p50": percentile(ordered, 0.50) * 1e3,
        "p99": percentile(ordered, 0.99) * 1e3,
        "p99.9": percentile(ordered, 0.999) * 1e3,
        "max": (ordered[-1] if ordered else 0.0) * 1e3,
    }


def _answer_starts(times: Sequence[float]) -> list[float]:
    """When each batch's answer arrived (futures settled within BATCH_GAP_S: one batch)."""
    starts: list[float] = []
    for previous, at in zip([-math.inf, *times], times, strict=False):
        if at - previous > BATCH_GAP_S:
            starts.append(at)
    return starts


def _late_answers(
    starts: Sequence[float], ideal_s: float, gc_pauses: GcPauses, origin: float
) -> list[dict[str, float]]:
    """Answers more than 10 ms later than one cycle after the previous one, and how much GC
    ran in between: the evidence for what delayed the dispatcher."""
    late = []
    for a, b in itertools.pairwise(starts):
        if b - a > ideal_s + 0.010:
            gc_s = sum(s for at, _, s in gc_pauses.pauses if a <= at < b)
            late.append({"at_s": a - origin, "gap_ms": (b - a) * 1e3, "gc_ms": gc_s * 1e3})
    return late


def _fill(before: RouterStats, after: RouterStats) -> tuple[int, float]:
    batches = after.batches_sent - before.batches_sent
    items = (
        after.average_batch_fill * after.batches_sent
        - before.average_batch_fill * before.batches_sent
    )
    return batches, (items / batches if batches else 0.0)


def _budget(tier_name: str, headroom_s: float, max_batch: int) -> dict[str, Any]:
    """The bucket as the sim keeps it and as the router mirrors it (see kalshi_router.limiter)."""
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
    batches, fill = _fill(router0, router1)
    starts = _answer_starts([at for at, _, _ in window])
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
        "submit_to_outcome_ms": _latency_ms([lat for _, lat, _ in window]),
        "router_cpu_s": cpu1 - cpu0,
        "router_cpu_us_per_order": (cpu1 - cpu0) / answered * 1e6 if answered else None,
        "sim_cpu_us_per_order": sim_cpu / answered * 1e6 if sim_cpu and answered else None,
        "answer_gap_ms": {
            "ideal": cycle_s * 1e3,
            "count": len(gaps),
            "p50": percentile(gaps, 0.5) * 1e3,
            "p99": percentile(gaps, 0.99) * 1e3,
            "max": (gaps[-1] if gaps else 0.0) * 1e3,
        },
        "late_answers": _late_answers(starts, cycle_s, gc_pauses, start_at),
        "gc_pauses_window": gc_pauses.summary(start_at, end_at),
        "router_stats_run": {
            name: msgspec_to_dict(getattr(router1, name))
            for name in ("queue_wait", "limiter_wait", "round_trip")
        },
        "sim_requests_run": sim1["requests"],
    }
    result["goals"] = {
        "utilization_ge_99pct": result["utilization"] >= UTILIZATION_GOAL,
        "no_429": result["http_429_router_run"] == 0 and result["sim_rate_limited_run"] == 0,
    }
    return result


def msgspec_to_dict(value: Any) -> dict[str, Any]:
    fields: tuple[str, ...] = value.__struct_fields__
    return {name: getattr(value, name) for name in fields}


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
    batches, fill = _fill(router0, router1)
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
        "submit_to_outcome_ms": _latency_ms([lat for _, lat, _ in timeline.settled]),
        "router_cpu_us_per_order": (cpu1 - cpu0) / size * 1e6,
    }


# -- output ------------------------------------------------------------------------------------


def _table(title: str, columns: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> str:
    label_w = max(len(label) for label, _ in rows)
    widths = [
        max(len(col), *(len(values[i]) for _, values in rows)) for i, col in enumerate(columns)
    ]
    head = " " * label_w + "".join(f"  {c:>{w}}" for c, w in zip(columns, widths, strict=True))
    lines = [title, head]
    for label, values in rows:
        cells = "".join(f"  {v:>{w}}" for v, w in zip(values, widths, strict=True))
        lines.append(f"{label:<{label_w}}{cells}")
    return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{x * 100:.2f} %"


def _ms3(lat: dict[str, float]) -> str:
    return f"{lat['p50']:.0f} / {lat['p99']:.0f} / {lat['p99.9']:.0f}"


def _us(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f} µs"


def _outcomes(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def saturation_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    cols = list(results)
    r = [results[t] for t in cols]

    def row(label: str, fmt: Callable[[dict[str, Any]], str]) -> tuple[str, list[str]]:
        return label, [fmt(x) for x in r]

    rows = [
        row("write refill / bucket (tokens)", lambda x: f"{x['refill']} / {x['capacity']}"),
        row(
            "router headroom / local bucket",
            lambda x: f"{x['headroom_tokens']:g} / {x['local_capacity']:g}",
        ),
        row("batch limit / queue size", lambda x: f"{x['batch_limit']} / {x['queue_size']}"),
        row(
            "warm-up (s) / sim bucket then (est.)",
            lambda x: f"{x['warmup_s']:.2f} / {x['sim_bucket_level_at_window_start_est']:.0f}",
        ),
        row("window (s)", lambda x: f"{x['window_s']:.2f}"),
        row(
            "sim tokens / available",
            lambda x: f"{x['sim_tokens_window']:.0f} / {x['available_tokens_window']:.0f}",
        ),
        row("utilization (window)", lambda x: _pct(x["utilization"])),
        row("  cross-check: answered items", lambda x: _pct(x["utilization_answered"])),
        row(
            f"  goal >= {UTILIZATION_GOAL:.0%}", lambda x: _goal(x["goals"]["utilization_ge_99pct"])
        ),
        row("utilization incl. burst (run)", lambda x: _pct(x["utilization_incl_burst"])),
        row(
            "429s router / sim (run)",
            lambda x: f"{x['http_429_router_run']} / {x['sim_rate_limited_run']}",
        ),
        row("  goal: none", lambda x: _goal(x["goals"]["no_429"])),
        row(
            "orders/s (ideal)",
            lambda x: f"{x['orders_per_s']:.2f} ({x['ideal_orders_per_s']:g})",
        ),
        row("outcomes in window", lambda x: _outcomes(x["outcomes_window"])),
        row(
            "avg batch fill (limit)",
            lambda x: f"{x['average_batch_fill']:.2f} ({x['batch_limit']})",
        ),
        row(
            "answer gap p50/max (ideal) ms",
            lambda x: (
                f"{x['answer_gap_ms']['p50']:.1f}/{x['answer_gap_ms']['max']:.1f} "
                f"({x['answer_gap_ms']['ideal']:.1f})"
            ),
        ),
        row("submit->outcome p50/p99/p99.9 ms", lambda x: _ms3(x["submit_to_outcome_ms"])),
        row(
            "round trip p50/p99 ms (run, stats())",
            lambda x: (
                f"{x['router_stats_run']['round_trip']['p50'] * 1e3:.1f} / "
                f"{x['router_stats_run']['round_trip']['p99'] * 1e3:.1f}"
            ),
        ),
        row(
            "late answers (> ideal + 10 ms)",
            lambda x: f"{len(x['late_answers'])} of {x['answer_gap_ms']['count']}",
        ),
        row(
            "GC pauses: n / total / max ms",
            lambda x: (
                f"{x['gc_pauses_window']['count']} / {x['gc_pauses_window']['total_ms']:.1f} / "
                f"{x['gc_pauses_window']['max_ms']:.1f}"
            ),
        ),
        row("router CPU per order", lambda x: _us(x["router_cpu_us_per_order"])),
        row("sim CPU per order", lambda x: _us(x["sim_cpu_us_per_order"])),
    ]
    title = (
        f"saturation: {args.seconds:g} s window after >= {args.warmup:g} s warm-up, queue "
        f"{args.queue_seconds:g} s of budget, max_in_flight {args.max_in_flight}, headroom_s "
        f"{args.headroom_s:g}{_latency_note(args)}\n({DEFINITION})"
    )
    return _table(title, cols, rows)


def _latency_note(args: argparse.Namespace) -> str:
    if args.latency_ms is None:
        return ""
    low, high = args.latency_ms
    return f", sim latency {low:g}-{high:g} ms before processing"


def burst_table(results: dict[str, dict[str, Any]], size: int, args: argparse.Namespace) -> str:
    cols = list(results)
    r = [results[t] for t in cols]

    def row(label: str, fmt: Callable[[dict[str, Any]], str]) -> tuple[str, list[str]]:
        return label, [fmt(x) for x in r]

    rows = [
        row("write refill / bucket (tokens)", lambda x: f"{x['refill']} / {x['capacity']}"),
        row("batch limit", lambda x: str(x["batch_limit"])),
        row("time to drain (s)", lambda x: f"{x['drain_s']:.3f}"),
        row("exchange bound (s)", lambda x: f"{x['bound_s']:.3f}"),
        row("batches (minimum)", lambda x: f"{x['batches']} ({x['min_batches']})"),
        row("avg batch fill", lambda x: f"{x['average_batch_fill']:.2f}"),
        row("429s router / sim", lambda x: f"{x['http_429_router']} / {x['sim_rate_limited']}"),
        row("outcomes", lambda x: _outcomes(x["outcomes"])),
        row(
            "submit->outcome p50/p99/max ms",
            lambda x: (
                f"{x['submit_to_outcome_ms']['p50']:.0f} / "
                f"{x['submit_to_outcome_ms']['p99']:.0f} / {x['submit_to_outcome_ms']['max']:.0f}"
            ),
        ),
        row("router CPU per order", lambda x: _us(x["router_cpu_us_per_order"])),
    ]
    title = f"burst: {size} intents at once into an idle router{_latency_note(args)}"
    return _table(title, cols, rows)


def _goal(met: bool) -> str:
    return "met" if met else "MISSED"


# -- main --------------------------------------------------------------------------------------


async def run_all(args: argparse.Namespace, tiers: Sequence[str]) -> dict[str, Any]:
    key = BenchKey.generate(args.key)
    out: dict[str, Any] = {"saturation": {}, "burst": {}}
    for name in tiers:
        if args.seconds > 0:
            out["saturation"][name] = await saturation(name, key, args)
        if args.burst > 0:
            out["burst"][name] = await burst(name, args.burst, key, args)
    return out


def _run(main: Coroutine[Any, Any, T], loop: str) -> T:
    if loop == "uvloop":
        return run_uvloop(main)
    return asyncio.run(main)


def _latency(text: str) -> tuple[float, float]:
    low, _, high = text.partition(":")
    try:
        bounds = float(low), float(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not MIN[:MAX] milliseconds: {text!r}") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"need 0 <= MIN <= MAX: {text!r}")
    return bounds


async def _inject_latency(sim: SimProcess, args: argparse.Namespace) -> None:
    if args.latency_ms is None:
        return
    low, high = args.latency_ms
    await sim.set_faults({"latency": {"kind": "uniform", "min_ms": low, "max_ms": high}})


def _tiers(text: str) -> list[str]:
    if text == "all":
        return list(TIER_NAMES)
    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        if name not in TIER_NAMES:
            raise argparse.ArgumentTypeError(f"unknown tier {name!r}; known: {TIER_NAMES}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    have_uvloop = loop_factory() is not None
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tiers",
        type=_tiers,
        default=["basic", "premier"],
        help="comma-separated tiers, or 'all' (default: basic,premier)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="steady window per tier; 0 skips the saturation scenario",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="minimum seconds before the window (longer until the initial bucket is spent)",
    )
    parser.add_argument("--max-warmup", type=float, default=30.0, help="maximum warm-up")
    parser.add_argument(
        "--queue-seconds",
        type=float,
        default=2.0,
        help="queue depth the producer keeps, in seconds of budget",
    )
    parser.add_argument("--burst", type=int, default=0, help="burst size; 0 skips the burst")
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop" if have_uvloop else "asyncio"
    )
    parser.add_argument("--key", choices=("rsa", "ed25519"), default="rsa")
    parser.add_argument("--max-in-flight", type=int, default=RouterConfig().max_in_flight)
    parser.add_argument("--headroom-s", type=float, default=LimitsConfig().headroom_s)
    parser.add_argument(
        "--latency-ms",
        type=_latency,
        default=None,
        metavar="MIN[:MAX]",
        help="sim delay before processing each order request, uniform in [MIN, MAX] ms "
        "(network jitter between the router's clock and the exchange's; default: none)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the pre-made intents out of GC (default: on)",
    )
    parser.add_argument("--json", help="also write everything to this file")
    args = parser.parse_args(argv)
    if args.loop == "uvloop" and not have_uvloop:
        parser.error("uvloop is not installed")
    if args.seconds <= 0 and args.burst <= 0:
        parser.error("nothing to do: --seconds 0 and no --burst")

    machine = describe_machine(args.loop)
    print(format_machine(machine))
    print(f"key {args.key}, seed {args.seed}, create cost {CREATE_ITEM_COST} tokens per order")
    try:
        results = _run(run_all(args, args.tiers), args.loop)
    except Exception as exc:  # the benchmark failed to measure: that is an error
        print(f"bench_saturation: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if results["saturation"]:
        print("\n" + saturation_table(results["saturation"], args))
    if results["burst"]:
        print("\n" + burst_table(results["burst"], args.burst, args))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                {"machine": machine, "settings": settings, "definition": DEFINITION, **results},
                handle,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
