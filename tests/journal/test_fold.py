"""When a run of the commit log is ready to be written (``fold.whole``)."""

from __future__ import annotations

from kalshi_router.journal import fold
from kalshi_router.journal.rows import Changes
from tests.journal.test_rows import commit


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
