"""One of several routers sharing one account, in a process of its own: ``_shared_budget``'s
child (``python benchmarks/_shared_child.py``), driven by one JSON line each way (``_sim_child``).

    hello   {"config": PATH, "key": key_spec, "seed": S, "tickers": [...], "outstanding": N,
             "cancel_every_s": X (None: no cancels), "warmup_s": W}
            -> {"url": base_url, "pid": PID} once its router (``load_config(PATH)``) has started
    go      -> {"going": t}: its bot keeps N creates unsettled (resting bids far below the
            house's, so none fills), and every X s on average cancels one of its resting orders
    stop    -> the report: outcomes, ``router.stats()``'s 429s, the cancels' waits, a timeline,
            the loop's worst lag after W s and the CPU used since go
    quit    -> exits (after closing the router, if it is still open)

Times are ``time.monotonic()``: CLOCK_MONOTONIC, one clock for every process of a Linux
machine, the simulator's buckets included (its ``clock_s``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
from _keys import child_key
from _runner import run_on
from _sim_child import say, stdin_lines

from kalshi_router.config import load_config
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Expired, Outcome, Rejected, outcome_name
from kalshi_router.redis_budget.script import Answer
from kalshi_router.router import OrderRouter

SCRIPT = str(Path(__file__).resolve())
LAG_TICK_S = 0.01
"""How often the loop's lag is sampled: a late tick is a loop too busy (or a CPU too shared)."""


class Waits:
    """A router observer: each cancel's queue wait (submit to sent) and token wait, and every
    batch's token wait by kind."""

    def __init__(self) -> None:
        self.cancel_queue: list[float] = []
        self.limiter: dict[str, list[float]] = {"create": [], "cancel": []}

    def sent(self, kind: str, size: int, queue_waits: Sequence[float], limiter_wait: float) -> None:
        if kind == "cancel":
            self.cancel_queue.extend(queue_waits)
        self.limiter.setdefault(kind, []).append(limiter_wait)

    def answered(self, kind: str, size: int, round_trip: float) -> None: ...

    def rate_limited(self) -> None: ...

    def retried(self, count: int) -> None: ...

    def reconciling(self, count: int) -> None: ...

    def settled(self, kind: str, outcome: Outcome, seconds: float) -> None: ...


class Bookings:
    """A probe, for a shared budget only (as bench_kill stamps the client's calls): the wait
    Redis gave each cancel's booking, read from the script's reply where ``RedisBudget`` calls
    it. 0 is "send now": nothing booked ahead of the cancel, another host's creates included.
    The kind is the spend's that made the call (a context variable: the call may run in a task
    of the spend's own)."""

    def __init__(self, budget: Any) -> None:
        self.cancel_waits_us: list[int] = []
        kind: ContextVar[str] = ContextVar("kind", default="")
        spend, script = budget.spend, budget._script

        async def spend_as(spent: str, amount: int) -> None:
            token = kind.set(spent)
            try:
                await spend(spent, amount)
            finally:
                kind.reset(token)

        async def booking(**call: Any) -> Any:
            reply = await script(**call)
            if call["args"][0] == "reserve" and kind.get() == "cancel":
                self.cancel_waits_us.append(Answer.of(reply).wait_us)
            return reply

        budget.spend, budget._script = spend_as, booking


class Bot:
    """Creates kept unsettled ``outstanding`` at a time, and cancels of its own resting
    orders; every outcome stamped."""

    def __init__(self, router: OrderRouter, hello: dict[str, Any]) -> None:
        self.router = router
        self.rng = random.Random(hello["seed"])
        self.tickers: list[str] = hello["tickers"]
        self.room = asyncio.Semaphore(hello["outstanding"])
        self.cancel_every_s: float | None = hello["cancel_every_s"]
        self.resting: list[tuple[str, str]] = []
        self.outcomes: dict[str, Counter[str]] = {"create": Counter(), "cancel": Counter()}
        """Until the stop; what the router's close settled after it is in ``at_close``."""
        self.at_close: Counter[str] = Counter()
        self.stopped = False
        self.details: Counter[str] = Counter()
        """Rejections by code, expiries by reason."""
        self.timeline: list[tuple[float, str, str]] = []
        self.cancel_outcome: list[float] = []

    def _settled(
        self, kind: str, ticker: str, submitted: float, future: asyncio.Future[Outcome]
    ) -> None:
        now = time.monotonic()
        if kind == "create":
            self.room.release()
        name = "future cancelled" if future.cancelled() else "failed"
        if not future.cancelled() and future.exception() is None:
            outcome = future.result()
            name = outcome_name(outcome)
            if isinstance(outcome, Accepted) and kind == "create":
                self.resting.append((outcome.order_id, ticker))
            elif isinstance(outcome, Rejected):
                self.details[f"{kind} rejected: {outcome.code}"] += 1
            elif isinstance(outcome, Expired):
                self.details[f"{kind} expired: {outcome.reason}"] += 1
        if self.stopped:
            self.at_close[f"{kind} {name}"] += 1
            return
        self.outcomes[kind][name] += 1
        self.timeline.append((now, kind, name))
        if kind == "cancel":
            self.cancel_outcome.append(now - submitted)

    async def create(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.room.acquire()
            ticker = self.rng.choice(self.tickers)
            future = self.router.submit(OrderIntent.bid(ticker, self.rng.randint(1, 30), 1))
            future.add_done_callback(partial(self._settled, "create", ticker, time.monotonic()))

    async def cancel(self, stop: asyncio.Event) -> None:
        if self.cancel_every_s is None:
            return
        while not stop.is_set():
            await asyncio.sleep(self.cancel_every_s * self.rng.uniform(0.5, 1.5))
            if not self.resting:
                continue
            order_id, ticker = self.resting.pop(self.rng.randrange(len(self.resting)))
            future = self.router.cancel(order_id, ticker)
            future.add_done_callback(partial(self._settled, "cancel", ticker, time.monotonic()))


async def lag(stop: asyncio.Event, worst: list[float], after_s: float) -> None:
    """The loop's worst lateness at a ``LAG_TICK_S`` tick, from ``after_s`` on (the start,
    when the bot queues a second of creates at once, is not the steady state)."""
    await asyncio.sleep(after_s)
    while not stop.is_set():
        due = time.monotonic() + LAG_TICK_S
        await asyncio.sleep(LAG_TICK_S)
        worst[0] = max(worst[0], time.monotonic() - due)


def report(
    router: OrderRouter,
    bot: Bot,
    waits: Waits,
    bookings: Bookings | None,
    cpu_s: float,
    lag_s: float,
) -> dict[str, Any]:
    stats = router.stats()
    return {
        "pid": os.getpid(),
        "outcomes": {kind: dict(c) for kind, c in bot.outcomes.items()},
        "at_close": dict(bot.at_close),
        "details": dict(bot.details),
        "http_429": stats.http_429,
        "retries": stats.retries,
        "tokens_spent": stats.tokens_spent,
        "batches": stats.batches_sent,
        "cancel_queue_wait_s": waits.cancel_queue,
        "cancel_outcome_s": bot.cancel_outcome,
        "limiter_wait_s": waits.limiter,
        "cpu_s": cpu_s,
        "loop_lag_max_ms": lag_s * 1e3,
        "shared_budget": msgspec.to_builtins(stats.shared_budget),
        "cancel_booked_wait_us": None if bookings is None else bookings.cancel_waits_us,
        "timeline": bot.timeline,
    }


async def serve(
    router: OrderRouter, waits: Waits, lines: asyncio.StreamReader, hello: dict[str, Any]
) -> None:
    """Answer the parent's commands until it says quit (or goes away)."""
    bookings = Bookings(router.budget) if router.stats().shared_budget is not None else None
    say({"url": hello["url"], "pid": os.getpid()})
    bot, stop, tasks = Bot(router, hello), asyncio.Event(), []
    worst, cpu0 = [0.0], 0.0
    while line := await lines.readline():
        cmd = json.loads(line)["cmd"]
        if cmd == "go":
            cpu0 = time.process_time()
            tasks = [asyncio.create_task(c(stop)) for c in (bot.create, bot.cancel)]
            tasks.append(asyncio.create_task(lag(stop, worst, hello["warmup_s"])))
            say({"going": time.monotonic()})
        elif cmd == "stop":
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            cpu_s = time.process_time() - cpu0
            bot.stopped = True
            # The creates still queued are closed, not sent: the run is over.
            await router.aclose(drain_timeout=0)
            say(report(router, bot, waits, bookings, cpu_s, worst[0]))
        elif cmd == "quit":
            return


async def main() -> None:
    lines = await stdin_lines()
    hello: dict[str, Any] = json.loads(await lines.readline())
    config = load_config(hello["config"])
    waits = Waits()
    router = OrderRouter.connect(config, child_key(hello["key"]).signer(), observers=[waits])
    try:
        await router.start()
        await serve(router, waits, lines, hello | {"url": config.exchange.base_url})
    finally:
        await router.aclose(drain_timeout=0)


if __name__ == "__main__":
    run_on(main(), "uvloop")
