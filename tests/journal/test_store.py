"""The SQLite journal: rows from taken to settled, when commits happen, compaction, and refusing
files it must not touch."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.journal import JournalError, SqliteJournal, fold
from kalshi_router.journal.commit_log import log_path
from kalshi_router.outcome import Accepted, Closed
from kalshi_router.pending import Kind, Pending

TICKER = "KXJOURNAL-26DEC31-T50"


def pending(key: str, kind: Kind = "create") -> Pending:
    loop = asyncio.get_running_loop()
    payload = (
        OrderIntent.bid(TICKER, "0.30", 1, client_order_id=key)
        if kind == "create"
        else CancelIntent(order_id=key, ticker=TICKER)
    )
    return Pending(
        kind=kind,
        key=key,
        ticker=TICKER,
        payload=payload,
        future=loop.create_future(),
        submitted=loop.time(),
        deadline=loop.time() + 5,
        submitted_wall=1_700_000_000.0,
    )


def accepted(key: str) -> Accepted:
    return Accepted(
        client_order_id=key, order_id=f"o-{key}", fill_count=Decimal(0), remaining_count=Decimal(1)
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


@pytest.fixture
def journal(path: Path) -> Iterator[SqliteJournal]:
    with SqliteJournal.open(path, exchange="test") as opened:
        yield opened


def committed(path: Path) -> list[tuple[str, str, int]]:
    """What another process sees, every commit in it, folded or not (what a crash would leave):
    (key, state, attempts) per row."""
    with SqliteJournal.read(path) as reader, reader._snapshot() as conn:
        rows = conn.execute("SELECT key, state, attempts FROM all_intents ORDER BY id")
        return rows.fetchall()


def folded(path: Path) -> list[tuple[str, str, int]]:
    """What the journal's table itself holds (the commits the folder took in)."""
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT key, state, attempts FROM intents ORDER BY id").fetchall()


def test_a_new_journal_is_private_and_in_wal_mode(journal: SqliteJournal, path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert committed(path) == []


async def test_rows_go_from_taken_to_sending_to_settled(journal: SqliteJournal, path: Path) -> None:
    first, second = pending("a"), pending("b")
    journal.taken(first)
    journal.taken(second)
    first.attempts = 1
    journal.sending([first])
    # sending committed the waiting rows with its own, in one transaction.
    assert committed(path) == [("a", "sending", 1), ("b", "taken", 0)]
    assert journal.commits == 1
    journal.settled(first, accepted("a"))
    journal.commit()
    entry = journal.find("a")
    assert entry is not None
    assert (entry.state, entry.result, entry.outcome) == ("settled", "accepted", accepted("a"))
    assert entry.last_sent is not None
    assert entry.submitted == 1_700_000_000.0
    assert [e.key for e in journal.open_entries()] == ["b"]


async def test_taken_and_settled_rows_are_committed_once_per_loop_turn(
    journal: SqliteJournal, path: Path
) -> None:
    batch = [pending(f"k{i}") for i in range(20)]
    for item in batch:
        journal.taken(item)
    assert committed(path) == []
    await asyncio.sleep(0)
    assert len(committed(path)) == 20
    assert journal.commits == 1
    for item in batch:
        journal.settled(item, Closed(reason="test", client_order_id=item.key))
    await asyncio.sleep(0)
    assert {state for _, state, _ in committed(path)} == {"settled"}
    assert journal.commits == 2


async def test_one_transaction_per_batch_sent(journal: SqliteJournal, path: Path) -> None:
    batch = [pending(f"k{i}") for i in range(20)]
    for item in batch:
        journal.taken(item)
    journal.sending(batch)
    journal.sending(batch)  # a retry: same rows, one more transaction
    assert journal.commits == 2
    assert {state for _, state, _ in committed(path)} == {"sending"}


async def test_sending_commits_every_waiting_row_in_one_transaction(
    journal: SqliteJournal, path: Path
) -> None:
    # More rows than one multi-row statement takes, and a batch mixing a retry with first tries.
    items = [pending(f"k{i:02d}") for i in range(70)]
    for item in items:
        journal.taken(item)
    batch = items[:40]
    for item in batch:
        item.attempts = 1
    batch[3].attempts = 2
    journal.sending(batch)
    assert journal.commits == 1
    rows = committed(path)
    assert [key for key, _, _ in rows] == [item.key for item in items]
    assert rows[:40] == [(item.key, "sending", item.attempts) for item in batch]
    assert rows[3] == ("k03", "sending", 2)
    assert {state for _, state, _ in rows[40:]} == {"taken"}


async def test_settled_rows_coalesce_into_one_commit_with_their_own_outcomes(
    journal: SqliteJournal, path: Path
) -> None:
    items = [pending(f"k{i:02d}") for i in range(70)]
    for item in items:
        journal.taken(item)
    journal.sending(items)
    for i, item in enumerate(items):
        outcome = accepted(item.key) if i % 2 else Closed(reason=f"r{i}", client_order_id=item.key)
        journal.settled(item, outcome)
    assert journal.commits == 1
    await asyncio.sleep(0)
    assert journal.commits == 2
    for i, item in enumerate(items):
        entry = journal.find(item.key)
        assert entry is not None
        assert entry.state == "settled"
        if i % 2:
            assert (entry.result, entry.outcome) == ("accepted", accepted(item.key))
        else:
            assert entry.result == "closed"
            assert entry.outcome == Closed(reason=f"r{i}", client_order_id=item.key)


async def test_the_fold_takes_commits_into_the_table_and_the_log_lets_them_go(
    journal: SqliteJournal, path: Path
) -> None:
    items = [pending(f"k{i}") for i in range(3)]
    for item in items:
        journal.taken(item)
    journal.sending(items[:2])
    journal.settled(items[0], accepted("k0"))
    journal.commit()
    assert folded(path) == []  # in the log only, and read from there
    assert committed(path) == [("k0", "settled", 0), ("k1", "sending", 0), ("k2", "taken", 0)]
    assert log_rows(path) == 2
    journal.fold()
    # One row each, written once in the state the commits left it in; the log lets them go.
    assert folded(path) == committed(path)
    assert log_rows(path) == 0
    journal.taken(pending("k3"))
    journal.commit()
    assert log_rows(path) == 1
    assert [key for key, _, _ in committed(path)] == ["k0", "k1", "k2", "k3"]


async def test_reads_see_every_commit_whether_folded_or_not(
    journal: SqliteJournal, path: Path
) -> None:
    items = [pending(f"k{i}") for i in range(4)]
    journal.taken(items[0])
    journal.commit()
    assert [e.key for e in journal.open_entries()] == ["k0"]
    journal.taken(items[1])
    journal.sending(items[:2])  # on top of what the last read applied
    assert [(e.key, e.state) for e in journal.open_entries()] == [
        ("k0", "sending"),
        ("k1", "sending"),
    ]
    journal.fold()
    journal.settled(items[0], accepted("k0"))
    journal.taken(items[2])
    journal.commit()
    assert [(e.key, e.state) for e in journal.open_entries()] == [
        ("k1", "sending"),
        ("k2", "taken"),
    ]
    journal.taken(items[3])
    assert journal.find("k3") is None  # waiting: no read sees it before its commit
    assert journal.resolve_later("create", "k9", accepted("k9")) is False
    assert journal.find("k3") is not None  # resolve_later committed what was waiting
    journal.fold()
    assert committed(path) == folded(path)
    assert [key for key, state, _ in folded(path) if state == "settled"] == ["k0"]


async def test_a_run_written_on_the_folds_thread_commits_once_and_misses_nothing(
    journal: SqliteJournal, path: Path
) -> None:
    folder = journal._folder
    assert folder is not None
    for i in range(3 * fold._SLICE):
        journal.taken(pending(f"k{i}"))
        journal.commit()
    while folder._writer.idle.is_set():  # read a step a turn, until the run goes to the thread
        assert folder._step(fold._SLICE, eager=True, threaded=True) is False
    assert len(committed(path)) == 3 * fold._SLICE  # readers see it all meanwhile
    folder._writer.idle.wait()
    assert folder.folded == 0  # the loop thread takes the mark at its next look
    journal.taken(pending("later"))  # after the run was read
    journal.commit()
    journal.fold()
    assert [key for key, _, _ in folded(path)] == [f"k{i}" for i in range(3 * fold._SLICE)] + [
        "later"
    ]
    assert log_rows(path) == 0


async def test_under_load_the_fold_waits_for_a_whole_run(
    journal: SqliteJournal, path: Path
) -> None:
    folder = journal._folder
    assert folder is not None
    journal.taken(pending("k"))
    journal.commit()
    # Not eager (the writer is busy): one commit is not a run yet, and nothing is written.
    assert folder._step(fold._SLICE, eager=False, threaded=False) is False
    assert folder._waits()
    assert folded(path) == []
    commits = fold._CHUNK + 2 * fold._SLICE
    for i in range(commits - 1):  # each intent settled in the commit after the one taking it
        item = pending(f"k{i}")
        journal.taken(item)
        journal.commit()
        journal.settled(item, accepted(item.key))
    while folder.folded == 0:  # read until the run is whole, then write it
        folder._step(fold._SLICE, eager=False, threaded=False)
    # One run of _CHUNK commits (or the few more its last read took); the rest waits.
    assert fold._CHUNK <= len(folded(path)) <= fold._CHUNK + fold._SLICE
    assert log_rows(path) == commits - len(folded(path))


async def test_the_journal_folds_by_itself_once_the_writer_is_quiet(
    journal: SqliteJournal, path: Path
) -> None:
    journal.taken(pending("k"))
    journal.commit()
    await wait_for(lambda: folded(path) == [("k", "taken", 0)])


def test_the_folder_folds_when_the_writer_is_quiet_or_the_tail_is_long_or_old() -> None:
    long, old = fold._TAIL_COMMITS, fold._LAG_S
    assert not fold.due(0, quiet=True, waited_s=old)
    assert fold.due(1, quiet=True, waited_s=0.0)
    assert not fold.due(long - 1, quiet=False, waited_s=old / 2)
    assert fold.due(long, quiet=False, waited_s=0.0)
    assert fold.due(1, quiet=False, waited_s=old)


async def wait_for(condition: Callable[[], bool]) -> None:
    """Until the journal's timers made ``condition`` true (they never take this long unless
    something is stuck)."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the journal did not get there by itself")


def log_rows(path: Path) -> int:
    with closing(sqlite3.connect(log_path(path))) as conn:
        (count,) = conn.execute("SELECT count(*) FROM commits").fetchone()
    return int(count)


async def test_the_same_key_can_be_journaled_again_after_settling(journal: SqliteJournal) -> None:
    first, again = pending("order-1", "cancel"), pending("order-1", "cancel")
    journal.taken(first)
    journal.settled(first, Closed(reason="first", order_id="order-1"))
    journal.taken(again)
    journal.commit()
    found = journal.find("order-1")
    assert found is not None
    assert found.state == "taken"


async def test_compaction_removes_only_old_settled_entries(path: Path) -> None:
    with SqliteJournal.open(path, exchange="test", keep_settled_s=0.0) as journal:
        old, open_ = pending("old"), pending("open")
        journal.taken(old)
        journal.taken(open_)
        journal.settled(old, accepted("old"))
        journal.commit()
        assert journal.compact() == 1
        assert [key for key, _, _ in committed(path)] == ["open"]
    with SqliteJournal.open(path, exchange="test", keep_settled_s=3600.0) as journal:
        recent = pending("recent")
        journal.taken(recent)
        journal.settled(recent, accepted("recent"))
        journal.commit()
        assert journal.compact() == 0


async def test_compaction_also_runs_periodically_by_itself(path: Path) -> None:
    with SqliteJournal.open(path, exchange="test", keep_settled_s=0.0, compact_every_s=0.0) as j:
        item = pending("gone")
        j.taken(item)
        j.settled(item, accepted("gone"))
        j.commit()
        await wait_for(lambda: committed(path) == [] and folded(path) == [])


def test_garbage_is_refused_and_left_as_it_was(path: Path) -> None:
    path.parent.mkdir(parents=True)
    garbage = b"this is not a database, but somebody's file\n" * 100
    path.write_bytes(garbage)
    with pytest.raises(JournalError, match="not a readable SQLite journal") as raised:
        SqliteJournal.open(path, exchange="test")
    assert str(path) in str(raised.value)
    assert path.read_bytes() == garbage


def truncate(path: Path) -> bytes:
    """Cut the journal file in half, as a full disk or a bad copy might; the bytes left."""
    with closing(sqlite3.connect(path)) as conn:  # everything into the main file first
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(data)
    return data


def unchanged(path: Path, data: bytes) -> bool:
    return path.read_bytes() == data


async def test_a_truncated_journal_is_refused_and_left_as_it_was(path: Path) -> None:
    with SqliteJournal.open(path, exchange="test") as journal:
        for i in range(2000):
            journal.taken(pending(f"key-{i:05d}-" + "x" * 40))
        journal.commit()
    truncated = truncate(path)
    with pytest.raises(JournalError, match=r"damaged|not a readable") as raised:
        SqliteJournal.open(path, exchange="test")
    assert str(path) in str(raised.value)
    assert unchanged(path, truncated)
    with pytest.raises(JournalError):
        SqliteJournal.read(path)


def test_another_programs_database_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
        conn.commit()
    with pytest.raises(JournalError, match="not a kalshi-router journal"):
        SqliteJournal.open(path, exchange="test")


def test_one_writer_at_a_time(journal: SqliteJournal, path: Path) -> None:
    with pytest.raises(JournalError, match="in use by another process"):
        SqliteJournal.open(path, exchange="test")
    with SqliteJournal.read(path) as reader:  # readers do not take the lock
        assert reader.counts() == {}


async def test_open_intents_of_another_exchange_are_refused(path: Path) -> None:
    with SqliteJournal.open(path, exchange="https://a.example/trade-api/v2") as journal:
        journal.taken(pending("k"))
    with pytest.raises(JournalError, match=re.escape("1 intents still open at https://a.example")):
        SqliteJournal.open(path, exchange="https://b.example/trade-api/v2")


def test_reading_a_missing_journal_says_so(path: Path) -> None:
    with pytest.raises(JournalError, match="no such file"):
        SqliteJournal.read(path)
    assert not path.exists()
