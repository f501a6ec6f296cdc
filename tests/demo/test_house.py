"""The demo's house trader: it takes the bot's best quote and nothing of its own, and leaves no
order behind."""

from __future__ import annotations

from kalshi_router.demo.house import HOUSE, HouseTaker, HouseTrade
from kalshi_router.sim.book import Exchange, NewOrder, Side

T = "KX-HOUSE"
BOT = "bot"


def exchange() -> Exchange:
    book = Exchange(clock_ms=lambda: 1_000)
    # The simulator's house liquidity: bids up to 0.45, asks from 0.55.
    book.seed(T, HOUSE, "bid", 4500, 10_000)
    book.seed(T, HOUSE, "ask", 5500, 10_000)
    return book


def quote(book: Exchange, side: Side, price: int, count: int, key: str) -> None:
    new = NewOrder(BOT, T, key, side, price, count, "good_till_canceled", "taker_at_cross")
    book.place(new)


def resting(book: Exchange, user: str) -> list[tuple[str, int, int]]:
    orders = book.orders(user, ticker=T, status="resting")
    return sorted((o.side, o.price, o.remaining_count) for o in orders)


def test_it_takes_the_bots_best_bid_at_its_price_up_to_its_size() -> None:
    book = exchange()
    quote(book, "bid", 4800, 200, "low")
    quote(book, "bid", 4900, 300, "best")
    house = HouseTaker(book, BOT, (T,))

    assert house.take(T, "bid", 2) == HouseTrade(T, "bid", 4900, 200)
    assert book.position(BOT, T) == 200
    assert house.take(T, "bid", 5) == HouseTrade(T, "bid", 4900, 100)
    assert book.position(BOT, T) == 300
    # The house's own orders are as seeded: it rests nothing and met none of its own.
    assert resting(book, HOUSE) == [("ask", 5500, 10_000), ("bid", 4500, 10_000)]
    assert resting(book, BOT) == [("bid", 4800, 200)]
    assert house.trades == [HouseTrade(T, "bid", 4900, 200), HouseTrade(T, "bid", 4900, 100)]


def test_it_lifts_the_bots_best_ask() -> None:
    book = exchange()
    quote(book, "ask", 5200, 500, "a")
    house = HouseTaker(book, BOT, (T,))
    assert house.take(T, "ask", 3) == HouseTrade(T, "ask", 5200, 300)
    assert book.position(BOT, T) == -300


def test_a_quote_no_better_than_the_houses_is_left_alone() -> None:
    book = exchange()
    quote(book, "bid", 4500, 100, "level")  # behind the house's bid at the same price
    quote(book, "ask", 5700, 100, "far")
    house = HouseTaker(book, BOT, (T,))
    assert house.take(T, "bid", 1) is None
    assert house.take(T, "ask", 1) is None
    assert book.position(BOT, T) == 0
    assert house.trades == []


def test_trade_once_turns_to_the_side_the_bot_still_quotes() -> None:
    book = exchange()
    quote(book, "ask", 5100, 10_000, "only-ask")
    house = HouseTaker(book, BOT, (T,), seed=3, persistence=1.0)
    for _ in range(5):
        trade = house.trade_once()
        assert trade is not None
        assert trade.side == "ask"
    assert book.position(BOT, T) == -sum(t.count for t in house.trades)
    assert HouseTaker(exchange(), BOT, (T,)).trade_once() is None
