"""bench_throughput's plan and ratios, and the comma-list options it shares."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from _data import BATCH
from _options import comma_list
from _report import NAIVE_BATCH, NAIVE_SINGLE, ROUTER
from _throughput_runs import Run, add_ratios, best_of, plan


def _args(**fields: Any) -> argparse.Namespace:
    defaults = {
        "in_flight": [1, 4],
        "batch": [20, 100],
        "key": ["rsa", "ed25519"],
        "loop": ["uvloop", "asyncio"],
        "peers": ["pykalshi", "kalshi-python-async"],
    }
    return argparse.Namespace(**(defaults | fields))


def test_plan_varies_batch_for_the_default_router_and_key_and_loop_at_batch_20() -> None:
    runs = plan(_args())

    assert len(set(runs)) == len(runs)
    routers = [r for r in runs if r.contender == ROUTER]
    default = [r for r in routers if (r.key, r.loop) == ("rsa", "uvloop")]
    assert {(r.in_flight, r.batch) for r in default} == {(1, 20), (1, 100), (4, 20), (4, 100)}
    variants = [r for r in routers if (r.key, r.loop) != ("rsa", "uvloop")]
    assert len(variants) == 3 * 2
    assert all(r.batch == BATCH for r in variants)
    # One per key: the router's CPU per order is held to it with each key.
    assert [r for r in runs if r.contender == NAIVE_BATCH] == [
        Run(NAIVE_BATCH, "rsa", "uvloop", 1, BATCH),
        Run(NAIVE_BATCH, "ed25519", "uvloop", 1, BATCH),
    ]
    assert {r.in_flight for r in runs if r.contender == NAIVE_SINGLE} == {1, 4}
    peers = [r for r in runs if r.contender not in (ROUTER, NAIVE_SINGLE, NAIVE_BATCH)]
    assert len(peers) == 2 * 2 * 2  # peer x key x in-flight, on the default loop
    assert {r.loop for r in peers} == {"uvloop"}


def test_plan_without_peers_or_variants() -> None:
    runs = plan(_args(key=["ed25519"], loop=["asyncio"], peers=[], in_flight=[2], batch=[20]))

    assert runs == [
        Run(ROUTER, "ed25519", "asyncio", 2, 20),
        Run(NAIVE_SINGLE, "ed25519", "asyncio", 2, 1),
        Run(NAIVE_BATCH, "ed25519", "asyncio", 1, 20),
    ]


def _result(contender: str, key: str, batch: int, per_s: float, cpu: float) -> dict[str, Any]:
    return {
        "contender": contender,
        "key": key,
        "loop": "uvloop",
        "in_flight": 1,
        "batch": batch,
        "status": "ok",
        "orders_per_s": per_s,
        "cpu_us_per_order": cpu,
    }


def test_ratios_are_against_the_router_with_the_same_key_at_batch_20() -> None:
    results = [
        _result(ROUTER, "rsa", 20, 10_000, 40),
        _result(ROUTER, "rsa", 100, 20_000, 20),
        _result(ROUTER, "ed25519", 20, 12_000, 25),
        _result("pykalshi", "rsa", 20, 5_000, 80),
        _result("kalshi-python-async", "ed25519", 20, 6_000, 50),
        {
            "contender": "pykalshi",
            "key": "ed25519",
            "loop": "uvloop",
            "in_flight": None,
            "batch": 20,
            "status": "skipped: RSA only",
            "skipped": "skipped: RSA only",
        },
    ]

    add_ratios(results)

    assert [r.get("vs_router") for r in results] == [1.0, 2.0, 1.0, 0.5, 0.5, None]
    assert [r.get("cpu_vs_router") for r in results] == [1.0, 0.5, 1.0, 2.0, 2.0, None]


def test_comma_list_keeps_order_drops_repeats_and_refuses_unknown_names() -> None:
    parse = comma_list(("rsa", "ed25519"))
    assert parse("ed25519, rsa,ed25519") == ["ed25519", "rsa"]
    with pytest.raises(argparse.ArgumentTypeError):
        parse("rsa,dsa")
    with pytest.raises(argparse.ArgumentTypeError):
        parse("none")
    assert comma_list(("a",), none_ok=True)("none") == []


def test_best_of_keeps_the_least_disturbed_repeat() -> None:
    rounds: list[dict[str, Any]] = [
        {"status": "ok", "cpu_us_per_order": 41.0, "orders_per_s": 9_000.0},
        {"status": "failed: sim died", "skipped": "failed: sim died"},
        {"status": "ok", "cpu_us_per_order": 33.5, "orders_per_s": 12_000.0},
    ]
    best = best_of(rounds)
    assert (best["cpu_us_per_order"], best["orders_per_s"], best["repeats"]) == (33.5, 12_000.0, 3)


def test_best_of_reports_a_failure_only_when_every_repeat_failed() -> None:
    failed: dict[str, Any] = {"status": "failed: sim died", "skipped": "failed: sim died"}
    assert best_of([failed, failed]) == {**failed, "repeats": 2}
