"""The router against a faulty simulator: every fault mode on its own, then random fault
schedules under hypothesis. Outcomes are checked as invariants (see ``check_outcomes``), never
as timings: each future settles once, nothing is placed twice, and every report matches the
exchange.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalshi_router.config import RouterConfig
from kalshi_router.intent import BookSide, CancelIntent, OrderIntent, TimeInForce
from kalshi_router.outcome import Accepted, Cancelled, OrderOutcome, Rejected, Unknown
from kalshi_router.router import OrderRouter
from kalshi_router.sim import FaultConfig, LatencyConfig, SimConfig, SimServer
from kalshi_router.wire.dialect import DialectName
from tests.integration.conftest import (
    KEY_ID,
    MakeRouter,
    MakeSim,
    check_outcomes,
    check_settled_once,
    running_router,
    running_sim,
    set_faults,
    sim_config_for,
    sim_stats,
)

TICKERS = ("KXFAULT-A", "KXFAULT-B", "KXFAULT-C")
CREATE_ROUTE = "POST /portfolio/events/orders/batched"
CANCEL_ROUTE = "DELETE /portfolio/events/orders/batched"
# Small batches make more requests, so each test draws the fault many times.
SMALL_BATCHES = RouterConfig(
    max_batch_size=4, backoff_base_s=0.01, backoff_cap_s=0.1, deadline_s=20.0
)


@dataclass(frozen=True)
class Mode:
    """One fault mode at a high rate, and the path through the router it must take."""

    faults: FaultConfig
    # Ambiguous answers are looked up; "not executed" ones must not be.
    reconciles: bool
    # What the sim counts for a faulted create (None: recorded too late to check; a hang is
    # recorded only when the handler wakes, after the router has moved on).
    sim_outcome: str | None
    timeout_s: float = 5.0


MODES = {
    "error_503": Mode(FaultConfig(error_503_rate=0.5), reconciles=False, sim_outcome="error_503"),
    # A reset before processing looks like one after it to the client: it reconciles, finds
    # nothing, and resends the same ids.
    "reset_before": Mode(
        FaultConfig(reset_before_rate=0.5), reconciles=True, sim_outcome="reset_before"
    ),
    "error_500": Mode(FaultConfig(error_500_rate=0.5), reconciles=True, sim_outcome="error_500"),
    "reset_after": Mode(
        FaultConfig(reset_after_rate=0.5), reconciles=True, sim_outcome="reset_after"
    ),
    "malformed": Mode(FaultConfig(malformed_rate=0.5), reconciles=True, sim_outcome="malformed"),
    "truncated": Mode(FaultConfig(truncated_rate=0.5), reconciles=True, sim_outcome="truncated"),
    # The sim processes, then holds the answer 1 s; the router gives up after 0.3 s.
    "hang": Mode(
        FaultConfig(hang_rate=0.5, hang_s=1.0), reconciles=True, sim_outcome=None, timeout_s=0.3
    ),
    "storm_429": Mode(
        FaultConfig(storm_429_rate=0.5, storm_429_s=0.1), reconciles=False, sim_outcome="storm_429"
    ),
}


def resting(n: int, count: int = 1) -> list[OrderIntent]:
    """Bids below the house bids ($0.40-0.45), so they rest."""
    return [OrderIntent.bid(TICKERS[0], "0.30", count) for _ in range(n)]


def accepted(outcomes: list[OrderOutcome]) -> list[Accepted]:
    placed = [o for o in outcomes if isinstance(o, Accepted)]
    assert len(placed) == len(outcomes), outcomes
    return placed


async def faults_off_then_route_one(
    sim: SimServer, router: OrderRouter
) -> tuple[OrderIntent, asyncio.Future[OrderOutcome]]:
    """Switch the faults off through the control route and route one more order, which must be
    accepted: whatever the faults did, the router is still healthy."""
    await set_faults(sim, FaultConfig())
    probe = OrderIntent.bid(TICKERS[0], "0.20", 1)
    future = router.submit(probe)
    assert isinstance(await future, Accepted)
    return probe, future


@pytest.mark.parametrize("mode", list(MODES.values()), ids=list(MODES))
async def test_fault_mode_settles_every_intent_once(
    make_sim: MakeSim, make_router: MakeRouter, mode: Mode
) -> None:
    # Premier: retries cost tokens too, and a Basic bucket would make this a test of waiting.
    sim = await make_sim(SimConfig(tier="premier", faults=mode.faults, seed=7))
    router = await make_router(sim, router=SMALL_BATCHES, timeout_s=mode.timeout_s)
    intents = [OrderIntent.bid(TICKERS[i % 3], "0.30", 1 + i % 4) for i in range(40)]
    futures = router.submit_many(intents)
    await router.flush()

    outcomes = check_outcomes(sim, intents, futures)
    assert {type(o).__name__ for o in outcomes.values()} == {"Accepted"}
    stats = router.stats()
    assert stats.retries > 0 or stats.reconciliations > 0, "the fault never struck"
    assert (stats.reconciliations > 0) == mode.reconciles, stats
    if mode.sim_outcome is not None:
        seen = (await sim_stats(sim))["requests"][CREATE_ROUTE]
        assert seen.get(mode.sim_outcome, 0) > 0, seen
    if mode.sim_outcome == "storm_429":
        assert stats.http_429 > 0
        assert (await sim_stats(sim))["rate_limited"] == stats.http_429

    probe, probe_future = await faults_off_then_route_one(sim, router)
    check_outcomes(sim, [*intents, probe], [*futures, probe_future])
    check_settled_once(router, len(intents) + 1)


# A DELETE whose connection drops after the exchange processed it must not be resent by aiohttp
# behind the router's back (the resend's "not resting" would be taken for the only answer):
# the reset_after cases below pin HttpTransport's switch-off of aiohttp's silent retry.


@pytest.mark.parametrize(
    "mode",
    [pytest.param(mode, id=name) for name, mode in MODES.items()],
)
async def test_fault_mode_cancels_every_order_once(
    make_sim: MakeSim, make_router: MakeRouter, mode: Mode
) -> None:
    # The books are built without faults; then the faults strike the cancels only.
    sim = await make_sim(SimConfig(tier="premier", seed=7))
    router = await make_router(sim, router=SMALL_BATCHES, timeout_s=mode.timeout_s)
    placed = await asyncio.gather(*router.submit_many(resting(20, count=2)))
    await set_faults(sim, msgspec.structs.replace(mode.faults, paths=[CANCEL_ROUTE]))
    cancels = [CancelIntent(order_id=o.order_id, ticker=TICKERS[0]) for o in accepted(placed)]
    outcomes = await asyncio.gather(*router.cancel_many(cancels))

    for cancel, outcome in zip(cancels, outcomes, strict=True):
        assert outcome.order_id == cancel.order_id
        order = sim.state.exchange.get(KEY_ID, cancel.order_id)
        assert order is not None
        assert order.status == "canceled", f"{outcome} but the order is {order.status}"
        if isinstance(outcome, Cancelled):
            assert outcome.reduced_by == Decimal(2)
        else:
            # The answer to the first attempt was lost and the resend was refused (the order
            # no longer rests): whether the first one cancelled it cannot be told, so unknown.
            # Never Rejected: the order is off the book, which "refused" would deny.
            assert isinstance(outcome, Unknown), outcome
    check_settled_once(router, len(placed) + len(cancels))


@pytest.mark.parametrize(
    ("fault", "faults"),
    [
        pytest.param("error_500", FaultConfig(error_500_rate=0.5, paths=[CANCEL_ROUTE]), id="500"),
        pytest.param(
            "reset_after",
            FaultConfig(reset_after_rate=0.5, paths=[CANCEL_ROUTE]),
            id="reset_after",
        ),
    ],
)
async def test_a_cancel_whose_answer_was_lost_is_not_reported_refused(
    make_sim: MakeSim, make_router: MakeRouter, fault: str, faults: FaultConfig
) -> None:
    # Regression (500): the resend's "order_not_resting" once settled as Rejected (ok=False),
    # though the first attempt had cancelled the order. Only cancels draw faults. Seed 2: the
    # first draws 0.057 (< 0.5: the fault, after processing), the second 0.736 (clean); the
    # premise is checked below.
    sim = await make_sim(SimConfig(faults=faults, seed=2))
    router = await make_router(sim)
    placed = await router.place(OrderIntent.bid(TICKERS[0], "0.30", 2))
    assert isinstance(placed, Accepted)
    outcome = await router.cancel(placed.order_id, TICKERS[0])

    assert (await sim_stats(sim))["requests"][CANCEL_ROUTE] == {fault: 1, "200": 1}
    order = sim.state.exchange.get(KEY_ID, placed.order_id)
    assert order is not None
    assert order.status == "canceled"
    # Cancelled (ideally with what it took off the book) or Unknown would both be true;
    # "refused, definitively" is not.
    assert isinstance(outcome, Cancelled | Unknown), outcome


# --- random fault schedules -------------------------------------------------------------------

_CENT = Decimal("0.01")
SIDES: tuple[BookSide, ...] = ("bid", "ask")
TIFS: tuple[TimeInForce, ...] = ("good_till_canceled", "immediate_or_cancel", "fill_or_kill")
DIALECTS: tuple[DialectName, ...] = ("v2", "v1")


@st.composite
def order_intents(draw: st.DrawFn) -> OrderIntent:
    """Any order the sim can judge: on the cent tick, or now and then half a cent off it."""
    cents = draw(st.integers(1, 98))
    price = cents * _CENT
    if draw(st.integers(0, 9)) == 0:
        price += _CENT / 2
    tif = draw(st.sampled_from(TIFS))
    post_only = tif == "good_till_canceled" and draw(st.booleans())
    return OrderIntent(
        ticker=draw(st.sampled_from(TICKERS)),
        side=draw(st.sampled_from(SIDES)),
        price=price,
        count=draw(st.sampled_from([Decimal(1), Decimal(3), Decimal("1.5"), Decimal("0.25")])),
        time_in_force=tif,
        post_only=post_only,
    )


OUTCOME_RATES = (
    "error_503_rate",
    "error_500_rate",
    "reset_before_rate",
    "reset_after_rate",
    "malformed_rate",
    "truncated_rate",
    "hang_rate",
)


@st.composite
def fault_configs(draw: st.DrawFn) -> FaultConfig:
    # One to three fault outcomes at up to 0.3 each: at most 0.9, as FaultConfig requires
    # (<= 1), and always some requests get through.
    chosen = draw(st.sets(st.sampled_from(OUTCOME_RATES), min_size=1, max_size=3))
    rates = {name: draw(st.sampled_from([0.1, 0.2, 0.3])) for name in sorted(chosen)}
    # Latency stays far below the request timeout. A request still on its way when the router
    # looks it up is another matter: should the resend be refused on its merits (a post-only
    # cross, say) and the first attempt land after that, no client could have known.
    latency = draw(
        st.sampled_from([LatencyConfig(), LatencyConfig(kind="uniform", min_ms=0, max_ms=5)])
    )
    base = FaultConfig(
        latency=latency,
        hang_s=0.5,
        storm_429_rate=draw(st.sampled_from([0.0, 0.1, 0.3])),
        storm_429_s=0.05,
    )
    return msgspec.structs.replace(base, **rates)


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    intents=st.lists(order_intents(), min_size=10, max_size=30),
    faults=fault_configs(),
    seed=st.integers(0, 2**16),
    dialect=st.sampled_from(DIALECTS),
)
async def test_random_faults_keep_the_invariants(
    intents: list[OrderIntent], faults: FaultConfig, seed: int, dialect: DialectName
) -> None:
    # A fresh sim per example: ids, books and buckets from one example must not leak into
    # the next. Its write bucket is ten Premier ones, so that V1's 100-token orders and the
    # router's pause after each 429 cost milliseconds: this test is about faults, not waiting.
    # A short request timeout resolves hangs quickly.
    config = sim_config_for(
        dialect,
        tier="premier",
        write_refill=10_000,
        write_capacity=20_000,
        faults=faults,
        seed=seed,
    )
    async with (
        running_sim(config) as sim,
        running_router(sim, dialect=dialect, router=SMALL_BATCHES, timeout_s=0.2) as router,
    ):
        futures = router.submit_many(intents)
        await router.flush()
        outcomes = check_outcomes(sim, intents, futures)
        for intent in intents:
            if intent.price % _CENT:
                # Off the tick: refused however many times it is sent.
                outcome = outcomes[intent.client_order_id]
                assert isinstance(outcome, Rejected), outcome
                assert outcome.code == "invalid_price"
        probe, probe_future = await faults_off_then_route_one(sim, router)
        check_outcomes(sim, [*intents, probe], [*futures, probe_future])
        check_settled_once(router, len(intents) + 1)
