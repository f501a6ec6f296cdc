"""The SQLite journal when a write fails: loud, and nothing that was waiting is lost."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from kalshi_router.journal import JournalError, SqliteJournal
from kalshi_router.journal.commit_log import log_path
from tests.journal.test_store import committed, pending


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


@pytest.fixture
def journal(path: Path) -> Iterator[SqliteJournal]:
    with SqliteJournal.open(path, exchange="test") as opened:
        yield opened


def fail_writes(path: Path, *, failing: bool) -> None:
    """From another connection: make every commit to the journal's log fail, as a full disk
    would."""
    with closing(sqlite3.connect(log_path(path), isolation_level=None)) as conn:
        if failing:
            conn.execute(
                "CREATE TRIGGER full BEFORE INSERT ON commits "
                "BEGIN SELECT RAISE(ABORT, 'disk full (scripted)'); END"
            )
        else:
            conn.execute("DROP TRIGGER full")


async def test_a_failed_write_raises_and_keeps_what_was_waiting(
    journal: SqliteJournal, path: Path
) -> None:
    sent, waiting = pending("sent"), pending("waiting")
    journal.taken(sent)
    journal.commit()
    journal.taken(waiting)
    sent.attempts = 1
    fail_writes(path, failing=True)
    # Raised, so the dispatcher never sends a batch the journal does not hold as sending.
    with pytest.raises(JournalError, match="cannot write: disk full \\(scripted\\)") as raised:
        journal.sending([sent])
    assert str(path) in str(raised.value)
    # The whole transaction went, the insert of the row that was waiting included.
    assert committed(path) == [("sent", "taken", 0)]
    fail_writes(path, failing=False)
    journal.sending([sent])
    assert committed(path) == [("sent", "sending", 1), ("waiting", "taken", 0)]
