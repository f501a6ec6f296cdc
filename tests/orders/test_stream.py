"""One reader's bounded stream of updates: order kept, never blocking the writer, ending
cleanly or with the overflow error after what it kept."""

from __future__ import annotations

import asyncio

import pytest

from kalshi_router.errors import UpdatesOverflow
from kalshi_router.orders.stream import UpdateStream
from kalshi_router.orders.updates import OrderUpdate


def update(n: int) -> OrderUpdate:
    return OrderUpdate(
        order_id=f"o-{n}", client_order_id=None, ticker="T", state="resting", source="ws"
    )


async def read_all(stream: UpdateStream) -> list[str | None]:
    return [item.order_id async for item in stream]


async def test_updates_come_in_order_and_end_when_finished() -> None:
    stream = UpdateStream("test")
    for n in range(3):
        stream.offer(update(n))
    stream.finish()
    stream.offer(update(9))
    assert await read_all(stream) == ["o-0", "o-1", "o-2"]
    assert stream.ended


async def test_a_waiting_reader_wakes_for_each_offer() -> None:
    stream = UpdateStream("test")
    reader = asyncio.create_task(read_all(stream))
    for n in range(2):
        await asyncio.sleep(0)
        stream.offer(update(n))
    await asyncio.sleep(0)
    stream.finish()
    assert await reader == ["o-0", "o-1"]


async def test_a_reader_too_far_behind_reads_what_was_kept_then_the_error() -> None:
    stream = UpdateStream("order updates", bound=2)
    for n in range(5):
        stream.offer(update(n))
    assert (len(stream), stream.ended) == (2, True)
    got = [(await anext(stream)).order_id, (await anext(stream)).order_id]
    assert got == ["o-0", "o-1"]
    with pytest.raises(UpdatesOverflow, match="order updates: the reader fell 2 updates behind"):
        await anext(stream)
    # The error is given once; the stream then just ends.
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_finish_with_an_error() -> None:
    stream = UpdateStream("test")
    stream.offer(update(0))
    stream.finish(RuntimeError("gone"))
    stream.finish()  # the first end stays
    assert (await anext(stream)).order_id == "o-0"
    with pytest.raises(RuntimeError, match="gone"):
        await anext(stream)


async def test_aclose_drops_what_was_kept() -> None:
    stream = UpdateStream("test")
    stream.offer(update(0))
    await stream.aclose()
    assert await read_all(stream) == []


def test_the_bound_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="bound"):
        UpdateStream("test", bound=0)
