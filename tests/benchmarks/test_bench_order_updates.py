"""bench_order_updates, tiny: the simulator in its own process fills the router's bids, and the
JSON holds every figure with sane values; its summary row for run.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _summary import render, updates_tables
from bench_order_updates import main, parser
from run import SCENARIOS, script_options
from run import parser as run_parser

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_order_updates.py"
SAMPLES, FILLS, WARMUP, PER_ORDER = 20, 40, 5, 4


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("updates") / "updates.json"
    options = ["--samples", str(SAMPLES), "--gap-ms", "1", "--fills", str(FILLS)]
    options += ["--warmup", str(WARMUP), "--per-order", str(PER_ORDER), "--json", str(out)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *options],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "the router adds" in done.stdout
    data: dict[str, Any] = json.loads(out.read_text())
    return data


@pytest.mark.timeout(120)
def test_latency_pairs_every_fill_with_its_match(result: dict[str, Any]) -> None:
    latency = result["latency"]
    assert latency["count"] == SAMPLES
    lag = latency["match_to_fill_event_us"]
    assert set(lag) == {"p50", "p90", "p99", "max"}
    # A fill event comes after its match, and within the run's time.
    assert 0 < lag["p50"] <= lag["p90"] <= lag["p99"] <= lag["max"] < 30e6
    # An update a trade at least: its fill (the order's counts follow when they are news).
    assert latency["updates"] >= SAMPLES
    assert latency["cpu_us_per_update"] > 0
    floor = result["floor"]
    assert floor["count"] == SAMPLES
    bare = floor["match_to_fill_frame_us"]
    assert 0 < bare["p50"] <= bare["max"] < 30e6
    assert floor["frames"] >= 3 * SAMPLES  # fill, user_order, market_position
    adds = result["router_adds_us"]
    assert adds["p50"] == pytest.approx(lag["p50"] - bare["p50"])


@pytest.mark.timeout(120)
def test_the_flood_counts_updates_cpu_and_rates(result: dict[str, Any]) -> None:
    flood = result["flood"]
    assert flood["fills"] == FILLS
    # Between the first fill event and the last: the other fills, and the updates of the
    # orders' counts that are news.
    assert FILLS - 1 <= flood["updates"] <= 3 * FILLS
    assert flood["seconds"] > 0
    assert flood["updates_per_s"] == pytest.approx(flood["updates"] / flood["seconds"])
    assert flood["cpu_us_per_update"] > 0
    assert flood["cpu_us_per_fill"] > flood["cpu_us_per_update"]
    assert 0 < flood["client_busy"] <= 2.0  # all the process's threads, on 2 cores at most
    assert flood["ceiling_updates_per_s"] >= flood["updates_per_s"] * 0.5
    assert flood["sim_fills_per_s"] > 0
    assert flood["sim_cpu_us_per_fill"] > 0
    assert result["settings"]["per_order"] == PER_ORDER
    assert result["machine"]["logical_cores"] >= 1


@pytest.mark.timeout(120)
def test_run_py_shows_it_as_one_row(result: dict[str, Any]) -> None:
    [tab] = updates_tables(result)
    [row] = tab["rows"]
    assert row["p50_us"] == result["latency"]["match_to_fill_event_us"]["p50"]
    assert row["updates_per_s"] == result["flood"]["updates_per_s"]
    text = render(tab)
    assert "updates/s" in text
    assert text.splitlines()[-1].startswith("router")


def test_run_py_runs_it_short_and_sizes_it_with_fills() -> None:
    [scenario] = [s for s in SCENARIOS if s.name == "updates"]
    assert scenario.script == "bench_order_updates.py"
    options = script_options(scenario, run_parser().parse_args(["--fills", "500"]))
    assert options[-2:] == ["--fills", "500"]
    args = parser().parse_args(options)
    assert args.fills == 500


def test_options_are_checked() -> None:
    with pytest.raises(SystemExit):
        main(["--per-order", "0"])
