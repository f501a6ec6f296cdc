"""The order tracker against the simulator: WebSocket updates, REST sweeps that find what the
socket lost, and unknown creates resolved later on the same key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from aiolimiter import AsyncLimiter

from kalshi_router import OrderIntent, OrderRouter
from kalshi_router.config import Config, OrdersConfig
from kalshi_router.errors import ConfigError
from kalshi_router.orders.feed import OrderFrame
from kalshi_router.orders.tracker import OrderTracker
from kalshi_router.orders.updates import OrderUpdate
from kalshi_router.outcome import Accepted, Closed, Outcome, Unknown
from kalshi_router.sim import SimConfig, SimServer
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.ws_models import FillFrame
from tests.integration.conftest import FAST_RETRIES, make_signer, running_sim
from tests.sim.conftest import wait_until

TICKER = "SIM-MKT"
# The sim's house book bids 0.45 and asks 0.55: a bid at 0.30 rests, one at 0.60 takes.
RESTS = "0.30"


class Journal:
    def __init__(self) -> None:
        self.resolved: list[tuple[str, str, Outcome]] = []

    def resolve_later(self, kind: str, key: str, outcome: Outcome) -> bool:
        self.resolved.append((kind, key, outcome))
        return True


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with running_sim(SimConfig(tier="premier")) as server:
        yield server


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[ExchangeClient]:
    transport = HttpTransport(sim.url, make_signer(), timeout_s=5.0, max_connections=4)
    yield ExchangeClient(transport, dialect_for("v2"))
    await transport.close()


def tracker_for(
    sim: SimServer, client: ExchangeClient, journal: Journal | None = None, **settings: float
) -> OrderTracker:
    config = OrdersConfig(
        track=True,
        reconcile_every_s=3600.0,
        reconnect_base_s=0.01,
        reconnect_cap_s=0.05,
        landing_grace_s=settings.get("landing_grace_s", 10.0),
    )
    return OrderTracker(client, sim.url, make_signer(), config, journal=journal)


async def started(tracker: OrderTracker) -> OrderTracker:
    await tracker.start(AsyncLimiter(1000, 1.0))
    return tracker


async def place(client: ExchangeClient, intent: OrderIntent) -> Accepted:
    reply = await client.create_batch([intent])
    outcome = reply.outcomes[intent.client_order_id]
    assert isinstance(outcome, Accepted), outcome
    return outcome


async def test_a_resting_order_then_a_maker_fill_reach_its_handle(
    sim: SimServer, client: ExchangeClient
) -> None:
    tracker = await started(tracker_for(sim, client))
    try:
        intent = OrderIntent.bid(TICKER, price=RESTS, count=3)
        accepted = await place(client, intent)
        tracker.placed(intent, accepted)
        handle = tracker.watch.handle(intent.client_order_id)
        await wait_until(lambda: handle.latest.state == "resting")
        # Someone sells into our bid: two contracts, so the order is partially filled.
        sim.state.exchange.seed(TICKER, "house", "ask", 3000, 200)
        await wait_until(lambda: handle.latest.state == "partially_filled")
        assert handle.latest.filled == Decimal(2)
        assert handle.latest.remaining == Decimal(1)
        assert handle.latest.average_fill_price == Decimal("0.30")
        position = tracker.watch.positions()[TICKER]
        assert (position.position, position.cost) == (Decimal(2), Decimal("0.60"))
        assert [o.order_id for o in tracker.watch.open_orders(TICKER)] == [accepted.order_id]
    finally:
        await tracker.aclose()


async def test_fills_the_socket_lost_are_found_by_a_sweep_once(
    sim: SimServer, client: ExchangeClient
) -> None:
    tracker = tracker_for(sim, client)
    frames: list[OrderFrame] = []
    deliver = tracker._on_frame

    def lossy(frame: OrderFrame) -> None:
        # Every fill frame is lost on the way: only REST can tell.
        frames.append(frame)
        if not isinstance(frame, FillFrame):
            deliver(frame)

    tracker._feed._on_frame = lossy
    await started(tracker)
    try:
        intent = OrderIntent.bid(TICKER, price="0.60", count=2)
        accepted = await place(client, intent)
        tracker.placed(intent, accepted)
        await wait_until(lambda: any(isinstance(f, FillFrame) for f in frames))
        assert tracker.watch.positions().get(TICKER) is None
        await tracker.sweep()
        await tracker.sweep()  # a second sweep finds nothing new
        latest = tracker.watch.get(intent.client_order_id)
        assert latest is not None
        assert (latest.state, latest.filled) == ("filled", Decimal(2))
        assert tracker.watch.positions()[TICKER].position == Decimal(2)
        assert tracker.stats.found_by_rest >= 1
    finally:
        await tracker.aclose()


async def test_an_unknown_create_that_landed_is_resolved_accepted_and_journaled(
    sim: SimServer, client: ExchangeClient
) -> None:
    journal = Journal()
    tracker = await started(tracker_for(sim, client, journal))
    updates: list[OrderUpdate] = []
    try:
        stream = tracker.watch.updates()
        intent = OrderIntent.bid(TICKER, price=RESTS, count=1)
        await place(client, intent)
        # The router could not tell (its answer was lost): the tracker proves it later.
        tracker.unknown(
            intent, Unknown(reason="lost", client_order_id=intent.client_order_id), time.time()
        )
        await wait_until(lambda: journal.resolved != [])
        async for update in stream:
            updates.append(update)
            if update.resolved is not None:
                break
    finally:
        await tracker.aclose()
    (kind, key, outcome), *more = journal.resolved
    assert (kind, key, more) == ("create", intent.client_order_id, [])
    assert isinstance(outcome, Accepted)
    assert updates[-1].resolved == outcome
    assert updates[-1].client_order_id == intent.client_order_id
    assert tracker.stats.resolved == 1


async def test_an_unknown_create_never_placed_is_resolved_absent_after_the_grace(
    sim: SimServer, client: ExchangeClient
) -> None:
    journal = Journal()
    tracker = await started(tracker_for(sim, client, journal, landing_grace_s=0.0))
    try:
        intent = OrderIntent.bid(TICKER, price=RESTS, count=1)
        tracker.unknown(
            intent, Unknown(reason="lost", client_order_id=intent.client_order_id), time.time()
        )
        await tracker.sweep()
    finally:
        await tracker.aclose()
    [(_, key, outcome)] = journal.resolved
    assert key == intent.client_order_id
    assert isinstance(outcome, Closed)
    assert "never reached the exchange" in outcome.reason
    latest = tracker.watch.get(intent.client_order_id)
    assert latest is None or latest.state == "reconciled_absent"


async def test_a_router_without_tracking_names_the_setting(sim: SimServer) -> None:
    async with OrderRouter.connect(Config(router=FAST_RETRIES), make_signer(), sim.url) as router:
        with pytest.raises(ConfigError, match=r"orders\.track"):
            _ = router.orders
        with pytest.raises(ConfigError, match=r"orders\.track"):
            await router.reconcile_orders()
        assert router.stats().orders is None


async def test_an_embedded_router_that_tracks_follows_its_orders_to_the_end(
    sim: SimServer,
) -> None:
    config = Config(router=FAST_RETRIES, orders=OrdersConfig(track=True))
    async with OrderRouter.connect(config, make_signer(), sim.url) as router:
        intent = OrderIntent.bid(TICKER, price=RESTS, count=1)
        outcome = await router.place(intent)
        assert isinstance(outcome, Accepted)
        handle = router.orders.handle(intent.client_order_id)
        cancelled = await router.cancel(outcome.order_id, TICKER)
        assert cancelled.ok
        final = await handle.final()
        await router.reconcile_orders()
        figures = router.stats().orders
    assert (final.state, final.order_id) == ("cancelled", outcome.order_id)
    assert figures is not None
    assert (figures.orders, figures.open, figures.fills, figures.sweeps) == (1, 0, 0, 1)
    assert figures.frames >= 2  # resting, then cancelled


async def test_the_proof_reaches_the_bot_when_the_orders_last_change_was_a_fill(
    sim: SimServer, client: ExchangeClient
) -> None:
    tracker = tracker_for(sim, client)
    deliver = tracker._on_frame
    seen: list[OrderFrame] = []

    def after_the_first_user_order_only_fills(frame: OrderFrame) -> None:
        if isinstance(frame, FillFrame) or not seen:
            seen.append(frame)
            deliver(frame)

    tracker._feed._on_frame = after_the_first_user_order_only_fills
    await started(tracker)
    try:
        intent = OrderIntent.bid(TICKER, price=RESTS, count=3)
        await place(client, intent)
        await wait_until(lambda: tracker.watch.get(intent.client_order_id) is not None)
        sim.state.exchange.seed(TICKER, "house", "ask", 3000, 100)
        await wait_until(lambda: tracker.watch.positions().get(TICKER) is not None)
        latest = tracker.watch.get(intent.client_order_id)
        assert latest is not None
        assert latest.fill is not None
        stream = tracker.watch.updates()
        lost = Unknown(reason="lost", client_order_id=intent.client_order_id)
        tracker.unknown(intent, lost, time.time())
        update = await asyncio.wait_for(anext(stream), 5)
    finally:
        await tracker.aclose()
    assert isinstance(update.resolved, Accepted)
    assert update.fill is None  # the fill was counted once, when it came
    assert tracker.watch.positions()[TICKER].position == Decimal(1)


async def test_listeners_see_every_update_before_a_bot_does(
    sim: SimServer, client: ExchangeClient
) -> None:
    tracker = await started(tracker_for(sim, client))
    heard: list[tuple[str, bool]] = []
    watch = tracker.watch

    def listener(update: OrderUpdate) -> None:
        # What the bot can read at this moment: not this update yet.
        shown = watch.get(update.order_id or "")
        heard.append((update.state, shown is not None and shown == update))

    tracker.listen(listener)
    try:
        intent = OrderIntent.bid(TICKER, price=RESTS, count=1)
        accepted = await place(client, intent)
        tracker.placed(intent, accepted)
        await wait_until(lambda: any(state == "resting" for state, _ in heard))
    finally:
        await tracker.aclose()
    assert heard[0] == ("accepted", False)
    assert all(not shown for _, shown in heard)


async def test_an_order_group_triggered_by_fills_is_seen_on_the_feed(
    sim: SimServer, client: ExchangeClient
) -> None:
    tracker = await started(tracker_for(sim, client))
    try:
        group = await client.create_order_group(Decimal(2))
        intent = OrderIntent.bid(TICKER, price=RESTS, count=5, order_group_id=group)
        accepted = await place(client, intent)
        tracker.placed(intent, accepted)
        # Two contracts matched within 15 s reach the limit: Kalshi cancels the group's orders.
        sim.state.exchange.seed(TICKER, "house", "ask", 3000, 200)
        await wait_until(lambda: group in tracker.order_groups)
        await wait_until(lambda: tracker.order_groups[group].event_type == "triggered")
        handle = tracker.watch.handle(intent.client_order_id)
        final = await asyncio.wait_for(handle.final(), 5)
    finally:
        await tracker.aclose()
    assert (final.state, final.filled) == ("cancelled", Decimal(2))
