"""Following orders after acceptance (``[orders] track``): how soon a fill reaches the bot, what
each update costs the router's process, and how many updates per second one router follows.

    python benchmarks/bench_order_updates.py [--samples N] [--gap-ms G] [--fills N]
        [--per-order N] [--warmup N] [--loop uvloop|asyncio] [--json FILE]

The simulator runs in a process of its own (``_fill_sim``) with a house trader inside it; the
router (this process) rests bids of ``--per-order`` contracts each, all at one price, and reads
``router.orders.updates()``. The house sells into them one contract a trade, so each bid takes
``--per-order`` fills (oldest first) and then is filled:

latency   ``--samples`` trades at random gaps (mean ``--gap-ms``), each stamped by an engine
          observer in the simulator's process as it is matched, and again here as its
          ``FillEvent`` comes out of ``router.orders.updates()`` (CLOCK_MONOTONIC in both):
          match to fill event, p50/p90/p99/max. The path: the engine's event, the simulator's
          WebSocket frames, loopback, the router's feed, decode, the ledger, the watch, the
          reader's task waking up. The floor is the same (before the router connects) read by
          a bare client: signed, subscribed, each frame decoded for its type and trade id
          only; "the router adds" is the difference.
flood     ``--fills`` trades as fast as the simulator's loop makes them (its other core), while
          this process reads: updates per second followed (from the first fill event to the
          last), and this process's CPU (``time.process_time()``, all its threads) over the
          updates read in that window, per update and per fill. The client's CPU busy share
          says which side set the rate: near 100 % it is the router, lower it is the simulator;
          the ceiling (updates over that CPU) is what one core of the router's would follow.

Every trade gives the router three frames (fill, user_order, market_position) and the bot two
updates (the order's fill, then its new counts). What a fill costs depends on how many fills
its order has had before (``--per-order``): see benchmarks/README.md. REST reconciliation is
left to reconnects (``reconcile_every_s`` an hour), so only the WebSocket path is measured.
Fixed seed (the gaps).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from _fill_sim import FillOrder, FillSim
from _keys import BenchKey
from _machine import describe_machine, format_machine
from _report import quantiles, table
from _runner import LOOPS, default_loop, loop_in_use, run_on

from kalshi_router.config import Config, OrdersConfig, RouterConfig
from kalshi_router.intent import OrderIntent
from kalshi_router.orders.feed import CHANNELS, ws_url
from kalshi_router.orders.updates import OrderUpdate
from kalshi_router.outcome import Accepted
from kalshi_router.router import OrderRouter
from kalshi_router.wire.signer import Signer
from kalshi_router.wire.ws_models import Subscribe, SubscribeParams, encode_command
from kalshi_router.wire.ws_sign import handshake_headers

SEED = 42
TICKER = "KXBENCH-26DEC31-FILLS"
PRICE = Decimal("0.10")
PRICE_UNITS = 1000
"""``PRICE`` in the simulator's units ($0.0001)."""
QUANTILE_NAMES = ("p50", "p90", "p99", "max")
SETTLE_S = 60.0


@dataclass
class Reader:
    """Reads the router's update stream: counts, and stamps what the run asks for."""

    updates: int = 0
    fills: int = 0
    stamping: bool = False
    arrived_ns: dict[str, int] = field(default_factory=dict)
    first: tuple[int, float, int] | None = None
    """(ns, CPU s, updates) at the first fill of the window."""
    last: tuple[int, float, int] | None = None
    target: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the bare reader is subscribed to every channel."""

    def expect(self, fills: int, *, stamping: bool = False) -> None:
        """Count ``fills`` more from now on; ``reached`` is set on the last of them."""
        self.fills = 0
        self.target = fills
        self.stamping = stamping
        self.arrived_ns = {}
        self.first = self.last = None
        self.reached.clear()

    def filled(self, trade_id: str) -> None:
        now = time.monotonic_ns()
        self.fills += 1
        if self.stamping:
            self.arrived_ns[trade_id] = now
        if self.fills == 1:
            self.first = (now, time.process_time(), self.updates)
        if self.fills == self.target:
            self.last = (now, time.process_time(), self.updates)
            self.reached.set()

    async def read(self, stream: AsyncIterator[OrderUpdate]) -> None:
        """The router's updates (the bot's view)."""
        async for update in stream:
            self.updates += 1
            if update.fill is not None:
                self.filled(update.fill.trade_id)

    async def read_bare(self, base_url: str, signer: Signer) -> None:
        """The floor: the same WebSocket frames read bare (signed, subscribed, the trade id
        decoded from fill frames, nothing else); ``updates`` counts frames."""
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url(base_url), headers=handshake_headers(signer)) as ws,
        ):
            subscribe = Subscribe(id=1, params=SubscribeParams(channels=list(CHANNELS)))
            await ws.send_str(encode_command(subscribe).decode())
            subscribed = 0
            async for message in ws:
                frame = _bare_frame(message.data)
                self.updates += 1
                if frame.type == "fill" and frame.msg is not None:
                    self.filled(frame.msg.trade_id)
                elif frame.type == "subscribed":
                    subscribed += 1
                    if subscribed == len(CHANNELS):
                        self.subscribed.set()


class _TradeId(msgspec.Struct):
    trade_id: str = ""


class _BareFrame(msgspec.Struct):
    type: str
    msg: _TradeId | None = None


_bare_frame = msgspec.json.Decoder(_BareFrame).decode


async def _wait(reader: Reader, what: str) -> None:
    try:
        await asyncio.wait_for(reader.reached.wait(), SETTLE_S)
    except TimeoutError:
        raise RuntimeError(
            f"{what}: {reader.fills} of {reader.target} fills reached the bot"
        ) from None


async def _latency(
    sim: FillSim, reader: Reader, args: argparse.Namespace, what: str, unit: str
) -> dict[str, Any]:
    """Paced fills, each matched (in the simulator) and seen by ``reader`` (here)."""
    reader.expect(args.samples, stamping=True)
    cpu, before = time.process_time(), reader.updates
    order = FillOrder(
        TICKER, PRICE_UNITS, args.samples, gap_s=args.gap_ms / 1000, stamps=True, seed=SEED
    )
    made = await sim.fills(order)
    await _wait(reader, f"{what} latency")
    cpu, updates = time.process_time() - cpu, reader.updates - before
    matched: dict[str, int] = made["matched_ns"]
    lags = sorted((reader.arrived_ns[t] - ns) / 1000 for t, ns in matched.items())
    if len(lags) != args.samples:
        raise RuntimeError(f"{len(lags)} of {args.samples} trades stamped on both sides")
    return {
        "count": len(lags),
        "fills_per_s": args.samples / made["seconds"],
        f"match_to_{what}_us": quantiles(lags, QUANTILE_NAMES),
        f"cpu_us_per_{unit}": cpu / updates * 1e6,
        f"{unit}s": updates,
    }


async def _warm(sim: FillSim, reader: Reader, fills: int) -> None:
    reader.expect(fills)
    await sim.fills(FillOrder(TICKER, PRICE_UNITS, fills))
    await _wait(reader, "warm-up")


async def _flood(sim: FillSim, reader: Reader, fills: int) -> dict[str, Any]:
    reader.expect(fills)
    made = await sim.fills(FillOrder(TICKER, PRICE_UNITS, fills))
    await _wait(reader, "flood")
    assert reader.first is not None
    assert reader.last is not None
    (t0, cpu0, u0), (t1, cpu1, u1) = reader.first, reader.last
    seconds = (t1 - t0) / 1e9
    updates = u1 - u0
    cpu = cpu1 - cpu0
    return {
        "fills": fills,
        "updates": updates,
        "seconds": seconds,
        "updates_per_s": updates / seconds,
        "fills_per_s": (fills - 1) / seconds,
        "cpu_us_per_update": cpu / updates * 1e6,
        "cpu_us_per_fill": cpu / (fills - 1) * 1e6,
        "client_busy": cpu / seconds,
        # What one core of the router's would follow, were the simulator faster.
        "ceiling_updates_per_s": updates / cpu,
        "sim_fills_per_s": fills / made["seconds"],
        "sim_cpu_us_per_fill": made["cpu_s"] / fills * 1e6,
    }


async def _floor(sim: FillSim, key: BenchKey, args: argparse.Namespace) -> dict[str, Any]:
    reader = Reader()
    reading = asyncio.create_task(reader.read_bare(sim.url, key.signer()), name="bench-bare")
    try:
        await asyncio.wait_for(reader.subscribed.wait(), SETTLE_S)
        await _warm(sim, reader, args.warmup)
        return await _latency(sim, reader, args, "fill_frame", "frame")
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    key = BenchKey.generate("ed25519")
    total = 2 * (args.warmup + args.samples) + args.fills
    count = args.per_order
    orders = -(-total // count)
    router_config = RouterConfig(queue_size=orders + 1000, deadline_s=60.0)
    # Only the WebSocket path: REST reconciliation on reconnects only.
    tracking = OrdersConfig(track=True, reconcile_every_s=3600.0)
    async with FillSim(key, seed=SEED) as sim:
        # The bids rest at the exchange whoever follows them: place them first, untracked.
        async with OrderRouter.connect(Config(router=router_config), key.signer(), sim.url) as r:
            bids = [OrderIntent.bid(TICKER, PRICE, count) for _ in range(orders)]
            placed = await r.place_many(bids)
        resting = sum(isinstance(o, Accepted) and o.remaining_count == count for o in placed)
        if resting != orders:
            raise RuntimeError(f"{orders - resting} of the bot's {orders} bids did not rest")
        floor = await _floor(sim, key, args)
        config = Config(router=router_config, orders=tracking)
        async with OrderRouter.connect(config, key.signer(), base_url=sim.url) as router:
            reader = Reader()
            stream = router.orders.updates()
            reading = asyncio.create_task(reader.read(stream), name="bench-reader")
            try:
                # It learns the bids as if it had placed them: their counts, so that a frame
                # repeating them is no news (as for a bot's own orders).
                await router.reconcile_orders()
                await _warm(sim, reader, args.warmup)
                latency = await _latency(sim, reader, args, "fill_event", "update")
                flood = await _flood(sim, reader, args.fills)
            finally:
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
    ours, bare = latency["match_to_fill_event_us"], floor["match_to_fill_frame_us"]
    adds = {name: ours[name] - bare[name] for name in ("p50", "p99")}
    return {"latency": latency, "floor": floor, "router_adds_us": adds, "flood": flood}


def render(result: dict[str, Any], args: argparse.Namespace) -> str:
    lat, floor, flood = result["latency"], result["floor"], result["flood"]
    ours, bare = lat["match_to_fill_event_us"], floor["match_to_fill_frame_us"]
    latency = table(
        f"match (in the simulator) to fill, µs: {lat['count']} fills at random gaps of mean "
        f"{args.gap_ms:g} ms ({lat['fills_per_s']:,.0f} fills/s) for each",
        ["", *QUANTILE_NAMES, "CPU µs/update"],
        [
            [
                "router: FillEvent from router.orders.updates()",
                *(f"{ours[n]:,.0f}" for n in QUANTILE_NAMES),
                f"{lat['cpu_us_per_update']:.1f}",
            ],
            [
                "floor: the fill frame read bare",
                *(f"{bare[n]:,.0f}" for n in QUANTILE_NAMES),
                f"{floor['cpu_us_per_frame']:.1f} /frame",
            ],
        ],
    )
    followed = table(
        f"flood: {flood['fills']:,} fills as fast as the simulator makes them (its own process), "
        f"{args.per_order} to an order",
        [
            "",
            "updates/s",
            "fills/s",
            "CPU µs/update",
            "CPU µs/fill",
            "client busy",
            "ceiling updates/s",
            "sim fills/s",
        ],
        [
            [
                "router",
                f"{flood['updates_per_s']:,.0f}",
                f"{flood['fills_per_s']:,.0f}",
                f"{flood['cpu_us_per_update']:.1f}",
                f"{flood['cpu_us_per_fill']:.1f}",
                f"{flood['client_busy']:.0%}",
                f"{flood['ceiling_updates_per_s']:,.0f}",
                f"{flood['sim_fills_per_s']:,.0f}",
            ]
        ],
    )
    adds = result["router_adds_us"]
    added = f"the router adds {adds['p50']:,.0f} µs at p50, {adds['p99']:,.0f} µs at p99"
    return f"{latency}\n{added}\n\n{followed}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=2000, help="latency: fills at random gaps")
    p.add_argument("--gap-ms", type=float, default=2.0, help="latency: mean gap between fills")
    p.add_argument("--fills", type=int, default=20_000, help="flood: fills as fast as can be")
    p.add_argument("--per-order", type=int, default=10, help="fills each of the bot's bids takes")
    p.add_argument("--warmup", type=int, default=200, help="fills before anything is measured")
    p.add_argument("--loop", choices=LOOPS, default=default_loop(), help="the router's loop")
    p.add_argument("--json", help="write the results here as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if min(args.samples, args.warmup, args.per_order) < 1 or args.fills < 2 or args.gap_ms <= 0:
        parser().error("--samples, --warmup and --per-order >= 1, --fills >= 2, --gap-ms > 0")
    result = run_on(run(args), args.loop)
    machine = describe_machine(loop_in_use(args.loop))
    print(format_machine(machine))
    print(render(result, args))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        document = {"machine": machine, "settings": settings, **result}
        Path(args.json).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
