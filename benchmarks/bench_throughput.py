"""Throughput with the rate limits off: orders/s end to end, and CPU per order, per contender.

    python benchmarks/bench_throughput.py [--orders N] [--warmup N] [--in-flight 1,4]
        [--batch 20,100] [--key rsa,ed25519] [--loop uvloop,asyncio]
        [--peers pykalshi,kalshi-python-async|none] [--repeat N] [--json FILE]

For every run the simulator starts afresh in its own subprocess (same state, empty books, a
write bucket no run can drain: ``UNLIMITED_WRITES``), and the contender runs in another
subprocess, so each one's ``time.process_time()`` is its own CPU and nothing of the parent's
or the sim's. Every contender sends the same resting orders (fixed seed, never crossing: all
should be accepted), first ``--warmup`` of them untimed (connections, caches), then ``--orders``
timed: from the first submit to the last outcome. The first ``--key`` and ``--loop`` are the
defaults; the others are run for the router at batch 20 and every in-flight limit. The whole
plan runs ``--repeat`` times in rounds and each run reports its best round (least CPU per
order): the machines are shared, and a neighbour's burst only ever adds time.

router               OrderRouter (V2 dialect), all orders submitted at once: every in-flight
                     limit x max batch size with the default key and loop, then each other
                     key x loop at batch 20.
naive-single         one signed aiohttp POST /portfolio/events/orders per order, stdlib json,
                     with as many concurrent workers as the router's in-flight requests.
naive-batch          sequential signed POSTs of 20 to /portfolio/events/orders/batched, stdlib
                     json: no queue, no pipelining (one request in flight).
pykalshi             pykalshi's ``portfolio.batch_place_orders`` (V2 batched path), retries
                     off, batches of 20 with as many concurrent callers as in-flight requests;
                     RSA only. Needs the ``bench`` extra.
kalshi-python-async  Kalshi's SDK, ``batch_create_orders_v2``, the same way, in a Python 3.13
                     venv built on demand (``_peer_venv``); skipped, saying why, where that
                     cannot be had. Both peers: see ``_peers``.

"vs router" divides a contender's orders/s by the router's with the same key, loop and
in-flight limit at a batch of 20 (the Kalshi limit and the router's default); "CPU vs router"
does the same for CPU per order. CPU per order is the contender process's own CPU over the
timed orders: on a shared 2-core box, where the simulator takes the other core, wall-clock
rates say as much about the sim as about the client.

``--json FILE`` writes ``{"machine", "settings", "peers", "results"}``. ``peers`` maps each peer
to ``{"version", "python", "status"}``. ``results`` has one row per run, in table order, each
with contender, key, loop, in_flight, batch and status ("ok", "skipped: why" or "failed: why").
A row that ran adds repeats, orders, seconds, orders_per_s, cpu_s, cpu_us_per_order, vs_router and
cpu_vs_router (ratios, None without a reference), sim_cpu_us_per_order (the simulator's CPU
per order, warm-up included), outcomes and warmup_outcomes (label -> count) and python (the
contender's interpreter); one that did not has ``skipped`` (the status again) and no figures,
and a peer skipped for a key has one row with ``in_flight`` None.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _peers
import aiohttp
from _harness import (
    UNLIMITED_WRITES,
    BenchKey,
    KeyKind,
    SignedPoster,
    SimProcess,
    answer_labels,
    child_key,
    comma_list,
    describe_machine,
    format_machine,
    format_ratio,
    key_spec,
    outcome_label,
    ratio,
    read_child_spec,
    run_child,
    run_on,
    stdlib_order,
    table,
)
from _peer_venv import KPA_VERSION, PeerPython, ensure_venv
from bench_saturation import make_intents

from kalshi_router import Config, OrderIntent, OrderRouter
from kalshi_router.config import LimitsConfig, RouterConfig
from kalshi_router.loop import loop_factory

ROUTER, NAIVE_SINGLE, NAIVE_BATCH = "router", "naive-single", "naive-batch"
BATCH = 20  # naive batching and the peers: Kalshi's batch limit; also the router's reference
CHILD_TIMEOUT_S = 600.0
KEYS: tuple[KeyKind, ...] = ("rsa", "ed25519")
LOOPS = ("uvloop", "asyncio")
ORDER_TAG = "tp"

Sender = Callable[[dict[str, Any], BenchKey], contextlib.AbstractAsyncContextManager[Any]]


# -- our contenders (run in the child) ----------------------------------------------------------


@contextlib.asynccontextmanager
async def router_sender(
    spec: dict[str, Any], key: BenchKey
) -> AsyncIterator[_peers.Send[OrderIntent]]:
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
            # What a bot placing a book of quotes at once would write.
            return [outcome_label(o) for o in await router.place_many(intents)]

        yield send


@contextlib.asynccontextmanager
async def naive_sender(
    spec: dict[str, Any], key: BenchKey
) -> AsyncIterator[_peers.Send[OrderIntent]]:
    """A batch of one goes to the single create, more to the batched path; ``in_flight``
    workers each wait for their answer before they send again."""
    batched = spec["batch"] > 1
    path = "/portfolio/events/orders/batched" if batched else "/portfolio/events/orders"
    async with SignedPoster(spec["url"], key.signer(), connections=spec["in_flight"]) as poster:

        async def post(chunk: Sequence[OrderIntent]) -> list[str]:
            body = (
                {"orders": [stdlib_order(i) for i in chunk]} if batched else stdlib_order(chunk[0])
            )
            try:
                status, answer = await poster.post(path, body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return [_peers.error_label(exc)] * len(chunk)
            return answer_labels(status, answer, batched)

        async def send(intents: Sequence[OrderIntent]) -> list[str]:
            return await _peers.pipelined(intents, spec["batch"], spec["in_flight"], post)

        yield send


CONTENDERS: dict[str, Sender] = {
    ROUTER: router_sender,
    NAIVE_SINGLE: naive_sender,
    NAIVE_BATCH: naive_sender,
}


def child_main(name: str, loop: str) -> int:
    spec = read_child_spec()
    intents = make_intents(spec["warmup"] + spec["orders"], spec["seed"], ORDER_TAG)
    warm, timed = intents[: spec["warmup"]], intents[spec["warmup"] :]
    sender = CONTENDERS[name](spec, child_key(spec))
    json.dump(run_on(_peers.measure(sender, warm, timed), loop), sys.stdout)
    return 0


# -- the parent ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    contender: str
    key: KeyKind
    loop: str
    in_flight: int
    batch: int


def plan(args: argparse.Namespace) -> list[Run]:
    """Every run, in table order (see the module docstring)."""
    key0, loop0 = args.key[0], args.loop[0]
    runs = [Run(ROUTER, key0, loop0, k, b) for k in args.in_flight for b in args.batch]
    runs += [
        Run(ROUTER, key, loop, k, BATCH)
        for key in args.key
        for loop in args.loop
        if (key, loop) != (key0, loop0)
        for k in args.in_flight
    ]
    runs += [Run(NAIVE_SINGLE, key0, loop0, k, 1) for k in args.in_flight]
    runs.append(Run(NAIVE_BATCH, key0, loop0, 1, BATCH))
    runs += [
        Run(peer, key, loop0, k, BATCH)
        for peer in args.peers
        for key in args.key
        for k in args.in_flight
    ]
    return runs


@dataclass(frozen=True, slots=True)
class Peers:
    """Where each peer runs (its interpreter) or why it cannot, decided once per invocation."""

    kpa: PeerPython

    def skip_reason(self, peer: str, key: KeyKind) -> str | None:
        if peer == _peers.PYKALSHI:
            return _peers.pykalshi_skip_reason(key)
        return self.kpa.reason or None

    def child(self, run: Run) -> tuple[str, list[str]]:
        """The interpreter and script arguments that run this peer."""
        python = sys.executable if run.contender == _peers.PYKALSHI else self.kpa.python
        assert python is not None  # a peer without an interpreter was skipped
        return python, [_peers.__file__, "--mode", "throughput", "--loop", run.loop]

    def describe(self, wanted: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Version, interpreter and status of every peer, for the JSON."""
        pykalshi_reason = _peers.pykalshi_skip_reason("rsa")
        return {
            _peers.PYKALSHI: {
                "version": _peers.installed_version(_peers.PYKALSHI),
                "python": platform.python_version(),
                "status": _status(_peers.PYKALSHI, wanted, pykalshi_reason),
            },
            _peers.KPA: {
                "version": KPA_VERSION if self.kpa.python else None,
                "python": self.kpa.version,
                "status": _status(_peers.KPA, wanted, self.kpa.reason or None),
            },
        }


def _status(peer: str, wanted: Sequence[str], reason: str | None) -> str:
    if peer not in wanted:
        return "skipped: not asked for (--peers)"
    return reason or "ok"


async def run_one(
    run: Run, args: argparse.Namespace, keys: dict[KeyKind, BenchKey], peers: Peers
) -> dict[str, Any]:
    key = keys[run.key]
    async with SimProcess("basic", [key], seed=args.seed, sim_options=UNLIMITED_WRITES) as sim:
        spec: dict[str, Any] = {
            **key_spec(key),
            "url": sim.url,
            "orders": args.orders,
            "warmup": args.warmup,
            "seed": args.seed,
            "in_flight": run.in_flight,
            "batch": run.batch,
        }
        if run.contender in CONTENDERS:
            python, child = sys.executable, [__file__, "--loop", run.loop]
        else:
            python, child = peers.child(run)
            # The peers get the same orders as V2 bodies (the 3.13 child has no kalshi_router).
            intents = make_intents(args.warmup + args.orders, args.seed, ORDER_TAG)
            spec["orders"] = [stdlib_order(i) for i in intents]
        sim_cpu0 = sim.cpu_seconds()
        try:
            result = await asyncio.to_thread(
                run_child, child, run.contender, spec, CHILD_TIMEOUT_S, python
            )
        except (RuntimeError, subprocess.SubprocessError, ValueError) as exc:
            if run.contender in CONTENDERS:
                raise  # ours must run: that is the benchmark failing
            return _not_run(run, run.in_flight, _peers.failed_status(exc))
        sim_cpu1 = sim.cpu_seconds()
    sim_us = None
    if sim_cpu0 is not None and sim_cpu1 is not None:
        sim_us = (sim_cpu1 - sim_cpu0) / (args.orders + args.warmup) * 1e6
    return {
        **_row(run, run.in_flight),
        "status": "ok",
        **result,
        "loop": result.get("loop", run.loop),
        "python": result.get("python", platform.python_version()),
        "vs_router": None,
        "cpu_vs_router": None,
        "sim_cpu_us_per_order": sim_us,
    }


def _row(run: Run, in_flight: int | None) -> dict[str, Any]:
    return {
        "contender": run.contender,
        "key": run.key,
        "loop": run.loop,
        "in_flight": in_flight,
        "batch": run.batch,
    }


def _not_run(run: Run, in_flight: int | None, reason: str) -> dict[str, Any]:
    """A row without figures (``in_flight`` None: one row says it for every limit)."""
    return {**_row(run, in_flight), "status": reason, "skipped": reason}


async def run_all(
    args: argparse.Namespace, keys: dict[KeyKind, BenchKey], peers: Peers
) -> list[dict[str, Any]]:
    """Every run of the plan ``--repeat`` times, in rounds (so drift in the machine's load
    spreads over all contenders), keeping each run's least disturbed repeat: the one with the
    least CPU per order (best of N, as timeit does)."""
    results: list[dict[str, Any] | None] = []
    todo: list[tuple[int, Run]] = []
    skipped: set[tuple[str, str]] = set()
    for run in plan(args):
        if run.contender not in CONTENDERS and (
            reason := peers.skip_reason(run.contender, run.key)
        ):
            if (run.contender, run.key) not in skipped:  # one row says it for every limit
                skipped.add((run.contender, run.key))
                results.append(_not_run(run, None, reason))
            continue
        todo.append((len(results), run))
        results.append(None)
    repeats: dict[int, list[dict[str, Any]]] = {at: [] for at, _ in todo}
    for round_ in range(args.repeat):
        for at, run in todo:
            row = await run_one(run, args, keys, peers)
            repeats[at].append(row)
            print(
                f"  {row['status']}: {run.contender} {run.key} {run.loop} "
                f"in-flight {run.in_flight} batch {run.batch} (round {round_ + 1})",
                file=sys.stderr,
            )
    for at, rows in repeats.items():
        results[at] = best_of(rows)
    done = [r for r in results if r is not None]
    add_ratios(done)
    return done


def best_of(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The repeat with the least CPU per order (a failed one only if all failed)."""
    measured = [r for r in rows if r["status"] == "ok"]
    best = min(measured, key=lambda r: r["cpu_us_per_order"]) if measured else rows[-1]
    return {**best, "repeats": len(rows)}


def reference(
    results: Sequence[dict[str, Any]], key: str, loop: str, in_flight: int | None
) -> dict[str, Any] | None:
    """The router with this key, loop and in-flight limit at a batch of 20; else its best."""
    routers = [
        r
        for r in results
        if r["contender"] == ROUTER
        and r["status"] == "ok"
        and (r["key"], r["loop"], r["in_flight"]) == (key, loop, in_flight)
    ]
    for r in routers:
        if r["batch"] == BATCH:
            return r
    return max(routers, key=lambda r: r["orders_per_s"], default=None)


def add_ratios(results: Sequence[dict[str, Any]]) -> None:
    for r in results:
        ref = reference(results, r["key"], r["loop"], r["in_flight"])
        if r["status"] == "ok" and ref is not None:
            r["vs_router"] = ratio(r["orders_per_s"], ref["orders_per_s"])
            r["cpu_vs_router"] = ratio(r["cpu_us_per_order"], ref["cpu_us_per_order"])


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render(results: Sequence[dict[str, Any]], args: argparse.Namespace) -> str:
    rows = []
    for r in results:
        if r["status"] == "ok":
            note = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
        else:
            note = r["status"]
        rows.append(
            [
                r["contender"],
                r["key"],
                r["loop"],
                _cell(r["in_flight"], "d"),
                str(r["batch"]),
                _cell(r.get("orders_per_s"), ".0f"),
                format_ratio(r.get("vs_router")),
                _cell(r.get("cpu_us_per_order"), ".1f"),
                format_ratio(r.get("cpu_vs_router")),
                _cell(r.get("sim_cpu_us_per_order"), ".1f"),
                note,
            ]
        )
    columns = [
        "contender",
        "key",
        "loop",
        "in-flight",
        "batch",
        "orders/s",
        "vs router",
        "CPU µs/order",
        "CPU vs router",
        "sim µs/order",
        "outcomes / status",
    ]
    title = (
        f"throughput, limits off: {args.orders} orders timed after {args.warmup} warm-up, "
        f"seed {args.seed}, each run in its own process against a fresh simulator\n"
        f"(vs router: over the router with the same key, loop and in-flight at batch {BATCH}; "
        f"CPU: the contender process's own; sim: the simulator's, warm-up included)"
    )
    return table(title, columns, rows) + "\n" + goals(results)


CPU_GOAL_US: dict[str, float] = {"rsa": 20.0, "ed25519": 10.0}


def goals(results: Sequence[dict[str, Any]]) -> str:
    """The issue's goals, reported, never asserted."""
    ok = [r for r in results if r["status"] == "ok"]
    lines = []
    for r in ok:
        if r["contender"] == ROUTER and r["batch"] == BATCH:
            goal = CPU_GOAL_US[r["key"]]
            met = "met" if r["cpu_us_per_order"] <= goal else "MISSED"
            lines.append(
                f"goal: router CPU <= {goal:g} µs/order at full batches ({r['key']}, {r['loop']}, "
                f"in-flight {r['in_flight']}): {r['cpu_us_per_order']:.1f} µs, {met}"
            )
    for r in ok:
        if r["contender"] == NAIVE_SINGLE and r["vs_router"]:
            x = 1 / r["vs_router"]
            met = "met" if x >= 10 else "MISSED"
            lines.append(
                f"goal: router >= 10x naive per-order at in-flight {r['in_flight']}: "
                f"{x:.1f}x, {met}"
            )
    peers = [r for r in ok if r["contender"] in _peers.PEER_NAMES and r["vs_router"]]
    for in_flight in sorted({r["in_flight"] for r in peers}):
        best = max((r for r in peers if r["in_flight"] == in_flight), key=lambda r: r["vs_router"])
        x = 1 / best["vs_router"]
        met = "met" if x >= 3 else "MISSED"
        lines.append(
            f"goal: router >= 3x the best peer at in-flight {in_flight} ({best['contender']}, "
            f"{best['key']}): {x:.1f}x, {met}"
        )
    if not peers:
        lines.append("goal: router >= 3x the best peer: no peer ran (see the table)")

    def refused(field: str) -> int:
        return sum(n for r in ok for k, n in r[field].items() if k != "accepted")

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
    loops = list(LOOPS if have_uvloop else LOOPS[1:])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=10_000, help="timed orders per run")
    parser.add_argument("--warmup", type=int, default=200, help="untimed orders first")
    parser.add_argument("--in-flight", type=_ints, default=[1, 4], help="e.g. 1,4")
    parser.add_argument("--batch", type=_ints, default=[20, 100], help="router max batch sizes")
    parser.add_argument("--key", type=comma_list(KEYS), default=list(KEYS), help="e.g. rsa,ed25519")
    parser.add_argument("--loop", type=comma_list(LOOPS), default=loops, help="e.g. uvloop,asyncio")
    parser.add_argument(
        "--peers",
        type=comma_list(_peers.PEER_NAMES, none_ok=True),
        default=list(_peers.PEER_NAMES),
        help="peer contenders to run, or none",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each contender; the best is reported"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="also write everything to this file")
    parser.add_argument("--contender", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.contender:
        return child_main(args.contender, args.loop[0])
    if "uvloop" in args.loop and not have_uvloop:
        parser.error("uvloop is not installed")
    if args.orders < 1 or args.warmup < 0 or args.repeat < 1:
        parser.error("need --orders >= 1, --warmup >= 0 and --repeat >= 1")

    machine = describe_machine(args.loop[0])
    print(format_machine(machine), flush=True)  # before the children's progress on stderr
    keys = {kind: BenchKey.generate(kind, key_id=f"bench-{kind}") for kind in args.key}
    wanted_kpa = _peers.KPA in args.peers
    peers = Peers(ensure_venv() if wanted_kpa else PeerPython(None, "skipped: not asked for"))
    try:
        results = run_on(run_all(args, keys, peers), args.loop[0])
    except Exception as exc:  # the benchmark failed to measure: that is an error
        print(f"bench_throughput: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("\n" + render(results, args))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("json", "contender")}
        document = {
            "machine": machine,
            "settings": settings,
            "peers": peers.describe(args.peers),
            "results": results,
        }
        Path(args.json).write_text(json.dumps(document, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
