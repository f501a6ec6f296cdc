"""Wires one router's dispatcher to its write budget, reconciler and retry backoff, from what
start-up discovered of the account (``discover_budget``) and the config."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import NamedTuple

from aiolimiter import AsyncLimiter

from kalshi_router.accumulator import Accumulator
from kalshi_router.answers import Backoff
from kalshi_router.budget import Budget, WriteBudget
from kalshi_router.config import Config, RouterConfig
from kalshi_router.dispatcher import Dispatcher
from kalshi_router.journal import IntentJournal
from kalshi_router.orders.tracker import OrderTracker
from kalshi_router.outcome import Outcome
from kalshi_router.pending import Pending
from kalshi_router.reconcile import READ_COST, Reconciler
from kalshi_router.stats import RouterObserver
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.models import Order
from kalshi_router.wire.signer import Signer


class Assembly(NamedTuple):
    dispatcher: Dispatcher
    reads: AsyncLimiter
    """The account's read budget, which lookups and the order tracker's sweeps share."""


def track(
    config: Config,
    client: ExchangeClient,
    signer: Signer,
    base_url: str | None,
    journal: IntentJournal | None,
) -> OrderTracker | None:
    """The order tracker ``[orders]`` asks for, or None when ``track`` is off."""
    if not config.orders.track:
        return None
    return OrderTracker(
        client,
        base_url or config.exchange.base_url,
        signer,
        config.orders,
        verify_tls=config.exchange.verify_tls,
        journal=journal,
    )


def assemble(
    client: ExchangeClient,
    accumulator: Accumulator,
    found: Budget,
    budget: WriteBudget,
    config: RouterConfig,
    *,
    stats: RouterObserver,
    settle: Callable[[Mapping[Pending, Outcome]], None],
    journal: IntentJournal | None,
    rng: random.Random,
    seen: Callable[[str], Order | None] | None = None,
) -> Assembly:
    # A bucket smaller than one lookup's cost would make aiolimiter refuse every lookup:
    # keep the account's rate, but let the bucket hold one.
    size = max(found.read_rate, READ_COST)
    reads = AsyncLimiter(size, size / found.read_rate)
    dispatcher = Dispatcher(
        client=client,
        accumulator=accumulator,
        budget=budget,
        reconciler=Reconciler(client, reads, seen=seen),
        stats=stats,
        settle=settle,
        journal=journal,
        max_batch=config.max_batch_size,
        max_in_flight=config.max_in_flight,
        linger_s=config.linger_ms / 1000,
        backoff=Backoff(config.backoff_base_s, config.backoff_cap_s, rng),
    )
    return Assembly(dispatcher, reads)
