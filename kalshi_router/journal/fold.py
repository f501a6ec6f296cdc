"""Folding the commit log (``commit_log``) into the journal's ``intents`` table, and when.

Applying commits, oldest first, gives each row they touch its state after them (``apply``): a
row taken, sent and settled within the commits folded together is written once, as settled. The
fold writes those rows, the earlier settlements ``resolved`` records replaced, and the ``seq``
of its last commit (``meta.folded``) in one transaction, so a commit is applied exactly once, and
then deletes the log's rows up to that mark. Readers apply the commits past the mark the same
way, to tables of their own (``reads``), so they see every commit at once, folded or not.

Folding costs more CPU than committing (a row and its four index entries per intent, against a
share of one log row), so it waits for the loop thread to be quiet (``Folder``, ``due``): under
a burst, the loop thread pays only for its commits, and the fold comes after, a slice of
``_SLICE`` commits per loop turn, unless the tail grows too long or too old. It runs on the loop
thread, as the commits do: a thread of its own would fight the loop thread for the GIL at every
statement. What blocks for long (checkpoints, which fsync) runs on ``sqlite_file.Checkpointer``'s
thread, which holds no GIL while it works.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from kalshi_router.journal import commit_log
from kalshi_router.journal.commit_log import Commit
from kalshi_router.journal.sqlite_file import Checkpointer

log = logging.getLogger("kalshi_router.journal")

COLUMNS = (
    "id, kind, key, ticker, payload, submitted, state, attempts, last_sent, result, outcome, "
    "settled_at"
)
_WIDTH = 12
_RESOLVED_WIDTH = 4
# Rows per multi-row statement (12 values each): one statement for many rows costs much less
# than one execution per row, and a bounded set of texts stays in sqlite3's statement cache.
_ROWS = 32
# Commits per fold transaction (about 5,000 intents at full batches): the more rows share the
# writing of each index page they touch, the cheaper each (in a journal of 200,000 intents: 45 us
# an intent at 16 commits a transaction, 28 at 512).
_CHUNK = 256
# The fold's own page cache (KiB): a transaction's dirty pages stay in memory.
CACHE_KIB = 16_384
# When the journal folds (``due``): it looks every _POLL_S while commits wait, and folds a slice
# of _SLICE commits (about 3 ms at full batches) when the writer was quiet since it last looked
# (then the next slice at once, while it stays quiet), or when the tail has grown to
# _TAIL_COMMITS (a read applies the tail, a few microseconds an intent: about 25 ms at full
# batches), or began _LAG_S ago.
_POLL_S = 0.05
_SLICE = 16
_TAIL_COMMITS = 512
_LAG_S = 1.0
_IDS = 500

_NONE = (None, None, None, None)  # last_sent, result, outcome, settled_at
Row = list[Any]
"""An ``intents`` row, COLUMNS in order."""
Earlier = tuple[int, str, bytes | bytearray, float]
"""A ``resolved`` row: the settlement a resolution replaced."""


def apply(
    commits: Sequence[Commit], base: Callable[[list[int]], Iterable[Sequence[Any]]]
) -> tuple[dict[int, Row], dict[int, Earlier]]:
    """Each row the commits touch, as they leave it, and the settlements their resolutions
    replaced. ``base`` gives the rows as they were for ids the commits did not take (a record
    of an id it has no row for is skipped: compacted away). Payloads and outcomes come out as
    ``bytearray``: sqlite3 binds that as a BLOB at once, where ``bytes`` goes through its adapter
    lookup first (which costs about as much as the rest of the row's binding)."""
    taken = {row[0] for commit in commits for row in commit.taken}
    touched: set[int] = set()
    for commit in commits:
        touched.update(i for _, _, ids in commit.sending for i in ids)
        touched.update(row[0] for row in commit.settled)
        touched.update(row[0] for row in commit.resolved)
    rows: dict[int, Row] = {row[0]: list(row) for row in base(sorted(touched - taken))}
    earlier: dict[int, Earlier] = {}
    for commit in commits:
        # In the order the writer made them: a row is taken before it is sent, sent before it
        # is settled, and settled (perhaps in this very commit) before it is resolved.
        for i, kind, key, ticker, payload, submitted in commit.taken:
            rows[i] = [i, kind, key, ticker, bytearray(payload), submitted, "taken", 0, *_NONE]
        for attempts, at, ids in commit.sending:
            for i in ids:
                if (row := rows.get(i)) is not None:
                    row[6:9] = ("sending", attempts, at)
        for i, result, outcome, at in commit.settled:
            if (row := rows.get(i)) is not None:
                row[6] = "settled"
                row[9:12] = (result, bytearray(outcome), at)
        for i, result, outcome, at in commit.resolved:
            if (row := rows.get(i)) is not None:
                earlier.setdefault(i, (i, row[9], row[10], row[11]))
                row[9:12] = (result, bytearray(outcome), at)
    return rows, earlier


def base_rows(
    conn: sqlite3.Connection, ids: list[int], *, table: str = "main.intents"
) -> list[Sequence[Any]]:
    """The rows of ``table`` (the journal's, or a reader's view of it) with these ids."""
    found: list[Sequence[Any]] = []
    for start in range(0, len(ids), _IDS):
        part = ids[start : start + _IDS]
        marks = ", ".join(["?"] * len(part))
        query = f"SELECT {COLUMNS} FROM {table} WHERE id IN ({marks})"  # noqa: S608
        found += conn.execute(query, part).fetchall()
    return found


# These repeat placeholders only: every value still goes in as a parameter.
@functools.cache
def _insert(table: str, verb: str, rows: int, width: int) -> str:
    values = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * rows)
    return f"{verb} INTO {table} VALUES {values}"


def write(
    conn: sqlite3.Connection,
    rows: Iterable[Row],
    earlier: Iterable[Earlier],
    *,
    intents: str = "main.intents",
    resolved: str = "main.resolved",
) -> None:
    """Rows into ``intents`` (replacing those with the same id) and earlier settlements into
    ``resolved`` (keeping the first one an intent had)."""
    _write(conn, _insert_rows(intents, "INSERT OR REPLACE", _WIDTH), rows, _WIDTH)
    _write(conn, _insert_rows(resolved, "INSERT OR IGNORE", _RESOLVED_WIDTH), earlier, 4)


def _insert_rows(table: str, verb: str, width: int) -> Callable[[int], str]:
    return functools.partial(_insert, table, verb, width=width)


def _write(
    conn: sqlite3.Connection, statement: Callable[[int], str], rows: Iterable[Any], width: int
) -> None:
    flat: list[Any] = [value for row in rows for value in row]
    step = _ROWS * width
    for start in range(0, len(flat), step):
        part = flat[start : start + step]
        conn.execute(statement(len(part) // width), part)


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


def fold_step(conn: sqlite3.Connection, mark: int, limit: int) -> tuple[int, int]:
    """Apply to the journal, in the transaction ``conn`` has open, up to ``limit`` commits past
    ``mark``; the new mark, and how many commits there were."""
    found = conn.execute(
        "SELECT seq, body FROM log.commits WHERE seq > ? ORDER BY seq LIMIT ?", (mark, limit)
    ).fetchall()
    if found:
        commits = [commit_log.decode(body) for _, body in found]
        rows, earlier = apply(commits, functools.partial(base_rows, conn))
        write(conn, rows.values(), earlier.values())
        mark = found[-1][0]
    return mark, len(found)


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

    It writes through a connection of its own (``conn``: the journal, its log attached), in
    one transaction per _CHUNK commits however many slices (loop turns) that takes: each page
    of a random index is then written once for many rows. Its readers see the journal as of the
    last such commit, and the log past it. ``written`` is the writer's last ``seq``
    (``wrote``), ``folded`` the committed mark. Without a running loop nothing is scheduled:
    opening and closing the journal fold whatever is left."""

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
        self._since = time.monotonic()
        self._open: tuple[int, int] | None = None
        """In an open transaction: the mark so far, and how many commits it took in."""
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
        while True:
            # A transaction the slices left open sees the log as it was when it began.
            fresh = self._open is None
            if self._slice(_CHUNK) and fresh:
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

    def _slice(self, limit: int) -> bool:
        """Fold up to ``limit`` more commits into the open transaction (opening one), and commit
        it once it has taken in _CHUNK of them or all it can see; whether it was committed with
        nothing more to see."""
        conn = self._conn
        started = time.thread_time()
        try:
            if self._open is None:
                conn.execute("BEGIN")
                self._open = (folded(conn), 0)
            mark, taken = self._open
            mark, found = fold_step(conn, mark, limit)
            self._open = (mark, taken + found)
            if found == limit and taken + found < _CHUNK:
                return False
            if taken + found == 0:
                self._open = None
                conn.execute("COMMIT")
                return True
            conn.execute("INSERT OR REPLACE INTO main.meta VALUES ('folded', ?)", (mark,))
            conn.execute("COMMIT")
            self._open = None
            self.folded = mark
            # In the journal now (and should this fail, the mark keeps them from being applied
            # twice).
            with transaction(conn):
                conn.execute("DELETE FROM log.commits WHERE seq <= ?", (mark,))
        except BaseException:
            if self._open is not None:
                self._open = None
                conn.execute("ROLLBACK")
            raise
        finally:
            self.cpu_s += time.thread_time() - started
        self.checkpointer.wake()
        return found < limit

    def _schedule(self, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(delay, self._tick) if delay else loop.call_soon(self._tick)

    def _tick(self) -> None:
        self._timer = None
        written, now = self.written, time.monotonic()
        quiet, self._seen = written == self._seen, written
        folding = due(written - self.folded, quiet=quiet, waited_s=now - self._since)
        try:
            if folding:
                self._slice(_SLICE)
            if now >= self._next_compact:
                self.compact()
            self.error = None
        except (sqlite3.Error, ValueError) as exc:
            # Nothing is lost: the log keeps every commit until a fold takes it in.
            if self.error is None:
                log.warning("journal: cannot fold the commit log yet: %s", exc)
            self.error = exc
        if self.written <= self.folded:
            self._since = now  # the tail is empty: nothing to do until the next commit
        else:
            # While it stays due, the next slice after whatever else the loop has ready.
            self._schedule(0.0 if folding and self.error is None else _POLL_S)


def due(waiting: int, *, quiet: bool, waited_s: float) -> bool:
    """Whether to fold a slice now, with ``waiting`` commits not folded yet: when the writer
    made none since the folder last looked (``quiet``: the loop thread is idle), when the tail
    is too long for cheap reads, or when it began ``waited_s`` ago, too long."""
    return waiting > 0 and (quiet or waiting >= _TAIL_COMMITS or waited_s >= _LAG_S)
