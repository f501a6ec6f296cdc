"""The idle fast path: ``place()`` on an idle router sends in the caller's own turn, through the
same steps a link takes, and keeps every guarantee of the one dispatcher (the wire in the lanes'
order, cancels first, exactly one outcome). Virtual time; Basic tier where tokens matter (100
tokens/s, bucket 100, headroom 5: a create costs 10)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kalshi_router import router as router_module
from kalshi_router.accumulator import Accumulator
from kalshi_router.budget import WriteBudget
from kalshi_router.budget.opening import open_budget
from kalshi_router.config import RouterConfig
from kalshi_router.errors import RouterClosed, RouterCrashed
from kalshi_router.outcome import Accepted, Expired, Rejected, Unknown
from kalshi_router.router import OrderRouter
from tests.fakes import (
    TICKER,
    Call,
    ScriptedClient,
    Step,
    VirtualClock,
    accept,
    account_limits,
    delayed,
    explode,
    gated,
    http,
    kinds,
    make_router,
    order,
    orders,
    run_virtual,
    timeline,
)
from tests.fakes import clock_fixture as clock_fixture
from tests.test_dispatcher import FAILURES, LOOKUPS

BASIC = account_limits(100, 100)


def fast(router: OrderRouter) -> int:
    return router.stats().fast_path_sends


def at_once(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to its end without the loop: it must never give up its turn."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("it waited for another turn of the loop")


@pytest.fixture
def looks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times anything looked at the lanes (a link wakes up: it promotes retries)."""
    seen = [0]
    promote = Accumulator.promote

    def counting(self: Accumulator, now: float) -> None:
        seen[0] += 1
        promote(self, now)

    monkeypatch.setattr(Accumulator, "promote", counting)
    return seen


async def settle_down() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# Taken.


async def test_place_on_an_idle_router_is_sent_and_answered_in_the_callers_own_turn(
    clock: VirtualClock,
) -> None:
    client = ScriptedClient()
    async with make_router(client) as router:
        await settle_down()  # the first link is waiting for work
        outcome = at_once(router.place(order("a0")))
        assert isinstance(outcome, Accepted)
        assert outcome.order_id == client.exchange.orders["a0"].order_id
        stats = router.stats()
    assert timeline(client, clock) == [("create", ["a0"], 0.0)]
    assert stats.fast_path_sends == 1
    assert (stats.batches_sent, stats.items_sent, stats.tokens_spent) == (1, 1, 10)
    assert stats.outcomes == {"accepted": 1}


async def test_the_fast_path_wakes_no_link_for_the_work_it_takes(
    clock: VirtualClock, looks: list[int]
) -> None:
    client = ScriptedClient().then(delayed(0.01))
    async with make_router(client) as router:
        await settle_down()
        before = looks[0]
        await router.place(order("a0"))
        await settle_down()
        assert looks[0] == before
        assert fast(router) == 1


async def test_each_of_a_run_of_idle_places_takes_the_fast_path(clock: VirtualClock) -> None:
    client = ScriptedClient().then(*(delayed(0.01) for _ in range(5)))
    async with make_router(client) as router:
        await settle_down()
        for intent in orders("a", 5):
            assert isinstance(await router.place(intent), Accepted)
            await asyncio.sleep(0.02)
        assert fast(router) == 5
    assert client.sent() == [[f"a{i}"] for i in range(5)]


async def test_an_intent_refused_by_the_risk_gate_costs_no_tokens_on_the_fast_path(
    clock: VirtualClock,
) -> None:
    async with make_router(ScriptedClient()) as router:
        await settle_down()
        router.set_trading_state("reducing")  # creates that add exposure are refused
        outcome = await router.place(order("a0"))
        stats = router.stats()
    assert isinstance(outcome, Rejected)
    assert (stats.fast_path_sends, stats.tokens_spent, stats.batches_sent) == (0, 0, 0)


async def test_an_intent_past_its_deadline_on_the_fast_path_is_expired_and_never_sent(
    clock: VirtualClock,
) -> None:
    client = ScriptedClient()
    async with make_router(client) as router:
        await settle_down()
        outcome = await router.place(order("a0"), deadline_s=0.0)
        stats = router.stats()
    assert type(outcome).__name__ == "Expired"
    assert client.sent() == []
    assert (stats.fast_path_sends, stats.tokens_spent) == (0, 0)


async def test_a_fast_send_retried_and_waiting_for_tokens_expires_at_its_deadline(
    clock: VirtualClock,
) -> None:
    # At Basic a 429 leaves the bucket owing: the retry's 10 tokens take until 0.15 s.
    client = ScriptedClient(limits=BASIC).then(http(429))
    async with make_router(client) as router:
        await settle_down()
        expired = await router.place(order("a0"), deadline_s=0.1)
        assert clock.elapsed() == pytest.approx(0.1)
        assert fast(router) == 1
    assert isinstance(expired, Expired)
    assert client.sent() == [["a0"]]


# Not taken.


async def test_not_taken_behind_something_queued_which_goes_first_in_the_same_batch(
    clock: VirtualClock,
) -> None:
    client = ScriptedClient()
    async with make_router(client) as router:
        await settle_down()
        first = router.submit(order("a0"))
        placed = await router.place(order("a1"))
        assert isinstance(placed, Accepted)
        await first
        assert fast(router) == 0
    assert client.sent() == [["a0", "a1"]]


async def test_not_taken_while_every_slot_is_busy(clock: VirtualClock) -> None:
    gate = asyncio.Event()
    client = ScriptedClient().then(gated(gate))
    async with make_router(client, RouterConfig(max_in_flight=1)) as router:
        await settle_down()
        held = asyncio.ensure_future(router.place(order("a0")))  # fast: the one slot
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(router.place(order("a1")))
        await asyncio.sleep(0.01)
        assert client.sent() == [["a0"]]
        gate.set()
        await asyncio.gather(held, second)
        assert fast(router) == 1
    assert client.sent() == [["a0"], ["a1"]]


async def test_not_taken_when_the_bucket_cannot_pay_at_once(clock: VirtualClock) -> None:
    client = ScriptedClient(limits=BASIC)
    async with make_router(client) as router:
        await settle_down()
        for intent in orders("a", 10):
            await router.place(intent)
        assert fast(router) == 9  # 90 of the 95 tokens; the tenth waits for its own
    assert [at for _, _, at in timeline(client, clock)] == [0.0] * 9 + [0.05]


async def test_not_taken_with_a_linger(clock: VirtualClock) -> None:
    client = ScriptedClient()
    async with make_router(client, RouterConfig(linger_ms=2.0)) as router:
        await settle_down()
        await router.place(order("a0"))
        assert fast(router) == 0
    assert timeline(client, clock) == [("create", ["a0"], 0.002)]


async def test_not_taken_when_switched_off(clock: VirtualClock) -> None:
    client = ScriptedClient()
    async with make_router(client, RouterConfig(idle_fast_path=False)) as router:
        await settle_down()
        assert isinstance(await router.place(order("a0")), Accepted)
        assert fast(router) == 0
    assert timeline(client, clock) == [("create", ["a0"], 0.0)]


async def test_not_taken_when_halted(clock: VirtualClock) -> None:
    client = ScriptedClient()
    async with make_router(client) as router:
        await settle_down()
        router.set_trading_state("halted")
        outcome = await router.place(order("a0"))
        stats = router.stats()
    assert isinstance(outcome, Rejected)
    assert (stats.fast_path_sends, stats.tokens_spent) == (0, 0)
    assert client.sent() == []


async def test_not_taken_while_closing(clock: VirtualClock) -> None:
    gate = asyncio.Event()
    client = ScriptedClient().then(gated(gate))
    router = make_router(client)
    await router.start()
    held = router.submit(order("a0"))
    await asyncio.sleep(0.01)
    closing = asyncio.ensure_future(router.aclose())
    await asyncio.sleep(0.01)
    with pytest.raises(RouterClosed):
        await router.place(order("a1"))
    gate.set()
    await closing
    assert isinstance(held.result(), Accepted)
    assert fast(router) == 0


class _AsksFirst:
    """A write budget whose spends can only be awaited, as a shared one's must (it asks Redis)."""

    def __init__(self, inner: WriteBudget) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "take":
            raise AttributeError(name)
        return getattr(self._inner, name)


async def test_not_taken_on_a_budget_that_must_ask_before_it_spends(
    clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def asks_first(*args: Any) -> Any:
        return _AsksFirst(await open_budget(*args))

    monkeypatch.setattr(router_module, "open_budget", asks_first)
    client = ScriptedClient()
    async with make_router(client) as router:
        await settle_down()
        assert isinstance(await router.place(order("a0")), Accepted)
        assert fast(router) == 0


# The guarantees.


async def test_cancels_queued_with_a_place_still_go_first(clock: VirtualClock) -> None:
    client = ScriptedClient()
    async with make_router(client) as router:
        await settle_down()
        cancelled = router.cancel("ord-x", TICKER)
        placed = await router.place(order("a0"))
        assert kinds([cancelled]) == ["Cancelled"]
        assert isinstance(placed, Accepted)
        assert fast(router) == 0
    assert [(kind, keys) for kind, keys, _ in timeline(client, clock)] == [
        ("cancel", ["ord-x"]),
        ("create", ["a0"]),
    ]


async def test_a_cancel_after_a_fast_send_goes_out_while_it_is_in_flight(
    clock: VirtualClock,
) -> None:
    client = ScriptedClient().then(delayed(0.1))
    async with make_router(client) as router:
        await settle_down()
        placing = asyncio.ensure_future(router.place(order("a0")))
        await asyncio.sleep(0)
        cancelled = router.cancel("ord-x", TICKER)
        await asyncio.gather(placing, cancelled)
        assert fast(router) == 1
    assert timeline(client, clock) == [("create", ["a0"], 0.0), ("cancel", ["ord-x"], 0.0)]


async def test_concurrent_places_reach_the_wire_in_the_order_they_were_made(
    clock: VirtualClock,
) -> None:
    client = ScriptedClient()
    client.default = delayed(0.05)
    async with make_router(client, RouterConfig(max_in_flight=2)) as router:
        await settle_down()
        placing = [asyncio.ensure_future(router.place(intent)) for intent in orders("a", 12)]
        await asyncio.sleep(0)
        # Two found a slot free and nothing queued; the rest queued behind them, and these
        # cancels too, which overtake them.
        cancels = [router.cancel(f"ord-{i}", TICKER) for i in range(3)]
        await asyncio.gather(*placing, *cancels)
        assert fast(router) == 2
    assert timeline(client, clock) == [
        ("create", ["a0"], 0.0),
        ("create", ["a1"], 0.0),
        ("cancel", ["ord-0", "ord-1", "ord-2"], 0.05),
        ("create", [f"a{i}" for i in range(2, 12)], 0.05),
    ]


# The caller cancelled mid-send.


def _held(gate: asyncio.Event, *, landed: bool) -> Step:
    """The exchange holds the request open; ``landed``: it placed the orders first."""

    async def step(client: ScriptedClient, call: Call) -> Any:
        if landed:
            reply = await accept()(client, call)
            await gate.wait()
            return reply
        await gate.wait()
        return await accept()(client, call)

    return step


@pytest.mark.parametrize("landed", [True, False], ids=["landed", "lost"])
async def test_a_caller_cancelled_mid_send_gets_its_intent_reconciled_to_one_outcome(
    clock: VirtualClock, landed: bool
) -> None:
    client = ScriptedClient().then(_held(asyncio.Event(), landed=landed))
    async with make_router(client) as router:
        await settle_down()
        placing = asyncio.ensure_future(router.place(order("a0")))
        await asyncio.sleep(0.01)
        assert router.in_flight == 1
        placing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await placing
        assert router.in_flight == 0
        await asyncio.sleep(1.0)  # the lookup, and the resend if it did not land
        stats = router.stats()
    assert stats.fast_path_sends == 1
    assert stats.reconciliations == 1
    # Found: accepted. Absent: not resent for a caller who gave up, and unknown, since the
    # request may still be on its way (as for any future cancelled mid-send).
    assert stats.outcomes == ({"accepted": 1} if landed else {"unknown": 1})
    assert client.sent() == [["a0"]]
    assert client.exchange.arrivals == (["a0"] if landed else [])


# Our own bugs.


async def test_a_bug_in_a_fast_send_crashes_the_dispatcher_loudly(clock: VirtualClock) -> None:
    client = ScriptedClient().then(delayed(0.01, explode(RuntimeError("bug in a send"))))
    router = make_router(client, RouterConfig(max_in_flight=1))
    await router.start()
    await settle_down()
    placing = asyncio.ensure_future(router.place(order("a0")))
    await asyncio.sleep(0)
    queued = router.submit(order("a1"))
    with pytest.raises(RouterCrashed):
        await placing
    with pytest.raises(RouterCrashed):
        await queued
    assert isinstance(router.crashed, RuntimeError)
    with pytest.raises(RouterCrashed):
        await router.place(order("a2"))
    await router.aclose(drain_timeout=1.0)
    assert client.sent() == [["a0"]]


# Closing.


async def test_close_waits_for_a_fast_send_in_flight(clock: VirtualClock) -> None:
    client = ScriptedClient().then(delayed(0.5))
    router = make_router(client)
    await router.start()
    await settle_down()
    placing = asyncio.ensure_future(router.place(order("a0")))
    await asyncio.sleep(0.01)
    await router.aclose(drain_timeout=1.0)
    assert isinstance(placing.result(), Accepted)
    assert clock.elapsed() == pytest.approx(0.5)


async def test_a_fast_send_past_the_drain_timeout_is_unknown_once(clock: VirtualClock) -> None:
    client = ScriptedClient().then(delayed(0.5))
    router = make_router(client)
    await router.start()
    await settle_down()
    placing = asyncio.ensure_future(router.place(order("a0")))
    await asyncio.sleep(0.01)
    await router.aclose(drain_timeout=0.1)
    outcome = await placing
    assert isinstance(outcome, Unknown)
    await asyncio.sleep(1.0)  # the answer comes, and settles nothing again
    assert router.stats().outcomes == {"unknown": 1}


# Invariants under random traffic and failures, places and their callers giving up included.


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    calls=st.lists(
        st.tuples(st.sampled_from(["place", "place", "submit", "cancel"]), st.floats(0.0, 0.02)),
        min_size=1,
        max_size=30,
    ),
    script=st.lists(st.sampled_from(sorted(FAILURES)), max_size=12),
    lookups=st.lists(st.sampled_from(["truthful", "failing"]), max_size=6),
    given_up=st.lists(st.tuples(st.integers(0, 29), st.floats(0.0, 0.05)), max_size=6),
    max_in_flight=st.integers(1, 3),
    token_bound=st.booleans(),
    round_trip=st.sampled_from([0.0, 0.005]),
)
def test_every_intent_gets_exactly_one_truthful_outcome_with_places_among_them(
    calls: list[tuple[str, float]],
    script: list[str],
    lookups: list[str],
    given_up: list[tuple[int, float]],
    max_in_flight: int,
    token_bound: bool,
    round_trip: float,
) -> None:
    async def main(clock: VirtualClock) -> tuple[ScriptedClient, dict[str, asyncio.Future[Any]]]:
        client = ScriptedClient(limits=BASIC) if token_bound else ScriptedClient()
        client.then(*(delayed(round_trip, FAILURES[name]) for name in script))
        client.default = delayed(round_trip)
        client.lookups.extend(LOOKUPS[name] for name in lookups)
        waited: dict[str, asyncio.Future[Any]] = {}
        router = make_router(client, RouterConfig(max_in_flight=max_in_flight))
        async with router:
            await settle_down()
            for index, (call, pause) in enumerate(calls):
                await asyncio.sleep(pause)
                key = f"a{index}"
                if call == "cancel":
                    waited[key] = router.cancel(key, TICKER)
                elif call == "submit":
                    waited[key] = router.submit(order(key))
                else:
                    waited[key] = asyncio.ensure_future(router.place(order(key)))
            loop = asyncio.get_running_loop()
            futures = list(waited.values())
            for index, delay in given_up:
                if index < len(futures):
                    loop.call_later(delay, futures[index].cancel)
            await asyncio.wait(futures)
            stats = router.stats()
        event(f"fast path: {'some' if stats.fast_path_sends else 'none'}")
        assert sum(router.stats().outcomes.values()) == len(waited)
        return client, waited

    client, waited = run_virtual(main)
    held = client.exchange.orders
    arrivals = client.exchange.arrivals
    assert len(arrivals) == len(set(arrivals)), "an order that was there was sent again"
    for (call, _), (key, future) in zip(calls, waited.items(), strict=True):
        if future.cancelled():
            continue
        outcome = future.result()
        event(f"{call} {type(outcome).__name__}")
        if isinstance(outcome, Accepted):
            assert held[key].order_id == outcome.order_id
        elif call != "cancel" and not isinstance(outcome, Unknown):
            assert key not in held, f"{outcome} but the exchange holds it"


async def test_a_bug_in_a_fast_send_after_the_router_stopped_is_still_logged(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    client = ScriptedClient().then(delayed(0.5, explode(RuntimeError("bug in a late send"))))
    router = make_router(client)
    await router.start()
    await settle_down()
    placing = asyncio.ensure_future(router.place(order("a0")))
    await asyncio.sleep(0.01)
    await router.aclose(drain_timeout=0.1)
    assert isinstance(await placing, Unknown)  # given at close; the bug came after
    assert "bug in a late send" in caplog.text


async def test_a_bug_in_a_fast_send_before_the_dispatcher_ran_crashes_it_all_the_same(
    clock: VirtualClock,
) -> None:
    client = ScriptedClient().then(explode(RuntimeError("bug in the first send")))
    router = make_router(client)
    await router.start()  # the dispatcher's task is made, and has not run yet
    with pytest.raises(RouterCrashed):
        await router.place(order("a0"))
    assert isinstance(router.crashed, RuntimeError)
    await router.aclose(drain_timeout=1.0)
