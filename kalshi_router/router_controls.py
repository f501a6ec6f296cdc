"""The desk's controls over a running router: the trading state, the kill switch, resuming,
the embedded watchdog, and reconciling the orders it follows now. What they do to the router's
intents and to the exchange is in :mod:`kalshi_router.controls`; the kill switch's rounds are
:mod:`kalshi_router.risk.kill`'s."""

from __future__ import annotations

import asyncio
from abc import abstractmethod

from kalshi_router.controls import RouterKillTarget, cancel_open_orders, close_queued_creates
from kalshi_router.errors import ConfigError
from kalshi_router.intake import not_started
from kalshi_router.intent import CancelIntent
from kalshi_router.outcome import CancelOutcome, Outcome
from kalshi_router.pending import Pending
from kalshi_router.risk import TradingState
from kalshi_router.risk.kill import KillReport, pull_everything
from kalshi_router.risk.watchdog import Watchdog
from kalshi_router.router_base import RouterBase


class RouterControls(RouterBase):
    """See the module docstring; :class:`kalshi_router.router.OrderRouter` is the one
    subclass."""

    @abstractmethod
    def cancel(
        self,
        order_id: str | CancelIntent,
        ticker: str | None = None,
        *,
        deadline_s: float | None = None,
        client: str | None = None,
    ) -> asyncio.Future[CancelOutcome]: ...

    @abstractmethod
    def _settle(self, pending: Pending, outcome: Outcome) -> None: ...

    async def kill(
        self, reason: str, *, subaccount: int | None = None, timeout_s: float = 30.0
    ) -> KillReport:
        """Halt (no create from now on, queued ones settled closed), then cancel every resting
        order of the account (or of ``subaccount``) at top priority, then confirm through REST;
        the report says what was done. Creates stay refused until ``resume()``."""
        self._halted_why = f"kill switch: {reason}"
        self.set_trading_state("halted")
        why = f"halted by the kill switch: {reason}"
        closed = close_queued_creates(self._acc, self._live, self._settle, why)
        if self._groups is None or self._reads is None:
            raise not_started()
        target = RouterKillTarget(
            self._client, self._groups, self._reads, self._live, self.cancel, self._tracker
        )
        return await pull_everything(
            target,
            reason=reason,
            creates_closed=closed,
            subaccount=subaccount,
            timeout_s=timeout_s,
            clock=self._now,
        )

    async def resume(self, state: TradingState = "active") -> None:
        """Take creates again (after ``kill``, or a halt): the order tracker's view is
        reconciled with the exchange first, so limits count what is really there."""
        if self._tracker is not None:
            await self._tracker.sweep()
        self._halted_why = "set by the caller"
        self.set_trading_state(state)

    def heartbeat(self, timeout_s: float | None = None) -> None:
        """The process is alive. The first call with ``timeout_s`` arms a watchdog: if no
        heartbeat comes for that long, every open order the tracker knows is cancelled."""
        if self._watchdog is None:
            if timeout_s is None:
                raise ConfigError("heartbeat: the first call needs timeout_s")
            tracker = self._tracker
            if tracker is None:
                raise ConfigError("heartbeat: needs [orders] track = true (to know what rests)")
            self._watchdog = Watchdog(
                lambda: cancel_open_orders(tracker, self.cancel, self._live), timeout_s
            )
        self._watchdog.beat()

    async def reconcile_orders(self) -> None:
        """Reconcile the orders the router follows with the exchange through REST now (it also
        does after every reconnect and every ``orders.reconcile_every_s``)."""
        if self._tracker is None:
            raise ConfigError("orders.track: off; set [orders] track = true to follow orders")
        await self._tracker.sweep()
