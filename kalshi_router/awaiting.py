"""Awaiting many intents' outcomes at once, cheaply.

``asyncio.gather`` adds a callback to every future and wraps each in bookkeeping; on a batch of
intents that settle together that costs more than the router's own work per intent. Awaiting
them in turn suspends once per batch at most: by the time the first is done, its batch-mates
are too. Cancellation cancels every one still pending, as ``gather`` would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


async def all_of(futures: Sequence[asyncio.Future[T]]) -> list[T]:
    """Each future's result, in order; the first failure is raised (the others' failures are
    marked retrieved, so none is reported as lost)."""
    try:
        return [await future for future in futures]
    except BaseException:
        for future in futures:
            if future.done():
                if not future.cancelled():
                    future.exception()
            else:
                future.cancel()
        raise
