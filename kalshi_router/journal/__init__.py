"""What the router tells an intent journal, so a restart after a crash can learn which intents
were on the wire. The router calls these inline on the loop thread, only when a journal is set.

    taken     the router accepted the intent (it is queued)
    sending   its batch is about to be written to the socket (every attempt)
    settled   it got its one outcome
    resolve_later  an intent settled unknown was later proven placed or absent

``sending`` must be durable when it returns: after a crash, an intent journaled as taken but
never as sending was certainly never sent, and is settled closed rather than looked up.

``SqliteJournal`` (``store``) is the implementation the service uses: the loop thread appends
one row per commit to a commit log (``commit_log``), which is folded into the journal's table
when the loop is quiet or the log has grown (``fold``: each row's last state, ``rows``, written
on a thread of its own) and read along with it (``reads``), in files that ``sqlite_file``
opens, locks and checks; ``recover`` settles what a dead process left open;
``report`` is the summary ``kalshi-router journal`` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kalshi_router.errors import JournalError
from kalshi_router.journal.store import SqliteJournal
from kalshi_router.outcome import Outcome
from kalshi_router.pending import Pending

__all__ = ["IntentJournal", "JournalError", "SqliteJournal"]


class IntentJournal(Protocol):
    def taken(self, pending: Pending) -> None: ...

    def sending(self, batch: Sequence[Pending]) -> None: ...

    def settled(self, pending: Pending, outcome: Outcome) -> None: ...

    def resolve_later(self, kind: str, key: str, outcome: Outcome) -> bool:
        """An intent settled unknown was proven later (by the order tracker): record it."""
