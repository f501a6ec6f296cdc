"""Reading the journal as of its last commit, folded into ``intents`` or not yet.

Each read applies the commits past the folded mark (and, for ``resolve_later``, the writer's
waiting rows) to tables of the connection's own, ``temp.tail`` and ``temp.tail_resolved``
(``rows.apply``: as the fold's statements will), and queries views that put those rows in place
of the journal's (``all_intents``, ``all_resolved``). Those tables are kept from one read to the
next, so a read applies only the commits that came since the last one: about 10 us an intent,
tens of milliseconds for the first read after a burst (the tail is at most a second of commits,
or ``fold._TAIL_COMMITS``), little after. With no tail, a read costs what a plain query does.

A read takes its snapshot of the log before that of the journal: the log rows it then finds past
the journal's mark are all there (rows are deleted only once the mark has passed them), and a
journal folded further meanwhile only holds more of them.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from kalshi_router.journal import sqlite_file
from kalshi_router.journal.commit_log import Commit, decode
from kalshi_router.journal.entry import Entry, Settlement, entry_from_row, settlement_from_row
from kalshi_router.journal.fold import folded, transaction
from kalshi_router.journal.rows import COLUMNS, apply, base_rows, write

_SELECT = f"SELECT {COLUMNS} FROM all_intents"  # noqa: S608
_FIND = f"{_SELECT} WHERE key = ? ORDER BY id DESC LIMIT 1"
_OPEN = f"{_SELECT} WHERE state != 'settled' ORDER BY id"
_UNRESOLVED = f"{_SELECT} WHERE state != 'settled' OR result = 'unknown' ORDER BY id"
# An order's intents (GET /v1/orders/{key}): its creates by client_order_id, the rest by order id.
_WHOSE = "(kind = 'create' AND key = ?) OR (kind != 'create' AND key = ?)"
_HISTORY = f"{_SELECT} WHERE {_WHOSE} ORDER BY id DESC LIMIT ?"
_HISTORY_COUNT = f"SELECT count(*) FROM all_intents WHERE {_WHOSE}"  # noqa: S608
# The create that made an order, found by the order id in its outcome through an index of its
# own (``sqlite_file.PLACED_INDEX``).
_PLACED = (
    f"{_SELECT} WHERE kind = 'create' AND result = 'accepted' "
    "AND json_extract(CAST(outcome AS TEXT), '$.order_id') = ? ORDER BY id DESC LIMIT 1"
)
# The newest intent of a kind under a key that was settled unknown.
UNKNOWN = (
    "SELECT id FROM all_intents WHERE kind = ? AND key = ? "
    "AND state = 'settled' AND result = 'unknown' ORDER BY id DESC LIMIT 1"
)
_TAIL = f"""
CREATE TEMP TABLE IF NOT EXISTS tail (
    id INTEGER PRIMARY KEY, kind, key, ticker, payload, submitted, state, attempts, last_sent,
    result, outcome, settled_at
);
CREATE TEMP TABLE IF NOT EXISTS tail_resolved (id INTEGER PRIMARY KEY, result, outcome, settled_at);
CREATE TEMP VIEW IF NOT EXISTS all_intents AS
    SELECT {COLUMNS} FROM main.intents WHERE id NOT IN (SELECT id FROM temp.tail)
    UNION ALL SELECT {COLUMNS} FROM temp.tail;
"""  # noqa: S608
_ALL_RESOLVED = (
    "CREATE TEMP VIEW IF NOT EXISTS all_resolved AS SELECT * FROM main.resolved UNION ALL "
    "SELECT * FROM temp.tail_resolved WHERE id NOT IN (SELECT id FROM main.resolved)"
)
# A journal made before the table (read only): the tail's resolutions alone.
_TAIL_RESOLVED = "CREATE TEMP VIEW IF NOT EXISTS all_resolved AS SELECT * FROM temp.tail_resolved"


class JournalReads:
    """The reads of ``SqliteJournal``, over ``_conn`` (the journal, its log attached as ``log``
    when ``_has_log``).

    The tables of the tail are kept from one read to the next: a read applies only the commits
    that came since (``_applied``, the last one applied), on top of what they hold, and empties
    them once the journal's mark has passed every commit they hold."""

    path: Path
    _conn: sqlite3.Connection
    _has_log: bool
    _applied = 0

    def _set_up_reads(self) -> None:
        conn = self._conn
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.executescript(_TAIL)
        resolved = sqlite_file.has_table(conn, "resolved")
        conn.execute(_ALL_RESOLVED if resolved else _TAIL_RESOLVED)

    @contextlib.contextmanager
    def _snapshot(self, waiting: Sequence[Commit] = ()) -> Iterator[sqlite3.Connection]:
        """A read transaction in which ``all_intents`` and ``all_resolved`` hold every commit
        (see the module docstring), and ``waiting`` after them for this read only."""
        conn = self._conn
        with transaction(conn):
            if self._has_log:
                conn.execute("SELECT max(seq) FROM log.commits").fetchone()  # the log first
                mark = folded(conn)
                if mark >= self._applied:  # all the tail tables hold is in the journal now
                    conn.execute("DELETE FROM temp.tail")
                    conn.execute("DELETE FROM temp.tail_resolved")
                    self._applied = mark
                found = conn.execute(
                    "SELECT seq, body FROM log.commits WHERE seq > ? ORDER BY seq",
                    (self._applied,),
                ).fetchall()
                if found:
                    _overlay(conn, [decode(body) for _, body in found])
                    self._applied = found[-1][0]
            if not waiting:
                yield conn
                return
            conn.execute("SAVEPOINT waiting")
            _overlay(conn, waiting)
            try:
                yield conn
            finally:
                conn.execute("ROLLBACK TO waiting")
                conn.execute("RELEASE waiting")

    def find(self, key: str) -> Entry | None:
        """The newest intent journaled under ``key`` (client_order_id or order id)."""
        with self._snapshot() as conn:
            row = conn.execute(_FIND, (key,)).fetchone()
        return None if row is None else entry_from_row(row)

    def history(
        self, client_order_id: str | None, order_id: str | None, limit: int
    ) -> tuple[list[Entry], int]:
        """One order's newest ``limit`` intents, oldest first, and how many it has in all: its
        creates under ``client_order_id``, its cancels, amends and decreases under ``order_id``."""
        keys = (client_order_id, order_id)
        with self._snapshot() as conn:
            rows = conn.execute(_HISTORY, (*keys, limit)).fetchall()
            (total,) = conn.execute(_HISTORY_COUNT, keys).fetchone()
        return [entry_from_row(row) for row in reversed(rows)], total

    def placed(self, order_id: str) -> Entry | None:
        """The accepted create whose outcome is the order ``order_id``."""
        with self._snapshot() as conn:
            row = conn.execute(_PLACED, (order_id,)).fetchone()
        return None if row is None else entry_from_row(row)

    def open_entries(self) -> list[Entry]:
        """Every intent not settled (taken or sending), oldest first."""
        with self._snapshot() as conn:
            rows = conn.execute(_OPEN).fetchall()
        return [entry_from_row(row) for row in rows]

    def unresolved(self) -> list[Entry]:
        """Not settled, or settled unknown: the ones someone must look up."""
        with self._snapshot() as conn:
            rows = conn.execute(_UNRESOLVED).fetchall()
        return [entry_from_row(row) for row in rows]

    def counts(self) -> dict[tuple[str, str | None], int]:
        """Intents by (state, outcome kind)."""
        with self._snapshot() as conn:
            rows = conn.execute(
                "SELECT state, result, count(*) FROM all_intents GROUP BY state, result"
            ).fetchall()
        return {(state, result): n for state, result, n in rows}

    def earlier(self, entry_id: int) -> Settlement | None:
        """The settlement ``resolve_later`` replaced (its unknown), if it replaced one."""
        with self._snapshot() as conn:
            row = conn.execute(
                "SELECT result, outcome, settled_at FROM all_resolved WHERE id = ?", (entry_id,)
            ).fetchone()
        return None if row is None else settlement_from_row(row)

    def resolved_later(self) -> int:
        """How many intents settled unknown were resolved later."""
        with self._snapshot() as conn:
            (count,) = conn.execute("SELECT count(*) FROM all_resolved").fetchone()
        return int(count)


def _overlay(conn: sqlite3.Connection, commits: Sequence[Commit]) -> None:
    """Apply ``commits`` on top of what the tail's tables (and the journal) hold."""
    rows, earlier = apply(commits, functools.partial(base_rows, conn, table="all_intents"))
    into = {"intents": "temp.tail", "resolved": "temp.tail_resolved"}
    write(conn, rows.values(), earlier.values(), **into)
