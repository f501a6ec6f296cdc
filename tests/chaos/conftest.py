"""The chaos runs' records, collected over the session and summarised at its end (shown with
``pytest -s``; written as JSON to ``$KALSHI_ROUTER_CHAOS_REPORT`` when that names a file)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.chaos import ChaosReport, dump


@pytest.fixture(scope="session")
def chaos_reports() -> Iterator[list[ChaosReport]]:
    reports: list[ChaosReport] = []
    yield reports
    if not reports:
        return
    text = dump(reports)
    print(f"\nchaos summary:\n{text}")
    if path := os.environ.get("KALSHI_ROUTER_CHAOS_REPORT"):
        Path(path).write_text(text + "\n")
