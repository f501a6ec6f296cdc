"""The kill switch under load: ``router.kill()`` with N orders resting and a bot keeping the
write budget busy; time until every order is cancelled, confirmed, and kill() returns.

    python benchmarks/bench_kill.py [--orders 100,500,2000] [--tiers premier,prime] [--runs 5]
        [--cancel-all ok,fails] [--load-s 1.0] [--json FILE]

Each run has a fresh simulator in a process of its own (``_kill_sim``: the tier's real
buckets, the house's quotes) and a fresh router in this one (uvloop, Ed25519, ``[orders] track
= true``). N orders of ours rest in the simulator's books over 8 tickers, as if placed earlier,
and the router's order tracker reconciles so that it follows them. Then a bot submits creates
(resting, 60 %), cancels (25 %) and amends (15 %) of its own orders, one second of the write
budget outstanding, for ``--load-s`` plus up to half as much again (drawn from the run's seed);
then ``kill()``. From the call:

- *cancelled*: the engine's last resting order of ours went (stamped in the simulator's
  process, same monotonic clock);
- *confirmed*: the kill switch's REST listing of resting orders came back empty;
- *kill()*: it returned (after reconciling the tracker: one GET per order the tracker still
  held open that REST no longer listed).

``--cancel-all fails`` refuses Kalshi's cancel-all (503 on ``DELETE /portfolio/events/orders``
only), so every order goes one by one. Counts: orders Kalshi's cancel-all took (the engine's
count), orders cancelled one by one (the report's), queued creates the halt closed; when the
cancel-all request went out and when its answer came back; tokens: the write tokens of the
cancel requests the router wrote during kill() (cancel-all and batched cancels, retries
included, at the router's costs) and the read tokens the simulator charged meanwhile (the
kill's listings, the tracker's reconciliation, lookups). Once halted, the bot only submits
creates (refused at the risk gate, never sent), so those cancels are the kill switch's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from _keys import BenchKey
from _kill_sim import KillSim
from _machine import describe_machine, format_machine
from _options import comma_list, positive_ints
from _report import percentile, table
from _runner import loop_in_use, run_on

from kalshi_router.config import Config, OrdersConfig
from kalshi_router.errors import IntentError
from kalshi_router.intent import AmendIntent, CancelIntent, OrderIntent
from kalshi_router.outcome import Accepted, Outcome
from kalshi_router.risk.kill import KillReport
from kalshi_router.router import OrderRouter
from kalshi_router.sim.buckets import TIERS
from kalshi_router.wire.models import GetOrdersResponse, Order
from kalshi_router.wire.reply import BatchReply

SEED = 42
TICKERS = tuple(f"KXKILL-26DEC31-T{n}" for n in range(8))
TIER_CHOICES = ("basic", "advanced", "premier", "paragon", "prime")
CANCEL_ALL_MODES = ("ok", "fails")
CANCEL_ALL_REFUSED = {"error_503_rate": 1.0, "paths": ["DELETE /portfolio/events/orders"]}
KILL_TIMEOUT_S = 120.0
TRACK = OrdersConfig(track=True, reconcile_every_s=3600.0)


class Load:
    """The bot: its own orders created, cancelled and amended, ``outstanding`` intents at a
    time. Once the router halts it only creates (refused at once, at most one a millisecond)."""

    def __init__(self, router: OrderRouter, seed: int, outstanding: int) -> None:
        self.router = router
        self.rng = random.Random(seed)
        self.room = asyncio.Semaphore(outstanding)
        self.futures: list[asyncio.Future[Any]] = []
        self.mine: list[tuple[OrderIntent, str]] = []

    def _create(self) -> asyncio.Future[Any]:
        rng = self.rng
        ticker = rng.choice(TICKERS)
        if rng.random() < 0.5:
            intent = OrderIntent.bid(ticker, rng.randint(1, 30), 1)
        else:
            intent = OrderIntent.ask(ticker, rng.randint(70, 99), 1)
        future = self.router.submit(intent)
        future.add_done_callback(lambda done: self._placed(intent, done))
        return future

    def _placed(self, intent: OrderIntent, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and isinstance(future.result(), Accepted):
            self.mine.append((intent, future.result().order_id))

    def _act(self) -> asyncio.Future[Any] | None:
        roll = self.rng.random()
        if roll < 0.6 or not self.mine:
            return self._create()
        intent, order_id = self.mine.pop(self.rng.randrange(len(self.mine)))
        try:
            if roll < 0.85:
                return self.router.cancel(order_id, intent.ticker)
            amend = AmendIntent(
                order_id=order_id,
                ticker=intent.ticker,
                side=intent.side,
                price=intent.price,
                count=Decimal(2),
                client_order_id=intent.client_order_id,
            )
            return self.router.amend(amend)
        except IntentError:
            return None  # a cancel or an amend of it is pending already

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.router.trading_state == "halted":
                self.futures.append(self._create())
                await asyncio.sleep(0.001)
                continue
            await self.room.acquire()
            future = self._act()
            if future is None:
                self.room.release()
                continue
            future.add_done_callback(lambda _: self.room.release())
            self.futures.append(future)


class Stamps:
    """What the router writes and reads from the kill on: the write tokens of its cancel
    requests (at the router's costs; retries included), when Kalshi's cancel-all went out and
    came back, each REST listing of resting orders that came back empty, and the single-order
    GETs (the tracker's reconciliation: one per order it held open that REST no longer lists)."""

    def __init__(self, router: OrderRouter) -> None:
        self.write_tokens = 0
        self.cancel_all_sent_ns: int | None = None
        self.cancel_all_answered_ns: int | None = None
        self.empty_listings: list[int] = []
        self.order_gets = 0
        client = router._client
        cancel_cost, cancel_all_cost = router.budget.costs["cancel"], router.order_groups.costs
        cancel_all, cancel_batch = client.cancel_all, client.cancel_batch
        get_orders, get_order = client.get_orders, client.get_order

        async def stamped_cancel_all(subaccount: int | None = None) -> None:
            self.write_tokens += cancel_all_cost["cancel_all"]
            self.cancel_all_sent_ns = time.monotonic_ns()
            try:
                await cancel_all(subaccount)
            finally:
                self.cancel_all_answered_ns = time.monotonic_ns()

        async def counted_cancel_batch(cancels: Sequence[CancelIntent]) -> BatchReply:
            self.write_tokens += cancel_cost * len(cancels)
            return await cancel_batch(cancels)

        async def stamped_get_orders(**query: Any) -> GetOrdersResponse:
            page = await get_orders(**query)
            if query.get("status") == "resting" and not page.orders and not query.get("cursor"):
                self.empty_listings.append(time.monotonic_ns())
            return page

        async def counted_get_order(order_id: str) -> Order | None:
            self.order_gets += 1
            return await get_order(order_id)

        client.cancel_all = stamped_cancel_all  # type: ignore[method-assign]
        client.cancel_batch = counted_cancel_batch  # type: ignore[method-assign]
        client.get_orders = stamped_get_orders  # type: ignore[method-assign]
        client.get_order = counted_get_order  # type: ignore[method-assign]


async def one_run(
    key: BenchKey, tier: str, orders: int, fails: bool, run: int, load_s: float
) -> dict[str, Any]:
    seed = SEED + run
    rng = random.Random(seed)
    outstanding = TIERS[tier].write_refill // 10  # one second of creates
    async with KillSim(key, tier, seed) as sim:
        await sim.seed_resting(orders, TICKERS, seed)
        config = Config(orders=TRACK)
        async with OrderRouter.connect(config, key.signer(), sim.url) as router:
            await router.reconcile_orders()
            followed = len(router.orders.open_orders())
            if fails:
                await sim.set_faults(CANCEL_ALL_REFUSED)
            load = Load(router, seed, outstanding)
            stop = asyncio.Event()
            bot = asyncio.create_task(load.run(stop))
            await asyncio.sleep(load_s * (1 + rng.random() / 2))
            armed = await sim.arm()
            stamps = Stamps(router)
            started = time.monotonic_ns()
            report = await router.kill("bench")
            returned = time.monotonic_ns()
            books = await sim.books()
            stop.set()
            await bot
            outcomes: list[Outcome | BaseException] = await asyncio.gather(
                *load.futures, return_exceptions=True
            )
    confirmed = next((t for t in stamps.empty_listings if t >= started), None)
    return {
        "tier": tier,
        "orders": orders,
        "cancel_all_mode": "fails" if fails else "ok",
        "run": run,
        "followed": followed,
        "resting_at_kill": armed["resting"],
        "resting_after": books["resting"],
        "done": report.done,
        "cancelled_ms": _ms(books["emptied_ns"], started),
        "confirmed_ms": _ms(confirmed, started),
        "returned_ms": (returned - started) / 1e6,
        "cancel_all_sent_ms": _ms(stamps.cancel_all_sent_ns, started),
        "cancel_all_answered_ms": _ms(stamps.cancel_all_answered_ns, started),
        "by_cancel_all": books["cancel_all_orders"],
        "cancel_all": report.cancel_all,
        "one_by_one": report.cancels_sent,
        "one_by_one_confirmed": report.cancels_confirmed,
        "creates_closed": report.creates_closed,
        "rounds": report.rounds,
        "write_tokens": stamps.write_tokens,
        "read_tokens": books["tokens_spent"]["read"] - armed["tokens_spent"]["read"],
        "order_gets": stamps.order_gets,
        "bot_intents": len(outcomes),
        "bot_errors": sum(isinstance(o, BaseException) for o in outcomes),
        "report": _report(report),
    }


def _ms(stamp_ns: int | None, started_ns: int) -> float | None:
    return None if stamp_ns is None else (stamp_ns - started_ns) / 1e6


def _report(report: KillReport) -> dict[str, Any]:
    return {name: getattr(report, name) for name in report.__struct_fields__}


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    key = BenchKey.generate("ed25519")
    runs: list[dict[str, Any]] = []
    for tier in args.tiers:
        for mode in args.cancel_all:
            for orders in args.orders:
                for n in range(args.runs):
                    result = await one_run(key, tier, orders, mode == "fails", n, args.load_s)
                    print(_progress(result), file=sys.stderr, flush=True)
                    runs.append(result)
    return runs


def _progress(r: dict[str, Any]) -> str:
    return (
        f"{r['tier']} {r['orders']} cancel-all {r['cancel_all_mode']} run {r['run']}: "
        f"done {r['done']}, cancelled {r['cancelled_ms']} ms, confirmed {r['confirmed_ms']} ms, "
        f"kill() {r['returned_ms']:.1f} ms"
    )


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per tier, cancel-all mode and size: p50/p99 of the times over the runs (p99 of
    a few runs is their max), medians of the counts."""
    rows: list[dict[str, Any]] = []
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["tier"], r["cancel_all_mode"], r["orders"]), []).append(r)
    for (tier, mode, orders), mine in groups.items():
        row: dict[str, Any] = {
            "tier": tier,
            "cancel_all_mode": mode,
            "orders": orders,
            "runs": len(mine),
            "done": sum(r["done"] and r["resting_after"] == 0 for r in mine),
        }
        for name in (
            "cancel_all_sent_ms",
            "cancel_all_answered_ms",
            "cancelled_ms",
            "confirmed_ms",
            "returned_ms",
        ):
            values = sorted(r[name] for r in mine if r[name] is not None)
            row[name] = {"p50": percentile(values, 0.5), "p99": percentile(values, 0.99)}
        for name in (
            "resting_at_kill",
            "by_cancel_all",
            "one_by_one",
            "creates_closed",
            "write_tokens",
            "read_tokens",
            "order_gets",
        ):
            row[name] = statistics.median(r[name] for r in mine)
        row["order_gets_max"] = max(r["order_gets"] for r in mine)
        rows.append(row)
    return rows


def render(rows: list[dict[str, Any]], runs: int) -> str:
    def times(row: dict[str, Any], name: str) -> str:
        return f"{row[name]['p50']:,.0f} / {row[name]['p99']:,.0f}"

    body = [
        [
            f"{row['tier']}, {row['orders']:,}, cancel-all {row['cancel_all_mode']}",
            f"{row['done']}/{row['runs']}",
            f"{row['resting_at_kill']:,.0f}",
            "{:,.0f} / {:,.0f}".format(
                row["cancel_all_sent_ms"]["p50"], row["cancel_all_answered_ms"]["p50"]
            ),
            times(row, "cancelled_ms"),
            times(row, "confirmed_ms"),
            times(row, "returned_ms"),
            f"{row['by_cancel_all']:,.0f}",
            f"{row['one_by_one']:,.0f}",
            f"{row['creates_closed']:,.0f}",
            f"{row['write_tokens']:,.0f}",
            f"{row['read_tokens']:,.0f}",
            f"{row['order_gets']:,.0f} / {row['order_gets_max']:,}",
        ]
        for row in rows
    ]
    columns = [
        "tier, N resting, cancel-all",
        "done",
        "resting at kill",
        "cancel-all out/back p50 ms",
        "cancelled p50/p99 ms",
        "confirmed p50/p99 ms",
        "kill() p50/p99 ms",
        "by cancel-all",
        "one by one",
        "queued closed",
        "write tokens",
        "read tokens",
        "order GETs med/max",
    ]
    title = (
        f"kill switch under load, {runs} runs each (p99 of so few runs is their max; counts are "
        "medians); simulator in its own process"
    )
    return table(title, columns, body)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=positive_ints, default=[100, 500, 2000])
    parser.add_argument("--tiers", type=comma_list(TIER_CHOICES), default=["premier", "prime"])
    parser.add_argument("--cancel-all", type=comma_list(CANCEL_ALL_MODES), default=["ok", "fails"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--load-s", type=float, default=1.0)
    parser.add_argument("--json", help="write the results here as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.runs < 1 or args.load_s <= 0:
        parser().error("--runs must be >= 1 and --load-s > 0")
    runs = run_on(run(args), "uvloop")
    rows = summarise(runs)
    machine = describe_machine(loop_in_use("uvloop"))
    print(format_machine(machine))
    print(render(rows, args.runs))
    if args.json:
        settings = {
            "orders": args.orders,
            "tiers": args.tiers,
            "cancel_all": args.cancel_all,
            "runs": args.runs,
            "load_s": args.load_s,
            "seed": SEED,
            "sim": "own process",
        }
        data = {"machine": machine, "settings": settings, "rows": rows, "runs": runs}
        Path(args.json).write_text(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
