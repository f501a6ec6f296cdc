"""The soak benchmark, short: 5,000 intents through ``serve`` and its stream (see
``benchmarks/bench_soak.py``, which runs 200,000 by default). Nothing may leak: tasks, fds and
sockets of the service come back to where they were, RSS grows by a bounded amount, and every
intent has one outcome that the simulator's books agree with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kalshi_router.config import RouterConfig

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_soak.py"
INTENTS = 5_000
# The service keeps this many outcomes for GET /v1/orders/{key}: few, so that its memory has
# reached its plateau well before the end of so short a run.
KEEP = 500
# The router's pool of connections to the exchange, opened during the run and kept.
POOL = RouterConfig().max_in_flight + 2
RSS_GROWTH_KB = 24 * 1024
FILES_OPENED_LAZILY = 2


@pytest.mark.timeout(120)
def test_a_short_soak_leaks_nothing(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [
            *(sys.executable, str(SCRIPT), "--intents", str(INTENTS)),
            *("--keep-outcomes", str(KEEP), "--outstanding", "1000", "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(out.read_text())
    print(done.stdout)

    assert result["one_outcome_each"]
    assert result["outcomes"] == {"accepted": INTENTS}
    assert result["books"] == {
        "held": INTENTS,
        "duplicates": 0,
        "accepted_missing_or_other_id": 0,
        "held_not_accepted": 0,
    }
    growth = result["growth"]
    # Under load and after it, with the same clients connected: the same tasks and sockets,
    # but for the pool to the exchange, which opens a connection when the load calls for one
    # (a slow answer, on a busy machine): never more than its limit.
    # Files may be opened once, lazily (SQLite reopens the journal's WAL): a few, not more.
    assert growth["tasks"] == 0, growth
    assert growth["sockets"] == growth["exchange_sockets"], growth
    assert all(s["exchange_sockets"] <= POOL for s in result["samples"]), result["samples"]
    assert 0 <= growth["fds"] <= FILES_OPENED_LAZILY, growth
    # Clients gone: back to idle, but for the pool of connections to the exchange.
    assert growth["tasks_after_vs_idle"] == 0, growth
    assert 0 <= growth["sockets_after_vs_idle"] <= POOL, growth
    files = growth["fds_after_vs_idle"] - growth["sockets_after_vs_idle"]
    assert 0 <= files <= FILES_OPENED_LAZILY, growth
    assert growth["rss_kb"] < RSS_GROWTH_KB, growth
    assert result["service_exit_code"] == 0
