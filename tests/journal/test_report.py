"""``kalshi-router journal``: the summary, the unresolved list, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from kalshi_router.cli import main
from kalshi_router.journal import SqliteJournal
from kalshi_router.outcome import Closed, Outcome, Unknown
from tests.journal.test_recover import intent, left_open


@pytest.fixture
async def path(tmp_path: Path) -> Path:
    path = tmp_path / "journal.sqlite3"
    with SqliteJournal.open(path, exchange="sim") as journal:
        for key in ("closed-1", "closed-2", "unknown-1"):
            left_open(journal, intent(key), sent=True)
        outcomes: dict[str, Outcome] = {
            "closed-1": Closed(reason="r", client_order_id="closed-1"),
            "closed-2": Closed(reason="r", client_order_id="closed-2"),
            "unknown-1": Unknown(reason="lookup failed", client_order_id="unknown-1"),
        }
        journal.resolve([(e.id, outcomes[e.key]) for e in journal.open_entries()])
        left_open(journal, intent("still-open"), sent=False)
    return path


def test_summary_counts_by_state_and_outcome(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["journal", "--path", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"journal {path}: 4 intents" in out
    assert "by state:   taken 1  sending 0  settled 3" in out
    assert "by outcome: closed 2  unknown 1" in out
    assert "unresolved: 2" in out
    assert "still-open" not in out


def test_unresolved_lists_each_one(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "--path", str(path), "--unresolved"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = [line for line in lines if line.startswith("  create")]
    assert len(listed) == 2
    assert "unknown-1" in listed[0]
    assert "unknown: lookup failed" in listed[0]
    assert "still-open" in listed[1]
    assert " taken " in listed[1]


def test_the_path_comes_from_the_config(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "router.toml"
    config.write_text(f'[journal]\npath = "{path}"\n')
    assert main(["journal", "--config", str(config)]) == 0
    assert "4 intents" in capsys.readouterr().out


def test_a_damaged_or_missing_journal_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"\x00garbage" * 1000)
    assert main(["journal", "--path", str(garbage)]) == 2
    assert f"journal {garbage}: not a readable SQLite journal" in capsys.readouterr().err
    assert main(["journal", "--path", str(tmp_path / "none.sqlite3")]) == 2
    assert "no such file" in capsys.readouterr().err
