"""run.py and its summary: the scripts' JSON to tables, ratios, goals and options (no benchmark
is run)."""

from __future__ import annotations

from typing import Any

import pytest
from _summary import (
    goals,
    journal_tables,
    latency_tables,
    merge_tiers,
    render,
    saturation_tables,
    throughput_tables,
    wire_tables,
)
from run import SCENARIOS, parser, script_options


def _run(contender: str, in_flight: int, orders_per_s: float, cpu: float, **extra: Any) -> Any:
    return {
        "contender": contender,
        "key": "rsa",
        "loop": "uvloop",
        "in_flight": in_flight,
        "batch": 20,
        "status": "ok",
        "orders_per_s": orders_per_s,
        "cpu_us_per_order": cpu,
        "outcomes": {"accepted": 990, "rejected:x": 10},
        **extra,
    }


THROUGHPUT = {
    "settings": {"orders": 1000},
    "results": [
        _run("router", 4, 20_000.0, 30.0, vs_router=1.0, cpu_vs_router=1.0),
        _run("naive-single", 4, 1_000.0, 450.0, vs_router=0.05, cpu_vs_router=15.0, batch=1),
        _run("pykalshi", 4, 8_000.0, 70.0, vs_router=0.4, cpu_vs_router=70 / 30),
        {"contender": "pykalshi", "key": "ed25519", "status": "skipped: RSA only"},
    ],
}


def _tier(utilization: float, http_429: int) -> dict[str, Any]:
    latency = {"p50": 2000.0, "p99": 2100.0, "p99.9": 2200.0}
    return {
        "utilization": utilization,
        "utilization_incl_burst": 0.95,
        "orders_per_s": 10.0,
        "ideal_orders_per_s": 10.0,
        "window_s": 2.0,
        "http_429_router_run": http_429,
        "sim_rate_limited_run": http_429,
        "submit_to_outcome_ms": latency,
        "router_cpu_us_per_order": 90.0,
        "average_batch_fill": 20.0,
        "batch_limit": 20,
    }


def test_throughput_rows_keep_the_scripts_ratios_and_list_a_skipped_peer() -> None:
    [tab] = throughput_tables(THROUGHPUT)
    names = [r["contender"] for r in tab["rows"]]
    assert names == [
        "router (rsa, uvloop)",
        "naive-single (rsa, uvloop)",
        "pykalshi (rsa, uvloop)",
        "pykalshi (ed25519)",
    ]
    assert tab["rows"][1]["vs_router"] == 0.05
    assert tab["rows"][1]["not_accepted"] == 10
    assert tab["rows"][3] == {"contender": "pykalshi (ed25519)", "skipped": "skipped: RSA only"}
    text = render(tab)
    assert "0.05x" in text
    assert "15.00x" in text
    assert "skipped: RSA only" in text.splitlines()[-1]


def test_goals_turn_ratios_into_multiples_of_the_router() -> None:
    lines = goals({"throughput": THROUGHPUT})
    assert (
        "router CPU <= 20 µs/order, router (rsa, uvloop) at 4 in flight: 30.0 µs, MISSED" in lines
    )
    assert "router >= 10x naive per-order at 4 in flight: 20.0x, met" in lines
    assert (
        "router >= 3x the best peer at 4 in flight (pykalshi (rsa, uvloop)): 2.5x, MISSED" in lines
    )


def test_latency_rows_say_what_the_router_adds_over_each_contender() -> None:
    raw = {
        "settings": {"samples": 3, "mean_ms": 10.0},
        "results": [
            {"contender": "router", "status": "ok", "count": 3, "p50": 1100.0, "p90": 1300.0,
             "p99": 1500.0, "max": 1600.0, "p50_vs_router": 1.0, "samples_us": [1, 2, 3]},
            {"contender": "floor", "status": "ok", "count": 3, "p50": 1000.0, "p90": 1200.0,
             "p99": 1400.0, "max": 1500.0, "p50_vs_router": 1000 / 1100},
            {"contender": "kalshi-python-async", "status": "skipped: needs Python >= 3.13"},
        ],
    }  # fmt: skip
    [tab] = latency_tables(raw)
    router, floor, skipped = tab["rows"]
    assert router["added_us"] == 0
    assert floor["added_us"] == pytest.approx(100.0)
    assert floor["vs_router"] == pytest.approx(0.909, abs=1e-3)
    assert router["samples_us"] == [1, 2, 3]
    assert skipped["skipped"] == "skipped: needs Python >= 3.13"
    assert "median added latency over the bare signed POST <= 50 µs: 100 µs, MISSED" in goals(
        {"latency": raw}
    )


def test_tiers_run_apart_merge_in_order_into_one_table() -> None:
    parts = [
        {"settings": {"seconds": 2.0}, "saturation": {name: _tier(u, n)}, "burst": {}}
        for name, u, n in (("basic", 1.0, 0), ("prime", 0.98, 1))
    ]
    merged = merge_tiers(parts, parallel=True)
    assert list(merged["saturation"]) == ["basic", "prime"]
    assert merged["settings"]["tiers"] == ["basic", "prime"]
    [tab] = saturation_tables(merged)
    assert "side by side" in tab["title"]
    assert [r["contender"] for r in tab["rows"]] == ["basic", "prime"]
    lines = goals({"saturation": merged})
    assert lines[0].endswith("met")
    assert lines[1].endswith("MISSED")
    assert "98.00%" in render(tab)


def test_wire_sections_each_get_a_table() -> None:
    row = {"contender": "x", "us_per_batch": 20.0, "us_per_order": 1.0, "vs_router": 2.0}
    tables = wire_tables({"results": {"encode": [row], "decode": [row], "sign": [row]}})
    assert [t["name"] for t in tables] == ["wire/encode", "wire/decode", "wire/sign"]
    assert "2.00x" in render(tables[0])


def test_journal_rows_are_on_over_off_per_shape_and_the_goal_says_which() -> None:
    def medians(orders_per_s: float, cpu: float) -> dict[str, float]:
        return {
            "orders_per_s": orders_per_s,
            "cpu_us_per_order": cpu,
            "fold_cpu_us_per_order": 0.0,
            "commits": 0,
        }

    raw = {
        "settings": {"orders": 5000, "sustained": 20000, "rounds": 2},
        "figures": {
            "burst": {
                "orders": 5000,
                "off": medians(10_000, 50),
                "on": medians(9_000, 60),
                "on_vs_off": 0.9,
            },
            "sustained": {
                "orders": 20000,
                "off": medians(10_000, 50),
                "on": medians(8_000, 70),
                "on_vs_off": 0.8,
            },
        },
    }
    [tab] = journal_tables(raw)
    on = [(r["contender"], round(r["vs_off"], 2), r["cpu_added_us"]) for r in tab["rows"]]
    assert on[1::2] == [
        ("journal on, burst (5,000 orders)", 0.9, 10),
        ("journal on, sustained (20,000 orders)", 0.8, 20),
    ]
    assert "x off" in render(tab)
    lines = goals({"journal": raw})
    assert [line.split(" orders/s, ")[1].split(" (")[0] for line in lines] == [
        "burst",
        "sustained",
    ]
    assert [line.rsplit(", ", 1)[1] for line in lines] == ["met", "MISSED"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            [],
            [
                *("--orders", "3000", "--warmup", "200"),
                *("--in-flight", "1,4", "--batch", "20", "--repeat", "2"),
            ],
        ),
        (["--long"], []),
        (["--long", "--orders", "500"], ["--orders", "500"]),
        (
            ["--orders", "500", "--throughput-args", "--peers none --orders 9"],
            [*SCENARIOS[1].short, "--orders", "500", "--peers", "none", "--orders", "9"],
        ),
    ],
)
def test_script_options_short_long_sized_and_passed_through(
    argv: list[str], expected: list[str]
) -> None:
    throughput = next(s for s in SCENARIOS if s.name == "throughput")
    assert script_options(throughput, parser().parse_args(argv)) == expected


def test_unknown_scenarios_and_tiers_are_refused() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["--only", "wire,bogus"])
    with pytest.raises(SystemExit):
        parser().parse_args(["--tiers", "gold"])
