"""Which runs are long, and which hypothesis profile each draws with."""

from __future__ import annotations

import pytest

from tests.long import hypothesis_profile, is_long


@pytest.mark.parametrize(
    ("environ", "chaos", "crash", "profile"),
    [
        pytest.param({}, False, False, "deterministic", id="default"),
        pytest.param({"KALSHI_ROUTER_CHAOS_LONG": "1"}, True, False, "explore", id="chaos"),
        pytest.param({"KALSHI_ROUTER_CRASH_LONG": "1"}, False, True, "explore", id="crash"),
        pytest.param({"KALSHI_ROUTER_LONG": "1"}, True, True, "explore", id="all"),
        pytest.param({"KALSHI_ROUTER_LONG": "0"}, False, False, "deterministic", id="off"),
        pytest.param(
            {"KALSHI_ROUTER_LONG": "1", "HYPOTHESIS_PROFILE": "deterministic"},
            True,
            True,
            "deterministic",
            id="profile-wins",
        ),
        pytest.param({"HYPOTHESIS_PROFILE": "explore"}, False, False, "explore", id="explore"),
    ],
)
def test_long_runs_explore_with_new_examples(
    environ: dict[str, str], chaos: bool, crash: bool, profile: str
) -> None:
    assert is_long("CHAOS", environ) is chaos
    assert is_long("CRASH", environ) is crash
    assert hypothesis_profile(environ) == profile
