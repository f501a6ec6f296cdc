"""Counters and latency samples, and the immutable snapshot ``OrderRouter.stats()`` returns."""

from __future__ import annotations

import math
from collections import Counter, deque

import msgspec

# Enough for stable p99s; stats() sorts them, so more would make every snapshot slow.
SAMPLES = 4_096


class Percentiles(msgspec.Struct, frozen=True):
    """Seconds, over the most recent samples."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float


class RouterStats(msgspec.Struct, frozen=True, kw_only=True):
    outcomes: dict[str, int]
    rejected_codes: dict[str, int]
    batches_sent: int
    items_sent: int
    average_batch_fill: float
    max_batch_fill: int
    tokens_spent: int
    http_429: int
    retries: int
    reconciliations: int
    queue_depth: int
    in_flight: int
    queue_wait: Percentiles
    limiter_wait: Percentiles
    round_trip: Percentiles
    submit_to_outcome: Percentiles


def percentiles(samples: deque[float]) -> Percentiles:
    if not samples:
        return Percentiles(0, 0.0, 0.0, 0.0, 0.0)
    ordered = sorted(samples)

    def at(q: float) -> float:
        # Nearest rank: the smallest sample with at least q of all samples at or below it
        # (rounded first: 0.9 * 70 is 63.00000000000001 in binary floating point).
        return ordered[max(0, math.ceil(round(q * len(ordered), 9)) - 1)]

    return Percentiles(len(ordered), at(0.50), at(0.90), at(0.99), ordered[-1])


class StatsRecorder:
    """Mutable tallies; only the router's own tasks touch them, on the loop thread."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.rejected_codes: Counter[str] = Counter()
        self.batches = 0
        self.batched_items = 0
        self.max_fill = 0
        self.http_429 = 0
        self.retries = 0
        self.reconciliations = 0
        self.queue_wait: deque[float] = deque(maxlen=SAMPLES)
        self.limiter_wait: deque[float] = deque(maxlen=SAMPLES)
        self.round_trip: deque[float] = deque(maxlen=SAMPLES)
        self.submit_to_outcome: deque[float] = deque(maxlen=SAMPLES)

    def batch(self, size: int) -> None:
        self.batches += 1
        self.batched_items += size
        self.max_fill = max(self.max_fill, size)

    def snapshot(self, *, tokens_spent: int, queue_depth: int, in_flight: int) -> RouterStats:
        return RouterStats(
            outcomes=dict(self.outcomes),
            rejected_codes=dict(self.rejected_codes),
            batches_sent=self.batches,
            items_sent=self.batched_items,
            average_batch_fill=self.batched_items / self.batches if self.batches else 0.0,
            max_batch_fill=self.max_fill,
            tokens_spent=tokens_spent,
            http_429=self.http_429,
            retries=self.retries,
            reconciliations=self.reconciliations,
            queue_depth=queue_depth,
            in_flight=in_flight,
            queue_wait=percentiles(self.queue_wait),
            limiter_wait=percentiles(self.limiter_wait),
            round_trip=percentiles(self.round_trip),
            submit_to_outcome=percentiles(self.submit_to_outcome),
        )
