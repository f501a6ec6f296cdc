"""Latency at low load: what an idle router adds to one order's submit-to-outcome time.

    python benchmarks/bench_latency.py [--samples N] [--mean-ms 20] [--key rsa|ed25519]
        [--floor-endpoint batched|single] [--loop uvloop|asyncio] [--json FILE]

The simulator runs in its own subprocess with the write limits off (``UNLIMITED_WRITES``: the
question is latency, not budget). In this process, single intents arrive at exponential random
intervals (mean ``--mean-ms``, fixed seed), alternately through

router  an idle ``OrderRouter`` (V2, default config): ``submit`` to the future's outcome;
floor   a bare signed aiohttp POST of the same order on a pre-warmed session: stdlib json
        encode, sign, POST, read, ``json.loads``. By default it posts a batch of one to the
        endpoint the router uses, so the simulator does the same work for both and the
        difference is the client's; ``--floor-endpoint single`` posts the single create.

Alternating, rather than one contender after the other, spreads drift in the machine's load
over both. Each has ``--warmup`` untimed samples first. Times are perf_counter, in µs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from _harness import (
    UNLIMITED_WRITES,
    BenchKey,
    SignedPoster,
    SimProcess,
    answer_labels,
    describe_machine,
    format_machine,
    outcome_label,
    percentile,
    run_on,
    stdlib_order,
    table,
)
from bench_saturation import make_intents

from kalshi_router import Config, OrderIntent, OrderRouter
from kalshi_router.loop import loop_factory

ADDED_GOAL_US = 50.0
QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


async def via_router(router: OrderRouter, intent: OrderIntent) -> tuple[float, str]:
    started = time.perf_counter()
    outcome = await router.submit(intent)
    return time.perf_counter() - started, outcome_label(outcome)


async def via_floor(poster: SignedPoster, intent: OrderIntent, single: bool) -> tuple[float, str]:
    started = time.perf_counter()
    if single:
        status, answer = await poster.post("/portfolio/events/orders", stdlib_order(intent))
    else:
        payload = {"orders": [stdlib_order(intent)]}
        status, answer = await poster.post("/portfolio/events/orders/batched", payload)
    elapsed = time.perf_counter() - started
    return elapsed, answer_labels(status, answer, not single)[0]


async def run(args: argparse.Namespace, key: BenchKey) -> dict[str, Any]:
    total = args.warmup + args.samples
    # Same orders for both (same seed); the floor's get other ids, as the sim refuses reuse.
    orders = {
        "router": make_intents(total, args.seed, "lat-router"),
        "floor": make_intents(total, args.seed, "lat-floor"),
    }
    rng = random.Random(args.seed)
    latencies: dict[str, list[float]] = {"router": [], "floor": []}
    labels: dict[str, Counter[str]] = {"router": Counter(), "floor": Counter()}
    single = args.floor_endpoint == "single"
    async with (
        SimProcess("basic", [key], seed=args.seed, sim_options=UNLIMITED_WRITES) as sim,
        OrderRouter.connect(Config(), key.signer(), base_url=sim.url) as router,
        SignedPoster(sim.url, key.signer()) as poster,
    ):
        for i in range(total):
            # Alternate which goes first within each pair so neither always follows the other.
            pair = ("router", "floor") if i % 2 == 0 else ("floor", "router")
            for name in pair:
                await asyncio.sleep(rng.expovariate(1000.0 / args.mean_ms))
                intent = orders[name][i]
                if name == "router":
                    elapsed, label = await via_router(router, intent)
                else:
                    elapsed, label = await via_floor(poster, intent, single)
                if i >= args.warmup:
                    latencies[name].append(elapsed)
                    labels[name][label] += 1
    out: dict[str, Any] = {}
    for name, samples in latencies.items():
        ordered = sorted(samples)
        out[name] = {
            "count": len(ordered),
            **{q: percentile(ordered, f) * 1e6 for q, f in QUANTILES},
            "max": ordered[-1] * 1e6 if ordered else 0.0,
            "outcomes": dict(labels[name]),
        }
    out["added_median_us"] = out["router"]["p50"] - out["floor"]["p50"]
    return out


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    rows = []
    for name in ("router", "floor"):
        r = results[name]
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
        ratio = r["p50"] / results["floor"]["p50"]
        cells = [f"{r[q]:.0f}" for q, _ in QUANTILES]
        rows.append([name, str(r["count"]), *cells, f"{r['max']:.0f}", f"{ratio:.2f}x", outcomes])
    added = [f"{results['router'][q] - results['floor'][q]:+.0f}" for q, _ in QUANTILES]
    rows.append(["added (router - floor)", "-", *added, "-", "-", "-"])
    floor = "single create" if args.floor_endpoint == "single" else "batch of one"
    title = (
        f"latency at low load: {args.samples} samples each (after {args.warmup} warm-up), "
        f"exponential gaps, mean {args.mean_ms:g} ms, key {args.key}, loop {args.loop}, "
        f"seed {args.seed}\n(submit to outcome, µs; floor: bare signed aiohttp POST, {floor}; "
        f"p50 ratio to the floor)"
    )
    columns = ["contender", "n", "p50 µs", "p90 µs", "p99 µs", "max µs", "p50 ratio", "outcomes"]
    added_us = results["added_median_us"]
    met = "met" if added_us <= ADDED_GOAL_US else "MISSED"
    goal = f"goal: median added latency <= {ADDED_GOAL_US:g} µs: {added_us:.0f} µs, {met}"
    return table(title, columns, rows) + "\n" + goal


def main(argv: Sequence[str] | None = None) -> int:
    have_uvloop = loop_factory() is not None
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=400, help="timed samples per contender")
    parser.add_argument("--warmup", type=int, default=20, help="untimed samples first")
    parser.add_argument("--mean-ms", type=float, default=20.0, help="mean gap between intents")
    parser.add_argument("--floor-endpoint", choices=("batched", "single"), default="batched")
    parser.add_argument("--key", choices=("rsa", "ed25519"), default="rsa")
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop" if have_uvloop else "asyncio"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="also write everything to this file")
    args = parser.parse_args(argv)
    if args.loop == "uvloop" and not have_uvloop:
        parser.error("uvloop is not installed")
    if args.samples < 1 or args.mean_ms <= 0:
        parser.error("need --samples >= 1 and --mean-ms > 0")

    machine = describe_machine(args.loop)
    print(format_machine(machine), flush=True)
    key = BenchKey.generate(args.key)
    try:
        results = run_on(run(args, key), args.loop)
    except Exception as exc:  # the benchmark failed to measure: that is an error
        print(f"bench_latency: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("\n" + render(results, args))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"machine": machine, "settings": settings, **results}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
