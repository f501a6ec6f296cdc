"""Chaos for the order tracker: an embedded router that follows its orders places, crosses,
cancels, amends and decreases orders while the simulator drops, stalls, delays and reorders
WebSocket frames, drops single frames, answers creates after their frames, and faults REST
writes. Then faults off, one reconciliation, and the router's view is checked against the
simulator's own books: for every order its state, filled count and fees; every fill seen exactly
once; positions; no open order the exchange does not hold; every unknown create resolved.

The truth is read from the simulator's engine (its orders, and an observer of its trades), not
through the REST or WebSocket code under test.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, TypeAlias

from kalshi_router.config import Config, OrdersConfig, RouterConfig
from kalshi_router.errors import IntentError
from kalshi_router.intent import AmendIntent, DecreaseIntent, OrderIntent
from kalshi_router.orders.updates import OrderUpdate
from kalshi_router.outcome import Accepted, Outcome, Unknown
from kalshi_router.router import OrderRouter
from kalshi_router.sim import FaultConfig, SimConfig
from kalshi_router.sim.config import ORDER_WRITE_PATHS, WsFaultConfig
from kalshi_router.sim.events import Event, Filled
from kalshi_router.sim.render import count_str, money_str
from tests.integration.conftest import make_signer, running_sim

TICKERS = tuple(f"KXORDCHAOS-26DEC31-T{n}" for n in range(4))
HOUSE = "house"
WS_FAULTS = WsFaultConfig(
    drop_connection_rate=0.01,
    drop_frame_rate=0.05,
    stall_rate=0.002,
    stall_s=0.3,
    delay_rate=0.2,
    delay_min_ms=1.0,
    delay_max_ms=60.0,
    late_create_answer_rate=0.2,
    late_create_answer_ms=30.0,
)
# Writes lost after the exchange took them: the router's lookups (and the tracker) must tell.
# Reads fail too: lookups of ambiguous writes then run out of time (unknown outcomes, which
# the tracker must resolve later), and the tracker's own sweeps fail and are retried.
REST_FAULTS = FaultConfig(
    reset_after_rate=0.2,
    timeout_after_rate=0.05,
    timeout_s=0.3,
    ws=WS_FAULTS,
    paths=[*ORDER_WRITE_PATHS, "GET /portfolio/orders", "GET /portfolio/fills"],
)
# Then an outage longer than a deadline: every write lands but its answer is lost, every read
# and every frame fails, so the creates sent then settle unknown and must be resolved later.
OUTAGE = FaultConfig(
    reset_after_rate=1.0,
    ws=WsFaultConfig(drop_frame_rate=1.0),
    paths=REST_FAULTS.paths,
)
OUTAGE_CREATES = 10
ROUTER = RouterConfig(max_batch_size=10, deadline_s=1.0, backoff_base_s=0.01, backoff_cap_s=0.1)
ORDERS = OrdersConfig(
    track=True,
    reconcile_every_s=0.5,
    landing_grace_s=0.5,
    reconnect_base_s=0.01,
    reconnect_cap_s=0.1,
)
_STATE_OF = {"executed": "filled"}
Side: TypeAlias = Literal["bid", "ask"]
Cross: TypeAlias = Callable[[str, Side, int, int], None]


@dataclass
class Record:
    seed: int
    orders: int = 0
    fills: int = 0
    reconnects: int = 0
    sweeps: int = 0
    found_by_rest: int = 0
    unknown: int = 0
    resolved: int = 0
    ws: dict[str, int] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    def line(self) -> str:
        ws = ", ".join(f"{k} {v}" for k, v in sorted(self.ws.items()) if v)
        return (
            f"seed {self.seed}: {self.orders} orders, {self.fills} fills, {self.reconnects} "
            f"reconnects, {self.sweeps} sweeps ({self.found_by_rest} updates only REST "
            f"brought), {self.unknown} unknown -> {self.resolved} resolved; ws: {ws}; "
            f"mismatches: {len(self.mismatches)}"
        )


class Truth:
    """The simulator's trades for the router's user (the only one besides the house), as its
    engine made them."""

    def __init__(self) -> None:
        self.fills: dict[str, Filled] = {}
        self.user: str | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Filled) and event.order.user_id != HOUSE:
            key = f"{event.trade_id}:{event.order.order_id}"
            self.fills[key] = event


class Workload:
    """Random actions on the router's own orders, from one seeded stream."""

    def __init__(self, router: OrderRouter, sim_cross: Cross) -> None:
        self.router = router
        self.cross = sim_cross
        self.rng = random.Random(0)
        self.futures: list[asyncio.Future[Any]] = []
        self.creates: list[asyncio.Future[Any]] = []
        self.accepted: list[tuple[OrderIntent, Accepted]] = []
        self._pending: dict[OrderIntent, asyncio.Future[Any]] = {}

    def seed(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def settle(self) -> None:
        for intent, future in list(self._pending.items()):
            if future.done():
                del self._pending[intent]
                outcome = future.result()
                if isinstance(outcome, Accepted):
                    self.accepted.append((intent, outcome))

    def step(self) -> None:
        self.settle()
        roll = self.rng.random()
        ticker = self.rng.choice(TICKERS)
        if roll < 0.4 or not self.accepted:
            self.create_resting()
        elif roll < 0.5:
            # Takes the house's ask, or meets one of our own asks (self-trade prevention).
            self._create(OrderIntent.bid(ticker, price="0.60", count=self.rng.randint(1, 3)))
        else:
            self._act_on(roll, *self.rng.choice(self.accepted))

    def create_resting(self) -> None:
        ticker = self.rng.choice(TICKERS)
        count = self.rng.randint(1, 5)
        if self.rng.random() < 0.5:
            price = f"0.{self.rng.randint(36, 44)}"
            self._create(OrderIntent.bid(ticker, price=price, count=count))
        else:
            price = f"0.{self.rng.randint(56, 64)}"
            self._create(OrderIntent.ask(ticker, price=price, count=count))

    def _act_on(self, roll: float, intent: OrderIntent, accepted: Accepted) -> None:
        order_id, ticker = accepted.order_id, intent.ticker
        try:
            if roll < 0.7:
                # Someone trades against it: a maker fill (or several, through the book).
                price = int(intent.price * 10_000)
                opposite: Side = "ask" if intent.side == "bid" else "bid"
                self.cross(ticker, opposite, price, self.rng.randint(1, 3) * 100)
            elif roll < 0.82:
                self.futures.append(self.router.cancel(order_id, ticker))
            elif roll < 0.92:
                decrease = DecreaseIntent(order_id=order_id, ticker=ticker, reduce_by=Decimal(1))
                self.futures.append(self.router.decrease(decrease))
            else:
                step = Decimal("-0.01") if intent.side == "bid" else Decimal("0.01")
                amend = AmendIntent(
                    order_id=order_id,
                    ticker=ticker,
                    side=intent.side,
                    price=intent.price + step,
                    count=intent.count,
                    client_order_id=intent.client_order_id,
                )
                self.futures.append(self.router.amend(amend))
        except IntentError:
            pass  # that order already has a cancel or an amend pending: skip this turn

    def _create(self, intent: OrderIntent) -> None:
        future = self.router.submit(intent)
        self._pending[intent] = future
        self.creates.append(future)


async def run(seed: int, seconds: float) -> Record:
    record = Record(seed)
    updates: list[OrderUpdate] = []
    async with running_sim(SimConfig(tier="premier", seed=seed, faults=REST_FAULTS)) as sim:
        truth = Truth()
        exchange = sim.state.exchange
        exchange.observe(truth)
        config = Config(router=ROUTER, orders=ORDERS)
        async with OrderRouter.connect(config, make_signer(), sim.url) as router:
            stream = router.orders.updates()
            reader = asyncio.create_task(_collect(stream, updates))

            def cross(ticker: str, side: Side, price: int, qty: int) -> None:
                exchange.seed(ticker, HOUSE, side, price, qty)

            work = Workload(router, cross)
            work.seed(seed)
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                work.step()
                await asyncio.sleep(0.002)
            sim.state.faults.configure(OUTAGE)
            for _ in range(OUTAGE_CREATES):
                work.create_resting()
            await router.flush()
            sim.state.faults.configure(FaultConfig())
            await asyncio.gather(*work.futures, return_exceptions=True)
            # Past the landing grace, one sweep settles what the socket lost.
            await asyncio.sleep(ORDERS.landing_grace_s)
            await router.reconcile_orders()
            await asyncio.sleep(0.2)
            await router.reconcile_orders()
            outcomes: list[Outcome] = [f.result() for f in work.creates]
            truth.user = truth.user or _user(exchange.orders(), outcomes)
            _check(record, router, exchange.orders(), truth, updates, outcomes)
            tracker = router._tracker
            assert tracker is not None
            record.reconnects = tracker.stats.reconnects
            record.sweeps = tracker.stats.sweeps
            record.found_by_rest = tracker.stats.found_by_rest
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        record.ws = sim.state.stats.ws.as_json()
    return record


async def _collect(stream: Any, into: list[OrderUpdate]) -> None:
    async for update in stream:
        into.append(update)


def _user(orders: Any, outcomes: list[Outcome]) -> str | None:
    ours = {o.client_order_id for o in outcomes if isinstance(o, Accepted)}
    return next((o.user_id for o in orders if o.client_order_id in ours), None)


def _check(
    record: Record,
    router: OrderRouter,
    sim_orders: Any,
    truth: Truth,
    updates: list[OrderUpdate],
    outcomes: list[Outcome],
) -> None:
    bad = record.mismatches
    mine = [o for o in sim_orders if o.user_id == truth.user]
    record.orders = len(mine)
    for order in mine:
        view = router.orders.get(order.order_id)
        if view is None:
            bad.append(f"{order.order_id}: at the exchange, unknown to the router")
            continue
        want = _STATE_OF.get(order.status, order.status)
        if order.status == "resting":
            want = "partially_filled" if order.fill_count else "resting"
        got = {"expired": "canceled", "cancelled": "canceled"}.get(view.state, view.state)
        if got != want:
            bad.append(f"{order.order_id}: state {view.state}, exchange {order.status}")
        if view.filled != Decimal(count_str(order.fill_count)):
            bad.append(f"{order.order_id}: filled {view.filled}, exchange {order.fill_count}")
        fees = Decimal(money_str(order.taker_fees + order.maker_fees))
        if view.fees != fees:
            bad.append(f"{order.order_id}: fees {view.fees}, exchange {fees}")
    seen = Counter((u.fill.trade_id, u.fill.order_id) for u in updates if u.fill is not None)
    record.fills = len(truth.fills)
    for key, n in seen.items():
        if n != 1:
            bad.append(f"fill {key} seen {n} times")
    want_fills = {(f.trade_id, f.order.order_id) for f in truth.fills.values()}
    if set(seen) != want_fills:
        bad.append(
            f"fills: {len(want_fills - set(seen))} missed, {len(set(seen) - want_fills)} extra"
        )
    positions: dict[str, Decimal] = {}
    for fill in truth.fills.values():
        sign = 1 if fill.order.side == "bid" else -1
        positions[fill.order.ticker] = positions.get(
            fill.order.ticker, Decimal(0)
        ) + sign * Decimal(count_str(fill.qty))
    for ticker, position in positions.items():
        got_position = router.orders.positions().get(ticker)
        if got_position is None or got_position.position != position:
            bad.append(f"{ticker}: position {got_position}, exchange {position}")
    resting = {o.order_id for o in mine if o.status == "resting"}
    for view in router.orders.open_orders():
        if view.order_id not in resting:
            bad.append(
                f"{view.order_id}: open in the router ({view.state}), not resting at the exchange"
            )
    unknown = [o for o in outcomes if isinstance(o, Unknown)]
    record.unknown = len(unknown)
    resolved = {u.client_order_id for u in updates if u.resolved is not None}
    record.resolved = len(resolved)
    for outcome in unknown:
        if outcome.client_order_id not in resolved:
            bad.append(f"{outcome.client_order_id}: unknown, never resolved")
