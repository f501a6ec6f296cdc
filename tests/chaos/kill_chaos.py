"""Chaos for the kill switch: a router that follows its orders holds hundreds of them resting
across several tickers while a bot keeps creating, crossing, cancelling, amending and decreasing
(``orders_chaos.Workload``), the simulator faults REST writes and reads (resets, timeouts, 503
and 500, 429 storms) and the WebSocket; at a moment drawn from the seed, ``router.kill``. Then:

- the simulator's books (its engine, not REST) hold no resting order of ours, when the kill
  returns and again once everything in flight has settled (nothing landed late);
- no create request was written after the halt began (``create_batch`` is stamped);
- every create submitted after the halt was refused ``risk.halted``; every intent has exactly
  one outcome, and each create's agrees with the books;
- the report says done, and its counts add up with what the engine saw (cancel-all run, or
  failed and the orders cancelled one by one);
- after ``resume()`` the tracker holds no open order and creates are accepted again.

Problems are collected, not asserted, so that a run reports all it found.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kalshi_router.config import Config
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Cancelled, Closed, Outcome, Rejected, Unknown
from kalshi_router.risk.kill import KillReport
from kalshi_router.router import OrderRouter
from kalshi_router.sim import FaultConfig, SimConfig
from kalshi_router.sim.book import Exchange
from kalshi_router.sim.config import ORDER_WRITE_PATHS
from kalshi_router.sim.events import Event, OrderChanged
from kalshi_router.wire.reply import BatchReply
from tests.chaos.chaos import count_faults
from tests.chaos.orders_chaos import HOUSE, ORDERS, ROUTER, WS_FAULTS, Side, Workload
from tests.integration.conftest import KEY_ID, make_signer, running_sim
from tests.observers import OutcomeListener

READ_PATHS = ("GET /portfolio/orders", "GET /portfolio/orders/{order_id}", "GET /portfolio/fills")
# About one request in five goes wrong, writes and reads alike; half of those may have been
# processed (500, reset or timeout after), and a rare 429 storm holds every one back a while.
REST_FAULTS = FaultConfig(
    reset_before_rate=0.04,
    reset_after_rate=0.04,
    error_503_rate=0.04,
    error_500_rate=0.04,
    timeout_before_rate=0.02,
    timeout_after_rate=0.02,
    timeout_s=0.3,
    storm_429_rate=0.01,
    storm_429_s=0.15,
    ws=WS_FAULTS,
    paths=[*ORDER_WRITE_PATHS, *READ_PATHS],
)
# Kalshi's cancel-all refused every time, never processed (the per-order path must do all the
# work); the socket still misbehaves.
CANCEL_ALL_FAILS = FaultConfig(
    reset_before_rate=0.5,
    error_503_rate=0.5,
    ws=WS_FAULTS,
    paths=["DELETE /portfolio/events/orders"],
)
# A budget the bot can keep busy without waiting on it for long: 400 creates a second.
WRITE_BUDGET = 4000
PLACE_CHUNK = 200
KILL_TIMEOUT_S = 20.0
PROBES = 3


@dataclass(frozen=True)
class Mode:
    resting: int
    """Orders placed (faults off) before the load starts."""
    kill_after_s: tuple[float, float]
    """The load runs, faults on, for a time drawn from this range before the kill."""
    after_kill_s: float = 0.2
    """The load goes on this long after the kill returns (its creates must be refused)."""


FAST = Mode(resting=300, kill_after_s=(0.3, 1.0))
LONG = Mode(resting=1000, kill_after_s=(2.0, 10.0), after_kill_s=2.0)


@dataclass
class KillRecord:
    seed: int
    faults_name: str
    resting_at_kill: int = 0
    report: KillReport | None = None
    cancel_all_ran: int = 0
    by_cancel_all: int = 0
    creates_after_halt: int = 0
    refused_after_halt: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        r = self.report
        kill = (
            "no report"
            if r is None
            else (
                f"done {r.done} in {r.seconds:.3f}s, cancel-all {r.cancel_all}, "
                f"{r.cancels_sent} one by one ({r.cancels_confirmed} confirmed), "
                f"{r.creates_closed} queued creates closed, {r.rounds} rounds"
            )
        )
        return (
            f"seed {self.seed} ({self.faults_name}): {self.resting_at_kill} resting at the kill "
            f"({self.by_cancel_all} taken by cancel-all); {kill}; {self.refused_after_halt} "
            f"creates refused after the halt; outcomes {dict(self.outcomes)}; faults "
            f"{dict(self.faults)}; problems: {len(self.problems)}"
        )


class Settled(OutcomeListener):
    """A router observer: how many outcomes each create's client_order_id got."""

    def __init__(self) -> None:
        self.creates: Counter[str] = Counter()

    def settled(self, kind: str, outcome: Outcome, seconds: float) -> None:
        if kind == "create":
            self.creates[getattr(outcome, "client_order_id", None) or "?"] += 1


class Cancellations:
    """An engine observer: our orders cancelled by a request (cancel, cancel-all), by id."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def __call__(self, event: Event) -> None:
        if (
            isinstance(event, OrderChanged)
            and event.reason is None
            and event.order.user_id == KEY_ID
            and event.order.status == "canceled"
        ):
            self.ids.add(event.order.order_id)


def ours_resting(exchange: Exchange) -> list[str]:
    return [o.order_id for o in exchange.orders(KEY_ID, status="resting")]


def count_cancel_all(exchange: Exchange, into: list[int]) -> None:
    """Record how many orders each cancel-all the engine carries out takes."""
    cancel_all = exchange.cancel_all

    def counted(user_id: str, subaccount: int | None = None) -> int:
        taken = cancel_all(user_id, subaccount)
        into.append(taken)
        return taken

    exchange.cancel_all = counted  # type: ignore[method-assign]


def stamp_creates(router: OrderRouter, into: list[float]) -> None:
    """Record when each create request is written (``create_batch`` called)."""
    create_batch = router._client.create_batch

    async def stamped(intents: Any) -> BatchReply:
        into.append(time.monotonic())
        return await create_batch(intents)

    router._client.create_batch = stamped  # type: ignore[method-assign]


async def run(seed: int, mode: Mode, faults: FaultConfig, faults_name: str) -> KillRecord:
    record = KillRecord(seed, faults_name)
    bad = record.problems
    rng = random.Random(seed)
    config = SimConfig(
        tier="premier", seed=seed, write_refill=WRITE_BUDGET, write_capacity=WRITE_BUDGET
    )
    async with running_sim(config) as sim:
        exchange = sim.state.exchange
        cancel_alls: list[int] = []
        count_cancel_all(exchange, cancel_alls)
        cancellations = Cancellations()
        exchange.observe(cancellations)
        settled = Settled()
        router = OrderRouter.connect(
            Config(router=ROUTER, orders=ORDERS), make_signer(), sim.url, observers=[settled]
        )
        async with router:
            writes: list[float] = []
            stamp_creates(router, writes)

            def cross(ticker: str, side: Side, price: int, qty: int) -> None:
                exchange.seed(ticker, HOUSE, side, price, qty)

            work = Workload(router, cross)
            work.seed(seed)
            # In chunks well inside the budget, so that none waits past its deadline.
            for chunk in range(0, mode.resting, PLACE_CHUNK):
                for _ in range(min(PLACE_CHUNK, mode.resting - chunk)):
                    work.create_resting()
                await asyncio.gather(*work.creates[chunk:])
            placed = [f.result() for f in work.creates]
            if not all(isinstance(o, Accepted) for o in placed):
                bad.append(f"placing with faults off: {Counter(type(o).__name__ for o in placed)}")
            sim.state.faults.configure(faults)
            stop = asyncio.Event()
            loader = asyncio.create_task(_load(work, stop))
            await asyncio.sleep(rng.uniform(*mode.kill_after_s))

            record.resting_at_kill = len(ours_resting(exchange))
            before_kill = len(work.creates)
            cancelled_before = set(cancellations.ids)
            halted_at = time.monotonic()
            # The halt happens as the coroutine starts, before the load's task runs again.
            report = await router.kill(f"chaos seed {seed}", timeout_s=KILL_TIMEOUT_S)
            record.report = report
            left = ours_resting(exchange)
            if left:
                bad.append(f"{len(left)} of ours resting when kill returned: {left[:5]}")
            cancelled_in_kill = cancellations.ids - cancelled_before

            await asyncio.sleep(mode.after_kill_s)
            stop.set()
            await loader
            sim.state.faults.configure(FaultConfig())
            everything = [*work.creates, *work.futures]
            await asyncio.wait_for(asyncio.gather(*everything, return_exceptions=True), 30)
            record.creates_after_halt = sum(t > halted_at for t in writes)
            if record.creates_after_halt:
                bad.append(f"{record.creates_after_halt} create requests written after the halt")
            _check_outcomes(record, router, work, settled, exchange, before_kill)
            record.cancel_all_ran = len(cancel_alls)
            record.by_cancel_all = sum(cancel_alls)
            _check_report(record, report, work, cancelled_in_kill)
            # Everything in flight has settled: nothing of ours landed late.
            if late := ours_resting(exchange):
                bad.append(f"{len(late)} of ours resting after everything settled: {late[:5]}")
            record.faults = count_faults(sim.state.stats.as_json(), 0)
            del record.faults["restart"]
            await _resume_and_probe(record, router, work)
    return record


async def _load(work: Workload, stop: asyncio.Event) -> None:
    while not stop.is_set():
        work.step()
        await asyncio.sleep(0.002)


def _check_outcomes(
    record: KillRecord,
    router: OrderRouter,
    work: Workload,
    settled: Settled,
    exchange: Exchange,
    before_kill: int,
) -> None:
    """One outcome each; creates after the halt refused; each create's outcome agrees with the
    books."""
    bad = record.problems
    if router.crashed is not None:
        bad.append(f"the router crashed: {router.crashed!r}")
    for future in [*work.creates, *work.futures]:
        if not future.done() or future.cancelled() or future.exception() is not None:
            bad.append(f"an intent without an outcome: {future!r}")
    creates: list[Outcome] = [f.result() for f in work.creates if _has_result(f)]
    record.outcomes = Counter(type(o).__name__.lower() for o in creates)
    for outcome in creates:
        coid = getattr(outcome, "client_order_id", None) or "?"
        if settled.creates[coid] != 1:
            bad.append(f"{coid}: {settled.creates[coid]} outcomes reported")
        order = exchange.find_client_order_id(KEY_ID, coid)
        if isinstance(outcome, Accepted):
            if order is None or order.order_id != outcome.order_id:
                bad.append(f"{coid}: accepted as {outcome.order_id}, the exchange has {order}")
        elif not isinstance(outcome, Unknown) and order is not None:
            bad.append(f"{coid}: {type(outcome).__name__} but at the exchange ({order.status})")
    after = [f.result() for f in work.creates[before_kill:] if _has_result(f)]
    record.refused_after_halt = sum(
        isinstance(o, Rejected) and o.code == "risk.halted" for o in after
    )
    if record.refused_after_halt != len(after):
        bad.append(f"creates after the halt: {Counter(type(o).__name__ for o in after)}")


def _has_result(future: asyncio.Future[Any]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def _check_report(
    record: KillRecord, report: KillReport, work: Workload, cancelled_in_kill: set[str]
) -> None:
    bad = record.problems
    if not report.done or report.still_resting:
        bad.append(f"the kill switch did not finish: {report}")
    if not 0 <= report.cancels_confirmed <= report.cancels_sent:
        bad.append(f"confirmed {report.cancels_confirmed} of {report.cancels_sent} sent")
    by_halt = Counter(
        type(o).__name__
        for o in (f.result() for f in work.creates if _has_result(f))
        if isinstance(o, Closed | Unknown) and o.reason.startswith("halted by the kill switch")
    )
    # Queued creates the halt settled: closed if never sent; unknown if sent before and
    # waiting to be resent, which the report counts as closed too (tests/test_controls.py).
    closed, unknown = by_halt["Closed"], by_halt["Unknown"]
    if not closed <= report.creates_closed <= closed + unknown:
        bad.append(
            f"the halt closed {closed} creates (and settled {unknown} unknown), the report "
            f"says {report.creates_closed}"
        )
    ran = record.cancel_all_ran
    if report.cancel_all == "sent" and ran != 1:
        bad.append(f"cancel-all reported sent, the engine ran it {ran} times")
    if report.cancel_all != "sent" and ran == 0:
        # Not processed: every order that went was cancelled by a request of ours, one by one
        # (the kill's own, or the bot's that the kill joined or that came first).
        by_bot = {
            f.result().order_id
            for f in work.futures
            if _has_result(f) and isinstance(f.result(), Cancelled)
        }
        by_kill = cancelled_in_kill - by_bot
        if record.resting_at_kill and not by_kill:
            bad.append("cancel-all failed but no order was cancelled one by one")
        if len(by_kill) > report.cancels_sent:
            bad.append(f"{len(by_kill)} cancelled by the kill, it sent {report.cancels_sent}")


async def _resume_and_probe(record: KillRecord, router: OrderRouter, work: Workload) -> None:
    bad = record.problems
    await router.resume()
    if still := router.orders.open_orders():
        bad.append(f"the tracker still holds {len(still)} open orders after resume")
    tickers = sorted({i.ticker for i, _ in work.accepted}) or ["KXKILLCHAOS-26DEC31-T0"]
    probes = [OrderIntent.bid(tickers[n % len(tickers)], "0.05", 1) for n in range(PROBES)]
    outcomes = await asyncio.gather(*(router.place(p) for p in probes))
    if not all(isinstance(o, Accepted) for o in outcomes):
        bad.append(f"after resume: {outcomes}")
