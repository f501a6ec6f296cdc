"""What the fold writes (``rows.Changes``): each row's last state only, inserted once when the
commits folded together took it, updated in place otherwise; and whatever the runs, the journal's
table ends up as readers saw the commits before the fold (``rows.apply``)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kalshi_router.journal import SqliteJournal, commit_log
from kalshi_router.journal import rows as rows_module
from kalshi_router.journal.rows import COLUMNS, Changes
from kalshi_router.outcome import Unknown
from kalshi_router.pending import Pending
from tests.journal.test_store import accepted, pending

LOST = Unknown(reason="lookup timed out")


def commit(
    taken: Sequence[Any] = (),
    sending: Sequence[Any] = (),
    settled: Sequence[Any] = (),
    resolved: Sequence[Any] = (),
) -> commit_log.Commit:
    """A commit as the fold reads it back from the log."""
    return commit_log.decode(
        commit_log.encode(list(taken), list(sending), list(settled), list(resolved))
    )


def taken(i: int) -> tuple[int, str, str, str, dict[str, int], float]:
    return (i, "create", f"k{i}", "T", {"n": i}, 1.0)


def test_a_row_taken_sent_and_settled_in_one_run_is_inserted_once_as_settled() -> None:
    changes = Changes(0)
    changes.add(1, commit(taken=[taken(1)]))
    changes.add(2, commit(sending=[(1, 2.0, [1])]))
    changes.add(3, commit(settled=[(1, "accepted", {"a": 1}, 3.0)]))
    [(sql, params)] = changes.statements()
    assert sql.startswith("INSERT INTO main.intents VALUES (")
    assert [list(row) for row in params] == [
        [1, "create", "k1", "T", b'{"n":1}', 1.0, "settled", 1, 2.0, "accepted", b'{"a":1}', 3.0]
    ]
    assert (changes.mark, changes.commits, changes.rows) == (3, 3, 1)


def test_new_rows_go_in_a_few_to_an_execution() -> None:
    changes = Changes(0)
    rows = 2 * rows_module._ROWS + 3
    changes.add(1, commit(taken=[taken(i) for i in range(rows)]))
    [(full, chunks), (rest, last)] = changes.statements()
    assert full.count("(") == rows_module._ROWS
    assert rest.count("(") == 3
    assert [len(chunk) for chunk in chunks + last] == [12 * rows_module._ROWS] * 2 + [12 * 3]
    assert [chunk[0] for chunk in chunks + last] == [0, rows_module._ROWS, 2 * rows_module._ROWS]


def test_rows_taken_before_the_run_are_updated_in_the_columns_it_set() -> None:
    changes = Changes(7)
    changes.add(8, commit(sending=[(2, 5.0, [1, 2])], settled=[(3, "closed", {"c": 3}, 5.0)]))
    changes.add(9, commit(settled=[(2, "accepted", {"a": 2}, 6.0)]))
    found = {
        sql.split(" SET ")[1].split(" WHERE")[0]: params for sql, params in changes.statements()
    }
    assert found == {
        "state = 'sending', attempts = ?, last_sent = ?": [(2, 5.0, 1)],
        "state = 'settled', attempts = ?, last_sent = ?, result = ?, outcome = ?, settled_at = ?": [
            (2, 5.0, "accepted", b'{"a":2}', 6.0, 2)
        ],
        "state = 'settled', result = ?, outcome = ?, settled_at = ?": [
            ("closed", b'{"c":3}', 5.0, 3)
        ],
    }


def test_a_resolution_keeps_the_settlement_it_replaced_from_the_run_or_the_table() -> None:
    changes = Changes(0)
    changes.add(1, commit(taken=[taken(1)], settled=[(1, "unknown", {"u": 1}, 2.0)]))
    changes.add(2, commit(settled=[(2, "unknown", {"u": 2}, 2.0)]))
    changes.add(
        3, commit(resolved=[(1, "accepted", {"a": 1}, 3.0), (2, "accepted", {"a": 2}, 3.0)])
    )
    changes.add(4, commit(resolved=[(3, "accepted", {"a": 3}, 4.0)]))  # settled before the run
    statements = dict(changes.statements())
    assert statements["INSERT OR IGNORE INTO main.resolved VALUES (?, ?, ?, ?)"] == [
        (1, "unknown", b'{"u":1}', 2.0),
        (2, "unknown", b'{"u":2}', 2.0),
    ]
    from_table = [sql for sql in statements if "SELECT id, result" in sql]
    assert [statements[sql] for sql in from_table] == [[(3,)]]
    # The table's settlement is kept before the update replaces it.
    order = list(statements)
    assert order.index(from_table[0]) < order.index(
        "UPDATE main.intents SET result = ?, outcome = ?, settled_at = ? WHERE id = ?"
    )


# -- whatever the runs, the table ends as readers saw the commits ------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("take"), st.integers(1, 4)),
        st.tuples(st.just("send"), st.integers(0, 3), st.integers(1, 3)),
        st.tuples(st.just("settle"), st.integers(0, 3), st.booleans()),
        st.tuples(st.just("resolve"), st.integers(0, 3)),
        st.tuples(st.just("commit")),
        st.tuples(st.just("step"), st.integers(1, 3), st.integers(1, 3), st.booleans()),
        st.tuples(st.just("fold")),
    ),
    max_size=40,
)


def everything(journal: SqliteJournal) -> tuple[list[Any], list[Any]]:
    """Every row as readers see it (the journal's table with the log's commits on top)."""
    with journal._snapshot() as conn:
        rows = conn.execute(f"SELECT {COLUMNS} FROM all_intents ORDER BY id").fetchall()
        resolved = conn.execute("SELECT * FROM all_resolved ORDER BY id").fetchall()
    return rows, resolved


def in_the_table(journal: SqliteJournal) -> tuple[list[Any], list[Any]]:
    conn = journal._conn
    rows = conn.execute(f"SELECT {COLUMNS} FROM main.intents ORDER BY id").fetchall()
    return rows, conn.execute("SELECT * FROM main.resolved ORDER BY id").fetchall()


async def play(path: Path, ops: list[tuple[Any, ...]]) -> None:
    with SqliteJournal.open(path, exchange="test") as journal:
        folder = journal._folder
        assert folder is not None
        open_: list[Pending] = []
        unknown: list[str] = []
        for op in ops:
            if op[0] == "take":
                for _ in range(op[1]):
                    item = pending(f"k{journal._next_id}")
                    journal.taken(item)
                    open_.append(item)
            elif op[0] == "send" and open_:
                batch = open_[op[1] % len(open_) :][: op[2]]
                for item in batch:
                    item.attempts += 1
                journal.sending(batch)
            elif op[0] == "settle" and open_:
                item = open_.pop(op[1] % len(open_))
                journal.settled(item, LOST if op[2] else accepted(item.key))
                if op[2]:
                    unknown.append(item.key)
            elif op[0] == "resolve" and unknown:
                key = unknown.pop(op[1] % len(unknown))
                assert journal.resolve_later("create", key, accepted(key))
            elif op[0] == "commit":
                journal.commit()
            elif op[0] == "step":
                folder._writer.idle.wait()  # the loop thread steps only then
                folder._collect()
                seen = everything(journal)
                folder._step(op[1], eager=op[3], threaded=op[2] > 1)
                assert everything(journal) == seen  # folding never changes what readers see
            elif op[0] == "fold":
                journal.fold()
            await asyncio.sleep(0)  # the end of a loop turn: what waits is committed
        journal.commit()
        seen = everything(journal)
        journal.fold()
        assert in_the_table(journal) == seen


@settings(deadline=None)  # a journal opened per example: its threads start slowly under load
@given(OPS)
def test_whatever_the_runs_the_table_ends_as_readers_saw_the_commits(
    ops: list[tuple[Any, ...]],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(play(Path(directory) / "journal.sqlite3", ops))
