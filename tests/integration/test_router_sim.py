"""The router against the simulator on loopback, without faults: batching, budget, per-item
rejections, cancels, amends, deadlines and shutdown, in both dialects where both apply.

The sim seeds every market with house liquidity: asks at $0.55-0.60 and bids at $0.40-0.45, so
a bid at $0.30 rests, a bid at $0.56 takes, and a post-only ask at $0.40 would cross.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from kalshi_router import Config, KalshiRouterError
from kalshi_router.config import ExchangeConfig, LimitsConfig, RouterConfig
from kalshi_router.errors import ConfigError, CredentialsRefused, RouterClosed
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.outcome import (
    Accepted,
    Amended,
    Cancelled,
    Closed,
    Expired,
    OrderOutcome,
    Rejected,
    Unknown,
)
from kalshi_router.router import OrderRouter
from kalshi_router.sim import FaultConfig, LatencyConfig, SimConfig, SimServer
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialect import DialectName
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.signer import Signer, load_private_key
from tests.integration.conftest import (
    FAST_RETRIES,
    KEY_ID,
    PRIVATE_PEM,
    MakeRouter,
    MakeSim,
    check_outcomes,
    check_settled_once,
    make_signer,
    sim_config_for,
    sim_stats,
)

TICKER = "KXROUTER-26DEC31-T50"


def resting_bids(n: int, ticker: str = TICKER, count: int = 1) -> list[OrderIntent]:
    """Bids below the house bids, so they rest and never trade."""
    return [OrderIntent.bid(ticker, "0.30", count) for _ in range(n)]


async def place_resting(router: OrderRouter, n: int, count: int = 3) -> list[Accepted]:
    outcomes = await asyncio.gather(*router.submit_many(resting_bids(n, count=count)))
    accepted = [o for o in outcomes if isinstance(o, Accepted)]
    assert len(accepted) == n, outcomes
    return accepted


# --- batching and the budget ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "burst"),
    [
        # Premier: V2 batches are capped by the configured 20; 50 intents cost 500 of 2000.
        pytest.param("v2", 50, id="v2"),
        # V1 costs 100 an order: one full batch of 17 (see below) and a partial one.
        pytest.param("v1", 20, id="v1"),
    ],
)
async def test_burst_settles_accepted_in_full_batches(
    make_sim: MakeSim, dialect: DialectName, burst: int
) -> None:
    sim = await make_sim(sim_config_for(dialect, tier="premier"))
    # Through the public constructor a service uses: a Config and a signer.
    config = Config(exchange=ExchangeConfig(dialect=dialect), router=FAST_RETRIES)
    async with OrderRouter.connect(config, make_signer(), base_url=sim.url) as router:
        intents = resting_bids(burst)
        futures = router.submit_many(intents)
        await router.flush()
        limit = router.batch_limits["create"]
        stats = router.stats()

    outcomes = check_outcomes(sim, intents, futures)
    assert all(isinstance(o, Accepted) for o in outcomes.values())
    assert set(sim.state.exchange.client_order_ids(KEY_ID)) == set(outcomes)
    assert stats.outcomes == {"accepted": burst}
    # Queued before the dispatcher ran, so the first batch is a full one.
    assert stats.max_batch_fill == limit
    assert stats.average_batch_fill > 1
    assert stats.batches_sent == -(-burst // limit)


@pytest.mark.parametrize(
    ("tier", "dialect", "headroom_s", "create_limit"),
    [
        # Basic's bucket holds 100 tokens and refills 100/s; 0.05 s of headroom leaves 95:
        # nine orders at 10.
        pytest.param("basic", "v2", 0.05, 9, id="basic-v2-0.05s"),
        # The default 0.25 s leaves 75: seven.
        pytest.param("basic", "v2", None, 7, id="basic-v2-default"),
        # Premier: 2000 less 250 holds 175 orders; the configured maximum of 20 wins.
        pytest.param("premier", "v2", None, 20, id="premier-v2-default"),
        # V1 orders cost 100: 1750 // 100.
        pytest.param("premier", "v1", None, 17, id="premier-v1-default"),
    ],
)
async def test_batch_limits_are_sized_from_the_sims_limits(
    make_sim: MakeSim,
    make_router: MakeRouter,
    tier: str,
    dialect: DialectName,
    headroom_s: float | None,
    create_limit: int,
) -> None:
    sim = await make_sim(sim_config_for(dialect, tier=tier))
    limits = LimitsConfig() if headroom_s is None else LimitsConfig(headroom_s=headroom_s)
    router = await make_router(sim, dialect=dialect, limits=limits)
    assert router.batch_limits == {"create": create_limit, "cancel": 20, "single": 1}


@pytest.mark.parametrize("headroom_s", [0.05, 0.25])
async def test_basic_burst_never_earns_a_429(
    make_sim: MakeSim, make_router: MakeRouter, headroom_s: float
) -> None:
    # 25 orders = 250 tokens through a 100-token bucket: ~1.5 s of waiting on our own bucket,
    # which must keep the exchange's from ever running dry.
    sim = await make_sim(SimConfig(tier="basic"))
    router = await make_router(sim, limits=LimitsConfig(headroom_s=headroom_s))
    intents = resting_bids(25)
    futures = router.submit_many(intents)
    await router.flush()

    outcomes = check_outcomes(sim, intents, futures)
    assert all(isinstance(o, Accepted) for o in outcomes.values())
    stats = router.stats()
    assert stats.http_429 == 0
    assert stats.max_batch_fill == router.batch_limits["create"]
    assert (await sim_stats(sim))["rate_limited"] == 0


# --- per-item outcomes -----------------------------------------------------------------------


async def test_per_item_rejections_sit_beside_acceptances(
    router: OrderRouter, sim: SimServer
) -> None:
    resting = OrderIntent.bid(TICKER, "0.30", 2)
    taker = OrderIntent.bid(TICKER, "0.56", 1, time_in_force="immediate_or_cancel")
    crossing = OrderIntent.ask(TICKER, "0.40", 1, post_only=True)
    off_tick = OrderIntent.bid(TICKER, "0.305", 1)
    intents = [resting, crossing, taker, off_tick]
    futures = router.submit_many(intents)
    await router.flush()

    outcomes = check_outcomes(sim, intents, futures)
    assert router.stats().batches_sent == 1, "all four should travel in one batch"
    placed = outcomes[resting.client_order_id]
    assert isinstance(placed, Accepted)
    assert placed.remaining_count == Decimal(2)
    took = outcomes[taker.client_order_id]
    assert isinstance(took, Accepted)
    assert (took.fill_count, took.remaining_count) == (Decimal(1), Decimal(0))
    cross = outcomes[crossing.client_order_id]
    assert isinstance(cross, Rejected)
    # Kalshi spells this code with a space (changelog, Oct 24, 2025).
    assert (cross.code, cross.details) == ("invalid order", "post only cross")
    tick = outcomes[off_tick.client_order_id]
    assert isinstance(tick, Rejected)
    assert tick.code == "invalid_price"
    assert router.stats().rejected_codes == {"invalid order": 1, "invalid_price": 1}


# --- cancels, amends, decreases ---------------------------------------------------------------


async def test_cancels_take_orders_off_the_book(router: OrderRouter, sim: SimServer) -> None:
    first, second, third = await place_resting(router, 3, count=3)
    one = router.cancel(first.order_id, TICKER)
    many = router.cancel_many(
        [
            CancelIntent(order_id=second.order_id, ticker=TICKER),
            CancelIntent(order_id="no-such-order", ticker=TICKER),
            CancelIntent(order_id=third.order_id, ticker=TICKER),
        ]
    )
    settled = await asyncio.gather(one, *many)
    unknown = settled.pop(2)

    for accepted, outcome in zip((first, second, third), settled, strict=True):
        assert isinstance(outcome, Cancelled)
        assert (outcome.order_id, outcome.reduced_by) == (accepted.order_id, Decimal(3))
        order = sim.state.exchange.get(KEY_ID, accepted.order_id)
        assert order is not None
        assert (order.status, order.remaining_count) == ("canceled", 0)
    assert isinstance(unknown, Rejected)
    assert (unknown.code, unknown.order_id) == ("not_found", "no-such-order")


async def test_amend_and_decrease_change_the_order(router: OrderRouter, sim: SimServer) -> None:
    (placed,) = await place_resting(router, 1, count=3)
    amend = AmendIntent(
        order_id=placed.order_id,
        ticker=TICKER,
        side="bid",
        price=Decimal("0.31"),
        count=Decimal(5),
    )
    amended = await router.amend(amend)
    assert isinstance(amended, Amended)
    assert (amended.order_id, amended.remaining_count) == (placed.order_id, Decimal(5))
    order = sim.state.exchange.get(KEY_ID, placed.order_id)
    assert order is not None
    # Engine units: $0.0001 and 0.01 contract.
    assert (order.price, order.initial_count, order.remaining_count) == (3100, 500, 500)

    decreased = await router.decrease(
        DecreaseIntent(order_id=placed.order_id, ticker=TICKER, reduce_by=Decimal(2))
    )
    assert isinstance(decreased, Amended)
    assert decreased.remaining_count == Decimal(3)
    reduced_to = await router.decrease(
        DecreaseIntent(order_id=placed.order_id, ticker=TICKER, reduce_to=Decimal(1))
    )
    assert isinstance(reduced_to, Amended)
    assert reduced_to.remaining_count == Decimal(1)
    assert (order.status, order.remaining_count) == ("resting", 100)


# --- deadlines and shutdown -------------------------------------------------------------------

# Our bucket refills at a fifth of the sim's: after one full batch, the next waits seconds for
# tokens, so "still queued" does not depend on how fast this machine is.
SLOW_REFILL = LimitsConfig(write_refill_rate=20)


async def test_intents_past_their_deadline_are_never_sent(
    make_sim: MakeSim, make_router: MakeRouter
) -> None:
    sim = await make_sim(SimConfig(tier="basic"))
    router = await make_router(sim, limits=SLOW_REFILL)
    first = resting_bids(router.batch_limits["create"])
    late = resting_bids(3)
    futures = router.submit_many(first)
    late_futures = router.submit_many(late, deadline_s=0.05)
    await router.flush()

    outcomes = check_outcomes(sim, first + late, futures + late_futures)
    assert all(isinstance(outcomes[i.client_order_id], Accepted) for i in first)
    assert all(isinstance(outcomes[i.client_order_id], Expired) for i in late)
    check_settled_once(router, len(first) + len(late))
    requests = (await sim_stats(sim))["requests"]["POST /portfolio/events/orders/batched"]
    assert requests == {"201": 1}, "only the first batch may reach the exchange"


async def test_expired_outcome_arrives_at_the_deadline_not_with_the_tokens(
    make_sim: MakeSim, make_router: MakeRouter
) -> None:
    # The tokens for the late intents come ~3 s after the first batch; their outcome must not
    # wait for them. (0.5 s is ten times the deadline, and a sixth of the token wait.)
    sim = await make_sim(SimConfig(tier="basic"))
    router = await make_router(sim, limits=SLOW_REFILL)
    limit = router.batch_limits["create"]
    router.submit_many(resting_bids(limit))
    late = router.submit_many(resting_bids(limit), deadline_s=0.05)
    done, _ = await asyncio.wait(late, timeout=0.5)
    assert len(done) == len(late), "expired outcomes waited for tokens"
    assert all(isinstance(f.result(), Expired) for f in late)
    await router.flush()


async def test_aclose_closes_what_is_still_queued(
    make_sim: MakeSim, make_router: MakeRouter
) -> None:
    # One full batch empties our bucket; what is behind it needs seconds of refill, far past
    # the 0.1 s drain, so it is closed, never sent.
    sim = await make_sim(SimConfig(tier="basic"))
    router = await make_router(sim, limits=SLOW_REFILL)
    first, queued = resting_bids(router.batch_limits["create"]), resting_bids(6)
    futures = router.submit_many(first + queued)
    await router.aclose(drain_timeout=0.1)

    outcomes = check_outcomes(sim, first + queued, futures)
    for intent in first:
        assert isinstance(outcomes[intent.client_order_id], Accepted | Unknown)
    for intent in queued:
        assert isinstance(outcomes[intent.client_order_id], Closed)
    check_settled_once(router, len(first) + len(queued))
    with pytest.raises(RouterClosed):
        router.submit(OrderIntent.bid(TICKER, "0.30", 1))


async def test_aclose_sends_nothing_after_the_drain_times_out(
    make_sim: MakeSim, make_router: MakeRouter
) -> None:
    # Regression: aclose once cancelled the in-flight sends before the dispatcher task, and the
    # slot a cancelled send freed let the dispatcher send a queued intent after the drain.
    # Creates sit 0.5 s in the sim before processing, so the first is still in flight when the
    # 0.1 s drain ends; with one slot, the second waits for it, queued.
    faults = FaultConfig(latency=LatencyConfig(kind="fixed", fixed_ms=500))
    sim = await make_sim(SimConfig(tier="premier", faults=faults))
    router = await make_router(sim, router=RouterConfig(max_in_flight=1))
    first, second = resting_bids(2)
    in_flight = router.submit(first)
    # The dispatcher sends at once when idle; a few ms is ample, and the premise is checked.
    await asyncio.sleep(0.05)
    assert router.in_flight == 1
    queued = router.submit(second)
    await router.aclose(drain_timeout=0.1)

    assert isinstance(in_flight.result(), Unknown)
    outcome: OrderOutcome = queued.result()
    assert isinstance(outcome, Closed), outcome
    # Anything sent would have landed after the sim's 0.5 s: look after that.
    await asyncio.sleep(0.6)
    check_outcomes(sim, [first, second], [in_flight, queued])


async def start_and_fail(router: OrderRouter) -> BaseException:
    """Enter ``router`` expecting start() to raise; return what it raised."""
    with pytest.raises(Exception) as raised:  # noqa: PT011 - callers check the type
        async with router:
            pass
    return raised.value


class ClosingTransport(HttpTransport):
    """Counts close() calls: whether the router let go of its session."""

    closes = 0

    async def close(self) -> None:
        self.closes += 1
        await super().close()


@pytest.mark.parametrize(
    ("tier", "dialect", "key_id", "error"),
    [
        # GET /account/limits refused: the key is unknown to the exchange.
        pytest.param("basic", "v2", "not-registered", CredentialsRefused, id="wrong-key"),
        # One V1 order costs Basic's whole bucket, headroom or not: a config problem.
        pytest.param("basic", "v1", KEY_ID, ConfigError, id="v1-at-basic"),
    ],
)
async def test_a_failed_start_raises_a_router_error_and_closes_its_transport(
    make_sim: MakeSim, tier: str, dialect: DialectName, key_id: str, error: type[Exception]
) -> None:
    # Regression: no __aexit__ follows a failed __aenter__, and the session opened by the
    # first request leaked; the too-small bucket raised a bare ValueError.
    sim = await make_sim(sim_config_for(dialect, tier=tier))
    signer = Signer(key_id, load_private_key(PRIVATE_PEM))
    transport = ClosingTransport(sim.url, signer)
    router = OrderRouter(ExchangeClient(transport, dialect_for(dialect)), owns_transport=True)
    try:
        raised = await start_and_fail(router)
        assert isinstance(raised, error), repr(raised)
        assert isinstance(raised, KalshiRouterError)
        assert transport.closes == 1
    finally:
        await HttpTransport.close(transport)
