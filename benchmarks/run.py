"""Every benchmark in one command: a short run of each scenario, one table each, JSON and PNG.

    python benchmarks/run.py [--json FILE] [--png FILE] [--long] [--only wire,latency,...]
        [--number N] [--orders N] [--seconds S] [--samples N] [--tiers basic,prime,...]
        [--sequential-tiers] [--wire-args=ARGS] [--throughput-args=ARGS]
        [--saturation-args=ARGS] [--latency-args=ARGS]

Scenarios, in this order, each script in its own process (and each of their contenders in one
more, as the scripts arrange), one after the other so none measures while another runs:

wire        bench_wire.py: encode, decode and sign per batch of 20 and per order.
throughput  bench_throughput.py: limits off, orders/s and the client's own CPU per order.
saturation  bench_saturation.py: each tier's write budget, kept full: budget used, 429s,
            submit-to-outcome. The tiers run side by side (one process and one simulator
            each) unless ``--sequential-tiers``: they need a few percent of a core each,
            and budget use measured that way matches a sequential run's.
latency     bench_latency.py: single orders at low load against a bare signed POST.

The default is a short run (about a minute on 2 cores); ``--long`` runs each script at its
own defaults, and ``--number`` (wire), ``--orders`` (throughput), ``--seconds`` (saturation)
and ``--samples`` (latency) size one scenario. ``--<scenario>-args="OPTIONS"`` passes more
options to a script verbatim, after run.py's own (so they win): for instance
``--throughput-args="--batch 20,100"``. Ratios are a contender's figure over the router's in
the same table, for the table's metric. ``--json`` holds, besides the machine and the tables,
each script's own JSON ("raw") and command line. A scenario that fails is reported, the
others still run, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _harness import TIER_NAMES, comma_list, describe_machine, format_machine, format_ratio, table
from bench_wire import SECTIONS
from chart import quantile, write_chart

HERE = Path(__file__).resolve().parent
DEFAULT_TIERS = ("basic", "advanced", "premier", "prime")
REFERENCE_BATCH = 20
Row = dict[str, Any]
Column = tuple[str, Callable[[Mapping[str, Any]], str]]


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
    Scenario("latency", "bench_latency.py", ("--samples", "200", "--mean-ms", "10"), "samples"),
)


# -- from each script's JSON to rows with ratios (pure: tested) --------------------------------


def _table(name: str, title: str, metric: str, reference: str, rows: list[Row]) -> dict[str, Any]:
    return {"name": name, "title": title, "metric": metric, "reference": reference, "rows": rows}


def wire_tables(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """bench_wire already puts ``vs_router`` on its rows (time over the router's)."""
    return [
        _table(f"wire/{section}", f"wire: {title}", "us_per_batch", ref, raw["results"][section])
        for section, title, ref in SECTIONS
    ]


def _not_accepted(outcomes: Mapping[str, int] | None) -> int | None:
    if outcomes is None:
        return None
    return sum(n for label, n in outcomes.items() if label != "accepted")


def _label(row: Mapping[str, Any]) -> str:
    """A contender's name with the variant it ran (key, loop) where the row says."""
    variant = [str(row[k]) for k in ("key", "loop") if row.get(k)]
    return str(row["contender"]) + (f" ({', '.join(variant)})" if variant else "")


def throughput_tables(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per run, with bench_throughput's ratios: orders/s (and CPU per order) over the
    router's with the same key, loop and in-flight limit at a batch of 20."""
    rows: list[Row] = []
    for r in raw["results"]:
        status = r.get("status", "ok")
        if status != "ok":  # a peer that did not run is listed with why, never left out
            rows.append({"contender": _label(r), "skipped": status})
            continue
        rows.append(
            {
                "contender": _label(r),
                "key": r.get("key"),
                "loop": r.get("loop"),
                "in_flight": r["in_flight"],
                "batch": r["batch"],
                "orders_per_s": r["orders_per_s"],
                "cpu_us_per_order": r["cpu_us_per_order"],
                "sim_cpu_us_per_order": r.get("sim_cpu_us_per_order"),
                "not_accepted": _not_accepted(r.get("outcomes")),
                "vs_router": r.get("vs_router"),
                "cpu_vs_router": r.get("cpu_vs_router"),
            }
        )
    title = (
        f"throughput, limits off ({raw['settings']['orders']} orders per run): x router = "
        f"over the router with the same key, loop and in-flight at batch {REFERENCE_BATCH}"
    )
    return [_table("throughput", title, "orders_per_s", "router", rows)]


def saturation_tables(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per tier (the router is the only contender: its ratio is the budget used)."""
    rows: list[Row] = []
    for tier, r in raw["saturation"].items():
        latency = r["submit_to_outcome_ms"]
        rows.append(
            {
                "contender": tier,
                "utilization": r["utilization"],
                "utilization_incl_burst": r["utilization_incl_burst"],
                "orders_per_s": r["orders_per_s"],
                "ideal_orders_per_s": r["ideal_orders_per_s"],
                "window_s": r["window_s"],
                "http_429_router": r["http_429_router_run"],
                "http_429_sim": r["sim_rate_limited_run"],
                "p50_ms": latency["p50"],
                "p99_ms": latency["p99"],
                "p99.9_ms": latency["p99.9"],
                "cpu_us_per_order": r["router_cpu_us_per_order"],
                "average_batch_fill": r["average_batch_fill"],
                "batch_limit": r["batch_limit"],
            }
        )
    mode = "side by side" if raw.get("parallel") else "one after the other"
    title = (
        f"saturation at each tier's write budget ({raw['settings']['seconds']:g} s window, "
        f"tiers {mode}): budget used = tokens the sim accepted / refill x window"
    )
    return [_table("saturation", title, "utilization", "-", rows)]


def latency_tables(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per contender with bench_latency's ``p50_vs_router``; ``added_us`` is the
    router's median minus the row's (for the floor: what the router adds)."""
    results = raw["results"]
    router_p50 = next(
        (r["p50"] for r in results if r["contender"] == "router" and "p50" in r), None
    )
    rows: list[Row] = []
    for r in results:
        if r.get("status", "ok") != "ok":
            rows.append({"contender": _label(r), "skipped": r["status"]})
            continue
        quantiles = {k: v for k, v in r.items() if quantile(k) is not None}
        rows.append(
            {
                "contender": _label(r),
                "endpoint": r.get("endpoint"),
                "count": r["count"],
                **quantiles,
                "vs_router": r.get("p50_vs_router"),
                "added_us": None if router_p50 is None else router_p50 - r["p50"],
                "samples_us": r.get("samples_us"),
            }
        )
    settings = raw["settings"]
    title = (
        f"latency at low load ({settings['samples']} samples each, mean gap "
        f"{settings['mean_ms']:g} ms): submit to outcome, µs; x router = p50 over the "
        f"router's; router adds = router p50 - row p50"
    )
    return [_table("latency", title, "p50", "router", rows)]


ADAPTERS: dict[str, Callable[[Mapping[str, Any]], list[dict[str, Any]]]] = {
    "wire": wire_tables,
    "throughput": throughput_tables,
    "saturation": saturation_tables,
    "latency": latency_tables,
}


def merge_tiers(parts: Sequence[Mapping[str, Any]], parallel: bool) -> dict[str, Any]:
    """One bench_saturation JSON from several runs of a tier each, tiers in the given order."""
    merged: dict[str, Any] = {
        "settings": dict(parts[0]["settings"]),
        "definition": parts[0].get("definition"),
        "parallel": parallel,
        "saturation": {},
        "burst": {},
    }
    for part in parts:
        merged["saturation"].update(part.get("saturation", {}))
        merged["burst"].update(part.get("burst", {}))
    merged["settings"]["tiers"] = list(merged["saturation"])
    return merged


# -- tables --------------------------------------------------------------------------------------


def _fmt(key: str, spec: str) -> Callable[[Mapping[str, Any]], str]:
    def cell(row: Mapping[str, Any]) -> str:
        value = row.get(key)
        return "-" if value is None else f"{value:{spec}}"

    return cell


def _ratio_of(key: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda row: format_ratio(row.get(key))


COLUMNS: dict[str, list[Column]] = {
    "wire": [
        ("µs/batch", _fmt("us_per_batch", ".2f")),
        ("µs/order", _fmt("us_per_order", ".2f")),
        ("x router", _ratio_of("vs_router")),
    ],
    "throughput": [
        ("in-flight", _fmt("in_flight", "d")),
        ("batch", _fmt("batch", "d")),
        ("orders/s", _fmt("orders_per_s", ",.0f")),
        ("x router", _ratio_of("vs_router")),
        ("CPU µs/order", _fmt("cpu_us_per_order", ".1f")),
        ("CPU x router", _ratio_of("cpu_vs_router")),
        ("sim µs/order", _fmt("sim_cpu_us_per_order", ".1f")),
        ("not accepted", _fmt("not_accepted", "d")),
    ],
    "saturation": [
        ("budget used", _fmt("utilization", ".2%")),
        ("incl. burst", _fmt("utilization_incl_burst", ".2%")),
        ("orders/s", _fmt("orders_per_s", ".1f")),
        ("ideal", _fmt("ideal_orders_per_s", "g")),
        ("429 router/sim", lambda r: f"{r['http_429_router']} / {r['http_429_sim']}"),
        ("p50 ms", _fmt("p50_ms", ".0f")),
        ("p99 ms", _fmt("p99_ms", ".0f")),
        ("p99.9 ms", _fmt("p99.9_ms", ".0f")),
        ("batch fill", _fmt("average_batch_fill", ".1f")),
        ("CPU µs/order", _fmt("cpu_us_per_order", ".0f")),
    ],
    "latency": [
        ("endpoint", lambda r: str(r.get("endpoint") or "-")),
        ("n", _fmt("count", "d")),
        ("p50 µs", _fmt("p50", ",.0f")),
        ("p90 µs", _fmt("p90", ",.0f")),
        ("p99 µs", _fmt("p99", ",.0f")),
        ("max µs", _fmt("max", ",.0f")),
        ("x router", _ratio_of("vs_router")),
        ("router adds µs", _fmt("added_us", "+,.0f")),
    ],
}


def render(tab: Mapping[str, Any]) -> str:
    """A table's rows as text; a skipped row shows why in a last "note" column."""
    columns = COLUMNS[tab["name"].split("/")[0]]
    skipped = any("skipped" in r for r in tab["rows"])
    lines = []
    for r in tab["rows"]:
        if "skipped" in r:
            lines.append([r["contender"], *("-" for _ in columns), r["skipped"]])
        else:
            lines.append([r["contender"], *(cell(r) for _, cell in columns)] + [""] * skipped)
    headers = ["contender", *(h for h, _ in columns)] + ["note"] * skipped
    return table(tab["title"], headers, lines)


# -- running the scripts ---------------------------------------------------------------------------


def script_options(scenario: Scenario, args: argparse.Namespace) -> list[str]:
    """The script's options: the short run's (unless --long), the size knob, then extra args."""
    options = [] if args.long else list(scenario.short)
    if (size := getattr(args, scenario.knob)) is not None:
        options += [f"--{scenario.knob}", str(size)]
    return options + shlex.split(getattr(args, f"{scenario.name}_args") or "")


@dataclass(frozen=True, slots=True)
class Job:
    """One script running in its own interpreter; its JSON goes to ``out``, its own table to
    ``out.log`` (run.py prints its own), its progress to our stderr."""

    command: list[str]
    out: Path
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls, script: str, options: Sequence[str], out: Path) -> Job:
        argv = [sys.executable, str(HERE / script), *options, "--json", str(out)]
        with out.with_suffix(".log").open("wb") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log)
        return cls(["python", f"benchmarks/{script}", *options], out, proc)

    def result(self) -> dict[str, Any]:
        code = self.proc.wait()
        if code != 0 or not self.out.exists():
            tail = self.out.with_suffix(".log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{shlex.join(self.command)} exited {code}:\n{tail}")
        data: dict[str, Any] = json.loads(self.out.read_text())
        data.pop("machine", None)  # the same machine as run.py's own record
        return data


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


# -- goals -----------------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _throughput_goals(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    measured = [r for r in rows if "skipped" not in r]
    lines = []
    for r in measured:
        if r["contender"].startswith("router") and r["batch"] == REFERENCE_BATCH:
            limit = 10.0 if r.get("key") == "ed25519" else 20.0
            us = r["cpu_us_per_order"]
            lines.append(
                f"router CPU <= {limit:g} µs/order, {r['contender']} at {r['in_flight']} "
                f"in flight: {us:.1f} µs, {_met(us <= limit)}"
            )
    for r in measured:
        if r["contender"].startswith("naive-single") and r.get("vs_router"):
            x = 1 / r["vs_router"]
            lines.append(
                f"router >= 10x naive per-order at {r['in_flight']} in flight: {x:.1f}x, "
                f"{_met(x >= 10)}"
            )
    peers = [r for r in measured if not r["contender"].startswith(("router", "naive"))]
    for k in sorted({r["in_flight"] for r in peers}):
        best = max((r for r in peers if r["in_flight"] == k), key=lambda r: r["orders_per_s"])
        if best.get("vs_router"):
            x = 1 / best["vs_router"]
            lines.append(
                f"router >= 3x the best peer at {k} in flight ({best['contender']}): "
                f"{x:.1f}x, {_met(x >= 3)}"
            )
    if not peers:
        lines.append("router >= 3x the best peer: no peer measured")
    return lines


def _saturation_goals(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for r in rows:
        ok = r["utilization"] >= 0.99 and r["http_429_router"] == r["http_429_sim"] == 0
        lines.append(
            f"{r['contender']}: >= 99 % of the write budget, no 429: {r['utilization']:.2%}, "
            f"{r['http_429_router']} / {r['http_429_sim']} 429s, {_met(ok)}"
        )
    return lines


def _latency_goals(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        f"median added latency over the bare signed POST <= 50 µs: {r['added_us']:.0f} µs, "
        f"{_met(r['added_us'] <= 50)}"
        for r in rows
        if r["contender"].startswith("floor") and r.get("added_us") is not None
    ]


GOALS: dict[str, Callable[[Sequence[Mapping[str, Any]]], list[str]]] = {
    "throughput": _throughput_goals,
    "saturation": _saturation_goals,
    "latency": _latency_goals,
}


def goals(tables: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The issue's goals against what ran (reported, never asserted)."""
    return [
        line
        for name, check in GOALS.items()
        if name in tables
        for line in check(tables[name]["rows"])
    ]


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
    by_name = {t["name"]: t for s in scenarios.values() for t in s.get("tables", [])}
    if lines := goals(by_name):
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
