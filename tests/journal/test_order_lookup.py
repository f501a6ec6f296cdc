"""The journal's lookups for ``GET /v1/orders/{key}``: one order's intents (newest first, with a
count), and the create that made an order id, through an index that journals made before it
get when opened."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path

from kalshi_router.intent import AmendIntent, CancelIntent
from kalshi_router.journal import SqliteJournal
from kalshi_router.journal.reads import _PLACED
from kalshi_router.outcome import Accepted, Amended, Cancelled
from tests.journal.test_recover import TICKER, intent, left_open


def settle_open(journal: SqliteJournal, order_id: str) -> None:
    outcomes = []
    for entry in journal.open_entries():
        if entry.kind == "create":
            outcome: Accepted | Amended | Cancelled = Accepted(
                client_order_id=entry.key,
                order_id=order_id,
                fill_count=Decimal(0),
                remaining_count=Decimal(1),
            )
        elif entry.kind == "cancel":
            outcome = Cancelled(order_id=entry.key, reduced_by=Decimal(1))
        else:
            outcome = Amended(order_id=entry.key)
        outcomes.append((entry.id, outcome))
    journal.resolve(outcomes)


def amend(order_id: str) -> AmendIntent:
    return AmendIntent(
        order_id=order_id, ticker=TICKER, side="bid", price=Decimal("0.31"), count=Decimal(2)
    )


async def test_an_orders_intents_newest_first_with_their_count(tmp_path: Path) -> None:
    with SqliteJournal.open(tmp_path / "j.sqlite3", exchange="sim") as journal:
        left_open(journal, intent("c"), sent=True)
        left_open(journal, intent("other"), sent=True)
        settle_open(journal, "x")
        for _ in range(3):
            left_open(journal, amend("x"), sent=True)
        left_open(journal, CancelIntent(order_id="x", ticker=TICKER), sent=False)
        journal.commit()
        entries, total = journal.history("c", "x", 10)
        assert [(e.kind, e.key, e.state) for e in entries] == [
            ("create", "c", "settled"),
            ("single", "x", "sending"),
            ("single", "x", "sending"),
            ("single", "x", "sending"),
            ("cancel", "x", "taken"),
        ]
        assert total == 5
        newest, total = journal.history("c", "x", 2)
        assert [e.kind for e in newest] == ["single", "cancel"]
        assert total == 5
        # A client_order_id is only ever a create's key; an order id never is.
        assert journal.history("x", "c", 10) == ([], 0)


async def test_the_create_that_made_an_order_id_even_in_an_older_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with SqliteJournal.open(path, exchange="sim") as journal:
        left_open(journal, intent("c"), sent=True)
        settle_open(journal, "x")
    # As a journal made before the index was.
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP INDEX intents_placed")
    with SqliteJournal.open(path, exchange="sim") as journal:
        placed = journal.placed("x")
        assert placed is not None
        assert (placed.kind, placed.key) == ("create", "c")
        assert journal.placed("c") is None
    with SqliteJournal.read(path) as reader:
        plan = reader._conn.execute(f"EXPLAIN QUERY PLAN {_PLACED}", ("x",)).fetchall()
    assert "USING INDEX intents_placed" in str(plan)
