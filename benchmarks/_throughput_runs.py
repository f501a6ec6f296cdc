"""bench_throughput's runs: the plan, each run against a fresh simulator with the contender in a
child process, best of the rounds, and the ratios to the router.

    runs = plan(args)
    results = await run_all(args, keys, peers)   # every run, --repeat rounds, best of each

What the runs are and how they are measured: see bench_throughput's docstring.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import _peers
from _contenders import SENDERS
from _data import BATCH, make_intents, stdlib_order
from _keys import BenchKey, KeyKind, key_spec
from _machine import installed_version
from _peer_venv import KPA_VERSION, PeerPython
from _report import NAIVE_BATCH, NAIVE_SINGLE, ROUTER, ratio
from _runner import CHILD_TIMEOUT_S, HERE, run_child
from _sim import UNLIMITED_WRITES, SimProcess

ORDER_TAG = "tp"
SCRIPT = str(HERE / "bench_throughput.py")  # its --contender NAME runs one of ours


@dataclass(frozen=True, slots=True)
class Run:
    contender: str
    key: KeyKind
    loop: str
    in_flight: int
    batch: int


def plan(args: argparse.Namespace) -> list[Run]:
    """Every run, in table order (see bench_throughput's docstring)."""
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
    runs += [Run(NAIVE_BATCH, key, loop0, 1, BATCH) for key in args.key]
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
                "version": installed_version(_peers.PYKALSHI),
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
        if run.contender in SENDERS:
            python, child = sys.executable, [SCRIPT, "--loop", run.loop]
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
            if run.contender in SENDERS:
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
        if run.contender not in SENDERS and (reason := peers.skip_reason(run.contender, run.key)):
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
