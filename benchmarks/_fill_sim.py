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
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import msgspec
from _keys import BenchKey
from _runner import run_on
from _sim import UNLIMITED_WRITES

from kalshi_router.sim import SimConfig, SimServer
from kalshi_router.sim.book import Exchange
from kalshi_router.sim.events import Event, Filled

HOUSE = "house"
SCRIPT = str(Path(__file__).resolve())
FLOOD_BATCH = 10
"""Trades made between two turns of the loop when flooding."""
_LINE_LIMIT = 1 << 26
"""A line may carry every stamp of a run (about 60 bytes a trade)."""


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


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _stdin() -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=_LINE_LIMIT)
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def child() -> None:
    reader = await _stdin()
    hello = json.loads(await reader.readline())
    settings = {"tier": "prime", "seed_liquidity": False, "seed": hello["seed"], **UNLIMITED_WRITES}
    config = msgspec.convert(settings, SimConfig)
    async with SimServer(config) as sim:
        sim.register_key(hello["key_id"], hello["public_pem"])
        stamps = Stamps(hello["key_id"])
        sim.state.exchange.observe(stamps)
        _say({"url": sim.url})
        while line := await reader.readline():
            command = json.loads(line)
            if command.pop("cmd") == "quit":
                break
            _say(await drive(sim.state.exchange, FillOrder(**command), stamps))


# -- the parent --------------------------------------------------------------------------------


class FillSim:
    """The child above in a subprocess; ``async with`` runs it (see the module docstring)."""

    def __init__(self, key: BenchKey, seed: int = 0, start_timeout_s: float = 30.0) -> None:
        self._key = key
        self._seed = seed
        self._timeout = start_timeout_s
        self._proc: asyncio.subprocess.Process | None = None
        self._log: Path | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the simulator is not running")
        return self._proc.pid

    async def _ask(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        await proc.stdin.drain()
        line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
        if not line:
            tail = self._log.read_text(errors="replace")[-4000:] if self._log else ""
            raise RuntimeError(f"the fill simulator exited:\n{tail}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the fill simulator: {answer['error']}")
        return answer

    async def fills(self, order: FillOrder, timeout_s: float = 600.0) -> dict[str, Any]:
        """Have the house make the trades; returns once all are made (not yet delivered)."""
        return await self._ask({"cmd": "fills", **asdict(order)}, timeout_s)

    async def __aenter__(self) -> Self:
        fd, name = tempfile.mkstemp(prefix="kalshi-bench-fillsim-", suffix=".log")
        os.close(fd)
        self._log = Path(name)
        with self._log.open("wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                SCRIPT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                limit=_LINE_LIMIT,
            )
        try:
            hello = {
                "key_id": self._key.key_id,
                "public_pem": self._key.public_pem.decode(),
                "seed": self._seed,
            }
            self.url = (await self._ask(hello, self._timeout))["url"]
        except BaseException:
            await self._stop()
            raise
        return self

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None and not proc.stdin.is_closing():
                with contextlib.suppress(ConnectionError):
                    proc.stdin.write(b'{"cmd": "quit"}\n')
                    proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()


if __name__ == "__main__":
    run_on(child(), "uvloop")
