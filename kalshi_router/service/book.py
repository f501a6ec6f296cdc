"""Every intent the service took, by key, so that any client can ask for its outcome later
(the HTTP answer may have been lost, or the bot asked not to wait)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from kalshi_router.outcome import Outcome


class OutcomeBook:
    """Pending intents by key, and the last ``keep`` settled outcomes (oldest dropped first)."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._settled: OrderedDict[str, Outcome] = OrderedDict()

    def track(self, key: str, future: asyncio.Future[Any]) -> None:
        self._pending[key] = future
        future.add_done_callback(lambda done: self._done(key, done))

    def _done(self, key: str, future: asyncio.Future[Any]) -> None:
        if self._pending.get(key) is future:
            del self._pending[key]
        if future.cancelled() or future.exception() is not None:
            return
        self._settled[key] = future.result()
        self._settled.move_to_end(key)
        while len(self._settled) > self._keep:
            self._settled.popitem(last=False)

    def lookup(self, key: str) -> tuple[str, Outcome | None] | None:
        """("pending", None), ("settled", outcome), or None when the key is unknown."""
        if key in self._pending:
            return "pending", None
        outcome = self._settled.get(key)
        return None if outcome is None else ("settled", outcome)

    @property
    def pending(self) -> int:
        return len(self._pending)
