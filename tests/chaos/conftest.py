"""The chaos runs' records, collected over the session and summarised at its end (shown with
``pytest -s -n0``; written as JSON to ``$KALSHI_ROUTER_CHAOS_REPORT`` when that names a file,
which takes a run in one process: ``-n0``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.chaos import ChaosReport, dump


@pytest.fixture(scope="session")
def chaos_reports() -> Iterator[list[ChaosReport]]:
    path = os.environ.get("KALSHI_ROUTER_CHAOS_REPORT")
    if path and os.environ.get("PYTEST_XDIST_WORKER"):
        # Each worker's session has its own runs: one would write its totals over another's.
        pytest.fail("KALSHI_ROUTER_CHAOS_REPORT takes every run in one process: add -n0")
    reports: list[ChaosReport] = []
    yield reports
    if not reports:
        return
    text = dump(reports)
    print(f"\nchaos summary:\n{text}")
    if path:
        Path(path).write_text(text + "\n")
