"""Exposure: position from fills, open orders from the tracker, pending creates reserved, each at
its worst case; every figure goes back to what fills left once orders end."""

from __future__ import annotations

from decimal import Decimal

from kalshi_router.intent import AmendIntent, OrderIntent
from kalshi_router.orders.ledger import Ledger
from kalshi_router.orders.updates import OrderUpdate
from kalshi_router.risk.exposure import Exposure, cost
from tests.orders.frames import fill, rest, user_order

D = Decimal
T = "KXHIGHNY-26DEC31-T60"
DAY = 86_400


def bid(
    count: int | str = 10, price: str = "0.40", cid: str = "c-1", ticker: str = T
) -> OrderIntent:
    return OrderIntent.bid(ticker, price=price, count=count, client_order_id=cid)


def ask(
    count: int | str = 10, price: str = "0.40", cid: str = "c-2", ticker: str = T
) -> OrderIntent:
    return OrderIntent.ask(ticker, price=price, count=count, client_order_id=cid)


def update(
    state: str = "resting",
    *,
    filled: str = "0",
    remaining: str | None = "10",
    order_id: str | None = "o-1",
    cid: str | None = "c-1",
    side: str = "bid",
    price: str = "0.40",
    ticker: str | None = T,
) -> OrderUpdate:
    return OrderUpdate(
        order_id=order_id,
        client_order_id=cid,
        ticker=ticker,
        state=state,  # type: ignore[arg-type]
        source="ws",
        book_side=side,  # type: ignore[arg-type]
        yes_price=D(price),
        initial=D(10),
        filled=D(filled),
        remaining=None if remaining is None else D(remaining),
    )


def with_fill(
    trade: str, count: str, *, side: str = "bid", price: str = "0.40", **view: object
) -> OrderUpdate:
    base = update(side=side, price=price, **view)  # type: ignore[arg-type]
    event = fill(
        trade,
        count,
        price,
        order_id=base.order_id or "o-1",
        side=side,  # type: ignore[arg-type]
        client_order_id=base.client_order_id,
        ticker=base.ticker or T,
    )
    return OrderUpdate(**{**{f: getattr(base, f) for f in base.__struct_fields__}, "fill": event})


def whole(value: Decimal) -> int:
    assert value == int(value), value
    return int(value)


def figures(exposure: Exposure, ticker: str = T) -> tuple[int, int, int, int]:
    """Position, open and pending bids, asks, open orders (whole contracts in these tests)."""
    return (
        whole(exposure.position(ticker)),
        whole(exposure.bids(ticker)),
        whole(exposure.asks(ticker)),
        exposure.open_orders(ticker),
    )


def test_cost_is_the_price_of_the_side_bought() -> None:
    assert cost("bid", D("0.40")) == D("0.40")
    assert cost("ask", D("0.40")) == D("0.60")


def test_a_reserved_create_counts_at_full_size_until_released() -> None:
    exposure = Exposure()
    exposure.reserve("c-1", bid(10))
    exposure.reserve("c-2", ask(4))
    assert figures(exposure) == (0, 10, 4, 2)
    assert exposure.worst_long(T) == 10
    assert exposure.worst_short(T) == 4
    assert exposure.bought_today(0) == D("4.00") + D("2.40")
    assert exposure.reserved_creates() == 2
    exposure.release("c-1")
    exposure.release("c-2")
    exposure.release("c-2")  # twice, or never reserved: nothing
    assert figures(exposure) == (0, 0, 0, 0)
    assert exposure.bought_today(0) == 0
    assert exposure.orders() == 0
    assert exposure.reserved_creates() == 0


def test_the_tracker_view_replaces_the_reservation() -> None:
    exposure = Exposure()
    exposure.reserve("c-1", bid(10))
    exposure.settled("c-1")  # accepted: the key is done, the worst case stays
    assert exposure.reserved_creates() == 0
    assert figures(exposure) == (0, 10, 0, 1)
    # The answer says 3 filled at placement, before the fill itself arrives: still 10 at worst.
    exposure.on_update(update("partially_filled", filled="3", remaining="7"))
    assert figures(exposure) == (0, 10, 0, 1)
    exposure.on_update(with_fill("t-1", "3", state="partially_filled", filled="3", remaining="7"))
    assert figures(exposure) == (3, 7, 0, 1)
    exposure.on_update(update("cancelled", filled="3", remaining="0"))
    assert figures(exposure) == (3, 0, 0, 0)
    assert exposure.orders() == 0
    assert exposure.bought_today(0) == D("1.20")  # the fill of 3 at $0.40


def test_a_fill_before_the_order_is_counted_once() -> None:
    exposure = Exposure()
    exposure.reserve("c-1", bid(10))
    # The feed's fill comes first: the order's count is unknown, the reservation stands.
    exposure.on_update(with_fill("t-1", "4", state="partially_filled", filled="4", remaining=None))
    assert figures(exposure) == (4, 6, 0, 1)
    exposure.on_update(with_fill("t-1", "4", state="partially_filled", filled="4", remaining=None))
    assert figures(exposure) == (4, 6, 0, 1)  # the same trade again: nothing
    exposure.on_update(update("partially_filled", filled="4", remaining="6"))
    assert figures(exposure) == (4, 6, 0, 1)
    exposure.on_update(with_fill("t-2", "6", state="filled", filled="10", remaining="0"))
    assert figures(exposure) == (10, 0, 0, 0)
    assert exposure.orders() == 0


def test_a_final_order_keeps_fills_it_reports_until_they_are_counted() -> None:
    exposure = Exposure()
    exposure.on_update(update("filled", filled="10", remaining="0"))
    # Filled by its snapshot, but no fill counted: the position may still move by 10.
    assert figures(exposure) == (0, 10, 0, 0)
    exposure.on_update(with_fill("t-1", "10", state="filled", filled="10", remaining="0"))
    assert figures(exposure) == (10, 0, 0, 0)
    assert exposure.orders() == 0


def test_orders_the_router_did_not_place_count_too() -> None:
    exposure = Exposure()
    exposure.on_update(update("resting", side="ask", remaining="5", cid=None, order_id="x"))
    assert figures(exposure) == (0, 0, 5, 1)
    assert exposure.worst_short(T) == 5
    exposure.on_update(update("cancelled", side="ask", remaining="0", cid=None, order_id="x"))
    assert figures(exposure) == (0, 0, 0, 0)
    # An update that names no ticker or side cannot be counted, and is left alone.
    exposure.on_update(update("resting", ticker=None, order_id="y"))
    assert exposure.orders() == 0


def test_a_fill_of_an_unknown_order_moves_the_position() -> None:
    exposure = Exposure()
    event = fill("t-9", "2", "0.30", order_id="z", client_order_id=None, side="ask", ticker=T)
    exposure.on_update(
        OrderUpdate(
            order_id="z",
            client_order_id=None,
            ticker=None,
            state="partially_filled",
            source="rest",
            fill=event,
        )
    )
    assert exposure.position(T) == -2
    assert exposure.bought_today(1) == D("1.40")  # an ask buys NO at 1 - 0.30


def test_an_unknown_create_proved_absent_is_released() -> None:
    exposure = Exposure()
    exposure.reserve("c-1", bid(10))
    # Settled Unknown: the key and the worst case stay; the tracker's proof of absence ends it.
    exposure.on_update(update("reconciled_absent", remaining="0", order_id=None))
    assert figures(exposure) == (0, 0, 0, 0)
    exposure.release("c-1")  # the router's release after that changes nothing
    assert figures(exposure) == (0, 0, 0, 0)
    assert exposure.orders() == 0


def test_bought_today_is_per_utc_day() -> None:
    exposure = Exposure()
    event = fill("t-1", "10", "0.25", order_id="o", client_order_id=None, ticker=T)
    exposure.on_update(
        OrderUpdate(
            order_id="o", client_order_id=None, ticker=T, state="filled", source="ws", fill=event
        )
    )
    assert event.ts_ms == 1  # the first millisecond of day 0
    assert exposure.bought_today(DAY - 1) == D("2.50")
    exposure.reserve("c-1", bid(10, "0.30"))
    assert exposure.bought_today(DAY) == D("3.00")  # yesterday's fill no more, the order yes
    # Days before the latest asked for are forgotten: the fill no longer counts on its day.
    assert exposure.bought_today(0) == D("3.00")


def test_set_position_seeds_what_fills_move() -> None:
    exposure = Exposure()
    exposure.set_position(T, D(-7))
    exposure.reserve("c-1", bid(3))
    assert exposure.worst_long(T) == -4
    assert exposure.worst_short(T) == 7


def test_an_amend_reserves_its_new_total_until_the_tracker_shows_it() -> None:
    exposure = Exposure()
    exposure.on_update(update("resting", remaining="10"))
    assert exposure.order_total("o-1") == 10
    amend = AmendIntent(order_id="o-1", ticker=T, side="bid", price=D("0.45"), count=D(15))
    exposure.reserve_amend("o-1", amend)
    assert figures(exposure) == (0, 15, 0, 1)
    assert exposure.bought_today(0) == D("15") * D("0.45")  # the dearer price, at worst
    assert exposure.order_total("o-1") == 15
    exposure.release_amend("o-1")  # refused by the exchange
    assert figures(exposure) == (0, 10, 0, 1)
    assert exposure.reserved_amends() == 0
    exposure.reserve_amend("o-1", amend)
    exposure.amend_settled("o-1")  # amended: the total stays until the tracker shows it
    exposure.on_update(update("resting", remaining="10"))  # an older view: still 15
    assert figures(exposure) == (0, 15, 0, 1)
    exposure.on_update(update("resting", remaining="15", price="0.45"))
    assert figures(exposure) == (0, 15, 0, 1)
    exposure.on_update(update("cancelled", remaining="0"))
    assert figures(exposure) == (0, 0, 0, 0)
    assert exposure.orders() == 0


def test_an_amend_of_an_order_not_known_counts_its_whole_total() -> None:
    exposure = Exposure()
    assert exposure.order_total("o-9") is None
    exposure.reserve_amend(
        "o-9", AmendIntent(order_id="o-9", ticker=T, side="ask", price=D("0.40"), count=D(6))
    )
    assert figures(exposure) == (0, 0, 6, 1)
    exposure.release_amend("o-9")
    assert figures(exposure) == (0, 0, 0, 0)
    assert exposure.orders() == 0


def test_an_order_corrected_back_after_it_ended_keeps_its_counted_fills() -> None:
    exposure = Exposure()
    exposure.on_update(with_fill("t-1", "4", state="partially_filled", filled="4", remaining="6"))
    exposure.on_update(update("reconciled_absent", filled="4", remaining="0"))
    assert figures(exposure) == (4, 0, 0, 0)
    assert exposure.orders() == 0
    # REST finds it after all: its 4 fills are counted already, 6 may still fill.
    exposure.on_update(update("partially_filled", filled="4", remaining="6"))
    assert figures(exposure) == (4, 6, 0, 1)


def test_fed_by_the_real_ledger() -> None:
    """The tracker's own updates, in an order the feed may give them: fill, frames, answer."""
    ledger, exposure = Ledger(), Exposure()
    exposure.reserve(
        "c-1", OrderIntent.bid("FED-23DEC-T3.00", price="0.35", count=10, client_order_id="c-1")
    )
    ticker = "FED-23DEC-T3.00"
    steps = [
        ledger.on_fill(fill("t-1", "2")),
        ledger.on_user_order(user_order("resting", "2", "8")),
        ledger.expect(
            order_id=user_order("resting").order_id,
            client_order_id="c-1",
            ticker=ticker,
            book_side="bid",
            yes_price=D("0.35"),
            initial=D(10),
            filled=D(0),
            remaining=D(10),
        ),
        ledger.on_fill(fill("t-1", "2")),
        ledger.on_rest_order(rest("resting", "5", "5")),
        ledger.on_fill(fill("t-2", "3")),
        ledger.on_user_order(user_order("canceled", "5", "0")),
    ]
    seen = []
    for updates in steps:
        for one in updates:
            exposure.on_update(one)
        seen.append((whole(exposure.position(ticker)), whole(exposure.bids(ticker))))
    assert seen == [(2, 8), (2, 8), (2, 8), (2, 8), (2, 8), (5, 5), (5, 0)]
    assert exposure.open_orders(ticker) == 0
    assert exposure.orders() == 0
