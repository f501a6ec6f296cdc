"""The ledger's fill list (what ``GET /portfolio/fills`` serves): each trade gives one fill to
each side, with the numbers the order records add up to, and listing it filtered and paged
finds each fill once.

Units: prices in $0.0001, counts in hundredths of a contract, money in micro-dollars.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kalshi_router.sim._ladder import taker_fee
from kalshi_router.sim.book import Exchange, OrderRejected, SimFill
from kalshi_router.sim.events import Event, Filled
from tests.sim.test_book import USERS, Clock, _apply, change_op, make_exchange, new, place_op

EVERYONE = (*USERS, "house")


def every_fill(ex: Exchange, user: str) -> list[SimFill]:
    return list(ex.fills(user))


def test_a_trade_gives_the_maker_and_the_taker_one_fill_each() -> None:
    clock = Clock()
    ex = make_exchange(clock)
    maker = ex.place(new(user_id="u1", side="ask", price=5200, count=300)).order
    clock.ms += 1500
    taker = ex.place(new(user_id="u2", side="bid", price=5300, count=500)).order
    (made,) = every_fill(ex, "u1")
    (took,) = every_fill(ex, "u2")
    assert made.trade_id == took.trade_id != ""
    assert (made.order_id, made.is_taker, made.fee) == (maker.order_id, False, 0)
    assert (took.order_id, took.is_taker, took.fee) == (taker.order_id, True, taker_fee(5200, 300))
    for fill in (made, took):
        # The maker's price, and its side's own book side on each fill.
        assert (fill.price, fill.qty, fill.ts_ms, fill.seq) == (5200, 300, clock.ms, 1)
    assert (made.side, took.side) == ("ask", "bid")


def test_a_fill_keeps_the_client_order_id_it_was_made_under() -> None:
    ex = make_exchange(Clock())
    resting = ex.place(new(user_id="u1", client_order_id="before", side="ask", count=300)).order
    ex.place(new(user_id="u2", side="bid", count=100))
    ex.amend(
        "u1",
        resting.order_id,
        ticker="T",
        side="ask",
        price=resting.price,
        count=200,
        updated_client_order_id="after",
    )
    ex.place(new(user_id="u2", side="bid", count=100))
    assert [f.client_order_id for f in every_fill(ex, "u1")] == ["after", "before"]


def test_the_fill_events_carry_the_numbers_the_fill_list_keeps() -> None:
    ex = make_exchange(Clock())
    events: list[Event] = []
    ex.observe(events.append)
    ex.seed("T", "house", "ask", 5100, 200)
    ex.seed("T", "house", "ask", 5200, 200)
    ex.place(new(user_id="u1", side="bid", price=5200, count=300))
    sent = [
        (e.order.user_id, e.trade_id, e.is_taker, e.price, e.qty, e.fee)
        for e in events
        if isinstance(e, Filled)
    ]
    kept = [
        (user, f.trade_id, f.is_taker, f.price, f.qty, f.fee)
        for user in EVERYONE
        for f in reversed(every_fill(ex, user))
    ]
    assert len(sent) == 4
    assert sorted(sent) == sorted(kept)


def test_filters_and_pages() -> None:
    clock = Clock()
    ex = make_exchange(clock)
    for ticker in ("A", "B", "A"):
        ex.seed(ticker, "house", "ask", 5000, 100)
        ex.place(new(user_id="u1", ticker=ticker, count=100, price=5000))
        clock.ms += 1000
    fills = every_fill(ex, "u1")
    assert [f.seq for f in fills] == [3, 2, 1]
    assert [f.seq for f in ex.fills("u1", tickers={"A"})] == [3, 1]
    assert [f.seq for f in ex.fills("u1", tickers={"A", "B"})] == [3, 2, 1]
    assert [f.seq for f in ex.fills("u1", order_id=fills[1].order_id)] == [2]
    second = fills[1].ts_ms
    assert [f.seq for f in ex.fills("u1", min_ts_ms=second)] == [3, 2]
    assert [f.seq for f in ex.fills("u1", max_ts_ms=second)] == [2, 1]
    assert [f.seq for f in ex.fills("u1", before_seq=3)] == [2, 1]
    assert [f.seq for f in ex.fills("u1", before_seq=1)] == []
    assert [f.seq for f in ex.fills("u1", subaccount=1)] == []
    assert list(ex.fills("nobody")) == []


def _check_fills(ex: Exchange) -> None:
    trades: Counter[str] = Counter()
    takers: Counter[str] = Counter()
    for user in EVERYONE:
        fills = every_fill(ex, user)
        assert [f.seq for f in fills] == list(range(len(fills), 0, -1))
        assert len({f.trade_id for f in fills}) == len(fills), "one user on both sides"
        trades.update(f.trade_id for f in fills)
        takers.update(f.trade_id for f in fills if f.is_taker)
        for order in ex.orders(user):
            mine = [f for f in fills if f.order_id == order.order_id]
            assert sum(f.qty for f in mine) == order.fill_count
            assert sum(f.fee for f in mine) == order.taker_fees + order.maker_fees
            taken = sum(f.price * f.qty for f in mine if f.is_taker)
            made = sum(f.price * f.qty for f in mine if not f.is_taker)
            assert (taken, made) == (order.taker_fill_cost, order.maker_fill_cost)
            assert all(f.ticker == order.ticker and f.side == order.side for f in mine)
        # Paging by seq, one at a time, finds every fill once, newest first.
        paged: list[SimFill] = []
        before = None
        while page := list(ex.fills(user, before_seq=before))[:1]:
            paged += page
            before = page[0].seq
        assert paged == fills
    assert set(trades.values()) <= {2}, "each trade: one maker's fill, one taker's"
    assert takers.keys() == trades.keys()
    assert set(takers.values()) <= {1}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(place_op, change_op), max_size=40))
def test_random_sequences_keep_the_fills_and_the_orders_agreeing(
    ops: list[tuple[Any, ...]],
) -> None:
    clock = Clock()
    ex = make_exchange(clock, starting_balance=20_000_000)
    for step, op in enumerate(ops):
        try:
            _apply(ex, clock, op, step)
        except OrderRejected as err:
            if err.code == "not_found":
                raise
    _check_fills(ex)
