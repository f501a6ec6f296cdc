"""A router observer for tests that listen only for outcomes: every other report is ignored."""

from __future__ import annotations

from collections.abc import Sequence


class OutcomeListener:
    """Subclasses define ``settled``; the rest of ``RouterObserver`` does nothing."""

    def sent(self, kind: str, size: int, queue_waits: Sequence[float], limiter_wait: float) -> None:
        pass

    def answered(self, kind: str, size: int, round_trip: float) -> None:
        pass

    def rate_limited(self) -> None:
        pass

    def retried(self, count: int) -> None:
        pass

    def reconciling(self, count: int) -> None:
        pass
