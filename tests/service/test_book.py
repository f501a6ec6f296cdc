"""The service's order book, alone: actions linked into orders by the exchange's answers, and
bounded memory (settled actions in all, actions per order; never an order with one pending)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.outcome import Accepted, Amended, Cancelled, Outcome, Rejected
from kalshi_router.service.book import OutcomeBook
from kalshi_router.service.history import ACTIONS_KEPT
from kalshi_router.service.protocol import Verb


class Driver:
    """Feeds a book futures and settles them, as the router would."""

    def __init__(self, book: OutcomeBook) -> None:
        self.book = book
        self.loop = asyncio.get_running_loop()
        # An exception in a done callback would only be logged: make it fail the test.
        self.errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda _, context: self.errors.append(context))

    def take(self, verb: Verb, key: str) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()
        self.book.track(verb, key, future)
        return future

    async def settle(self, future: asyncio.Future[Any], outcome: Outcome | Exception) -> None:
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
        await asyncio.sleep(0)  # done callbacks run on the next turn
        assert self.errors == []

    async def act(self, verb: Verb, key: str, outcome: Outcome | Exception) -> None:
        await self.settle(self.take(verb, key), outcome)


def accepted(client_order_id: str, order_id: str) -> Accepted:
    return Accepted(
        client_order_id=client_order_id,
        order_id=order_id,
        fill_count=Decimal(0),
        remaining_count=Decimal(1),
    )


def amended(order_id: str, n: int = 1) -> Amended:
    return Amended(order_id=order_id, remaining_count=Decimal(n))


async def test_an_order_keeps_its_newest_actions_and_counts_the_rest() -> None:
    driver = Driver(OutcomeBook(keep=1000))
    await driver.act("submit", "c", accepted("c", "x"))
    for n in range(1, 151):
        await driver.act("amend", "x", amended("x", n))
    found = driver.book.find("c")
    assert found is not None
    assert len(found.actions) == ACTIONS_KEPT
    assert found.omitted == 151 - ACTIONS_KEPT
    counts = [a.outcome.remaining_count for a in found.actions if isinstance(a.outcome, Amended)]
    assert counts == [Decimal(n) for n in range(51, 151)]
    assert driver.book.held == ACTIONS_KEPT
    # What the place said is still known, for refusing the same client_order_id again.
    assert driver.book.accepted("c") == accepted("c", "x")


async def test_the_orders_acted_on_least_recently_go_first() -> None:
    driver = Driver(OutcomeBook(keep=3))
    for name in "abc":
        await driver.act("submit", name, accepted(name, f"x{name}"))
    await driver.act("amend", "xa", amended("xa"))
    assert driver.book.held == 3
    assert driver.book.find("b") is None
    assert driver.book.find("xb") is None
    assert driver.book.find("c") is not None
    found = driver.book.find("xa")
    assert found is not None
    assert [action.action for action in found.actions] == ["place", "amend"]


async def test_an_order_with_an_action_pending_is_never_forgotten() -> None:
    driver = Driver(OutcomeBook(keep=1))
    waiting = driver.take("submit", "a")
    await driver.act("submit", "b", accepted("b", "xb"))
    await driver.act("submit", "c", accepted("c", "xc"))
    assert driver.book.find("b") is None
    found = driver.book.find("a")
    assert found is not None
    assert found.status == "pending"
    await driver.settle(waiting, accepted("a", "xa"))
    assert driver.book.find("c") is None
    assert driver.book.find("xa") is not None
    assert driver.book.held == 1


async def test_an_action_without_an_outcome_leaves_no_trace() -> None:
    driver = Driver(OutcomeBook(keep=10))
    await driver.act("submit", "a", RuntimeError("dispatcher crashed"))
    assert driver.book.find("a") is None
    await driver.act("submit", "b", accepted("b", "xb"))
    await driver.act("cancel", "xb", RuntimeError("dispatcher crashed"))
    found = driver.book.find("xb")
    assert found is not None
    assert [action.action for action in found.actions] == ["place"]
    assert driver.book.held == 1


async def test_two_records_that_are_one_order_become_one() -> None:
    driver = Driver(OutcomeBook(keep=10))
    # A place the router refused, then a cancel by order id whose answer names that
    # client_order_id: the book learns they are one order only from the answer.
    await driver.act("submit", "c", Rejected(code="x", message="x", client_order_id="c"))
    cancelled = Cancelled(order_id="x", reduced_by=Decimal(1), client_order_id="c")
    await driver.act("cancel", "x", cancelled)
    for key in ("c", "x"):
        found = driver.book.find(key)
        assert found is not None
        assert [action.action for action in found.actions] == ["place", "cancel"]
        assert (found.client_order_id, found.order_id) == ("c", "x")
    assert driver.book.held == 2


async def test_an_amend_may_give_the_order_a_new_client_order_id() -> None:
    driver = Driver(OutcomeBook(keep=10))
    await driver.act("submit", "c1", accepted("c1", "x"))
    await driver.act("amend", "x", Amended(order_id="x", client_order_id="c2"))
    for key in ("c1", "c2", "x"):
        found = driver.book.find(key)
        assert found is not None
        assert found.client_order_id == "c2"
        assert [action.action for action in found.actions] == ["place", "amend"]


async def test_an_order_renamed_by_every_amend_keeps_only_its_newest_names() -> None:
    driver = Driver(OutcomeBook(keep=1000))
    await driver.act("submit", "c0", accepted("c0", "x"))
    for n in range(1, 151):
        await driver.act("amend", "x", Amended(order_id="x", client_order_id=f"c{n}"))
    found = {key: driver.book.find(key) for key in ("c0", "c49", "c50", "c150", "x")}
    assert found["c0"] is None
    assert found["c49"] is None
    for key in ("c50", "c150", "x"):
        order = found[key]
        assert order is not None
        assert (order.client_order_id, order.order_id, order.omitted) == ("c150", "x", 51)


VERBS: list[Verb] = ["submit", "amend", "decrease", "cancel"]
ACTION = st.tuples(
    st.sampled_from(VERBS),
    st.integers(0, 4),
    st.booleans(),  # settle at once, or leave pending until the end
    st.none() | st.integers(0, 4),  # the client_order_id an amend's answer gives the order
)


@given(st.integers(1, 8), st.lists(ACTION, max_size=60))
def test_memory_stays_within_its_bounds(
    keep: int, actions: list[tuple[Verb, int, bool, int | None]]
) -> None:
    async def run() -> None:
        driver = Driver(OutcomeBook(keep=keep))
        waiting: list[tuple[asyncio.Future[Any], Outcome]] = []
        pending: set[str] = set()
        for verb, n, now, renamed in actions:
            key = f"c{n}" if verb == "submit" else f"x{n}"
            outcome: Outcome = (
                accepted(key, f"x{n}")
                if verb == "submit"
                else Amended(
                    order_id=key, client_order_id=None if renamed is None else f"c{renamed}"
                )
            )
            future = driver.take(verb, key)
            if now:
                await driver.settle(future, outcome)
            else:
                waiting.append((future, outcome))
                pending.add(key)
            assert driver.book.held <= keep
            for name in pending:
                assert driver.book.find(name) is not None, name
        for future, outcome in waiting:
            await driver.settle(future, outcome)
            assert driver.book.held <= keep
        for n in range(5):
            for key in (f"c{n}", f"x{n}"):
                found = driver.book.find(key)
                assert found is None or len(found.actions) <= min(keep, ACTIONS_KEPT)

    asyncio.run(run())
