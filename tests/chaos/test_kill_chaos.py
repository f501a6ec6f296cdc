"""The kill switch under load and under faults (see ``tests.chaos.kill_chaos``): the books end
empty of our orders, no create is written after the halt, and the router takes creates again
once resumed. ``KALSHI_ROUTER_CHAOS_LONG=1`` runs more seeds, more orders, longer loads:

    KALSHI_ROUTER_CHAOS_LONG=1 python -m pytest tests/chaos/test_kill_chaos.py -s -n0
"""

from __future__ import annotations

import pytest

from tests.chaos.kill_chaos import CANCEL_ALL_FAILS, FAST, LONG, REST_FAULTS, run
from tests.long import is_long

IS_LONG = is_long("CHAOS")
MODE = LONG if IS_LONG else FAST
# One seed in the suite (it must stay fast); the long mode draws ten.
SEEDS = range(10) if IS_LONG else range(1)
long_timeout = pytest.mark.timeout(600 if IS_LONG else 60)


@long_timeout
@pytest.mark.parametrize("seed", SEEDS)
async def test_the_kill_switch_clears_the_books_under_load_and_faults(seed: int) -> None:
    record = await run(seed, MODE, REST_FAULTS, "rest+ws")
    print(record.line())
    assert record.problems == []
    assert record.report is not None
    # The run did what it is for: orders rested at the kill, faults struck, and the bot's
    # creates after the halt were refused.
    assert record.resting_at_kill > 0
    assert sum(record.faults.values()) > 0
    assert record.refused_after_halt > 0


@long_timeout
@pytest.mark.parametrize("seed", [100, 101] if IS_LONG else [100])
async def test_when_cancel_all_fails_the_orders_go_one_by_one(seed: int) -> None:
    record = await run(seed, MODE, CANCEL_ALL_FAILS, "cancel-all fails")
    print(record.line())
    assert record.problems == []
    assert record.report is not None
    assert record.report.cancel_all.startswith("failed")
    assert record.cancel_all_ran == 0
    assert record.report.cancels_sent >= record.resting_at_kill // 2
