"""The gate's promise, as properties: whatever the interleaving of admissions, outcomes and the
tracker's updates (accepts, partial fills, cancels, each learnt late and out of order), what the
account may hold at worst on one ticker (position + resting orders + creates not yet answered)
never exceeds max_position on either side, at every step; the gate never sees less than that;
a refused intent changes nothing; and once everything has ended, nothing is left reserved.

The exchange is modelled here (the truth); the tracker is the real Ledger, fed the exchange's
frames in any order, and its updates go to the gate's Exposure as the router will send them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.intent import OrderIntent
from kalshi_router.orders.ledger import Ledger
from kalshi_router.orders.updates import OrderUpdate
from kalshi_router.outcome import Accepted, Closed, Expired, Outcome, Rejected, Unknown
from kalshi_router.risk import Exposure, RiskConfig, RiskGate
from tests.orders.frames import fill, user_order

D = Decimal
T = "KXHIGHNY-26DEC31-T60"
LIMIT = D(10)
Side = Literal["bid", "ask"]


@dataclass
class Live:
    """An order at the exchange."""

    intent: OrderIntent
    order_id: str
    filled: Decimal
    remaining: Decimal


class World:
    def __init__(self, *, open_orders: int | None = None) -> None:
        config = RiskConfig(max_position=LIMIT, max_open_orders=open_orders)
        self.gate = RiskGate(config, Exposure(), lambda: 1_000_000.0)
        self.ledger = Ledger()
        self.pending: list[OrderIntent] = []
        self.live: list[Live] = []
        self.position = D(0)
        self.frames: list[Callable[[], list[OrderUpdate]]] = []
        self.trades = 0

    # --- the truth ---

    def truth(self) -> tuple[Decimal, Decimal]:
        orders = [(o.intent.side, o.remaining) for o in self.live]
        orders += [(i.side, i.count) for i in self.pending]
        bids = sum((n for side, n in orders if side == "bid"), D(0))
        asks = sum((n for side, n in orders if side == "ask"), D(0))
        return self.position + bids, asks - self.position

    def seen(self) -> tuple[Decimal, Decimal]:
        exposure = self.gate.exposure
        return exposure.worst_long(T), exposure.worst_short(T)

    def snapshot(self) -> tuple[object, ...]:
        e = self.gate.exposure
        return (
            e.position(T),
            e.bids(T),
            e.asks(T),
            e.open_orders(T),
            e.bought_today(0),
            e.reserved_creates(),
            e.orders(),
        )

    def check(self) -> None:
        long, short = self.truth()
        seen_long, seen_short = self.seen()
        assert long <= seen_long <= LIMIT, (long, seen_long)
        assert short <= seen_short <= LIMIT, (short, seen_short)

    # --- steps ---

    def create(self, side: Side, count: Decimal, cents: int) -> None:
        make = OrderIntent.bid if side == "bid" else OrderIntent.ask
        intent = make(T, price=cents, count=count)
        before = self.snapshot()
        refusal = self.gate.check_create(intent)
        if refusal is None:
            self.pending.append(intent)
            if self.gate.state == "reducing":
                seen_long, seen_short = self.seen()
                assert (seen_long if side == "bid" else seen_short) <= 0
        else:
            assert refusal.code in ("risk.max_position", "risk.reducing", "risk.max_open_orders")
            assert self.snapshot() == before

    def outcome(self, index: int, kind: str, filled_now: Decimal) -> None:
        if not self.pending:
            return
        intent = self.pending.pop(index % len(self.pending))
        key = intent.client_order_id
        if kind in ("rejected", "expired", "closed"):
            failures: dict[str, Outcome] = {
                "rejected": Rejected(code="x", message="no", client_order_id=key),
                "expired": Expired(reason="late", client_order_id=key),
                "closed": Closed(reason="shut", client_order_id=key),
            }
            self.gate.settled(key, failures[kind])
            return
        if kind == "unknown_absent":
            self.gate.settled(key, Unknown(reason="lost", client_order_id=key))
            proof = OrderUpdate(
                order_id=None,
                client_order_id=key,
                ticker=T,
                state="reconciled_absent",
                source="rest",
                resolved=Closed(reason="never placed", client_order_id=key),
            )
            self.frames.append(lambda: [proof])
            return
        filled = min(filled_now, intent.count)
        order = Live(intent, f"o-{key}", D(0), intent.count)
        self.live.append(order)
        if kind == "accepted":
            accepted = Accepted(
                client_order_id=key,
                order_id=order.order_id,
                fill_count=filled,
                remaining_count=intent.count - filled,
            )
            self.gate.settled(key, accepted)
            self.frames.append(
                lambda: self.ledger.expect(
                    order_id=order.order_id,
                    client_order_id=key,
                    ticker=T,
                    book_side=intent.side,
                    yes_price=intent.price,
                    initial=intent.count,
                    filled=filled,
                    remaining=intent.count - filled,
                )
            )
        else:  # unknown, but it landed: the tracker finds it on the feed
            self.gate.settled(key, Unknown(reason="lost", client_order_id=key))
        self.frame(order, "resting")
        if filled:
            self.fill(order, filled)

    def frame(self, order: Live, status: str) -> None:
        view = user_order(
            status,
            str(order.filled),
            str(order.remaining),
            order_id=order.order_id,
            client_order_id=order.intent.client_order_id,
            ticker=T,
            side=order.intent.side,
            initial=str(order.intent.count),
            price=str(order.intent.price),
        )
        self.frames.append(lambda: self.ledger.on_user_order(view))

    def fill(self, order: Live, amount: Decimal) -> None:
        amount = min(amount, order.remaining)
        if not amount:
            return
        self.trades += 1
        event = fill(
            f"t-{self.trades}",
            str(amount),
            str(order.intent.price),
            order_id=order.order_id,
            client_order_id=order.intent.client_order_id,
            ticker=T,
            side=order.intent.side,
        )
        order.filled += amount
        order.remaining -= amount
        self.position += amount if order.intent.side == "bid" else -amount
        self.frames.append(lambda: self.ledger.on_fill(event))
        if not order.remaining:
            self.live.remove(order)
            self.frame(order, "executed")

    def fill_live(self, index: int, amount: Decimal) -> None:
        if self.live:
            self.fill(self.live[index % len(self.live)], amount)

    def cancel(self, index: int) -> None:
        if self.live:
            order = self.live.pop(index % len(self.live))
            order.remaining = D(0)
            self.frame(order, "canceled")

    def deliver(self, index: int) -> None:
        if self.frames:
            for update in self.frames.pop(index % len(self.frames))():
                self.gate.exposure.on_update(update)

    def end(self) -> None:
        """Every create answered (refused), every order cancelled, every frame delivered."""
        for intent in list(self.pending):
            self.gate.settled(intent.client_order_id, Rejected(code="x", message="no"))
        self.pending.clear()
        while self.live:
            self.cancel(0)
        while self.frames:
            self.deliver(0)


# Whole contracts mostly, and fractional ones (to Kalshi's step of 0.01) now and then.
counts = st.one_of(
    st.integers(min_value=1, max_value=8).map(D),
    st.integers(min_value=1, max_value=800).map(lambda hundredths: D(hundredths).scaleb(-2)),
)
create = st.tuples(
    st.just("create"),
    st.sampled_from(["bid", "ask"]),
    counts,
    st.integers(min_value=1, max_value=99),
)
outcome = st.tuples(
    st.just("outcome"),
    st.integers(0, 50),
    st.sampled_from(
        [
            *("accepted", "accepted", "accepted"),
            *("rejected", "expired", "closed", "unknown", "unknown_absent"),
        ]
    ),
    counts,
)
deliver = st.tuples(st.just("deliver"), st.integers(0, 50))
# Creates, outcomes and deliveries drawn more often than the rest, so that examples fill the
# room (and are refused at the limit) and fill orders, not only queue them.
steps = st.lists(
    st.one_of(
        create,
        create,
        create,
        outcome,
        outcome,
        st.tuples(st.just("fill"), st.integers(0, 50), counts),
        st.tuples(st.just("cancel"), st.integers(0, 50)),
        deliver,
        deliver,
        st.tuples(st.just("state"), st.sampled_from(["active", "active", "active", "reducing"])),
    ),
    min_size=10,
    max_size=100,
)


def run(world: World, plan: list[tuple[object, ...]]) -> None:
    for step in plan:
        name, *args = step
        if name == "create":
            world.create(*args)  # type: ignore[arg-type]
        elif name == "outcome":
            world.outcome(*args)  # type: ignore[arg-type]
        elif name == "fill":
            world.fill_live(*args)  # type: ignore[arg-type]
        elif name == "cancel":
            world.cancel(*args)  # type: ignore[arg-type]
        elif name == "deliver":
            world.deliver(*args)  # type: ignore[arg-type]
        else:
            world.gate.set_state(args[0])  # type: ignore[arg-type]
        world.check()
    world.end()
    world.check()
    exposure = world.gate.exposure
    assert exposure.position(T) == world.position
    assert exposure.bids(T) == 0
    assert exposure.asks(T) == 0
    assert exposure.open_orders(T) == 0
    assert exposure.orders() == 0
    assert exposure.reserved_creates() == 0


@given(steps)
def test_worst_case_never_exceeds_max_position(plan: list[tuple[object, ...]]) -> None:
    run(World(), plan)


@given(steps)
def test_with_max_open_orders_too(plan: list[tuple[object, ...]]) -> None:
    world = World(open_orders=3)
    run(world, plan)


def test_a_full_book_is_refused_then_has_room_again() -> None:
    world = World()
    plan: list[tuple[object, ...]] = [
        ("create", "bid", D(6), 40),
        ("create", "bid", D(4), 40),  # 10: the edge
        ("create", "bid", D(1), 40),  # refused
        ("outcome", 0, "accepted", D(3)),  # the 6: 3 fill at once
        *[("deliver", 0)] * 4,
        ("create", "bid", D(1), 40),  # position 3 + resting 3 + pending 4: refused
        ("cancel", 0),
        ("deliver", 0),
        ("create", "bid", D(1), 40),  # the cancelled 3 are room again
    ]
    run(world, plan)
    assert world.gate.figures().refusals == {"risk.max_position": 2}
    assert world.position == 3
