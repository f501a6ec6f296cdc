"""When each of the router's futures settled, and what paused the loop: bench_saturation's clock.

    timeline = Timeline()
    timeline.track(await router.submit_wait(intent), submitted=time.perf_counter())
    at, settled = await timeline.next_answer(timeout_s=5)   # the next batch's answer
    starts = answer_starts([at for at, _, _ in timeline.settled])

Answers of one batch settle their futures in one loop turn; answers of two batches this far
apart (``BATCH_GAP_S``) or more are two batches. Batches are >= 50 ms apart at the highest tier.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import time
from collections import Counter
from collections.abc import Sequence
from functools import partial
from typing import Any

from _contenders import future_label
from _report import quantiles

from kalshi_router import RouterStats

BATCH_GAP_S = 0.002


class GcPauses:
    """Stop-the-world collections while installed: they delay the dispatcher like any pause."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, int, float]] = []  # (started at, generation, seconds)
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(
                (self._started, info["generation"], time.perf_counter() - self._started)
            )

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def summary(self, start: float, end: float) -> dict[str, Any]:
        inside = [(gen, s) for at, gen, s in self.pauses if start <= at < end]
        return {
            "count": len(inside),
            "by_generation": dict(Counter(gen for gen, _ in inside)),
            "total_ms": sum(s for _, s in inside) * 1e3,
            "max_ms": max((s for _, s in inside), default=0.0) * 1e3,
        }


class Timeline:
    """Submit and outcome times of every future (perf_counter), in settle order."""

    def __init__(self) -> None:
        self.settled: list[tuple[float, float, str]] = []  # (settled at, latency, label)
        self._answer = asyncio.Event()
        self._answer_at = 0.0

    def track(self, future: asyncio.Future[Any], submitted: float) -> None:
        future.add_done_callback(partial(self._done, submitted))

    def _done(self, submitted: float, future: asyncio.Future[Any]) -> None:
        now = time.perf_counter()
        self.settled.append((now, now - submitted, future_label(future)))
        if not self._answer.is_set():
            self._answer_at = now
            self._answer.set()

    async def next_answer(self, timeout_s: float) -> tuple[float, int]:
        """Wait for the next batch's answer: when its first future settled, and how many had
        settled once all of its futures had. Their callbacks were queued together, before the
        wake-up of this task, so they have all run when it resumes."""
        self._answer.clear()
        try:
            await asyncio.wait_for(self._answer.wait(), timeout_s)
        except TimeoutError:
            raise RuntimeError(f"no outcome for {timeout_s:.1f} s: the router stalled") from None
        return self._answer_at, len(self.settled)


def latency_ms(latencies: Sequence[float]) -> dict[str, float]:
    """Count, p50, p99, p99.9 and max of latencies in seconds, in ms."""
    ordered = sorted(latencies)
    return {"count": len(ordered), **quantiles(ordered, ("p50", "p99", "p99.9", "max"), 1e3)}


def answer_starts(times: Sequence[float]) -> list[float]:
    """When each batch's answer arrived (futures settled within BATCH_GAP_S: one batch)."""
    starts: list[float] = []
    for previous, at in zip([-math.inf, *times], times, strict=False):
        if at - previous > BATCH_GAP_S:
            starts.append(at)
    return starts


def late_answers(
    starts: Sequence[float], ideal_s: float, gc_pauses: GcPauses, origin: float
) -> list[dict[str, float]]:
    """Answers more than 10 ms later than one cycle after the previous one, and how much GC
    ran in between: the evidence for what delayed the dispatcher."""
    late = []
    for a, b in itertools.pairwise(starts):
        if b - a > ideal_s + 0.010:
            gc_s = sum(s for at, _, s in gc_pauses.pauses if a <= at < b)
            late.append({"at_s": a - origin, "gap_ms": (b - a) * 1e3, "gc_ms": gc_s * 1e3})
    return late


def batch_fill(before: RouterStats, after: RouterStats) -> tuple[int, float]:
    """Batches sent between two ``stats()`` and their average fill."""
    batches = after.batches_sent - before.batches_sent
    items = (
        after.average_batch_fill * after.batches_sent
        - before.average_batch_fill * before.batches_sent
    )
    return batches, (items / batches if batches else 0.0)
