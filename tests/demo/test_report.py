"""What the demo prints of the bot's books: fill lines, limit lines, the table per market."""

from __future__ import annotations

from decimal import Decimal

from kalshi_router.demo.inventory import Inventory, Market
from kalshi_router.demo.market_maker import LimitEvent
from kalshi_router.demo.report import (
    agreement,
    books_table,
    contracts,
    dollars,
    fill_line,
    fills_summary,
    limit_line,
)
from kalshi_router.orders.updates import FillEvent, OrderUpdate

T40, T45 = "KX-T40", "KX-T45"


def fill(ticker: str, side: str, price: str, count: str, taker: bool = False) -> FillEvent:
    return FillEvent(
        trade_id=f"{ticker}{side}{price}{count}",
        order_id="o",
        client_order_id=None,
        ticker=ticker,
        book_side="bid" if side == "bid" else "ask",
        yes_price=Decimal(price),
        count=Decimal(count),
        fee=Decimal("0.02") if taker else Decimal(0),
        is_taker=taker,
        ts_ms=0,
    )


def test_counts_and_money_read_plainly() -> None:
    counts = ("2.00", "-3", "0.50", "0E-2")
    assert [contracts(Decimal(x)) for x in counts] == ["2", "-3", "0.5", "0"]
    money = ("0.1", "-0.004", "0", "-1.255")
    assert [dollars(Decimal(x)) for x in money] == ["+0.10", "+0.00", "+0.00", "-1.26"]


def test_a_fill_line_says_what_was_traded_and_where_the_market_stands() -> None:
    market = Market(T40)
    sold = fill(T40, "ask", "0.5100", "2.00")
    market.apply(sold)
    line = fill_line(sold, market, Decimal("0.50"))
    assert line.split() == [
        *("fill", T40, "sold", "2", "@", "0.51", "maker"),
        *("inventory", "-2", "P&L", "+0.02"),
    ]
    taken = fill(T40, "bid", "0.55", "1", taker=True)
    assert "bought   1 @ 0.55 taker" in fill_line(taken, market, Decimal("0.50"))


def test_limit_lines_name_the_side_the_inventory_and_the_limit() -> None:
    paused = LimitEvent(T40, "bid", True, Decimal(5), Decimal(1))
    assert limit_line(paused, Decimal(6)) == (
        f"limit  {T40}  bids paused: long 5 + 1 on order, at the limit of 6"
    )
    back = LimitEvent(T40, "ask", False, Decimal(4), Decimal(0))
    assert limit_line(back, Decimal(6)) == (
        f"limit  {T40}  asks quoted again: short 4 + 0 on order, inside 6"
    )


def test_the_table_has_a_row_per_market_and_the_total() -> None:
    books = Inventory()
    for event in (fill(T40, "bid", "0.49", "2"), fill(T40, "ask", "0.51", "1")):
        books.on_update(
            OrderUpdate(
                order_id="o", client_order_id=None, ticker=T40, state="filled", source="ws",
                fill=event,
            )
        )  # fmt: skip
    mids = {T40: Decimal("0.50"), T45: Decimal("0.48")}
    header, t40, t45, total = books_table(books, [T40, T45], mids.__getitem__)
    assert header.split() == [
        *("market", "inventory", "bought", "sold", "mid"),
        *("realized", "unrealized", "fees", "P&L"),
    ]
    # Bought 2 at 0.49, sold 1 at 0.51: +0.02 realized, 1 held marked +0.01 at 0.50.
    assert t40.split() == [T40, "1", "2", "1", "0.50", "+0.02", "+0.01", "0.00", "+0.03"]
    assert t45.split() == [T45, "0", "0", "0", "0.48", "+0.00", "+0.00", "0.00", "+0.00"]
    assert total.split() == ["total", "+0.03"]
    assert fills_summary(books, [T40, T45]) == "2 fills (2 as maker, 0 as taker)"


def test_agreement_names_what_differs() -> None:
    assert agreement(True, {T40: True}).startswith("books agree with router.orders.positions()")
    assert agreement(False, {T40: True}).startswith("books DISAGREE")
    assert f"(DIFFER on {T45})" in agreement(True, {T40: True, T45: False})
