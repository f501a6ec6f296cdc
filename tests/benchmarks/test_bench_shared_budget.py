"""bench_shared_budget, tiny: two routers at Basic with their own buckets and with the shared
one, then one router whose Redis goes away for a second. The shared runs earn no 429 and use
the budget; while Redis is away no create is sent, those whose deadline passes say why, and
cancels go on the router's credit; creates come back when Redis does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench_shared_budget import main

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_shared_budget.py"
CREDIT = 5
"""Cancels a router may send on credit while Redis is away (``cancel_credit`` 0: five)."""


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("shared") / "shared.json"
    options = ["--tiers", "basic", "--routers", "2", "--seconds", "2"]
    options += ["--down-s", "1", "--down-tier", "basic", "--down-routers", "1"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *options, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "| Basic | 2 |" in done.stdout
    assert "| down (" in done.stdout
    data: dict[str, Any] = json.loads(out.read_text())
    return data


@pytest.mark.timeout(120)
def test_the_shared_bucket_earns_no_429_where_two_local_ones_do_not_say_so(
    result: dict[str, Any],
) -> None:
    local, shared = result["runs"]
    assert (local["backend"], shared["backend"]) == ("local", "redis")
    assert shared["http_429_sim"] == shared["http_429_routers"] == 0
    assert shared["utilization"] >= 0.98
    assert shared["shared_budget"]["call_p50_us"] > 0
    assert shared["cancel_booked_wait_us"]["nonzero"] == 0
    # Two local buckets each think they own the account: what they send beyond it is refused.
    assert local["http_429_sim"] == local["http_429_routers"]
    assert local["shared_budget"] is None


@pytest.mark.timeout(120)
def test_without_redis_creates_fail_closed_and_cancels_spend_the_credit(
    result: dict[str, Any],
) -> None:
    down = result["down"]
    assert down["http_429_sim"] == down["http_429_routers"] == 0
    before, away, after = down["phases"]
    assert before["outcomes"].get("create accepted", 0) > 0
    assert away["outcomes"].get("create accepted", 0) == 0
    assert 0 < away["outcomes"].get("cancel cancelled", 0) <= CREDIT
    assert down["shared_budget"]["credit_spent"] <= CREDIT * 2
    unreachable = [k for k in down["details"] if "shared write budget is unreachable" in k]
    assert unreachable
    assert all(k.startswith(("create expired", "cancel expired")) for k in unreachable)
    assert after["outcomes"].get("create accepted", 0) > 0
    # Unknown is empty: the first create waits for the refill (one bucket is 1 s at Basic).
    assert down["events"][1]["first_create_after_s"] <= 1.5


def test_options_are_checked() -> None:
    with pytest.raises(SystemExit):
        main(["--seconds", "0.5"])
    with pytest.raises(SystemExit):
        main(["--backends", "memcached"])
