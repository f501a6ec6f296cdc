"""Each bot's own orders: ``OrderForwarding`` on its own, a Watch as the router's source and
futures as the creates' outcomes. Through the service's stream and HTTP reads:
test_order_reads.py; with the router's tracker end to end: test_orders_tracked.py."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from kalshi_router.orders.updates import OrderUpdate
from kalshi_router.orders.watch import Watch
from kalshi_router.outcome import Accepted, Rejected, Unknown
from kalshi_router.service import orders as forwarding_module
from kalshi_router.service.orders import OrderForwarding
from kalshi_router.service.protocol import (
    PositionsBody,
    StreamOrderUpdate,
    ViewRequest,
)
from tests.service.conftest import (
    OTHER_TICKER,
    TICKER,
    a_fill,
    eventually,
    order_update,
)


class Inbox:
    """A stream's outbox, as forwarding sees it."""

    def __init__(self) -> None:
        self.items: list[StreamOrderUpdate] = []

    def put_nowait(self, item: StreamOrderUpdate, /) -> None:
        self.items.append(item)


def accepted(key: str, order_id: str) -> asyncio.Future[Any]:
    future = asyncio.get_running_loop().create_future()
    outcome = Accepted(
        client_order_id=key, order_id=order_id, fill_count=Decimal(0), remaining_count=Decimal(1)
    )
    future.set_result(outcome)
    return future


async def settled() -> None:
    """Done callbacks run on the loop's next turn."""
    await asyncio.sleep(0)


# --- OrderForwarding on its own ----------------------------------------------------------------


async def test_each_update_goes_to_the_client_that_placed_the_order_and_no_other() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    a, b = Inbox(), Inbox()
    forwarding.attach("bot-a", a)
    forwarding.attach("bot-b", b)
    forwarding.placed("bot-a", "a-1", accepted("a-1", "o-a1"))
    forwarding.placed("bot-b", "b-1", accepted("b-1", "o-b1"))
    forwarding.forward(order_update("a-1", "o-a1"))
    forwarding.forward(order_update("b-1", "o-b1"))
    forwarding.forward(order_update("elsewhere", "o-x"))  # another process's order: nobody's
    # Fills name the order id only: the first update filed it under its client.
    forwarding.forward(order_update(None, "o-a1", "partially_filled", fill=a_fill("t-1", "o-a1")))
    assert [(m.seq, m.update.order_id) for m in a.items] == [(1, "o-a1"), (2, "o-a1")]
    assert [(m.seq, m.update.order_id) for m in b.items] == [(1, "o-b1")]
    assert forwarding.positions("bot-a").positions[TICKER].position == 2
    assert forwarding.positions("bot-b").positions == {}
    assert forwarding.positions("nobody") == PositionsBody(run="run-1", seq=0, positions={})


async def test_open_orders_are_scoped_to_the_client_and_filter_by_ticker() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    for key, ticker in (("a-1", TICKER), ("a-2", OTHER_TICKER), ("a-3", TICKER)):
        forwarding.placed("bot-a", key, accepted(key, f"o-{key}"))
        forwarding.forward(order_update(key, f"o-{key}", ticker=ticker))
    forwarding.placed("bot-b", "b-1", accepted("b-1", "o-b1"))
    forwarding.forward(order_update("b-1", "o-b1"))
    forwarding.forward(order_update("a-3", "o-a-3", "cancelled"))
    assert {u.client_order_id for u in forwarding.open_orders("bot-a", None).orders} == {
        "a-1",
        "a-2",
    }
    assert [u.client_order_id for u in forwarding.open_orders("bot-a", TICKER).orders] == ["a-1"]
    assert [u.client_order_id for u in forwarding.open_orders("bot-b", None).orders] == ["b-1"]


async def test_a_create_that_placed_nothing_is_forgotten_and_an_unknown_one_kept() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    inbox = Inbox()
    forwarding.attach("bot-a", inbox)
    loop = asyncio.get_running_loop()
    rejected, unknown = loop.create_future(), loop.create_future()
    forwarding.placed("bot-a", "a-rej", rejected)
    forwarding.placed("bot-a", "a-unk", unknown)
    rejected.set_result(Rejected(code="invalid_price", message="no", client_order_id="a-rej"))
    unknown.set_result(Unknown(reason="timed out", client_order_id="a-unk"))
    await settled()
    # Another process may use the same client_order_id later: not this bot's.
    forwarding.forward(order_update("a-rej", "o-1"))
    resolved = OrderUpdate(
        order_id=None,
        client_order_id="a-unk",
        ticker=TICKER,
        state="reconciled_absent",
        source="rest",
    )
    forwarding.forward(resolved)
    assert [m.update for m in inbox.items] == [resolved]


async def test_an_unnamed_client_is_followed_only_while_its_stream_is_open() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    forwarding.placed("#http", "h-1", accepted("h-1", "o-h1"))  # no stream: nowhere to send
    inbox = Inbox()
    forwarding.attach("#conn", inbox)
    forwarding.placed("#conn", "c-1", accepted("c-1", "o-c1"))
    forwarding.forward(order_update("h-1", "o-h1"))
    forwarding.forward(order_update("c-1", "o-c1"))
    assert [m.update.client_order_id for m in inbox.items] == ["c-1"]
    forwarding.detach("#conn", inbox)
    forwarding.forward(order_update("c-1", "o-c1", "cancelled"))
    assert len(inbox.items) == 1
    assert forwarding.open_orders("#conn", None).orders == []
    assert forwarding.open_orders("#http", None).orders == []


async def test_a_named_client_keeps_its_view_between_streams() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    first = Inbox()
    forwarding.attach("bot-a", first)
    forwarding.placed("bot-a", "a-1", accepted("a-1", "o-a1"))
    forwarding.forward(order_update("a-1", "o-a1"))
    forwarding.detach("bot-a", first)
    forwarding.forward(order_update("a-1", "o-a1", "filled", fill=a_fill("t-1", "o-a1")))
    second = Inbox()
    forwarding.attach("bot-a", second)
    forwarding.forward(order_update(None, "o-a1", "filled", fill=a_fill("t-2", "o-a1")))
    assert [m.seq for m in first.items] == [1]
    assert [m.seq for m in second.items] == [3]
    assert forwarding.positions("bot-a").positions[TICKER].position == 4


async def test_only_the_newest_final_orders_stay_filed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forwarding_module, "FINAL_KEPT", 2)
    forwarding = OrderForwarding(Watch(), "run-1")
    inbox = Inbox()
    forwarding.attach("bot-a", inbox)
    for n in range(3):
        forwarding.placed("bot-a", f"a-{n}", accepted(f"a-{n}", f"o-{n}"))
        forwarding.forward(order_update(f"a-{n}", f"o-{n}", "cancelled"))
    # Late fills after the cancels: the oldest order is no longer known as this bot's.
    for n in range(3):
        forwarding.forward(
            order_update(None, f"o-{n}", "cancelled", fill=a_fill(f"t-{n}", f"o-{n}"))
        )
    late = [m.update.order_id for m in inbox.items if m.update.fill is not None]
    assert late == ["o-1", "o-2"]


async def test_a_view_resends_exactly_what_was_missed_while_it_is_held() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    forwarding.placed("bot-a", "a-1", accepted("a-1", "o-a1"))
    for trade in range(5):
        forwarding.forward(order_update("a-1", "o-a1", fill=a_fill(f"t-{trade}", "o-a1")))
    view = forwarding.view("bot-a", "v", ViewRequest(run="run-1", since=2))
    assert view.missed is not None
    assert [m.seq for m in view.missed] == [3, 4, 5]
    assert (view.seq, view.open, view.positions) == (5, [], {})
    caught_up = forwarding.view("bot-a", "v", ViewRequest(run="run-1", since=5))
    assert (caught_up.missed, caught_up.seq) == ([], 5)


@pytest.mark.parametrize(
    ("run", "since"),
    [("run-0", 2), ("run-1", 0), ("run-1", 9)],
    ids=["another-run", "beyond-what-is-held", "ahead-of-the-service"],
)
async def test_otherwise_a_view_is_a_snapshot(
    monkeypatch: pytest.MonkeyPatch, run: str, since: int
) -> None:
    monkeypatch.setattr(forwarding_module, "REPLAY_KEPT", 3)
    forwarding = OrderForwarding(Watch(), "run-1")
    forwarding.placed("bot-a", "a-1", accepted("a-1", "o-a1"))
    forwarding.placed("bot-a", "a-2", accepted("a-2", "o-a2"))
    forwarding.forward(order_update("a-1", "o-a1"))
    forwarding.forward(order_update("a-2", "o-a2"))
    forwarding.forward(order_update("a-1", "o-a1", "filled", fill=a_fill("t-1", "o-a1", count=3)))
    forwarding.forward(
        order_update("a-2", "o-a2", "partially_filled", fill=a_fill("t-2", "o-a2", "ask"))
    )
    view = forwarding.view("bot-a", 7, ViewRequest(keys=["a-1", "no-such"], run=run, since=since))
    assert view.missed is None
    assert (view.id, view.run, view.seq) == (7, "run-1", 4)
    assert [u.client_order_id for u in view.open] == ["a-2"]
    assert [(u.client_order_id, u.state) for u in view.latest] == [("a-1", "filled")]
    assert view.positions[TICKER].position == 1  # bought 3, sold 2


async def test_a_snapshot_files_an_order_held_by_the_client_that_nobody_here_placed() -> None:
    # As after a restart of the service: the router follows the order, no client is known.
    source = Watch()
    before = order_update("a-old", "o-old", "partially_filled", fill=a_fill("t-0", "o-old"))
    source.push(before)
    forwarding = OrderForwarding(source, "run-2")
    inbox = Inbox()
    forwarding.attach("bot-a", inbox)
    forwarding.placed("bot-b", "b-1", accepted("b-1", "o-b1"))
    forwarding.forward(order_update("b-1", "o-b1"))
    view = forwarding.view("bot-a", 1, ViewRequest(keys=["a-old", "b-1"], run="run-1", since=4))
    # Another bot's order is not taken over; the fill before was counted in no view.
    assert [u.client_order_id for u in view.latest] == ["a-old"]
    assert view.latest[0].fill is None
    assert [u.client_order_id for u in view.open] == ["a-old"]
    assert view.positions == {}
    forwarding.forward(order_update(None, "o-old", "filled", fill=a_fill("t-1", "o-old")))
    assert [(m.seq, m.update.state) for m in inbox.items] == [(1, "filled")]


async def test_the_forwarding_task_reads_the_source_until_it_closes() -> None:
    source = Watch()
    forwarding = OrderForwarding(source, "run-1")
    inbox = Inbox()
    forwarding.attach("bot-a", inbox)
    forwarding.placed("bot-a", "a-1", accepted("a-1", "o-a1"))
    forwarding.start()
    await asyncio.sleep(0)  # the task subscribes
    source.push(order_update("a-1", "o-a1"))
    source.push(order_update("a-1", "o-a1", "cancelled"))
    source.close()
    await forwarding.finished(within_s=5)
    assert [m.update.state for m in inbox.items] == ["resting", "cancelled"]
    await forwarding.aclose()


async def test_after_an_overflow_the_forwarding_catches_up_from_the_router() -> None:
    source = Watch(stream_bound=2)
    forwarding = OrderForwarding(source, "run-1")
    inbox = Inbox()
    forwarding.attach("bot-a", inbox)
    for key in ("a-1", "a-2"):
        forwarding.placed("bot-a", key, accepted(key, f"o-{key}"))
    forwarding.start()
    await asyncio.sleep(0)
    # More than the bound in one turn of the loop: the forwarding's stream ends after the first
    # two, and the last two reach the bot only by catching up.
    source.push(order_update("a-1", "o-a-1"))
    source.push(order_update("a-2", "o-a-2"))
    source.push(order_update("a-1", "o-a-1", "cancelled"))
    source.push(order_update("a-2", "o-a-2", "filled", fill=a_fill("t-1", "o-a-2")))
    await eventually(lambda: len(inbox.items) >= 4)
    assert forwarding.open_orders("bot-a", None).orders == []
    assert len(inbox.items) == 4  # each order caught up once, by either of its names
    assert [m.seq for m in inbox.items] == list(range(1, len(inbox.items) + 1))
    assert {(m.update.client_order_id, m.update.state) for m in inbox.items[2:]} == {
        ("a-1", "cancelled"),
        ("a-2", "filled"),
    }
    # And it reads on: a later update is forwarded as usual.
    source.push(order_update(None, "o-a-2", "filled", fill=a_fill("t-2", "o-a-2")))
    await eventually(lambda: inbox.items[-1].update.fill is not None)
    await forwarding.aclose()


async def test_aclose_stops_the_forwarding_task() -> None:
    forwarding = OrderForwarding(Watch(), "run-1")
    forwarding.start()
    await asyncio.sleep(0)
    task = forwarding._task
    assert task is not None
    assert not task.done()  # the source is open: it would forward for ever
    await forwarding.aclose()
    assert task.cancelled()
