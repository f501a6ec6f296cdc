"""reconcile: the lookup rounds, carried out as ``answers.looked_up`` decides, on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import cast

import pytest
from aiolimiter import AsyncLimiter

from kalshi_router.answers import LookUp, Plan, looked_up
from kalshi_router.errors import WireError
from kalshi_router.outcome import Accepted, outcome_name
from kalshi_router.pending import Pending
from kalshi_router.reconcile import Reconciler
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.models import Order
from tests.fakes import TICKER, ScriptedClient, VirtualClock, failing, order, truthful
from tests.fakes import clock_fixture as clock_fixture
from tests.pendings import walked


def pending(key: str, deadline: float) -> Pending:
    loop = asyncio.get_running_loop()
    now = loop.time()
    made = Pending(
        kind="create",
        key=key,
        ticker=TICKER,
        payload=None,
        future=loop.create_future(),
        submitted=now,
        deadline=now + deadline,
    )
    return walked(made, "looking_up", maybe_placed=True)


async def test_rounds_carry_out_each_plan_and_wait_as_it_says(clock: VirtualClock) -> None:
    client = ScriptedClient()
    client.exchange.place(order("a0"))
    # A failed lookup, a listing that lags behind, then the truth.
    client.lookups.extend([failing(), truthful(hide=["a0"])])
    client.default_lookup = truthful()
    reconciler = Reconciler(cast(ExchangeClient, client), AsyncLimiter(1000, 1.0))
    rounds: list[tuple[float, str]] = []
    plans: list[Plan] = []

    def decide(look: LookUp, found: Mapping[str, Order] | WireError) -> Plan:
        rounds.append((round(clock.elapsed(), 6), type(found).__name__))
        return looked_up(look, found, clock.time(), lambda attempts: 0.25)

    sought = pending("a0", deadline=5.0)
    await reconciler.rounds(LookUp([sought], "landed"), decide, plans.append)
    assert rounds == [(0.0, "ExchangeError"), (0.25, "dict"), (0.5, "dict")]
    settled = [(p.key, outcome_name(o)) for plan in plans for p, o in plan.settle.items()]
    assert settled == [("a0", "accepted")]
    (accepted,) = plans[-1].settle.values()
    assert isinstance(accepted, Accepted)
    assert accepted.order_id == client.exchange.orders["a0"].order_id
    assert len(client.order_pages) == 3


async def test_rounds_end_at_the_deadline_not_after_it(clock: VirtualClock) -> None:
    client = ScriptedClient()
    client.default_lookup = failing()
    reconciler = Reconciler(cast(ExchangeClient, client), AsyncLimiter(1000, 1.0))
    plans: list[Plan] = []

    def decide(look: LookUp, found: Mapping[str, Order] | WireError) -> Plan:
        return looked_up(look, found, clock.time(), lambda attempts: 0.4)

    await reconciler.rounds(LookUp([pending("a0", deadline=1.0)], "resend"), decide, plans.append)
    # Rounds at 0, 0.4, 0.8 and at the deadline (1.0), which settles it unknown.
    assert clock.elapsed() == pytest.approx(1.0)
    assert len(client.order_pages) == 4
    (last,) = plans[-1].settle.values()
    assert outcome_name(last) == "unknown"
