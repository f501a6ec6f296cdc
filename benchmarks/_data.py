"""The benchmarks' deterministic data: seeded intents, and the same orders as plain V2 bodies.

    intents = make_intents(3000, seed=42, tag="tp")       # resting: every one is accepted
    bodies = [stdlib_order(i) for i in intents]           # for stdlib json and the peers
    batch = mixed_batch(seed=42)                          # bench_wire's batch of 20

Client order ids are ``{tag}-{seed}-{i}``: the same seed gives the same orders, a different tag
other ids (the simulator refuses an id twice).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from decimal import Decimal

from kalshi_router.intent import BookSide, OrderIntent

TICKERS = 64
BATCH = 20
"""Kalshi's batch limit and the router's default batch: bench_wire's batch, the naive and peer
batches, and the router run the throughput ratios refer to."""


def resting_intents(seed: int, tag: str) -> Iterator[OrderIntent]:
    """Resting GTC orders, one after another without end: bids at 1-30 c and asks at 70-99 c
    never meet the house's quotes (bids 40-45 c, asks 55-60 c) nor each other, so the books
    only grow; 64 tickers keep each book small."""
    rng = random.Random(seed)
    for i in itertools.count():
        ticker = f"KXBENCH-26DEC31-T{rng.randrange(TICKERS):02d}"
        size = Decimal(rng.randint(1, 10))
        cid = f"{tag}-{seed}-{i}"
        side: BookSide
        if rng.random() < 0.5:
            side, price = "bid", Decimal(rng.randint(1, 30)) / 100
        else:
            side, price = "ask", Decimal(rng.randint(70, 99)) / 100
        yield OrderIntent(ticker=ticker, side=side, price=price, count=size, client_order_id=cid)


def make_intents(count: int, seed: int, tag: str) -> list[OrderIntent]:
    """The first ``count`` of ``resting_intents``. Every run talks to a fresh simulator."""
    return list(itertools.islice(resting_intents(seed, tag), count))


def mixed_batch(seed: int = 42) -> list[OrderIntent]:
    """bench_wire's batch: bids and asks anywhere on the book, 1-500 contracts (more digits to
    encode than the resting orders'); never sent, only encoded and answered."""
    rng = random.Random(seed)
    return [
        OrderIntent(
            ticker=f"KXBENCH-26DEC31-T{rng.randint(10, 99)}",
            side=rng.choice(("bid", "ask")),
            price=Decimal(rng.randint(1, 99)) / 100,
            count=Decimal(rng.randint(1, 500)),
            client_order_id=f"bench-{seed}-{i}",
        )
        for i in range(BATCH)
    ]


def stdlib_order(intent: OrderIntent) -> dict[str, str]:
    """A V2 create order as a plain dict for stdlib ``json`` (the fields an OrderIntent sets)."""
    return {
        "ticker": intent.ticker,
        "side": intent.side,
        "count": str(intent.count),
        "price": str(intent.price),
        "time_in_force": intent.time_in_force,
        "self_trade_prevention_type": intent.self_trade_prevention,
        "client_order_id": intent.client_order_id,
    }
