"""Wires one router's dispatcher to its write budget, reconciler and retry backoff, from what
start-up discovered of the account (``discover_budget``) and the config."""

from __future__ import annotations

import random
from collections.abc import Callable

from aiolimiter import AsyncLimiter

from kalshi_router.accumulator import Accumulator
from kalshi_router.answers import Backoff
from kalshi_router.budget import Budget, LocalBudget
from kalshi_router.config import LimitsConfig, RouterConfig
from kalshi_router.dispatcher import Dispatcher
from kalshi_router.journal import IntentJournal
from kalshi_router.outcome import Outcome
from kalshi_router.pending import Pending
from kalshi_router.reconcile import READ_COST, Reconciler
from kalshi_router.stats import RouterObserver
from kalshi_router.wire.client import ExchangeClient


def assemble(
    client: ExchangeClient,
    accumulator: Accumulator,
    found: Budget,
    limits: LimitsConfig,
    config: RouterConfig,
    *,
    stats: RouterObserver,
    settle: Callable[[Pending, Outcome], None],
    journal: IntentJournal | None,
    rng: random.Random,
) -> tuple[LocalBudget, Dispatcher]:
    headroom = found.write_rate * limits.headroom_s
    budget = LocalBudget(
        refill_rate=found.write_rate,
        capacity=found.write_capacity,
        create_cost=found.costs["create"],
        cancel_cost=found.costs["cancel"],
        single_cost=found.costs["single"],
        headroom=headroom,
    )
    # A bucket smaller than one lookup's cost would make aiolimiter refuse every lookup:
    # keep the account's rate, but let the bucket hold one.
    size = max(found.read_rate, READ_COST)
    reads = AsyncLimiter(size, size / found.read_rate)
    dispatcher = Dispatcher(
        client=client,
        accumulator=accumulator,
        budget=budget,
        reconciler=Reconciler(client, reads),
        stats=stats,
        settle=settle,
        journal=journal,
        max_batch=config.max_batch_size,
        max_in_flight=config.max_in_flight,
        linger_s=config.linger_ms / 1000,
        backoff=Backoff(config.backoff_base_s, config.backoff_cap_s, rng),
    )
    return budget, dispatcher
