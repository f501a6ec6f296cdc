"""Latency at low load: what an idle router adds to one order's submit-to-outcome time.

    python benchmarks/bench_latency.py [--samples N] [--mean-ms 20] [--key rsa|ed25519]
        [--floor-endpoint batched|single] [--loop uvloop|asyncio]
        [--peers pykalshi,kalshi-python-async|none] [--idle-s 10] [--json FILE]

The simulator runs in its own subprocess with the write limits off (``UNLIMITED_WRITES``: the
question is latency, not budget). Single orders arrive at exponential random intervals (mean
``--mean-ms``, fixed seed), taking turns in an order drawn afresh each round (fixed seed), which
spreads drift in the machine's load over all of them, and gives each as many of each of the
others as its predecessor (what one leaves behind, the next may pay for: with a fixed rotation
the first contender followed the floor three rounds in four, and measured a few hundred µs
slower for it on a busy machine) between

router               an idle ``OrderRouter`` (V2, default config): ``place``, which on an idle
                     router sends in the caller's own task and turn (``[router]
                     idle_fast_path``); its batches take signatures made ahead
                     (``[exchange] presign``);
router-fast-path-off the same with ``idle_fast_path = false``: the dispatcher's link sends it;
router-presign-off   the same with ``presign = false``: every batch signed as it goes out;
floor                a bare signed aiohttp POST of the same order on a pre-warmed session:
                     stdlib json encode, sign, POST, read, ``json.loads``. By default a batch of
                     one to the endpoint the router uses, so the simulator does the same work
                     for both; ``--floor-endpoint single`` posts the single create;
pykalshi             ``portfolio.place_order`` (the single create), retries off; RSA only
                     (needs the ``bench`` extra);

then, on the same simulator, ``kalshi-python-async``'s ``create_order_v2`` (the single create)
runs its own series in a Python 3.13 child (``_peer_venv``; skipped, saying why, where it
cannot). Each has ``--warmup`` untimed samples first. Times are perf_counter, in µs.

Then the idle cost of the signing thread: a fresh router with presign on, then one with it off,
twice over (on, off, on, off), each placing one order and then left idle; the process's CPU
(``time.process_time()``) over ``--idle-s`` seconds in all per setting (0: skipped).

``--json FILE`` writes ``{"machine", "settings", "results", "added_median_us"}``:
``results`` has one row per contender with contender, key, loop, endpoint ("batched" or
"single"), status ("ok" or "skipped: why"/"failed: why"), and where it ran count, p50, p90,
p99, max (µs), p50_vs_router, outcomes (label -> count), python and samples_us (the timed
samples, sorted), and for the routers signatures (premade and inline batches) and fast_path
(requests sent on the idle fast path); a row that did not run has ``skipped`` (the status
again) instead. ``added_median_us`` is the router's p50
minus the floor's; ``idle`` has the CPU µs per second idle with presign on and off, and the
ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import platform
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import _peers
import msgspec
from _contenders import SignedPoster, via_floor, via_router
from _data import make_intents, stdlib_order
from _keys import KEYS, BenchKey, key_spec
from _machine import describe_machine, format_machine
from _options import comma_list
from _peer_venv import PeerPython, ensure_venv
from _report import (
    ADDED_LATENCY_US,
    added_median_us,
    format_ratio,
    quantiles,
    ratio,
    table,
    verdict,
)
from _runner import CHILD_TIMEOUT_S, LOOPS, default_loop, run_child, run_on, uvloop_available
from _sim import UNLIMITED_WRITES, SimProcess

from kalshi_router import Config, OrderIntent, OrderRouter
from kalshi_router.config import ExchangeConfig, RouterConfig

QUANTILES = ("p50", "p90", "p99")
Place = Callable[[OrderIntent], Awaitable[str]]
PRESIGN_OFF = "router-presign-off"
FAST_PATH_OFF = "router-fast-path-off"
ROUTERS = {
    "router": Config(),
    FAST_PATH_OFF: Config(router=RouterConfig(idle_fast_path=False)),
    PRESIGN_OFF: Config(exchange=ExchangeConfig(presign=False)),
}
PRESIGN = ("router", PRESIGN_OFF)
"""The idle CPU's pair: presign on, and off."""


def summary(samples_s: Sequence[float], outcomes: dict[str, int]) -> dict[str, Any]:
    """Count, quantiles and max in µs, the sorted samples, the outcome labels."""
    ordered = sorted(s * 1e6 for s in samples_s)
    return {
        "status": "ok",
        "count": len(ordered),
        **quantiles(ordered, (*QUANTILES, "max")),
        "outcomes": outcomes,
        "samples_us": ordered,
    }


async def interleaved(
    places: dict[str, Place], args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Every contender's timed samples, the contenders taking turns at random gaps."""
    total = args.warmup + args.samples
    # The same orders for all (same seed); other ids each, as the sim refuses reuse.
    orders = {name: make_intents(total, args.seed, f"lat-{name}") for name in places}
    rng = random.Random(args.seed)
    shuffle = random.Random(args.seed + 1).shuffle
    latencies: dict[str, list[float]] = {name: [] for name in places}
    labels: dict[str, Counter[str]] = {name: Counter() for name in places}
    turns = list(places)
    for i in range(total):
        shuffle(turns)
        for name in turns:
            await asyncio.sleep(rng.expovariate(1000.0 / args.mean_ms))
            started = time.perf_counter()
            label = await places[name](orders[name][i])
            elapsed = time.perf_counter() - started
            if i >= args.warmup:
                latencies[name].append(elapsed)
                labels[name][label] += 1
    return {name: summary(latencies[name], dict(labels[name])) for name in places}


async def kpa_series(url: str, key: BenchKey, python: str, args: argparse.Namespace) -> Any:
    """kalshi-python-async's own series, in its 3.13 child, on the same simulator."""
    total = args.warmup + args.samples
    spec = {
        **key_spec(key),
        "url": url,
        "orders": [stdlib_order(i) for i in make_intents(total, args.seed, "lat-kpa")],
        "warmup": args.warmup,
        "seed": args.seed,
        "mean_ms": args.mean_ms,
    }
    child = [_peers.__file__, "--mode", "latency", "--loop", args.loop]
    return await asyncio.to_thread(run_child, child, _peers.KPA, spec, CHILD_TIMEOUT_S, python)


async def idle_cpu(url: str, key: BenchKey, args: argparse.Namespace) -> dict[str, Any]:
    """CPU µs per second of this process with one idle router, presign on and off in turns."""
    spent = dict.fromkeys(PRESIGN, 0.0)
    for turn, name in enumerate([*PRESIGN, *PRESIGN]):
        async with OrderRouter.connect(ROUTERS[name], key.signer(), base_url=url) as router:
            # One order first, as a bot's router has sent some: the pool has been taken from.
            await router.place(make_intents(1, args.seed, f"idle-{turn}")[0])
            await asyncio.sleep(1.0)
            started = time.process_time()
            await asyncio.sleep(args.idle_s / 2)
            spent[name] += time.process_time() - started
    on, off = (spent[name] / args.idle_s * 1e6 for name in PRESIGN)
    return {
        "seconds": args.idle_s,
        "presign_on_cpu_us_per_s": on,
        "presign_off_cpu_us_per_s": off,
        "on_vs_off": ratio(on, off),
    }


async def run(
    args: argparse.Namespace, key: BenchKey, kpa: PeerPython
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    single = args.floor_endpoint == "single"
    pykalshi_reason = (
        _peers.pykalshi_skip_reason(args.key)
        if _peers.PYKALSHI in args.peers
        else "skipped: not asked for (--peers)"
    )
    async with contextlib.AsyncExitStack() as outer:
        sim = await outer.enter_async_context(
            SimProcess("basic", [key], seed=args.seed, sim_options=UNLIMITED_WRITES)
        )
        results, signatures = await series(sim.url, key, args, single, pykalshi_reason)
        if kpa.python is None:
            results[_peers.KPA] = {"status": kpa.reason}
        else:
            try:
                kpa_run = await kpa_series(sim.url, key, kpa.python, args)
            except (RuntimeError, subprocess.SubprocessError, ValueError) as exc:
                results[_peers.KPA] = {"status": _peers.failed_status(exc)}
            else:
                results[_peers.KPA] = {
                    **summary(kpa_run["samples_s"], kpa_run["outcomes"]),
                    "loop": kpa_run["loop"],
                    "python": kpa_run["python"],
                }
        idle = await idle_cpu(sim.url, key, args) if args.idle_s > 0 else None
    endpoints = {**dict.fromkeys(ROUTERS, "batched"), "floor": args.floor_endpoint}
    rows = []
    for name, r in results.items():
        row = {
            "contender": name,
            "key": args.key,
            "loop": args.loop,
            "endpoint": endpoints.get(name, "single"),
            "python": platform.python_version(),
            **r,
        }
        if name in signatures:
            row["signatures"], row["fast_path"] = signatures[name]
        if r["status"] != "ok":
            row["skipped"] = r["status"]
        rows.append(row)
    router_p50 = results["router"]["p50"]
    for row in rows:
        if row["status"] == "ok":
            row["p50_vs_router"] = ratio(row["p50"], router_p50)
    return rows, idle


async def series(
    url: str, key: BenchKey, args: argparse.Namespace, single: bool, pykalshi_reason: str | None
) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[dict[str, int] | None, int]]]:
    """The interleaved series of the routers, the floor and pykalshi; each router's signatures
    and its requests sent on the idle fast path."""
    async with contextlib.AsyncExitStack() as stack:
        routers = {
            name: await stack.enter_async_context(
                OrderRouter.connect(config, key.signer(), base_url=url)
            )
            for name, config in ROUTERS.items()
        }
        poster = await stack.enter_async_context(SignedPoster(url, key.signer()))
        places: dict[str, Place] = {
            name: functools.partial(via_router, router) for name, router in routers.items()
        }
        places["floor"] = lambda i: via_floor(poster, single, i)
        if pykalshi_reason is None:
            spec = {**key_spec(key), "url": url}
            client = await stack.enter_async_context(_peers.pykalshi_client(spec))
            places[_peers.PYKALSHI] = lambda i: _peers.pykalshi_single(client, stdlib_order(i))
        results = await interleaved(places, args)
        signatures = {
            name: (
                None if (figures := router.signatures) is None else msgspec.to_builtins(figures),
                router.stats().fast_path_sends,
            )
            for name, router in routers.items()
        }
        if pykalshi_reason is not None:
            results[_peers.PYKALSHI] = {"status": pykalshi_reason}
    return results, signatures


def render(
    rows: Sequence[dict[str, Any]], idle: dict[str, Any] | None, args: argparse.Namespace
) -> str:
    lines = []
    for r in rows:
        if r["status"] != "ok":
            lines.append([r["contender"], r["endpoint"], *["-"] * 6, r["status"]])
            continue
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
        if signed := r.get("signatures"):
            outcomes += f"; signatures premade {signed['premade']}, inline {signed['inline']}"
        if "fast_path" in r:
            outcomes += f"; fast path {r['fast_path']}"
        cells = [f"{r[q]:.0f}" for q in QUANTILES]
        figures = [str(r["count"]), *cells, f"{r['max']:.0f}", format_ratio(r["p50_vs_router"])]
        lines.append([r["contender"], r["endpoint"], *figures, outcomes])
    by_name = {r["contender"]: r for r in rows}
    for name in ROUTERS:
        added = [f"{by_name[name][q] - by_name['floor'][q]:+.0f}" for q in QUANTILES]
        lines.append([f"added ({name} - floor)", "-", "-", *added, "-", "-", "-"])
    floor = "single create" if args.floor_endpoint == "single" else "batch of one"
    title = (
        f"latency at low load: {args.samples} samples each (after {args.warmup} warm-up), "
        f"exponential gaps, mean {args.mean_ms:g} ms, key {args.key}, loop {args.loop}, "
        f"seed {args.seed}\n(submit to outcome, µs; floor: bare signed aiohttp POST, {floor}; "
        f"kalshi-python-async: its own series after the others, same simulator)"
    )
    columns = ["contender", "endpoint", "n", "p50 µs", "p90 µs", "p99 µs", "max µs"]
    columns += ["p50 vs router", "outcomes / status"]
    added_us = added_median_us(rows)
    met = verdict(ADDED_LATENCY_US.met(added_us))
    goal = f"goal: median added latency <= {ADDED_LATENCY_US.limit:g} µs: {added_us:.0f} µs, {met}"
    if idle is not None:
        goal += (
            f"\nidle, {idle['seconds']:g} s each: process CPU {idle['presign_on_cpu_us_per_s']:.0f}"
            f" µs/s with presign on, {idle['presign_off_cpu_us_per_s']:.0f} µs/s off "
            f"({format_ratio(idle['on_vs_off'])})"
        )
    return table(title, columns, lines) + "\n" + goal


def main(argv: Sequence[str] | None = None) -> int:
    have_uvloop = uvloop_available()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=400, help="timed samples per contender")
    parser.add_argument("--warmup", type=int, default=20, help="untimed samples first")
    parser.add_argument("--mean-ms", type=float, default=20.0, help="mean gap between intents")
    parser.add_argument("--floor-endpoint", choices=("batched", "single"), default="batched")
    parser.add_argument("--key", choices=KEYS, default="rsa")
    parser.add_argument("--loop", choices=LOOPS, default=default_loop())
    parser.add_argument(
        "--peers",
        type=comma_list(_peers.PEER_NAMES, none_ok=True),
        default=list(_peers.PEER_NAMES),
        help="peer contenders to run, or none",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--idle-s", type=float, default=10.0, help="idle CPU: seconds per presign setting (0: skip)"
    )
    parser.add_argument("--json", help="also write everything to this file")
    args = parser.parse_args(argv)
    if args.loop == "uvloop" and not have_uvloop:
        parser.error("uvloop is not installed")
    if args.samples < 1 or args.mean_ms <= 0 or args.idle_s < 0:
        parser.error("need --samples >= 1, --mean-ms > 0 and --idle-s >= 0")

    machine = describe_machine(args.loop)
    print(format_machine(machine), flush=True)
    key = BenchKey.generate(args.key)
    kpa = (
        ensure_venv()
        if _peers.KPA in args.peers
        else PeerPython(None, "skipped: not asked for (--peers)")
    )
    try:
        rows, idle = run_on(run(args, key, kpa), args.loop)
    except Exception as exc:  # the benchmark failed to measure: that is an error
        print(f"bench_latency: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("\n" + render(rows, idle, args))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        document = {
            "machine": machine,
            "settings": settings,
            "results": rows,
            "added_median_us": added_median_us(rows),
            "idle": idle,
        }
        Path(args.json).write_text(json.dumps(document, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
