"""The desk's controls over the service's router: the kill switch and the trading state, from
``POST /v1/kill``, ``/v1/trading_state``, a stream's ``trading_state`` request, ``SIGUSR1`` on
``serve`` and the CLI, all through one :class:`Desk`.

A kill halts at once, whatever else is going on (``router.kill`` halts before its first await).
A state change waits for every kill in progress to finish first: a ``resume`` sent while a kill
is still pulling orders would otherwise let in creates that the kill then pulls. A kill that
starts while a resume is reconciling wins: the state goes back to ``halted`` at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import msgspec

from kalshi_router.risk.config import TradingState, check_state
from kalshi_router.risk.kill import KillReport
from kalshi_router.router import OrderRouter

__all__ = ["SIGNAL_REASON", "Desk"]

log = logging.getLogger("kalshi_router.service")
SIGNAL_REASON = "signal SIGUSR1"
_encode = msgspec.json.Encoder().encode


class Desk:
    """The kill switch and the trading state of ``router``; see the module docstring."""

    def __init__(
        self,
        router: OrderRouter,
        *,
        kill_timeout_s: float = 30.0,
        reported: Callable[[KillReport], None] = lambda report: None,
    ) -> None:
        self._router = router
        self._reported = reported
        self._kill_timeout_s = kill_timeout_s
        self._changing = asyncio.Lock()
        self._kills = 0
        self._started = 0
        self._calm = asyncio.Event()
        self._calm.set()
        self._signalled: set[asyncio.Task[KillReport]] = set()

    @property
    def trading_state(self) -> TradingState:
        return self._router.trading_state

    async def kill(
        self, reason: str, *, subaccount: int | None = None, timeout_s: float | None = None
    ) -> KillReport:
        """``router.kill``: halt, pull every resting order, confirm; the report."""
        timeout = self._kill_timeout_s if timeout_s is None else timeout_s
        self._kills += 1
        self._started += 1
        self._calm.clear()
        try:
            report = await self._router.kill(reason, subaccount=subaccount, timeout_s=timeout)
            self._reported(report)
            return report
        finally:
            self._kills -= 1
            if not self._kills:
                self._calm.set()

    async def set_state(self, state: TradingState, *, resume: bool = False) -> TradingState:
        """The state from now on; the state before. From ``halted`` to trading (or with
        ``resume``) it goes through ``router.resume``: the orders the router follows are
        reconciled first, so its limits count what the kill left. ``ConfigError`` naming
        ``state`` for a value that is not a trading state."""
        state = check_state(state, "state")
        router = self._router
        async with self._changing:
            await self._calm.wait()
            was = router.trading_state
            if resume or (was == "halted" and state != "halted"):
                started = self._started
                await router.resume(state)
                if self._started != started:
                    # No await since resume returned: no create got in.
                    router.set_trading_state("halted")
                    log.warning("trading state: a kill started while resuming; still halted")
            else:
                router.set_trading_state(state)
        return was

    def kill_soon(self, reason: str = SIGNAL_REASON) -> None:
        """A kill started from a signal handler (which cannot wait for it); its report is
        logged. :meth:`finished` waits for it."""
        if self._signalled:
            log.warning("%s: a kill switch started by a signal is still running", reason)
            return
        log.warning("%s: kill switch", reason)
        task = asyncio.get_running_loop().create_task(self.kill(reason), name="kalshi-router-kill")
        self._signalled.add(task)
        task.add_done_callback(self._logged)

    async def finished(self) -> None:
        """Wait for the kills in progress (``SIGTERM``: the drain starts once they are done;
        each is bounded by its timeout)."""
        if self._signalled:
            await asyncio.wait(self._signalled)
        await self._calm.wait()

    def _logged(self, task: asyncio.Task[KillReport]) -> None:
        self._signalled.discard(task)
        if task.cancelled():
            log.error("kill switch cancelled before its report")
        elif (exc := task.exception()) is not None:
            log.error("kill switch failed: %r", exc, exc_info=exc)
        else:
            report = task.result()
            level = logging.WARNING if report.done else logging.ERROR
            log.log(level, "kill switch report: %s", _encode(report).decode())
