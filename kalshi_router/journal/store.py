"""The intent journal in SQLite: one row per intent, from taken to settled.

Durability: the database is in WAL mode with ``synchronous=NORMAL``. A commit then appends to
the WAL file (a ``write``, no ``fsync``), so what is committed survives the *process* dying
(kill -9, OOM, a crash): the data is in the OS page cache and reaches the disk without us. A
power cut or a kernel crash may lose the last commits; surviving those would cost an fsync per
batch (``synchronous=FULL``), which this journal does not pay.

When commits happen:

- ``sending`` commits before it returns (one transaction per batch, with whatever was waiting):
  the request is written only after the journal says it may be on the wire;
- ``taken`` and ``settled`` rows wait for one commit per loop turn (``loop.call_soon``), or for
  ``commit()``, which the service calls before it acknowledges anything to a bot.

The rows wait as flat lists and go in as multi-row statements (a batch's ``sending`` is one
``UPDATE ... IN``): per row, that is about half the CPU of one execution each. Writing runs
inline on the event loop's thread (a commit costs tens of microseconds, mostly system calls; see
``benchmarks/bench_journal.py``). Checkpoints, which copy the WAL into the database file and
fsync both (milliseconds), run on a thread of their own with its own connection, every
``_CHECKPOINT_EVERY`` commits; the loop's connection checkpoints only when the WAL has grown to
``sqlite_file._WAL_BACKSTOP`` pages, which happens only when commits never pause long enough
for the thread's checkpoints to catch up and let the WAL start over.

The file itself (its schema, the lock, the checks that refuse a damaged or foreign file, the
checkpointer's thread) is ``sqlite_file``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import msgspec

from kalshi_router.errors import JournalError
from kalshi_router.journal import sqlite_file
from kalshi_router.journal.entry import Entry, Settlement, entry_from_row, settlement_from_row
from kalshi_router.journal.sqlite_file import Checkpointer
from kalshi_router.outcome import Outcome, Unknown, outcome_name
from kalshi_router.pending import Pending

# Rows per multi-row statement. One statement for many rows costs much less than one execution
# per row (executemany), and a bounded set of texts stays in sqlite3's statement cache.
_CHUNK = 32
_INSERT_WIDTH = 6
# About 10 WAL pages per commit: a checkpoint per ~1,000 pages, as often as SQLite's default
# autocheckpoint would, but on the checkpointer's thread.
_CHECKPOINT_EVERY = 100
_SETTLE_WIDTH = 4


# These repeat placeholders only: every value still goes in as a parameter.
@functools.cache
def _insert(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, 'taken')"] * rows)
    return f"INSERT INTO intents (id, kind, key, ticker, payload, submitted, state) VALUES {values}"  # noqa: S608


@functools.cache
def _settle(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?)"] * rows)
    return (
        "UPDATE intents SET state = 'settled', result = v.column2, outcome = v.column3, "  # noqa: S608
        f"settled_at = v.column4 FROM (VALUES {values}) AS v WHERE intents.id = v.column1"
    )


@functools.cache
def _sending(rows: int) -> str:
    ids = ", ".join(["?"] * rows)
    return f"UPDATE intents SET state = 'sending', attempts = ?, last_sent = ? WHERE id IN ({ids})"  # noqa: S608


# Whole statements, not templates: every value goes in as a parameter.
_FIND = (
    "SELECT id, kind, key, ticker, payload, submitted, state, attempts, last_sent, result, "
    "outcome, settled_at FROM intents WHERE key = ? ORDER BY id DESC LIMIT 1"
)
_OPEN = (
    "SELECT id, kind, key, ticker, payload, submitted, state, attempts, last_sent, result, "
    "outcome, settled_at FROM intents WHERE state != 'settled' ORDER BY id"
)
_UNRESOLVED = (
    "SELECT id, kind, key, ticker, payload, submitted, state, attempts, last_sent, result, "
    "outcome, settled_at FROM intents WHERE state != 'settled' OR result = 'unknown' ORDER BY id"
)
# An order's intents (GET /v1/orders/{key}): its creates by client_order_id, the rest by order id.
_HISTORY = (
    "SELECT id, kind, key, ticker, payload, submitted, state, attempts, last_sent, result, "
    "outcome, settled_at FROM intents WHERE (kind = 'create' AND key = ?) "
    "OR (kind != 'create' AND key = ?) ORDER BY id DESC LIMIT ?"
)
_HISTORY_COUNT = (
    "SELECT count(*) FROM intents WHERE (kind = 'create' AND key = ?) "
    "OR (kind != 'create' AND key = ?)"
)
# The create that made an order, found by the order id in its outcome through an index of its
# own (``sqlite_file.PLACED_INDEX``).
_PLACED = (
    "SELECT id, kind, key, ticker, payload, submitted, state, attempts, last_sent, result, "
    "outcome, settled_at FROM intents WHERE kind = 'create' AND result = 'accepted' "
    "AND json_extract(CAST(outcome AS TEXT), '$.order_id') = ? ORDER BY id DESC LIMIT 1"
)
# The newest intent of a kind under a key that was settled unknown.
_UNKNOWN = (
    "SELECT id, result, outcome, settled_at FROM intents WHERE kind = ? AND key = ? "
    "AND state = 'settled' AND result = 'unknown' ORDER BY id DESC LIMIT 1"
)
_encode = msgspec.json.Encoder(decimal_format="string").encode


class SqliteJournal:
    """An :class:`~kalshi_router.journal.IntentJournal` in a SQLite file; see the module
    docstring. Open it with :meth:`open` (the service) or :meth:`read` (a reader beside it)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        lock: int | None,
        checkpointer: Checkpointer | None,
        *,
        keep_settled_s: float,
        compact_every_s: float,
    ) -> None:
        self.path = path
        self._conn = conn
        self._lock = lock
        self._checkpointer = checkpointer
        self._keep_settled_s = keep_settled_s
        self._compact_every_s = compact_every_s
        self._next_compact = time.monotonic() + compact_every_s
        (top,) = conn.execute("SELECT coalesce(max(id), 0) FROM intents").fetchone()
        self._next_id: int = top + 1
        self._rows: dict[Pending, int] = {}
        # Flat: _INSERT_WIDTH (_SETTLE_WIDTH) values per row, as the multi-row statements take them.
        self._inserts: list[Any] = []
        self._settles: list[Any] = []
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
        """Open (or create) the journal for writing, for one process at a time, and check it.

        ``exchange`` names where its orders go: a journal whose unsettled intents were sent to
        another exchange is refused (looking them up here would call them absent)."""
        path = path.expanduser()
        lock = sqlite_file.lock(path)
        try:
            conn = sqlite_file.connect(path, create=True)
            try:
                sqlite_file.set_up(conn, path)
                sqlite_file.claim(conn, path, exchange)
                checkpointer = Checkpointer(sqlite_file.connect(path, create=False, threaded=True))
            except BaseException:
                conn.close()
                raise
        except BaseException:
            os.close(lock)
            raise
        return cls(
            conn,
            path,
            lock,
            checkpointer,
            keep_settled_s=keep_settled_s,
            compact_every_s=compact_every_s,
        )

    @classmethod
    def read(cls, path: Path) -> Self:
        """Open an existing journal to read it (the service may be writing it meanwhile)."""
        path = path.expanduser()
        if not path.exists():
            raise JournalError(f"journal {path}: no such file")
        conn = sqlite_file.connect(path, create=False, readonly=True)
        try:
            sqlite_file.check(conn, path)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, None, None, keep_settled_s=math.inf, compact_every_s=math.inf)

    def close(self) -> None:
        """Commit what is waiting and close (the file lock goes with it)."""
        with contextlib.suppress(sqlite3.Error):
            self.commit()
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self._conn.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # The IntentJournal protocol (the router calls these on the loop thread).

    def taken(self, pending: Pending) -> None:
        row = self._next_id
        self._next_id = row + 1
        self._rows[pending] = row
        self._inserts += (
            row,
            pending.kind,
            pending.key,
            pending.ticker,
            _encode(pending.payload),
            pending.submitted_wall,
        )
        if not self._scheduled:
            self._schedule()

    def sending(self, batch: Sequence[Pending]) -> None:
        now = time.time()
        rows = self._rows
        # One statement per attempt number: a batch mixes first tries and retries only rarely.
        ids: dict[int, list[int]] = {}
        for pending in batch:
            ids.setdefault(pending.attempts, []).append(rows[pending])
        # Durable before the request is written; see the module docstring.
        with self._transaction():
            for attempts, rows_sent in ids.items():
                for start in range(0, len(rows_sent), _CHUNK):
                    part = rows_sent[start : start + _CHUNK]
                    self._conn.execute(_sending(len(part)), (attempts, now, *part))

    def settled(self, pending: Pending, outcome: Outcome) -> None:
        row = self._rows.pop(pending, None)
        if row is None:  # taken before this journal was attached: nothing to update
            return
        self._settles += (row, outcome_name(outcome), _encode(outcome), time.time())
        if not self._scheduled:
            self._schedule()

    def commit(self) -> None:
        """Make every taken and settled row so far durable now (cheap when there are none)."""
        if self._inserts or self._settles:
            with self._transaction():
                pass

    def _schedule(self) -> None:
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self._turn_ended)

    def _turn_ended(self) -> None:
        self._scheduled = False
        self.commit()
        if time.monotonic() >= self._next_compact:
            self.compact()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction holding the waiting rows (inserts first) and the caller's writes."""
        conn = self._conn
        try:
            conn.execute("BEGIN")
            try:
                self._write(_insert, self._inserts, _INSERT_WIDTH)
                self._write(_settle, self._settles, _SETTLE_WIDTH)
                yield
                conn.execute("COMMIT")
                self.commits += 1
                if self.commits % _CHECKPOINT_EVERY == 0 and self._checkpointer is not None:
                    self._checkpointer.wake()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            # Loud: the dispatcher does not send a batch it could not journal.
            raise JournalError(f"journal {self.path}: cannot write: {exc}") from None
        self._inserts.clear()
        self._settles.clear()

    def _write(self, statement: Callable[[int], str], values: list[Any], width: int) -> None:
        """``values`` (``width`` per row) in statements of up to _CHUNK rows each."""
        step = _CHUNK * width
        for start in range(0, len(values), step):
            part = values[start : start + step]
            self._conn.execute(statement(len(part) // width), part)

    # Maintenance and reading.

    def compact(self) -> int:
        """Delete settled intents older than the configured age; how many went."""
        self._next_compact = time.monotonic() + self._compact_every_s
        cutoff = time.time() - self._keep_settled_s
        with self._transaction():
            cursor = self._conn.execute(
                "DELETE FROM intents WHERE state = 'settled' AND settled_at < ?", (cutoff,)
            )
            deleted = cursor.rowcount
            self._conn.execute("DELETE FROM resolved WHERE id NOT IN (SELECT id FROM intents)")
        return deleted

    def resolve(self, outcomes: Sequence[tuple[int, Outcome]]) -> None:
        """Settle journaled intents by row id (recovery), in one transaction."""
        now = time.time()
        for row, outcome in outcomes:
            self._settles += (row, outcome_name(outcome), _encode(outcome), now)
        self.commit()

    def resolve_later(self, kind: str, key: str, outcome: Outcome) -> bool:
        """Settle again, with ``outcome``, the newest ``kind`` intent under ``key`` that was
        settled unknown (the order tracker found it at the exchange, or proved it absent);
        False when there is none. Its unknown settlement is kept (:meth:`earlier`). Commits,
        with whatever rows were waiting (so an unknown settled this turn is found)."""
        if isinstance(outcome, Unknown):
            raise ValueError("resolve_later: an Unknown outcome resolves nothing")
        with self._transaction():
            row = self._conn.execute(_UNKNOWN, (kind, key)).fetchone()
            if row is not None:
                self._conn.execute("INSERT OR IGNORE INTO resolved VALUES (?, ?, ?, ?)", row)
                self._conn.execute(
                    "UPDATE intents SET result = ?, outcome = ?, settled_at = ? WHERE id = ?",
                    (outcome_name(outcome), _encode(outcome), time.time(), row[0]),
                )
        return row is not None

    def earlier(self, entry_id: int) -> Settlement | None:
        """The settlement :meth:`resolve_later` replaced (its unknown), if it replaced one."""
        if not sqlite_file.has_table(self._conn, "resolved"):
            return None
        row = self._conn.execute(
            "SELECT result, outcome, settled_at FROM resolved WHERE id = ?", (entry_id,)
        ).fetchone()
        return None if row is None else settlement_from_row(row)

    def resolved_later(self) -> int:
        """How many intents settled unknown were resolved later."""
        if not sqlite_file.has_table(self._conn, "resolved"):
            return 0
        (count,) = self._conn.execute("SELECT count(*) FROM resolved").fetchone()
        return int(count)

    def find(self, key: str) -> Entry | None:
        """The newest intent journaled under ``key`` (client_order_id or order id)."""
        row = self._conn.execute(_FIND, (key,)).fetchone()
        return None if row is None else entry_from_row(row)

    def history(
        self, client_order_id: str | None, order_id: str | None, limit: int
    ) -> tuple[list[Entry], int]:
        """One order's newest ``limit`` intents, oldest first, and how many it has in all: its
        creates under ``client_order_id``, its cancels, amends and decreases under ``order_id``."""
        keys = (client_order_id, order_id)
        rows = self._conn.execute(_HISTORY, (*keys, limit)).fetchall()
        (total,) = self._conn.execute(_HISTORY_COUNT, keys).fetchone()
        return [entry_from_row(row) for row in reversed(rows)], total

    def placed(self, order_id: str) -> Entry | None:
        """The accepted create whose outcome is the order ``order_id``."""
        row = self._conn.execute(_PLACED, (order_id,)).fetchone()
        return None if row is None else entry_from_row(row)

    def open_entries(self) -> list[Entry]:
        """Every intent not settled (taken or sending), oldest first."""
        rows = self._conn.execute(_OPEN).fetchall()
        return [entry_from_row(row) for row in rows]

    def unresolved(self) -> list[Entry]:
        """Not settled, or settled unknown: the ones someone must look up."""
        rows = self._conn.execute(_UNRESOLVED).fetchall()
        return [entry_from_row(row) for row in rows]

    def counts(self) -> dict[tuple[str, str | None], int]:
        """Intents by (state, outcome kind)."""
        rows = self._conn.execute(
            "SELECT state, result, count(*) FROM intents GROUP BY state, result"
        ).fetchall()
        return {(state, result): n for state, result, n in rows}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
