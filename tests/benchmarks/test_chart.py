"""chart.py draws from run.py's JSON, or says why it did not."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from chart import SKIPPED, latency_curves, quantile, throughput_bars, write_chart

SUMMARY: dict[str, Any] = {
    "machine": {"cpu": "test cpu", "logical_cores": 2, "python": "CPython 3.11"},
    "scenarios": {
        "latency": {
            "tables": [
                {
                    "rows": [
                        {"contender": "router", "samples_us": [float(x) for x in range(30, 0, -1)]},
                        {"contender": "floor", "p50": 900.0, "p99": 1500.0, "max": 2000.0},
                        {"contender": "peer", "skipped": "skipped: not installed"},
                    ]
                }
            ]
        },
        "throughput": {
            "tables": [
                {
                    "rows": [
                        {"contender": "naive", "in_flight": 1, "orders_per_s": 900.0,
                         "cpu_us_per_order": 400.0},
                        {"contender": "router", "in_flight": 4, "orders_per_s": 20000.0,
                         "cpu_us_per_order": 30.0},
                    ]
                }
            ]
        },
    },
}  # fmt: skip


def test_quantile_keys() -> None:
    assert quantile("p99.9") == pytest.approx(0.999)
    assert quantile("p50") == 0.5
    assert quantile("max") == 1.0
    assert quantile("count") is None
    assert quantile("peers") is None


def test_latency_curves_from_samples_or_percentiles() -> None:
    curves = latency_curves(SUMMARY)
    assert set(curves) == {"router", "floor"}
    xs, ys = curves["router"]
    assert xs == sorted(xs)
    assert ys[0] == pytest.approx(1 / 30)
    assert ys[-1] == 1.0
    assert curves["floor"] == ([900.0, 1500.0, 2000.0], [0.5, 0.99, 1.0])


def test_throughput_bars_fastest_first() -> None:
    assert throughput_bars(SUMMARY) == [
        ("router [4 in flight]", 20000.0, 30.0),
        ("naive [1 in flight]", 900.0, 400.0),
    ]


def test_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is in the bench extra")
    out = tmp_path / "chart.png"
    assert write_chart(SUMMARY, out).startswith(f"wrote {out}")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_it_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out = tmp_path / "chart.png"
    assert write_chart(SUMMARY, out) == SKIPPED
    assert not out.exists()
