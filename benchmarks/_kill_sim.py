"""The simulator in a process of its own for bench_kill, which tells the engine's truth on
command: how many of the bot's orders rest, when the last of them went, and how many Kalshi's
cancel-all took.

    async with KillSim(key, tier="premier", seed=42) as sim:    # the parent (the bot's process)
        await sim.seed_resting(2000, TICKERS)   # resting in the books, as if placed earlier
        await sim.arm()                          # from now on, stamp when none of ours rests
        ...
        books = await sim.books()    # resting, emptied_ns, cancel_all_calls, cancel_all_orders,
                                     # tokens_spent (read, write)

The child (``python benchmarks/_kill_sim.py``) runs ``SimServer`` at the tier's own buckets,
with the house's quotes, and answers one JSON line per command (``_sim_child``). An engine
observer follows the bot's resting orders; ``emptied_ns`` is ``time.monotonic_ns()`` when the
last one went (CLOCK_MONOTONIC: one clock for every process of a Linux machine, so the parent
can subtract its own stamps). The engine's ``cancel_all`` is wrapped to count what it takes.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from _keys import BenchKey
from _runner import run_on
from _sim_child import SimChild, say, stdin_lines

from kalshi_router.sim import FaultConfig, SimConfig, SimServer
from kalshi_router.sim.book import Exchange
from kalshi_router.sim.events import Event, OrderChanged

SCRIPT = str(Path(__file__).resolve())
CONTRACT = 100
"""One contract, in the engine's hundredths."""


# -- the child ---------------------------------------------------------------------------------


class Books:
    """The bot's resting orders as the engine changes them, and what cancel-all takes."""

    def __init__(self, exchange: Exchange, user_id: str) -> None:
        self.user_id = user_id
        self.resting: set[str] = set()
        self.armed = False
        self.emptied_ns: int | None = None
        self.cancel_all_calls = 0
        self.cancel_all_orders = 0
        exchange.observe(self)
        cancel_all = exchange.cancel_all

        def counted(user_id: str, subaccount: int | None = None) -> int:
            taken = cancel_all(user_id, subaccount)
            if user_id == self.user_id:
                self.cancel_all_calls += 1
                self.cancel_all_orders += taken
            return taken

        exchange.cancel_all = counted  # type: ignore[method-assign]

    def __call__(self, event: Event) -> None:
        if not isinstance(event, OrderChanged) or event.order.user_id != self.user_id:
            return
        if event.order.status == "resting":
            self.resting.add(event.order.order_id)
            return
        was = len(self.resting)
        self.resting.discard(event.order.order_id)
        if self.armed and was and not self.resting:
            # The last time it emptied: an order that rests after it starts the count again.
            self.emptied_ns = time.monotonic_ns()

    def arm(self) -> None:
        self.armed = True
        self.emptied_ns = None
        self.cancel_all_calls = self.cancel_all_orders = 0


def seed_resting(
    sim: SimServer, user_id: str, orders: int, tickers: Sequence[str], seed: int
) -> None:
    """``orders`` of the bot's, one contract each: bids at 1-30 c and asks at 70-99 c, which
    never meet the house's quotes (40-45 c and 55-60 c) nor each other."""
    rng = random.Random(seed)
    for ticker in tickers:
        sim.state.prepare_market(ticker)
    for _ in range(orders):
        ticker = rng.choice(tickers)
        if rng.random() < 0.5:
            sim.state.exchange.seed(ticker, user_id, "bid", rng.randint(1, 30) * 100, CONTRACT)
        else:
            sim.state.exchange.seed(ticker, user_id, "ask", rng.randint(70, 99) * 100, CONTRACT)


def _books(sim: SimServer, books: Books) -> dict[str, Any]:
    return {
        "resting": len(books.resting),
        "emptied_ns": books.emptied_ns,
        "cancel_all_calls": books.cancel_all_calls,
        "cancel_all_orders": books.cancel_all_orders,
        "tokens_spent": dict(sim.state.stats.tokens_spent),
    }


async def child() -> None:
    reader = await stdin_lines()
    hello = json.loads(await reader.readline())
    config = SimConfig(tier=hello["tier"], seed=hello["seed"])
    async with SimServer(config) as sim:
        user_id = hello["key_id"]
        sim.register_key(user_id, hello["public_pem"])
        books = Books(sim.state.exchange, user_id)
        say({"url": sim.url})
        while line := await reader.readline():
            command = json.loads(line)
            cmd = command.pop("cmd")
            if cmd == "quit":
                break
            if cmd == "seed":
                seed_resting(sim, user_id, command["orders"], command["tickers"], command["seed"])
            elif cmd == "arm":
                books.arm()
            elif cmd == "faults":
                sim.state.faults.configure(msgspec.convert(command["faults"], FaultConfig))
            say(_books(sim, books))


# -- the parent --------------------------------------------------------------------------------


class KillSim(SimChild):
    """The child above in a subprocess; ``async with`` runs it (see the module docstring)."""

    def __init__(self, key: BenchKey, tier: str, seed: int = 0) -> None:
        hello = {
            "key_id": key.key_id,
            "public_pem": key.public_pem.decode(),
            "tier": tier,
            "seed": seed,
        }
        super().__init__(SCRIPT, "kill simulator", hello)

    async def seed_resting(
        self, orders: int, tickers: Sequence[str], seed: int = 0
    ) -> dict[str, Any]:
        return await self.ask(
            {"cmd": "seed", "orders": orders, "tickers": list(tickers), "seed": seed}, 60.0
        )

    async def arm(self) -> dict[str, Any]:
        """From now on, stamp the moment none of the bot's orders rests; counts start at 0."""
        return await self.ask({"cmd": "arm"}, 10.0)

    async def books(self) -> dict[str, Any]:
        return await self.ask({"cmd": "books"}, 10.0)

    async def set_faults(self, faults: dict[str, Any]) -> dict[str, Any]:
        """FaultConfig fields (omitted: defaults; ``{}``: none)."""
        return await self.ask({"cmd": "faults", "faults": faults}, 10.0)


if __name__ == "__main__":
    run_on(child(), "uvloop")
