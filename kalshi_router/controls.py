"""What the router's controls do to the intents it holds and to the exchange: the kill switch's
target (Kalshi's cancel-all, the resting orders REST lists, the router's cancel lane), the
queued creates a halt closes, and the open orders a watchdog pulls.

These work on the router's parts (its live intents, its queue, its client, its tracker) and
never decide anything: what is cancelled, when and why is :mod:`kalshi_router.risk.kill`'s and
the caller's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiolimiter import AsyncLimiter

from kalshi_router.accumulator import Accumulator
from kalshi_router.answers import given_up
from kalshi_router.errors import KalshiRouterError
from kalshi_router.order_groups import OrderGroups
from kalshi_router.orders.tracker import OrderTracker
from kalshi_router.outcome import CancelOutcome, Closed, Outcome
from kalshi_router.pending import Kind, Pending
from kalshi_router.reconcile import READ_COST
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.models import Order

__all__ = ["RouterKillTarget", "cancel_open_orders", "close_queued_creates"]

log = logging.getLogger("kalshi_router.router")
Live = dict[tuple[Kind, str], Pending]
Cancel = Callable[[str, str], "asyncio.Future[CancelOutcome]"]
_PAGE = 1000
_POLL_S = 0.01


def close_queued_creates(
    queue: Accumulator, live: Live, settle: Callable[[Pending, Outcome], None], why: str
) -> int:
    """Settle every create still waiting in the queue (never sent: closed; sent before and
    waiting to be resent: unknown, it may be at the exchange); those on the wire keep going.
    Returns how many were closed, never sent (an unknown one the kill switch's rounds find at
    the exchange if it landed)."""
    closed = 0
    for pending in [p for (kind, _), p in live.items() if kind == "create"]:
        if queue.discard(pending):
            outcome = given_up(pending, why, Closed)
            settle(pending, outcome)
            closed += isinstance(outcome, Closed)
    return closed


def cancel_or_join(
    cancel: Cancel, live: Live, order_id: str, ticker: str
) -> Awaitable[CancelOutcome]:
    """Cancel ``order_id``, or wait for the cancel of it already pending."""
    pending = live.get(("cancel", order_id))
    if pending is not None:
        future: asyncio.Future[CancelOutcome] = pending.future
        return future
    return cancel(order_id, ticker)


async def cancel_open_orders(tracker: OrderTracker, cancel: Cancel, live: Live) -> int:
    """Cancel every order the tracker holds open; the number of cancels asked."""
    futures = [
        cancel_or_join(cancel, live, update.order_id, update.ticker)
        for update in tracker.watch.open_orders()
        if update.order_id is not None and update.ticker is not None
    ]
    await asyncio.gather(*futures, return_exceptions=True)
    return len(futures)


class RouterKillTarget:
    """The kill switch's view of a halted router (``risk.kill.KillTarget``)."""

    def __init__(
        self,
        client: ExchangeClient,
        groups: OrderGroups,
        reads: AsyncLimiter,
        live: Live,
        cancel: Cancel,
        tracker: OrderTracker | None,
    ) -> None:
        self._client = client
        self._groups = groups
        self._reads = reads
        self._live = live
        self._cancel = cancel
        self._tracker = tracker

    async def cancel_all(self, subaccount: int | None) -> None:
        await self._groups.cancel_all(subaccount=subaccount)

    async def creates_settled(self) -> None:
        while creates := [p for (kind, _), p in self._live.items() if kind == "create"]:
            waiting = [p.future for p in creates if not p.future.done()]
            if waiting:
                await asyncio.wait(waiting)
            else:
                # Their callers cancelled their futures; they leave ``live`` once answered.
                await asyncio.sleep(_POLL_S)

    async def resting(self, subaccount: int | None) -> Sequence[Order]:
        listed: list[Order] = []
        cursor: str | None = None
        while True:
            await self._reads.acquire(READ_COST)
            page = await self._client.get_orders(status="resting", cursor=cursor, limit=_PAGE)
            listed += [
                order
                for order in page.orders
                if subaccount is None or (order.subaccount_number or 0) == subaccount
            ]
            cursor = page.cursor
            if not cursor or not page.orders:
                return listed

    def cancel(self, order_id: str, ticker: str) -> Awaitable[CancelOutcome]:
        try:
            return cancel_or_join(self._cancel, self._live, order_id, ticker)
        except KalshiRouterError as exc:  # closed or crashed under us: nothing more is sent
            log.warning("kill switch: could not cancel %s: %s", order_id, exc)
            done: asyncio.Future[CancelOutcome] = asyncio.get_running_loop().create_future()
            done.set_result(Closed(reason=str(exc), order_id=order_id))
            return done

    async def reconcile(self) -> None:
        if self._tracker is not None:
            await self._tracker.sweep()
