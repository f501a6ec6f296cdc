"""When the journal commits: settled (and taken) rows ride along with the next commit, there is
at most one commit per loop turn beside the batches sent, and a settled row lost in a crash only
makes recovery look its intent up."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import textwrap
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from kalshi_router.journal import SqliteJournal
from kalshi_router.journal.commit_log import log_path
from kalshi_router.journal.recover import recover
from kalshi_router.outcome import Accepted
from kalshi_router.wire.client import ExchangeClient
from tests.journal.test_recover import SETTLED_NOW, place
from tests.journal.test_store import accepted, committed, pending


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture
def journal(path: Path) -> Iterator[SqliteJournal]:
    with SqliteJournal.open(path, exchange="sim") as opened:
        yield opened


def last_seq(path: Path) -> int:
    """The log's newest commit: one a commit, never reused (the writer's count, from the file)."""
    with closing(sqlite3.connect(log_path(path))) as conn:
        (seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM commits").fetchone()
    return int(seq)


async def test_a_settled_row_rides_along_with_the_next_batchs_commit(
    journal: SqliteJournal, path: Path
) -> None:
    first, second = pending("a"), pending("b")
    journal.taken(first)
    journal.taken(second)
    first.attempts = 1
    journal.sending([first])
    assert (journal.commits, last_seq(path)) == (1, 1)
    journal.settled(first, accepted("a"))
    assert committed(path) == [("a", "sending", 1), ("b", "taken", 0)]  # waiting
    second.attempts = 1
    journal.sending([second])
    # One commit: the batch's, with the settled row in it.
    assert (journal.commits, last_seq(path)) == (2, 2)
    assert committed(path) == [("a", "settled", 1), ("b", "sending", 1)]
    await asyncio.sleep(0)  # the end of the turn: nothing left waiting, no commit
    assert (journal.commits, last_seq(path)) == (2, 2)


async def test_one_commit_per_loop_turn_whatever_it_holds(
    journal: SqliteJournal, path: Path
) -> None:
    sent = [pending(f"s{i}") for i in range(30)]
    for item in sent:
        journal.taken(item)
    journal.sending(sent)
    assert last_seq(path) == 1
    for turn in range(3):
        for i in range(50):
            journal.taken(pending(f"t{turn}-{i}"))
        for item in sent[turn * 10 : turn * 10 + 10]:
            journal.settled(item, accepted(item.key))
        assert last_seq(path) == 1 + turn  # all of it waits for the end of the turn
        await asyncio.sleep(0)
        assert (journal.commits, last_seq(path)) == (2 + turn, 2 + turn)
    states = [state for _, state, _ in committed(path)]
    assert (states.count("settled"), states.count("taken")) == (30, 150)


async def test_rows_after_a_batch_in_the_same_turn_wait_for_the_end_of_it(
    journal: SqliteJournal, path: Path
) -> None:
    item, later = pending("a"), pending("b")
    journal.taken(item)
    journal.sending([item])
    journal.taken(later)
    journal.settled(item, accepted("a"))
    assert journal.commits == 1
    await asyncio.sleep(0)
    assert journal.commits == 2
    assert committed(path) == [("a", "settled", 0), ("b", "taken", 0)]


_CHILD = """
import asyncio, os, signal, sys, time
from decimal import Decimal
from pathlib import Path
from kalshi_router.intent import OrderIntent
from kalshi_router.journal import SqliteJournal
from kalshi_router.outcome import Accepted
from kalshi_router.pending import Pending

async def main(path: Path, key: str, order_id: str) -> None:
    loop = asyncio.get_running_loop()
    journal = SqliteJournal.open(path, exchange="sim")
    payload = OrderIntent.bid("KXRECOVER-26DEC31-T50", "0.30", 1, client_order_id=key)
    item = Pending("create", key, payload.ticker, payload, loop.create_future(), 0.0, 0.0,
                   time.time(), attempts=1)
    journal.taken(item)
    journal.sending([item])
    journal.settled(item, Accepted(client_order_id=key, order_id=order_id,
                                   fill_count=Decimal(0), remaining_count=Decimal(1)))
    os.kill(os.getpid(), signal.SIGKILL)  # before the end of the turn: the settled row waits

asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
"""


async def test_a_settled_row_lost_in_a_crash_is_looked_up_at_recovery(
    path: Path, client: ExchangeClient
) -> None:
    order_id = await place(client, "landed")
    child = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", textwrap.dedent(_CHILD), str(path), "landed", order_id),
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await child.communicate()
    assert child.returncode == -signal.SIGKILL, stderr.decode()
    with SqliteJournal.open(path, exchange="sim") as journal:
        [entry] = journal.open_entries()
        assert (entry.key, entry.state) == ("landed", "sending")  # its settled row was lost
        found = await recover(journal, client, SETTLED_NOW)
        assert found.counts == {"accepted": 1}
        settled = journal.find("landed")
        assert settled is not None
        assert isinstance(settled.outcome, Accepted)
        assert settled.outcome.order_id == order_id
