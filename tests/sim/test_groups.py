"""Order groups in the engine (sim.groups): the rolling 15 s window, triggering by fills (maker
and taker), by request and by a lower limit, reset, delete, the groups an order may join, and
the events they give the WebSocket feed.

Units: prices in $0.0001, counts in hundredths of a contract.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kalshi_router.sim.book import Exchange
from kalshi_router.sim.events import Event, GroupChanged, OrderChanged
from kalshi_router.sim.groups import WINDOW_MS, OrderGroup
from tests.sim.test_book import Clock, fails, make_exchange, new


def asks(ex: Exchange, count: int, price: int = 5000, user: str = "bob") -> None:
    """Liquidity for alice's bids to take: ``count`` (0.01) resting at ``price``."""
    ex.place(new(user_id=user, side="ask", price=price, count=count))


Seen = tuple[str, object, object]


def recorder(ex: Exchange) -> list[Seen]:
    """Group events as (type, limit, ts_ms), order changes as (order id, status, reason), taken
    when they happen (an event carries the live order record)."""
    seen: list[Seen] = []

    def record(event: Event) -> None:
        if isinstance(event, GroupChanged):
            assert event.user_id == "alice"
            seen.append((event.event_type, event.contracts_limit, event.ts_ms))
        elif isinstance(event, OrderChanged):
            seen.append((event.order.order_id, event.order.status, event.reason))

    ex.observe(record)
    return seen


def test_a_taker_that_reaches_the_limit_trips_its_group_and_loses_what_rests() -> None:
    ex = make_exchange(Clock())
    group = ex.create_group("alice", 300).group_id
    other = ex.place(new(price=4000, count=100, order_group_id=group)).order
    outside = ex.place(new(price=4000, count=100)).order
    asks(ex, 300)
    placed = ex.place(new(price=5000, count=500, order_group_id=group))
    # The order's own match is not cut at the limit; the trip comes after it.
    assert (placed.fill_count, placed.remaining_count) == (300, 0)
    assert placed.order.status == "canceled"
    assert other.status == "canceled"
    assert outside.status == "resting"
    refused = fails(ex.place, new(count=100, order_group_id=group))
    assert (refused.code, refused.http_status) == ("order_group_triggered", 400)
    ex.reset_group("alice", group, 0)
    assert ex.place(new(price=4000, count=100, order_group_id=group)).order.status == "resting"


def test_a_maker_fill_counts_too_and_cancels_the_rest_of_the_group() -> None:
    ex = make_exchange(Clock())
    group = ex.create_group("alice", 200).group_id
    first = ex.place(new(price=5000, count=200, order_group_id=group)).order
    second = ex.place(new(price=4900, count=500, order_group_id=group)).order
    ex.place(new(user_id="bob", side="ask", price=5000, count=200))
    assert first.status == "executed"
    assert second.status == "canceled"
    assert fails(ex.place, new(order_group_id=group)).code == "order_group_triggered"


def test_below_the_limit_nothing_happens() -> None:
    ex = make_exchange(Clock())
    group = ex.create_group("alice", 301).group_id
    asks(ex, 300)
    placed = ex.place(new(price=5000, count=500, order_group_id=group))
    assert (placed.fill_count, placed.remaining_count) == (300, 200)
    assert placed.order.status == "resting"
    assert ex.place(new(price=4000, order_group_id=group)).order.status == "resting"


def test_a_fill_counts_for_fifteen_seconds_exactly() -> None:
    clock = Clock()
    ex = make_exchange(clock)
    group = ex.create_group("alice", 300).group_id
    asks(ex, 10_000)
    ex.place(new(price=5000, count=200, order_group_id=group))
    clock.ms += WINDOW_MS - 1
    # 2 + 0.5 in the window: below 3.
    ex.place(new(price=5000, count=50, order_group_id=group))
    clock.ms += 1
    # The first fill has just left the window: 0.5 + 2 is still below 3.
    ex.place(new(price=5000, count=200, order_group_id=group))
    assert ex.order_group("alice", group, None).matched_at(clock.ms) == 250
    ex.place(new(price=5000, count=50, order_group_id=group))
    assert fails(ex.place, new(order_group_id=group)).code == "order_group_triggered"


def test_trigger_by_request_cancels_resting_orders_and_refuses_new_ones() -> None:
    ex = make_exchange(Clock())
    group = ex.create_group("alice", 10_000).group_id
    resting = [ex.place(new(price=4000, order_group_id=group)).order for _ in range(3)]
    ex.trigger_group("alice", group, 0)
    assert [o.status for o in resting] == ["canceled"] * 3
    assert fails(ex.place, new(order_group_id=group)).code == "order_group_triggered"
    # Reset clears the count as well as the trigger.
    ex.reset_group("alice", group, 0)
    assert ex.order_group("alice", group, None).matched == 0
    assert ex.place(new(price=4000, order_group_id=group)).order.status == "resting"


def test_a_lower_limit_that_the_window_reaches_triggers_at_once() -> None:
    ex = make_exchange(Clock())
    group = ex.create_group("alice", 1000).group_id
    asks(ex, 200)
    ex.place(new(price=5000, count=200, order_group_id=group))
    resting = ex.place(new(price=4000, order_group_id=group)).order
    statuses = []
    for limit in (201, 200):
        ex.update_group_limit("alice", group, 0, limit)
        statuses.append(resting.status)
    assert statuses == ["resting", "canceled"]
    assert fails(ex.place, new(order_group_id=group)).code == "order_group_triggered"
    # A higher limit does not un-trigger it: only reset does.
    ex.update_group_limit("alice", group, 0, 5000)
    assert fails(ex.place, new(order_group_id=group)).code == "order_group_triggered"
    assert ex.order_group("alice", group, None).limit == 5000


def test_an_amend_that_fills_counts_and_trips() -> None:
    ex = make_exchange(Clock())
    group = ex.create_group("alice", 100).group_id
    asks(ex, 100, price=5000)
    bid = ex.place(new(price=4000, count=200, order_group_id=group)).order
    ex.amend("alice", bid.order_id, ticker="T", side="bid", price=5000, count=200)
    assert (bid.fill_count, bid.status) == (100, "canceled")


def test_delete_cancels_the_orders_and_forgets_the_group() -> None:
    ex = make_exchange(Clock())
    group = ex.create_group("alice", 10_000).group_id
    resting = ex.place(new(price=4000, order_group_id=group)).order
    ex.delete_group("alice", group, 0)
    assert resting.status == "canceled"
    assert fails(ex.order_group, "alice", group, None).http_status == 404
    assert fails(ex.place, new(order_group_id=group)).code == "order_group_not_found"
    assert ex.order_groups("alice") == []
    assert fails(ex.delete_group, "alice", group, 0).http_status == 404


def test_only_the_owner_in_the_groups_subaccount_may_use_it() -> None:
    ex = make_exchange(Clock())
    group = ex.create_group("alice", 100, subaccount=2).group_id
    for order in (
        new(order_group_id="no-such-group", subaccount=2),
        new(user_id="bob", order_group_id=group, subaccount=2),
        new(order_group_id=group),
    ):
        refused = fails(ex.place, order)
        assert (refused.code, refused.http_status) == ("order_group_not_found", 400)
    # A refused create changes nothing.
    assert ex.orders() == []
    assert ex.place(new(order_group_id=group, subaccount=2)).order.order_group_id == group
    for user, sub in (("bob", None), ("alice", 0), ("alice", 3)):
        assert fails(ex.order_group, user, group, sub).code == "not_found"
    for call in (ex.trigger_group, ex.reset_group, ex.delete_group):
        assert fails(call, "alice", group, 0).http_status == 404
    assert fails(ex.update_group_limit, "alice", group, 0, 5).http_status == 404
    assert ex.order_group("alice", group, 2).subaccount == 2


def test_groups_list_per_user_and_subaccount_and_orders_per_group() -> None:
    ex = make_exchange(Clock())
    a = ex.create_group("alice", 100)
    b = ex.create_group("alice", 200, subaccount=1)
    ex.create_group("bob", 300)
    assert ex.order_groups("alice") == [a, b]
    assert ex.order_groups("alice", 1) == [b]
    first = ex.place(new(price=4000, order_group_id=a.group_id)).order
    ex.place(new(price=4000))
    second = ex.place(new(price=4000, order_group_id=a.group_id)).order
    ex.cancel("alice", first.order_id)
    # Every order placed into the group, whatever became of it.
    assert ex.group_orders(a) == [first.order_id, second.order_id]


def test_at_most_max_order_groups_at_a_time() -> None:
    ex = Exchange(clock_ms=Clock(), max_order_groups=2)
    first = ex.create_group("alice", 100)
    ex.create_group("alice", 100)
    refused = fails(ex.create_group, "alice", 100)
    assert (refused.code, refused.http_status) == ("too_many_order_groups", 400)
    ex.create_group("bob", 100)
    ex.delete_group("alice", first.group_id, 0)
    ex.create_group("alice", 100)


def test_events_say_what_happened_to_the_group_before_its_orders() -> None:
    clock = Clock()
    ex = make_exchange(clock)
    events = recorder(ex)
    group = ex.create_group("alice", 100).group_id
    resting = ex.place(new(price=4000, order_group_id=group)).order
    clock.ms += 5
    ex.update_group_limit("alice", group, 0, 300)
    ex.trigger_group("alice", group, 0)
    ex.reset_group("alice", group, 0)
    ex.delete_group("alice", group, 0)
    t0, t1 = clock.ms - 5, clock.ms
    assert events == [
        ("created", 100, t0),
        (resting.order_id, "resting", None),
        ("limit_updated", 300, t1),
        ("triggered", None, t1),
        # A group's cancel carries no reason, as a user's own does.
        (resting.order_id, "canceled", None),
        ("reset", None, t1),
        ("deleted", None, t1),
    ]


def test_a_trip_by_fills_is_told_after_the_order_that_caused_it() -> None:
    ex = make_exchange(Clock())
    group = ex.create_group("alice", 100).group_id
    asks(ex, 100)
    events = recorder(ex)
    taker = ex.place(new(price=5000, count=300, order_group_id=group)).order
    mine = [(what, status) for what, status, _ in events if what in (taker.order_id, "triggered")]
    assert mine == [(taker.order_id, "resting"), ("triggered", None), (taker.order_id, "canceled")]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20_000), st.integers(1, 500)), max_size=30))
def test_the_window_holds_the_sum_of_the_last_fifteen_seconds(
    steps: list[tuple[int, int]],
) -> None:
    group = OrderGroup("g", "alice", 0, 0, limit=1)
    now, made = 0, []
    for gap, qty in steps:
        now += gap
        group.count(now, qty)
        made.append((now, qty))
        expected = sum(q for t, q in made if t > now - WINDOW_MS)
        assert group.matched_at(now) == expected


def test_a_rejected_order_into_a_good_group_changes_nothing() -> None:
    ex = make_exchange(Clock())
    group = ex.create_group("alice", 100).group_id
    asks(ex, 100)
    refused = fails(ex.place, new(price=5000, count=100, post_only=True, order_group_id=group))
    assert refused.details == "post only cross"
    found = ex.order_group("alice", group, None)
    assert (ex.group_orders(found), found.matched, found.triggered) == ([], 0, False)
