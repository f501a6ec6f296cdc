"""The README's chart from ``run.py``'s JSON: latency CDF at low load, throughput, CPU per order.

    python benchmarks/chart.py SUMMARY_JSON OUT_PNG

Three panels: submit-to-outcome at low load per contender (the samples' CDF where the latency
JSON has them, else the curve through its percentiles), orders/s with the limits off, and the
client process's CPU per order. Needs matplotlib (the ``bench`` extra); without it the chart
is skipped with a message and nothing else fails.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SKIPPED = "skipped: matplotlib not installed (pip install -e '.[bench]')"
ROUTER_COLOUR = "#1f77b4"
OTHER_COLOUR = "#b0b0b0"


def quantile(key: str) -> float | None:
    """The quantile a figure's key names: "p99.9" is 0.999, "max" 1.0; else None."""
    if key == "max":
        return 1.0
    if key.startswith("p"):
        with contextlib.suppress(ValueError):
            return float(key[1:]) / 100
    return None


def _rows(summary: Mapping[str, Any], scenario: str) -> list[Mapping[str, Any]]:
    tables = summary.get("scenarios", {}).get(scenario, {}).get("tables", [])
    return [r for t in tables for r in t["rows"] if "skipped" not in r]


def latency_curves(summary: Mapping[str, Any]) -> dict[str, tuple[list[float], list[float]]]:
    """Per latency contender: (µs, share of orders done by then), ascending."""
    curves = {}
    for row in _rows(summary, "latency"):
        if samples := row.get("samples_us"):
            xs = sorted(samples)
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
        else:
            points = sorted(
                (row[key], q) for key in row if (q := quantile(key)) is not None and row[key]
            )
            xs, ys = [x for x, _ in points], [q for _, q in points]
        curves[row["contender"]] = (xs, ys)
    return curves


def throughput_bars(summary: Mapping[str, Any]) -> list[tuple[str, float, float | None]]:
    """(label, orders/s, CPU µs/order) per throughput run, fastest first."""
    bars = [
        (
            f"{r['contender']} [{r['in_flight']} in flight]",
            float(r["orders_per_s"]),
            r.get("cpu_us_per_order"),
        )
        for r in _rows(summary, "throughput")
    ]
    return sorted(bars, key=lambda bar: bar[1], reverse=True)


def _caption(machine: Mapping[str, Any]) -> str:
    load = machine.get("load_average")
    return (
        f"{machine.get('cpu', '?')}, {machine.get('logical_cores', '?')} cores"
        + (f" (load {load[0]:.2f} at the start)" if load else "")
        + f", {machine.get('python', '?')}, code {machine.get('code') or '?'}"
    )


def write_chart(summary: Mapping[str, Any], path: Path) -> str:
    """Draw the chart into ``path`` (PNG); what happened, for the caller to print."""
    try:
        import matplotlib
    except ImportError:
        return SKIPPED
    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    curves, bars = latency_curves(summary), throughput_bars(summary)
    # Constrained layout, not tight_layout: only the middle panel needs room for the labels.
    fig, (lat, rate, cpu) = plt.subplots(
        1, 3, figsize=(15, 5), dpi=90, layout="constrained", width_ratios=(1.1, 1.2, 0.7)
    )
    for name, (xs, ys) in curves.items():
        if len(xs) > 20:  # samples: the empirical CDF
            lat.plot(xs, ys, drawstyle="steps-post", label=name)
        else:  # percentiles only: the curve through them
            lat.plot(xs, ys, marker="o", label=name)
    lat.set(title="latency at low load (submit to outcome)", xlabel="µs", ylabel="share of orders")
    lat.set_xscale("log")
    # Plain numbers at each power of ten and nothing between: the default labels the minor
    # ticks too, in scientific notation, and they run into each other.
    lat.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    lat.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    lat.grid(alpha=0.3)
    if curves:
        lat.legend(fontsize=8, loc="lower right")
    labels = [label for label, _, _ in bars]
    colours = [ROUTER_COLOUR if label.startswith("router") else OTHER_COLOUR for label in labels]
    _barh(rate, labels, [b for _, b, _ in bars], colours, "orders/s, limits off", ",.0f")
    _barh(cpu, labels, [c or 0.0 for _, _, c in bars], colours, "client CPU µs per order", ".1f")
    cpu.set_yticklabels([])
    fig.suptitle(_caption(summary.get("machine", {})), fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)"


def _barh(
    ax: Axes,
    labels: Sequence[str],
    values: Sequence[float],
    colours: Sequence[str],
    title: str,
    spec: str,
) -> None:
    """Horizontal bars, first at the top, each with its figure written beside it."""
    positions = list(range(len(values)))[::-1]
    ax.barh(positions, values, color=colours)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    for y, value in zip(positions, values, strict=True):
        ax.text(value, y, f" {value:{spec}}", va="center", fontsize=8)
    ax.margins(x=0.2)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    summary = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    print(write_chart(summary, Path(args[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
