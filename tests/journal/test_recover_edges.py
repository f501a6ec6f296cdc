"""Recovery at its edges, on a stand-in exchange: a clean journal asks and logs nothing; an open
cancel of an order since filled is closed, and an order listed without a price is described
without one."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest

from kalshi_router.config import JournalConfig
from kalshi_router.intent import AmendIntent, CancelIntent
from kalshi_router.journal import SqliteJournal
from kalshi_router.journal.recover import recover
from kalshi_router.outcome import Closed, Unknown
from kalshi_router.pending import Pending
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.models import Order

TICKER = "KXRECOVER-26DEC31-T50"
SETTLED_NOW = JournalConfig(landing_grace_s=0.0, lookup_timeout_s=1.0)


class Exchange:
    """Answers ``get_order`` from ``orders``; records every call the recovery makes."""

    def __init__(self, *orders: Order) -> None:
        self.orders = {o.order_id: o for o in orders}
        self.calls: list[str] = []

    async def get_order(self, order_id: str) -> Order | None:
        self.calls.append(f"get_order {order_id}")
        return self.orders.get(order_id)

    async def get_orders(self, **query: object) -> None:
        self.calls.append(f"get_orders {query}")
        raise AssertionError("no create was open: nothing to list")


async def test_a_journal_with_nothing_open_asks_and_says_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kalshi_router.journal")
    exchange = Exchange()
    with SqliteJournal.open(tmp_path / "journal.sqlite3", exchange="test") as journal:
        found = await recover(journal, cast(ExchangeClient, exchange), SETTLED_NOW)
        assert journal.counts() == {}
    assert found.outcomes == []
    assert found.counts == {}
    assert exchange.calls == []
    assert caplog.records == []


def order(status: str, *, price: str | None, filled: int, resting: int) -> Order:
    return Order(
        order_id="o-1",
        client_order_id="c-1",
        ticker=TICKER,
        status=status,
        yes_price_dollars=None if price is None else Decimal(price),
        fill_count_fp=Decimal(filled),
        remaining_count_fp=Decimal(resting),
    )


AMEND = AmendIntent(
    order_id="o-1", ticker=TICKER, side="bid", price=Decimal("0.31"), count=Decimal(2)
)


@pytest.mark.parametrize(
    ("payload", "listed", "expected", "reason"),
    [
        pytest.param(
            CancelIntent(order_id="o-1", ticker=TICKER),
            order("executed", price="0.31", filled=2, resting=0),
            Closed,
            "nothing left to cancel: the order is executed, 0 resting at $0.31, 2 filled",
            id="cancel-of-a-filled-order",
        ),
        pytest.param(
            AMEND,
            order("resting", price=None, filled=0, resting=2),
            Unknown,
            "cannot tell whether it applied: the order is resting, 2 resting, 0 filled",
            id="amend-of-an-order-listed-without-a-price",
        ),
    ],
)
async def test_an_open_cancel_or_amend_is_settled_from_the_order_as_listed(
    tmp_path: Path,
    payload: CancelIntent | AmendIntent,
    listed: Order,
    expected: type[Closed | Unknown],
    reason: str,
) -> None:
    exchange = Exchange(listed)
    loop = asyncio.get_running_loop()
    sent = Pending(
        kind="cancel" if isinstance(payload, CancelIntent) else "single",
        key="o-1",
        ticker=TICKER,
        payload=payload,
        future=loop.create_future(),
        submitted=loop.time(),
        deadline=loop.time() + 5,
        submitted_wall=time.time(),
        attempts=1,
    )
    with SqliteJournal.open(tmp_path / "journal.sqlite3", exchange="test") as journal:
        journal.taken(sent)
        journal.sending([sent])
        await recover(journal, cast(ExchangeClient, exchange), SETTLED_NOW)
        entry = journal.find("o-1")
    assert exchange.calls == ["get_order o-1"]
    assert entry is not None
    assert isinstance(entry.outcome, expected)
    assert entry.outcome.reason.endswith(reason)
