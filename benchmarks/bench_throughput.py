"""Throughput with the rate limits off: orders/s end to end, and CPU per order, per contender.

    python benchmarks/bench_throughput.py [--orders N] [--in-flight 1,4] [--batch 20,100]
        [--key rsa|ed25519] [--loop uvloop|asyncio] [--json FILE]

For every contender the simulator starts afresh in its own subprocess (same state, empty books,
a write bucket no run can drain: ``UNLIMITED_WRITES``), and the contender runs in another
subprocess (this script re-invoked with ``--contender NAME``; it prints its figures as JSON),
so each one's ``time.process_time()`` is its own CPU and nothing of the parent's or the
sim's. Every contender sends the same resting orders (fixed seed, never crossing: all should
be accepted), first ``--warmup`` of them untimed (connections, caches), then ``--orders``
timed: from the first submit to the last outcome.

router          OrderRouter (V2 dialect), all orders submitted at once, for each in-flight limit
                and max batch size.
naive-single    one signed aiohttp POST /portfolio/events/orders per order, stdlib json, with
                as many concurrent workers as the router's in-flight requests.
naive-batch     sequential signed POSTs of 20 to /portfolio/events/orders/batched, stdlib json:
                no queue, no pipelining (one request in flight).

"vs router" divides a contender's orders/s by the router's at the same in-flight limit and a
batch of 20 (the Kalshi limit and the router's default). CPU per order is the contender
process's own CPU over the timed orders: on a shared 2-core box, where the simulator takes
the other core, wall-clock rates say as much about the sim as about the client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from _harness import (
    UNLIMITED_WRITES,
    BenchKey,
    SignedPoster,
    SimProcess,
    answer_labels,
    child_key,
    describe_machine,
    format_machine,
    key_spec,
    outcome_label,
    read_child_spec,
    run_child,
    run_on,
    stdlib_order,
    table,
)
from bench_saturation import make_intents

from kalshi_router import Config, OrderIntent, OrderRouter
from kalshi_router.config import LimitsConfig, RouterConfig
from kalshi_router.loop import loop_factory

NAIVE_BATCH = 20
REFERENCE_BATCH = 20
CHILD_TIMEOUT_S = 600.0
PEERS = (
    ("pykalshi (async batch, retries off)", "not yet measured: peer not installed"),
    (
        "kalshi-python-async batch_create_orders_v2",
        "skipped: needs Python >= 3.13"
        if sys.version_info < (3, 13)
        else "not yet measured: peer not installed",
    ),
)

Send = Callable[[Sequence[OrderIntent]], Awaitable[list[str]]]


# -- the contenders (run in the child) ---------------------------------------------------------


@contextlib.asynccontextmanager
async def router_sender(spec: dict[str, Any], key: BenchKey) -> AsyncIterator[Send]:
    count = spec["warmup"] + spec["orders"]
    config = Config(
        # The sim's bucket is unlimited; say so rather than rely on what it reports.
        limits=LimitsConfig(
            write_refill_rate=int(UNLIMITED_WRITES["write_refill"]),
            write_bucket_capacity=int(UNLIMITED_WRITES["write_capacity"]),
        ),
        router=RouterConfig(
            max_in_flight=spec["in_flight"],
            max_batch_size=spec["batch"],
            queue_size=max(RouterConfig().queue_size, count),
            # Every order is queued at once: none may expire while the slow configs drain.
            deadline_s=CHILD_TIMEOUT_S,
        ),
    )
    async with OrderRouter.connect(config, key.signer(), base_url=spec["url"]) as router:

        async def send(intents: Sequence[OrderIntent]) -> list[str]:
            futures = router.submit_many(intents)
            done = await asyncio.gather(*futures, return_exceptions=True)
            return [
                f"error:{type(o).__name__}" if isinstance(o, BaseException) else outcome_label(o)
                for o in done
            ]

        yield send


async def _post_labels(
    poster: SignedPoster, path: str, payload: Any, batched: bool, size: int
) -> list[str]:
    try:
        status, answer = await poster.post(path, payload)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [f"error:{type(exc).__name__}"] * size
    return answer_labels(status, answer, batched)


@contextlib.asynccontextmanager
async def naive_single_sender(spec: dict[str, Any], key: BenchKey) -> AsyncIterator[Send]:
    workers = spec["in_flight"]
    async with SignedPoster(spec["url"], key.signer(), connections=workers) as poster:

        async def send(intents: Sequence[OrderIntent]) -> list[str]:
            labels: list[str] = []
            queue = iter(intents)  # shared: each worker takes the next order when it is free

            async def worker() -> None:
                for intent in queue:
                    body = stdlib_order(intent)
                    labels.extend(
                        await _post_labels(poster, "/portfolio/events/orders", body, False, 1)
                    )

            await asyncio.gather(*(worker() for _ in range(workers)))
            return labels

        yield send


@contextlib.asynccontextmanager
async def naive_batch_sender(spec: dict[str, Any], key: BenchKey) -> AsyncIterator[Send]:
    async with SignedPoster(spec["url"], key.signer()) as poster:

        async def send(intents: Sequence[OrderIntent]) -> list[str]:
            labels: list[str] = []
            for start in range(0, len(intents), NAIVE_BATCH):
                chunk = intents[start : start + NAIVE_BATCH]
                body = {"orders": [stdlib_order(i) for i in chunk]}
                path = "/portfolio/events/orders/batched"
                labels.extend(await _post_labels(poster, path, body, True, len(chunk)))
            return labels

        yield send


CONTENDERS: dict[
    str, Callable[[dict[str, Any], BenchKey], contextlib.AbstractAsyncContextManager[Send]]
] = {
    "router": router_sender,
    "naive-single": naive_single_sender,
    "naive-batch": naive_batch_sender,
}


async def measure(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    key = child_key(spec)
    intents = make_intents(spec["warmup"] + spec["orders"], spec["seed"], "tp")
    warm, timed = intents[: spec["warmup"]], intents[spec["warmup"] :]
    async with CONTENDERS[name](spec, key) as send:
        warm_labels = await send(warm)
        gc.collect()  # start the timed part with no garbage of the warm-up pending
        cpu0, t0 = time.process_time(), time.perf_counter()
        labels = await send(timed)
        t1, cpu1 = time.perf_counter(), time.process_time()
    seconds, cpu = t1 - t0, cpu1 - cpu0
    return {
        "orders": len(timed),
        "seconds": seconds,
        "orders_per_s": len(timed) / seconds,
        "cpu_s": cpu,
        "cpu_us_per_order": cpu / len(timed) * 1e6,
        "outcomes": dict(Counter(labels)),
        "warmup_outcomes": dict(Counter(warm_labels)),
    }


def child_main(name: str, loop: str) -> int:
    spec = read_child_spec()
    result = run_on(measure(name, spec), loop)
    json.dump(result, sys.stdout)
    return 0


# -- the parent --------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """(contender, in-flight requests, batch size) for every run, in order."""
    runs = [("router", k, b) for k in args.in_flight for b in args.batch]
    runs += [("naive-single", k, 1) for k in args.in_flight]
    runs.append(("naive-batch", 1, NAIVE_BATCH))
    return runs


async def run_all(args: argparse.Namespace, key: BenchKey) -> list[dict[str, Any]]:
    results = []
    for name, in_flight, batch in plan(args):
        async with SimProcess("basic", [key], seed=args.seed, sim_options=UNLIMITED_WRITES) as sim:
            spec = {
                **key_spec(key),
                "url": sim.url,
                "orders": args.orders,
                "warmup": args.warmup,
                "seed": args.seed,
                "in_flight": in_flight,
                "batch": batch,
            }
            sim_cpu0 = sim.cpu_seconds()
            child = [__file__, "--loop", args.loop]
            result = await asyncio.to_thread(run_child, child, name, spec, CHILD_TIMEOUT_S)
            sim_cpu1 = sim.cpu_seconds()
        sent = args.orders + args.warmup
        sim_us = None
        if sim_cpu0 is not None and sim_cpu1 is not None:
            sim_us = (sim_cpu1 - sim_cpu0) / sent * 1e6
        results.append(
            {
                "contender": name,
                "in_flight": in_flight,
                "batch": batch,
                **result,
                "sim_cpu_us_per_order_incl_warmup": sim_us,
            }
        )
        print(f"  done: {name} in-flight {in_flight} batch {batch}", file=sys.stderr)
    return results


def reference(results: Sequence[dict[str, Any]], in_flight: int) -> dict[str, Any] | None:
    """The router at this in-flight limit and a batch of 20; failing that its best there."""
    routers = [r for r in results if r["contender"] == "router" and r["in_flight"] == in_flight]
    for r in routers:
        if r["batch"] == REFERENCE_BATCH:
            return r
    return max(routers, key=lambda r: r["orders_per_s"], default=None)


def render(results: Sequence[dict[str, Any]], args: argparse.Namespace) -> str:
    rows = []
    for r in results:
        ref = reference(results, r["in_flight"])
        ratio = f"{r['orders_per_s'] / ref['orders_per_s']:.2f}x" if ref else "-"
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
        sim_us = r["sim_cpu_us_per_order_incl_warmup"]
        rows.append(
            [
                r["contender"],
                str(r["in_flight"]),
                str(r["batch"]),
                f"{r['orders_per_s']:.0f}",
                ratio,
                f"{r['cpu_us_per_order']:.1f}",
                "-" if sim_us is None else f"{sim_us:.1f}",
                outcomes,
            ]
        )
    for peer, note in PEERS:
        rows.append([peer, "-", "-", "-", "-", "-", "-", note])
    columns = [
        "contender",
        "in-flight",
        "batch",
        "orders/s",
        "vs router",
        "CPU µs/order",
        "sim µs/order",
        "outcomes",
    ]
    title = (
        f"throughput, limits off: {args.orders} orders timed after {args.warmup} warm-up, "
        f"key {args.key}, loop {args.loop}, seed {args.seed}\n"
        f"(vs router: orders/s over the router's at the same in-flight and batch "
        f"{REFERENCE_BATCH}; CPU: the contender process's own; sim: the simulator's, "
        f"warm-up included)"
    )
    return table(title, columns, rows) + "\n" + goals(results, args)


def goals(results: Sequence[dict[str, Any]], args: argparse.Namespace) -> str:
    """The issue's goals, reported, never asserted."""
    lines = []
    cpu_goal = 20.0 if args.key == "rsa" else 10.0
    for r in results:
        if r["contender"] == "router" and r["batch"] == REFERENCE_BATCH:
            met = "met" if r["cpu_us_per_order"] <= cpu_goal else "MISSED"
            lines.append(
                f"goal: router CPU <= {cpu_goal:g} µs/order at full batches of "
                f"{REFERENCE_BATCH} (in-flight {r['in_flight']}): "
                f"{r['cpu_us_per_order']:.1f} µs, {met}"
            )
    for r in results:
        ref = reference(results, r["in_flight"])
        if r["contender"] == "naive-single" and ref is not None:
            x = ref["orders_per_s"] / r["orders_per_s"]
            met = "met" if x >= 10 else "MISSED"
            lines.append(
                f"goal: router >= 10x naive per-order at in-flight {r['in_flight']}: "
                f"{x:.1f}x, {met}"
            )
    lines.append("goal: router >= 3x the best peer: not yet measured (peers not installed)")

    def refused(field: str) -> int:
        return sum(n for r in results for k, n in r[field].items() if k != "accepted")

    lines.append(
        f"orders not accepted, all runs (timed / warm-up): "
        f"{refused('outcomes')} / {refused('warmup_outcomes')}"
    )
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated integers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"need integers >= 1: {text!r}")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    have_uvloop = loop_factory() is not None
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=10_000, help="timed orders per contender")
    parser.add_argument("--warmup", type=int, default=200, help="untimed orders first")
    parser.add_argument("--in-flight", type=_ints, default=[1, 4], help="e.g. 1,4")
    parser.add_argument("--batch", type=_ints, default=[20, 100], help="router max batch sizes")
    parser.add_argument("--key", choices=("rsa", "ed25519"), default="rsa")
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop" if have_uvloop else "asyncio"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="also write everything to this file")
    parser.add_argument("--contender", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.contender:
        return child_main(args.contender, args.loop)
    if args.loop == "uvloop" and not have_uvloop:
        parser.error("uvloop is not installed")

    machine = describe_machine(args.loop)
    print(format_machine(machine), flush=True)  # before the children's progress on stderr
    key = BenchKey.generate(args.key)
    try:
        results = run_on(run_all(args, key), args.loop)
    except Exception as exc:  # the benchmark failed to measure: that is an error
        print(f"bench_throughput: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("\n" + render(results, args))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("json", "contender")}
        peers = dict(PEERS)
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                {"machine": machine, "settings": settings, "results": results, "peers": peers},
                handle,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
