"""The figures of a ``_shared_budget`` run, from what the simulator and the routers reported:
pure functions of their numbers (see ``_shared_budget`` for the window rule)."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from _report import percentile

SETTLE_S = 0.5
"""The warm-up of a shared bucket, and how long after an event its "after" window starts."""
Timeline = Sequence[tuple[float, str, str]]
"""A router's outcomes: (time.monotonic(), kind, outcome name)."""


def fit_rate(points: Sequence[tuple[float, float]], apart: float) -> float | None:
    """The median of the slopes between (time, count) points at least ``apart`` s apart (a
    Theil-Sen estimate): a stall of the simulator (its backlog stamped late, then caught up)
    moves a few of those slopes, not their median. None without such a pair."""
    ordered = sorted(points)
    slopes = [
        (v2 - v1) / (t2 - t1)
        for (t1, v1), (t2, v2) in itertools.combinations(ordered, 2)
        if t2 - t1 >= apart
    ]
    return statistics.median(slopes) if slopes else None


def utilization(
    points: Sequence[tuple[float, float]], start: float, end: float, refill: float
) -> float | None:
    """Accepted tokens per second over [start, end], from pairs of points at least half the
    window apart, over the refill rate."""
    inside = [(t, v) for t, v in points if start <= t <= end]
    rate = fit_rate(inside, (end - start) / 2)
    return None if rate is None else rate / refill


def waits_ms(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "count": len(ordered),
        "p50": percentile(ordered, 0.5) * 1e3,
        "p99": percentile(ordered, 0.99) * 1e3,
        "max": (ordered[-1] if ordered else 0.0) * 1e3,
    }


def longest_gap(stamps: Sequence[float], start: float, end: float) -> float:
    """The longest time in [start, end] with none of the (sorted) ``stamps``."""
    inside = [start, *(t for t in stamps if start < t < end), end]
    return max(b - a for a, b in itertools.pairwise(inside))


def create_shares(outcomes: Iterable[dict[str, dict[str, int]]]) -> list[float]:
    """Each router's share of the creates accepted, smallest first (1/N each when fair)."""
    counts = [by_kind.get("create", {}).get("accepted", 0) for by_kind in outcomes]
    total = sum(counts)
    return sorted(n / total for n in counts) if total else []


def shared_figures(each: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The routers' ``stats().shared_budget`` together: sums, and the Redis call's p50 (the
    median router's) and p99 (the worst router's), µs. None for the local backend."""
    figures = [f for f in each if f is not None]
    if not figures:
        return None
    p50s = sorted(f["call_p50_us"] for f in figures)
    sums = ("calls", "failures", "forfeited", "fresh_starts", "credit_spent")
    return {
        **{name: sum(f[name] for f in figures) for name in sums},
        "call_p50_us": p50s[len(p50s) // 2],
        "call_p99_us": max(f["call_p99_us"] for f in figures),
    }


def booked(each: list[list[int] | None]) -> dict[str, int] | None:
    """The waits the shared bucket gave cancels' bookings (µs): how many, and the longest."""
    waits = [w for one in each if one is not None for w in one]
    if all(one is None for one in each):
        return None
    return {
        "count": len(waits),
        "nonzero": sum(1 for w in waits if w),
        "max": max(waits, default=0),
    }


def merge(dicts: Iterable[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    merged: dict[str, dict[str, int]] = {}
    for by_kind in dicts:
        for kind, counts in by_kind.items():
            into = merged.setdefault(kind, {})
            for name, n in counts.items():
                into[name] = into.get(name, 0) + n
    return merged


def accepted_creates(timelines: Iterable[Timeline]) -> list[float]:
    return sorted(
        t for line in timelines for t, kind, name in line if (kind, name) == ("create", "accepted")
    )


def event_figures(
    events: list[dict[str, Any]],
    timelines: list[Timeline],
    points: Sequence[tuple[float, float]],
    stop: float,
    refill: float,
    bucket_s: float,
) -> None:
    """Add to each event (``at``: begun, ``done``: finished) what followed it: the outcomes
    until the next event (or the stop), how soon a create was accepted again, the longest
    stretch without one (from the event to a bucket of time after), and the utilization from
    ``SETTLE_S`` after it to the next event (or the stop)."""
    creates = accepted_creates(timelines)
    ends = [e["at"] for e in events[1:]] + [stop]
    for event, end in zip(events, ends, strict=False):
        done = event["done"]
        outcomes: dict[str, int] = {}
        for line in timelines:
            for t, kind, name in line:
                if done <= t < end:
                    outcomes[f"{kind} {name}"] = outcomes.get(f"{kind} {name}", 0) + 1
        event["outcomes_until_next"] = dict(sorted(outcomes.items()))
        first = next((t for t in creates if t > done), None)
        event["first_create_after_s"] = None if first is None else first - done
        event["create_gap_s"] = longest_gap(creates, event["at"], min(stop, done + bucket_s + 1))
        event["utilization_after"] = utilization(points, done + SETTLE_S, end, refill)
