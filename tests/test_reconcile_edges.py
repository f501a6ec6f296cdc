"""``Reconciler.find`` pages a ticker's orders only until every id sought there is found: each
page costs read tokens."""

from __future__ import annotations

from typing import cast

from aiolimiter import AsyncLimiter

from kalshi_router.reconcile import Reconciler, Sought
from kalshi_router.wire.client import ExchangeClient
from tests.fakes import ScriptedClient, order

FIRST, SECOND = "KXFIRST-26JAN01-T50", "KXSECOND-26JAN01-T50"


async def test_paging_a_ticker_stops_once_everything_sought_there_is_found() -> None:
    client = ScriptedClient()
    client.page_size = 2
    for i in range(6):  # three pages on the first ticker
        client.exchange.place(order(f"first-{i}", ticker=FIRST))
    client.exchange.place(order("second-0", ticker=SECOND))
    reconciler = Reconciler(cast(ExchangeClient, client), AsyncLimiter(1000, 1.0), page_size=2)
    sought = [Sought(FIRST, "first-1", 0.0), Sought(SECOND, "second-0", 0.0)]
    found = await reconciler.find(sought)
    assert {key: o.ticker for key, o in found.items()} == {"first-1": FIRST, "second-0": SECOND}
    # first-1 is on the first page: the next two pages of that ticker are never asked for.
    assert client.order_pages == [(FIRST, None), (SECOND, None)]
