"""The idle fast path on the simulator, under hypothesis: ``place()`` (sent in its caller's turn
whenever the router is idle), ``submit()`` and ``cancel()`` mixed at random gaps, some callers
cancelling their ``place()`` while it is queued or on the wire, faults or none. Invariants,
never timings: every intent gets exactly one outcome (the router's own record, by id), the
exchange holds each client_order_id at most once, every outcome matches the exchange, and a
caller who waited read the outcome the router recorded."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kalshi_router.config import LimitsConfig, RouterConfig
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Outcome, Unknown
from kalshi_router.router import OrderRouter
from kalshi_router.sim import FaultConfig, LatencyConfig, SimConfig
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport
from tests.integration.conftest import KEY_ID, make_signer, running_sim
from tests.observers import OutcomeListener

TICKER = "KXFAST-A"
Key = tuple[str, str]
JITTER = LatencyConfig(kind="uniform", min_ms=0, max_ms=3)
FAULTS = {
    "none": FaultConfig(),
    "latency": FaultConfig(latency=JITTER),
    "reset-after": FaultConfig(reset_after_rate=0.2, latency=JITTER),
    "500-and-reset-before": FaultConfig(error_500_rate=0.2, reset_before_rate=0.1),
}
OPS = ("place", "place", "submit", "cancel", "give-up")
"""``give-up``: a ``place()`` whose caller cancels it after a while."""


class Recorder(OutcomeListener):
    """A ``RouterObserver`` that keeps every outcome the router gives, by (kind, id)."""

    def __init__(self) -> None:
        self.outcomes: dict[Key, list[Outcome]] = {}

    def settled(self, kind: str, outcome: Outcome, seconds: float) -> None:
        key = outcome.client_order_id if kind == "create" else getattr(outcome, "order_id", None)
        assert key is not None, outcome
        self.outcomes.setdefault((kind, key), []).append(outcome)


def resting_bid() -> OrderIntent:
    """Below the house's bids, so it rests (and can be cancelled)."""
    return OrderIntent.bid(TICKER, "0.30", 1)


def ops() -> st.SearchStrategy[list[tuple[str, float, float]]]:
    return st.lists(
        st.tuples(
            st.sampled_from(OPS),
            st.sampled_from([0.0, 0.0, 0.0005, 0.003]),  # the gap before it
            st.sampled_from([0.0, 0.0003, 0.001, 0.004]),  # a give-up's wait before cancelling
        ),
        min_size=4,
        max_size=24,
    )


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    steps=ops(),
    faults=st.sampled_from(sorted(FAULTS)),
    max_in_flight=st.sampled_from([1, 2, 4]),
    seed=st.integers(0, 2**16),
)
@pytest.mark.timeout(120)
async def test_places_submits_cancels_and_give_ups_keep_the_invariants(
    steps: list[tuple[str, float, float]], faults: str, max_in_flight: int, seed: int
) -> None:
    config = SimConfig(
        tier="premier", write_refill=10_000, write_capacity=20_000, faults=FAULTS[faults], seed=seed
    )
    recorder = Recorder()
    waited: dict[Key, asyncio.Future[Any]] = {}
    cancelled: set[Key] = set()
    async with running_sim(config) as sim:
        transport = HttpTransport(
            sim.url, make_signer(), timeout_s=0.3, max_connections=max_in_flight + 2
        )
        router = OrderRouter(
            ExchangeClient(transport, dialect_for("v2")),
            RouterConfig(
                max_in_flight=max_in_flight,
                backoff_base_s=0.01,
                backoff_cap_s=0.1,
                deadline_s=20.0,
            ),
            # The sim's budget, given: start-up's read of it meets the faults too (a 500 or a
            # reset there would fail the start, which is not what this test is about).
            LimitsConfig(write_refill_rate=10_000, write_bucket_capacity=20_000),
            rng=random.Random(seed),
            owns_transport=True,
            observers=[recorder],
        )
        async with router:
            for op, gap, give_up_after in steps:
                await asyncio.sleep(gap)
                if op == "cancel":
                    resting = [
                        (key, future.result().order_id)
                        for key, future in waited.items()
                        if key[0] == "create"
                        and future.done()
                        and not future.cancelled()
                        and isinstance(future.result(), Accepted)
                        and ("cancel", future.result().order_id) not in waited
                    ]
                    order_id = resting[0][1] if resting else f"ord-absent-{len(waited)}"
                    waited["cancel", order_id] = router.cancel(order_id, TICKER)
                    continue
                intent = resting_bid()
                created = ("create", intent.client_order_id)
                if op == "submit":
                    waited[created] = router.submit(intent)
                    continue
                task = asyncio.ensure_future(router.place(intent))
                waited[created] = task
                if op == "give-up":
                    cancelled.add(created)
                    asyncio.get_running_loop().call_later(give_up_after, task.cancel)
            await asyncio.gather(*waited.values(), return_exceptions=True)
            fast = router.stats().fast_path_sends
        # Closed: drained, so every intent has its outcome.
        held = sim.state.exchange.client_order_ids(KEY_ID)
        exchange = sim.state.exchange

    event(f"fast path: {'some' if fast else 'none'}")
    counts = Counter({key: len(found) for key, found in recorder.outcomes.items()})
    assert set(counts) == set(waited), "an intent without an outcome, or one nobody sent"
    assert set(counts.values()) == {1}, "an intent with more than one outcome"
    assert all(n == 1 for n in held.values()), f"placed more than once: {held}"
    assert set(held) <= {key for kind, key in waited if kind == "create"}
    for (kind, key), (outcome,) in recorder.outcomes.items():
        event(f"{kind} {type(outcome).__name__}")
        if kind == "create":
            order = exchange.find_client_order_id(KEY_ID, key)
            if isinstance(outcome, Accepted):
                assert order is not None, outcome
                assert order.order_id == outcome.order_id
            elif not isinstance(outcome, Unknown):
                assert order is None, f"{key} is at the exchange but reported {outcome}"
        future = waited[kind, key]
        if not future.cancelled():
            assert future.result() is outcome
        else:
            assert (kind, key) in cancelled
