"""A dead-man's switch for an embedded router: Kalshi's REST API has none (only FIX has one),
so a bot that hangs or stops quoting with orders resting would leave them on the book.

The bot calls ``beat()`` while it is healthy (from its quoting loop, say). Once ``timeout_s``
pass without a beat, the watchdog calls ``cancel_open`` once (it cancels every open order and
says how many cancels it sent) and logs it; it then waits for the next beat, and is armed again
from that beat on. Before the first beat it is not armed: the bot opts in by beating.

A beat is a plain call and costs no turn of the loop. One task watches, started by the first
``beat()`` (or ``start()``) and cancelled and awaited by ``aclose()``. Time is the loop's clock
(``clock``: another monotonic source in seconds; the task sleeps on the loop for what it says
is left, so it must advance with the loop's time).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from kalshi_router.errors import ConfigError, RouterClosed

__all__ = ["Watchdog"]

log = logging.getLogger("kalshi_router.watchdog")


class Watchdog:
    """See the module docstring. ``fired`` counts the times it went off, ``cancels_sent`` what
    ``cancel_open`` reported, ``failures`` the calls of it that raised (each is logged; the
    watchdog carries on)."""

    def __init__(
        self,
        cancel_open: Callable[[], Awaitable[int]],
        timeout_s: float,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        # Written so that NaN fails it too.
        if not 0 < timeout_s < math.inf:
            raise ConfigError(f"timeout_s: must be a finite number of seconds > 0; got {timeout_s}")
        self._cancel_open = cancel_open
        self._timeout_s = timeout_s
        self._clock = clock
        self._last: float | None = None
        """When the last beat came; None: not armed (never beaten, or fired since)."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.fired = 0
        self.cancels_sent = 0
        self.failures = 0

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    @property
    def armed(self) -> bool:
        """A beat came and the watchdog has not fired since."""
        return self._last is not None

    def beat(self) -> None:
        """The bot is alive: the timeout starts again from now. On the loop's thread."""
        if self._closed:
            raise RouterClosed("the watchdog is closed")
        self._last = self._now()
        if self._task is None:
            self.start()
        else:
            self._wake.set()

    def start(self) -> None:
        """Start the watching task (``beat()`` does, the first time)."""
        if self._closed:
            raise RouterClosed("the watchdog is closed")
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="kalshi-router-watchdog")

    async def aclose(self) -> None:
        """Stop watching: nothing more is cancelled (a ``cancel_open`` running is cancelled)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def _watch(self) -> None:
        while True:
            last = self._last
            if last is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            left = last + self._timeout_s - self._now()
            if left > 0:
                # A beat meanwhile only moves the deadline later: it is read again on waking.
                await asyncio.sleep(left)
                continue
            self._last = None
            await self._fire(self._now() - last)

    async def _fire(self, silent_s: float) -> None:
        self.fired += 1
        try:
            sent = await self._cancel_open()
        except Exception:
            self.failures += 1
            log.exception(
                "watchdog: no heartbeat for %.3f s (timeout %g s); cancelling the open orders "
                "failed",
                silent_s,
                self._timeout_s,
            )
            return
        self.cancels_sent += sent
        log.warning(
            "watchdog: no heartbeat for %.3f s (timeout %g s): %d cancels sent for the open "
            "orders; armed again at the next heartbeat",
            silent_s,
            self._timeout_s,
            sent,
        )
