"""One loop timer for the deadlines of every intent waiting to be sent, so that each is settled
expired at its deadline rather than whenever a batch cut reaches it. (A timer per intent cost
more than the rest of its queueing.)"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from kalshi_router.accumulator import Accumulator
from kalshi_router.pending import Pending


class ExpiryTimer:
    """Armed for the earliest deadline in ``accumulator``; calls ``expired`` with what it took
    out at that deadline, then arms itself for the next."""

    def __init__(self, accumulator: Accumulator, expired: Callable[[list[Pending]], None]) -> None:
        self._acc = accumulator
        self._expired = expired
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._at = math.inf

    def watch(self, deadline: float) -> None:
        """An intent with ``deadline`` was queued."""
        if deadline < self._at:
            self._arm(deadline)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, when: float) -> None:
        self.cancel()
        self._at = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        # The timer may fire a hair early (the loop's clock resolution): it is due all the same.
        upto = max(self._loop.time(), self._at)
        self._handle, self._at = None, math.inf
        if expired := self._acc.expire(upto):
            self._expired(expired)
        due = self._acc.next_deadline()
        if due is not None:
            self._arm(due)
