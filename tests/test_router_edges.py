"""``OrderRouter`` at its edges: what needs a started router says so before start, a second
start changes nothing, and a crash with a caller-cancelled intent in flight still fails every
other pending intent."""

from __future__ import annotations

import asyncio

import pytest

from kalshi_router.config import RouterConfig
from kalshi_router.errors import RouterClosed, RouterCrashed
from tests.fakes import (
    ScriptedClient,
    VirtualClock,
    explode,
    gated,
    make_router,
    order,
)
from tests.fakes import clock_fixture as clock_fixture

NOT_STARTED = "not started: use 'async with' or await start()"


async def test_what_needs_a_started_router_says_how_to_start_it(clock: VirtualClock) -> None:
    router = make_router(ScriptedClient())
    with pytest.raises(RouterClosed, match=NOT_STARTED):
        _ = router.budget
    with pytest.raises(RouterClosed, match=NOT_STARTED):
        _ = router.batch_limits
    with pytest.raises(RouterClosed, match=NOT_STARTED):
        await router.flush()
    assert router.in_flight == 0
    assert router.stats().tokens_spent == 0


async def test_a_second_start_neither_asks_again_nor_starts_a_second_dispatcher(
    clock: VirtualClock,
) -> None:
    client = ScriptedClient()
    async with make_router(client) as router:
        budget = router.budget
        client.limits = AssertionError("the limits were read again")
        await router.start()
        assert router.budget is budget
        await router.place(order("a0"))
    assert client.sent() == [["a0"]]


async def test_a_crash_with_a_cancelled_intent_in_flight_fails_every_other_one(
    clock: VirtualClock,
) -> None:
    gate = asyncio.Event()
    client = ScriptedClient().then(gated(gate, explode(AssertionError("bug"))))
    router = make_router(client, RouterConfig(max_in_flight=1))
    await router.start()
    in_flight = router.submit(order("a0"))
    await asyncio.sleep(0.001)
    queued = router.submit(order("a1"))
    in_flight.cancel()  # sent already: left to its answer, which is the crash
    gate.set()
    with pytest.raises(RouterCrashed, match="AssertionError"):
        await asyncio.wait_for(queued, 1.0)  # virtual: fails at once if it is never settled
    assert in_flight.cancelled()
    assert router.crashed is not None
    assert client.sent() == [["a0"]]
    await router.aclose()
