"""_runner: a coroutine on the loop asked for (asyncio where uvloop cannot be had)."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import _runner
import pytest


async def _loop_class() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_run_on_runs_on_the_loop_asked_for() -> None:
    pytest.importorskip("uvloop")
    assert _runner.run_on(_loop_class(), "uvloop").startswith("uvloop")
    assert _runner.run_on(_loop_class(), "asyncio").startswith("asyncio")


def test_without_uvloop_it_runs_on_asyncio_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def without_uvloop(name: str, *args: Any) -> Any:
        return None if name == "uvloop" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_uvloop)
    assert _runner.loop_in_use("uvloop") == "asyncio"
    assert _runner.default_loop() == "asyncio"
    assert _runner.run_on(_loop_class(), "uvloop").startswith("asyncio")
