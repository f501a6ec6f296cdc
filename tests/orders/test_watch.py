"""The bot's side: updates pushed in (by the tracker, or forwarded by the service), read as
handles, streams, open orders and positions; duplicates and replays never counted twice."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.errors import RouterClosed, ServiceError, UpdatesOverflow
from kalshi_router.orders.ledger import Ledger
from kalshi_router.orders.state import State
from kalshi_router.orders.updates import FillEvent, OrderHandle, Orders, OrderUpdate, Position
from kalshi_router.orders.watch import Watch
from tests.orders.frames import CLIENT_ID, ORDER_ID, TICKER, D, fill, rest, user_order


class Exchange:
    """A ledger whose updates are pushed into a watch, as the embedded tracker does."""

    def __init__(self, watch: Watch) -> None:
        self.ledger = Ledger()
        self.watch = watch
        self.pushed: list[OrderUpdate] = []

    def push(self, updates: list[OrderUpdate]) -> list[OrderUpdate]:
        for update in updates:
            self.watch.push(update)
        self.pushed += updates
        return updates

    def expect(self, order_id: str = ORDER_ID, client_order_id: str = CLIENT_ID) -> OrderUpdate:
        return self.push(
            self.ledger.expect(
                order_id=order_id,
                client_order_id=client_order_id,
                ticker=TICKER,
                book_side="bid",
                yes_price=D("0.35"),
                initial=D(10),
                filled=D(0),
                remaining=D(10),
            )
        )[0]


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def exchange(watch: Watch) -> Exchange:
    return Exchange(watch)


def test_it_is_what_a_bot_reads(watch: Watch, exchange: Exchange) -> None:
    orders: Orders = watch
    exchange.expect()
    handle: OrderHandle = orders.handle(CLIENT_ID)
    assert handle.latest.state == "accepted"


def test_the_latest_update_by_either_key(watch: Watch, exchange: Exchange) -> None:
    exchange.expect()
    resting = exchange.push(exchange.ledger.on_user_order(user_order("resting")))[0]
    assert watch.get(ORDER_ID) == watch.get(CLIENT_ID) == resting
    assert watch.handle(ORDER_ID).latest == watch.handle(CLIENT_ID).latest == resting
    assert watch.get("nope") is None
    with pytest.raises(KeyError):
        watch.handle("nope")


def test_open_orders_by_ticker(watch: Watch, exchange: Exchange) -> None:
    exchange.expect()
    ledger = exchange.ledger
    exchange.push(
        ledger.on_user_order(user_order("resting", order_id="o-2", client_order_id="2", ticker="B"))
    )
    exchange.push(
        ledger.on_user_order(user_order("canceled", "0", "0", order_id="o-3", client_order_id="3"))
    )
    assert [u.order_id for u in watch.open_orders()] == [ORDER_ID, "o-2"]
    assert [u.order_id for u in watch.open_orders("B")] == ["o-2"]


def test_an_update_without_an_order_id_is_kept_by_client_order_id(watch: Watch) -> None:
    closed = OrderUpdate(
        order_id=None,
        client_order_id="c-9",
        ticker=TICKER,
        state="reconciled_absent",
        source="rest",
    )
    watch.push(closed)
    assert watch.get("c-9") == closed
    watch.push(
        OrderUpdate(order_id=None, client_order_id=None, ticker=None, state="resting", source="ws")
    )
    assert watch.open_orders() == []


# --- final() ---


async def test_final_at_once_when_final(watch: Watch, exchange: Exchange) -> None:
    exchange.expect()
    done = exchange.push(exchange.ledger.on_user_order(user_order("executed", "10", "0")))[0]
    assert await watch.handle(CLIENT_ID).final() == done


async def test_final_waits_for_the_final_update(watch: Watch, exchange: Exchange) -> None:
    exchange.expect()
    waiting = asyncio.create_task(watch.handle(CLIENT_ID).final())
    await asyncio.sleep(0)
    exchange.push(exchange.ledger.on_user_order(user_order("resting", "4", "6")))
    await asyncio.sleep(0)
    assert not waiting.done()
    done = exchange.push(exchange.ledger.on_user_order(user_order("canceled", "4", "0")))[0]
    assert await waiting == done
    assert done.state == "cancelled"


async def test_a_cancelled_wait_leaves_nothing_behind(watch: Watch, exchange: Exchange) -> None:
    exchange.expect()
    waiting = asyncio.create_task(watch.handle(CLIENT_ID).final())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    exchange.push(exchange.ledger.on_user_order(user_order("executed", "10", "0")))
    watch.close()


async def test_a_correction_after_final_is_the_latest(watch: Watch, exchange: Exchange) -> None:
    exchange.expect()
    filled = exchange.push(exchange.ledger.on_user_order(user_order("executed", "10", "0")))[0]
    handle = watch.handle(CLIENT_ID)
    assert await handle.final() == filled
    corrected = exchange.push(exchange.ledger.on_rest_order(rest("canceled", "6", "0")))[0]
    assert handle.latest == corrected
    assert corrected.state == "cancelled"
    assert await handle.final() == corrected


# --- streams ---


async def collect(stream: AsyncIterator[OrderUpdate]) -> list[OrderUpdate]:
    return [update async for update in stream]


async def test_an_orders_stream_ends_after_its_final_update(
    watch: Watch, exchange: Exchange
) -> None:
    exchange.expect()
    reading = asyncio.create_task(collect(watch.handle(CLIENT_ID).updates()))
    everything = watch.updates()
    ledger = exchange.ledger
    exchange.push(ledger.on_user_order(user_order("resting")))
    exchange.push(ledger.on_fill(fill("t1", "10")))
    exchange.push(ledger.on_user_order(user_order("executed", "10", "0")))
    exchange.expect("o-2", "c-2")
    got = await reading
    assert [u.state for u in got] == ["resting", "filled"]
    assert got[-1].fill is not None
    # The stream of every update goes on.
    assert [(await anext(everything)).state for _ in range(3)] == ["resting", "filled", "accepted"]
    # A final order's stream ends at once.
    assert await collect(watch.handle(CLIENT_ID).updates()) == []


async def test_a_slow_reader_overflows_without_slowing_the_writer(exchange: Exchange) -> None:
    watch = Watch(stream_bound=2)
    exchange.watch = watch
    slow = watch.updates()
    exchange.expect()
    for n in range(1, 6):
        exchange.push(exchange.ledger.on_fill(fill(f"t{n}", "1")))
    assert watch.get(ORDER_ID).filled == D(5)  # type: ignore[union-attr]
    assert (await anext(slow)).state == "accepted"
    assert (await anext(slow)).filled == D(1)
    with pytest.raises(UpdatesOverflow, match="fell 2 updates behind"):
        await anext(slow)
    assert watch.readers == 0


def test_an_abandoned_stream_goes_away(watch: Watch, exchange: Exchange) -> None:
    exchange.expect()
    kept = watch.updates()
    dropped = watch.handle(CLIENT_ID).updates()
    assert watch.readers == 2
    del dropped
    gc.collect()
    assert watch.readers == 1
    assert not kept.ended


# --- close ---


async def test_close_ends_streams_and_fails_waits(watch: Watch, exchange: Exchange) -> None:
    exchange.expect()
    waiting = asyncio.create_task(watch.handle(CLIENT_ID).final())
    reading = asyncio.create_task(collect(watch.handle(CLIENT_ID).updates()))
    everything = asyncio.create_task(collect(watch.updates()))
    await asyncio.sleep(0)
    resting = exchange.push(exchange.ledger.on_user_order(user_order("resting")))[0]
    watch.close("the router closed")
    with pytest.raises(RouterClosed, match="order 'c-1' was resting, not final, when the router"):
        await waiting
    assert await reading == await everything == [resting]
    # Afterwards: pushes are ignored, waits fail at once, streams end at once.
    exchange.push(exchange.ledger.on_user_order(user_order("executed", "10", "0")))
    assert watch.get(CLIENT_ID) == resting
    with pytest.raises(RouterClosed):
        await watch.handle(CLIENT_ID).final()
    assert await collect(watch.updates()) == []
    assert await collect(watch.handle(CLIENT_ID).updates()) == []
    assert watch.closed


async def test_close_with_the_clients_error(watch: Watch, exchange: Exchange) -> None:
    exchange.expect()
    waits = [asyncio.create_task(watch.handle(CLIENT_ID).final()) for _ in range(2)]
    await asyncio.sleep(0)
    watch.close("the connection to the service was lost", ServiceError)
    watch.close()  # the first close stands
    errors = await asyncio.gather(*waits, return_exceptions=True)
    assert all(isinstance(e, ServiceError) and "service was lost" in str(e) for e in errors)
    assert errors[0] is not errors[1]


# --- duplicates and replays ---


def test_a_repeated_or_older_update_is_dropped(watch: Watch, exchange: Exchange) -> None:
    exchange.expect()
    ledger = exchange.ledger
    resting = exchange.push(ledger.on_user_order(user_order("resting")))[0]
    partly = exchange.push(ledger.on_user_order(user_order("resting", "4", "6")))[0]
    everything = watch.updates()
    for update in exchange.pushed:  # a resumed connection replays them all
        watch.push(update)
    assert watch.get(CLIENT_ID) == partly
    assert len(everything) == 0
    assert watch.open_orders() == [partly]
    assert resting in exchange.pushed


def test_a_replayed_fill_counts_once_even_after_newer_updates(
    watch: Watch, exchange: Exchange
) -> None:
    exchange.expect()
    ledger = exchange.ledger
    first = exchange.push(ledger.on_fill(fill("t1", "3")))[0]
    exchange.push(ledger.on_user_order(user_order("executed", "10", "0")))
    watch.push(first)
    assert watch.positions()[TICKER].position == D(3)
    assert watch.get(CLIENT_ID).state == "filled"  # type: ignore[union-attr]


def test_an_older_update_with_a_new_fill_counts_the_fill_only(watch: Watch) -> None:
    newer = OrderUpdate(
        order_id="o", client_order_id="c", ticker=TICKER, state="filled", source="ws", filled=D(5)
    )
    older = msgspec.structs.replace(
        newer, state="partially_filled", filled=D(2), fill=fill("t1", "2", order_id="o")
    )
    watch.push(newer)
    watch.push(older)
    assert watch.get("o") == newer
    assert watch.positions()[TICKER].position == D(2)


# --- positions ---


def test_positions_from_fills(watch: Watch, exchange: Exchange) -> None:
    ledger = exchange.ledger
    exchange.push(ledger.on_fill(fill("t1", "3", "0.40", "0.01")))
    exchange.push(ledger.on_fill(fill("t2", "1", "0.50", "0.02", order_id="o-2", side="ask")))
    exchange.push(ledger.on_fill(fill("t3", "2", "0.10", "0", order_id="o-3", ticker="B")))
    positions = watch.positions()
    assert positions == {
        TICKER: Position(ticker=TICKER, position=D(2), cost=D("0.70"), fees=D("0.03"), volume=D(4)),
        "B": Position(ticker="B", position=D(2), cost=D("0.20"), fees=D(0), volume=D(2)),
    }
    positions[TICKER] = Position(ticker=TICKER)  # type: ignore[index]
    assert watch.positions()[TICKER].position == D(2)


@st.composite
def fills_pushed(draw: st.DrawFn) -> tuple[list[FillEvent], list[OrderUpdate]]:
    """Distinct fills over a few orders and tickers, pushed as updates in any order, some twice
    or more."""
    fills = []
    for number in range(draw(st.integers(0, 12))):
        order = draw(st.integers(0, 3))
        fills.append(
            fill(
                f"t{number}",
                str(draw(st.integers(1, 50))),
                str(D(draw(st.integers(1, 99))) / 100),
                str(D(draw(st.integers(0, 9))) / 100),
                order_id=f"o-{order}",
                client_order_id=f"c-{order}",
                ticker=f"T{order % 2}",
                side=draw(st.sampled_from(["bid", "ask"])),
            )
        )
    states: st.SearchStrategy[State] = st.sampled_from(
        ["accepted", "resting", "partially_filled", "filled", "cancelled"]
    )
    updates = [
        OrderUpdate(
            order_id=item.order_id,
            client_order_id=item.client_order_id,
            ticker=item.ticker,
            state=draw(states),
            source=draw(st.sampled_from(["ws", "rest"])),
            filled=D(draw(st.integers(0, 100))),
            fill=item,
        )
        for item in fills
    ]
    again = draw(st.lists(st.sampled_from(updates), max_size=10)) if updates else []
    return fills, draw(st.permutations(updates + again))


@given(fills_pushed())
def test_positions_are_the_sum_of_distinct_fills(
    history: tuple[list[FillEvent], list[OrderUpdate]],
) -> None:
    fills, updates = history
    watch = Watch()
    for update in updates:
        watch.push(update)
    expected: dict[str, Position] = {}
    for item in fills:
        sign = 1 if item.book_side == "bid" else -1
        was = expected.get(item.ticker, Position(ticker=item.ticker))
        expected[item.ticker] = Position(
            ticker=item.ticker,
            position=was.position + sign * item.count,
            cost=was.cost + sign * item.count * item.yes_price,
            fees=was.fees + item.fee,
            volume=was.volume + item.count,
        )
    assert watch.positions() == expected
    assert sum((p.volume for p in watch.positions().values()), Decimal(0)) == sum(
        (item.count for item in fills), Decimal(0)
    )


# --- memory ---


def test_final_orders_beyond_the_bound_are_forgotten(exchange: Exchange) -> None:
    watch = Watch(keep_final=1)
    exchange.watch = watch
    ledger = exchange.ledger
    first = exchange.push(ledger.on_fill(fill("t1", "10", order_id="o-1", client_order_id="c-1")))
    exchange.push(ledger.on_fill(fill("t2", "10", order_id="o-2", client_order_id="c-2")))
    exchange.push(ledger.on_user_order(user_order("executed", "10", "0", order_id="o-1")))
    exchange.push(ledger.on_user_order(user_order("executed", "10", "0", order_id="o-2")))
    assert (watch.get("o-1"), watch.get("c-1")) == (None, None)
    with pytest.raises(KeyError):
        watch.handle("c-1")
    assert watch.get("c-2") is not None
    # A replay of the forgotten order's fill is not counted again.
    watch.push(first[0])
    assert watch.positions()[TICKER].position == D(20)


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="stream_bound"):
        Watch(stream_bound=0)
