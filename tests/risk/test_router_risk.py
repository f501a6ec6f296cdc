"""The risk controls on a running router against the simulator: a limit refusing before the
wire, the trading state, the kill switch under load, and the watchdog."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

import pytest

from kalshi_router import Accepted, OrderIntent, OrderRouter, Rejected
from kalshi_router.config import Config, OrdersConfig, RouterConfig
from kalshi_router.errors import ConfigError
from kalshi_router.risk import RiskConfig
from kalshi_router.sim import SimConfig, SimServer
from kalshi_router.wire.reply import BatchReply
from tests.integration.conftest import make_signer, running_sim
from tests.sim.conftest import wait_until

TICKER = "KXRISK-26DEC31-T50"
ROUTER = RouterConfig(backoff_base_s=0.01, backoff_cap_s=0.05, deadline_s=5.0)
TRACK = OrdersConfig(track=True, reconcile_every_s=3600.0)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with running_sim(SimConfig(tier="premier")) as server:
        yield server


def ours_resting(sim: SimServer) -> list[str]:
    return [
        o.order_id
        for o in sim.state.exchange.orders()
        if o.user_id != "house" and o.status == "resting"
    ]


def bid(price: str = "0.30", count: int = 1) -> OrderIntent:
    return OrderIntent.bid(TICKER, price=price, count=count)


async def test_a_limit_refuses_before_the_wire_naming_the_rule(sim: SimServer) -> None:
    config = Config(router=ROUTER, risk=RiskConfig(max_contracts=Decimal(10)))
    async with OrderRouter.connect(config, make_signer(), sim.url) as router:
        spent = router.stats().tokens_spent
        refused = await router.place(bid(count=11))
        placed = await router.place(bid(count=10))
        stats = router.stats()
    assert isinstance(refused, Rejected)
    assert refused.code == "risk.max_contracts"
    assert "10" in refused.message
    assert "11" in refused.message
    assert refused.http_status == 0
    assert isinstance(placed, Accepted)
    # Only the one at the edge was sent and paid for.
    assert stats.tokens_spent - spent == router.budget.costs["create"]
    assert stats.risk is not None
    assert stats.risk.refusals == {"risk.max_contracts": 1}
    assert len(ours_resting(sim)) == 1


async def test_limits_on_exposure_need_the_tracker(sim: SimServer) -> None:
    with pytest.raises(ConfigError, match=r"^risk\.max_position: needs \[orders\] track"):
        Config(router=ROUTER, risk=RiskConfig(max_position=Decimal(5)))
    # Built by hand, without a tracker, the router refuses the same way.
    client = OrderRouter.connect(Config(), make_signer(), sim.url)._client
    with pytest.raises(ConfigError, match=r"^risk\.max_position: needs \[orders\] track"):
        OrderRouter(client, risk=RiskConfig(max_position=Decimal(5)))
    await client.transport.close()


async def test_bids_racing_for_one_position_never_pass_the_limit(sim: SimServer) -> None:
    config = Config(router=ROUTER, orders=TRACK, risk=RiskConfig(max_position=Decimal(10)))
    async with OrderRouter.connect(config, make_signer(), sim.url) as router:
        outcomes = await asyncio.gather(*(router.place(bid(count=3)) for _ in range(8)))
    accepted = [o for o in outcomes if isinstance(o, Accepted)]
    refused = [o for o in outcomes if isinstance(o, Rejected)]
    assert len(accepted) == 3  # 9 of the 10 contracts: a fourth bid of 3 would be 12
    assert {o.code for o in refused} == {"risk.max_position"}
    assert len(ours_resting(sim)) == 3


async def test_halted_refuses_creates_but_not_cancels_until_resumed(sim: SimServer) -> None:
    config = Config(router=ROUTER, orders=TRACK)
    async with OrderRouter.connect(config, make_signer(), sim.url) as router:
        first = await router.place(bid())
        assert isinstance(first, Accepted)
        router.set_trading_state("halted")
        refused = await router.place(bid())
        cancelled = await router.cancel(first.order_id, TICKER)
        await router.resume()
        again = await router.place(bid())
        state = router.stats().risk
    assert isinstance(refused, Rejected)
    assert refused.code == "risk.halted"
    assert cancelled.ok
    assert isinstance(again, Accepted)
    assert state is not None
    assert state.state == "active"


async def test_the_kill_switch_clears_the_book_under_load_and_sends_no_create_after(
    sim: SimServer,
) -> None:
    config = Config(router=ROUTER, orders=TRACK)
    async with OrderRouter.connect(config, make_signer(), sim.url) as router:
        calls: list[float] = []
        create_batch = router._client.create_batch

        async def timed(intents: Sequence[OrderIntent]) -> BatchReply:
            calls.append(time.monotonic())
            return await create_batch(intents)

        router._client.create_batch = timed  # type: ignore[method-assign]
        await router.place_many([bid(price=f"0.{20 + n % 20}") for n in range(40)])
        stop = asyncio.Event()

        async def load() -> None:
            # Keeps creating (refused once halted) until the test ends.
            while not stop.is_set():
                router.submit(bid())
                await asyncio.sleep(0.001)

        loader = asyncio.create_task(load())
        await asyncio.sleep(0.05)
        halted_at = time.monotonic()
        report = await router.kill("test")
        stop.set()
        await loader
        after = await router.place(bid())
        open_orders = router.orders.open_orders()
    assert report.done, report
    assert ours_resting(sim) == []
    assert report.cancel_all == "sent"
    assert open_orders == []
    assert [t for t in calls if t > halted_at] == []
    assert isinstance(after, Rejected)
    assert after.code == "risk.halted"


async def test_a_missed_heartbeat_pulls_the_open_orders(sim: SimServer) -> None:
    config = Config(router=ROUTER, orders=TRACK)
    async with OrderRouter.connect(config, make_signer(), sim.url) as router:
        await router.place_many([bid(), bid(price="0.31")])
        await wait_until(lambda: len(router.orders.open_orders()) == 2)
        router.heartbeat(timeout_s=0.2)
        started = time.monotonic()
        await wait_until(lambda: ours_resting(sim) == [])
        waited = time.monotonic() - started
    assert waited >= 0.2
    # Only ours were pulled: the house's quotes still rest.
    house = [o for o in sim.state.exchange.orders() if o.user_id == "house"]
    assert house
    assert all(o.status == "resting" for o in house)
