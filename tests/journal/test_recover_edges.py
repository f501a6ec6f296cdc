"""Recovery at its edges, on a stand-in exchange: a clean journal asks and logs nothing, and
an order the exchange lists without a price is described without one."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest

from kalshi_router.config import JournalConfig
from kalshi_router.intent import AmendIntent
from kalshi_router.journal import SqliteJournal
from kalshi_router.journal.recover import recover
from kalshi_router.outcome import Unknown
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


async def test_an_amend_whose_order_has_no_price_is_described_without_one(
    tmp_path: Path,
) -> None:
    resting = Order(
        order_id="o-1",
        client_order_id="c-1",
        ticker=TICKER,
        status="resting",
        remaining_count_fp=Decimal(2),
    )
    exchange = Exchange(resting)
    amend = AmendIntent(
        order_id="o-1", ticker=TICKER, side="bid", price=Decimal("0.31"), count=Decimal(2)
    )
    loop = asyncio.get_running_loop()
    sent = Pending(
        kind="single",
        key="o-1",
        ticker=TICKER,
        payload=amend,
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
    assert isinstance(entry.outcome, Unknown)
    assert entry.outcome.reason.endswith("the order is resting, 2 resting, 0 filled")
