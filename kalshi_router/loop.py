"""Run a coroutine on uvloop when it is installed and the caller has not chosen a loop policy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None to keep asyncio's default (a custom policy is respected)."""
    if type(asyncio.get_event_loop_policy()) is not asyncio.DefaultEventLoopPolicy:
        return None
    try:
        import uvloop
    except ImportError:  # Windows, or not installed
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop where it can be."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
