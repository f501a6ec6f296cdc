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
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from _keys import KEYS, BenchKey
from _machine import describe_machine, format_machine
from _report import BUDGET_USED, table, verdict
from _runner import LOOPS, default_loop, run_on, uvloop_available
from _saturation import burst, saturation
from _sim import TIER_NAMES

from kalshi_router.config import LimitsConfig, RouterConfig
from kalshi_router.sim.buckets import CREATE_ITEM_COST

DEFINITION = (
    "utilization = write tokens the sim accepted between two batch answers / "
    "(refill x time between them), after the warm-up; incl. burst = tokens accepted / "
    "(capacity + refill x time since the router started)"
)
Figure = tuple[str, Callable[[dict[str, Any]], str]]
"""A row of a table by tier: its label, and its cell from one tier's result."""


# -- output ------------------------------------------------------------------------------------


def _by_tier(title: str, results: dict[str, dict[str, Any]], figures: Sequence[Figure]) -> str:
    """One column per tier, one row per figure."""
    tiers = list(results)
    rows = [[label, *(cell(results[t]) for t in tiers)] for label, cell in figures]
    return table(title, ["", *tiers], rows)


def _pct(x: float) -> str:
    return f"{x * 100:.2f} %"


def _ms3(lat: dict[str, float]) -> str:
    return f"{lat['p50']:.0f} / {lat['p99']:.0f} / {lat['p99.9']:.0f}"


def _us(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f} µs"


def _outcomes(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def saturation_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:

    figures: list[Figure] = [
        ("write refill / bucket (tokens)", lambda x: f"{x['refill']} / {x['capacity']}"),
        (
            "router headroom / local bucket",
            lambda x: f"{x['headroom_tokens']:g} / {x['local_capacity']:g}",
        ),
        ("batch limit / queue size", lambda x: f"{x['batch_limit']} / {x['queue_size']}"),
        (
            "warm-up (s) / sim bucket then (est.)",
            lambda x: f"{x['warmup_s']:.2f} / {x['sim_bucket_level_at_window_start_est']:.0f}",
        ),
        ("window (s)", lambda x: f"{x['window_s']:.2f}"),
        (
            "sim tokens / available",
            lambda x: f"{x['sim_tokens_window']:.0f} / {x['available_tokens_window']:.0f}",
        ),
        ("utilization (window)", lambda x: _pct(x["utilization"])),
        ("  cross-check: answered items", lambda x: _pct(x["utilization_answered"])),
        (
            f"  goal {BUDGET_USED.text}",
            lambda x: verdict(x["goals"]["utilization_ge_99pct"]),
        ),
        ("utilization incl. burst (run)", lambda x: _pct(x["utilization_incl_burst"])),
        (
            "429s router / sim (run)",
            lambda x: f"{x['http_429_router_run']} / {x['sim_rate_limited_run']}",
        ),
        ("  goal: none", lambda x: verdict(x["goals"]["no_429"])),
        (
            "orders/s (ideal)",
            lambda x: f"{x['orders_per_s']:.2f} ({x['ideal_orders_per_s']:g})",
        ),
        ("outcomes in window", lambda x: _outcomes(x["outcomes_window"])),
        (
            "avg batch fill (limit)",
            lambda x: f"{x['average_batch_fill']:.2f} ({x['batch_limit']})",
        ),
        (
            "answer gap p50/max (ideal) ms",
            lambda x: (
                f"{x['answer_gap_ms']['p50']:.1f}/{x['answer_gap_ms']['max']:.1f} "
                f"({x['answer_gap_ms']['ideal']:.1f})"
            ),
        ),
        ("submit->outcome p50/p99/p99.9 ms", lambda x: _ms3(x["submit_to_outcome_ms"])),
        (
            "round trip p50/p99 ms (run, stats())",
            lambda x: (
                f"{x['router_stats_run']['round_trip']['p50'] * 1e3:.1f} / "
                f"{x['router_stats_run']['round_trip']['p99'] * 1e3:.1f}"
            ),
        ),
        (
            "late answers (> ideal + 10 ms)",
            lambda x: f"{len(x['late_answers'])} of {x['answer_gap_ms']['count']}",
        ),
        (
            "GC pauses: n / total / max ms",
            lambda x: (
                f"{x['gc_pauses_window']['count']} / {x['gc_pauses_window']['total_ms']:.1f} / "
                f"{x['gc_pauses_window']['max_ms']:.1f}"
            ),
        ),
        ("router CPU per order", lambda x: _us(x["router_cpu_us_per_order"])),
        ("sim CPU per order", lambda x: _us(x["sim_cpu_us_per_order"])),
    ]
    title = (
        f"saturation: {args.seconds:g} s window after >= {args.warmup:g} s warm-up, queue "
        f"{args.queue_seconds:g} s of budget, max_in_flight {args.max_in_flight}, headroom_s "
        f"{args.headroom_s:g}{_latency_note(args)}\n({DEFINITION})"
    )
    return _by_tier(title, results, figures)


def _latency_note(args: argparse.Namespace) -> str:
    if args.latency_ms is None:
        return ""
    low, high = args.latency_ms
    return f", sim latency {low:g}-{high:g} ms before processing"


def burst_table(results: dict[str, dict[str, Any]], size: int, args: argparse.Namespace) -> str:

    figures: list[Figure] = [
        ("write refill / bucket (tokens)", lambda x: f"{x['refill']} / {x['capacity']}"),
        ("batch limit", lambda x: str(x["batch_limit"])),
        ("time to drain (s)", lambda x: f"{x['drain_s']:.3f}"),
        ("exchange bound (s)", lambda x: f"{x['bound_s']:.3f}"),
        ("batches (minimum)", lambda x: f"{x['batches']} ({x['min_batches']})"),
        ("avg batch fill", lambda x: f"{x['average_batch_fill']:.2f}"),
        ("429s router / sim", lambda x: f"{x['http_429_router']} / {x['sim_rate_limited']}"),
        ("outcomes", lambda x: _outcomes(x["outcomes"])),
        (
            "submit->outcome p50/p99/max ms",
            lambda x: (
                f"{x['submit_to_outcome_ms']['p50']:.0f} / "
                f"{x['submit_to_outcome_ms']['p99']:.0f} / {x['submit_to_outcome_ms']['max']:.0f}"
            ),
        ),
        ("router CPU per order", lambda x: _us(x["router_cpu_us_per_order"])),
    ]
    title = f"burst: {size} intents at once into an idle router{_latency_note(args)}"
    return _by_tier(title, results, figures)


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


def _latency(text: str) -> tuple[float, float]:
    low, _, high = text.partition(":")
    try:
        bounds = float(low), float(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not MIN[:MAX] milliseconds: {text!r}") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"need 0 <= MIN <= MAX: {text!r}")
    return bounds


def _tiers(text: str) -> list[str]:
    if text == "all":
        return list(TIER_NAMES)
    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        if name not in TIER_NAMES:
            raise argparse.ArgumentTypeError(f"unknown tier {name!r}; known: {TIER_NAMES}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    have_uvloop = uvloop_available()
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
    parser.add_argument("--loop", choices=LOOPS, default=default_loop())
    parser.add_argument("--key", choices=KEYS, default="rsa")
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
        results = run_on(run_all(args, args.tiers), args.loop)
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
