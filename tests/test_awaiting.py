"""``all_of``: every result in order, one failure raised, cancellation passed on to all."""

from __future__ import annotations

import asyncio

import pytest

from kalshi_router.awaiting import all_of


async def test_results_come_in_the_order_of_the_futures_not_of_settling() -> None:
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(3)]
    loop.call_soon(futures[2].set_result, "c")
    loop.call_soon(futures[0].set_result, "a")
    loop.call_soon(futures[1].set_result, "b")
    assert await all_of(futures) == ["a", "b", "c"]


async def test_the_first_failure_is_raised_and_the_others_are_retrieved() -> None:
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[str]] = [loop.create_future() for _ in range(3)]
    futures[0].set_result("a")
    futures[1].set_exception(RuntimeError("first"))
    futures[2].set_exception(RuntimeError("second"))
    with pytest.raises(RuntimeError, match="first"):
        await all_of(futures)
    # Retrieved: asyncio would otherwise log "exception was never retrieved" for the second.
    assert all(f._log_traceback is False for f in futures[1:])


async def test_cancelling_the_waiter_cancels_every_pending_future() -> None:
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[str]] = [loop.create_future() for _ in range(3)]
    futures[0].set_result("a")
    waiter = asyncio.ensure_future(all_of(futures))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert futures[0].result() == "a"
    assert all(f.cancelled() for f in futures[1:])
