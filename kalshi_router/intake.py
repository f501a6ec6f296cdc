"""The pieces of ``OrderRouter`` around its queue that need none of its state: the intent's
future, the checks before an intent is queued (the service's client makes the same ones), the
settling of outcomes and their log lines, and what happens to what is left at a crash or at
close."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from itertools import repeat
from typing import TYPE_CHECKING, Any

from kalshi_router.accumulator import Accumulator
from kalshi_router.answers import given_up
from kalshi_router.errors import (
    IllegalTransition,
    IntentError,
    QueueFull,
    RouterClosed,
    RouterCrashed,
)
from kalshi_router.outcome import Accepted, Closed, Outcome, Rejected, Unknown, outcome_name
from kalshi_router.pending import SETTLING, Kind, Pending
from kalshi_router.stats import RouterObserver, settled_all, settled_before

if TYPE_CHECKING:
    from kalshi_router.dispatcher import Dispatcher
    from kalshi_router.journal import IntentJournal
    from kalshi_router.orders.tracker import OrderTracker
    from kalshi_router.risk.gate import RiskGate

log = logging.getLogger("kalshi_router.router")


class IntentFuture(asyncio.Future[Any]):
    """An intent's future: cancelling it while the intent still waits to be sent settles the
    intent at once (closed) and frees its room in the queue. A cancel hook rather than a done
    callback, which every settle would pay for with a turn of the loop.

    It names its intent by ``key`` (kind and key, as the router's live table does) rather
    than holding it: the intent holds its future, and a reference back would make a cycle per
    intent, which only the garbage collector frees (measured: about 4,500 instructions an order
    at batches of 20)."""

    __slots__ = ("give_up", "key")

    key: tuple[Kind, str]
    give_up: Callable[[tuple[Kind, str], IntentFuture], None]
    """The router's: settle the intent under ``key`` if this is its future and it still waits."""

    def cancel(self, msg: Any | None = None) -> bool:
        if not super().cancel(msg):
            return False
        self.give_up(self.key, self)
        return True


def check_batch(
    kind: Kind, keys: list[str], live: Mapping[tuple[Kind, str], object], queued: int, capacity: int
) -> None:
    """Everything that could stop one of ``keys`` from queueing, checked before any is (a
    batch queues all or none)."""
    field = "client_order_id" if kind == "create" else "order_id"
    if len(set(keys)) != len(keys):
        raise IntentError(field, f"used more than once in one {kind} batch")
    if not live.keys().isdisjoint(zip(repeat(kind), keys)):
        # One tuple for the whole check (zip reuses its own); then which one, for the error.
        for key in keys:
            if (kind, key) in live:
                raise IntentError(field, f"{key!r} already has a pending {kind}")
    if queued + len(keys) > capacity:
        raise QueueFull(f"no room for {len(keys)} intents ({queued} queued)")


async def wait_for_room(
    queue: Accumulator,
    check_open: Callable[[], None],
    running: Callable[[], Dispatcher],
    queue_timeout: float | None,
) -> None:
    """Until ``queue`` has room for one more, up to ``queue_timeout`` s (None: forever); raise
    ``QueueFull`` then, or at once what ``check_open`` raises if the router closes meanwhile."""

    async def wait() -> None:
        while queue.full():
            check_open()
            await running().wait_for_space()

    if not queue.full():
        # wait_for with a timeout of 0 times out even when its awaitable would not wait.
        return
    try:
        await asyncio.wait_for(wait(), queue_timeout)
    except TimeoutError:
        raise QueueFull(f"no room in the queue within {queue_timeout} s") from None


def fail_all(live: dict[tuple[Kind, str], Pending], queue: Accumulator, why: str) -> None:
    """The dispatcher died: every intent still live fails at once with a ``RouterCrashed`` of
    its own (one exception object shared by many futures would chain their tracebacks), taken
    out of the queue first if it waits there, so that nothing settles it after the crash."""
    for pending in list(live.values()):
        queue.discard(pending)
        pending.move("settled")
        if not pending.future.cancelled():
            pending.future.set_exception(RouterCrashed(why))
    live.clear()


def settle_each(
    outcomes: Mapping[Pending, Outcome],
    live: dict[tuple[Kind, str], Pending],
    observers: RouterObserver,
    now: float,
    *,
    journal: IntentJournal | None,
    gate: RiskGate,
    tracker: OrderTracker | None,
) -> None:
    """The router's ``_settle_all``: each intent its outcome (a second one raises
    ``IllegalTransition``), out of the ``live`` table, told to the journal, the risk gate and
    the order tracker, logged if it did not go through, and its future set; then the
    ``observers`` are told of them all at once (of those settled, if it fails part way)."""
    # Asked once, not once an intent: outcomes that went through are logged at debug only,
    # and the risk gate has nothing to release unless it reserved something.
    every = log.isEnabledFor(logging.DEBUG)
    reserving = gate.reserving()
    others = journal is not None or reserving or tracker is not None
    try:
        for pending, outcome in outcomes.items():
            if pending.state not in SETTLING:
                pending.move("settled")  # raises IllegalTransition
            # Legal (just checked): set, not ``move``d, which would look it up again.
            pending.state = "settled"
            future = pending.future  # it holds the live table's key: no tuple made
            key = future.key if type(future) is IntentFuture else (pending.kind, pending.key)
            live.pop(key, None)
            if others:
                kind = pending.kind
                if journal is not None:
                    journal.settled(pending, outcome)
                if reserving:
                    gate.settled(pending.key, outcome, kind)
                if tracker is not None and kind == "create":
                    tracker.settled(pending.payload, outcome, pending.submitted_wall)
            # ``type() is`` first: ``ok`` is a class attribute, slower to read.
            if every or (type(outcome) is not Accepted and not outcome.ok):
                log_outcome(pending, outcome)
            # A try, not a question first (a call) nor ``suppress`` (two): every intent gets here.
            try:  # noqa: SIM105
                future.set_result(outcome)
            except asyncio.InvalidStateError:
                pass  # its caller cancelled it: nobody reads the outcome
    except BaseException as exc:
        # The one it failed at was settled, unless settling it was the illegal move.
        illegal = isinstance(exc, IllegalTransition)
        settled_before(observers, outcomes, pending, now, including=not illegal)
        raise
    settled_all(observers, outcomes, now)


def log_outcome(pending: Pending, outcome: Outcome) -> None:
    """One line per order that did not go through (debug for the rest), its id as a field; a
    warning for the ones a person has to look up."""
    level = logging.DEBUG if outcome.ok else logging.INFO
    if isinstance(outcome, Unknown):
        level = logging.WARNING
    if log.isEnabledFor(level):
        detail = outcome.code if isinstance(outcome, Rejected) else getattr(outcome, "reason", "")
        log.log(
            level,
            "%s %s %s: %s",
            pending.kind,
            pending.key,
            outcome_name(outcome),
            detail,
            extra=pending.ids(),
        )


async def drain(dispatcher: Dispatcher, runner: asyncio.Task[None], within_s: float) -> None:
    """At close: let the dispatcher send what is queued and finish what is in flight, for up
    to ``within_s`` s; then stop it, whatever is left."""
    dispatcher.wake_space_waiters()
    dispatcher.close()
    try:
        await asyncio.wait_for(asyncio.shield(runner), within_s)
    except TimeoutError:
        log.warning("drain timed out after %s s", within_s)
    except Exception:  # noqa: S110 - the crash was reported when the runner ended
        pass
    # The dispatcher first: stopping the sends frees their slots, which it would otherwise
    # fill with what is still queued.
    if not runner.done():
        runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    await dispatcher.stop()


def settle_the_rest(
    queue: Accumulator,
    live: dict[tuple[Kind, str], Pending],
    settle: Callable[[Pending, Outcome], None],
) -> None:
    """At close, once the dispatcher has stopped: what still waits was never sent (closed);
    what is still live was in flight and nobody will learn its outcome here (unknown, logged
    with its id, to look up at the exchange)."""
    for pending in queue.drain():
        settle(pending, given_up(pending, "router closed before this intent was sent", Closed))
    unsure = list(live.values())
    if unsure:
        log.warning(
            "closing with %d intents in flight, outcome unknown: %s",
            len(unsure),
            " ".join(p.key for p in unsure),
            extra={
                "client_order_ids": [p.key for p in unsure if p.kind == "create"],
                "order_ids": [p.key for p in unsure if p.kind != "create"],
            },
        )
    for pending in unsure:
        reason = "router closed while this intent was in flight; look it up at the exchange"
        settle(pending, Unknown(reason=reason, **pending.ids()))


def expect(intent: object, kind: type) -> None:
    """A bad argument is an ``IntentError`` like any bad field, not an AttributeError later."""
    if not isinstance(intent, kind):
        raise IntentError("intent", f"expected a {kind.__name__}, got {type(intent).__name__}")


def checked_deadline(deadline_s: float) -> float:
    if isinstance(deadline_s, bool) or not isinstance(deadline_s, int | float):
        raise IntentError("deadline_s", f"must be a number of seconds, got {deadline_s!r}")
    if not (deadline_s >= 0 and math.isfinite(deadline_s)):
        # NaN or infinity would mean "never expires", which no intent may have.
        raise IntentError("deadline_s", f"must be a finite number >= 0, got {deadline_s}")
    return float(deadline_s)


def not_started() -> RouterClosed:
    return RouterClosed("the router is not started: use 'async with' or await start()")
