"""The kill switch: halt, then pull every resting order at top priority, then confirm.

By the time :func:`pull_everything` runs, the router has halted (no create is taken, queued ones
were settled closed). Then:

1. ``DELETE /portfolio/events/orders`` (Kalshi's cancel-all, for the account or one subaccount):
   one request, the cost of one cancel, whatever the number of orders;
2. rounds until the exchange lists nothing resting: wait for the creates still in flight (one
   accepted now is an order to pull), list the resting orders through REST, and cancel each
   one through the router's cancel lane (ahead of everything else queued), unless its last
   cancel was answered ``Cancelled`` (then REST only lags); a cancel that expired, was refused
   or is unknown is asked again the next round, a pause later, until ``timeout_s``;
3. reconcile the order tracker's view, so every order it follows shows its final state.

REST's list, not the WebSocket, is the proof: it is what the exchange holds. Kalshi warns that a
create may be cancelled "during the minute after" a cancel-all, so creates stay halted until an
explicit resume, which reconciles first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import msgspec

from kalshi_router.errors import KalshiRouterError
from kalshi_router.outcome import Cancelled, CancelOutcome
from kalshi_router.wire.models import Order

__all__ = ["KillReport", "KillTarget", "pull_everything"]

log = logging.getLogger("kalshi_router.kill")
_PAUSE_S = 0.05


class KillReport(msgspec.Struct, frozen=True, kw_only=True):
    """What the kill switch did. ``done``: the exchange lists no resting order (of the
    subaccount, when one was named) and no create is in flight."""

    reason: str
    done: bool
    seconds: float
    """From the cancel-all to REST confirming nothing rests (or to giving up); the tracker's
    reconciliation after it is not counted."""
    creates_closed: int
    """Queued creates settled closed, never sent."""
    cancel_all: str
    """``sent``, or why Kalshi's cancel-all failed (the per-order cancels then do the work)."""
    cancels_sent: int
    """Cancels sent one by one after the cancel-all (for orders listed resting, or placed by a
    create that was in flight; an order whose cancel failed is asked again)."""
    cancels_confirmed: int
    """Of those, the ones whose outcome was ``Cancelled``."""
    rounds: int
    still_resting: list[str] = msgspec.field(default_factory=list)
    """Order ids still resting when it gave up (empty when ``done``)."""


class KillTarget(Protocol):
    """What the kill switch needs of a halted router."""

    async def cancel_all(self, subaccount: int | None) -> None:
        """Kalshi's cancel-all, through the write budget; raises on failure."""

    async def creates_settled(self) -> None:
        """Return when no create is queued or in flight."""

    async def resting(self, subaccount: int | None) -> Sequence[Order]:
        """Every order the exchange lists as resting (REST)."""

    def cancel(self, order_id: str, ticker: str) -> Awaitable[CancelOutcome]: ...

    async def reconcile(self) -> None:
        """Bring the order tracker's view up to date (nothing when it is off)."""


async def pull_everything(
    target: KillTarget,
    *,
    reason: str,
    creates_closed: int,
    subaccount: int | None,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> KillReport:
    """Cancel every resting order (see the module docstring); give up after ``timeout_s``."""
    started = clock()
    try:
        await target.cancel_all(subaccount)
        cancel_all = "sent"
    except (KalshiRouterError, OSError) as exc:
        cancel_all = f"failed: {exc}"
        log.warning("kill switch: cancel-all failed, cancelling order by order: %s", exc)
    # Order id -> whether its last cancel was answered Cancelled. One that was not (expired in
    # an outage, refused, unknown) is asked again next round while REST still lists it.
    asked: dict[str, bool] = {}
    sent = confirmed = rounds = 0
    still: list[str] = []
    while True:
        rounds += 1
        left = timeout_s - (clock() - started)
        try:
            await asyncio.wait_for(target.creates_settled(), max(left, 0.0))
            listed = await target.resting(subaccount)
        except (TimeoutError, KalshiRouterError, OSError) as exc:
            log.warning("kill switch: round %d could not list resting orders: %s", rounds, exc)
            listed = None
            await asyncio.sleep(_PAUSE_S)
        if listed is not None:
            still = [order.order_id for order in listed]
            if not still:
                break
            due = [order for order in listed if not asked.get(order.order_id, False)]
            outcomes = await asyncio.gather(*(target.cancel(o.order_id, o.ticker) for o in due))
            for order, outcome in zip(due, outcomes, strict=True):
                asked[order.order_id] = isinstance(outcome, Cancelled)
            sent += len(due)
            confirmed += sum(isinstance(outcome, Cancelled) for outcome in outcomes)
            # Cancelled and still listed: Kalshi's reads lag its events a little. Refused:
            # the exchange may be in trouble; either way, look again a little later.
            await asyncio.sleep(_PAUSE_S)
        if clock() - started >= timeout_s:
            break
    seconds = clock() - started
    await _reconcile(target)
    done = listed is not None and not still
    report = KillReport(
        reason=reason,
        done=done,
        seconds=seconds,
        creates_closed=creates_closed,
        cancel_all=cancel_all,
        cancels_sent=sent,
        cancels_confirmed=confirmed,
        rounds=rounds,
        still_resting=[] if done else still,
    )
    level = logging.WARNING if done else logging.ERROR
    log.log(level, "kill switch (%s): %s", reason, _summary(report))
    return report


async def _reconcile(target: KillTarget) -> None:
    try:
        await target.reconcile()
    except (KalshiRouterError, OSError) as exc:
        log.warning("kill switch: the order tracker could not reconcile: %s", exc)


def _summary(report: KillReport) -> str:
    state = "every resting order cancelled" if report.done else "NOT DONE"
    left = f", {len(report.still_resting)} still resting" if report.still_resting else ""
    return (
        f"{state} in {report.seconds:.3f}s: {report.creates_closed} queued creates closed, "
        f"cancel-all {report.cancel_all}, {report.cancels_sent} orders cancelled one by one "
        f"({report.cancels_confirmed} confirmed), {report.rounds} rounds{left}"
    )
