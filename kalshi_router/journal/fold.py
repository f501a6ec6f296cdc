"""Folding the commit log (``commit_log``) into the journal's ``intents`` table, and the thread
that does it while the journal is open.

Applying commits, oldest first, gives each row they touch its state after them (``apply``): a
row taken, sent and settled within the commits folded together is written once, as settled. The
fold writes those rows, the earlier settlements ``resolved`` records replaced, and the ``seq``
of its last commit (``meta.folded``) in one transaction, so a commit is applied exactly once; the
writer deletes log rows up to that mark later. Readers apply the commits past the mark the same
way, to tables of their own (``reads``), so they see every commit at once, folded or not.

The folder's thread has its own connection, and the only one that writes ``intents`` while the
journal is open. It folds when the loop thread has been quiet for a moment, or when the tail has
grown long or old (``due``): under a burst, the loop thread then pays only for its commits, and
the fold (which costs more than the commits, in CPU) waits for the burst to end, up to a bound.
It folds in transactions of at most ``_CHUNK`` commits, then checkpoints the log (copying WAL
frames and fsyncing, off the loop thread); it compacts too. Its Python work (decoding,
applying) holds the GIL a chunk at a time; SQLite releases the GIL while it writes.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from kalshi_router.journal import commit_log
from kalshi_router.journal.commit_log import Commit

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
# Commits per fold transaction: enough to write a page of a random index once for many rows,
# few enough that a transaction (and the GIL its Python work holds) stays short.
_CHUNK = 64
# When the folder's thread folds (``due``): it looks every _POLL_S, and folds when the writer was
# quiet since it last looked, or the tail has grown to _TAIL_COMMITS (a read applies the tail, at
# a few microseconds an intent: about 10 ms for 2,500 intents), or _LAG_S after it began.
_POLL_S = 0.05
_TAIL_COMMITS = 128
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


def base_rows(conn: sqlite3.Connection, ids: list[int]) -> list[Sequence[Any]]:
    """The journal's rows (main.intents) with these ids."""
    found: list[Sequence[Any]] = []
    for start in range(0, len(ids), _IDS):
        part = ids[start : start + _IDS]
        marks = ", ".join(["?"] * len(part))
        query = f"SELECT {COLUMNS} FROM main.intents WHERE id IN ({marks})"  # noqa: S608
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


def fold(conn: sqlite3.Connection) -> int:
    """Fold every commit past the mark into the journal, ``_CHUNK`` per transaction; the mark."""
    while True:
        with transaction(conn):
            mark = folded(conn)
            found = conn.execute(
                "SELECT seq, body FROM log.commits WHERE seq > ? ORDER BY seq LIMIT ?",
                (mark, _CHUNK),
            ).fetchall()
            if found:
                commits = [commit_log.decode(body) for _, body in found]
                rows, earlier = apply(commits, functools.partial(base_rows, conn))
                write(conn, rows.values(), earlier.values())
                mark = found[-1][0]
                conn.execute("INSERT OR REPLACE INTO main.meta VALUES ('folded', ?)", (mark,))
        if len(found) < _CHUNK:
            return mark


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
    """Folds the log into the journal on a thread of its own (see the module docstring), or
    on the caller's thread with :meth:`fold` and :meth:`compact` (one at a time: a lock).

    ``written`` is the writer's last ``seq`` (it sets it), ``folded`` the folder's mark (the
    writer deletes log rows up to it)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        keep_settled_s: float,
        compact_every_s: float,
    ) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._keep_settled_s = keep_settled_s
        self._compact_every_s = compact_every_s
        self._next_compact = time.monotonic() + compact_every_s
        self.folded = folded(conn)
        self.written = self.folded
        self.passes = 0
        """Passes of the thread (tests wait on them)."""
        self.cpu_s = 0.0
        """CPU time spent folding, on whichever thread (benchmarks)."""
        self.error: Exception | None = None
        """The last pass's error, if it failed (the next one tries again)."""
        # A daemon: a journal nobody closed must not keep the interpreter from exiting.
        self._thread = threading.Thread(target=self._run, name="journal-fold", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def fold(self, *, checkpoint: bool = False) -> int:
        """Fold everything written so far, now, on this thread; the new mark."""
        with self._lock:
            started = time.thread_time()
            try:
                self.folded = fold(self._conn)
                if checkpoint:
                    # Copies the log's WAL into its file, without blocking the loop's writes.
                    self._conn.execute("PRAGMA log.wal_checkpoint(PASSIVE)")
            finally:
                self.cpu_s += time.thread_time() - started
            return self.folded

    def compact(self) -> int:
        """Fold, then delete settled intents older than the configured age, now; how many
        went."""
        with self._lock:
            self.folded = fold(self._conn)
            self._next_compact = time.monotonic() + self._compact_every_s
            return compact(self._conn, time.time() - self._keep_settled_s)

    def close(self) -> None:
        """Stop the thread (after its pass, if one is running) and fold what is left."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            self.fold()
        finally:
            self._conn.close()

    def _run(self) -> None:
        seen, since = self.written, time.monotonic()
        while not self._stop.wait(_POLL_S):
            written, now = self.written, time.monotonic()
            waiting = written - self.folded
            if waiting <= 0:
                since = now
            try:
                if due(waiting, quiet=written == seen, waited_s=now - since):
                    self.fold(checkpoint=True)
                    since = now
                if now >= self._next_compact:
                    self.compact()
                self.error = None
            except Exception as exc:
                # Nothing is lost: the log keeps every commit until a fold takes it in.
                if self.error is None:
                    log.warning("journal: cannot fold the commit log yet: %s", exc, exc_info=exc)
                self.error = exc
            seen = written
            self.passes += 1


def due(waiting: int, *, quiet: bool, waited_s: float) -> bool:
    """Whether the folder's thread folds now, with ``waiting`` commits not folded yet: when the
    writer made none since the thread last looked (``quiet``: the loop thread is idle), when
    the tail is too long for cheap reads, or when it began ``waited_s`` ago, too long."""
    return waiting > 0 and (quiet or waiting >= _TAIL_COMMITS or waited_s >= _LAG_S)
