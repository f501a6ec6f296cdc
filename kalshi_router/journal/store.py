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
``_WAL_BACKSTOP`` pages, which happens only when commits never pause long enough for the
thread's checkpoints to catch up and let the WAL start over.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Self, TypeAlias

import msgspec

from kalshi_router.accumulator import Pending
from kalshi_router.errors import KalshiRouterError
from kalshi_router.outcome import Outcome, outcome_name

State: TypeAlias = Literal["taken", "sending", "settled"]
# "kalshi-router journal" in ASCII, folded into PRAGMA application_id's 32 bits: a database some
# other program made is refused rather than written into.
APPLICATION_ID = 0x4B524A4C
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE intents (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    ticker TEXT NOT NULL,
    payload BLOB NOT NULL,
    submitted REAL NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_sent REAL,
    result TEXT,
    outcome BLOB,
    settled_at REAL
);
CREATE INDEX intents_key ON intents (key);
CREATE INDEX intents_open ON intents (state) WHERE state != 'settled';
CREATE INDEX intents_settled ON intents (settled_at) WHERE state = 'settled';
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Rows per multi-row statement. One statement for many rows costs much less than one execution
# per row (executemany), and a bounded set of texts stays in sqlite3's statement cache.
_CHUNK = 32
_CACHED_STATEMENTS = 256
_INSERT_WIDTH = 6
# About 10 WAL pages per commit: a checkpoint per ~1,000 pages, as often as SQLite's default
# autocheckpoint would, but on the checkpointer's thread.
_CHECKPOINT_EVERY = 100
# 40 MB of 4 KiB pages: the WAL file grows at most to about this size.
_WAL_BACKSTOP = 10_000
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
# own (about 1.5 us of CPU per accepted create settled; a scan would hold the loop for ~2 ms per
# thousand intents journaled).
_PLACED_INDEX = (
    "CREATE INDEX IF NOT EXISTS intents_placed ON intents "
    "(json_extract(CAST(outcome AS TEXT), '$.order_id')) "
    "WHERE kind = 'create' AND result = 'accepted'"
)
_PLACED = (
    "SELECT id, kind, key, ticker, payload, submitted, state, attempts, last_sent, result, "
    "outcome, settled_at FROM intents WHERE kind = 'create' AND result = 'accepted' "
    "AND json_extract(CAST(outcome AS TEXT), '$.order_id') = ? ORDER BY id DESC LIMIT 1"
)
_encode = msgspec.json.Encoder(decimal_format="string").encode
_outcome = msgspec.json.Decoder(Outcome)


class JournalError(KalshiRouterError):
    """The journal cannot be used: the message names its path and what is wrong."""


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One journaled intent as read back."""

    id: int
    kind: str
    key: str
    ticker: str
    payload: bytes
    """The intent, msgspec JSON."""
    submitted: float
    """Wall time (Unix seconds) it was taken."""
    state: State
    attempts: int
    last_sent: float | None
    """Wall time its last attempt was written, if any."""
    result: str | None
    outcome: Outcome | None
    settled_at: float | None

    def ids(self) -> dict[str, str]:
        return {"client_order_id" if self.kind == "create" else "order_id": self.key}

    @property
    def unresolved(self) -> bool:
        """Nobody knows yet whether it is at the exchange."""
        return self.state != "settled" or self.result == "unknown"


def _entry(row: tuple[Any, ...]) -> Entry:
    outcome = None if row[10] is None else _outcome.decode(row[10])
    return Entry(
        id=row[0],
        kind=row[1],
        key=row[2],
        ticker=row[3],
        payload=row[4],
        submitted=row[5],
        state=row[6],
        attempts=row[7],
        last_sent=row[8],
        result=row[9],
        outcome=outcome,
        settled_at=row[11],
    )


class SqliteJournal:
    """An :class:`~kalshi_router.journal.IntentJournal` in a SQLite file; see the module
    docstring. Open it with :meth:`open` (the service) or :meth:`read` (a reader beside it)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        lock: int | None,
        checkpointer: _Checkpointer | None,
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
        lock = _lock(path)
        try:
            conn = _connect(path, create=True)
            try:
                _set_up(conn, path)
                _claim(conn, path, exchange)
                checkpointer = _Checkpointer(_connect(path, create=False, threaded=True))
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
        conn = _connect(path, create=False, readonly=True)
        try:
            _check(conn, path)
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
        return cursor.rowcount

    def resolve(self, outcomes: Sequence[tuple[int, Outcome]]) -> None:
        """Settle journaled intents by row id (recovery), in one transaction."""
        now = time.time()
        for row, outcome in outcomes:
            self._settles += (row, outcome_name(outcome), _encode(outcome), now)
        self.commit()

    def find(self, key: str) -> Entry | None:
        """The newest intent journaled under ``key`` (client_order_id or order id)."""
        row = self._conn.execute(_FIND, (key,)).fetchone()
        return None if row is None else _entry(row)

    def history(
        self, client_order_id: str | None, order_id: str | None, limit: int
    ) -> tuple[list[Entry], int]:
        """One order's newest ``limit`` intents, oldest first, and how many it has in all: its
        creates under ``client_order_id``, its cancels, amends and decreases under ``order_id``."""
        keys = (client_order_id, order_id)
        rows = self._conn.execute(_HISTORY, (*keys, limit)).fetchall()
        (total,) = self._conn.execute(_HISTORY_COUNT, keys).fetchone()
        return [_entry(row) for row in reversed(rows)], total

    def placed(self, order_id: str) -> Entry | None:
        """The accepted create whose outcome is the order ``order_id``."""
        row = self._conn.execute(_PLACED, (order_id,)).fetchone()
        return None if row is None else _entry(row)

    def open_entries(self) -> list[Entry]:
        """Every intent not settled (taken or sending), oldest first."""
        rows = self._conn.execute(_OPEN).fetchall()
        return [_entry(row) for row in rows]

    def unresolved(self) -> list[Entry]:
        """Not settled, or settled unknown: the ones someone must look up."""
        rows = self._conn.execute(_UNRESOLVED).fetchall()
        return [_entry(row) for row in rows]

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


def _lock(path: Path) -> int:
    """An exclusive lock beside the file: two services on one journal would settle each
    other's in-flight intents at start."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise JournalError(f"journal {path}: cannot create its lock file: {exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise JournalError(f"journal {path}: in use by another process") from None
    return fd


class _Checkpointer:
    """Runs ``wal_checkpoint(PASSIVE)`` on its own thread whenever woken: it copies what the WAL
    holds into the database file without blocking the writer, fsyncs and all. The WAL starts
    over at the next commit after a checkpoint that caught up with it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._woken = threading.Event()
        self._closing = False
        self.passes = 0
        # A daemon: a journal nobody closed must not keep the interpreter from exiting.
        self._thread = threading.Thread(target=self._run, name="journal-checkpoint", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._woken.set()

    def close(self) -> None:
        """One last checkpoint, then the thread ends and its connection closes."""
        self._closing = True
        self._woken.set()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while True:
            self._woken.wait()
            self._woken.clear()
            # A failed checkpoint loses nothing (the WAL still holds it all): the next one, or
            # the loop's connection at _WAL_BACKSTOP pages, copies it.
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.passes += 1
            if self._closing:
                return


def _connect(
    path: Path, *, create: bool, readonly: bool = False, threaded: bool = False
) -> sqlite3.Connection:
    if path.exists() and not path.is_file():
        raise JournalError(f"journal {path}: not a regular file")
    if create and not path.exists():
        # Created here, 0600, so that sqlite never makes it with the umask's wider mode.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        # mode=rw: never create (or recreate) a file that vanished after the check above.
        mode = "ro" if readonly else "rw"
        return sqlite3.connect(
            f"{path.absolute().as_uri()}?mode={mode}",
            uri=True,
            isolation_level=None,
            cached_statements=_CACHED_STATEMENTS,
            check_same_thread=not threaded,
        )
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: cannot open: {exc}") from None


def _check(conn: sqlite3.Connection, path: Path) -> bool:
    """Refuse a damaged or foreign file; True when it is new and empty."""
    try:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise JournalError(
                f"journal {path}: damaged (quick_check: {'; '.join(problems[:3])}); "
                "move it aside to start a new one"
            )
        (app_id,) = conn.execute("PRAGMA application_id").fetchone()
        (tables,) = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    except sqlite3.Error as exc:
        raise JournalError(
            f"journal {path}: not a readable SQLite journal ({exc}); move it aside to start a "
            "new one"
        ) from None
    if app_id == 0 and tables == 0:
        return True
    if app_id != APPLICATION_ID:
        raise JournalError(f"journal {path}: not a kalshi-router journal (another database)")
    if version != SCHEMA_VERSION:
        raise JournalError(f"journal {path}: schema version {version}, expected {SCHEMA_VERSION}")
    return False


def _set_up(conn: sqlite3.Connection, path: Path) -> None:
    fresh = _check(conn, path)
    try:
        (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode != "wal":
            raise JournalError(f"journal {path}: cannot use WAL mode (got {mode!r})")
        # Enough for a process crash in WAL mode; see the module docstring.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_BACKSTOP}")
        if fresh:
            conn.executescript(
                f"BEGIN; {_SCHEMA} PRAGMA application_id = {APPLICATION_ID}; "
                f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
        # Not in _SCHEMA: journals made before it get it too (and SQLite keeps it up to date
        # for any version of this code that writes them).
        conn.execute(_PLACED_INDEX)
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: cannot set up: {exc}") from None


def _claim(conn: sqlite3.Connection, path: Path, exchange: str) -> None:
    """Record which exchange the journal's orders go to; refuse another one while intents
    sent to the first are still open."""
    row = conn.execute("SELECT value FROM meta WHERE name = 'exchange'").fetchone()
    if row is not None and row[0] != exchange:
        (open_,) = conn.execute("SELECT count(*) FROM intents WHERE state != 'settled'").fetchone()
        if open_:
            raise JournalError(
                f"journal {path}: {open_} intents still open at {row[0]}, but this service "
                f"targets {exchange}; start it against {row[0]} to reconcile them, or use "
                "another journal.path"
            )
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('exchange', ?)", (exchange,))
