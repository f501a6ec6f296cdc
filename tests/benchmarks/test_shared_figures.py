"""The shared budget harness's figures (``_shared_figures``): utilization from the points the
simulator gives just after each batch of creates, and what followed an event."""

from __future__ import annotations

import random
from typing import Any

import pytest
from _shared_figures import Timeline, event_figures, longest_gap, utilization

RATE = 100.0


def _points(
    batches: list[int], stall: tuple[float, float] | None = None
) -> list[tuple[float, float]]:
    """Batches of ``batches[i]`` tokens, each sent the moment the bucket (refilled at ``RATE``)
    covers it; ``stall``: the simulator stamps nothing from its first to its second time, then
    the backlog all at once."""
    points, spent, at = [], 0.0, 0.0
    for cost in batches:
        at += cost / RATE
        spent += cost
        stamped = stall[1] if stall and stall[0] <= at < stall[1] else at
        points.append((stamped, spent))
    return points


def test_points_after_each_batch_give_the_rate_whatever_the_batch_sizes_and_window() -> None:
    rng = random.Random(7)
    points = _points([rng.choice((20, 40, 70)) for _ in range(60)])
    for start, end in ((0.0, 10.0), (1.23, 7.9), (3.3, 4.9)):
        assert utilization(points, start, end, RATE) == pytest.approx(1.0)
    # Against a refill twice as fast, half of it was used.
    assert utilization(points, 0.0, 10.0, 2 * RATE) == pytest.approx(0.5)


def test_a_stall_of_the_simulator_near_the_end_does_not_tilt_it() -> None:
    # A least-squares fit through the same points says 97.2 %.
    points = _points([40] * 50, stall=(8.6, 9.6))
    assert utilization(points, 0.0, 10.0, RATE) == pytest.approx(1.0, abs=0.002)


def test_too_few_points_give_no_figure() -> None:
    assert utilization(_points([70]), 0.0, 10.0, RATE) is None


def test_what_followed_each_event() -> None:
    timelines: list[Timeline] = [
        [(1.0, "create", "accepted"), (2.5, "cancel", "cancelled"), (4.0, "create", "accepted")],
        [(2.2, "create", "expired"), (3.5, "create", "accepted")],
    ]
    events: list[dict[str, Any]] = [{"at": 2.0, "done": 2.1}, {"at": 3.0, "done": 3.2}]
    event_figures(events, timelines, [], stop=5.0, refill=RATE, bucket_s=1.0)
    stopped, started = events
    assert stopped["outcomes_until_next"] == {"cancel cancelled": 1, "create expired": 1}
    assert started["outcomes_until_next"] == {"create accepted": 2}
    assert stopped["first_create_after_s"] == pytest.approx(1.4)
    assert started["first_create_after_s"] == pytest.approx(0.3)
    assert stopped["create_gap_s"] == pytest.approx(1.5)  # from 2.0 to the create at 3.5
    assert started["utilization_after"] is None


def test_the_longest_gap_counts_the_ends() -> None:
    assert longest_gap([1.0, 2.0, 2.5], 0.0, 5.0) == pytest.approx(2.5)
    assert longest_gap([], 1.0, 2.0) == pytest.approx(1.0)
