"""The kill switch's rounds against a scripted exchange: cancel-all, then order by order until
REST lists nothing resting, and a report that says what happened."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

from kalshi_router.errors import ExchangeError
from kalshi_router.outcome import Cancelled, CancelOutcome, Rejected
from kalshi_router.risk.kill import pull_everything
from kalshi_router.wire.models import Order


def resting(order_id: str) -> Order:
    return Order(order_id=order_id, client_order_id=f"c-{order_id}", ticker="KX", status="resting")


class Exchange:
    """Resting orders by id; cancel-all clears them unless it fails; ``late`` orders appear
    once the creates in flight settle (a create accepted after the cancel-all)."""

    def __init__(self, ids: Sequence[str], *, cancel_all_fails: bool = False) -> None:
        self.book = {i: resting(i) for i in ids}
        self.late: list[str] = []
        self.cancel_all_fails = cancel_all_fails
        self.cancelled: list[str] = []
        self.calls: list[str] = []

    async def cancel_all(self, subaccount: int | None) -> None:
        self.calls.append(f"cancel_all {subaccount}")
        if self.cancel_all_fails:
            raise ExchangeError(500, "internal", "boom")
        self.book.clear()

    async def creates_settled(self) -> None:
        self.calls.append("creates_settled")
        for order_id in self.late:
            self.book[order_id] = resting(order_id)
        self.late = []

    async def resting(self, subaccount: int | None) -> Sequence[Order]:
        self.calls.append("resting")
        return list(self.book.values())

    async def cancel(self, order_id: str, ticker: str) -> CancelOutcome:
        self.cancelled.append(order_id)
        if self.book.pop(order_id, None) is None:
            return Rejected(code="not_found", message="gone", order_id=order_id)
        return Cancelled(order_id=order_id, reduced_by=Decimal(1))

    async def reconcile(self) -> None:
        self.calls.append("reconcile")


async def test_cancel_all_clears_the_book_in_one_request() -> None:
    exchange = Exchange(["a", "b", "c"])
    report = await pull_everything(
        exchange, reason="test", creates_closed=4, subaccount=None, timeout_s=1.0
    )
    assert report.done
    assert (report.cancel_all, report.cancels_sent, report.creates_closed) == ("sent", 0, 4)
    assert exchange.calls == ["cancel_all None", "creates_settled", "resting", "reconcile"]


async def test_an_order_placed_by_a_create_in_flight_is_cancelled_after() -> None:
    exchange = Exchange(["a"])
    exchange.late = ["late-1"]
    report = await pull_everything(
        exchange, reason="test", creates_closed=0, subaccount=2, timeout_s=1.0
    )
    assert report.done
    assert exchange.cancelled == ["late-1"]
    assert (report.cancels_sent, report.cancels_confirmed) == (1, 1)
    assert exchange.calls[0] == "cancel_all 2"


async def test_a_failed_cancel_all_falls_back_to_cancelling_each_order() -> None:
    exchange = Exchange(["a", "b"], cancel_all_fails=True)
    report = await pull_everything(
        exchange, reason="test", creates_closed=0, subaccount=None, timeout_s=1.0
    )
    assert report.done
    assert report.cancel_all.startswith("failed: HTTP 500")
    assert sorted(exchange.cancelled) == ["a", "b"]
    assert report.cancels_confirmed == 2


async def test_orders_that_will_not_go_are_reported_when_it_gives_up() -> None:
    exchange = Exchange(["stuck"], cancel_all_fails=True)

    async def refuse(order_id: str, ticker: str) -> CancelOutcome:
        return Rejected(code="internal", message="no", order_id=order_id)

    exchange.cancel = refuse  # type: ignore[method-assign]
    report = await asyncio.wait_for(
        pull_everything(exchange, reason="test", creates_closed=0, subaccount=None, timeout_s=0.2),
        5,
    )
    assert not report.done
    assert report.still_resting == ["stuck"]
    # Asked again each round, a pause apart (0.05 s): not hammered.
    assert 2 <= report.cancels_sent <= 0.2 / 0.05 + 1
    assert report.cancels_confirmed == 0
    assert exchange.calls[-1] == "reconcile"
