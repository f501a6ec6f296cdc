"""One reader's order updates: an async iterator over a bounded buffer that the writer fills
without ever waiting."""

from __future__ import annotations

import asyncio
from collections import deque

from kalshi_router.errors import UpdatesOverflow
from kalshi_router.orders.updates import OrderUpdate

__all__ = ["DEFAULT_BOUND", "UpdateStream"]

DEFAULT_BOUND = 10_000
"""Updates a reader may fall behind before its stream ends (a few MB at most)."""


class UpdateStream:
    """The updates offered to one reader, in order; ``async for`` reads them.

    :meth:`offer` never blocks and never keeps more than ``bound`` updates: a reader that falls
    ``bound`` behind has its stream ended; it still reads the updates kept, and then
    :class:`~kalshi_router.errors.UpdatesOverflow`. :meth:`finish` ends the stream cleanly (the
    reader reads what was kept, then the iteration stops). One reader per stream: every call
    of ``updates()`` makes its own. :meth:`aclose` stops reading it early.
    """

    __slots__ = ("__weakref__", "_bound", "_buffer", "_ended", "_error", "_waiter", "_what")

    def __init__(self, what: str, bound: int = DEFAULT_BOUND) -> None:
        if bound < 1:
            raise ValueError(f"bound must be >= 1, got {bound}")
        self._what = what
        self._bound = bound
        self._buffer: deque[OrderUpdate] = deque()
        self._ended = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    @property
    def ended(self) -> bool:
        """No more updates will be offered (some may still be there to read)."""
        return self._ended

    def __len__(self) -> int:
        return len(self._buffer)

    def offer(self, update: OrderUpdate) -> None:
        """Keep ``update`` for the reader; end the stream instead if the buffer is full."""
        if self._ended:
            return
        if len(self._buffer) >= self._bound:
            self.finish(
                UpdatesOverflow(
                    f"{self._what}: the reader fell {self._bound} updates behind, so the stream "
                    "ended; read the router's current view (get, open_orders, positions) to "
                    "catch up, then call updates() again"
                )
            )
            return
        self._buffer.append(update)
        self._wake()

    def finish(self, error: BaseException | None = None) -> None:
        """End the stream: the reader reads what was kept, then stops (or gets ``error``)."""
        if self._ended:
            return
        self._ended = True
        self._error = error
        self._wake()

    async def aclose(self) -> None:
        """Stop reading: drop what was kept and end the stream."""
        self._buffer.clear()
        self.finish()
        self._error = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> UpdateStream:
        return self

    async def __anext__(self) -> OrderUpdate:
        while not self._buffer:
            if self._ended:
                error, self._error = self._error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._buffer.popleft()
