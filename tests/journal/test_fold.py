"""When a run of the commit log is ready to be written (``fold.whole``), and a run the fold's
thread could not write."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from kalshi_router.journal import SqliteJournal, fold
from kalshi_router.journal.rows import Changes
from tests.journal.test_rows import commit
from tests.journal.test_store import pending


def test_under_load_a_run_of_rows_mostly_open_reads_on_up_to_a_bound() -> None:
    def run(commits: int, taken: int, settled: int) -> Changes:
        changes = Changes(0)
        changes.add(1, commit(taken=[(i, "create", f"k{i}", "T", {}, 1.0) for i in range(taken)]))
        changes.add(2, commit(settled=[(i, "closed", {}, 2.0) for i in range(settled)]))
        changes.commits = commits
        return changes

    def whole(changes: Changes, *, caught_up: bool = False, eager: bool = False) -> bool:
        return fold.whole(changes, caught_up=caught_up, eager=eager)

    chunk, long = fold._CHUNK, fold._LONG_RUN
    assert not whole(run(chunk - 1, 10, 10))
    assert whole(run(chunk - 1, 10, 0), caught_up=True, eager=True)
    assert not whole(run(chunk - 1, 10, 0), caught_up=True)
    assert whole(run(chunk, 100, 75))  # a quarter open
    assert not whole(run(chunk, 100, 74))
    assert whole(run(long, 100, 0))
    assert whole(run(chunk, fold._LONG_RUN_ROWS, 0))


async def test_a_run_the_fold_thread_cannot_write_is_raised_on_the_loop_and_read_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    with SqliteJournal.open(path, exchange="test") as journal:
        folder = journal._folder
        assert folder is not None
        journal.taken(pending("a"))
        journal.commit()
        folder._writer.submit(1, [("INSERT INTO main.nowhere VALUES (?)", [(1,)])])
        folder._writer.idle.wait()
        with pytest.raises(sqlite3.OperationalError, match="nowhere"):
            folder._collect()
        assert folder.folded == 0  # nothing of it was written
        folder._writer.submit(*run_of(folder))  # the thread lives on
        folder._writer.idle.wait()
        folder._collect()
        assert folder.folded == 1
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT key, state FROM intents").fetchall() == [("a", "taken")]


def run_of(folder: fold.Folder) -> tuple[int, list[Any]]:
    """The run the folder would write now: every commit past its mark."""
    changes = folder._read(fold._CHUNK, eager=True)
    assert changes is not None
    folder._changes = None
    return changes.mark, changes.statements()
