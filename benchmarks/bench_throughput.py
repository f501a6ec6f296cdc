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
                     json: no queue, no pipelining (one request in flight); with each key, on
                     the default loop (the router's CPU per order is held to it, key by key).
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
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _peers
from _contenders import SENDERS
from _data import BATCH, make_intents
from _keys import KEYS, BenchKey, child_key
from _machine import describe_machine, format_machine
from _options import comma_list, positive_ints
from _peer_venv import PeerPython, ensure_venv
from _report import (
    BELOW_NAIVE_BATCH,
    OVER_BEST_PEER,
    OVER_NAIVE,
    Check,
    cell,
    format_ratio,
    table,
    throughput_checks,
)
from _runner import LOOPS, read_child_spec, run_on, uvloop_available
from _throughput_runs import ORDER_TAG, Peers, run_all


def child_main(name: str, loop: str) -> int:
    spec = read_child_spec()
    intents = make_intents(spec["warmup"] + spec["orders"], spec["seed"], ORDER_TAG)
    warm, timed = intents[: spec["warmup"]], intents[spec["warmup"] :]
    sender = SENDERS[name](spec, child_key(spec))
    json.dump(run_on(_peers.measure(sender, warm, timed), loop), sys.stdout)
    return 0


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
                cell(r["in_flight"], "d"),
                str(r["batch"]),
                cell(r.get("orders_per_s"), ".0f"),
                format_ratio(r.get("vs_router")),
                cell(r.get("cpu_us_per_order"), ".1f"),
                format_ratio(r.get("cpu_vs_router")),
                cell(r.get("sim_cpu_us_per_order"), ".1f"),
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


def _subject(check: Check) -> str:
    r = check.row
    if check.goal is OVER_NAIVE:
        return f" at in-flight {r['in_flight']}"
    if check.goal is OVER_BEST_PEER:
        return f" at in-flight {r['in_flight']} ({r['contender']}, {r['key']})"
    if check.goal is BELOW_NAIVE_BATCH:
        return f" ({r['key']}, {r['loop']})"
    return f" at full batches ({r['key']}, {r['loop']}, in-flight {r['in_flight']})"


def goals(results: Sequence[dict[str, Any]]) -> str:
    """The issue's goals (``_report``), reported, never asserted."""
    checks = throughput_checks(results)
    lines = [f"goal: {c.line(_subject(c))}" for c in checks]
    if not any(c.goal is OVER_BEST_PEER for c in checks):
        lines.append(f"goal: {OVER_BEST_PEER.text}: no peer ran (see the table)")
    ok = [r for r in results if r["status"] == "ok"]

    def refused(field: str) -> int:
        return sum(n for r in ok for k, n in r[field].items() if k != "accepted")

    lines.append(
        f"orders not accepted, all runs (timed / warm-up): "
        f"{refused('outcomes')} / {refused('warmup_outcomes')}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    have_uvloop = uvloop_available()
    loops = list(LOOPS if have_uvloop else LOOPS[1:])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=10_000, help="timed orders per run")
    parser.add_argument("--warmup", type=int, default=200, help="untimed orders first")
    parser.add_argument("--in-flight", type=positive_ints, default=[1, 4], help="e.g. 1,4")
    parser.add_argument(
        "--batch", type=positive_ints, default=[20, 100], help="router max batch sizes"
    )
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
    parser.add_argument("--contender", choices=sorted(SENDERS), help=argparse.SUPPRESS)
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
