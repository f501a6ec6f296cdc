"""The positions held at start (orders.baseline and ``Watch.seed``): what a seed's figures mean,
the one rule that counts each fill once whatever its source and order, and the paged read with
its retries, on a scripted client."""

from __future__ import annotations

import random
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.config import OrdersConfig
from kalshi_router.errors import ExchangeError, TransportError, WireError
from kalshi_router.orders.baseline import ATTEMPTS, PositionSeed, read_seeds, seed_of
from kalshi_router.orders.updates import FillEvent, OrderUpdate, Position
from kalshi_router.orders.watch import Watch
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.http import Response
from kalshi_router.wire.positions import GetPositionsResponse, MarketPosition
from kalshi_router.wire.v2 import V2Dialect
from tests.wire.test_positions import market

D = Decimal
TICKER = "KXT-26-A"
OTHER = "KXT-26-B"
AS_OF = 1_767_225_601_250


def position(**changes: Any) -> MarketPosition:
    return msgspec.convert(market(**changes), MarketPosition)


def test_a_long_seed_costs_what_its_yes_trades_cost_net() -> None:
    # Bought 10 at $0.55, sold 4 at $0.45: Kalshi's average cost holds $3.30, realized -$0.40.
    seed = seed_of(
        position(
            position_fp="6.00",
            market_exposure_dollars="3.30",
            realized_pnl_dollars="-0.40",
            fees_paid_dollars="0.33",
        ),
        read_ms=0,
    )
    assert seed == PositionSeed(
        ticker=TICKER,
        position=D(6),
        cost=D("5.50") - 4 * D("0.45"),
        fees=D("0.33"),
        as_of_ms=AS_OF,
    )


def test_a_short_seed_is_yes_sold_so_its_cost_is_negative() -> None:
    # Asked 10 at $0.60 is 10 NO bought at $0.40: $4.00 of exposure, $6.00 of YES sold.
    seed = seed_of(
        position(position_fp="-10.00", market_exposure_dollars="4.00", realized_pnl_dollars="0"),
        read_ms=0,
    )
    assert (seed.position, seed.cost) == (D(-10), D(-6))


def test_without_last_updated_ts_the_seed_takes_the_reads_time() -> None:
    seed = seed_of(position(last_updated_ts=None), read_ms=42)
    assert seed.as_of_ms == 42
    assert seed.holds(42)
    assert not seed.holds(43)


def a_seed(held: str = "5", cost: str = "2.75", fees: str = "0.10") -> PositionSeed:
    return PositionSeed(ticker=TICKER, position=D(held), cost=D(cost), fees=D(fees), as_of_ms=AS_OF)


def fill_update(
    n: int,
    ts_ms: int,
    *,
    ticker: str = TICKER,
    side: Literal["bid", "ask"] = "bid",
    count: int = 1,
    price: str = "0.50",
) -> OrderUpdate:
    """Fill ``n`` of its own order (``o-n``), as the tracker publishes it."""
    event = FillEvent(
        trade_id=f"t-{n}",
        order_id=f"o-{n}",
        client_order_id=None,
        ticker=ticker,
        book_side=side,
        yes_price=D(price),
        count=D(count),
        fee=D("0.01"),
        is_taker=True,
        ts_ms=ts_ms,
    )
    return OrderUpdate(
        order_id=f"o-{n}",
        client_order_id=None,
        ticker=ticker,
        state="filled",
        source="ws",
        book_side=side,
        yes_price=D(price),
        initial=D(count),
        filled=D(count),
        remaining=D(0),
        fill=event,
    )


def test_fills_before_the_seed_count_only_when_later_than_it() -> None:
    watch = Watch(seeded=True)
    watch.push(fill_update(1, AS_OF - 5))  # in the seed already
    watch.push(fill_update(2, AS_OF + 5, count=2))  # after it: the read could not see it
    watch.push(fill_update(3, AS_OF - 5, ticker=OTHER))  # no seed: it counts
    assert watch.positions()[TICKER].position == D(3)  # fills alone, until the seed
    [seeded] = watch.seed([a_seed()])
    assert seeded == Position(
        ticker=TICKER, position=D(7), cost=D("3.75"), fees=D("0.11"), volume=D(2)
    )
    assert watch.positions() == {TICKER: seeded, OTHER: watch.position(OTHER)}
    assert watch.positions()[OTHER].position == D(1)


def test_after_the_seed_a_fill_it_holds_moves_nothing() -> None:
    watch = Watch(seeded=True)
    watch.seed([a_seed()])
    late = fill_update(1, AS_OF)  # the first sweep's REST fills look back before the start
    watch.push(late)
    assert late.fill is not None
    assert watch.in_seed(late.fill)
    assert watch.positions()[TICKER].position == D(5)
    # The order is still followed: only the position ignores the fill.
    assert watch.get("o-1") == late
    new = fill_update(2, AS_OF + 1, side="ask", count=2, price="0.60")
    watch.push(new)
    assert new.fill is not None
    assert not watch.in_seed(new.fill)
    assert watch.positions()[TICKER] == Position(
        ticker=TICKER, position=D(3), cost=D("1.55"), fees=D("0.11"), volume=D(2)
    )


def test_a_market_listed_with_no_position_is_seeded_too() -> None:
    watch = Watch(seeded=True)
    watch.seed([a_seed(held="0", cost="-0.40", fees="0.20")])
    assert watch.positions()[TICKER] == Position(
        ticker=TICKER, position=D(0), cost=D("-0.40"), fees=D("0.20")
    )


@given(
    ts=st.lists(st.integers(AS_OF - 200_000, AS_OF + 200_000), min_size=0, max_size=12),
    before=st.integers(0, 12),
    order=st.randoms(use_true_random=False),
    sides=st.lists(st.sampled_from(["bid", "ask"]), min_size=12, max_size=12),
)
def test_each_fill_counts_once_whatever_arrives_before_or_after_the_seed(
    ts: list[int], before: int, order: random.Random, sides: list[Literal["bid", "ask"]]
) -> None:
    updates = [
        fill_update(n, at, side=sides[n], count=n + 1, price=f"0.{10 + n}")
        for n, at in enumerate(ts)
    ]
    order.shuffle(updates)
    watch = Watch(seeded=True)
    for update in updates[:before]:
        watch.push(update)
    seed = a_seed()
    watch.seed([seed])
    for update in [*updates[before:], *updates]:  # the sweep brings every fill again
        watch.push(update)
    later = [u.fill for u in updates if u.fill is not None and u.fill.ts_ms > AS_OF]
    sign = {"bid": D(1), "ask": D(-1)}
    held = watch.positions()[TICKER]
    assert held.position == seed.position + sum(sign[f.book_side] * f.count for f in later)
    assert held.cost == seed.cost + sum(sign[f.book_side] * f.count * f.yes_price for f in later)
    assert held.fees == seed.fees + sum(f.fee for f in later)
    assert held.volume == sum(f.count for f in later)


class Client(ExchangeClient):
    """Answers ``get_positions`` from a script: a page (a body) or an error per call."""

    def __init__(self, *script: Mapping[str, Any] | Exception) -> None:
        super().__init__(None, V2Dialect())  # type: ignore[arg-type]
        self.script = list(script)
        self.cursors: list[str | None] = []

    async def get_positions(self, **query: Any) -> Any:
        self.cursors.append(query.get("cursor"))
        assert query.get("limit") == 1000
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return self._read(Response(200, msgspec.json.encode(step), None), _decoder)


_decoder = msgspec.json.Decoder(GetPositionsResponse)


class Reads:
    def __init__(self) -> None:
        self.taken = 0

    async def __call__(self) -> None:
        self.taken += 1


async def seeds_from(client: Client, reads: Reads | None = None) -> list[PositionSeed]:
    return await read_seeds(
        client,
        reads or Reads(),
        lambda: 1_767_225_700.0,
        OrdersConfig(reconnect_base_s=0.001, reconnect_cap_s=0.002),
        random.Random(0),
    )


async def test_every_page_is_read_each_paid_for() -> None:
    client = Client(
        {"market_positions": [market()], "event_positions": [], "cursor": "c2"},
        {"market_positions": [market(ticker=OTHER, last_updated_ts=None)], "cursor": ""},
    )
    reads = Reads()
    seeds = await seeds_from(client, reads)
    assert [s.ticker for s in seeds] == [TICKER, OTHER]
    assert (seeds[0].as_of_ms, seeds[1].as_of_ms) == (AS_OF, 1_767_225_700_000)
    assert client.cursors == [None, "c2"]
    assert reads.taken == 2


async def test_an_empty_page_ends_the_read_whatever_its_cursor() -> None:
    client = Client({"market_positions": [], "cursor": "again"})
    assert await seeds_from(client) == []


@pytest.mark.parametrize(
    "failure",
    [
        TransportError("reset", sent=True),
        WireError("unreadable answer: truncated"),
        ExchangeError(429, "too_many_requests", "slow down"),
        ExchangeError(503, "service_unavailable", "later"),
    ],
)
async def test_a_passing_failure_is_tried_again(failure: WireError) -> None:
    client = Client(failure, failure, {"market_positions": [market()]})
    reads = Reads()
    assert [s.ticker for s in await seeds_from(client, reads)] == [TICKER]
    assert reads.taken == 3


async def test_a_refusal_fails_at_once_and_a_lasting_failure_after_every_try() -> None:
    refused = ExchangeError(400, "invalid_parameters", "bad")
    with pytest.raises(ExchangeError) as info:
        await seeds_from(Client(refused, {"market_positions": []}))
    assert info.value is refused
    down = [ExchangeError(500, "internal", "down") for _ in range(ATTEMPTS)]
    client = Client(*down)
    with pytest.raises(ExchangeError) as lasting:
        await seeds_from(client)
    assert lasting.value is down[-1]
    assert client.script == []
