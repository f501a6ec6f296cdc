"""The simulator's matching engine: every rule it enforces, plus a random-sequence property test.

Units: prices in $0.0001 (5000 = $0.50), counts in hundredths (100 = one contract), money in
micro-dollars.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kalshi_router.sim._ladder import taker_fee
from kalshi_router.sim.book import (
    Exchange,
    Market,
    NewOrder,
    OrderRejected,
    Side,
    SimOrder,
)

T0_MS = 1_700_000_000_000
DOLLAR = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = T0_MS

    def __call__(self) -> int:
        return self.ms

    @property
    def seconds(self) -> int:
        return self.ms // 1000


def make_exchange(clock: Clock, **kwargs: Any) -> Exchange:
    ids = itertools.count(1)
    return Exchange(clock_ms=clock, id_factory=lambda: f"o{next(ids)}", **kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ex(clock: Clock) -> Exchange:
    return make_exchange(clock)


_coids = itertools.count(1)


def new(**kw: Any) -> NewOrder:
    fields: dict[str, Any] = {
        "user_id": "alice",
        "ticker": "T",
        "client_order_id": f"c{next(_coids)}",
        "side": "bid",
        "price": 5000,
        "count": 1000,
        "time_in_force": "good_till_canceled",
        "stp": "taker_at_cross",
    }
    fields.update(kw)
    return NewOrder(**fields)


def fails(call: Callable[..., object], *args: Any, **kwargs: Any) -> OrderRejected:
    with pytest.raises(OrderRejected) as info:
        call(*args, **kwargs)
    return info.value


def rejected(ex: Exchange, order: NewOrder) -> OrderRejected:
    return fails(ex.place, order)


def resting(ex: Exchange, side: Side) -> list[SimOrder]:
    return [o for o in ex.orders(status="resting") if o.side == side]


# -- price-time priority ---------------------------------------------------------------------


def test_price_then_time_priority_and_execution_at_the_resting_price(ex: Exchange) -> None:
    far = ex.seed("T", "house", "ask", 5300, 100)
    first = ex.seed("T", "house", "ask", 5100, 100)
    second = ex.seed("T", "house", "ask", 5100, 100)
    ex.seed("T", "house", "ask", 5400, 100)
    placed = ex.place(new(price=5300, count=250, time_in_force="immediate_or_cancel"))
    assert (first.fill_count, second.fill_count, far.fill_count) == (100, 100, 50)
    assert placed.fill_count == 250
    # 1 @ 0.51 + 1 @ 0.51 + 0.5 @ 0.53, per contract
    assert placed.order.taker_fill_cost == 5100 * 200 + 5300 * 50
    assert placed.average_fill_price == (5100 * 200 + 5300 * 50) * 100 // 250
    assert far.remaining_count == 50
    assert far.status == "resting"


def test_ask_taker_meets_the_highest_bid_first(ex: Exchange) -> None:
    low = ex.seed("T", "house", "bid", 4800, 100)
    high = ex.seed("T", "house", "bid", 4900, 100)
    placed = ex.place(new(side="ask", price=4800, count=150, time_in_force="fill_or_kill"))
    assert (high.fill_count, low.fill_count) == (100, 50)
    assert placed.order.status == "executed"
    assert ex.position("alice", "T") == -150
    assert ex.position("house", "T") == 150


def test_orders_that_do_not_cross_rest(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 5100, 100)
    placed = ex.place(new(price=5000))
    assert (placed.fill_count, placed.remaining_count) == (0, 1000)
    assert placed.order.status == "resting"
    assert placed.average_fill_price is None
    assert placed.average_fee_paid is None


def test_a_partly_filled_maker_keeps_the_front_of_its_queue(ex: Exchange) -> None:
    first = ex.seed("T", "house", "ask", 5100, 300)
    second = ex.seed("T", "house", "ask", 5100, 300)
    ex.place(new(price=5100, count=100, time_in_force="immediate_or_cancel"))
    ex.place(new(price=5100, count=100, time_in_force="immediate_or_cancel"))
    assert (first.fill_count, second.fill_count) == (200, 0)


def test_heavy_cancelling_at_one_price_keeps_the_queue_right(ex: Exchange) -> None:
    makers = [
        ex.place(new(user_id="bob", side="ask", price=5500, count=100)).order for _ in range(200)
    ]
    # Cancelling behind a live head leaves dead entries mid-queue until the queue is compacted.
    for order in makers[1:-1]:
        ex.cancel("bob", order.order_id)
    ex.seed("T", "house", "ask", 5500, 100)
    ex.place(new(price=5500, count=250, time_in_force="immediate_or_cancel"))
    assert [makers[0].fill_count, makers[-1].fill_count] == [100, 100]
    assert [o.remaining_count for o in resting(ex, "ask")] == [50]


# -- market structure --------------------------------------------------------------------------


@pytest.mark.parametrize("price", [0, 99, 5050, 9901, 10_000, 5001])
def test_off_tick_or_out_of_range_prices_are_rejected(ex: Exchange, price: int) -> None:
    err = rejected(ex, new(price=price))
    assert (err.code, err.message, err.http_status) == ("invalid_price", "invalid price", 400)


def test_a_deci_cent_market_takes_deci_cent_prices(clock: Clock) -> None:
    ex = make_exchange(clock, markets=[Market("D", tick=10, min_price=10, max_price=9990)])
    assert ex.place(new(ticker="D", price=5610)).order.price == 5610
    assert ex.place(new(ticker="D", price=10)).order.price == 10
    assert rejected(ex, new(ticker="D", price=5615)).code == "invalid_price"


@pytest.mark.parametrize("count", [0, -100])
def test_counts_below_one_hundredth_are_rejected(ex: Exchange, count: int) -> None:
    err = rejected(ex, new(count=count))
    assert (err.code, err.message) == ("invalid_order_size", "invalid order size")


def test_fractional_counts_only_where_enabled(clock: Clock) -> None:
    ex = make_exchange(clock, markets=[Market("W", fractional=False)])
    assert rejected(ex, new(ticker="W", count=150)).code == "invalid_order_size"
    assert ex.place(new(ticker="W", count=200)).remaining_count == 200
    assert ex.place(new(ticker="T", count=1)).remaining_count == 1


def test_bad_market_structure_is_refused() -> None:
    with pytest.raises(ValueError, match="price structure"):
        Market("X", min_price=0)
    with pytest.raises(ValueError, match="price structure"):
        Market("X", tick=0)


def test_unknown_market_without_auto_creation(clock: Clock) -> None:
    ex = make_exchange(clock, markets=[Market("A")], auto_create_markets=False)
    err = rejected(ex, new(ticker="B"))
    assert (err.code, err.http_status) == ("market_not_found", 404)
    with pytest.raises(OrderRejected):
        ex.market("B")
    assert ex.market("A") == Market("A")


def test_markets_are_created_on_first_use(ex: Exchange) -> None:
    assert ex.market("NEW") == Market("NEW")


# -- time in force -----------------------------------------------------------------------------


def test_ioc_fills_what_crosses_and_cancels_the_rest(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 5000, 400)
    placed = ex.place(new(time_in_force="immediate_or_cancel"))
    assert (placed.fill_count, placed.remaining_count) == (400, 0)
    assert placed.order.status == "canceled"
    assert (placed.order.fill_count, placed.order.remaining_count) == (400, 0)
    assert resting(ex, "bid") == []


def test_ioc_filled_completely_is_executed(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 5000, 1000)
    assert ex.place(new(time_in_force="immediate_or_cancel")).order.status == "executed"


def test_ioc_with_nothing_to_meet_is_cancelled_without_error(ex: Exchange) -> None:
    placed = ex.place(new(time_in_force="immediate_or_cancel"))
    assert (placed.fill_count, placed.remaining_count, placed.order.status) == (0, 0, "canceled")


def test_fok_that_cannot_fill_completely_fills_nothing(ex: Exchange) -> None:
    maker = ex.seed("T", "house", "ask", 5000, 999)
    placed = ex.place(new(time_in_force="fill_or_kill"))
    assert (placed.fill_count, placed.remaining_count, placed.order.status) == (0, 0, "canceled")
    assert maker.remaining_count == 999
    assert ex.position("alice", "T") == 0


def test_fok_that_can_fill_completely_executes(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 4900, 500)
    ex.seed("T", "house", "ask", 5000, 500)
    placed = ex.place(new(time_in_force="fill_or_kill"))
    assert (placed.fill_count, placed.remaining_count, placed.order.status) == (1000, 0, "executed")


def test_gtc_rests_its_remainder(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 5000, 300)
    placed = ex.place(new())
    assert (placed.fill_count, placed.remaining_count, placed.order.status) == (300, 700, "resting")
    assert resting(ex, "bid") == [placed.order]


def test_gtc_filled_completely_is_executed(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 5000, 1000)
    assert ex.place(new()).order.status == "executed"


# -- expiration --------------------------------------------------------------------------------


def test_ioc_cannot_carry_an_expiration(ex: Exchange, clock: Clock) -> None:
    err = rejected(ex, new(time_in_force="immediate_or_cancel", expiration_time=clock.seconds + 60))
    assert err.code == "invalid_order"
    assert err.message == "Cannot specify both immediate_or_cancel and expiration_time"


@pytest.mark.parametrize("delta", [0, -1])
def test_expiration_must_be_in_the_future(ex: Exchange, clock: Clock, delta: int) -> None:
    err = rejected(ex, new(expiration_time=clock.seconds + delta))
    assert (err.code, err.message) == (
        "invalid_order",
        "Expiration timestamp must be in the future",
    )


def test_expired_orders_are_cancelled_before_matching_and_listing(
    ex: Exchange, clock: Clock
) -> None:
    maker = ex.place(new(user_id="bob", side="ask", expiration_time=clock.seconds + 10)).order
    clock.ms += 9_999
    assert ex.get("bob", maker.order_id) is maker
    assert maker.status == "resting"
    clock.ms += 1
    assert [o.status for o in ex.orders("bob")] == ["canceled"]
    assert maker.last_update_ts_ms == clock.ms
    assert ex.balance("bob") == DOLLAR * DOLLAR, "the reservation is released"
    placed = ex.place(new(time_in_force="immediate_or_cancel"))
    assert placed.fill_count == 0


def test_expiry_is_applied_before_a_taker_matches(ex: Exchange, clock: Clock) -> None:
    maker = ex.place(new(user_id="bob", side="ask", expiration_time=clock.seconds + 1)).order
    clock.ms += 5_000
    assert ex.place(new(time_in_force="immediate_or_cancel")).fill_count == 0
    assert maker.status == "canceled"


# -- reduce only -------------------------------------------------------------------------------


@pytest.mark.parametrize("tif", ["good_till_canceled", "fill_or_kill"])
def test_reduce_only_requires_ioc(ex: Exchange, tif: Any) -> None:
    err = rejected(ex, new(reduce_only=True, time_in_force=tif))
    assert err.code == "invalid_order"
    assert "reduce_only" in err.details
    assert "immediate_or_cancel" in err.details


def test_reduce_only_is_capped_by_the_position(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 5000, 300)
    ex.place(new(count=300))
    ex.seed("T", "house", "bid", 4900, 1000)
    placed = ex.place(
        new(
            side="ask",
            price=4900,
            count=1000,
            time_in_force="immediate_or_cancel",
            reduce_only=True,
        )
    )
    assert (placed.fill_count, placed.remaining_count) == (300, 0)
    assert placed.order.status == "canceled"
    assert ex.position("alice", "T") == 0


def test_reduce_only_with_nothing_to_reduce_fills_nothing(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 5000, 300)
    ex.place(new(count=300))
    ex.seed("T", "house", "ask", 5000, 1000)
    # A bid would add to a long position, so nothing of it reduces.
    placed = ex.place(new(time_in_force="immediate_or_cancel", reduce_only=True))
    assert (placed.fill_count, placed.remaining_count, placed.order.status) == (0, 0, "canceled")
    assert ex.position("alice", "T") == 300


# -- post only ---------------------------------------------------------------------------------


def test_post_only_that_would_cross_is_rejected(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 5000, 100)
    order = new(post_only=True)
    err = rejected(ex, order)
    assert (err.code, err.message, err.details) == (
        "invalid order",
        "invalid order",
        "post only cross",
    )
    retry = ex.place(new(client_order_id=order.client_order_id, price=4900, post_only=True))
    assert retry.order.status == "resting", "the rejection did not burn the client order id"


def test_post_only_that_does_not_cross_rests(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 5100, 100)
    assert ex.place(new(post_only=True)).order.status == "resting"


# -- self-trade prevention ---------------------------------------------------------------------


def test_taker_at_cross_cancels_the_taker_and_keeps_earlier_fills(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 4900, 200)
    own = ex.place(new(side="ask", price=5000, count=100)).order
    ex.seed("T", "house", "ask", 5000, 500)
    placed = ex.place(new(price=5000, count=1000))
    assert (placed.fill_count, placed.remaining_count) == (200, 0)
    assert placed.order.status == "canceled"
    assert own.status == "resting"
    assert own.remaining_count == 100


def test_maker_stp_cancels_the_resting_order_and_keeps_matching(ex: Exchange) -> None:
    own = ex.place(new(side="ask", price=4900, count=100)).order
    other = ex.seed("T", "house", "ask", 5000, 500)
    placed = ex.place(new(price=5000, count=500, stp="maker"))
    assert own.status == "canceled"
    assert own.remaining_count == 0
    assert other.status == "executed"
    assert placed.order.status == "executed"
    assert placed.fill_count == 500


def test_fok_that_meets_its_own_order_finishes_like_ioc(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 4900, 500)
    own = ex.place(new(side="ask", price=5000, count=100)).order
    ex.seed("T", "house", "ask", 5000, 1000)
    placed = ex.place(new(price=5000, count=1000, time_in_force="fill_or_kill"))
    assert (placed.fill_count, placed.remaining_count, placed.order.status) == (500, 0, "canceled")
    assert own.status == "resting"


def test_fok_with_maker_stp_that_meets_its_own_order_is_not_rolled_back(ex: Exchange) -> None:
    own = ex.place(new(side="ask", price=4900, count=100)).order
    ex.seed("T", "house", "ask", 5000, 500)
    placed = ex.place(new(count=1000, stp="maker", time_in_force="fill_or_kill"))
    assert (placed.fill_count, placed.order.status) == (500, "canceled")
    assert own.status == "canceled"


# -- client order ids --------------------------------------------------------------------------


def test_client_order_id_is_single_use_forever(ex: Exchange) -> None:
    first = ex.place(new(client_order_id="dup")).order
    ex.cancel("alice", first.order_id)
    err = rejected(ex, new(client_order_id="dup", price=4000))
    assert (err.code, err.message, err.details, err.http_status) == (
        "duplicate_client_order_id",
        "client order id already exists",
        "dup",
        409,
    )
    assert ex.client_order_ids("alice") == {"dup": 1}
    assert ex.place(new(user_id="bob", client_order_id="dup")).order.client_order_id == "dup"


def test_a_rejected_order_does_not_burn_its_client_order_id(ex: Exchange) -> None:
    assert rejected(ex, new(client_order_id="x", price=5050)).code == "invalid_price"
    assert ex.place(new(client_order_id="x")).order.client_order_id == "x"
    assert ex.find_client_order_id("alice", "x") is not None
    assert ex.find_client_order_id("alice", "nope") is None
    assert ex.find_client_order_id("nobody", "x") is None


def test_a_killed_fok_still_burns_its_client_order_id(ex: Exchange) -> None:
    ex.place(new(client_order_id="k", time_in_force="fill_or_kill"))
    assert rejected(ex, new(client_order_id="k")).code == "duplicate_client_order_id"


def test_an_omitted_client_order_id_never_collides(ex: Exchange) -> None:
    ex.place(new(client_order_id=""))
    ex.place(new(client_order_id=""))
    assert ex.client_order_ids("alice") == {}
    assert len(ex.orders("alice")) == 2


# -- balance and fees --------------------------------------------------------------------------


def test_taker_fee_formula() -> None:
    assert taker_fee(5000, 10_000) == 175 * 10_000  # 100 contracts at $0.50: $1.75
    assert taker_fee(5000, 100) == 2 * 10_000  # $0.0175 rounds up to 2 cents
    assert taker_fee(100, 1) == 10_000  # any fill costs at least a cent
    assert taker_fee(5600, 1000) == 18 * 10_000  # 0.07 * 10 * 0.56 * 0.44 = $0.1725


def test_taker_pays_the_fee_maker_pays_none(ex: Exchange) -> None:
    maker = ex.place(new(user_id="bob", side="ask", price=5600, count=1000)).order
    placed = ex.place(new(price=5600, time_in_force="immediate_or_cancel"))
    taker = placed.order
    assert (taker.taker_fill_cost, taker.taker_fees, taker.maker_fill_cost) == (
        5_600_000,
        180_000,
        0,
    )
    assert (maker.maker_fill_cost, maker.maker_fees, maker.taker_fees) == (5_600_000, 0, 0)
    assert placed.average_fill_price == 560_000
    assert placed.average_fee_paid == 18_000
    start = DOLLAR * DOLLAR
    assert ex.balance("alice") == start - 5_600_000 - 180_000
    assert ex.balance("bob") == start - 4_400_000, "the seller put up the NO side"


def test_balance_reserves_resting_orders_and_releases_on_cancel(clock: Clock) -> None:
    ex = make_exchange(clock, starting_balance=10 * DOLLAR)
    bid = ex.place(new(price=6000, count=1000)).order  # $6.00 reserved
    assert ex.balance("alice") == 4 * DOLLAR
    ask = ex.place(new(side="ask", price=7000, count=1000)).order  # NO side: $3.00
    assert ex.balance("alice") == DOLLAR
    err = rejected(ex, new(price=1100, count=1000))
    assert (err.code, err.http_status) == ("available_balance_too_low", 400)
    ex.cancel("alice", bid.order_id)
    ex.decrease("alice", ask.order_id, reduce_to=500)
    assert ex.balance("alice") == 8_500_000


def test_balance_check_includes_the_taker_fee(clock: Clock) -> None:
    ex = make_exchange(clock, starting_balance=5_000_000)
    ex.seed("T", "house", "ask", 5000, 1000)
    # $5.00 of contracts plus a 18-cent fee does not fit in $5.00.
    assert rejected(ex, new(count=1000)).code == "available_balance_too_low"
    ex.place(new(count=900))
    assert ex.balance("alice") >= 0


def test_seeded_liquidity_bypasses_the_balance_check(clock: Clock) -> None:
    ex = make_exchange(clock, starting_balance=0)
    maker = ex.seed("T", "house", "ask", 5000, 100_000)
    assert maker.status == "resting"
    assert maker.client_order_id == ""


def test_selling_a_held_position_returns_cash(ex: Exchange) -> None:
    start = DOLLAR * DOLLAR
    ex.seed("T", "house", "ask", 4000, 1000)
    ex.place(new(price=4000, count=1000, time_in_force="immediate_or_cancel"))
    fee_in = taker_fee(4000, 1000)
    ex.seed("T", "house", "bid", 6000, 1000)
    ex.place(new(side="ask", price=6000, count=1000, time_in_force="immediate_or_cancel"))
    fee_out = taker_fee(6000, 1000)
    assert ex.position("alice", "T") == 0
    assert ex.balance("alice") == start + 2 * DOLLAR - fee_in - fee_out


# -- cancel ------------------------------------------------------------------------------------


def test_cancel(ex: Exchange, clock: Clock) -> None:
    ex.seed("T", "house", "ask", 5000, 300)
    order = ex.place(new()).order
    clock.ms += 7
    reduced = ex.cancel("alice", order.order_id)
    assert (reduced.reduced_by, reduced.fill_count, reduced.ts_ms) == (700, 0, clock.ms)
    assert (order.status, order.remaining_count, order.fill_count) == ("canceled", 0, 300)
    assert order.last_update_ts_ms == clock.ms
    err = fails(ex.cancel, "alice", order.order_id)
    assert (err.code, err.http_status) == ("order_not_resting", 400)


@pytest.mark.parametrize(("user", "order_id"), [("bob", "o1"), ("alice", "o999")])
def test_only_the_owner_can_cancel_a_known_order(ex: Exchange, user: str, order_id: str) -> None:
    ex.place(new())
    err = fails(ex.cancel, user, order_id)
    assert (err.code, err.message, err.http_status) == ("not_found", "order not found", 404)
    assert ex.get("alice", "o1") is not None
    assert ex.get("bob", "o1") is None


def test_cancel_checks_the_subaccount(ex: Exchange) -> None:
    order = ex.place(new(subaccount=3)).order
    assert fails(ex.cancel, "alice", order.order_id, 0).code == "not_found"
    assert ex.cancel("alice", order.order_id, 3).reduced_by == 1000


def test_cancel_all(ex: Exchange) -> None:
    keep = ex.place(new(subaccount=1, price=4000)).order
    ex.place(new(price=4100))
    ex.place(new(side="ask", price=6000))
    ex.place(new(user_id="bob", price=4200))
    assert ex.cancel_all("alice", subaccount=0) == 2
    assert keep.status == "resting"
    assert ex.cancel_all("alice") == 1
    assert ex.cancel_all("nobody") == 0
    assert [o.user_id for o in ex.orders(status="resting")] == ["bob"]


# -- decrease ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"reduce_by": 100, "reduce_to": 100}])
def test_decrease_needs_exactly_one_amount(ex: Exchange, kwargs: dict[str, int]) -> None:
    order = ex.place(new()).order
    with pytest.raises(OrderRejected) as info:
        ex.decrease("alice", order.order_id, **kwargs)
    assert info.value.code == "invalid_parameters"


def test_decrease_by_and_to(ex: Exchange) -> None:
    order = ex.place(new()).order
    assert ex.decrease("alice", order.order_id, reduce_by=300).reduced_by == 300
    assert ex.decrease("alice", order.order_id, reduce_to=200).reduced_by == 500
    assert (order.remaining_count, order.status) == (200, "resting")
    err = fails(ex.decrease, "alice", order.order_id, reduce_to=300)
    assert err.code == "invalid_parameters"
    assert ex.decrease("alice", order.order_id, reduce_by=1000).reduced_by == 200
    assert (order.remaining_count, order.status) == (0, "canceled")


def test_decrease_to_zero_cancels(ex: Exchange) -> None:
    order = ex.place(new()).order
    assert ex.decrease("alice", order.order_id, reduce_to=0).reduced_by == 1000
    assert order.status == "canceled"


def test_decrease_amounts_obey_the_market(clock: Clock) -> None:
    ex = make_exchange(clock, markets=[Market("W", fractional=False)])
    order = ex.place(new(ticker="W")).order
    for kwargs in ({"reduce_by": 50}, {"reduce_to": 250}, {"reduce_by": 0}):
        with pytest.raises(OrderRejected) as info:
            ex.decrease("alice", order.order_id, **kwargs)
        assert info.value.code == "invalid_order_size"


def test_decrease_keeps_queue_position(ex: Exchange) -> None:
    first = ex.place(new(user_id="bob", side="ask", price=5500)).order
    second = ex.place(new(user_id="carol", side="ask", price=5500)).order
    ex.decrease("bob", first.order_id, reduce_by=500)
    ex.place(new(price=5500, count=500, time_in_force="immediate_or_cancel"))
    assert (first.status, second.fill_count) == ("executed", 0)


# -- amend -------------------------------------------------------------------------------------


def test_amend_count_is_the_new_total(ex: Exchange) -> None:
    order = ex.place(new(user_id="bob", side="ask", price=5500)).order
    ex.place(new(price=5500, count=300, time_in_force="immediate_or_cancel"))
    reduced = ex.amend("bob", order.order_id, ticker="T", side="ask", price=5500, count=800)
    assert (order.fill_count, order.remaining_count, order.initial_count) == (300, 500, 800)
    assert (reduced.reduced_by, reduced.fill_count) == (200, 0)
    assert reduced.average_fill_price is None
    err = fails(ex.amend, "bob", order.order_id, ticker="T", side="ask", price=5500, count=300)
    assert err.code == "invalid_order_size"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"ticker": "U"}, "order_ticker_mismatch"),
        ({"side": "ask"}, "order_side_mismatch"),
        ({"client_order_id": "other"}, "order_id_and_client_order_id_mismatch"),
        ({"price": 5050}, "invalid_price"),
        ({"count": 0}, "invalid_order_size"),
    ],
)
def test_amend_must_match_the_order(ex: Exchange, kwargs: dict[str, Any], code: str) -> None:
    order = ex.place(new()).order
    args: dict[str, Any] = {"ticker": "T", "side": "bid", "price": 5000, "count": 1000}
    args.update(kwargs)
    with pytest.raises(OrderRejected) as info:
        ex.amend("alice", order.order_id, **args)
    assert info.value.code == code
    assert order.price == 5000
    assert order.remaining_count == 1000


def test_amend_of_someone_elses_or_a_dead_order(ex: Exchange) -> None:
    order = ex.place(new()).order
    with pytest.raises(OrderRejected) as info:
        ex.amend("bob", order.order_id, ticker="T", side="bid", price=5000, count=100)
    assert info.value.http_status == 404
    ex.cancel("alice", order.order_id)
    with pytest.raises(OrderRejected) as info:
        ex.amend("alice", order.order_id, ticker="T", side="bid", price=5000, count=100)
    assert info.value.code == "order_not_resting"


def test_amend_replaces_the_client_order_id(ex: Exchange) -> None:
    order = ex.place(new(client_order_id="old")).order
    ex.place(new(client_order_id="taken", price=4000))
    amend: dict[str, Any] = {"ticker": "T", "side": "bid", "price": 5000, "count": 1000}
    err = fails(ex.amend, "alice", order.order_id, updated_client_order_id="taken", **amend)
    assert (err.code, err.http_status) == ("duplicate_client_order_id", 409)
    ex.amend("alice", order.order_id, client_order_id="old", updated_client_order_id="new", **amend)
    assert order.client_order_id == "new"
    assert ex.find_client_order_id("alice", "new") is order
    assert ex.find_client_order_id("alice", "old") is None
    assert rejected(ex, new(client_order_id="old")).code == "duplicate_client_order_id"
    assert ex.client_order_ids("alice") == {"new": 1, "taken": 1}


def _queue_after_amend(ex: Exchange, price: int, count: int) -> tuple[int, int]:
    """Two asks at 0.55; amend the first; then a taker for one at ``price``: who filled?"""
    first = ex.place(new(user_id="bob", side="ask", price=5500)).order
    second = ex.place(new(user_id="carol", side="ask", price=5500)).order
    ex.amend("bob", first.order_id, ticker="T", side="ask", price=price, count=count)
    ex.place(new(price=5600, count=100, time_in_force="immediate_or_cancel"))
    return first.fill_count, second.fill_count


def test_amend_decrease_keeps_queue_position(ex: Exchange) -> None:
    assert _queue_after_amend(ex, 5500, 900) == (100, 0)


def test_amend_increase_loses_queue_position(ex: Exchange) -> None:
    assert _queue_after_amend(ex, 5500, 1100) == (0, 100)


def test_amend_price_change_loses_queue_position(ex: Exchange) -> None:
    first = ex.place(new(user_id="bob", side="ask", price=5500)).order
    second = ex.place(new(user_id="carol", side="ask", price=5500)).order
    ex.amend("bob", first.order_id, ticker="T", side="ask", price=5600, count=1000)
    ex.amend("bob", first.order_id, ticker="T", side="ask", price=5500, count=1000)
    ex.place(new(price=5500, count=100, time_in_force="immediate_or_cancel"))
    assert (first.fill_count, second.fill_count) == (0, 100)


def test_amend_expiry_only_keeps_queue_position(ex: Exchange, clock: Clock) -> None:
    first = ex.place(new(user_id="bob", side="ask", price=5500)).order
    second = ex.place(new(user_id="carol", side="ask", price=5500)).order
    ex.amend(
        "bob",
        first.order_id,
        ticker="T",
        side="ask",
        price=5500,
        count=1000,
        expiration_time=clock.seconds + 60,
    )
    assert first.expiration_time == clock.seconds + 60
    ex.place(new(price=5500, count=100, time_in_force="immediate_or_cancel"))
    assert (first.fill_count, second.fill_count) == (100, 0)


def test_amend_expiry_zero_clears_and_a_past_expiry_is_refused(ex: Exchange, clock: Clock) -> None:
    order = ex.place(new(expiration_time=clock.seconds + 5)).order
    amend: dict[str, Any] = {"ticker": "T", "side": "bid", "price": 5000, "count": 1000}
    err = fails(ex.amend, "alice", order.order_id, expiration_time=clock.seconds, **amend)
    assert err.message == "Expiration timestamp must be in the future"
    ex.amend("alice", order.order_id, expiration_time=0, **amend)
    assert order.expiration_time is None
    clock.ms += 60_000
    assert ex.get("alice", order.order_id) is order
    assert order.status == "resting"


def test_amend_later_expiry_outlives_the_first(ex: Exchange, clock: Clock) -> None:
    order = ex.place(new(expiration_time=clock.seconds + 5)).order
    ex.amend(
        "alice",
        order.order_id,
        ticker="T",
        side="bid",
        price=5000,
        count=1000,
        expiration_time=clock.seconds + 10,
    )
    clock.ms += 5_000
    assert ex.orders(status="resting") == [order]
    clock.ms += 5_000
    assert ex.orders(status="resting") == []


def test_amended_price_can_cross_and_fill(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 5200, 400)
    order = ex.place(new()).order
    reduced = ex.amend("alice", order.order_id, ticker="T", side="bid", price=5200, count=1000)
    assert (reduced.fill_count, reduced.reduced_by) == (400, 0)
    assert reduced.average_fill_price == 520_000
    assert reduced.average_fee_paid == taker_fee(5200, 400) * 100 // 400
    assert (order.fill_count, order.remaining_count, order.status) == (400, 600, "resting")
    assert order.taker_fill_cost == 5200 * 400


def test_amend_of_a_post_only_order_into_a_cross_is_refused(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 5200, 400)
    order = ex.place(new(post_only=True)).order
    with pytest.raises(OrderRejected) as info:
        ex.amend("alice", order.order_id, ticker="T", side="bid", price=5200, count=1000)
    assert info.value.details == "post only cross"
    assert order.price == 5000


def test_amend_growth_needs_balance(clock: Clock) -> None:
    ex = make_exchange(clock, starting_balance=6 * DOLLAR)
    order = ex.place(new(price=5000, count=1000)).order
    with pytest.raises(OrderRejected) as info:
        ex.amend("alice", order.order_id, ticker="T", side="bid", price=5000, count=1300)
    assert info.value.code == "available_balance_too_low"
    ex.amend("alice", order.order_id, ticker="T", side="bid", price=5000, count=1200)
    assert ex.balance("alice") == 0


# -- pause -------------------------------------------------------------------------------------


def test_paused_market(ex: Exchange) -> None:
    doomed = ex.place(new(cancel_order_on_pause=True)).order
    kept = ex.place(new(price=4000)).order
    ex.pause_market("T")
    assert not ex.market("T").trading_active
    assert (doomed.status, kept.status) == ("canceled", "resting")
    assert rejected(ex, new()).code == "trading_is_paused"
    with pytest.raises(OrderRejected) as info:
        ex.amend("alice", kept.order_id, ticker="T", side="bid", price=4100, count=1000)
    assert info.value.code == "trading_is_paused"
    assert ex.cancel("alice", kept.order_id).reduced_by == 1000, "cancels still work"
    ex.resume_market("T")
    assert ex.place(new()).order.status == "resting"


# -- records and listing -----------------------------------------------------------------------


def test_ids_and_timestamps_come_from_the_injected_factories(ex: Exchange, clock: Clock) -> None:
    first = ex.place(new())
    clock.ms += 25
    second = ex.place(new())
    assert (first.order.order_id, second.order.order_id) == ("o1", "o2")
    assert (first.ts_ms, second.order.created_ts_ms) == (T0_MS, T0_MS + 25)
    assert second.order.seq > first.order.seq


def test_default_ids_are_uuids(clock: Clock) -> None:
    order = Exchange(clock_ms=clock).place(new()).order
    assert len(order.order_id) == 36
    assert order.order_id.count("-") == 4


def test_orders_listing_newest_first_with_filters(ex: Exchange, clock: Clock) -> None:
    a = ex.place(new(ticker="A")).order
    clock.ms += 10
    b = ex.place(new(ticker="B", subaccount=2)).order
    clock.ms += 10
    c = ex.place(new(ticker="A", time_in_force="immediate_or_cancel")).order
    bob = ex.place(new(user_id="bob", ticker="A")).order
    assert ex.orders("alice") == [c, b, a]
    assert ex.orders() == [bob, c, b, a]
    assert ex.orders("alice", ticker="A") == [c, a]
    assert ex.orders("alice", status="canceled") == [c]
    assert ex.orders("alice", min_ts_ms=T0_MS + 10) == [c, b]
    assert ex.orders("alice", max_ts_ms=T0_MS + 10) == [b, a]
    assert ex.orders("alice", subaccount=2) == [b]
    assert ex.orders("nobody") == []


def test_unknown_users_have_the_starting_balance_and_no_position(ex: Exchange) -> None:
    assert ex.balance("nobody") == DOLLAR * DOLLAR
    assert ex.position("nobody", "T") == 0
    assert ex.client_order_ids("nobody") == {}


def test_placed_order_keeps_every_request_field(ex: Exchange, clock: Clock) -> None:
    group = ex.create_group("alice", 100, subaccount=5, exchange_index=2).group_id
    order = ex.place(
        new(
            order_group_id=group,
            subaccount=5,
            cancel_order_on_pause=True,
            exchange_index=2,
            expiration_time=clock.seconds + 30,
            stp="maker",
        )
    ).order
    assert (order.order_group_id, order.subaccount, order.exchange_index) == (group, 5, 2)
    assert order.cancel_order_on_pause
    assert order.stp == "maker"
    assert order.expiration_time == clock.seconds + 30


# -- V1 buy_max_cost ---------------------------------------------------------------------------


def test_buy_max_cost_implies_fill_or_kill(ex: Exchange) -> None:
    ex.seed("T", "house", "ask", 5000, 2000)
    killed = ex.place(new(count=1000, buy_max_cost=499)).order  # $5.00 of contracts > 499 cents
    assert (killed.time_in_force, killed.fill_count, killed.status) == (
        "fill_or_kill",
        0,
        "canceled",
    )
    done = ex.place(new(count=1000, buy_max_cost=500)).order
    assert (done.fill_count, done.status) == (1000, "executed")
    short = ex.place(new(count=1100, buy_max_cost=10_000)).order
    assert short.fill_count == 0, "fill-or-kill: not enough liquidity"


# -- random sequences --------------------------------------------------------------------------

USERS = ("u1", "u2", "u3")
PRICES = (4800, 4900, 5000, 5100, 5200)

place_op = st.tuples(
    st.just("place"),
    st.sampled_from(USERS),
    st.sampled_from(("bid", "ask")),
    st.sampled_from(PRICES),
    st.integers(1, 3000),
    st.sampled_from(("good_till_canceled", "immediate_or_cancel", "fill_or_kill")),
    st.sampled_from(("taker_at_cross", "maker")),
    st.booleans(),
    st.integers(0, 4),
)
change_op = st.tuples(
    st.sampled_from(("cancel", "decrease", "amend", "seed", "tick", "reduce_only")),
    st.integers(0, 50),
    st.sampled_from(PRICES),
    st.integers(0, 3000),
)


def _apply(ex: Exchange, clock: Clock, op: tuple[Any, ...], step: int) -> None:
    kind = op[0]
    if kind == "place":
        _, user, side, price, count, tif, stp, post_only, expiry = op
        order = new(
            user_id=user,
            client_order_id=f"r{step % 7}",  # collisions on purpose
            side=side,
            price=price,
            count=count,
            time_in_force=tif,
            stp=stp,
            post_only=post_only,
            expiration_time=clock.seconds + expiry
            if expiry and tif != "immediate_or_cancel"
            else None,
        )
        ex.place(order)
        return
    _, pick, price, count = op
    if kind == "tick":
        clock.ms += pick * 100
        return
    if kind == "seed":
        ex.seed("T", "house", "bid" if pick % 2 else "ask", price, count or 1)
        return
    if kind == "reduce_only":
        user = USERS[pick % 3]
        before = ex.position(user, "T")
        side = "ask" if before > 0 else "bid"
        ex.place(
            new(
                user_id=user,
                side=side,
                price=price,
                count=count or 1,
                time_in_force="immediate_or_cancel",
                reduce_only=True,
            )
        )
        after = ex.position(user, "T")
        assert before * after >= 0, "reduce_only flipped the position"
        assert abs(after) <= abs(before)
        return
    orders = ex.orders()
    if not orders:
        return
    target = orders[pick % len(orders)]
    if kind == "cancel":
        ex.cancel(target.user_id, target.order_id)
    elif kind == "decrease":
        ex.decrease(target.user_id, target.order_id, reduce_by=count or 1)
    else:
        ex.amend(
            target.user_id,
            target.order_id,
            ticker=target.ticker,
            side=target.side,
            price=price,
            count=target.fill_count + (count or 1),
        )


def _check_invariants(ex: Exchange, start: int) -> None:
    everyone = (*USERS, "house")
    all_orders = ex.orders()
    bids = [o.price for o in all_orders if o.status == "resting" and o.side == "bid"]
    asks = [o.price for o in all_orders if o.status == "resting" and o.side == "ask"]
    if bids and asks:
        assert max(bids) < min(asks), "the book is crossed"
    for o in all_orders:
        assert o.fill_count >= 0
        assert o.remaining_count >= 0
        assert o.fill_count + o.remaining_count <= o.initial_count
        assert (o.remaining_count > 0) == (o.status == "resting")
        if o.status == "executed":
            assert o.fill_count > 0
        assert o.maker_fees == 0
    for user in everyone:
        assert all(n == 1 for n in ex.client_order_ids(user).values())
        signed = sum(o.fill_count if o.side == "bid" else -o.fill_count for o in ex.orders(user))
        assert ex.position(user, "T") == signed
    assert sum(ex.position(u, "T") for u in everyone) == 0
    # Every fill has one taker and one maker.
    assert sum(o.taker_fill_cost for o in all_orders) == sum(o.maker_fill_cost for o in all_orders)
    # Money is conserved: cash + fees + $1 for every open contract pair.
    reserved = sum(
        (o.price if o.side == "bid" else 10_000 - o.price) * o.remaining_count
        for o in all_orders
        if o.status == "resting"
    )
    cash = sum(ex.balance(u) for u in everyone) + reserved
    fees = sum(o.taker_fees for o in all_orders)
    open_pairs = sum(max(ex.position(u, "T"), 0) for u in everyone)
    assert cash + fees + 10_000 * open_pairs == start * len(everyone)
    for user in USERS:
        assert ex.balance(user) >= 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(place_op, change_op), max_size=60))
def test_random_sequences_keep_the_book_consistent(ops: list[tuple[Any, ...]]) -> None:
    clock = Clock()
    start = 20 * DOLLAR  # small enough that balance rejections happen
    ex = make_exchange(clock, starting_balance=start)
    for step, op in enumerate(ops):
        try:
            _apply(ex, clock, op, step)
        except OrderRejected as err:
            if err.code == "not_found":
                raise
        _check_invariants(ex, start)
