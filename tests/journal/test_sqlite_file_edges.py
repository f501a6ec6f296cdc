"""The journal's files at their edges: what is refused (and left as it was), a journal that moves
to another exchange once nothing is open, a fold that fails, a log that went missing, and the
checkpointer's thread between wakes."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from typing import cast

import pytest

from kalshi_router.journal import JournalError, SqliteJournal, sqlite_file
from kalshi_router.journal.commit_log import log_path
from kalshi_router.outcome import Closed
from tests.journal.test_store import committed, folded, pending, wait_for

# How long a test waits for the checkpointer's thread before it calls the test failed (it never
# waits that long unless the thread is stuck).
_THREAD_TIMEOUT_S = 30.0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


def schema_objects(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        (count,) = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return int(count)


def test_a_directory_in_the_journals_place_is_refused_and_the_lock_let_go(path: Path) -> None:
    path.mkdir(parents=True)
    for _ in range(2):  # a lock left held would say "in use by another process" the second time
        with pytest.raises(JournalError, match="not a regular file") as raised:
            SqliteJournal.open(path, exchange="test")
        assert str(path) in str(raised.value)
    with pytest.raises(JournalError, match="not a regular file"):
        SqliteJournal.read(path)
    assert path.is_dir()
    assert list(path.iterdir()) == []


def test_a_lock_file_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    # The journal's directory is a regular file: neither it nor the lock beside it can be made.
    blocker = tmp_path / "state"
    blocker.write_text("not a directory")
    with pytest.raises(JournalError, match="cannot create its lock file") as raised:
        SqliteJournal.open(blocker / "journal.sqlite3", exchange="test")
    assert str(blocker / "journal.sqlite3") in str(raised.value)
    assert blocker.read_text() == "not a directory"


def test_connect_never_makes_a_journal_it_was_not_asked_to_create(path: Path) -> None:
    # The check-then-open race: a file that vanished is not recreated empty by sqlite.
    path.parent.mkdir(parents=True)
    for readonly in (False, True):
        with pytest.raises(JournalError, match="cannot open") as raised:
            sqlite_file.connect(path, create=False, readonly=readonly)
        assert str(path) in str(raised.value)
        assert not path.exists()


async def _journal_with_rows(path: Path, n: int) -> None:
    with SqliteJournal.open(path, exchange="test") as journal:
        for i in range(n):
            journal.taken(pending(f"key-{i:03d}"))
    # Everything into the main file, so the bytes below are all there is.
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def contents(path: Path) -> bytes:
    return path.read_bytes()


async def _damage_key_index(path: Path) -> bytes:
    """A journal of 20 rows whose index on key points outside its page for every cell; its
    bytes."""
    # Few rows: the index is one leaf page, whose cell pointers (2 bytes each) start 8 bytes in.
    await _journal_with_rows(path, 20)
    return _damage_page(path, "intents_key", 20)


def _damage_page(path: Path, index: str, cells: int) -> bytes:
    with closing(sqlite3.connect(path)) as conn:
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (index,)
        ).fetchone()
    data = bytearray(path.read_bytes())
    start = (root - 1) * page_size + 8
    data[start : start + 2 * cells] = b"\xff" * (2 * cells)
    path.write_bytes(bytes(data))
    return bytes(data)


async def test_a_journal_with_a_damaged_index_page_is_refused_and_left_as_it_was(
    path: Path,
) -> None:
    data = await _damage_key_index(path)
    with pytest.raises(
        JournalError, match=r"(?s)damaged \(quick_check: .+\); move it aside"
    ) as raised:
        SqliteJournal.open(path, exchange="test")
    assert str(path) in str(raised.value)
    assert "Offset 65535 out of range" in str(raised.value)
    assert contents(path) == data
    with pytest.raises(JournalError, match="damaged"):
        SqliteJournal.read(path)


async def test_a_damaged_journal_is_named_in_one_line(path: Path) -> None:
    await _damage_key_index(path)
    with pytest.raises(JournalError) as raised:
        SqliteJournal.open(path, exchange="test")
    message = str(raised.value)
    assert "\n" not in message
    assert message.count("Offset 65535 out of range") <= 3


async def test_a_journal_of_another_schema_version_is_refused_and_left_as_it_was(
    path: Path,
) -> None:
    await _journal_with_rows(path, 1)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {sqlite_file.SCHEMA_VERSION + 1}")
        conn.commit()
    data = contents(path)
    expected = f"schema version {sqlite_file.SCHEMA_VERSION + 1}, expected 1"
    with pytest.raises(JournalError, match=expected):
        SqliteJournal.open(path, exchange="test")
    with pytest.raises(JournalError, match=expected):
        SqliteJournal.read(path)
    assert contents(path) == data


def test_a_file_without_wal_is_refused_before_anything_is_written(path: Path) -> None:
    # The unix-none VFS has no shared memory, as some network file systems: no WAL there.
    path.parent.mkdir(parents=True)
    path.touch()
    with closing(
        sqlite3.connect(f"{path.as_uri()}?vfs=unix-none", uri=True, isolation_level=None)
    ) as conn:
        with pytest.raises(JournalError, match="cannot use WAL mode \\(got 'delete'\\)") as raised:
            sqlite_file.set_up(conn, path)
        assert str(path) in str(raised.value)
    assert schema_objects(path) == 0


async def test_a_journal_with_nothing_open_can_move_to_another_exchange(path: Path) -> None:
    first, second = "https://a.example/trade-api/v2", "https://b.example/trade-api/v2"
    with SqliteJournal.open(path, exchange=first) as journal:
        done = pending("settled-at-a")
        journal.taken(done)
        journal.settled(done, Closed(reason="done", client_order_id="settled-at-a"))
    with SqliteJournal.open(path, exchange=second) as journal:
        journal.taken(pending("open-at-b"))
    # The journal now belongs to the second exchange: the first is refused while it has work.
    with pytest.raises(JournalError, match=f"1 intents still open at {second}"):
        SqliteJournal.open(path, exchange=first)


async def test_a_failed_fold_loses_nothing_and_the_next_one_takes_it_all(path: Path) -> None:
    with SqliteJournal.open(path, exchange="test") as journal:
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute(
                "CREATE TRIGGER full BEFORE INSERT ON intents "
                "BEGIN SELECT RAISE(ABORT, 'disk full (scripted)'); END"
            )
        journal.taken(pending("k"))
        journal.commit()
        with pytest.raises(sqlite3.IntegrityError, match="disk full"):
            journal.fold()
        assert [e.key for e in journal.open_entries()] == ["k"]  # read from the log
        await wait_for(lambda: isinstance(journal._folder and journal._folder.error, Exception))
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute("DROP TRIGGER full")
        await wait_for(lambda: folded(path) == [("k", "taken", 0)])
    assert committed(path) == [("k", "taken", 0)]


async def test_a_journal_whose_log_went_missing_is_refused_unless_it_was_closed(
    path: Path,
) -> None:
    with SqliteJournal.open(path, exchange="test") as journal:
        journal.taken(pending("k"))
    # Closed: every commit folded in, the log empty; a new one will do.
    log_path(path).unlink()
    with SqliteJournal.open(path, exchange="test") as journal:
        assert [e.key for e in journal.open_entries()] == ["k"]
    # As a crash leaves it: marked open, and the log may hold commits nowhere else.
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE meta SET value = 'open' WHERE name = 'log'")
        conn.commit()
    log_path(path).rename(path.with_name("elsewhere"))
    data = contents(path)
    for open_ in (SqliteJournal.read, lambda p: SqliteJournal.open(p, exchange="test")):
        with pytest.raises(JournalError, match=r"its commit log .+ is missing"):
            open_(path)
    assert contents(path) == data
    assert not log_path(path).exists()


async def test_a_version_1_journal_is_read_as_it_is_and_gets_a_log_when_opened(
    path: Path,
) -> None:
    # As the router made it before the commit log: intents in the table only, version 1.
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executescript(
            f"BEGIN; {sqlite_file._SCHEMA} PRAGMA application_id = {sqlite_file.APPLICATION_ID}; "
            "PRAGMA user_version = 1; COMMIT;"
        )
        conn.execute(
            "INSERT INTO intents (id, kind, key, ticker, payload, submitted, state, attempts, "
            "last_sent) VALUES (7, 'create', 'k', 'T', ?, 1.0, 'sending', 1, 2.0)",
            (b'{"ticker":"T","side":"bid","price":"0.30","count":"1","client_order_id":"k"}',),
        )
    with SqliteJournal.read(path) as reader:
        assert [(e.id, e.key, e.state) for e in reader.open_entries()] == [(7, "k", "sending")]
    assert not log_path(path).exists()  # a reader writes nothing
    with SqliteJournal.open(path, exchange="test") as journal:
        [entry] = journal.open_entries()
        assert (entry.id, entry.state, entry.last_sent) == (7, "sending", 2.0)
        journal.resolve([(7, Closed(reason="gone", client_order_id="k"))])
        journal.taken(pending("new"))
    with closing(sqlite3.connect(path)) as conn:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    assert version == 2  # older routers refuse it now: they would not read its log
    assert committed(path) == [("k", "settled", 1), ("new", "taken", 0)]


class _Connection:
    """Stands in for the checkpointer's connection: counts checkpoints, and fails the ones
    ``failing`` numbers (from 1) as a busy database would."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.checkpoints = 0
        self.closed = False
        self.done = threading.Semaphore(0)
        self._failing = failing

    def execute(self, sql: str) -> None:
        assert sql == "PRAGMA wal_checkpoint(PASSIVE)"
        self.checkpoints += 1
        self.done.release()
        if self.checkpoints in self._failing:
            raise sqlite3.OperationalError("database is locked")

    def close(self) -> None:
        self.closed = True

    def wait(self) -> None:
        assert self.done.acquire(timeout=_THREAD_TIMEOUT_S), "the checkpointer did not run"


def _checkpointer(conn: _Connection) -> sqlite_file.Checkpointer:
    return sqlite_file.Checkpointer(cast(sqlite3.Connection, conn))


def test_the_checkpointer_runs_once_per_wake_until_it_is_closed() -> None:
    conn = _Connection()
    checkpointer = _checkpointer(conn)
    for n in (1, 2, 3):
        checkpointer.wake()
        conn.wait()
        assert conn.checkpoints == n
    assert not conn.closed
    checkpointer.close()
    assert (conn.checkpoints, checkpointer.passes, conn.closed) == (4, 4, True)


def test_a_failed_checkpoint_leaves_the_checkpointer_running() -> None:
    conn = _Connection(failing=frozenset({1}))
    checkpointer = _checkpointer(conn)
    checkpointer.wake()
    conn.wait()
    checkpointer.wake()
    conn.wait()
    assert conn.checkpoints == 2
    checkpointer.close()
    assert (conn.checkpoints, checkpointer.passes, conn.closed) == (3, 3, True)
