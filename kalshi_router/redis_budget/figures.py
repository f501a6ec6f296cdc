"""What a shared write budget reports (``RedisBudget.figures``): apart from it, so that stats
can carry it without importing the ``redis`` package."""

from __future__ import annotations

import msgspec


class SharedBudgetFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What the shared budget did: Redis calls and their durations (µs), bookings forfeited
    for lateness, starts from an unknown (empty) bucket, cancels' tokens spent on credit."""

    calls: int
    failures: int
    call_p50_us: float
    call_p99_us: float
    forfeited: int
    fresh_starts: int
    credit_spent: int
    credit_left: float
    blocked: str | None
