"""Chaos: sustained load through the router and the service while the simulator injects faults
on schedules drawn from seeds (see ``tests.chaos.chaos``), then the invariants.

Fast mode (the default, for CI): one seed through the embedded router and one through the
service, 1.5 seconds of faults each (each seed's schedule strikes every kind of fault and
restarts the simulator once: a second seed would draw other timings of the same). Long mode,
``KALSHI_ROUTER_CHAOS_LONG=1``: ten seeds each, twenty seconds of faults, two-second
utilization windows. Every run prints its record with ``pytest -s -n0`` (in a parallel run the
workers' prints go nowhere); the session prints the totals (and writes them as JSON to
``$KALSHI_ROUTER_CHAOS_REPORT`` if set):

    KALSHI_ROUTER_CHAOS_LONG=1 python -m pytest tests/chaos/test_chaos.py -s -n0 -p no:randomly
"""

from __future__ import annotations

import pytest

from tests.chaos.chaos import (
    FAST,
    KINDS,
    LONG,
    READS,
    UTILIZATION_GOAL,
    ChaosReport,
    chaos_router,
    chaos_service,
    schedule,
)
from tests.long import is_long

IS_LONG = is_long("CHAOS")
MODE = LONG if IS_LONG else FAST
ROUTER_SEEDS = range(10) if IS_LONG else range(1)
SERVICE_SEEDS = range(100, 110) if IS_LONG else range(100, 101)
# Unknown is an honest answer (the lookup could not finish before the deadline) but must stay
# rare: at most this share of a run's intents.
UNKNOWN_SHARE = 0.02
long_timeout = pytest.mark.timeout(600 if IS_LONG else 60)


def test_a_schedule_is_fixed_by_its_seed_and_covers_every_kind() -> None:
    first = schedule(3, FAST)
    assert first == schedule(3, FAST)
    assert first != schedule(4, FAST)
    assert {kind for e in first.episodes for kind in e.kinds} == set(KINDS)
    assert 0 < first.restart_at_s < FAST.chaos_s
    # Every run below strikes every kind, the lookups too, whatever the number of seeds.
    for seed in (*ROUTER_SEEDS, *SERVICE_SEEDS):
        episodes = schedule(seed, MODE).episodes
        assert {kind for e in episodes for kind in e.kinds} == set(KINDS), seed
        assert any(READS in e.faults.paths for e in episodes), seed


def check_report(report: ChaosReport) -> None:
    print(report.summary())
    assert report.recovery_s is not None, f"utilization never reached {UTILIZATION_GOAL}"
    assert report.recovery_s <= MODE.recovery_limit_s
    unknown = report.outcomes["unknown"]
    assert unknown <= UNKNOWN_SHARE * report.intents, report.outcomes
    assert report.outcomes["accepted"] > 0
    # The faults struck: the schedule's kinds at the sim, and the router saw them.
    assert report.faults["restart"] == 1
    struck = {kind for kind, n in report.faults.items() if n}
    assert len(struck & set(KINDS)) >= len(KINDS) // 2, report.faults
    assert report.router["retries"] > 0
    assert report.router["reconciliations"] > 0


@long_timeout
@pytest.mark.parametrize("seed", ROUTER_SEEDS)
async def test_chaos_through_the_router(seed: int, chaos_reports: list[ChaosReport]) -> None:
    report = await chaos_router(seed, MODE)
    chaos_reports.append(report)
    check_report(report)


@long_timeout
@pytest.mark.parametrize("seed", SERVICE_SEEDS)
async def test_chaos_through_the_service(seed: int, chaos_reports: list[ChaosReport]) -> None:
    report = await chaos_service(seed, MODE)
    chaos_reports.append(report)
    check_report(report)
