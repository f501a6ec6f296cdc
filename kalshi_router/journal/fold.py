"""Folding the commit log (``commit_log``) into the journal's ``intents`` table, and when.

The fold reads the commits past the journal's mark, oldest first, and gathers what they do to
its rows (``rows.Changes``): each row's last state only, so a row taken, sent and settled within
the commits folded together is inserted once, as settled, and a row taken earlier is updated in
place. It writes a run of commits (up to _CHUNK, or all there are) in one transaction with the
``seq`` of the last one (``meta.folded``), so a commit is applied exactly once, and then deletes
the log's rows up to that mark. Readers apply the commits past the mark to tables of their own
(``reads``), so they see every commit at once, folded or not.

Folding costs more CPU than committing (a row and its index entries per intent, against a share
of one log row), so it waits for the loop thread to be quiet (``Folder``, ``due``): under a
burst, the loop thread pays only for its commits, and the fold comes after, a step per loop turn
(_SLICE commits read, or _SLICE_ROWS rows written), unless the tail grows too long or too old.
It runs on the loop thread, as the commits do: a thread of its own would fight the loop thread
for the GIL at every statement. What blocks for long (checkpoints, which fsync) runs on
``sqlite_file.Checkpointer``'s thread, which holds no GIL while it works.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator

from kalshi_router.journal import commit_log
from kalshi_router.journal.rows import Changes, Statement
from kalshi_router.journal.sqlite_file import Checkpointer

log = logging.getLogger("kalshi_router.journal")

# Commits per fold transaction while the writer is busy (about 5,000 intents at full batches):
# the more rows share the writing of each index page they touch, the cheaper each. A run that
# took many rows it has not settled yet (a burst queued at once) reads on, up to _LONG_RUN
# commits or _LONG_RUN_ROWS rows, until no more than 1/_OPEN_SHARE of them are open: each row
# it writes open is written again when it settles.
_CHUNK = 256
_LONG_RUN = 2048
_LONG_RUN_ROWS = 100_000
_OPEN_SHARE = 4
# The fold's own page cache (KiB): a transaction's dirty pages stay in memory.
CACHE_KIB = 16_384
# When the journal folds (``due``): it looks every _POLL_S while commits wait. Once the writer
# has been quiet for _POLL_S, it folds step after step (_SLICE commits read, about 0.2 ms at full
# batches, or _SLICE_ROWS rows written, about 1 ms), runs of whatever there is. While the writer
# is busy, it folds only once the tail has grown to _TAIL_COMMITS (a read applies the tail, a few
# microseconds an intent: about 25 ms at full batches) or began _LAG_S ago, in runs of _CHUNK
# commits (so most rows are written once, settled), and only in the time the loop thread would
# have slept (``_credit``: looked at every _IDLE_POLL_S, at most _CREDIT_S saved up) plus
# _SHARE of its time, so that a step rarely delays an answer the loop is waiting for.
_POLL_S = 0.05
_IDLE_POLL_S = 0.001
_SLICE = 4
_SLICE_ROWS = 64
_TAIL_COMMITS = 512
_LAG_S = 1.0
_CREDIT_S = 0.005
_SHARE = 0.2


def folded(conn: sqlite3.Connection) -> int:
    """The ``seq`` of the last commit folded into the journal (0: none)."""
    row = conn.execute("SELECT value FROM main.meta WHERE name = 'folded'").fetchone()
    return 0 if row is None else int(row[0])


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # Deferred: BEGIN IMMEDIATE would take a write lock on every attached file, the log's too.
    conn.execute("BEGIN")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def compact(conn: sqlite3.Connection, cutoff: float) -> int:
    """Delete intents settled before ``cutoff`` (Unix seconds), and what ``resolved`` holds of
    them; how many intents went."""
    with transaction(conn):
        deleted = conn.execute(
            "DELETE FROM main.intents WHERE state = 'settled' AND settled_at < ?", (cutoff,)
        ).rowcount
        conn.execute("DELETE FROM main.resolved WHERE id NOT IN (SELECT id FROM main.intents)")
    return int(deleted)


class Folder:
    """Folds the log into the journal on the loop thread when it is due (see the module
    docstring), and compacts the journal every ``compact_every_s``.

    It writes through a connection of its own (``conn``: the journal, its log attached). A step
    reads commits past those it holds (``_changes``, from the committed mark on) until it has a
    run of _CHUNK or all there are; then the steps write the run's statements (``_plan``) in
    one transaction, however many loop turns that takes, and commit it with its mark. Its
    readers see the journal as of the last such commit, and the log past it. ``written`` is the
    writer's last ``seq`` (``wrote``), ``folded`` the committed mark. Without a running loop
    nothing is scheduled: opening and closing the journal fold whatever is left."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        checkpointer: Checkpointer,
        *,
        keep_settled_s: float,
        compact_every_s: float,
    ) -> None:
        self._conn = conn
        self.checkpointer = checkpointer
        self._keep_settled_s = keep_settled_s
        self._compact_every_s = compact_every_s
        self._next_compact = time.monotonic() + compact_every_s
        self.folded = folded(conn)
        self.written = self._seen = self.folded
        self._since = self._changed = self._at = time.monotonic()
        self._cpu_at = time.thread_time()
        self._credit = 0.0
        self._changes: Changes | None = None
        """The commits read and not yet written, past ``folded``."""
        self._plan: tuple[int, list[Statement]] | None = None
        """In an open transaction: the run's mark, and the statements left to run (the first
        one from ``_done``)."""
        self._done = 0
        self._caught_up = False
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self.cpu_s = 0.0
        """CPU time spent folding (benchmarks)."""
        self.error: Exception | None = None
        """The last scheduled fold's error, if it failed (the next one tries again)."""

    def wrote(self, seq: int) -> None:
        """The writer committed ``seq``."""
        self.written = seq
        if self._timer is None:
            self._schedule(_POLL_S)

    def fold(self) -> int:
        """Fold every commit written so far, now; the new mark."""
        while not self._step(_SLICE, None, eager=True):
            pass
        return self.folded

    def compact(self) -> int:
        """Fold, then delete settled intents older than the configured age, now; how many
        went."""
        self.fold()
        self._next_compact = time.monotonic() + self._compact_every_s
        return compact(self._conn, time.time() - self._keep_settled_s)

    def close(self) -> None:
        """Fold what is left, and close the connection; nothing is scheduled after."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            self.fold()
        finally:
            self._conn.close()

    def _step(self, commits: int, rows: int | None, *, eager: bool) -> bool:
        """Read up to ``commits`` more commits, or, once the run is whole, write up to ``rows``
        more rows of it (None: all) and commit it when they are all in; whether it found nothing
        (more) to fold. ``eager``: a run is whole once
        there is nothing more to read, not only at _CHUNK commits."""
        started = time.thread_time()
        try:
            if self._plan is None:
                changes = self._read(commits, eager=eager)
                if changes is None:
                    return False
                if not changes.commits:
                    self._changes = None
                    return True
                self._conn.execute("BEGIN")
                self._plan, self._done = (changes.mark, changes.statements()), 0
            return self._write(*self._plan, rows)
        except BaseException:
            # Nothing is lost: the log keeps every commit until a fold takes it in, and the
            # next step reads them again from the committed mark.
            self._changes = self._plan = None
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        finally:
            self.cpu_s += time.thread_time() - started

    def _read(self, limit: int, *, eager: bool) -> Changes | None:
        """Up to ``limit`` more commits into ``_changes``; those changes once the run is whole
        (None: not yet)."""
        changes = self._changes
        if changes is None:
            changes = self._changes = Changes(self.folded)
        found = self._conn.execute(
            "SELECT seq, body FROM log.commits WHERE seq > ? ORDER BY seq LIMIT ?",
            (changes.mark, limit),
        ).fetchall()
        for seq, body in found:
            changes.add(seq, commit_log.decode(body))
        self._caught_up = len(found) < limit
        return changes if whole(changes, caught_up=self._caught_up, eager=eager) else None

    def _write(self, mark: int, plan: list[Statement], rows: int | None) -> bool:
        conn = self._conn
        while plan:
            sql, params = plan[0]
            end = len(params) if rows is None else min(len(params), self._done + rows)
            conn.executemany(sql, params[self._done : end])
            if rows is not None:
                rows -= end - self._done
            if end < len(params):
                self._done = end
                return False
            plan.pop(0)
            self._done = 0
            if rows == 0 and plan:
                return False
        conn.execute("INSERT OR REPLACE INTO main.meta VALUES ('folded', ?)", (mark,))
        conn.execute("COMMIT")
        self._changes = self._plan = None
        self.folded = mark
        # In the journal now (and should this fail, the mark keeps them from being applied
        # twice).
        with transaction(conn):
            conn.execute("DELETE FROM log.commits WHERE seq <= ?", (mark,))
        self.checkpointer.wake()
        return False  # more may have come meanwhile: the next step reads them, or finds none

    def _schedule(self, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(delay, self._tick) if delay else loop.call_soon(self._tick)

    def _tick(self) -> None:
        self._timer = None
        now, cpu = time.monotonic(), time.thread_time()
        wall, slept = now - self._at, (now - self._at) - (cpu - self._cpu_at)
        if self.written != self._seen:
            self._seen, self._changed = self.written, now
        quiet = now - self._changed >= _POLL_S
        folding = due(self.written - self.folded, quiet=quiet, waited_s=now - self._since)
        if folding and not quiet:
            self._credit = min(_CREDIT_S, self._credit + max(slept, 0.0) + wall * _SHARE)
        stepped = folding and (quiet or self._credit > 0)
        try:
            if stepped:
                spent = self.cpu_s
                self._step(_SLICE, _SLICE_ROWS, eager=quiet)
                self._credit -= self.cpu_s - spent
            if now >= self._next_compact:
                self.compact()
            self.error = None
        except (sqlite3.Error, ValueError) as exc:
            # Nothing is lost: the log keeps every commit until a fold takes it in.
            if self.error is None:
                log.warning("journal: cannot fold the commit log yet: %s", exc)
            self.error = exc
        self._at, self._cpu_at = time.monotonic(), time.thread_time()
        if self.written <= self.folded:
            self._since = now  # the tail is empty: nothing to do until the next commit
            self._credit = 0.0
        elif not folding or self.error is not None or self._waits():
            self._schedule(_POLL_S)
        elif stepped and (quiet or self._credit > 0):
            self._schedule(0.0)  # the next step after whatever else the loop has ready
        else:
            self._schedule(_IDLE_POLL_S)  # to see whether the loop slept meanwhile

    def _waits(self) -> bool:
        """Read all there is, and the run is not whole yet: more commits must come first."""
        return self._plan is None and self._changes is not None and self._caught_up


def whole(changes: Changes, *, caught_up: bool, eager: bool) -> bool:
    """Whether a run is ready to be written (see _CHUNK): ``eager`` (the writer is quiet, or
    everything is to be folded now), once there is nothing more to read."""
    if eager and caught_up:
        return True
    if changes.commits >= _LONG_RUN or changes.rows >= _LONG_RUN_ROWS:
        return True
    return changes.commits >= _CHUNK and changes.open * _OPEN_SHARE <= changes.rows


def due(waiting: int, *, quiet: bool, waited_s: float) -> bool:
    """Whether to fold now, with ``waiting`` commits not folded yet: when the writer made none
    for _POLL_S (``quiet``: the loop thread is idle), when the tail is too long for cheap reads,
    or when it began ``waited_s`` ago, too long."""
    return waiting > 0 and (quiet or waiting >= _TAIL_COMMITS or waited_s >= _LAG_S)
