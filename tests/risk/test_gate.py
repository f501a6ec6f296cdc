"""The risk gate: each limit at its edge (passes) and over it (refused, with the code and a
message naming the limit, the value and the rule), the strictest rule winning, the trading
states, and what outcomes do to reservations."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from kalshi_router.errors import ConfigError
from kalshi_router.intent import AmendIntent, OrderIntent
from kalshi_router.orders.updates import OrderUpdate
from kalshi_router.outcome import Accepted, Amended, Closed, Expired, Rejected, Unknown
from kalshi_router.risk import ClientLimits, Exposure, RiskConfig, RiskGate, TickerLimits
from tests.orders.frames import fill

D = Decimal
T = "KXHIGHNY-26DEC31-T60"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def gate(
    config: RiskConfig | None = None, clock: Clock | None = None, wall: Clock | None = None
) -> RiskGate:
    """A gate on a steady clock (orders per second) and a wall clock (the UTC day)."""
    return RiskGate(
        config or RiskConfig(), Exposure(), clock or Clock(), wall_clock=wall or Clock()
    )


def bid(count: int | str = 10, price: str = "0.40", ticker: str = T) -> OrderIntent:
    return OrderIntent.bid(ticker, price=price, count=count)


def ask(count: int | str = 10, price: str = "0.40", ticker: str = T) -> OrderIntent:
    return OrderIntent.ask(ticker, price=price, count=count)


def refused(result: Rejected | None, code: str) -> str:
    assert result is not None
    assert result.code == code
    assert result.http_status == 0
    return result.message


def resting(order_id: str, side: str, remaining: str, ticker: str = T) -> OrderUpdate:
    return OrderUpdate(
        order_id=order_id,
        client_order_id=None,
        ticker=ticker,
        state="resting",
        source="ws",
        book_side=side,  # type: ignore[arg-type]
        yes_price=D("0.40"),
        remaining=D(remaining),
    )


def test_no_limits_passes_everything_and_reserves_nothing() -> None:
    risk = gate()
    assert risk.check_create(bid(10**6)) is None
    assert (
        risk.check_amend(
            AmendIntent(order_id="o", ticker=T, side="bid", price=D("0.5"), count=D(10**6))
        )
        is None
    )
    figures = risk.figures()
    assert figures.state == "active"
    assert figures.reserved_creates == 0
    assert figures.refusals == {}
    assert not risk.reserving()  # so the router skips ``settled`` altogether


def test_max_contracts_edge_and_over() -> None:
    risk = gate(RiskConfig(max_contracts=D(10)))
    assert risk.check_create(bid(10)) is None
    intent = bid("10.01")
    result = risk.check_create(intent)
    message = refused(result, "risk.max_contracts")
    assert message == "max_contracts 10 for every ticker: this order is 10.01 contracts"
    assert result is not None
    assert result.client_order_id == intent.client_order_id
    assert result.details == "limit=10 value=10.01 scope=every ticker"


def test_max_notional_is_the_worst_case_cost_of_each_side() -> None:
    risk = gate(RiskConfig(max_notional=D("4")))
    assert risk.check_create(bid(10, "0.40")) is None  # $4.00 exactly
    assert risk.check_create(ask(10, "0.60")) is None  # buys NO at $0.40: $4.00
    message = refused(risk.check_create(bid(10, "0.41")), "risk.max_notional")
    assert (
        message
        == "max_notional $4.00 for every ticker: this bid costs $4.10 at worst (10 at $0.41)"
    )
    message = refused(risk.check_create(ask(10, "0.59")), "risk.max_notional")
    assert "this ask costs $4.10 at worst (10 at $0.41, 1 - its YES price)" in message


def test_price_collar_bounds_are_inclusive() -> None:
    risk = gate(RiskConfig(price_min=D("0.05"), price_max=D("0.95")))
    assert risk.check_create(bid(1, "0.05")) is None
    assert risk.check_create(ask(1, "0.95")) is None
    message = refused(risk.check_create(bid(1, "0.04")), "risk.price_collar")
    assert message == "price_min $0.05 for every ticker: price $0.04 is below it"
    message = refused(risk.check_create(ask(1, "0.9501")), "risk.price_collar")
    assert message == "price_max $0.95 for every ticker: price $0.9501 is above it"


def test_max_open_orders_counts_resting_and_pending() -> None:
    risk = gate(RiskConfig(max_open_orders=3))
    risk.exposure.on_update(resting("x", "ask", "5"))  # an order placed elsewhere
    assert risk.check_create(bid(1)) is None
    assert risk.check_create(bid(1)) is None  # the third open order: at the edge
    message = refused(risk.check_create(ask(1)), "risk.max_open_orders")
    assert (
        message == f"max_open_orders 3 for every ticker: {T} has 3 open and pending orders already"
    )
    assert risk.check_create(bid(1, ticker="OTHER-1")) is None  # per ticker


def test_max_position_long_counts_position_resting_and_pending() -> None:
    risk = gate(RiskConfig(max_position=D(100)))
    risk.exposure.set_position(T, D(80))
    risk.exposure.on_update(resting("x", "bid", "15"))
    assert risk.check_create(bid(5)) is None  # 80 + 15 + 5 = 100: the edge
    message = refused(risk.check_create(bid(1)), "risk.max_position")
    assert message == (
        "max_position 100 for every ticker: worst case long 101 "
        "(position 80, open and pending bids 20, this bid 1)"
    )
    # Asks are the other side: 100 asks against a position of 80 are 20 short at worst.
    assert risk.check_create(ask(100)) is None
    assert risk.exposure.worst_short(T) == 20


def test_max_position_short() -> None:
    risk = gate(RiskConfig(max_position=D(10)))
    risk.exposure.set_position(T, D(-4))
    assert risk.check_create(ask(6)) is None
    message = refused(risk.check_create(ask("0.01")), "risk.max_position")
    assert "worst case short 10.01 (position -4, open and pending asks 6, this ask 0.01)" in message


def test_concurrent_creates_racing_for_the_same_room() -> None:
    risk = gate(RiskConfig(max_position=D(25)))
    results = [risk.check_create(bid(10)) for _ in range(5)]
    assert [result is None for result in results] == [True, True, False, False, False]
    assert risk.exposure.worst_long(T) == 20
    assert risk.check_create(bid(5)) is None  # what room is left
    assert risk.figures().refusals == {"risk.max_position": 3}


def test_max_daily_notional_counts_fills_and_open_orders() -> None:
    risk = gate(RiskConfig(max_daily_notional=D("10")), wall=Clock(86_400 * 20_000 + 10))
    first = bid(10, "0.40")
    assert risk.check_create(first) is None  # $4
    assert risk.check_create(ask(10, "0.40")) is None  # $6: $10 exactly
    message = refused(risk.check_create(bid("0.01", "0.01")), "risk.max_daily_notional")
    assert message == (
        "max_daily_notional $10.00 for every ticker: bought today at worst $10.0001 "
        "(fills, open and pending orders $10.00, this bid $0.0001)"
    )
    risk.settled(first.client_order_id, Rejected(code="x", message="no"))
    assert risk.check_create(bid(10, "0.40")) is None  # the room came back


def test_the_day_is_the_wall_clock_s_and_fills_are_dated_by_theirs() -> None:
    day = 20_000
    wall = Clock(86_400 * day + 100)
    # The steady clock (time.monotonic in the router) counts from boot: it has no day.
    risk = gate(RiskConfig(max_daily_notional=D("5")), clock=Clock(42.0), wall=wall)
    event = fill("t-1", "10", "0.45", order_id="o", client_order_id=None, ticker=T)
    event = msgspec.structs.replace(event, ts_ms=(86_400 * day + 50) * 1000)
    risk.exposure.on_update(
        OrderUpdate(
            order_id="o", client_order_id=None, ticker=T, state="filled", source="ws", fill=event
        )
    )
    assert risk.check_create(bid(1, "0.50")) is None  # $4.50 filled today + $0.50: the edge
    refused(risk.check_create(bid("0.01", "0.50")), "risk.max_daily_notional")
    wall.now += 86_400  # the next UTC day: yesterday's fill no longer counts
    assert risk.check_create(bid(9, "0.50")) is None  # $0.50 open + $4.50


def test_max_orders_per_s_refuses_without_waiting_and_refills() -> None:
    clock = Clock()
    risk = gate(RiskConfig(max_orders_per_s=2.0), clock)
    assert risk.check_create(bid(1)) is None
    assert risk.check_create(bid(1)) is None
    message = refused(risk.check_create(bid(1)), "risk.max_orders_per_s")
    assert message.startswith("max_orders_per_s 2 for every ticker: this router has sent its")
    assert "the next in 0.5 s" in message
    clock.now += 0.5
    assert risk.check_create(bid(1)) is None
    assert risk.check_create(bid(1)) is not None


def test_max_orders_per_s_is_per_client_and_per_rule() -> None:
    clock = Clock()
    config = RiskConfig(
        max_orders_per_s=2.0,
        tickers=[TickerLimits(match="KXHIGHNY-*", max_orders_per_s=1.0)],
    )
    risk = gate(config, clock)
    assert risk.check_create(bid(1), "a") is None
    refused(risk.check_create(bid(1), "a"), "risk.max_orders_per_s")  # KXHIGHNY-*: 1/s
    assert risk.check_create(bid(1, ticker="OTHER"), "a") is None  # [risk]: the 2nd of 2
    message = refused(risk.check_create(bid(1, ticker="OTHER"), "a"), "risk.max_orders_per_s")
    assert "for every ticker: client a has sent" in message
    assert risk.check_create(bid(1), "b") is None  # another client, buckets of its own


def test_a_refusal_by_another_limit_spends_no_token() -> None:
    risk = gate(RiskConfig(max_orders_per_s=1.0, max_contracts=D(5)))
    refused(risk.check_create(bid(6)), "risk.max_contracts")
    assert risk.check_create(bid(5)) is None


def test_the_strictest_rule_wins_and_is_named() -> None:
    config = RiskConfig(
        max_position=D(100),
        price_min=D("0.02"),
        tickers=[
            TickerLimits(match="KXHIGHNY-*", max_position=D(50), price_min=D("0.10")),
            TickerLimits(match=T, max_position=D(70)),
            TickerLimits(match="KXOTHER-*", max_position=D(1)),
        ],
        clients=[ClientLimits(name="bot-a", max_position=D(20), price_min=D("0.05"))],
    )
    risk = gate(config)
    message = refused(risk.check_create(bid(51)), "risk.max_position")
    assert message.startswith("max_position 50 for KXHIGHNY-*: worst case long 51")
    message = refused(risk.check_create(bid(21), "bot-a"), "risk.max_position")
    assert message.startswith("max_position 20 for client bot-a:")
    message = refused(risk.check_create(bid(1, "0.09"), "bot-a"), "risk.price_collar")
    assert message.startswith("price_min $0.10 for KXHIGHNY-*:")  # the higher floor
    assert risk.check_create(bid(99, ticker="KXLOW-1"), "bot-b") is None  # only [risk]
    message = refused(risk.check_create(bid(1, "0.01", ticker="KXLOW-1")), "risk.price_collar")
    assert message.startswith("price_min $0.02 for every ticker:")


def test_halted_refuses_creates_and_amends_until_resumed() -> None:
    risk = gate()
    risk.set_state("halted")
    assert risk.state == "halted"
    message = refused(risk.check_create(bid(1)), "risk.halted")
    assert "trading is halted" in message
    amend = AmendIntent(order_id="o-1", ticker=T, side="bid", price=D("0.4"), count=D(1))
    result = risk.check_amend(amend)
    refused(result, "risk.halted")
    assert result is not None
    assert result.order_id == "o-1"
    assert risk.figures().refusals == {"risk.halted": 2}
    assert risk.figures().state == "halted"
    risk.set_state("active")
    assert risk.check_create(bid(1)) is None


def test_a_bad_state_is_a_clear_error() -> None:
    risk = gate()
    with pytest.raises(ConfigError, match="state: must be one of active, reducing, halted"):
        risk.set_state("stopped")  # type: ignore[arg-type]
    assert risk.state == "active"
    assert gate(RiskConfig(state="halted")).state == "halted"


def test_reducing_lets_only_orders_that_cannot_add_exposure_pass() -> None:
    risk = gate(RiskConfig(state="reducing"))
    risk.exposure.set_position(T, D(-10))
    assert risk.check_create(bid(6)) is None
    assert risk.check_create(bid(4)) is None  # worst case long -10 + 6 + 4 = 0: the edge
    message = refused(risk.check_create(bid("0.01")), "risk.reducing")
    assert message == (
        f"trading is reducing: only orders that cannot add exposure pass; this bid could leave "
        f"{T} worst case long 0.01 (position -10, open and pending bids 10, this bid 0.01)"
    )
    refused(risk.check_create(ask(1)), "risk.reducing")  # short already: any ask adds
    other = "KXLONG-1"
    risk.exposure.set_position(other, D(3))
    assert risk.check_create(ask(3, ticker=other)) is None
    refused(risk.check_create(ask(1, ticker=other)), "risk.reducing")
    refused(risk.check_create(bid(1, ticker="KXFLAT-1")), "risk.reducing")  # flat: nothing reduces


def test_reducing_refuses_amends_that_raise_the_count() -> None:
    risk = gate(RiskConfig(state="reducing"))
    risk.exposure.on_update(resting("o-1", "bid", "10"))
    same = AmendIntent(order_id="o-1", ticker=T, side="bid", price=D("0.45"), count=D(10))
    assert risk.check_amend(same) is None  # a price change only
    smaller = AmendIntent(order_id="o-1", ticker=T, side="bid", price=D("0.4"), count=D(5))
    assert risk.check_amend(smaller) is None
    larger = AmendIntent(order_id="o-1", ticker=T, side="bid", price=D("0.4"), count=D(11))
    message = refused(risk.check_amend(larger), "risk.reducing")
    assert "(to 11 from 10)" in message
    unknown = AmendIntent(order_id="o-2", ticker=T, side="bid", price=D("0.4"), count=D(1))
    assert "from an unknown count" in refused(risk.check_amend(unknown), "risk.reducing")


def test_amends_are_checked_on_the_new_price_size_and_increase() -> None:
    risk = gate(RiskConfig(max_position=D(20), max_contracts=D(15), price_max=D("0.90")))
    risk.exposure.on_update(resting("o-1", "bid", "10"))
    amend = AmendIntent(order_id="o-1", ticker=T, side="bid", price=D("0.91"), count=D(10))
    refused(risk.check_amend(amend), "risk.price_collar")
    amend = AmendIntent(order_id="o-1", ticker=T, side="bid", price=D("0.5"), count=D(16))
    refused(risk.check_amend(amend), "risk.max_contracts")
    assert risk.check_create(bid(5)) is None  # 15 at worst now
    amend = AmendIntent(order_id="o-1", ticker=T, side="bid", price=D("0.5"), count=D(15))
    assert risk.check_amend(amend) is None  # +5: 20, the edge; reserved
    assert risk.exposure.worst_long(T) == 20
    assert risk.figures().reserved_amends == 1
    message = refused(risk.check_create(bid(1)), "risk.max_position")
    assert "worst case long 21" in message
    risk.settled("o-1", Rejected(code="x", message="no"), "single")
    assert risk.exposure.worst_long(T) == 15
    assert risk.check_amend(amend) is None
    risk.settled("o-1", Amended(order_id="o-1"), "single")
    assert risk.exposure.worst_long(T) == 20  # until the tracker shows it
    assert risk.figures().reserved_amends == 0


def test_outcomes_release_or_keep_the_reservation() -> None:
    risk = gate(RiskConfig(max_position=D(100)))
    intents = [bid(10) for _ in range(6)]
    assert not risk.reserving()
    for intent in intents:
        assert risk.check_create(intent) is None
    assert risk.reserving()
    assert risk.figures().reserved_creates == 6
    keys = [intent.client_order_id for intent in intents]
    risk.settled(keys[0], Rejected(code="x", message="no"))
    risk.settled(keys[1], Expired(reason="late"))
    risk.settled(keys[2], Closed(reason="shut"))
    risk.settled(
        keys[3],
        Accepted(client_order_id=keys[3], order_id="o", fill_count=D(0), remaining_count=D(10)),
    )
    risk.settled(keys[4], Unknown(reason="lost"))
    risk.settled(keys[5], Rejected(code="x", message="no"), "cancel")  # not a create's key
    assert risk.exposure.worst_long(T) == 30  # accepted, unknown, and the last still pending
    assert risk.figures().reserved_creates == 2  # the unknown keeps its key, for release
    risk.exposure.release(keys[4])
    assert risk.exposure.worst_long(T) == 20
    assert risk.reserving()  # the last one, still pending
    risk.settled(keys[5], Closed(reason="shut"))
    assert not risk.reserving()


def test_a_refused_intent_changes_nothing() -> None:
    risk = gate(RiskConfig(max_position=D(5), max_daily_notional=D(100), max_orders_per_s=10.0))
    assert risk.check_create(bid(5)) is None
    before = (
        risk.exposure.worst_long(T),
        risk.exposure.open_orders(T),
        risk.exposure.bought_today(0),
        risk.figures().reserved_creates,
    )
    refused(risk.check_create(bid(1)), "risk.max_position")
    after = (
        risk.exposure.worst_long(T),
        risk.exposure.open_orders(T),
        risk.exposure.bought_today(0),
        risk.figures().reserved_creates,
    )
    assert after == before
