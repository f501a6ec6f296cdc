"""The accumulator's synchronous decisions: lanes, priority, clients taking turns, FIFO per
client, the cut, retries, capacity."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.accumulator import KINDS, Accumulator
from kalshi_router.errors import IllegalTransition
from kalshi_router.pending import Kind, Pending
from tests.fakes import TICKER
from tests.pendings import walked

DEADLINE = 100.0


def pending(
    key: str,
    kind: Kind = "create",
    *,
    at: float = 0.0,
    deadline: float = DEADLINE,
    client: str | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Pending:
    return Pending(
        kind=kind,
        key=key,
        ticker=TICKER,
        payload=None,
        future=(loop or asyncio.get_running_loop()).create_future(),
        submitted=at,
        deadline=deadline,
        queued_at=at,
        client=client,
    )


def sent(key: str, kind: Kind = "create", **fields: Any) -> Pending:
    """An intent that was sent, to be queued again (after a 429, say)."""
    return walked(pending(key, kind, **fields), "sending")


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
        "live2": pending("live2"),
        "live3": pending("live3"),
    }
    items["dropped"].future.cancel()
    for item in items.values():
        acc.push(item)
    # Only sendable intents count against the limit: the others come out on the way.
    cut = acc.cut("create", 2, now=5.0)
    assert keys(cut.batch) == ["live1", "live2"]
    assert keys(cut.expired) == ["expired"]
    assert keys(cut.dropped) == ["dropped"]
    assert [p.state for p in cut.batch + cut.expired + cut.dropped] == [
        "sending",
        "sending",
        "leaving",
        "leaving",
    ]
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
    first, second = sent("a", at=0.0), sent("b", at=1.0)
    third = pending("c", at=2.0)
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
    late, early = sent("late", at=3.0), sent("early", at=1.0)
    acc.push_retry(late, not_before=1.0)
    acc.push_retry(early, not_before=2.0)
    acc.push(pending("queued", at=4.0))
    acc.promote(2.0)
    assert keys(acc.cut("create", 10, now=2.0).batch) == ["early", "late", "queued"]
    assert early.not_before == 2.0


async def test_a_batch_retried_together_keeps_its_order_even_with_equal_submit_times() -> None:
    acc = Accumulator(capacity=100)
    batch = [sent(f"b{i}", at=1.0) for i in range(5)]
    for item in batch:
        acc.push_retry(item, not_before=2.0)
    acc.promote(2.0)
    assert keys(acc.cut("create", 10, now=2.0).batch) == keys(batch)


async def test_a_retry_rejoins_its_own_lane() -> None:
    acc = Accumulator(capacity=100)
    acc.push(pending("new-create", at=5.0))
    acc.push_retry(sent("old-cancel", "cancel", at=0.0), not_before=1.0)
    assert acc.next_kind() == "create"
    acc.promote(1.0)
    assert acc.next_kind() == "cancel"


async def test_capacity_counts_lanes_and_waiting_retries_but_never_refuses_a_retry() -> None:
    acc = Accumulator(capacity=3)
    acc.push(pending("a"))
    acc.push(pending("b", "cancel"))
    assert not acc.full()
    acc.push_retry(sent("c"), not_before=1.0)
    assert (len(acc), acc.full()) == (3, True)
    # A retry was accepted once already: it gets back in even over capacity.
    acc.push_retry(sent("d"), not_before=1.0)
    assert len(acc) == 4
    acc.cut("create", 10, now=0.0)
    assert (len(acc), acc.full()) == (3, True)
    acc.cut("cancel", 10, now=0.0)
    assert (len(acc), acc.full()) == (2, False)


async def test_discard_takes_an_intent_out_of_its_lane_or_the_retry_heap_at_once() -> None:
    acc = Accumulator(capacity=3)
    first, second, retried = pending("a"), pending("b"), sent("r")
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
    with pytest.raises(IllegalTransition, match="'a': illegal transition queued -> queued"):
        acc.push(item)
    with pytest.raises(IllegalTransition, match="queued -> waiting_retry"):
        acc.push_retry(item, not_before=1.0)
    assert (len(acc), acc.count("create")) == (1, 1)


async def test_drain_yields_everything_waiting_and_leaves_it_empty() -> None:
    acc = filled(("c1", "create"), ("x1", "cancel"), ("s1", "single"))
    acc.push_retry(sent("r1"), not_before=50.0)
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


async def test_a_batch_due_at_once_expires_as_its_intents_pushed_one_by_one_would() -> None:
    acc = Accumulator(capacity=10)
    acc.push(pending("later", deadline=40.0))
    acc.push_all([pending(k, deadline=20.0) for k in ("a", "b")], deadline=20.0)  # before it
    acc.push_all([pending(k, deadline=50.0) for k in ("c", "d")], deadline=50.0)  # after it
    assert acc.next_deadline() == 20.0
    assert keys(acc.expire(upto=20.0)) == ["a", "b"]
    assert acc.next_deadline() == 40.0
    assert keys(acc.expire(upto=45.0)) == ["later"]
    assert keys(acc.expire(upto=50.0)) == ["c", "d"]
    assert acc.next_deadline() is None


async def test_expire_takes_out_only_what_waits_and_is_due() -> None:
    acc = Accumulator(capacity=10)
    for key, deadline in (("a", 5.0), ("b", 6.0), ("c", 9.0)):
        acc.push(pending(key, deadline=deadline))
    sent = acc.cut("create", 1, now=1.0).batch
    assert keys(sent) == ["a"]
    expired = acc.expire(upto=8.0)
    assert keys(expired) == ["b"]
    assert all(p.state == "leaving" for p in expired)
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


# Clients take turns.


def from_clients(*keys: str, kind: Kind = "create") -> list[Pending]:
    """Intents whose client is the key's first letter ("a2" is client a's), in order."""
    return [pending(key, kind, at=float(at), client=key[0]) for at, key in enumerate(keys)]


def pushed(items: list[Pending]) -> Accumulator:
    acc = Accumulator(capacity=100)
    for item in items:
        acc.push(item)
    return acc


async def test_clients_take_turns_one_intent_each_in_the_order_they_came() -> None:
    acc = pushed(from_clients("a1", "a2", "a3", "a4", "b1", "c1", "b2"))
    assert keys(acc.cut("create", 10, now=0.0).batch) == ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]
    assert (len(acc), acc.next_kind()) == (0, None)


async def test_the_turn_carries_over_from_one_cut_to_the_next() -> None:
    acc = pushed(from_clients("a1", "a2", "a3", "b1", "b2", "b3"))
    assert keys(acc.cut("create", 3, now=0.0).batch) == ["a1", "b1", "a2"]
    assert keys(acc.cut("create", 3, now=0.0).batch) == ["b2", "a3", "b3"]


async def test_a_newcomer_is_served_within_one_round_whatever_the_backlog_ahead() -> None:
    acc = pushed(from_clients(*(f"a{i}" for i in range(50))))
    assert keys(acc.cut("create", 2, now=0.0).batch) == ["a0", "a1"]
    for item in from_clients("b0", "c0"):
        acc.push(item)
    assert keys(acc.cut("create", 4, now=0.0).batch) == ["a2", "b0", "c0", "a3"]


async def test_expired_and_cancelled_intents_do_not_use_up_a_turn() -> None:
    items = from_clients("a1", "a2", "b1", "b2", "c1")
    items[2].future.cancel()
    items[3].deadline = 1.0
    acc = pushed(items)
    cut = acc.cut("create", 2, now=1.0)
    # b has nothing sendable: its turn passes to c, not to a second intent of a's.
    assert (keys(cut.batch), keys(cut.dropped), keys(cut.expired)) == (["a1", "c1"], ["b1"], ["b2"])
    assert keys(acc.cut("create", 2, now=1.0).batch) == ["a2"]


async def test_a_retry_rejoins_the_front_of_its_clients_queue_not_of_the_lane() -> None:
    acc = Accumulator(capacity=100)
    first = pending("a0", at=0.0, client="a")
    acc.push(first)
    (sent,) = acc.cut("create", 1, now=0.0).batch
    for item in from_clients("a1", "a2", "b1", "b2"):
        acc.push(item)
    acc.push_retry(sent, not_before=1.0)
    acc.promote(1.0)
    assert keys(acc.cut("create", 10, now=1.0).batch) == ["a0", "b1", "a1", "b2", "a2"]


async def test_lanes_keep_their_priority_over_clients() -> None:
    acc = pushed(from_clients("a1", "a2") + from_clients("b1", kind="cancel"))
    assert acc.next_kind() == "cancel"
    assert keys(acc.cut("cancel", 10, now=0.0).batch) == ["b1"]
    assert keys(acc.cut("create", 10, now=0.0).batch) == ["a1", "a2"]


async def test_oldest_is_the_longest_waiting_intent_of_any_client() -> None:
    acc = pushed(from_clients("a1", "b1", "a2", "b2"))
    assert keys(acc.cut("create", 1, now=0.0).batch) == ["a1"]
    # b's turn is next, and its first intent is also the oldest left.
    oldest = acc.oldest("create")
    assert oldest is not None
    assert oldest.key == "b1"
    assert acc.discard(oldest)
    oldest = acc.oldest("create")
    assert oldest is not None
    assert oldest.key == "a2"


async def test_queued_counts_each_clients_waiting_intents_and_retries() -> None:
    items = from_clients("a1", "a2", "b1", "x1")
    items[3].client = None
    acc = pushed(items)
    acc.push_retry(sent("b0", client="b"), not_before=5.0)
    assert acc.discard(items[1])
    assert acc.queued() == {"a": 1, "b": 2, None: 1}
    acc.cut("create", 10, now=0.0)
    assert acc.queued() == {"b": 1}


async def test_a_lone_client_is_served_first_in_first_out_up_to_the_limit() -> None:
    acc = pushed([pending(f"n{i}", at=float(i)) for i in range(5)])
    assert keys(acc.cut("create", 3, now=0.0).batch) == ["n0", "n1", "n2"]
    acc.push(pending("b0", client="b"))
    assert keys(acc.cut("create", 3, now=0.0).batch) == ["n3", "b0", "n4"]


# Every intent comes out exactly once, and no client waits more than one round.

CLIENTS = ("a", "b", "c", None)
Op = tuple[Any, ...]
OPS = st.one_of(
    # Several intents at once, and drawn most often: contention between clients is the point.
    st.tuples(
        st.just("push"),
        st.sampled_from(CLIENTS),
        st.sampled_from(KINDS),
        st.floats(0.5, 20.0),
        st.integers(1, 5),
    ),
    st.tuples(st.just("cut"), st.sampled_from(KINDS), st.integers(1, 6)),
    st.tuples(st.just("retry"), st.integers(0, 200), st.floats(0.0, 3.0)),
    st.tuples(st.just("discard"), st.integers(0, 200)),
    st.tuples(st.just("cancel"), st.integers(0, 200)),
    st.tuples(st.just("tick"), st.floats(0.0, 2.0)),
    st.tuples(st.just("expire")),
)


class Model:
    """What the accumulator must hold: each intent's ins (pushes) and outs, and for each client
    waiting in a lane, how often every other client has been served since it last was."""

    def __init__(self, acc: Accumulator) -> None:
        self.acc = acc
        self.now = 0.0
        self.ins: Counter[Pending] = Counter()
        self.outs: Counter[Pending] = Counter()
        self.sent: list[Pending] = []
        self.passed_over: dict[tuple[Kind, str | None], Counter[str | None]] = {}

    def out(self, items: Iterable[Pending]) -> None:
        for item in items:
            assert self.ins[item] == self.outs[item] + 1, f"{item.key} came out twice"
            self.outs[item] += 1

    def inside(self) -> list[Pending]:
        return [item for item in self.ins if self.ins[item] > self.outs[item]]

    def sendable(self, kind: Kind) -> Counter[str | None]:
        """Clients with sendable intents waiting in ``kind``'s lane, and how many each."""
        return Counter(
            item.client
            for item in self.inside()
            if item.kind == kind
            and item.state == "queued"
            and not item.future.cancelled()
            and self.now < item.deadline
        )

    def served(self, kind: Kind, batch: list[Pending], waiting: Counter[str | None]) -> None:
        for item in batch:
            for client in waiting:
                if client != item.client and waiting[client]:
                    others = self.passed_over.setdefault((kind, client), Counter())
                    others[item.client] += 1
                    assert others[item.client] <= 1, (
                        f"{client} waited while {item.client} was served twice"
                    )
            self.passed_over[(kind, item.client)] = Counter()
            waiting[item.client] -= 1

    def check(self) -> None:
        inside = self.inside()
        assert len(self.acc) == len(inside)
        for kind in KINDS:
            lane = [item for item in inside if item.kind == kind and item.state == "queued"]
            assert self.acc.count(kind) == len(lane)
            # A client that stopped waiting starts afresh when it waits again.
            waiting = self.sendable(kind)
            for client in CLIENTS:
                if not waiting[client]:
                    self.passed_over.pop((kind, client), None)
        assert self.acc.queued() == Counter(item.client for item in inside)

    def run(self, op: Op, loop: asyncio.AbstractEventLoop) -> None:
        acc = self.acc
        known = list(self.ins)
        match op:
            case ("push", client, kind, lifetime, count):
                for number in range(len(known), len(known) + count):
                    item = pending(
                        f"p{number}",
                        kind,
                        at=self.now,
                        deadline=self.now + lifetime,
                        client=client,
                        loop=loop,
                    )
                    acc.push(item)
                    self.ins[item] += 1
            case ("retry", index, delay) if self.sent:
                item = self.sent.pop(index % len(self.sent))
                acc.push_retry(item, self.now + delay)
                self.ins[item] += 1
            case ("discard", index) if known:
                item = known[index % len(known)]
                was_inside = self.ins[item] > self.outs[item]
                assert acc.discard(item) == was_inside
                if was_inside:
                    self.out([item])
            case ("cancel", index) if known:
                known[index % len(known)].future.cancel()
            case ("cut", kind, limit):
                acc.promote(self.now)
                waiting = self.sendable(kind)
                cut = acc.cut(kind, limit, self.now)
                assert len(cut.batch) == min(limit, waiting.total())
                assert all(item.future.cancelled() for item in cut.dropped)
                assert all(item.deadline <= self.now for item in cut.expired)
                self.out(cut.batch + cut.expired + cut.dropped)
                self.served(kind, cut.batch, waiting)
                self.sent.extend(item for item in cut.batch if not item.future.cancelled())
            case ("tick", seconds):
                self.now += seconds
            case ("expire",):
                self.out(acc.expire(self.now))
        self.check()


@given(st.lists(OPS, min_size=20, max_size=60))
def test_every_intent_comes_out_once_and_no_client_waits_more_than_a_round(ops: list[Op]) -> None:
    loop = asyncio.new_event_loop()
    try:
        model = Model(Accumulator(capacity=1_000))
        for op in ops:
            model.run(op, loop)
        model.out(model.acc.drain())
        assert model.ins == model.outs
        assert (len(model.acc), model.acc.next_kind(), model.acc.queued()) == (0, None, {})
    finally:
        loop.close()
