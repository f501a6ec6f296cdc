"""bench_kill, tiny: the simulator in its own process, 20 orders resting under a bot's load,
each cancel-all mode once; every run ends with nothing resting and figures that add up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench_kill import main, render, summarise

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_kill.py"
ORDERS = 20


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("kill") / "kill.json"
    options = ["--orders", str(ORDERS), "--tiers", "premier", "--cancel-all", "ok,fails"]
    options += ["--runs", "1", "--load-s", "0.2", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *options],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "kill() p50/p99 ms" in done.stdout
    data: dict[str, Any] = json.loads(out.read_text())
    return data


@pytest.mark.timeout(120)
def test_every_run_leaves_nothing_resting_and_its_times_are_in_order(
    result: dict[str, Any],
) -> None:
    runs = result["runs"]
    assert [r["cancel_all_mode"] for r in runs] == ["ok", "fails"]
    for r in runs:
        assert r["done"], r
        assert r["resting_after"] == 0
        # The tracker followed the orders seeded in the books; the bot's own rested too.
        assert r["followed"] == ORDERS
        assert r["resting_at_kill"] >= ORDERS
        # The engine emptied, then REST said so, then kill() returned.
        assert 0 < r["cancelled_ms"] <= r["confirmed_ms"] <= r["returned_ms"]
        assert r["bot_errors"] == 0
        assert r["write_tokens"] > 0
        assert 0 <= r["cancel_all_sent_ms"] <= r["cancel_all_answered_ms"] <= r["returned_ms"]
        assert r["read_tokens"] > 0


@pytest.mark.timeout(120)
def test_cancel_all_takes_them_all_or_else_they_go_one_by_one(result: dict[str, Any]) -> None:
    ok, fails = result["runs"]
    assert ok["cancel_all"] == "sent"
    assert ok["by_cancel_all"] >= ORDERS
    assert fails["cancel_all"].startswith("failed: HTTP 503")
    assert fails["by_cancel_all"] == 0
    assert fails["one_by_one"] >= ORDERS  # the bot never touches those
    assert fails["one_by_one_confirmed"] >= ORDERS
    # Each one by one costs a cancel (2 tokens); cancel-all costs one cancel for them all.
    assert fails["write_tokens"] >= 2 * fails["one_by_one"] > ok["write_tokens"]


@pytest.mark.timeout(120)
def test_the_table_has_a_row_per_mode(result: dict[str, Any]) -> None:
    rows = summarise(result["runs"])
    assert [(r["cancel_all_mode"], r["orders"], r["runs"], r["done"]) for r in rows] == [
        ("ok", ORDERS, 1, 1),
        ("fails", ORDERS, 1, 1),
    ]
    text = render(rows, 1)
    assert "simulator in its own process" in text
    assert text.splitlines()[-1].startswith("premier, 20, cancel-all fails")
    assert result["settings"]["sim"] == "own process"


def test_options_are_checked() -> None:
    with pytest.raises(SystemExit):
        main(["--runs", "0"])
    with pytest.raises(SystemExit):
        main(["--cancel-all", "sometimes"])
