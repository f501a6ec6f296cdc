"""Gaps in the kill switch the chaos runs and bench_kill found, kept as tests of their fixes:

- an order whose cancel expired (an outage longer than the router's deadline) was never asked
  again, so the kill gave up although the exchange recovered long before its timeout;
- ``KillReport.seconds`` also counted the order tracker's reconciliation after the
  confirmation, which takes seconds when many orders are followed;
- waiting for the creates in flight spun on one whose caller had cancelled its future.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

import pytest

from kalshi_router import Accepted, OrderIntent, OrderRouter
from kalshi_router.config import Config, OrdersConfig, RouterConfig
from kalshi_router.outcome import Cancelled, CancelOutcome, Expired
from kalshi_router.risk.kill import pull_everything
from kalshi_router.sim import FaultConfig, SimConfig, SimServer
from kalshi_router.wire.models import Order
from tests.integration.conftest import KEY_ID, make_signer, running_sim

TICKER = "KXKILLFAULT-26DEC31-T50"
# Cancels give up after 0.3 s; the kill switch itself has seconds.
ROUTER = RouterConfig(backoff_base_s=0.01, backoff_cap_s=0.05, deadline_s=0.3)
CANCELS_REFUSED = FaultConfig(
    error_503_rate=1.0,
    paths=["DELETE /portfolio/events/orders", "DELETE /portfolio/events/orders/batched"],
)
OUTAGE_S = 0.6


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with running_sim(SimConfig(tier="premier")) as server:
        yield server


async def test_orders_whose_cancel_expired_are_asked_again_once_the_exchange_recovers(
    sim: SimServer,
) -> None:
    config = Config(router=ROUTER, orders=OrdersConfig(track=True, reconcile_every_s=3600.0))
    async with OrderRouter.connect(config, make_signer(), sim.url) as router:
        placed = await router.place_many(
            [OrderIntent.bid(TICKER, price=f"0.{10 + n}", count=1) for n in range(5)]
        )
        assert all(isinstance(o, Accepted) for o in placed)
        sim.state.faults.configure(CANCELS_REFUSED)

        async def recover() -> None:
            await asyncio.sleep(OUTAGE_S)
            sim.state.faults.configure(FaultConfig())

        recovery = asyncio.create_task(recover())
        report = await router.kill("outage", timeout_s=2.0)
        await recovery
    resting = sim.state.exchange.orders(KEY_ID, status="resting")
    # The exchange took cancels again after 0.6 s; the kill had 2 s.
    assert report.done, report
    assert resting == []


class Flaky:
    """One resting order whose first cancel expires (an outage longer than its deadline); any
    later cancel goes through."""

    def __init__(self) -> None:
        self.book = {"a": Order(order_id="a", client_order_id="c-a", ticker="KX", status="resting")}
        self.asked = 0

    async def cancel_all(self, subaccount: int | None) -> None:
        raise OSError("cancel-all refused")

    async def creates_settled(self) -> None:
        return None

    async def resting(self, subaccount: int | None) -> Sequence[Order]:
        return list(self.book.values())

    async def cancel(self, order_id: str, ticker: str) -> CancelOutcome:
        self.asked += 1
        if self.asked == 1:
            return Expired(reason="deadline passed while retrying (503)", order_id=order_id)
        del self.book[order_id]
        return Cancelled(order_id=order_id, reduced_by=Decimal(1))

    async def reconcile(self) -> None:
        return None


class SlowReconcile(Flaky):
    """Cancel-all clears the book; reconciling the tracker afterwards takes 10 s (on the
    fake clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    async def cancel_all(self, subaccount: int | None) -> None:
        self.book.clear()

    async def reconcile(self) -> None:
        self.now += 10.0


async def test_the_reports_seconds_end_at_the_confirmation() -> None:
    exchange = SlowReconcile()
    report = await pull_everything(
        exchange,
        reason="test",
        creates_closed=0,
        subaccount=None,
        timeout_s=30.0,
        clock=lambda: exchange.now,
    )
    assert report.done
    assert report.seconds < 10.0, report


async def test_an_order_still_listed_after_its_cancel_expired_is_asked_again() -> None:
    exchange = Flaky()
    report = await pull_everything(
        exchange, reason="test", creates_closed=0, subaccount=None, timeout_s=1.0
    )
    assert report.done, report
    assert exchange.asked == 2
