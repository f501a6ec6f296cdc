"""The intent journal's cost: orders/s and router CPU per order with the journal on and off, in
the same run, limits off, against a simulator subprocess, in a burst and sustained; and the
journal's own calls timed alone.

    python benchmarks/bench_journal.py [--orders N] [--sustained N] [--rounds R] [--json FILE]

Each round runs the router twice on one fresh simulator (``UNLIMITED_WRITES``: no waiting on a
budget), once without a journal and once with a new SqliteJournal in a temporary directory, in
alternating order, all orders submitted at once (Ed25519 key, uvloop). Two shapes: a burst of
``--orders`` (5,000: a few hundred batches, over before the journal folds its commit log into
its table, which it does when the loop thread is quiet), and ``--sustained`` (50,000: several
seconds of batches back to back, so the fold must keep up meanwhile; 0 skips it). CPU is this
process's ``time.process_time()`` over the timed orders, so it is the router's (the sim has its
own process), the journal's threads included; "fold" is the fold's share of it. The tables show
the medians over the rounds; "vs off" is journal on over journal off, and the goal
(``_report.JOURNAL_ON_OFF``) is about orders/s, for each shape.

"calls alone" makes the journal's calls with no router and no network, as the router makes
them on the loop thread: CPU per ``taken`` and ``settled`` (with their commits) and per
``sending`` of a batch of 20 (one committed transaction), then folds every commit into the
table and gives the fold's CPU per intent, and the wall time of ``sending``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from _data import BATCH, make_intents
from _keys import BenchKey
from _machine import describe_machine, format_machine
from _report import JOURNAL_ON_OFF, percentile, table, verdict
from _runner import loop_in_use, run_on
from _sim import UNLIMITED_WRITES, SimProcess

from kalshi_router.config import Config, LimitsConfig, RouterConfig
from kalshi_router.journal import SqliteJournal
from kalshi_router.outcome import Accepted
from kalshi_router.pending import Pending
from kalshi_router.router import OrderRouter

SEED = 42
SHAPES = ("burst", "sustained")
FIGURES = ("orders_per_s", "cpu_us_per_order", "fold_cpu_us_per_order", "commits")


async def route(
    sim: SimProcess, key: BenchKey, orders: int, journal: Path | None
) -> dict[str, Any]:
    """One run: warm-up, then ``orders`` timed from first submit to last outcome."""
    config = Config(
        router=RouterConfig(queue_size=orders + 1000, deadline_s=60),
        limits=LimitsConfig(headroom_s=0),
    )
    store = None if journal is None else SqliteJournal.open(journal, exchange=sim.url)
    label = "on" if store else "off"
    try:
        async with OrderRouter.connect(config, key.signer(), sim.url, journal=store) as router:
            await asyncio.gather(*router.submit_many(make_intents(200, SEED, f"warm-{label}")))
            batch = make_intents(orders, SEED, label)
            commits = store.commits if store else 0
            fold = store.fold_cpu_s if store else 0.0
            cpu, wall = time.process_time(), time.perf_counter()
            outcomes = await asyncio.gather(*router.submit_many(batch))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            commits = (store.commits - commits) if store else 0
            fold = (store.fold_cpu_s - fold) if store else 0.0
    finally:
        if store is not None:
            store.close()
    accepted = sum(isinstance(o, Accepted) for o in outcomes)
    if accepted != orders:
        raise RuntimeError(f"journal {label}: {orders - accepted} of {orders} not accepted")
    return {
        "journal": label,
        "orders_per_s": orders / wall,
        "cpu_us_per_order": cpu / orders * 1e6,
        "fold_cpu_us_per_order": fold / orders * 1e6,
        "commits": commits,
    }


async def calls_alone(directory: Path, intents_n: int = 20_000) -> dict[str, float]:
    """The calls as the router makes them, per batch of 20, each row in a commit of its own
    state (the most commits the router makes): ``taken`` for each intent and the end-of-turn
    commit, ``sending`` (one committed transaction), ``settled`` for each and the commit. CPU
    of the loop thread per call; then the CPU of folding all of it into the journal's table (at
    the end, as opening or closing a journal does); the wall time of each ``sending``."""
    loop = asyncio.get_running_loop()
    store = SqliteJournal.open(directory / "alone.sqlite3", exchange="bench")
    outcome = Accepted(
        client_order_id="x", order_id="o", fill_count=Decimal(0), remaining_count=Decimal(1)
    )
    pendings = [
        Pending(
            kind="create",
            key=i.client_order_id,
            ticker=i.ticker,
            payload=i,
            future=loop.create_future(),
            submitted=0.0,
            deadline=0.0,
            submitted_wall=time.time(),
        )
        for i in make_intents(intents_n, SEED, "alone")
    ]
    batches = [pendings[i : i + BATCH] for i in range(0, len(pendings), BATCH)]
    clock = time.thread_time
    walls: list[float] = []
    try:
        taken = sending = settled = 0.0
        for batch in batches:
            for pending in batch:
                pending.attempts = 1
            start = clock()
            for pending in batch:
                store.taken(pending)
            store.commit()  # what the end of the loop turn does
            taken += clock() - start
            start, wall = clock(), time.perf_counter()
            store.sending(batch)
            walls.append(time.perf_counter() - wall)
            sending += clock() - start
            start = clock()
            for pending in batch:
                store.settled(pending, outcome)
            store.commit()
            settled += clock() - start
        await asyncio.sleep(0)
        store.fold()  # nothing was folded meanwhile: no loop turn came
        fold = store.fold_cpu_s
    finally:
        store.close()
    walls.sort()
    return {
        "taken_cpu_us": taken / intents_n * 1e6,
        "sending_cpu_us_per_batch": sending / len(batches) * 1e6,
        "settled_cpu_us": settled / intents_n * 1e6,
        "loop_cpu_us_per_intent": (taken + sending + settled) / intents_n * 1e6,
        "fold_cpu_us_per_intent": fold / intents_n * 1e6,
        "sending_wall_p50_us": percentile(walls, 0.5) * 1e6,
        "sending_wall_p99_us": percentile(walls, 0.99) * 1e6,
        "sending_wall_max_us": walls[-1] * 1e6,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    key = BenchKey.generate("ed25519")
    rows: list[dict[str, Any]] = []
    sizes = {"burst": args.orders, "sustained": args.sustained}
    with tempfile.TemporaryDirectory(prefix="kalshi-bench-journal-") as tmp:
        directory = Path(tmp)
        for shape in (s for s in SHAPES if sizes[s]):
            for round_ in range(args.rounds):
                async with SimProcess("prime", [key], sim_options=UNLIMITED_WRITES) as sim:
                    order = (None, directory / f"{shape}-{round_}.sqlite3")
                    for journal in order if round_ % 2 == 0 else order[::-1]:
                        row = await route(sim, key, sizes[shape], journal)
                        rows.append({"shape": shape, "orders": sizes[shape], **row})
        alone = await calls_alone(directory)
    settings = {"orders": args.orders, "sustained": args.sustained, "rounds": args.rounds}
    return {"settings": settings, "rows": rows, "figures": figures(rows), "alone": alone}


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per shape that ran: the medians with the journal off and on, and on over off."""
    found: dict[str, Any] = {}
    for shape in SHAPES:
        mine = [r for r in rows if r["shape"] == shape]
        if not mine:
            continue
        medians = {
            label: {
                name: statistics.median(r[name] for r in mine if r["journal"] == label)
                for name in FIGURES
            }
            for label in ("off", "on")
        }
        found[shape] = {
            "orders": mine[0]["orders"],
            **medians,
            "on_vs_off": medians["on"]["orders_per_s"] / medians["off"]["orders_per_s"],
        }
    return found


def summary_rows(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """run.py's table rows: journal off and on per shape, "vs_off" the ratio of orders/s."""
    rows = []
    for shape, f in raw["figures"].items():
        off = f["off"]
        for label in ("off", "on"):
            m = f[label]
            rows.append(
                {
                    "contender": f"journal {label}, {shape} ({f['orders']:,} orders)",
                    **m,
                    "vs_off": m["orders_per_s"] / off["orders_per_s"],
                    "cpu_added_us": m["cpu_us_per_order"] - off["cpu_us_per_order"],
                }
            )
    return rows


def goal_lines(raw: Mapping[str, Any]) -> list[str]:
    """The goal for each shape that ran: journal on over off, orders/s."""
    return [
        f"{JOURNAL_ON_OFF.text}, {shape} ({f['orders']:,} orders at once, "
        f"{raw['settings']['rounds']} rounds): {JOURNAL_ON_OFF.figure.format(f['on_vs_off'])}, "
        f"{verdict(JOURNAL_ON_OFF.met(f['on_vs_off']))}"
        for shape, f in raw["figures"].items()
    ]


def render(result: dict[str, Any], args: argparse.Namespace) -> str:
    rows = [
        [
            r["contender"],
            f"{r['orders_per_s']:,.0f}",
            f"{r['vs_off']:.2f}",
            f"{r['cpu_us_per_order']:.1f}",
            f"{r['cpu_added_us']:+.1f}",
            f"{r['fold_cpu_us_per_order']:.1f}",
            f"{r['commits']:.0f}",
        ]
        for r in summary_rows(result)
    ]
    alone = result["alone"]
    return "\n".join(
        [
            table(
                f"router, {args.rounds} rounds, limits off (medians)",
                ["", "orders/s", "vs off", "CPU us/order", "vs off", "of it fold", "commits"],
                rows,
            ),
            "",
            *goal_lines(result),
            "",
            "calls alone: " + ", ".join(f"{name} {value:.1f}" for name, value in alone.items()),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000, help="orders in the burst")
    parser.add_argument(
        "--sustained", type=int, default=50_000, help="orders in the sustained run (0: none)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write the results here as JSON")
    args = parser.parse_args(argv)
    result = run_on(run(args), "uvloop")
    machine = describe_machine(loop_in_use("uvloop"))
    print(format_machine(machine))
    print(render(result, args))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
