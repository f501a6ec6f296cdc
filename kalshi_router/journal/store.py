"""The intent journal in SQLite: one row per intent, from taken to settled.

On the hot path, the loop thread does not write those rows. Each commit is one row of the
journal's commit log (``commit_log``, a file beside it), holding everything since the last
commit as one JSON array: no index is touched, and the row's pages are written once. The rows
of ``intents`` come from folding the log (``fold``), which waits for the loop to be quiet or the
log to grow, and writes each row once per run of commits, in its last state, on a thread of its
own; every read sees the commits not yet folded too (``reads``). Writing each intent's row
three times, as this journal did before, kept a dozen pages of its indexes (two keyed by random
ids) dirty in every commit, on the loop thread, between the batch and its request.

Durability: both files are in WAL mode with ``synchronous=NORMAL``. A commit then appends to the
log's WAL file (a ``write``, no ``fsync``), so what is committed survives the *process* dying
(kill -9, OOM, a crash): the data is in the OS page cache and reaches the disk without us. A
power cut or a kernel crash may lose the last commits; surviving those would cost an fsync per
batch (``synchronous=FULL``), which this journal does not pay. Opening the journal folds every
commit a dead process left, before anything reads it.

When commits happen:

- ``sending`` commits before it returns, with whatever was waiting: the request is written only
  after the journal says it may be on the wire. A row taken and sent before any commit goes
  in as sending (the fold writes its row once);
- ``taken`` and ``settled`` rows wait for the next commit: a ``sending``, ``commit()`` (which the
  service calls before it acknowledges anything to a bot), or the end of the loop turn they
  came in, whichever comes first. So there is at most one commit per loop turn beside those of
  the batches sent, and none when a batch went out in it. A settled row lost in a crash only
  makes recovery look its intent up (it is still sending there), which is safe.

The files themselves (their schemas, the lock, the checks that refuse a damaged or foreign
file, the checkpointer's thread) are ``sqlite_file``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from kalshi_router.errors import JournalError
from kalshi_router.journal import commit_log, sqlite_file
from kalshi_router.journal.fold import CACHE_KIB, Folder
from kalshi_router.journal.reads import UNKNOWN, JournalReads
from kalshi_router.journal.sqlite_file import Checkpointer
from kalshi_router.outcome import Outcome, Unknown, outcome_name
from kalshi_router.pending import Pending

# About 4 log pages a commit: a checkpoint of the log per ~400 pages.
_CHECKPOINT_EVERY = 100


class SqliteJournal(JournalReads):
    """An :class:`~kalshi_router.journal.IntentJournal` in a SQLite file; see the module
    docstring. Open it with :meth:`open` (the service) or :meth:`read` (a reader beside it)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        lock: int | None,
        folder: Folder | None,
        *,
        has_log: bool,
    ) -> None:
        self.path = path
        self._conn = conn
        self._lock = lock
        self._folder = folder
        self._has_log = has_log
        self._set_up_reads()
        with self._snapshot() as reading:
            (top,) = reading.execute("SELECT coalesce(max(id), 0) FROM all_intents").fetchone()
        self._next_id: int = top + 1
        # Past every commit the log or the journal's mark knows: a seq is never used twice.
        self._seq: int = 0
        if folder is not None:
            (seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM log.commits").fetchone()
            self._seq = max(seq, folder.folded)
        self._rows: dict[Pending, int] = {}
        # What the next commit holds, as commit_log.Commit lays it out (intents and outcomes as
        # they are: the commit encodes them all in one call).
        self._taken: list[Any] = []
        self._sending: list[Any] = []
        self._settled: list[Any] = []
        self._resolved: list[Any] = []
        self._scheduled = False
        self.commits = 0
        """Transactions committed by this process (benchmarks and tests count them)."""

    # Opening.

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        exchange: str,
        keep_settled_s: float = 86_400.0,
        compact_every_s: float = 300.0,
    ) -> Self:
        """Open (or create) the journal for writing, for one process at a time, and check it;
        fold in whatever the last process left in the commit log.

        ``exchange`` names where its orders go: a journal whose unsettled intents were sent to
        another exchange is refused (looking them up here would call them absent)."""
        path = path.expanduser()
        lock = sqlite_file.lock(path)
        with contextlib.ExitStack() as failing:
            failing.callback(os.close, lock)
            conn = sqlite_file.connect(path, create=True)
            failing.callback(conn.close)
            sqlite_file.set_up(conn, path)
            sqlite_file.prepare_log(conn, path, writer=True)
            sqlite_file.attach_log(conn, path, readonly=False)
            # Used by the loop thread and the fold's writer thread, one at a time.
            folding = sqlite_file.connect(path, create=False, threaded=True)
            failing.callback(folding.close)
            sqlite_file.attach_log(folding, path, readonly=False)
            folding.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            own = sqlite_file.connect(path, create=False, threaded=True)
            failing.callback(own.close)
            sqlite_file.attach_log(own, path, readonly=False)
            checkpointer = Checkpointer(own)
            failing.pop_all()
        try:
            folder = Folder(
                folding,
                checkpointer,
                keep_settled_s=keep_settled_s,
                compact_every_s=compact_every_s,
            )
            try:
                folder.fold()
            except (sqlite3.Error, ValueError) as exc:
                raise JournalError(f"journal {path}: cannot fold its commit log: {exc}") from None
            sqlite_file.claim(conn, path, exchange)
            sqlite_file.mark_log(conn, "open")
            return cls(conn, path, lock, folder, has_log=True)
        except BaseException:
            checkpointer.close()
            folding.close()
            conn.close()
            os.close(lock)
            raise

    @classmethod
    def read(cls, path: Path) -> Self:
        """Open an existing journal to read it (the service may be writing it meanwhile)."""
        path = path.expanduser()
        if not path.exists():
            raise JournalError(f"journal {path}: no such file")
        conn = sqlite_file.connect(path, create=False, readonly=True)
        try:
            sqlite_file.check(conn, path)
            has_log = sqlite_file.prepare_log(conn, path, writer=False)
            if has_log:
                sqlite_file.attach_log(conn, path, readonly=True)
            return cls(conn, path, None, None, has_log=has_log)
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Commit what is waiting, fold it all in, and close (the file lock goes with it)."""
        with contextlib.suppress(JournalError):
            self.commit()
        try:
            if self._folder is not None:
                folder, self._folder = self._folder, None
                try:
                    with contextlib.suppress(sqlite3.Error, ValueError):
                        folder.close()
                        # Nothing left in the log: a journal without it reads the same.
                        sqlite_file.mark_log(self._conn, "closed")
                finally:
                    folder.checkpointer.close()
        finally:
            self._conn.close()
            if self._lock is not None:
                os.close(self._lock)
                self._lock = None

    # The IntentJournal protocol (the router calls these on the loop thread).

    def taken(self, pending: Pending) -> None:
        row = self._next_id
        self._next_id = row + 1
        self._rows[pending] = row
        wall = pending.submitted_wall
        self._taken.append((row, pending.kind, pending.key, pending.ticker, pending.payload, wall))
        if not self._scheduled:
            self._schedule()

    def sending(self, batch: Sequence[Pending]) -> None:
        now = time.time()
        rows = self._rows
        # One group per attempt number: a batch mixes first tries and retries only rarely.
        ids: dict[int, list[int]] = {}
        for pending in batch:
            ids.setdefault(pending.attempts, []).append(rows[pending])
        self._sending = [(attempts, now, sent) for attempts, sent in ids.items()]
        try:
            # Durable before the request is written; see the module docstring.
            self._commit()
        finally:
            self._sending = []

    def settled(self, pending: Pending, outcome: Outcome) -> None:
        row = self._rows.pop(pending, None)
        if row is None:  # taken before this journal was attached: nothing to update
            return
        self._settled.append((row, outcome_name(outcome), outcome, time.time()))
        if not self._scheduled:
            self._schedule()

    def commit(self) -> None:
        """Make every taken and settled row so far durable now (cheap when there are none)."""
        if self._taken or self._settled:
            self._commit()

    def _schedule(self) -> None:
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        self.commit()

    def _commit(self) -> None:
        """One transaction: what is waiting, as one row of the log."""
        if self._folder is None:
            raise JournalError(f"journal {self.path}: cannot write: opened to read")
        body = commit_log.encode(self._taken, self._sending, self._settled, self._resolved)
        seq = self._seq + 1
        try:
            # One statement, so its own transaction: no BEGIN and COMMIT to run around it.
            self._conn.execute("INSERT INTO log.commits VALUES (?, ?)", (seq, body))
        except sqlite3.Error as exc:
            # Loud: the dispatcher does not send a batch it could not journal.
            raise JournalError(f"journal {self.path}: cannot write: {exc}") from None
        self._seq = seq
        self._folder.wrote(seq)
        self.commits += 1
        if self.commits % _CHECKPOINT_EVERY == 0:
            self._folder.checkpointer.wake()
        self._taken.clear()
        self._settled.clear()
        self._resolved.clear()

    # Maintenance.

    def compact(self) -> int:
        """Delete settled intents older than the configured age; how many went. (The journal
        does this by itself every ``compact_every_s``, at its first look after a commit.)"""
        self.commit()
        if self._folder is None:
            raise JournalError(f"journal {self.path}: cannot write: opened to read")
        try:
            return self._folder.compact()
        except (sqlite3.Error, ValueError) as exc:
            raise JournalError(f"journal {self.path}: cannot write: {exc}") from None

    def fold(self) -> None:
        """Fold every commit into ``intents`` now (tests and tools: the journal does it by
        itself when the loop is quiet)."""
        if self._folder is not None:
            self._folder.fold()

    @property
    def fold_cpu_s(self) -> float:
        """CPU time this process spent folding (benchmarks)."""
        return 0.0 if self._folder is None else self._folder.cpu_s

    def resolve(self, outcomes: Sequence[tuple[int, Outcome]]) -> None:
        """Settle journaled intents by row id (recovery), in one transaction."""
        now = time.time()
        for row, outcome in outcomes:
            self._settled.append((row, outcome_name(outcome), outcome, now))
        self.commit()

    def resolve_later(self, kind: str, key: str, outcome: Outcome) -> bool:
        """Settle again, with ``outcome``, the newest ``kind`` intent under ``key`` that was
        settled unknown (the order tracker found it at the exchange, or proved it absent);
        False when there is none. Its unknown settlement is kept (:meth:`earlier`). Commits,
        with whatever rows were waiting (so an unknown settled this turn is found)."""
        if isinstance(outcome, Unknown):
            raise ValueError("resolve_later: an Unknown outcome resolves nothing")
        if self._folder is None:
            raise JournalError(f"journal {self.path}: cannot write: opened to read")
        body = commit_log.encode(self._taken, [], self._settled, [])
        with self._snapshot([commit_log.decode(body)]) as reading:
            found = reading.execute(UNKNOWN, (kind, key)).fetchone()
        if found is not None:
            self._resolved.append((found[0], outcome_name(outcome), outcome, time.time()))
        if self._taken or self._settled or self._resolved:
            self._commit()
        return found is not None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
