"""``SqliteJournal.resolve_later``: an intent settled unknown, found out later, reads as what it
turned out to be, and the journal keeps that it was unknown first."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from kalshi_router.journal import JournalError, SqliteJournal
from kalshi_router.journal.report import summary
from kalshi_router.outcome import Cancelled, Closed, Unknown
from tests.journal.test_store import accepted, pending

LOST = Unknown(reason="lookup timed out", client_order_id="c-1")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


async def settled_unknown(journal: SqliteJournal, key: str, kind: str = "create") -> None:
    item = pending(key, "cancel" if kind == "cancel" else "create")
    journal.taken(item)
    journal.settled(item, LOST)
    await asyncio.sleep(0)  # committed at the end of the turn


async def test_the_unknown_intent_takes_the_outcome_found(path: Path) -> None:
    with SqliteJournal.open(path, exchange="test") as journal:
        await settled_unknown(journal, "c-1")
        before = journal.find("c-1")
        assert before is not None
        assert before.unresolved
        assert journal.resolve_later("create", "c-1", accepted("c-1")) is True
        after = journal.find("c-1")
        assert after is not None
        assert (after.id, after.state, after.result) == (before.id, "settled", "accepted")
        assert after.outcome == accepted("c-1")
        assert not after.unresolved
        assert journal.unresolved() == []
        earlier = journal.earlier(after.id)
        assert earlier is not None
        assert (earlier.result, earlier.outcome, earlier.settled_at) == (
            "unknown",
            LOST,
            before.settled_at,
        )
        assert journal.counts() == {("settled", "accepted"): 1}
        assert journal.resolved_later() == 1
    # Durable: another process reading the file sees it resolved.
    with SqliteJournal.read(path) as reader:
        assert reader.unresolved() == []
        text = summary(reader, list_unresolved=True)
    assert "by outcome: accepted 1" in text
    assert "unresolved: 0" in text
    assert "resolved later: 1" in text


async def test_only_the_newest_unknown_of_that_kind_under_that_key(path: Path) -> None:
    with SqliteJournal.open(path, exchange="test") as journal:
        await settled_unknown(journal, "o-1", "cancel")
        await settled_unknown(journal, "o-1", "cancel")
        done = Cancelled(order_id="o-1", reduced_by=Decimal(1))
        assert journal.resolve_later("create", "o-1", accepted("o-1")) is False
        assert journal.resolve_later("cancel", "o-1", done) is True
        first, second = journal.history(None, "o-1", 10)[0]
        assert (first.result, second.result) == ("unknown", "cancelled")
        assert journal.resolve_later("cancel", "o-1", done) is True
        assert journal.resolve_later("cancel", "o-1", done) is False
        assert [e.result for e in journal.history(None, "o-1", 10)[0]] == ["cancelled"] * 2
        assert journal.resolve_later("cancel", "o-2", done) is False


async def test_nothing_but_a_settled_unknown_is_resolved(path: Path) -> None:
    with SqliteJournal.open(path, exchange="test") as journal:
        open_, known = pending("open"), pending("known")
        journal.taken(open_)
        journal.taken(known)
        journal.settled(known, Closed(reason="never sent", client_order_id="known"))
        for key in ("open", "known"):
            assert journal.resolve_later("create", key, accepted(key)) is False
        entries = {e.key: e for e in (journal.find("open"), journal.find("known")) if e}
        assert (entries["open"].state, entries["known"].result) == ("taken", "closed")
        assert journal.resolved_later() == 0
        with pytest.raises(ValueError, match="Unknown outcome resolves nothing"):
            journal.resolve_later("create", "known", LOST)


async def test_an_unknown_settled_this_turn_is_found_before_its_commit(path: Path) -> None:
    with SqliteJournal.open(path, exchange="test") as journal:
        item = pending("c-1")
        journal.taken(item)
        journal.settled(item, LOST)
        commits = journal.commits
        assert journal.resolve_later("create", "c-1", accepted("c-1")) is True
        assert journal.commits == commits + 1  # the waiting rows and the resolution, together
        with SqliteJournal.read(path) as reader:
            assert reader.counts() == {("settled", "accepted"): 1}


async def test_compaction_forgets_the_earlier_settlement_with_the_intent(path: Path) -> None:
    with SqliteJournal.open(path, exchange="test", keep_settled_s=0.0) as journal:
        await settled_unknown(journal, "c-1")
        journal.resolve_later("create", "c-1", accepted("c-1"))
        assert journal.compact() == 1
        assert journal.resolved_later() == 0


async def test_a_reader_cannot_resolve(path: Path) -> None:
    with SqliteJournal.open(path, exchange="test") as journal:
        await settled_unknown(journal, "c-1")
    with SqliteJournal.read(path) as reader, pytest.raises(JournalError, match="cannot write"):
        reader.resolve_later("create", "c-1", accepted("c-1"))


def test_a_journal_made_before_the_table_reads_as_none_resolved(path: Path) -> None:
    with SqliteJournal.open(path, exchange="test"):
        pass
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TABLE resolved")
        conn.commit()
    with SqliteJournal.read(path) as reader:
        assert (reader.resolved_later(), reader.earlier(1)) == (0, None)
        assert "resolved later: 0" in summary(reader, list_unresolved=False)
    with SqliteJournal.open(path, exchange="test") as journal:  # the writer adds it back
        assert journal.resolved_later() == 0
