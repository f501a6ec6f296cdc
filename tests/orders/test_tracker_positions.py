"""A tracker (and a router) started on an account that already holds positions, against the
simulator: the positions read at start, fills after it added once, the fills that land around
the read counted once, the same figures as a tracker that saw every fill, and ``max_position``
refusing from the start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from aiolimiter import AsyncLimiter

from kalshi_router import Accepted, OrderIntent, OrderRouter, Rejected
from kalshi_router.config import Config, OrdersConfig
from kalshi_router.errors import ExchangeError
from kalshi_router.orders.tracker import OrderTracker
from kalshi_router.orders.updates import Position
from kalshi_router.risk import RiskConfig
from kalshi_router.sim import SimConfig, SimServer
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.positions import GetPositionsResponse
from tests.integration.conftest import FAST_RETRIES, KEY_ID, make_signer, running_sim
from tests.sim.conftest import wait_until

TICKER = "KXHELD-26DEC31-A"
SHORT = "KXHELD-26DEC31-B"
D = Decimal
TRACK = OrdersConfig(
    track=True, reconcile_every_s=3600.0, reconnect_base_s=0.01, reconnect_cap_s=0.05
)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with running_sim(SimConfig(tier="premier")) as server:
        yield server


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[ExchangeClient]:
    transport = HttpTransport(sim.url, make_signer(), timeout_s=5.0, max_connections=4)
    yield ExchangeClient(transport, dialect_for("v2"))
    await transport.close()


async def trade(client: ExchangeClient, ticker: str, count: int, side: str = "bid") -> None:
    """Take ``count`` from the house at once: a bid buys YES at $0.55, an ask sells at $0.45."""
    now = "immediate_or_cancel"
    if side == "bid":
        intent = OrderIntent.bid(ticker, price="0.60", count=count, time_in_force=now)
    else:
        intent = OrderIntent.ask(ticker, price="0.40", count=count, time_in_force=now)
    reply = await client.create_batch([intent])
    outcome = reply.outcomes[intent.client_order_id]
    assert isinstance(outcome, Accepted), outcome
    assert outcome.fill_count == count


def held(sim: SimServer, ticker: str) -> Decimal:
    """The position the simulator's engine holds for our user."""
    return Decimal(sim.state.exchange.position(KEY_ID, ticker)) / 100


async def fees(client: ExchangeClient, ticker: str) -> Decimal:
    page = await client.get_fills(ticker=ticker)
    return sum((fill.fee_cost for fill in page.fills), D(0))


async def started(sim: SimServer, client: ExchangeClient) -> OrderTracker:
    tracker = OrderTracker(client, sim.url, make_signer(), TRACK)
    await tracker.start(AsyncLimiter(1000, 1.0))
    return tracker


async def test_a_tracker_started_on_held_positions_reports_them_and_adds_new_fills_once(
    sim: SimServer, client: ExchangeClient
) -> None:
    await trade(client, TICKER, 5)  # 5 YES at $0.55
    await trade(client, SHORT, 3, "ask")  # 3 YES sold at $0.45
    tracker = await started(sim, client)
    try:
        positions = tracker.watch.positions()
        assert positions[TICKER] == Position(
            ticker=TICKER, position=D(5), cost=D("2.75"), fees=await fees(client, TICKER)
        )
        assert positions[SHORT] == Position(
            ticker=SHORT, position=D(-3), cost=D("-1.35"), fees=await fees(client, SHORT)
        )
        assert tracker.stats.seeded == 2
        await trade(client, TICKER, 2)
        await wait_until(lambda: tracker.watch.positions()[TICKER].position == D(7))
        # The sweep's fills look back to before the start: the seed holds those already.
        await tracker.sweep()
        after = tracker.watch.positions()[TICKER]
    finally:
        await tracker.aclose()
    assert after == Position(
        ticker=TICKER,
        position=D(7),
        cost=D("3.85"),
        fees=await fees(client, TICKER),
        volume=D(2),
    )
    assert after.position == held(sim, TICKER)
    assert tracker.stats.found_by_rest >= 2  # the two fills from before the start


async def test_fills_landing_around_the_read_count_once(
    sim: SimServer, client: ExchangeClient
) -> None:
    await trade(client, TICKER, 4)
    tracker = OrderTracker(client, sim.url, make_signer(), TRACK)
    read = client.get_positions

    async def racing(**query: Any) -> GetPositionsResponse:
        # One fill after the feed is subscribed and before the read (so the read holds it),
        # one after the read and before the seed: the feed brings both before the seed.
        await trade(client, TICKER, 1)
        await wait_until(lambda: tracker.ledger.fills() == 1)
        page = await read(**query)
        await trade(client, TICKER, 2)
        await wait_until(lambda: tracker.ledger.fills() == 2)
        return page

    client.get_positions = racing  # type: ignore[method-assign]
    await tracker.start(AsyncLimiter(1000, 1.0))
    try:
        at_start = tracker.watch.positions()[TICKER]
        await tracker.sweep()
        swept = tracker.watch.positions()[TICKER]
    finally:
        await tracker.aclose()
    assert at_start.position == swept.position == held(sim, TICKER) == D(7)
    assert (at_start.cost, at_start.volume) == (7 * D("0.55"), D(2))
    assert swept == at_start


async def test_a_late_tracker_agrees_with_one_that_saw_every_fill(
    sim: SimServer, client: ExchangeClient
) -> None:
    early = await started(sim, client)
    late: OrderTracker | None = None
    try:
        await trade(client, TICKER, 10)
        await trade(client, TICKER, 4, "ask")  # $0.40 of P&L realized (before fees)
        await trade(client, TICKER, 8, "ask")  # through zero: short 2
        await trade(client, SHORT, 3, "ask")
        late = await started(sim, client)
        await trade(client, TICKER, 1)
        await trade(client, SHORT, 5)
        for ticker, position in ((TICKER, D(-1)), (SHORT, D(2))):
            for tracker in (early, late):
                await wait_until(
                    lambda t=tracker, k=ticker, p=position: (  # type: ignore[misc]
                        k in t.watch.positions() and t.watch.positions()[k].position == p
                    )
                )
        seen, seeded = early.watch.positions(), late.watch.positions()
    finally:
        await early.aclose()
        if late is not None:
            await late.aclose()
    for ticker in (TICKER, SHORT):
        whole, started_late = seen[ticker], seeded[ticker]
        figures = (whole.position, whole.cost, whole.fees)
        assert figures == (started_late.position, started_late.cost, started_late.fees), ticker
        assert started_late.volume < whole.volume
    assert seeded[TICKER].volume == D(1)


async def test_an_unreadable_position_fails_the_start_and_closes_the_feed(
    sim: SimServer, client: ExchangeClient
) -> None:
    tracker = OrderTracker(client, sim.url, make_signer(), TRACK)

    async def refused(**query: Any) -> GetPositionsResponse:
        raise ExchangeError(400, "invalid_parameters", "no")

    client.get_positions = refused  # type: ignore[method-assign]
    with pytest.raises(ExchangeError, match="invalid_parameters"):
        await tracker.start(AsyncLimiter(1000, 1.0))
    await tracker._feed.wait()  # ended, not left running
    await tracker.aclose()


async def test_max_position_refuses_at_start_when_the_account_holds_the_limit(
    sim: SimServer, client: ExchangeClient
) -> None:
    await trade(client, TICKER, 10)
    config = Config(router=FAST_RETRIES, orders=TRACK, risk=RiskConfig(max_position=D(10)))
    async with OrderRouter.connect(config, make_signer(), sim.url) as router:
        refused = await router.place(OrderIntent.bid(TICKER, price="0.30", count=1))
        # Selling some of it back is a reduction: it fits.
        reduces = await router.place(OrderIntent.ask(TICKER, price="0.90", count=1))
        # The sweep brings the fill from before the start again: counted once, still.
        await router.reconcile_orders()
        again = await router.place(OrderIntent.bid(TICKER, price="0.30", count=1))
        position = router.orders.positions()[TICKER].position
        exposure = router._gate.exposure.position(TICKER)
    assert isinstance(refused, Rejected)
    assert refused.code == "risk.max_position"
    assert isinstance(reduces, Accepted)
    assert isinstance(again, Rejected)
    assert again.code == "risk.max_position"
    assert position == exposure == D(10)
