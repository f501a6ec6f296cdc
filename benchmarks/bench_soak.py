"""Soak: many intents through ``kalshi-router serve`` and its stream; does anything grow?

    python benchmarks/bench_soak.py [--intents 200000] [--clients 4] [--outstanding 2000]
        [--refill 40000] [--keep-outcomes 10000] [--seed 0] [--json FILE]

Three processes: the simulator (``kalshi-router sim``, at the highest tier with its write refill
raised to ``--refill`` tokens/s and a two-second bucket), the service (``serve()`` exactly as
``kalshi-router serve`` runs it, on uvloop, in a child of this script that also answers
SIGUSR2 by writing its asyncio task count to a file), and this one: ``--clients``
``RouterClient`` streams keeping ``--outstanding`` intents in flight between them, resting
orders that never trade.

Measured on the service process: RSS (``/proc/PID/status``), open fds and sockets
(``/proc/PID/fd``; those connected to the exchange counted apart) and asyncio tasks, at four
points: *idle* (started, no client), *warm* (clients connected, 2 % of the intents done), *end*
(every outcome in, clients still connected) and *after* (clients gone). A leak shows as end >
warm or after > idle (but for the router's pool to the exchange, which opens connections as the
load calls for them, up to its limit); RSS is also
sampled at every tenth of the run. The service keeps its last ``--keep-outcomes`` outcomes for
``GET /v1/orders/{key}`` by design, so RSS grows until that many intents have settled and
should be flat after. Latency (submit to outcome, per intent, perf_counter) is reported per
tenth of the run: stable means the last tenth looks like the first. The simulator's books are
checked at the end: every intent has one outcome, every accepted one is there once with its
order id, no client_order_id twice. Goals are reported, never asserted (the exit code is
non-zero only when the benchmark itself fails; ``tests/chaos/test_soak.py`` asserts on a short
run). Fixed seed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _contenders import future_label
from _data import resting_intents
from _keys import BenchKey
from _machine import describe_machine, format_machine
from _report import quantiles, table
from _runner import loop_in_use, run_on
from _sim import SimProcess
from _soak_service import TOKEN, Service, serve_with_probe

from kalshi_router.service.client import RouterClient

WARMUP_SHARE = 0.02


class Run:
    """The load: ``outstanding`` intents in flight over the clients, round robin."""

    def __init__(self, total: int, seed: int, outstanding: int) -> None:
        self.total = total
        self.latency = [0.0] * total
        self.labels: Counter[str] = Counter()
        self.accepted: dict[str, str] = {}
        self.settled = 0
        self._intents = resting_intents(seed, "soak")
        self._room = asyncio.Semaphore(outstanding)
        self._wanted = 0
        self._reached = asyncio.Event()

    def _settled(self, i: int, key: str, started: float, future: asyncio.Future[Any]) -> None:
        self.latency[i] = time.perf_counter() - started
        self._room.release()
        self.settled += 1
        label = future_label(future)
        self.labels[label] += 1
        if label == "accepted":
            self.accepted[key] = future.result().order_id
        if self.settled >= self._wanted:
            self._reached.set()

    async def pump(
        self, clients: Sequence[RouterClient], start: int, stop: int, tenths: list[float]
    ) -> None:
        for i in range(start, stop):
            await self._room.acquire()
            intent = next(self._intents)
            started = time.perf_counter()
            future = clients[i % len(clients)].submit(intent)
            future.add_done_callback(
                functools.partial(self._settled, i, intent.client_order_id, started)
            )
            if (i + 1) % max(1, self.total // 10) == 0:
                tenths.append(time.perf_counter())

    async def settled_up_to(self, count: int) -> None:
        self._wanted = count
        self._reached.clear()
        if self.settled < count:
            await self._reached.wait()


def _percentiles_ms(samples: Sequence[float]) -> dict[str, float]:
    return quantiles(sorted(samples), ("p50", "p90", "p99", "max"), 1e3)


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    key = BenchKey.generate("ed25519", key_id="soak-key")
    options = {"write_refill": args.refill, "write_capacity": 2 * args.refill}
    total = args.intents
    warm = max(1, int(total * WARMUP_SHARE))
    run = Run(total, args.seed, args.outstanding)
    rss_tenths: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kalshi-soak-") as tmp:
        async with SimProcess("prime", [key], seed=args.seed, sim_options=options) as sim:
            service = Service(Path(tmp), sim.url, key, args.keep_outcomes)
            await service.start()
            try:
                samples = [await service.sample("idle")]
                clients = [RouterClient(service.url, token=TOKEN) for _ in range(args.clients)]
                for client in clients:
                    await client.connect()
                stamps: list[float] = []
                await run.pump(clients, 0, warm, stamps)
                await run.settled_up_to(warm)
                samples.append(await service.sample("warm"))
                started = time.perf_counter()
                sim0 = await sim.stats()
                tenths: list[float] = []
                pump = asyncio.create_task(run.pump(clients, warm, total, tenths))
                seen = 0
                while not pump.done() or run.settled < total:
                    await asyncio.sleep(0.05)
                    if len(tenths) > seen:
                        seen = len(tenths)
                        rss_tenths.append({"tenth": seen, "rss_kb": service.rss_kb()})
                    if pump.done():
                        await pump  # re-raise a failure of the pump now
                        await run.settled_up_to(total)
                elapsed = time.perf_counter() - started
                sim1 = await sim.stats()
                samples.append(await service.sample("end"))
                for client in clients:
                    await client.aclose()
                await asyncio.sleep(0.5)  # the service's side of the streams closes
                samples.append(await service.sample("after"))
            finally:
                code = await service.stop()
            books = await _books(sim)
    return _result(args, run, samples, rss_tenths, elapsed, sim0, sim1, code, books, warm)


async def _books(sim: SimProcess) -> dict[str, list[str]]:
    """client_order_id -> order ids the simulator holds for the soak's key."""
    import aiohttp

    held: dict[str, list[str]] = {}
    timeout = aiohttp.ClientTimeout(total=120)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(sim.origin + "/_sim/orders") as response,
    ):
        for order in await response.json():
            if order["user_id"] == "soak-key" and order["client_order_id"]:
                held.setdefault(order["client_order_id"], []).append(order["order_id"])
    return held


def _result(
    args: argparse.Namespace,
    run: Run,
    samples: list[dict[str, Any]],
    rss_tenths: list[dict[str, Any]],
    elapsed: float,
    sim0: dict[str, Any],
    sim1: dict[str, Any],
    exit_code: int,
    books: dict[str, list[str]],
    warm: int,
) -> dict[str, Any]:
    measured = run.latency[warm:]
    tenth = max(1, len(measured) // 10)
    by_tenth = [_percentiles_ms(measured[i * tenth : (i + 1) * tenth]) for i in range(10)]
    at = {s["at"]: s for s in samples}
    first, last = by_tenth[0], by_tenth[-1]
    tokens = sim1["tokens_spent"]["write"] - sim0["tokens_spent"]["write"]
    return {
        "machine": describe_machine(loop_in_use("uvloop")),
        "settings": {
            "intents": run.total,
            "clients": args.clients,
            "outstanding": args.outstanding,
            "refill": args.refill,
            "keep_outcomes": args.keep_outcomes,
            "seed": args.seed,
        },
        "wall_s": elapsed,
        "intents_per_s": (run.total - warm) / elapsed,
        "budget_utilization": tokens / (args.refill * elapsed),
        "http_429": sim1["rate_limited"],
        "outcomes": dict(run.labels),
        "one_outcome_each": run.settled == run.total and sum(run.labels.values()) == run.total,
        "books": {
            "held": len(books),
            "duplicates": sum(len(ids) > 1 for ids in books.values()),
            "accepted_missing_or_other_id": sum(
                books.get(key, [None])[0] != order_id for key, order_id in run.accepted.items()
            ),
            "held_not_accepted": len(set(books) - set(run.accepted)),
        },
        "samples": samples,
        "rss_by_tenth": rss_tenths,
        "growth": {
            name: at["end"][name] - at["warm"][name]
            for name in ("rss_kb", "fds", "sockets", "exchange_sockets", "tasks")
        }
        | {
            f"{name}_after_vs_idle": at["after"][name] - at["idle"][name]
            for name in ("fds", "sockets", "exchange_sockets", "tasks")
        },
        "latency_ms_by_tenth": by_tenth,
        "latency_last_vs_first": {
            "p50": last["p50"] / first["p50"] if first["p50"] else None,
            "p99": last["p99"] / first["p99"] if first["p99"] else None,
        },
        "service_exit_code": exit_code,
    }


def _print(result: dict[str, Any]) -> None:
    print(format_machine(result["machine"]))
    s = result["settings"]
    print(
        f"\n{s['intents']} intents, {s['clients']} clients, {s['outstanding']} outstanding, "
        f"refill {s['refill']} tokens/s: {result['wall_s']:.1f} s, "
        f"{result['intents_per_s']:.0f} intents/s, budget used {result['budget_utilization']:.1%}"
        f", 429s {result['http_429']}"
    )
    print(f"outcomes: {result['outcomes']}; one outcome each: {result['one_outcome_each']}")
    print(f"books: {result['books']}")
    counts = ("fds", "sockets", "exchange_sockets", "tasks")
    service = [
        [x["at"], f"{x['rss_kb'] / 1024:.1f}", *(str(x[k]) for k in counts)]
        for x in result["samples"]
    ]
    columns = ["service", "rss MB", "fds", "sockets", "of which to the exchange", "tasks"]
    print(
        "\n"
        + table("the service at each point (a leak: end > warm, after > idle)", columns, service)
    )
    print(f"growth: {result['growth']}")
    print(
        "RSS by tenth (MB): "
        + " ".join(f"{t['rss_kb'] / 1024:.0f}" for t in result["rss_by_tenth"])
    )
    tenths = [
        [str(n), *(f"{row[q]:.1f}" for q in ("p50", "p90", "p99", "max"))]
        for n, row in enumerate(result["latency_ms_by_tenth"], 1)
    ]
    columns = ["tenth", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    print(
        "\n"
        + table("submit to outcome by tenth of the run (stable: last as first)", columns, tenths)
    )
    print(f"last tenth vs first: {result['latency_last_vs_first']}")
    print(f"service exit code: {result['service_exit_code']}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intents", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--outstanding", type=int, default=2000)
    parser.add_argument("--refill", type=int, default=40_000, help="write tokens/s of the sim")
    parser.add_argument("--keep-outcomes", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--serve", nargs=2, metavar=("CONFIG", "PROBE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return run_on(serve_with_probe(args.serve[0], Path(args.serve[1])), "uvloop")
    if args.intents < 100:
        parser.error("--intents: at least 100")
    result = run_on(soak(args), "uvloop")
    _print(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
