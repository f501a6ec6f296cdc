"""The market maker's books: inventory and P&L from fills (average cost), and the worst case of
its orders out that the inventory limit bounds."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Literal

from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.demo.inventory import Inventory, Market
from kalshi_router.orders.state import State
from kalshi_router.orders.updates import FillEvent, OrderUpdate
from kalshi_router.outcome import Accepted, Cancelled, Expired, Rejected, Unknown

T = "KX-T"
D = Decimal
_trades = itertools.count()


def fill(
    side: Literal["bid", "ask"],
    price: str | Decimal,
    count: int | Decimal,
    *,
    fee: str = "0",
    key: str | None = None,
    order_id: str = "o",
    trade_id: str | None = None,
    ticker: str = T,
) -> FillEvent:
    return FillEvent(
        trade_id=trade_id or f"t{next(_trades)}",
        order_id=order_id,
        client_order_id=key,
        ticker=ticker,
        book_side=side,
        yes_price=D(price),
        count=D(count),
        fee=D(fee),
        is_taker=fee != "0",
        ts_ms=0,
    )


def update(
    key: str,
    state: State,
    *,
    filled: int = 0,
    with_fill: FillEvent | None = None,
    order_id: str = "o",
) -> OrderUpdate:
    return OrderUpdate(
        order_id=order_id,
        client_order_id=key,
        ticker=T,
        state=state,
        source="ws",
        filled=D(filled),
        fill=with_fill,
    )


def accepted(key: str, filled: int = 0, remaining: int = 1, order_id: str = "o") -> Accepted:
    return Accepted(
        client_order_id=key, order_id=order_id, fill_count=D(filled), remaining_count=D(remaining)
    )


def test_average_cost_realizes_what_closing_trades_make() -> None:
    market = Market(T)
    for event in (fill("bid", "0.40", 2), fill("bid", "0.50", 2), fill("ask", "0.60", 3)):
        market.apply(event)
    assert market.position == 1
    assert market.average_cost == D("0.45")
    assert market.realized == D("0.45")  # 3 x (0.60 - 0.45)
    assert market.unrealized(D("0.50")) == D("0.05")
    assert (market.bought, market.sold, market.cash) == (D(4), D(3), D(0))


def test_through_flat_the_rest_opens_at_the_fills_price() -> None:
    market = Market(T)
    market.apply(fill("bid", "0.45", 1))
    market.apply(fill("ask", "0.60", 3, fee="0.02"))
    assert market.position == -2
    assert market.realized == D("0.15")
    assert market.average_cost == D("0.60")
    assert market.fees == D("0.02")
    # Short 2 at 0.60 marked at 0.50: +0.20 unrealized.
    assert market.pnl(D("0.50")) == D("0.15") + D("0.20") - D("0.02")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["bid", "ask"]),
            st.integers(1, 99),
            st.integers(1, 500),
            st.integers(0, 3),
        ),
        max_size=40,
    ),
    st.integers(1, 99),
)
def test_pnl_is_cash_plus_inventory_at_the_mid_less_fees(
    fills: list[tuple[Literal["bid", "ask"], int, int, int]], mid_cents: int
) -> None:
    market = Market(T)
    position = cash = fees = D(0)
    for side, cents, hundredths, fee_cents in fills:
        price, count, fee = D(cents) / 100, D(hundredths) / 100, D(fee_cents) / 100
        market.apply(fill(side, price, count, fee=str(fee)))
        signed = count if side == "bid" else -count
        position += signed
        cash -= price * signed
        fees += fee
    mid = D(mid_cents) / 100
    assert market.position == position
    assert market.cash == cash
    assert market.fees == fees
    assert abs(market.pnl(mid) - (cash + position * mid - fees)) < D("1e-20")
    if position == 0:
        assert market.basis == 0


def test_an_order_out_counts_in_full_until_its_fills_are_counted() -> None:
    books = Inventory()
    books.submitted("a", T, "bid", D(5))
    assert books.worst_case(T, "bid") == 5
    books.settled("a", accepted("a", remaining=5))
    first = fill("bid", "0.49", 2, key="a")
    assert books.on_update(update("a", "partially_filled", filled=2, with_fill=first)) == first
    assert (books.markets[T].position, books.out(T, "bid")) == (D(2), D(3))
    # The cancel took the 3 left: nothing more can fill.
    books.cancelled("a", Cancelled(order_id="o", reduced_by=D(3)))
    assert books.out(T, "bid") == 0
    assert books.worst_case(T, "bid") == 2
    assert books.room(T, "bid", D(6)) == 4
    assert books.room(T, "ask", D(6)) == 8  # short side: 6 + the 2 held


def test_fills_known_from_a_final_state_count_until_they_arrive() -> None:
    books = Inventory()
    books.submitted("ioc", T, "bid", D(1))
    books.settled("ioc", accepted("ioc", filled=1, remaining=0))
    assert books.worst_case(T, "bid") == 1  # its fill has not come yet
    books.on_update(update("ioc", "filled", filled=1, with_fill=fill("bid", "0.55", 1, key="ioc")))
    assert (books.markets[T].position, books.out(T, "bid")) == (D(1), D(0))
    # A final update seen before its fill: the fill still counts as coming.
    books.submitted("b", T, "bid", D(2))
    books.settled("b", accepted("b", remaining=2, order_id="ob"))
    books.on_update(update("b", "filled", filled=2, order_id="ob"))
    assert books.out(T, "bid") == 2
    late = fill("bid", "0.50", 2, order_id="ob")
    books.on_update(update("b", "filled", filled=2, order_id="ob", with_fill=late))
    assert books.out(T, "bid") == 0


def test_orders_that_never_reached_the_book_cannot_fill() -> None:
    books = Inventory()
    for key in ("rej", "exp", "unk", "gone"):
        books.submitted(key, T, "ask", D(1))
    books.settled("rej", Rejected(code="x", message="x", client_order_id="rej"))
    books.settled("exp", Expired(reason="late"))
    books.settled("unk", Unknown(reason="lost"))
    assert books.out(T, "ask") == 2  # the unknown one, and "gone" not yet settled
    books.settled("gone", Unknown(reason="lost"))
    books.on_update(update("gone", "reconciled_absent", order_id="x"))
    assert books.out(T, "ask") == 1
    assert books.worst_case(T, "ask") == 1


def test_a_fill_counts_once_by_trade_id() -> None:
    books = Inventory()
    once = fill("ask", "0.51", 3, trade_id="same")
    assert books.on_update(update("k", "partially_filled", with_fill=once)) == once
    assert books.on_update(update("k", "partially_filled", with_fill=once)) is None
    assert books.markets[T].position == -3
    assert books.markets[T].fills == 1
