"""Figures and how they are shown: percentiles, ratios, the one table renderer, and the goals.

    print(table("title", ["contender", "orders/s", "x router"], [["router", "9,000", "1.00x"]]))
    ROUTER_CPU_US["rsa"].met(37.3)                  # False: the goal is <= 20 µs per order

Every goal is defined here once: the scripts and run.py each phrase the lines their own way,
but what is measured against what, and where the line is, comes from here. Goals are
reported, never asserted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from _data import BATCH
from _peers import PEER_NAMES

ROUTER, NAIVE_SINGLE, NAIVE_BATCH = "router", "naive-single", "naive-batch"
QUANTILES: dict[str, float] = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p99.9": 0.999, "max": 1.0}


# -- figures -------------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted samples (0.0 when there are none)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n * q), at least the first sample
    return ordered[min(len(ordered), int(rank)) - 1]


def quantiles(
    ordered: Sequence[float], names: Iterable[str], scale: float = 1.0
) -> dict[str, float]:
    """The named ``QUANTILES`` of already sorted samples, times ``scale`` (1e3: ms from s)."""
    return {name: percentile(ordered, QUANTILES[name]) * scale for name in names}


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value`` over the reference figure; None when either is missing or the reference is 0."""
    if value is None or not reference:
        return None
    return value / reference


# -- text ----------------------------------------------------------------------------------------


def format_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def cell(value: Any, spec: str) -> str:
    """``value`` formatted by ``spec``, "-" where there is none."""
    return "-" if value is None else format(value, spec)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        rest = "".join(f"  {v:>{w}}" for v, w in zip(cells[1:], widths[1:], strict=True))
        return first + rest

    return "\n".join([title, line(columns), *(line(r) for r in rows)])


# -- goals ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Goal:
    """A figure's target: at most ``limit`` (a cost), or at least (``at_least``: a gain).
    ``what`` says it with ``{:g}`` where the limit goes; ``figure`` shows a measured value."""

    what: str
    limit: float
    figure: str = "{:g}"
    at_least: bool = False
    strict: bool = False
    """Below (or above) the limit, not at it."""

    @property
    def text(self) -> str:
        return self.what.format(self.limit)

    def met(self, value: float) -> bool:
        if self.strict:
            return value > self.limit if self.at_least else value < self.limit
        return value >= self.limit if self.at_least else value <= self.limit


ROUTER_CPU_US: dict[str, Goal] = {
    key: Goal("router CPU <= {:g} µs/order", limit, "{:.1f} µs")
    for key, limit in (("rsa", 20.0), ("ed25519", 10.0))
}
"""The router's own CPU per order at full batches, limits off, by key."""
BELOW_NAIVE_BATCH = Goal(
    f"router CPU below naive-batch's (batch {BATCH}, in-flight 1)", 1.0, "{:.2f}x", strict=True
)
"""The router's CPU per order over the naive sequential batches' (``naive-batch``), with the same
key and loop, at batch 20 and one request in flight (issue 16): below 1."""
OVER_NAIVE = Goal("router >= {:g}x naive per-order", 10.0, "{:.1f}x", at_least=True)
"""The router's orders/s over one signed POST per order, at the same in-flight limit."""
OVER_BEST_PEER = Goal("router >= {:g}x the best peer", 3.0, "{:.1f}x", at_least=True)
"""The router's orders/s over the peer that comes closest to it, at the same in-flight limit."""
BUDGET_USED = Goal(">= {:.0%}", 0.99, at_least=True)
"""Share of a tier's write budget turned into orders, with the queue never empty."""
NO_429 = Goal("no 429", 0.0)
"""429s, counted by the router and by the simulator."""
ADDED_LATENCY_US = Goal("median added latency over the bare signed POST <= {:g} µs", 50.0)
"""The router's median submit-to-outcome over a bare signed POST's, at low load."""
JOURNAL_ON_OFF = Goal("journal on >= {:g}x journal off orders/s", 0.85, "{:.3f}x", at_least=True)
"""The router's orders/s with the intent journal over without it, limits off (bench_journal)."""


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


@dataclass(frozen=True, slots=True)
class Check:
    """A goal against a figure of one throughput result row (bench_throughput's JSON)."""

    goal: Goal
    value: float
    row: Mapping[str, Any]

    @property
    def met(self) -> bool:
        return self.goal.met(self.value)

    def line(self, subject: str) -> str:
        """The goal, ``subject`` (which run: each caller's words), the figure, the verdict."""
        figure = self.goal.figure.format(self.value)
        return f"{self.goal.text}{subject}: {figure}, {verdict(self.met)}"


def throughput_checks(results: Iterable[Mapping[str, Any]]) -> list[Check]:
    """The throughput goals against bench_throughput's result rows, in this order: each router
    run at full batches, its CPU per order against its key's goal; each naive-batch run, the
    router's CPU per order over its own (same key and loop, batch 20, one in flight); per
    in-flight limit, the
    router's multiple of one POST per order; per in-flight limit, its multiple of the peer run
    that comes closest to the router with its key and loop (the highest ratio: so the goal
    holds against every peer), none where no peer ran."""
    ok = [r for r in results if r.get("status", "ok") == "ok"]
    checks = [
        Check(ROUTER_CPU_US[r["key"]], r["cpu_us_per_order"], r)
        for r in ok
        if r["contender"] == ROUTER and r["batch"] == BATCH
    ]
    for naive in (r for r in ok if r["contender"] == NAIVE_BATCH):
        for r in ok:
            same = (r["key"], r["loop"], r["in_flight"]) == (naive["key"], naive["loop"], 1)
            if r["contender"] == ROUTER and r["batch"] == BATCH and same:
                value = r["cpu_us_per_order"] / naive["cpu_us_per_order"]
                checks.append(Check(BELOW_NAIVE_BATCH, value, r))
    checks += [
        Check(OVER_NAIVE, 1 / r["vs_router"], r)
        for r in ok
        if r["contender"] == NAIVE_SINGLE and r.get("vs_router")
    ]
    peers = [r for r in ok if r["contender"] in PEER_NAMES and r.get("vs_router")]
    for in_flight in sorted({r["in_flight"] for r in peers}):
        best = max((r for r in peers if r["in_flight"] == in_flight), key=lambda r: r["vs_router"])
        checks.append(Check(OVER_BEST_PEER, 1 / best["vs_router"], best))
    return checks


def budget_met(utilization: float, http_429_router: int, http_429_sim: int) -> dict[str, bool]:
    """A saturated tier's goals, as bench_saturation's JSON records them."""
    return {
        "utilization_ge_99pct": BUDGET_USED.met(utilization),
        "no_429": NO_429.met(http_429_router) and NO_429.met(http_429_sim),
    }


def added_median_us(results: Iterable[Mapping[str, Any]]) -> float:
    """bench_latency's rows: the router's median minus the floor's (bare signed POST), µs."""
    by_name = {r["contender"]: r for r in results}
    return float(by_name["router"]["p50"] - by_name["floor"]["p50"])
