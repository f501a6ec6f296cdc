"""Several routers on one account: the share of its write budget used and the 429s earned with
1, 2, 4 and 8 routers, each in a process of its own, keeping its own bucket (``local``) or
sharing one on Redis (``redis``); what the Redis call adds per batch; and Redis going away.

    python benchmarks/bench_shared_budget.py [--tiers basic,premier,prime] [--routers 1,2,4,8]
        [--backends local,redis] [--seconds 5] [--down-s 3] [--down-tier premier]
        [--down-routers 2] [--json FILE]

Each run (``_shared_budget``) has a fresh simulator in a process of its own at the tier's real
buckets and N router processes signing with one key, each of whose bots asks for more than the
whole budget (one second of the account's creates queued) and cancels one of its resting
orders now and then (5 % of the budget); ``--seconds`` from go to stop, utilization over the
steady window (the harness's rule: after 0.5 s, and for local buckets one exchange bucket of
time more). A private ``redis-server`` (the test suite's ``RedisServer``: ``redis-server`` on
PATH) serves every run, a namespace each.

Redis down (``--down-s`` > 0): N routers at one tier share the bucket; Redis is stopped
``--seconds`` after go and started again ``--down-s`` later (an empty keyspace, as a restart
without persistence), then ``--seconds`` more. Creates then have a 2 s deadline (and half a
second of the account's creates queued between the routers, so that none expires while Redis
answers): those whose deadline passes while Redis is away settle expired, naming it. Goals (no
429; >= 98 % of the budget used) are reported, never asserted. Fixed seed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _machine import describe_machine, format_machine
from _options import comma_list, positive_ints
from _shared_budget import Backend, Event, Plan, fitting_credit, run
from _shared_figures import create_shares

# The suite's private Redis server, from the repository's tests package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.redis_server import RedisServer

SEED = 42
TIERS = ("basic", "premier", "prime")
BACKENDS: tuple[Backend, ...] = ("local", "redis")
DOWN_DEADLINE_S = 2.0
Cell = Callable[[dict[str, Any]], str]


def _namespace(tier: str, routers: int, backend: str) -> str:
    return f"bench-shared-{tier}-{routers}-{backend}-{uuid.uuid4().hex[:8]}"


async def matrix(args: argparse.Namespace, redis: RedisServer) -> list[dict[str, Any]]:
    results = []
    for tier in args.tiers:
        for routers in args.routers:
            for backend in args.backends:
                credit = None if backend == "local" else fitting_credit(tier, routers)
                plan = Plan(
                    tier,
                    routers,
                    backend=backend,
                    seconds=args.seconds,
                    redis_url=redis.url,
                    namespace=_namespace(tier, routers, backend),
                    seed=args.seed,
                    cancel_credit=credit,
                )
                result = await run(plan) | {"cancel_credit": credit}
                print(f"{tier} x {routers} {backend}: {brief(result)}", file=sys.stderr)
                results.append(result)
    return results


async def down(args: argparse.Namespace, redis: RedisServer) -> dict[str, Any]:
    events = (
        Event(args.seconds, "redis_stop"),
        Event(args.seconds + args.down_s, "redis_start"),
    )
    plan = Plan(
        args.down_tier,
        args.down_routers,
        seconds=2 * args.seconds + args.down_s,
        redis_url=redis.url,
        namespace=_namespace(args.down_tier, args.down_routers, "down"),
        seed=args.seed,
        events=events,
        queue_s=0.5 / args.down_routers,
        deadline_s=DOWN_DEADLINE_S,
    )
    result = await run(plan, redis=redis)
    print(f"redis down: {brief(result)}", file=sys.stderr)
    return result


def brief(result: dict[str, Any]) -> str:
    used = result["utilization"]
    return (
        f"used {used:.2%}" if used is not None else "used -"
    ) + f", 429s {result['http_429_sim']}"


def phases(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Outcomes before Redis went, while it was away, and after it came back."""
    stopped, started = result["events"]
    spans = (
        ("before", result["go"], stopped["at"]),
        ("down", stopped["done"], started["at"]),
        ("after", started["done"], result["stop"]),
    )
    rows = []
    for name, start, end in spans:
        counts: dict[str, int] = {}
        for line in result["timelines"]:
            for t, kind, outcome in line:
                if start <= t < end:
                    counts[f"{kind} {outcome}"] = counts.get(f"{kind} {outcome}", 0) + 1
        rows.append({"phase": name, "seconds": end - start, "outcomes": counts})
    return rows


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def markdown(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [columns, ["---"] * len(columns), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _shares(result: dict[str, Any]) -> str:
    shares = create_shares(r["outcomes"] for r in result["per_router"])
    return f"{shares[0]:.0%} / {shares[-1]:.0%}" if shares else "-"


def _pair(local: dict[str, Any] | None, shared: dict[str, Any] | None, cell: Cell) -> str:
    return " / ".join("-" if one is None else cell(one) for one in (local, shared))


def render_matrix(results: list[dict[str, Any]]) -> str:
    """A row per tier and count of routers: each figure for local buckets, then the shared."""
    by_key = {(r["tier"], r["routers"], r["backend"]): r for r in results}
    rows = []
    for tier, routers in dict.fromkeys((r["tier"], r["routers"]) for r in results):
        local, shared = by_key.get((tier, routers, "local")), by_key.get((tier, routers, "redis"))
        credit = shared is not None and shared["cancel_credit"] is not None
        row = [tier.capitalize(), f"{routers}{' (a)' if credit else ''}"]
        row += [
            _pair(local, shared, lambda r: _pct(r["utilization"])),
            _pair(local, shared, lambda r: f"{r['http_429_sim']:,}"),
            _pair(local, shared, lambda r: f"{r['cancel_queue_wait_ms']['p99']:,.0f}"),
        ]
        if shared is None:
            row += ["-"] * 3
        else:
            calls = shared["shared_budget"]
            row += [
                f"{calls['call_p50_us']:,.0f} / {calls['call_p99_us']:,.0f}",
                f"{shared['cancel_booked_wait_us']['nonzero']}",
                _shares(shared),
            ]
        rows.append(row)
    columns = [
        "tier",
        "routers",
        "used, local / redis",
        "429s, local / redis",
        "cancel queue wait p99 ms, local / redis",
        "Redis call p50 / p99 µs",
        "cancels booked to wait",
        "creates per router, least / most",
    ]
    text = markdown(columns, rows)
    if any("(a)" in row[1] for row in rows):
        text += (
            "\n\n(a) `cancel_credit = 2`: with the default (five cancels a router) the shared "
            "model of Basic's 100-token bucket cannot hold a create for 8 routers; the router "
            "refuses to start and says so."
        )
    return text


def render_down(result: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    def count(row: dict[str, Any], name: str) -> str:
        return f"{row['outcomes'].get(name, 0):,}"

    body = [
        [
            f"{row['phase']} ({row['seconds']:.1f} s)",
            count(row, "create accepted"),
            count(row, "create expired"),
            count(row, "cancel cancelled"),
            count(row, "cancel expired"),
        ]
        for row in rows
    ]
    columns = ["phase", "creates accepted", "creates expired", "cancels done", "cancels expired"]
    started = result["events"][1]
    figures = result["shared_budget"]
    reasons = sorted(k for k in result["details"] if "unreachable" in k)
    notes = [
        f"{result['tier'].capitalize()}, {result['routers']} routers; 429s: "
        f"{result['http_429_sim']} (simulator), {result['http_429_routers']} (routers)",
        f"first create accepted {started['first_create_after_s'] * 1e3:,.0f} ms after Redis "
        f"answered again; cancels on credit: {figures['credit_spent'] // 2} "
        f"({figures['credit_spent']} tokens); used after: {_pct(started['utilization_after'])}",
        *(f"outcome: {reason}" for reason in reasons),
    ]
    return markdown(columns, body) + "\n\n" + "\n".join(f"- {n}" for n in notes)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", type=comma_list(TIERS), default=list(TIERS))
    parser.add_argument("--routers", type=positive_ints, default=[1, 2, 4, 8])
    parser.add_argument("--backends", type=comma_list(BACKENDS), default=list(BACKENDS))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--down-s", type=float, default=3.0, help="0: no Redis-down run")
    parser.add_argument("--down-tier", choices=TIERS, default="premier")
    parser.add_argument("--down-routers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", help="write the results here as JSON")
    return parser


async def measure(
    args: argparse.Namespace, binary: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    with tempfile.TemporaryDirectory(prefix="kalshi-bench-redis-") as workdir:
        redis = RedisServer(binary, Path(workdir))
        redis.start()
        try:
            results = await matrix(args, redis)
            stopped = await down(args, redis) if args.down_s > 0 else None
        finally:
            redis.stop()
    return results, stopped


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.seconds <= 1 or args.down_s < 0 or args.down_routers < 1:
        parser().error("--seconds must be > 1, --down-s >= 0 and --down-routers >= 1")
    binary = shutil.which("redis-server")
    if binary is None:
        parser().error("redis-server is not on PATH")
    results, stopped = asyncio.run(measure(args, binary))
    machine = describe_machine()
    print(format_machine(machine))
    print()
    print(render_matrix(results))
    down_rows = None
    if stopped is not None:
        down_rows = phases(stopped)
        print()
        print(render_down(stopped, down_rows))
    if args.json:
        settings = {
            "tiers": args.tiers,
            "routers": args.routers,
            "backends": args.backends,
            "seconds": args.seconds,
            "down_s": args.down_s,
            "seed": args.seed,
            "sim": "own process",
        }
        runs = [{k: v for k, v in r.items() if k != "timelines"} for r in results]
        data: dict[str, Any] = {"machine": machine, "settings": settings, "runs": runs}
        if stopped is not None:
            kept = {k: v for k, v in stopped.items() if k != "timelines"}
            data["down"] = kept | {"phases": down_rows}
        Path(args.json).write_text(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
