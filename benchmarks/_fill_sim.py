"""The simulator in a process of its own with a house trader inside it that fills the bot's
resting order on command, for bench_order_updates.

    async with FillSim(key, seed=42) as sim:          # the parent (the router's process)
        router = OrderRouter.connect(config, key.signer(), base_url=sim.url)
        ...
        done = await sim.fills(FillOrder(TICKER, price=1000, n=500, gap_s=0.002, stamps=True))
        done["matched_ns"]                            # trade_id -> when the engine matched it

The child (``python benchmarks/_fill_sim.py``) runs ``SimServer`` without house liquidity and
takes one JSON command per line on its stdin, answering one JSON line each on its stdout. For
``fills`` it places house asks into the bot's resting bid, one trade each, either paced (random
gaps of mean ``gap_s``) or as fast as its loop goes (``gap_s`` 0: it yields to its own loop
after each trade, so that its WebSocket writer keeps sending). An engine observer stamps each of
the bot's trades with ``time.monotonic_ns()`` as the engine makes it: CLOCK_MONOTONIC, one clock
for every process of a Linux machine, so the parent can subtract its own stamps from these.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec
from _keys import BenchKey
from _runner import run_on
from _sim import UNLIMITED_WRITES
from _sim_child import SimChild, say, stdin_lines

from kalshi_router.sim import SimConfig, SimServer
from kalshi_router.sim.book import Exchange
from kalshi_router.sim.events import Event, Filled

HOUSE = "house"
SCRIPT = str(Path(__file__).resolve())
FLOOD_BATCH = 10
"""Trades made between two turns of the loop when flooding."""


@dataclass(frozen=True, slots=True)
class FillOrder:
    """Fill the bot's bid on ``ticker`` at ``price`` ($0.0001) ``n`` times, ``count``
    (hundredths) each; ``gap_s``: mean pause between trades (0: none); ``stamps``: answer
    when each trade was matched."""

    ticker: str
    price: int
    n: int
    count: int = 100
    gap_s: float = 0.0
    stamps: bool = False
    seed: int = 0


# -- the child ---------------------------------------------------------------------------------


class Stamps:
    """An engine observer: when each of ``user_id``'s trades was matched, while recording."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.recording = False
        self.times: dict[str, int] = {}

    def __call__(self, event: Event) -> None:
        if self.recording and isinstance(event, Filled) and event.order.user_id == self.user_id:
            self.times[event.trade_id] = time.monotonic_ns()


async def drive(exchange: Exchange, order: FillOrder, stamps: Stamps) -> dict[str, Any]:
    """Make ``order.n`` trades against the bot's bid; the figures of the run."""
    rng = random.Random(order.seed)
    stamps.times = {}
    stamps.recording = order.stamps
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(order.n):
        made = exchange.seed(order.ticker, HOUSE, "ask", order.price, order.count)
        if made.fill_count != order.count:
            return {"error": f"the bot's bid took {made.fill_count} of {order.count}"}
        if order.gap_s:
            await asyncio.sleep(rng.expovariate(1 / order.gap_s))
        elif n % FLOOD_BATCH == FLOOD_BATCH - 1:
            # Let the WebSocket writer send what these trades queued.
            await asyncio.sleep(0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stamps.recording = False
    answer: dict[str, Any] = {"fills": order.n, "seconds": wall, "cpu_s": cpu}
    if order.stamps:
        answer["matched_ns"] = stamps.times
    return answer


async def child() -> None:
    reader = await stdin_lines()
    hello = json.loads(await reader.readline())
    settings = {"tier": "prime", "seed_liquidity": False, "seed": hello["seed"], **UNLIMITED_WRITES}
    config = msgspec.convert(settings, SimConfig)
    async with SimServer(config) as sim:
        sim.register_key(hello["key_id"], hello["public_pem"])
        stamps = Stamps(hello["key_id"])
        sim.state.exchange.observe(stamps)
        say({"url": sim.url})
        while line := await reader.readline():
            command = json.loads(line)
            if command.pop("cmd") == "quit":
                break
            say(await drive(sim.state.exchange, FillOrder(**command), stamps))


# -- the parent --------------------------------------------------------------------------------


class FillSim(SimChild):
    """The child above in a subprocess; ``async with`` runs it (see the module docstring)."""

    def __init__(self, key: BenchKey, seed: int = 0, start_timeout_s: float = 30.0) -> None:
        hello = {"key_id": key.key_id, "public_pem": key.public_pem.decode(), "seed": seed}
        super().__init__(SCRIPT, "fill simulator", hello, start_timeout_s)

    async def fills(self, order: FillOrder, timeout_s: float = 600.0) -> dict[str, Any]:
        """Have the house make the trades; returns once all are made (not yet delivered)."""
        return await self.ask({"cmd": "fills", **asdict(order)}, timeout_s)


if __name__ == "__main__":
    run_on(child(), "uvloop")
