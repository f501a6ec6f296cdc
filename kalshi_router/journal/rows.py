"""What commits of the log (``commit_log``) do to the journal's rows, two ways.

- ``apply`` gives each row the commits touch as they leave it, whole, from the rows as they were
  (``base_rows``); ``write`` puts such rows into a table, replacing. Readers overlay the commits
  not folded yet this way, on tables of their own (``reads``).
- ``Changes`` gathers what a run of commits does to the journal's own table as the statements
  that make it so, each row's last state only (``fold``): a row taken in the run is inserted
  once, in the state the run leaves it in; a row taken earlier is updated in the columns the run
  set, without being read first. Inserts and updates cost about a third of replacing a row
  (``INSERT OR REPLACE`` deletes and re-inserts it, its index entries and the index on
  ``json_extract`` of its outcome included), and a row is written once per run, not once per
  state.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kalshi_router.journal.commit_log import Commit

COLUMNS = (
    "id, kind, key, ticker, payload, submitted, state, attempts, last_sent, result, outcome, "
    "settled_at"
)
_WIDTH = 12
_RESOLVED_WIDTH = 4
# Rows per multi-row statement (12 values each): one statement for many rows costs much less
# than one execution per row, and a bounded set of texts stays in sqlite3's statement cache.
_ROWS = 32
_IDS = 500

_NONE = (None, None, None, None)  # last_sent, result, outcome, settled_at
Row = list[Any]
"""An ``intents`` row, COLUMNS in order."""
Earlier = tuple[int, str, bytes | bytearray, float]
"""A ``resolved`` row: the settlement a resolution replaced."""
Statement = tuple[str, list[Sequence[Any]]]
"""A statement and the parameters of each execution (``executemany``)."""


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
    intents: str,
    resolved: str,
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


# The fold's statements. A row taken in the run is new: ids only grow past every row the journal
# and its log hold (``store``), so a plain INSERT never meets one. Inserts go _ROWS to a
# statement: the fold's thread takes the GIL once per execution, to bind its values (SQLite
# gives it back while it works), so fewer executions keep the loop thread waiting less often.
# The settlement a resolution replaces, kept the first time only: from the table when the row
# was settled before the run, else as the run had it.
_EARLIER_OF_TABLE = (
    "INSERT OR IGNORE INTO main.resolved "
    "SELECT id, result, outcome, settled_at FROM main.intents WHERE id = ?"
)
_EARLIER = "INSERT OR IGNORE INTO main.resolved VALUES (?, ?, ?, ?)"
_SENT = "UPDATE main.intents SET state = 'sending', attempts = ?, last_sent = ? WHERE id = ?"
_SETTLED = (
    "UPDATE main.intents SET state = 'settled', result = ?, outcome = ?, settled_at = ? "
    "WHERE id = ?"
)
_SENT_SETTLED = (
    "UPDATE main.intents SET state = 'settled', attempts = ?, last_sent = ?, result = ?, "
    "outcome = ?, settled_at = ? WHERE id = ?"
)
_RESULT = "UPDATE main.intents SET result = ?, outcome = ?, settled_at = ? WHERE id = ?"


class Changes:
    """What a run of commits does to the journal's table (see the module docstring): ``add``
    each commit, oldest first, then ``statements``. ``mark`` is the ``seq`` of the last one."""

    def __init__(self, mark: int) -> None:
        self.mark = mark
        self.commits = 0
        self.rows = 0
        """Rows touched (the statements' executions, about)."""
        self.open = 0
        """Rows the run took and has not settled: written now, they are written again later."""
        self._new: dict[int, Row] = {}
        # Rows taken before the run: their last attempt, their settlement, a resolution of a
        # settlement made before the run; the settlements the run's resolutions replaced.
        self._sent: dict[int, tuple[int, float]] = {}
        self._settled: dict[int, tuple[str, bytearray, float]] = {}
        self._result: dict[int, tuple[str, bytearray, float]] = {}
        self._earlier: dict[int, Earlier] = {}
        self._earlier_of_table: dict[int, None] = {}

    def add(self, seq: int, commit: Commit) -> None:
        new, sent, settled = self._new, self._sent, self._settled
        # In the order the writer made them, as ``apply``.
        for i, kind, key, ticker, payload, submitted in commit.taken:
            new[i] = [i, kind, key, ticker, bytearray(payload), submitted, "taken", 0, *_NONE]
        self.open += len(commit.taken)
        for attempts, at, ids in commit.sending:
            for i in ids:
                if (row := new.get(i)) is not None:
                    row[6:9] = ("sending", attempts, at)
                else:
                    sent[i] = (attempts, at)
        for i, result, outcome, at in commit.settled:
            if (row := new.get(i)) is not None:
                row[6] = "settled"
                row[9:12] = (result, bytearray(outcome), at)
                self.open -= 1
            else:
                settled[i] = (result, bytearray(outcome), at)
        for i, result, outcome, at in commit.resolved:
            self._resolve(i, (result, bytearray(outcome), at))
        self.mark = seq
        self.commits += 1
        self.rows = len(new) + len(sent) + len(settled) + len(self._result)

    def _resolve(self, i: int, outcome: tuple[str, bytearray, float]) -> None:
        if (row := self._new.get(i)) is not None:
            self._earlier.setdefault(i, (i, row[9], row[10], row[11]))
            row[9:12] = outcome
        elif (was := self._settled.get(i)) is not None:
            self._earlier.setdefault(i, (i, *was))
            self._settled[i] = outcome
        else:
            self._earlier_of_table[i] = None
            self._result[i] = outcome

    def statements(self) -> list[Statement]:
        """The statements, in the order to run them (earlier settlements are read from the
        table before the updates replace them); none with nothing to do. An update of a row
        the journal no longer has (compacted away) changes nothing."""
        both = self._sent.keys() & self._settled.keys()
        found: list[Statement] = [
            (_EARLIER_OF_TABLE, [(i,) for i in self._earlier_of_table]),
            (_EARLIER, list(self._earlier.values())),
            *_inserts(list(self._new.values())),
            (_SENT, [(*at, i) for i, at in self._sent.items() if i not in both]),
            (_SENT_SETTLED, [(*self._sent[i], *self._settled[i], i) for i in both]),
            (_SETTLED, [(*done, i) for i, done in self._settled.items() if i not in both]),
            (_RESULT, [(*done, i) for i, done in self._result.items()]),
        ]
        return [(sql, params) for sql, params in found if params]


def _inserts(rows: list[Row]) -> list[Statement]:
    """``rows`` into the journal's table, _ROWS to an execution (the rest in one more)."""
    whole = len(rows) - len(rows) % _ROWS
    found: list[Statement] = []
    if whole:
        flat: list[Sequence[Any]] = [
            [v for row in rows[i : i + _ROWS] for v in row] for i in range(0, whole, _ROWS)
        ]
        found.append((_insert("main.intents", "INSERT", _ROWS, _WIDTH), flat))
    if rest := rows[whole:]:
        found.append(
            (_insert("main.intents", "INSERT", len(rest), _WIDTH), [[v for r in rest for v in r]])
        )
    return found
