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
burst, the loop thread pays only for its commits, and the fold comes after, unless the tail
grows too long or too old. Reading the log and gathering a run is Python, on the loop thread, a
step (_SLICE commits) per loop turn; writing it is SQLite's work, on a thread of its own
(``RunWriter``), which holds the GIL only to bind each row's values: a thread that also ran the
Python part fought the loop thread for the GIL at every row, and the loop thread writing the
runs itself paid for every index entry between two answers. What blocks for long (checkpoints,
which fsync) runs on ``sqlite_file.Checkpointer``'s thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
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
# has been quiet for _POLL_S, it reads step after step (_SLICE commits, about 0.3 ms at full
# batches), runs of whatever there is. While the writer is busy, it folds only once the tail has
# grown to _TAIL_COMMITS (a read applies the tail, a few microseconds an intent: about 25 ms at
# full batches) or began _LAG_S ago, in whole runs (so most rows are written once, settled), and
# reads only in the time the loop thread would have slept (``_credit``: looked at every
# _IDLE_POLL_S, at most _CREDIT_S saved up) plus _SHARE of its time, so that a step rarely
# delays an answer the loop is waiting for. While a run is being written, it looks every
# _WRITING_POLL_S for the writer to be done.
_POLL_S = 0.05
_IDLE_POLL_S = 0.001
_SLICE = 4
_WRITING_POLL_S = 0.01
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
    """Folds the log into the journal when it is due (see the module docstring), and compacts
    the journal every ``compact_every_s``.

    It reads and writes through a connection of its own (``conn``: the journal, its log
    attached). A step, on the loop thread, reads commits past those it holds (``_changes``, from
    the committed mark on) until it has a whole run (``whole``); the run's statements then go to
    ``RunWriter``'s thread, which commits them with the run's mark; the next step takes that
    mark (``_collect``). Its readers see the journal as of the last such commit, and the log past
    it. ``written`` is the writer's last ``seq`` (``wrote``), ``folded`` the committed mark.
    Without a running loop nothing is scheduled: opening and closing the journal fold whatever
    is left, on the caller's thread."""

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
        self._caught_up = False
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._writer = RunWriter(conn, checkpointer)
        self._cpu_s = 0.0
        self.error: Exception | None = None
        """The last scheduled fold's error, if it failed (the next one tries again)."""

    @property
    def cpu_s(self) -> float:
        """CPU time spent folding, on either thread (benchmarks)."""
        return self._cpu_s + self._writer.cpu_s

    def wrote(self, seq: int) -> None:
        """The writer committed ``seq``."""
        self.written = seq
        if self._timer is None:
            self._schedule(_POLL_S)

    def fold(self) -> int:
        """Fold every commit written so far, now, on this thread; the new mark."""
        self._writer.idle.wait()
        self._collect()
        while not self._step(_SLICE, eager=True, threaded=False):
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
            self._writer.close()
            self._conn.close()

    def _collect(self) -> None:
        """Take the mark (or the error) of the run the writer's thread finished, if any."""
        if (done := self._writer.take()) is not None:
            mark, error = done
            if error is not None:
                raise error
            self.folded = mark

    def _step(self, commits: int, *, eager: bool, threaded: bool) -> bool:
        """Read up to ``commits`` more commits; once the run is whole, write it (``threaded``:
        hand it to the writer's thread); whether there was nothing (more) to fold. ``eager``: a
        run is whole once there is nothing more to read, not only when ``whole`` says."""
        started = time.thread_time()
        try:
            changes = self._read(commits, eager=eager)
            if changes is None:
                return False
            self._changes = None
            if not changes.commits:
                return True
            run = (changes.mark, changes.statements())
            if threaded:
                self._writer.submit(*run)
            else:
                write_run(self._conn, *run)
                self.folded = changes.mark
                self.checkpointer.wake()
            return False  # more may have come meanwhile: the next step reads them, or none
        except BaseException:
            # Nothing is lost: the log keeps every commit until a fold takes it in, and the
            # next step reads them again from the committed mark.
            self._changes = None
            raise
        finally:
            self._cpu_s += time.thread_time() - started

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
        busy = not self._writer.idle.is_set()
        folding = due(self.written - self.folded, quiet=quiet, waited_s=now - self._since)
        if folding and not quiet:
            self._credit = min(_CREDIT_S, self._credit + max(slept, 0.0) + wall * _SHARE)
        stepped = folding and not busy and (quiet or self._credit > 0)
        try:
            if not busy:
                self._collect()
            if stepped:
                spent = self._cpu_s
                self._step(_SLICE, eager=quiet, threaded=True)
                self._credit -= self._cpu_s - spent
            if now >= self._next_compact and not busy:
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
        elif busy or not self._writer.idle.is_set():
            self._schedule(_WRITING_POLL_S)
        elif not folding or self.error is not None or self._waits():
            self._schedule(_POLL_S)
        elif stepped and (quiet or self._credit > 0):
            self._schedule(0.0)  # the next step after whatever else the loop has ready
        else:
            self._schedule(_IDLE_POLL_S)  # to see whether the loop slept meanwhile

    def _waits(self) -> bool:
        """Read all there is, and the run is not whole yet: more commits must come first."""
        return self._changes is not None and self._caught_up


def write_run(conn: sqlite3.Connection, mark: int, statements: list[Statement]) -> None:
    """A run's statements and its mark in one transaction; then the log's rows up to the mark
    go (should that fail, the mark keeps them from being applied twice, and the next run's
    delete takes them)."""
    with transaction(conn):
        for sql, params in statements:
            conn.executemany(sql, params)
        conn.execute("INSERT OR REPLACE INTO main.meta VALUES ('folded', ?)", (mark,))
    with contextlib.suppress(sqlite3.Error), transaction(conn):
        conn.execute("DELETE FROM log.commits WHERE seq <= ?", (mark,))


class RunWriter:
    """Writes the runs the loop thread hands it (``submit``) on a thread of its own, one at a
    time: SQLite releases the GIL while it works on an execution, and takes it back only to bind
    the next one's values (32 rows to an insert), so the loop thread keeps running meanwhile
    (it is never kept waiting for more than that, and the thread mostly gets the GIL when the
    loop sleeps). ``idle`` is set when no run is being written; ``take`` gives the last one's
    mark, and its error if it failed (then nothing of it was written)."""

    def __init__(self, conn: sqlite3.Connection, checkpointer: Checkpointer) -> None:
        self._conn = conn
        self._checkpointer = checkpointer
        self._runs: queue.SimpleQueue[tuple[int, list[Statement]] | None] = queue.SimpleQueue()
        self._done: tuple[int, Exception | None] | None = None
        self.idle = threading.Event()
        self.idle.set()
        self.cpu_s = 0.0
        self._thread: threading.Thread | None = None

    def submit(self, mark: int, statements: list[Statement]) -> None:
        if self._thread is None:  # started at the first run: opening and closing fold inline
            # A daemon: a journal nobody closed must not keep the interpreter from exiting.
            self._thread = threading.Thread(target=self._run, name="journal-fold", daemon=True)
            self._thread.start()
        self.idle.clear()
        self._runs.put((mark, statements))

    def take(self) -> tuple[int, Exception | None] | None:
        done, self._done = self._done, None
        return done

    def close(self) -> None:
        if self._thread is not None:
            self._runs.put(None)
            self._thread.join()

    def _run(self) -> None:
        while (run := self._runs.get()) is not None:
            started = time.thread_time()
            try:
                write_run(self._conn, *run)
                self._done = (run[0], None)
            except Exception as exc:  # the loop thread raises it (``_collect``); this one lives on
                self._done = (run[0], exc)
            finally:
                self.cpu_s += time.thread_time() - started
                self.idle.set()
            self._checkpointer.wake()


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
