"""The send pipeline on a scripted exchange in virtual time: batching, priority, linger,
deadlines, the three failure classes, reconciliation and crashes.

Times in the timelines are virtual seconds since the test started, so they are exact: Basic tier
(100 tokens/s, bucket 100, headroom 5) refills a 10-token create in 0.1 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kalshi_router.config import RouterConfig
from kalshi_router.errors import RouterCrashed
from kalshi_router.intent import AmendIntent, DecreaseIntent
from kalshi_router.outcome import (
    Accepted,
    Amended,
    Cancelled,
    Closed,
    Expired,
    Rejected,
    Unknown,
)
from kalshi_router.router import OrderRouter
from kalshi_router.wire.models import Order
from tests.fakes import (
    TICKER,
    CallKind,
    Lookup,
    ScriptedClient,
    Step,
    VirtualClock,
    accept,
    account_limits,
    delayed,
    explode,
    failing,
    gated,
    http,
    kinds,
    lost,
    make_router,
    order,
    orders,
    run_virtual,
    timeline,
    truthful,
    unreadable,
)
from tests.fakes import clock_fixture as clock_fixture

BASIC = account_limits(100, 100)


def basic() -> ScriptedClient:
    return ScriptedClient(limits=BASIC)


def submit_all(router: OrderRouter, prefix: str, n: int) -> list[asyncio.Future[Any]]:
    return [router.submit(intent) for intent in orders(prefix, n)]


def sizes(client: ScriptedClient, clock: VirtualClock) -> list[tuple[str, int, float]]:
    return [(kind, len(keys), at) for kind, keys, at in timeline(client, clock)]


async def outcomes(futures: Sequence[asyncio.Future[Any]]) -> list[str]:
    await asyncio.gather(*futures)
    return kinds(futures)


# Batching.


async def test_an_idle_router_sends_a_lone_intent_at_once_as_a_batch_of_one(
    clock: VirtualClock,
) -> None:
    client = ScriptedClient()
    async with make_router(client) as router:
        outcome = await router.place(order("a0"))
    assert outcome == Accepted(
        client_order_id="a0",
        order_id=client.exchange.orders["a0"].order_id,
        fill_count=Decimal(0),
        remaining_count=Decimal(1),
    )
    assert timeline(client, clock) == [("create", ["a0"], 0.0)]


@pytest.mark.parametrize(
    ("client", "n", "expected"),
    [
        pytest.param(
            ScriptedClient(),
            45,
            [("create", 20, 0.0), ("create", 20, 0.0), ("create", 5, 0.0)],
            id="premier-slots-bound",
        ),
        # 90 tokens at once, then each batch waits for its own tokens: 0.85 s for 90, 0.2 for 20.
        pytest.param(
            basic(),
            20,
            [("create", 9, 0.0), ("create", 9, 0.85), ("create", 2, 1.05)],
            id="basic-token-bound",
        ),
    ],
)
async def test_a_burst_fills_batches_up_to_the_limit(
    clock: VirtualClock, client: ScriptedClient, n: int, expected: list[tuple[str, int, float]]
) -> None:
    async with make_router(client) as router:
        futures = submit_all(router, "a", n)
        assert set(await outcomes(futures)) == {"Accepted"}
    assert sizes(client, clock) == expected
    assert [key for keys in client.sent() for key in keys] == [f"a{i}" for i in range(n)]


@pytest.mark.parametrize("slots", [1, 3])
async def test_no_more_requests_are_in_flight_than_there_are_slots(
    clock: VirtualClock, slots: int
) -> None:
    client = ScriptedClient()
    client.default = delayed(0.1)
    config = RouterConfig(max_in_flight=slots, max_batch_size=5)
    async with make_router(client, config) as router:
        await outcomes(submit_all(router, "a", 30))
    assert client.max_active == slots
    # Six batches of five, `slots` at a time, one round trip apart.
    assert sizes(client, clock) == [("create", 5, round(0.1 * (i // slots), 6)) for i in range(6)]


async def test_intents_that_arrive_while_the_dispatcher_waits_for_a_slot_join_its_batch(
    clock: VirtualClock,
) -> None:
    gate = asyncio.Event()
    client = ScriptedClient().then(gated(gate))
    async with make_router(client, RouterConfig(max_in_flight=1)) as router:
        first = router.submit(order("a0"))
        await asyncio.sleep(0.01)
        later = submit_all(router, "b", 5)
        await asyncio.sleep(0.01)
        later += submit_all(router, "c", 3)
        await asyncio.sleep(0.01)
        gate.set()
        await outcomes([first, *later])
    assert client.sent() == [["a0"], [*(f"b{i}" for i in range(5)), "c0", "c1", "c2"]]


async def test_a_token_wait_is_sized_when_it_starts_so_it_never_grows_into_a_linger(
    clock: VirtualClock,
) -> None:
    client = basic()
    async with make_router(client) as router:
        futures = submit_all(router, "a", 9)
        for burst in range(3):
            await asyncio.sleep(0.25)
            futures += submit_all(router, f"b{burst}-", 5)
        await outcomes(futures)
    # b0 waits 0.2 s for its 50 tokens; b1 waits for its own 50 (until 0.95), and b2, arriving
    # during that wait, is not added to it: that would hold b1 back for b2's tokens too.
    assert sizes(client, clock) == [
        ("create", 9, 0.0),
        ("create", 5, 0.45),
        ("create", 5, 0.95),
        ("create", 5, 1.45),
    ]


# Priority and order.


async def test_cancels_overtake_creates_that_queued_before_them(clock: VirtualClock) -> None:
    gate = asyncio.Event()
    client = ScriptedClient().then(gated(gate))
    async with make_router(client, RouterConfig(max_in_flight=1)) as router:
        futures: list[asyncio.Future[Any]] = [router.submit(order("a0"))]
        await asyncio.sleep(0.01)
        futures += submit_all(router, "b", 2)
        await asyncio.sleep(0.01)  # the dispatcher now waits for the one in-flight slot
        futures.append(router.cancel("ord-x", TICKER))
        await asyncio.sleep(0.01)
        gate.set()
        assert await outcomes(futures) == ["Accepted"] * 3 + ["Cancelled"]
    assert client.sent() == [["a0"], ["ord-x"], ["b0", "b1"]]


async def test_a_create_batch_waiting_for_tokens_gives_way_to_a_cancel(
    clock: VirtualClock,
) -> None:
    client = basic()
    async with make_router(client) as router:
        futures = submit_all(router, "a", 18)
        await clock.sleep_until(0.1)
        futures.append(router.cancel("ord-x", TICKER))
        await outcomes(futures)
    # The cancel goes the moment it arrives; the creates then wait 0.77 s more for 90 tokens.
    assert sizes(client, clock) == [("create", 9, 0.0), ("cancel", 1, 0.1), ("create", 9, 0.87)]


async def test_a_cancel_retry_coming_due_overtakes_a_create_batch_waiting_for_tokens(
    clock: VirtualClock,
) -> None:
    client = basic().then(http(503))
    async with make_router(client) as router:
        futures: list[asyncio.Future[Any]] = [router.cancel("ord-x", TICKER)]
        futures += submit_all(router, "a", 18)
        assert await outcomes(futures) == ["Cancelled"] + ["Accepted"] * 18
    sent = sizes(client, clock)
    assert [(kind, size) for kind, size, _ in sent] == [
        ("cancel", 1),
        ("create", 9),
        ("cancel", 1),
        ("create", 9),
    ]
    retried_at = sent[2][2]
    assert 0 < retried_at <= RouterConfig().backoff_base_s


@pytest.mark.parametrize("kind", ["create", "cancel"])
async def test_each_lane_is_first_in_first_out(clock: VirtualClock, kind: str) -> None:
    client = ScriptedClient()
    names = [f"k{(i * 37) % 101}" for i in range(60)]  # not in sorted order
    async with make_router(client, RouterConfig(max_in_flight=2)) as router:
        futures: list[asyncio.Future[Any]] = []
        for index, name in enumerate(names):
            if index % 25 == 0:
                await asyncio.sleep(0.001)
            futures.append(
                router.submit(order(name)) if kind == "create" else router.cancel(name, TICKER)
            )
        await outcomes(futures)
    assert [key for keys in client.sent() for key in keys] == names


# Linger.

Schedule = list[tuple[float, str]]


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        pytest.param(
            [(0.0, "c:a0"), (0.01, "c19:b")],
            [("create", 20, 0.01)],
            id="fills-the-batch",
        ),
        pytest.param([(0.0, "c3:a")], [("create", 3, 0.05)], id="times-out"),
        pytest.param(
            [(0.0, "c:a0"), (0.04, "c:a1"), (0.07, "c:a2")],
            [("create", 2, 0.05), ("create", 1, 0.12)],
            id="measured-from-the-oldest",
        ),
        pytest.param(
            [(0.0, "c:a0"), (0.02, "x:ord-x")],
            [("cancel", 1, 0.02), ("create", 1, 0.05)],
            id="cancels-never-linger",
        ),
        pytest.param(
            [(0.0, "x:ord-x"), (0.01, "c:a0")],
            [("cancel", 1, 0.0), ("create", 1, 0.06)],
            id="still-lingers-after-a-cancel",
        ),
        pytest.param(
            [(0.0, "c:a0"), (0.0, "flush"), (0.1, "c:a1")],
            [("create", 1, 0.0), ("create", 1, 0.15)],
            id="flush-skips-it-once",
        ),
    ],
)
async def test_linger_is_a_deadline_for_filling_a_batch(
    clock: VirtualClock, schedule: Schedule, expected: list[tuple[str, int, float]]
) -> None:
    client = ScriptedClient()
    futures: list[asyncio.Future[Any]] = []
    flushes: list[asyncio.Task[None]] = []
    async with make_router(client, RouterConfig(linger_ms=50)) as router:
        for at, what in schedule:
            await clock.sleep_until(at)
            head, _, name = what.partition(":")
            if what == "flush":
                flushes.append(asyncio.ensure_future(router.flush()))
            elif head == "x":
                futures.append(router.cancel(name, TICKER))
            elif head == "c":
                futures.append(router.submit(order(name)))
            else:
                futures += submit_all(router, name, int(head[1:]))
        await outcomes(futures)
        await asyncio.gather(*flushes)
    assert sizes(client, clock) == expected


# Deadlines.


async def test_an_intent_past_its_deadline_is_expired_at_once_and_never_sent(
    clock: VirtualClock,
) -> None:
    client = basic()
    async with make_router(client) as router:
        futures = submit_all(router, "a", 9)
        late = router.submit(order("late"), deadline_s=0.01)
        stale_cancel = router.cancel("ord-x", TICKER, deadline_s=0.0)
        fresh = router.submit(order("fresh"))
        await late
        # Settled at its deadline, not 0.15 s later when the batch it waited for is cut.
        assert clock.elapsed() == pytest.approx(0.01)
        assert await outcomes([*futures, late, stale_cancel, fresh]) == [
            *(["Accepted"] * 9),
            "Expired",
            "Expired",
            "Accepted",
        ]
        stats = router.stats()
    assert late.result() == Expired(reason="deadline passed before sending", client_order_id="late")
    assert stale_cancel.result() == Expired(
        reason="deadline passed before sending", order_id="ord-x"
    )
    # The second batch waited for 20 tokens (late and fresh); once late expired, it waits for
    # fresh's 10 only.
    assert timeline(client, clock) == [
        ("create", [f"a{i}" for i in range(9)], 0.0),
        ("create", ["fresh"], 0.05),
    ]
    assert stats.tokens_spent == 100
    assert stats.outcomes == {"accepted": 10, "expired": 2}
    assert stats.queue_depth == 0


async def test_a_retry_waiting_for_tokens_expires_at_its_deadline(clock: VirtualClock) -> None:
    # At Basic a 429 leaves the bucket owing: the retry's 10 tokens take until 0.15 s.
    client = basic().then(http(429))
    async with make_router(client) as router:
        expired = await router.submit(order("a0"), deadline_s=0.1)
        assert clock.elapsed() == pytest.approx(0.1)
    assert isinstance(expired, Expired)
    assert "deadline passed" in expired.reason
    assert client.sent() == [["a0"]]


# Definitive answers.


@pytest.mark.parametrize(
    ("kind", "reject", "rejected"),
    [
        pytest.param(
            "create",
            {"a1": "insufficient_balance"},
            Rejected(
                code="insufficient_balance",
                message="insufficient_balance (scripted)",
                http_status=201,
                client_order_id="a1",
            ),
            id="create",
        ),
        pytest.param(
            "cancel",
            {"a1": "not_found"},
            Rejected(
                code="not_found",
                message="not_found (scripted)",
                http_status=200,
                order_id="a1",
            ),
            id="cancel",
        ),
    ],
)
async def test_a_per_item_error_rejects_that_intent_only(
    clock: VirtualClock, kind: str, reject: dict[str, str], rejected: Rejected
) -> None:
    client = ScriptedClient().then(accept(reject=reject))
    async with make_router(client) as router:
        names = ["a0", "a1", "a2"]
        futures = [
            router.submit(order(n)) if kind == "create" else router.cancel(n, TICKER) for n in names
        ]
        ok = "Accepted" if kind == "create" else "Cancelled"
        assert await outcomes(futures) == [ok, "Rejected", ok]
        assert router.stats().rejected_codes == {rejected.code: 1}
    assert futures[1].result() == rejected
    assert len(client.calls) == 1


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param(400, "invalid_parameters", id="400"),
        pytest.param(401, "authentication_error", id="401"),
        pytest.param(403, "http_403", id="403-no-body"),
        pytest.param(410, "http_410", id="410"),
    ],
)
async def test_a_whole_batch_4xx_rejects_every_intent_and_is_never_retried(
    clock: VirtualClock, status: int, code: str
) -> None:
    client = ScriptedClient().then(http(status))
    async with make_router(client) as router:
        futures = submit_all(router, "a", 3)
        assert await outcomes(futures) == ["Rejected"] * 3
        stats = router.stats()
    for index, future in enumerate(futures):
        rejected = future.result()
        assert isinstance(rejected, Rejected)
        assert (rejected.code, rejected.http_status) == (code, status)
        assert rejected.client_order_id == f"a{index}"
    assert len(client.calls) == 1
    assert (stats.retries, stats.reconciliations) == (0, 0)


# Not executed: retried with the same ids.


async def test_a_429_is_retried_with_the_same_ids_once_our_bucket_has_drained(
    clock: VirtualClock,
) -> None:
    client = ScriptedClient().then(http(429))
    async with make_router(client) as router:
        futures = submit_all(router, "a", 3)
        assert await outcomes(futures) == ["Accepted"] * 3
        stats = router.stats()
    # Premier: 1000 tokens/s, local bucket 1950 of 2000. The 429 empties it and owes the 50 of
    # headroom, so the 30-token retry waits 80 tokens (0.08 s), longer than its backoff.
    keys = ["a0", "a1", "a2"]
    assert timeline(client, clock) == [("create", keys, 0.0), ("create", keys, 0.08)]
    assert (stats.http_429, stats.retries, stats.tokens_spent) == (1, 3, 60)


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(http(503), id="503"),
        pytest.param(http(408), id="408"),
        pytest.param(lost(sent=False), id="connection-refused"),
    ],
)
@pytest.mark.parametrize("kind", ["create", "cancel", "single"])
async def test_a_request_that_was_not_executed_is_retried_with_the_same_ids(
    clock: VirtualClock, step: Step, kind: str
) -> None:
    client = ScriptedClient().then(step)
    async with make_router(client) as router:
        if kind == "create":
            future: asyncio.Future[Any] = router.submit(order("a0"))
        elif kind == "cancel":
            future = router.cancel("a0", TICKER)
        else:
            future = router.decrease(
                DecreaseIntent(order_id="a0", ticker=TICKER, reduce_by=Decimal(1))
            )
        await future
        stats = router.stats()
    assert type(future.result()) in (Accepted, Cancelled, Amended)
    first, second = timeline(client, clock)
    assert first[:2] == second[:2] == (kind, ["a0"])
    assert 0 < second[2] <= RouterConfig().backoff_base_s
    assert (stats.http_429, stats.retries, stats.reconciliations) == (0, 1, 0)


async def test_retrying_stops_at_the_deadline_with_expired(clock: VirtualClock) -> None:
    client = ScriptedClient()
    client.default = http(503)
    async with make_router(client) as router:
        futures = router.submit_many(orders("a", 2), deadline_s=0.3)
        assert await outcomes(futures) == ["Expired", "Expired"]
        stats = router.stats()
    # Settled as soon as the next backoff would end past the deadline, not after it.
    assert clock.elapsed() < 0.3
    assert len(client.calls) >= 3
    assert all(keys == ["a0", "a1"] for keys in client.sent())
    assert not client.exchange.arrivals
    expired = futures[0].result()
    assert isinstance(expired, Expired)
    assert "retrying" in expired.reason
    assert stats.retries == 2 * (len(client.calls) - 1)


# Ambiguous: looked up before anything is sent again.

AMBIGUOUS: dict[str, Callable[[bool], Step]] = {
    "500": lambda processed: http(500, processed=processed),
    "502": lambda processed: http(502, processed=processed),
    "504": lambda processed: http(504, processed=processed),
    "timeout": lambda processed: lost(sent=True, processed=processed),
    "unreadable-2xx": lambda processed: unreadable(processed=processed),
}


@pytest.mark.parametrize("failure", sorted(AMBIGUOUS))
async def test_an_ambiguous_failure_that_landed_is_found_and_accepted_without_a_resend(
    clock: VirtualClock, failure: str
) -> None:
    client = ScriptedClient().then(AMBIGUOUS[failure](True))
    async with make_router(client) as router:
        futures = submit_all(router, "a", 3)
        assert await outcomes(futures) == ["Accepted"] * 3
        stats = router.stats()
    for future in futures:
        accepted = future.result()
        assert isinstance(accepted, Accepted)
        assert accepted.order_id == client.exchange.orders[accepted.client_order_id].order_id
    assert client.sent() == [["a0", "a1", "a2"]]
    assert client.order_pages == [(TICKER, None)]
    # Three intents looked up (one lookup request: client.order_pages above).
    assert (stats.reconciliations, stats.retries) == (3, 0)


@pytest.mark.parametrize("failure", sorted(AMBIGUOUS))
async def test_an_ambiguous_failure_that_did_not_land_is_resent_with_the_same_ids(
    clock: VirtualClock, failure: str
) -> None:
    client = ScriptedClient().then(AMBIGUOUS[failure](False))
    async with make_router(client) as router:
        futures = submit_all(router, "a", 3)
        assert await outcomes(futures) == ["Accepted"] * 3
    assert client.sent() == [["a0", "a1", "a2"]] * 2
    assert client.exchange.arrivals == ["a0", "a1", "a2"]
    assert client.order_pages == [(TICKER, None)]


async def test_reconciliation_pages_through_every_ticker_and_matches_by_client_order_id(
    clock: VirtualClock,
) -> None:
    client = ScriptedClient().then(lost(sent=True, processed=True))
    client.page_size = 2
    for index in range(4):  # other orders on the same market, listed first
        client.exchange.place(order(f"other{index}"))
    async with make_router(client) as router:
        futures = [router.submit(order("a0")), router.submit(order("b0", ticker="KXOTHER-1"))]
        assert await outcomes(futures) == ["Accepted", "Accepted"]
    assert client.order_pages == [(TICKER, None), (TICKER, "2"), (TICKER, "4"), ("KXOTHER-1", None)]


@pytest.mark.parametrize("lagging_lookups", [1, 2])
async def test_a_duplicate_answer_to_a_resend_means_the_order_landed(
    clock: VirtualClock, lagging_lookups: int
) -> None:
    # The first attempt landed but the listing lags behind, so the router resends the same id
    # and the exchange refuses it as a duplicate: that refusal is proof it is there.
    client = ScriptedClient().then(lost(sent=True, processed=True))
    client.lookups.extend([truthful(hide=["a0"])] * lagging_lookups)
    async with make_router(client) as router:
        future = router.submit(order("a0"))
        accepted = await future
    assert accepted == Accepted(
        client_order_id="a0",
        order_id=client.exchange.orders["a0"].order_id,
        fill_count=Decimal(0),
        remaining_count=Decimal(1),
    )
    assert client.sent() == [["a0"], ["a0"]]
    assert client.exchange.arrivals == ["a0", "a0"]
    assert len(client.order_pages) == lagging_lookups + 1


@pytest.mark.parametrize(
    ("second_lookup", "expected"),
    [pytest.param(truthful(), Accepted, id="there"), pytest.param(failing(), Unknown, id="unsure")],
)
async def test_a_refused_resend_of_an_order_that_may_have_landed_is_looked_up_again(
    clock: VirtualClock, second_lookup: Lookup, expected: type[Accepted | Unknown]
) -> None:
    # The first attempt landed after (or unseen by) the lookup; the resend is refused for
    # another reason than the duplicate id. Believing "rejected" would hide a live order.
    client = ScriptedClient().then(
        lost(sent=True, processed=True), accept(reject={"a0": "insufficient_balance"})
    )
    client.lookups.append(truthful(hide=["a0"]))
    client.default_lookup = second_lookup
    async with make_router(client) as router:
        outcome = await router.place(order("a0"), deadline_s=1.0)
    assert isinstance(outcome, expected)
    assert client.sent() == [["a0"], ["a0"]]


async def test_a_refused_resend_of_an_order_still_absent_is_rejected(clock: VirtualClock) -> None:
    client = ScriptedClient().then(lost(sent=True), accept(reject={"a0": "insufficient_balance"}))
    async with make_router(client) as router:
        outcome = await router.place(order("a0"))
    assert isinstance(outcome, Rejected)
    assert outcome.code == "insufficient_balance"
    assert len(client.order_pages) == 2


async def test_a_lookup_failing_until_the_deadline_settles_unknown_with_the_id_at_the_deadline(
    clock: VirtualClock,
) -> None:
    client = ScriptedClient().then(lost(sent=True))
    client.default_lookup = failing()
    async with make_router(client) as router:
        future = router.submit(order("a0"), deadline_s=1.0)
        unknown = await future
        settled_at = clock.elapsed()
    assert isinstance(unknown, Unknown)
    assert unknown.client_order_id == "a0"
    assert "deadline" in unknown.reason
    assert client.sent() == [["a0"]]
    assert len(client.order_pages) > 2
    assert 1.0 <= settled_at <= 1.0 + 1e-6


async def test_a_lookup_that_recovers_before_the_deadline_settles_the_order(
    clock: VirtualClock,
) -> None:
    client = ScriptedClient().then(lost(sent=True, processed=True))
    client.lookups.extend([failing(), failing(502)])
    async with make_router(client) as router:
        assert isinstance(await router.place(order("a0")), Accepted)
    assert len(client.order_pages) == 3
    assert client.sent() == [["a0"]]


@pytest.mark.parametrize("processed", [True, False], ids=["landed", "lost"])
async def test_items_missing_from_a_2xx_are_the_only_ones_reconciled(
    clock: VirtualClock, processed: bool
) -> None:
    client = ScriptedClient().then(accept(omit=["a1"], apply_omitted=processed))
    async with make_router(client) as router:
        futures = submit_all(router, "a", 3)
        assert await outcomes(futures) == ["Accepted"] * 3
        stats = router.stats()
    resent = [] if processed else [["a1"]]
    assert client.sent() == [["a0", "a1", "a2"], *resent]
    assert client.order_pages == [(TICKER, None)]
    assert stats.reconciliations == 1


async def test_an_ambiguous_cancel_is_simply_sent_again(clock: VirtualClock) -> None:
    client = ScriptedClient().then(lost(sent=True))
    async with make_router(client) as router:
        cancelled = await router.cancel("ord-x", TICKER)
    assert cancelled == Cancelled(order_id="ord-x", reduced_by=Decimal(1))
    assert client.sent() == [["ord-x"], ["ord-x"]]
    assert not client.order_pages


async def test_a_refused_resend_of_an_ambiguous_cancel_is_unknown_not_rejected(
    clock: VirtualClock,
) -> None:
    client = ScriptedClient().then(
        lost(sent=True, processed=True), accept(reject={"ord-x": "order_not_resting"})
    )
    async with make_router(client) as router:
        unknown = await router.cancel("ord-x", TICKER)
        # A first attempt that got a clear answer keeps its refusal: it is definitive.
        client.then(accept(reject={"ord-y": "order_not_resting"}))
        rejected = await router.cancel("ord-y", TICKER)
    assert isinstance(unknown, Unknown)
    assert unknown.order_id == "ord-x"
    assert "order_not_resting" in unknown.reason
    assert isinstance(rejected, Rejected)
    assert client.sent() == [["ord-x"], ["ord-x"], ["ord-y"]]


@pytest.mark.parametrize("kind", ["create", "cancel"])
async def test_giving_up_after_an_ambiguous_attempt_is_unknown_not_expired(
    clock: VirtualClock, kind: CallKind
) -> None:
    # Not found (create) or not answered (cancel), and no time left to send it again: the first
    # attempt may still land, so "expired" (never placed) would be a guess.
    client = ScriptedClient()
    client.default = lost(sent=True)
    async with make_router(client) as router:
        if kind == "create":
            future: asyncio.Future[Any] = router.submit(order("a0"), deadline_s=0.01)
        else:
            future = router.cancel("a0", TICKER, deadline_s=0.3)
        unknown = await future
    assert isinstance(unknown, Unknown)
    assert "may have reached the exchange" in unknown.reason
    assert unknown.client_order_id == ("a0" if kind == "create" else None)
    assert client.sent(kind)[0] == ["a0"]


@pytest.mark.parametrize("intent", ["amend", "decrease"])
@pytest.mark.parametrize(
    "step", [pytest.param(http(500), id="500"), pytest.param(lost(sent=True), id="timeout")]
)
async def test_an_ambiguous_amend_or_decrease_is_unknown_and_never_resent(
    clock: VirtualClock, intent: str, step: Step
) -> None:
    client = ScriptedClient().then(step)
    async with make_router(client) as router:
        if intent == "amend":
            amend = AmendIntent(
                order_id="ord-x", ticker=TICKER, side="bid", price=Decimal("0.4"), count=Decimal(2)
            )
            future = router.amend(amend)
        else:
            future = router.decrease(
                DecreaseIntent(order_id="ord-x", ticker=TICKER, reduce_to=Decimal(1))
            )
        unknown = await future
    assert isinstance(unknown, Unknown)
    assert unknown.order_id == "ord-x"
    assert client.sent() == [["ord-x"]]


# Crashes: a bug of ours, not the network's, fails every pending intent loudly.


async def _raise_bug(client: ScriptedClient, ticker: str) -> list[Order]:
    raise RuntimeError("bug in a lookup")


@pytest.mark.parametrize(
    ("step", "lookup"),
    [
        pytest.param(delayed(0.01, explode(RuntimeError("bug in a send"))), None, id="send"),
        pytest.param(delayed(0.01, lost(sent=True)), _raise_bug, id="lookup"),
    ],
)
async def test_a_crash_fails_every_pending_intent_with_its_own_router_crashed(
    clock: VirtualClock, step: Step, lookup: Lookup | None
) -> None:
    client = basic().then(step)
    if lookup is not None:
        client.lookups.append(lookup)
    router = make_router(client)
    await router.start()
    futures = submit_all(router, "a", 18)
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(result, RouterCrashed) for result in results)
    assert len({id(result) for result in results}) == len(results)
    # Nothing goes out after the crash: the second batch was still waiting for its tokens.
    assert clock.elapsed() == pytest.approx(0.01)
    assert client.sent() == [[f"a{i}" for i in range(9)]]
    with pytest.raises(RouterCrashed):
        router.submit(order("after"))
    await router.aclose(drain_timeout=1.0)


async def test_a_crash_stops_the_requests_in_flight_and_takes_the_queue_out_at_once(
    clock: VirtualClock,
) -> None:
    # Two batches on the wire; the second one's send hits a bug while the first waits for its
    # answer, and a third batch waits for a slot.
    client = ScriptedClient().then(delayed(0.5), delayed(0.01, explode(RuntimeError("bug"))))
    router = make_router(client, RouterConfig(max_in_flight=2))
    await router.start()
    futures = submit_all(router, "a", 50)
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(result, RouterCrashed) for result in results)
    assert clock.elapsed() == pytest.approx(0.01)
    await asyncio.sleep(0)
    # No answer can come to settle anything again: the first request was stopped, not awaited.
    assert (router.in_flight, router.queue_depth) == (0, 0)
    await router.aclose(drain_timeout=1.0)
    assert clock.elapsed() == pytest.approx(0.01)
    assert client.sent() == [[f"a{i}" for i in range(20)], [f"a{i}" for i in range(20, 40)]]


# Invariants under random traffic and random failures.

FAILURES: dict[str, Step] = {
    "accept": accept(),
    "429": http(429),
    "503": http(503),
    "refused": lost(sent=False),
    "500-landed": http(500, processed=True),
    "500-lost": http(500),
    "timeout-landed": lost(sent=True, processed=True),
    "timeout-lost": lost(sent=True),
    "unreadable": unreadable(),
    "missing-landed": accept(omit=["a0-0", "a1-1", "a2-0", "a3-2"]),
    "missing-lost": accept(omit=["a0-1", "a1-0", "a2-2", "a3-0"], apply_omitted=False),
}


async def _reject_every_other(client: ScriptedClient, call: Any) -> Any:
    return await accept(reject=dict.fromkeys(call.keys[::2], "invalid_order"))(client, call)


FAILURES["per-item-errors"] = _reject_every_other


async def _lagging(client: ScriptedClient, ticker: str) -> list[Order]:
    return []


LOOKUPS: dict[str, Lookup] = {"truthful": truthful(), "failing": failing(), "lagging": _lagging}


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    bursts=st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 12), st.floats(0.05, 2.0)),
        min_size=1,
        max_size=5,
    ),
    script=st.lists(st.sampled_from(sorted(FAILURES)), max_size=12),
    lookups=st.lists(st.sampled_from(sorted(LOOKUPS)), max_size=6),
    lookup_default=st.sampled_from(["truthful", "failing"]),
    given_up=st.lists(st.tuples(st.integers(0, 59), st.floats(0.0, 0.3)), max_size=4),
    max_in_flight=st.integers(1, 4),
    token_bound=st.booleans(),
)
def test_every_intent_gets_exactly_one_truthful_outcome(
    bursts: list[tuple[int, int, float]],
    script: list[str],
    lookups: list[str],
    lookup_default: str,
    given_up: list[tuple[int, float]],
    max_in_flight: int,
    token_bound: bool,
) -> None:
    """Random traffic, failures and callers giving up (cancelling their futures)."""

    async def main(clock: VirtualClock) -> tuple[ScriptedClient, list[asyncio.Future[Any]]]:
        client = basic() if token_bound else ScriptedClient()
        client.then(*(FAILURES[name] for name in script))
        client.lookups.extend(LOOKUPS[name] for name in lookups)
        client.default_lookup = LOOKUPS[lookup_default]
        futures: list[asyncio.Future[Any]] = []
        router = make_router(client, RouterConfig(max_in_flight=max_in_flight))
        async with router:
            for index, (pause, count, deadline) in enumerate(bursts):
                await asyncio.sleep(pause * 0.03)
                for item in range(count):
                    intent = order(f"a{index}-{item}")
                    futures.append(router.submit(intent, deadline_s=deadline))
            loop = asyncio.get_running_loop()
            for index, delay in given_up:
                if index < len(futures):
                    loop.call_later(delay, futures[index].cancel)
            await asyncio.wait(futures)
        # Every intent settled inside the router exactly once, given up on or not.
        assert sum(router.stats().outcomes.values()) == len(futures)
        return client, futures

    client, futures = run_virtual(main)
    answered = [future.result() for future in futures if not future.cancelled()]
    for name in sorted({type(outcome).__name__ for outcome in answered}):
        event(name)  # shown by --hypothesis-show-statistics: what the examples reach
    held = client.exchange.orders
    # A listing that lags behind the exchange is the one lie the router cannot see through:
    # it justifies a resend, and (the scripted refusals ignore the duplicate) a refusal.
    lied = "lagging" in lookups
    arrivals = client.exchange.arrivals
    assert lied or len(arrivals) == len(set(arrivals)), "an order that was there was sent again"
    for outcome in answered:
        if isinstance(outcome, Accepted):
            assert held[outcome.client_order_id].order_id == outcome.order_id
        elif isinstance(outcome, Unknown):
            assert outcome.client_order_id is not None
        elif not (lied and isinstance(outcome, Rejected)):
            assert isinstance(outcome, Rejected | Expired | Closed)
            assert outcome.client_order_id not in held, f"{outcome} but the exchange holds it"
    truthful_ids = {
        o.client_order_id
        for o in answered
        if isinstance(o, Accepted | Unknown) or (lied and isinstance(o, Rejected))
    }
    abandoned = {f"a{i}-{j}" for i, (_, n, _) in enumerate(bursts) for j in range(n)} - {
        o.client_order_id for o in answered
    }
    assert set(held) <= truthful_ids | abandoned
