"""Every intent the service took, by key, so that any client can ask for its outcome later
(the HTTP answer may have been lost, or the bot asked not to wait).

With a journal, keys the book no longer holds (settled long ago, or before a restart) are looked
up there, and ``durable`` commits the journal before the service acknowledges anything."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from kalshi_router.journal import SqliteJournal
from kalshi_router.outcome import Outcome


class OutcomeBook:
    """Pending intents by key, and the last ``keep`` settled outcomes (oldest dropped first)."""

    def __init__(self, keep: int, journal: SqliteJournal | None = None) -> None:
        self._keep = keep
        self._journal = journal
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
        """("pending", None), ("settled", outcome), or None when the key is unknown here."""
        if key in self._pending:
            return "pending", None
        outcome = self._settled.get(key)
        return None if outcome is None else ("settled", outcome)

    def find(self, key: str) -> tuple[str, Outcome | None] | None:
        """``lookup``, then the journal (one indexed read) for keys this run no longer holds."""
        found = self.lookup(key)
        if found is not None or self._journal is None:
            return found
        entry = self._journal.find(key)
        if entry is None:
            return None
        return ("settled", entry.outcome) if entry.state == "settled" else ("pending", None)

    def durable(self) -> None:
        """Commit what the journal holds for intents taken or settled so far: call it before
        acknowledging an intent or reporting an outcome to a bot."""
        if self._journal is not None:
            self._journal.commit()

    @property
    def pending(self) -> int:
        return len(self._pending)
