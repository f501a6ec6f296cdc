"""Every benchmark in one command: a short run of each scenario, one table each, JSON and PNG.

    python benchmarks/run.py [--json FILE] [--png FILE] [--long] [--only wire,latency,...]
        [--number N] [--orders N] [--seconds S] [--samples N] [--fills N] [--sustained N]
        [--tiers basic,prime,...] [--sequential-tiers] [--wire-args=ARGS]
        [--throughput-args=ARGS] [--saturation-args=ARGS] [--latency-args=ARGS]
        [--updates-args=ARGS] [--journal-args=ARGS]

Scenarios, in this order, each script in its own process (and each of their contenders in one
more, as the scripts arrange), one after the other so none measures while another runs:

wire        bench_wire.py: encode, decode and sign per batch of 20 and per order.
throughput  bench_throughput.py: limits off, orders/s and the client's own CPU per order.
saturation  bench_saturation.py: each tier's write budget, kept full: budget used, 429s,
            submit-to-outcome. The tiers run side by side (one process and one simulator
            each) unless ``--sequential-tiers``: they need a few percent of a core each,
            and budget use measured that way matches a sequential run's.
latency     bench_latency.py: single orders at low load against a bare signed POST.
updates     bench_order_updates.py: following orders after acceptance: match to fill event,
            CPU per update, updates per second.
journal     bench_journal.py: orders/s and CPU per order with the intent journal on and off,
            in a burst and sustained (the goal line says which).

The default is a short run (about a minute and a half on 2 cores); ``--long`` runs each
script at its own defaults, and ``--number`` (wire), ``--orders`` (throughput), ``--seconds``
(saturation), ``--samples`` (latency), ``--fills`` (updates) and ``--sustained`` (journal) size
one scenario.
``--<scenario>-args="OPTIONS"`` passes more options to a script verbatim, after run.py's own
(so they win): for instance ``--throughput-args="--batch 20,100"``. Ratios are a contender's
figure over the router's in the same table, for the table's metric. ``--json`` holds, besides
the machine and the tables, each script's own JSON ("raw") and command line. A scenario that
fails is reported, the others still run, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _machine import describe_machine, format_machine
from _options import comma_list
from _runner import Job
from _sim import TIER_NAMES
from _summary import ADAPTERS, goals, merge_tiers, render
from chart import write_chart

DEFAULT_TIERS = ("basic", "advanced", "premier", "prime")


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    script: str
    short: tuple[str, ...]
    """The short run's options; ``--long`` leaves the script at its own defaults."""
    knob: str
    """The option of run.py (and of the script) that sizes the scenario."""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("wire", "bench_wire.py", ("--number", "300"), "number"),
    Scenario(
        "throughput",
        "bench_throughput.py",
        (
            "--orders",
            "3000",
            "--warmup",
            "200",
            "--in-flight",
            "1,4",
            "--batch",
            "20",
            "--repeat",
            "2",
        ),
        "orders",
    ),
    Scenario("saturation", "bench_saturation.py", ("--seconds", "3", "--warmup", "1"), "seconds"),
    Scenario(
        "latency",
        "bench_latency.py",
        ("--samples", "200", "--mean-ms", "10", "--idle-s", "4"),
        "samples",
    ),
    Scenario(
        "updates",
        "bench_order_updates.py",
        ("--samples", "1000", "--fills", "10000", "--warmup", "200"),
        "fills",
    ),
    Scenario(
        "journal",
        "bench_journal.py",
        ("--orders", "5000", "--sustained", "20000", "--rounds", "2"),
        "sustained",
    ),
)


# -- running the scripts ---------------------------------------------------------------------------


def script_options(scenario: Scenario, args: argparse.Namespace) -> list[str]:
    """The script's options: the short run's (unless --long), the size knob, then extra args."""
    options = [] if args.long else list(scenario.short)
    if (size := getattr(args, scenario.knob)) is not None:
        options += [f"--{scenario.knob}", str(size)]
    return options + shlex.split(getattr(args, f"{scenario.name}_args") or "")


def run_scenario(
    scenario: Scenario, args: argparse.Namespace, workdir: Path
) -> tuple[dict[str, Any], list[str]]:
    """The script's JSON (the saturation tiers' merged) and the command lines it took."""
    options = script_options(scenario, args)
    if scenario.name != "saturation":
        job = Job.start(scenario.script, options, workdir / f"{scenario.name}.json")
        return job.result(), [shlex.join(job.command)]
    groups = [list(args.tiers)] if args.sequential_tiers else [[t] for t in args.tiers]
    jobs = [
        Job.start(
            scenario.script,
            [*options, "--tiers", ",".join(group)],
            workdir / f"saturation-{'-'.join(group)}.json",
        )
        for group in groups
    ]
    parts, failures = [], []
    for job in jobs:  # every tier is waited for, failed or not: none is left running
        try:
            parts.append(job.result())
        except RuntimeError as exc:
            failures.append(str(exc))
    if failures:
        raise RuntimeError("\n".join(failures))
    return merge_tiers(parts, parallel=len(groups) > 1), [shlex.join(j.command) for j in jobs]


# -- main ------------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--json", help="write the machine, every table and the scripts' JSON here")
    p.add_argument("--png", help="write the chart here (needs matplotlib: the bench extra)")
    p.add_argument("--long", action="store_true", help="every script at its own defaults")
    p.add_argument(
        "--only",
        type=comma_list([s.name for s in SCENARIOS]),
        help="comma-separated scenarios (default: all)",
    )
    p.add_argument("--number", type=int, help="wire: calls per timing repeat")
    p.add_argument("--orders", type=int, help="throughput: timed orders per contender")
    p.add_argument("--seconds", type=float, help="saturation: steady window per tier")
    p.add_argument("--samples", type=int, help="latency: timed samples per contender")
    p.add_argument("--fills", type=int, help="updates: fills in the flood")
    p.add_argument("--sustained", type=int, help="journal: orders in the sustained run")
    p.add_argument(
        "--tiers", type=comma_list(TIER_NAMES), default=list(DEFAULT_TIERS), help="saturation tiers"
    )
    p.add_argument(
        "--sequential-tiers", action="store_true", help="saturation: one tier after another"
    )
    for s in SCENARIOS:
        p.add_argument(f"--{s.name}-args", metavar="ARGS", help=f"more options for {s.script}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    selected = [s for s in SCENARIOS if args.only is None or s.name in args.only]
    machine = describe_machine()
    print(format_machine(machine), flush=True)
    started = time.perf_counter()
    scenarios: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="kalshi-bench-run-") as tmp:
        workdir = Path(tmp)
        for scenario in selected:
            print(f"-- {scenario.name} ({scenario.script})", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                raw, commands = run_scenario(scenario, args, workdir)
                tables = ADAPTERS[scenario.name](raw)
            except (RuntimeError, OSError, ValueError, KeyError) as exc:
                print(f"\n{scenario.name} FAILED: {exc}", flush=True)
                scenarios[scenario.name] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            seconds = time.perf_counter() - t0
            for tab in tables:
                print("\n" + render(tab), flush=True)
            scenarios[scenario.name] = {
                "commands": commands,
                "seconds": seconds,
                "tables": tables,
                "raw": raw,
            }
    total_s = time.perf_counter() - started
    if lines := goals({name: s["raw"] for name, s in scenarios.items() if "raw" in s}):
        print("\ngoals (reported, not asserted):")
        print("\n".join(f"  {line}" for line in lines))
    print(f"\ntotal {total_s:.0f} s")
    summary = {
        "machine": machine,
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "png")},
        "seconds": total_s,
        "scenarios": scenarios,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        print(f"json: wrote {args.json}")
    if args.png:
        print(f"png: {write_chart(summary, Path(args.png))}")
    return 1 if any("error" in s for s in scenarios.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
