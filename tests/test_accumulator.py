"""The accumulator's synchronous decisions: lanes, priority, FIFO, the cut, retries, capacity."""

from __future__ import annotations

import asyncio

import pytest

from kalshi_router.accumulator import Accumulator, Kind, Pending
from tests.fakes import TICKER

DEADLINE = 100.0


def pending(
    key: str, kind: Kind = "create", *, at: float = 0.0, deadline: float = DEADLINE
) -> Pending:
    return Pending(
        kind=kind,
        key=key,
        ticker=TICKER,
        payload=None,
        future=asyncio.get_running_loop().create_future(),
        submitted=at,
        deadline=deadline,
        queued_at=at,
    )


def keys(items: list[Pending]) -> list[str]:
    return [item.key for item in items]


def filled(*specs: tuple[str, Kind]) -> Accumulator:
    acc = Accumulator(capacity=100)
    for at, (key, kind) in enumerate(specs):
        acc.push(pending(key, kind, at=float(at)))
    return acc


async def test_lanes_are_served_cancels_then_singles_then_creates() -> None:
    acc = filled(("c1", "create"), ("s1", "single"), ("x1", "cancel"), ("c2", "create"))
    served = []
    while (kind := acc.next_kind()) is not None:
        served.append((kind, keys(acc.cut(kind, 10, now=0.0).batch)))
    assert served == [("cancel", ["x1"]), ("single", ["s1"]), ("create", ["c1", "c2"])]
    assert len(acc) == 0


async def test_a_lane_is_first_in_first_out_and_the_cut_stops_at_the_limit() -> None:
    acc = filled(*((f"c{i}", "create") for i in range(5)))
    assert keys(acc.cut("create", 3, now=0.0).batch) == ["c0", "c1", "c2"]
    assert acc.count("create") == 2
    oldest = acc.oldest("create")
    assert oldest is not None
    assert oldest.key == "c3"
    assert keys(acc.cut("create", 3, now=0.0).batch) == ["c3", "c4"]
    assert acc.oldest("create") is None


async def test_the_cut_separates_expired_and_caller_cancelled_intents_from_the_batch() -> None:
    acc = Accumulator(capacity=100)
    items = {
        "live1": pending("live1"),
        "expired": pending("expired", deadline=5.0),
        "dropped": pending("dropped"),
        "settled": pending("settled"),
        "live2": pending("live2"),
        "live3": pending("live3"),
    }
    items["dropped"].future.cancel()
    items["settled"].settled = True
    for item in items.values():
        acc.push(item)
    # Only sendable intents count against the limit: the others come out on the way.
    cut = acc.cut("create", 2, now=5.0)
    assert keys(cut.batch) == ["live1", "live2"]
    assert keys(cut.expired) == ["expired"]
    assert keys(cut.dropped) == ["dropped"]
    assert keys(acc.cut("create", 2, now=5.0).batch) == ["live3"]


@pytest.mark.parametrize(
    ("now", "expired"),
    [pytest.param(9.999, [], id="before"), pytest.param(10.0, ["k"], id="at-the-deadline")],
)
async def test_an_intent_expires_at_its_deadline(now: float, expired: list[str]) -> None:
    acc = Accumulator(capacity=1)
    acc.push(pending("k", deadline=10.0))
    cut = acc.cut("create", 1, now=now)
    assert keys(cut.expired) == expired
    assert len(cut.batch) == 1 - len(expired)


async def test_retries_wait_out_their_backoff_then_rejoin_the_front_oldest_first() -> None:
    acc = Accumulator(capacity=100)
    first, second, third = (pending(key, at=at) for key, at in (("a", 0.0), ("b", 1.0), ("c", 2.0)))
    acc.push(third)
    acc.push_retry(second, not_before=5.0)
    acc.push_retry(first, not_before=6.0)
    assert acc.next_due() == 5.0
    acc.promote(4.9)
    assert keys(acc.cut("create", 10, now=4.9).batch) == ["c"]

    acc.push(pending("d", at=7.0))
    acc.promote(6.0)
    assert acc.next_due() is None
    assert keys(acc.cut("create", 10, now=6.0).batch) == ["a", "b", "d"]


async def test_retries_that_come_due_together_rejoin_in_submission_order() -> None:
    acc = Accumulator(capacity=100)
    late, early = pending("late", at=3.0), pending("early", at=1.0)
    acc.push_retry(late, not_before=1.0)
    acc.push_retry(early, not_before=2.0)
    acc.push(pending("queued", at=4.0))
    acc.promote(2.0)
    assert keys(acc.cut("create", 10, now=2.0).batch) == ["early", "late", "queued"]
    assert early.not_before == 2.0


async def test_a_batch_retried_together_keeps_its_order_even_with_equal_submit_times() -> None:
    acc = Accumulator(capacity=100)
    batch = [pending(f"b{i}", at=1.0) for i in range(5)]
    for item in batch:
        acc.push_retry(item, not_before=2.0)
    acc.promote(2.0)
    assert keys(acc.cut("create", 10, now=2.0).batch) == keys(batch)


async def test_a_retry_rejoins_its_own_lane() -> None:
    acc = Accumulator(capacity=100)
    acc.push(pending("new-create", at=5.0))
    acc.push_retry(pending("old-cancel", "cancel", at=0.0), not_before=1.0)
    assert acc.next_kind() == "create"
    acc.promote(1.0)
    assert acc.next_kind() == "cancel"


async def test_capacity_counts_lanes_and_waiting_retries_but_never_refuses_a_retry() -> None:
    acc = Accumulator(capacity=3)
    acc.push(pending("a"))
    acc.push(pending("b", "cancel"))
    assert not acc.full()
    acc.push_retry(pending("c"), not_before=1.0)
    assert (len(acc), acc.full()) == (3, True)
    # A retry was accepted once already: it gets back in even over capacity.
    acc.push_retry(pending("d"), not_before=1.0)
    assert len(acc) == 4
    acc.cut("create", 10, now=0.0)
    assert (len(acc), acc.full()) == (3, True)
    acc.cut("cancel", 10, now=0.0)
    assert (len(acc), acc.full()) == (2, False)


async def test_discard_takes_an_intent_out_of_its_lane_or_the_retry_heap_at_once() -> None:
    acc = Accumulator(capacity=3)
    first, second, retried = pending("a"), pending("b"), pending("r")
    acc.push(first)
    acc.push(second)
    acc.push_retry(retried, not_before=1.0)
    assert acc.full()
    assert acc.discard(first)
    assert acc.discard(retried)
    assert not acc.discard(first), "already out"
    # The counts are exact at once, so nothing is sized (or paid for) by a dead entry.
    assert (len(acc), acc.count("create"), acc.full()) == (1, 1, False)
    assert acc.oldest("create") is second
    assert acc.next_due() is None
    acc.promote(5.0)
    assert keys(acc.cut("create", 10, now=5.0).batch) == ["b"]
    assert (len(acc), acc.next_kind()) == (0, None)


async def test_only_what_waits_can_be_discarded() -> None:
    acc = Accumulator(capacity=10)
    sent = pending("sent")
    acc.push(sent)
    acc.cut("create", 1, now=0.0)
    assert not acc.discard(sent)
    assert len(acc) == 0
    acc.push_retry(sent, not_before=1.0)  # back after a 429, say
    acc.promote(1.0)
    assert acc.discard(sent)
    assert len(acc) == 0


async def test_an_intent_cannot_be_queued_twice() -> None:
    acc = Accumulator(capacity=10)
    item = pending("a")
    acc.push(item)
    with pytest.raises(AssertionError, match="queued twice"):
        acc.push_retry(item, not_before=1.0)


async def test_drain_yields_everything_waiting_and_leaves_it_empty() -> None:
    acc = filled(("c1", "create"), ("x1", "cancel"), ("s1", "single"))
    acc.push_retry(pending("r1"), not_before=50.0)
    gone = pending("gone")
    acc.push(gone)
    acc.discard(gone)
    assert sorted(keys(list(acc.drain()))) == ["c1", "r1", "s1", "x1"]
    assert (len(acc), acc.next_kind(), acc.next_due()) == (0, None, None)


async def test_ids_name_the_field_the_outcome_is_keyed_by() -> None:
    assert pending("coid").ids() == {"client_order_id": "coid"}
    assert pending("oid", "cancel").ids() == {"order_id": "oid"}
    assert pending("oid", "single").ids() == {"order_id": "oid"}


# Deadlines, for the dispatcher's one expiry timer.


async def test_next_deadline_is_the_earliest_of_what_still_waits_in_any_order() -> None:
    acc = Accumulator(capacity=10)
    first = pending("a", deadline=30.0)
    acc.push(first)
    acc.push(pending("b", deadline=40.0))
    acc.push(pending("short", deadline=12.0))  # out of order: shorter than the ones before it
    assert acc.next_deadline() == 12.0
    assert acc.discard(first)  # cancelled by its caller: it no longer counts
    assert acc.expire(upto=11.9) == []
    assert keys(acc.expire(upto=12.0)) == ["short"]
    assert acc.next_deadline() == 40.0
    assert keys(acc.cut("create", 5, now=13.0).batch) == ["b"]
    assert acc.next_deadline() is None


async def test_expire_takes_out_only_what_waits_and_is_due() -> None:
    acc = Accumulator(capacity=10)
    for key, deadline in (("a", 5.0), ("b", 6.0), ("c", 9.0)):
        acc.push(pending(key, deadline=deadline))
    sent = acc.cut("create", 1, now=1.0).batch
    assert keys(sent) == ["a"]
    expired = acc.expire(upto=8.0)
    assert keys(expired) == ["b"]
    assert all(p.where is None for p in expired)
    assert acc.count("create") == 1
    assert len(acc) == 1


async def test_a_retry_keeps_its_deadline_after_its_first_send() -> None:
    acc = Accumulator(capacity=10)
    acc.push(pending("r", deadline=20.0))
    acc.push(pending("later", deadline=50.0))
    (sent,) = acc.cut("create", 1, now=1.0).batch
    # The cut dropped "r" from the deadline deque; the retry must bring its deadline back.
    acc.push_retry(sent, not_before=30.0)
    assert acc.next_deadline() == 20.0
    assert keys(acc.expire(upto=20.0)) == ["r"]
    assert len(acc) == 1
