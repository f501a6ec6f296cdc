"""The market maker against the simulator, following its orders: a side at the inventory limit
is not quoted until trades bring the inventory back, and the books it shows are what its fills
at the exchange add up to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from kalshi_router.config import Config, OrdersConfig, RouterConfig
from kalshi_router.demo.house import HouseTaker
from kalshi_router.demo.market_maker import LimitEvent, MarketMaker
from kalshi_router.demo.report import contracts, dollars
from kalshi_router.demo.run import QUOTE_TICKERS, market_making
from kalshi_router.router import OrderRouter
from kalshi_router.sim import SimConfig, SimServer
from kalshi_router.sim.events import Event, Filled
from tests.integration.conftest import KEY_ID, make_signer, running_sim
from tests.sim.conftest import wait_until

T = "KXDEMO-TEST-T50"
LIMIT = Decimal(3)
CONFIG = Config(
    router=RouterConfig(backoff_base_s=0.01, backoff_cap_s=0.1, deadline_s=10.0),
    orders=OrdersConfig(track=True, reconcile_every_s=3600.0),
)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with running_sim(SimConfig(tier="premier")) as server:
        yield server


@pytest.fixture
async def router(sim: SimServer) -> AsyncIterator[OrderRouter]:
    async with OrderRouter.connect(CONFIG, make_signer(), sim.url) as running:
        yield running


def bot_orders(sim: SimServer, side: str) -> list[int]:
    """What the bot rests on ``side`` of T, in hundredths."""
    orders = sim.state.exchange.orders(KEY_ID, ticker=T, status="resting")
    return [o.remaining_count for o in orders if o.side == side]


async def quoted(maker: MarketMaker, cycle: int) -> None:
    """One cycle, and its quotes answered."""
    await maker.step(cycle, 10.0)
    pending, maker.futures = maker.futures, []
    await asyncio.wait(pending)


async def test_a_side_at_the_limit_is_not_quoted_until_the_inventory_comes_back(
    sim: SimServer, router: OrderRouter
) -> None:
    maker = MarketMaker(router, (T,), "KXDEMO-TEST-BURST", limit=LIMIT)
    house = HouseTaker(sim.state.exchange, KEY_ID, (T,))
    follower = asyncio.create_task(maker.updates()())
    position = sim.state.exchange.position
    seen: list[Decimal] = []

    def held() -> Decimal:
        return maker.inventory.market(T).position

    try:
        cycle = 0
        # The house keeps selling to the bot until its bids stop.
        while not maker.is_paused(T, "bid"):
            assert cycle < 20, "the bids never reached the limit"
            await quoted(maker, cycle)
            cycle += 1
            if house.take(T, "bid", 5) is not None:
                await wait_until(lambda: held() * 100 == position(KEY_ID, T))
            seen.append(held())
        assert max(seen) == LIMIT  # reached, never passed
        assert maker.limit_events[-1] == LimitEvent(T, "bid", True, LIMIT, Decimal(0))
        assert bot_orders(sim, "bid") == []
        assert bot_orders(sim, "ask") != []  # the other side is still quoted
        await quoted(maker, cycle)
        assert bot_orders(sim, "bid") == []

        # The house buys some back: the bid side has room for as many again.
        trade = house.take(T, "ask", 2)
        assert trade is not None
        back = Decimal(trade.count) / 100
        await wait_until(lambda: held() == LIMIT - back)
        await quoted(maker, cycle + 1)
        [bid] = bot_orders(sim, "bid")
        assert 0 < bid <= trade.count
        assert maker.limit_events[-1] == LimitEvent(T, "bid", False, LIMIT - back, Decimal(0))
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    assert maker.agrees_with_router()


async def test_the_books_shown_are_what_the_fills_add_up_to(
    sim: SimServer, router: OrderRouter
) -> None:
    fills: list[Filled] = []

    def record(event: Event) -> None:
        if isinstance(event, Filled) and event.order.user_id == KEY_ID:
            fills.append(event)

    sim.state.exchange.observe(record)
    lines: list[str] = []
    run = await market_making(
        router, sim, KEY_ID, seconds=1.5, burst=4, out=lines.append, house_gap_s=0.03
    )
    maker = run.maker
    assert run.agrees_with_router
    assert run.agrees_with_exchange == dict.fromkeys(QUOTE_TICKERS, True)
    mine = [f for f in fills if f.order.ticker in QUOTE_TICKERS]
    assert len(mine) >= 5, "too few fills to check anything"
    # One line per fill, as it came.
    assert sum(line.startswith("  fill ") for line in lines) == len(mine)
    table = {line.split()[0]: line.split() for line in run.books()}
    for ticker in QUOTE_TICKERS:
        here = [f for f in mine if f.order.ticker == ticker]
        signed = [
            (Decimal(f.qty if f.order.side == "bid" else -f.qty) / 100, Decimal(f.price) / 10_000)
            for f in here
        ]
        position = sum((count for count, _ in signed), Decimal(0))
        cash = -sum((count * price for count, price in signed), Decimal(0))
        fees = sum((Decimal(f.fee) / 1_000_000 for f in here), Decimal(0))
        market = maker.inventory.market(ticker)
        assert (market.position, market.cash, market.fees) == (position, cash, fees)
        assert market.fills == len(here)
        mid = maker.mid(ticker)
        pnl = cash + position * mid - fees
        assert abs(market.pnl(mid) - pnl) < Decimal("1e-20")
        row = table[ticker]
        assert row[1] == contracts(position)
        assert row[-1] == dollars(pnl)
        # Never beyond the limit, whatever the house did.
        running = Decimal(0)
        for count, _ in signed:
            running += count
            assert abs(running) <= maker.limit
