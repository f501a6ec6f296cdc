"""``OrderRouter``: submit intents, get one future each, settled exactly once.

    async with OrderRouter.connect(config, signer) as router:
        outcome = await router.place(OrderIntent.bid("KX-1", price="0.56", count=10))

The router sizes its write budget from ``GET /account/limits`` and ``/account/endpoint_costs``
at start (``[limits]`` in the config overrides them), then one dispatcher task batches what is
queued under that budget.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Self

from aiolimiter import AsyncLimiter

from kalshi_router.accumulator import Accumulator
from kalshi_router.answers import Backoff, given_up
from kalshi_router.awaiting import all_of
from kalshi_router.budget import BudgetView, LocalBudget, WriteBudget, discover_budget
from kalshi_router.config import Config, LimitsConfig, RouterConfig
from kalshi_router.dispatcher import Dispatcher
from kalshi_router.errors import IntentError, QueueFull, RouterClosed, RouterCrashed
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.journal import IntentJournal
from kalshi_router.outcome import (
    AmendOutcome,
    CancelOutcome,
    Closed,
    OrderOutcome,
    Outcome,
    Rejected,
    Unknown,
    outcome_name,
)
from kalshi_router.pending import Kind, Pending
from kalshi_router.reconcile import READ_COST, Reconciler
from kalshi_router.stats import Observers, RouterObserver, RouterStats, StatsRecorder
from kalshi_router.wire import connect
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.signer import Signer

log = logging.getLogger("kalshi_router.router")
Intent = OrderIntent | CancelIntent | AmendIntent | DecreaseIntent


class IntentFuture(asyncio.Future[Any]):
    """An intent's future: cancelling it while the intent still waits to be sent settles the
    intent at once (closed) and frees its room in the queue. A cancel hook rather than a done
    callback, which every settle would pay for with a turn of the loop."""

    __slots__ = ("dispatcher", "pending")

    pending: Pending
    dispatcher: Dispatcher

    def cancel(self, msg: Any | None = None) -> bool:
        if not super().cancel(msg):
            return False
        self.dispatcher.give_up_waiting(self.pending)
        return True


class OrderRouter:
    """Batches intents to Kalshi under the account's write budget; see the module docstring."""

    def __init__(
        self,
        client: ExchangeClient,
        router: RouterConfig | None = None,
        limits: LimitsConfig | None = None,
        *,
        rng: random.Random | None = None,
        observers: Sequence[RouterObserver] = (),
        journal: IntentJournal | None = None,
        owns_transport: bool = False,
    ) -> None:
        self._client = client
        self._config = router or RouterConfig()
        self._limits = limits or LimitsConfig()
        self._rng = rng or random.Random()  # noqa: S311 - retry jitter, not a secret
        self._owns_transport = owns_transport
        self._journal = journal
        # The loop and its clock once started (nothing is pending before that).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._now = time.monotonic
        self._acc = Accumulator(self._config.queue_size)
        self._stats = StatsRecorder()
        self._observers = Observers([self._stats, *observers])
        self._live: dict[tuple[Kind, str], Pending] = {}
        self._dispatcher: Dispatcher | None = None
        self._budget: WriteBudget | None = None
        self._runner: asyncio.Task[None] | None = None
        self._accepting = False
        self._closed = False
        self._crashed: BaseException | None = None

    @classmethod
    def connect(
        cls,
        config: Config,
        signer: Signer,
        base_url: str | None = None,
        *,
        observers: Sequence[RouterObserver] = (),
        journal: IntentJournal | None = None,
    ) -> OrderRouter:
        """A router with its own signed HTTP transport, as the config describes."""
        return cls(
            connect(config, signer, base_url=base_url).client,
            config.router,
            config.limits,
            owns_transport=True,
            observers=observers,
            journal=journal,
        )

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._now = self._loop.time
        found = await discover_budget(self._client, self._limits)
        headroom = found.write_rate * self._limits.headroom_s
        self._budget = LocalBudget(
            refill_rate=found.write_rate,
            capacity=found.write_capacity,
            create_cost=found.costs["create"],
            cancel_cost=found.costs["cancel"],
            single_cost=found.costs["single"],
            headroom=headroom,
        )
        # A bucket smaller than one lookup's cost would make aiolimiter refuse every lookup:
        # keep the account's rate, but let the bucket hold one.
        size = max(found.read_rate, READ_COST)
        reads = AsyncLimiter(size, size / found.read_rate)
        self._dispatcher = Dispatcher(
            client=self._client,
            accumulator=self._acc,
            budget=self._budget,
            reconciler=Reconciler(self._client, reads),
            stats=self._observers,
            settle=self._settle,
            journal=self._journal,
            max_batch=self._config.max_batch_size,
            max_in_flight=self._config.max_in_flight,
            linger_s=self._config.linger_ms / 1000,
            backoff=Backoff(self._config.backoff_base_s, self._config.backoff_cap_s, self._rng),
        )
        self._runner = asyncio.create_task(self._dispatcher.run(), name="kalshi-router-dispatcher")
        self._runner.add_done_callback(self._runner_done)
        self._accepting = True

    @property
    def budget(self) -> BudgetView:
        """The write budget as sized at start (capacity, refill rate, costs per order)."""
        if self._budget is None:
            raise _not_started()
        return self._budget

    @property
    def crashed(self) -> BaseException | None:
        """Why the dispatcher died, if it did (the router then takes nothing new)."""
        return self._crashed

    @property
    def queue_depth(self) -> int:
        """Intents waiting to be sent, retries in backoff included. Constant time: poll this
        rather than ``stats()``, which sorts every latency sample."""
        return len(self._acc)

    def queued_by_client(self) -> dict[str | None, int]:
        """``queue_depth`` per client; linear in the queue's length, unlike that."""
        return self._acc.queued()

    @property
    def deadline_s(self) -> float:
        """The deadline of an intent submitted without one (``router.deadline_s``)."""
        return self._config.deadline_s

    @property
    def batch_limits(self) -> dict[str, int]:
        """Largest batch per lane, as sized from the budget at start."""
        return self._running().batch_limits

    def _running(self) -> Dispatcher:
        if self._dispatcher is None:
            raise _not_started()
        return self._dispatcher

    # Intake.

    def submit(
        self, intent: OrderIntent, *, deadline_s: float | None = None, client: str | None = None
    ) -> asyncio.Future[OrderOutcome]:
        """Queue ``intent`` and return its future at once; raise ``QueueFull`` if no room.
        ``client``: who sends it; the intents of different clients take turns in each lane."""
        _expect(intent, OrderIntent)
        self._client.dialect.check(intent)
        return self._enqueue(
            "create", intent.client_order_id, intent.ticker, intent, deadline_s, client
        )

    async def submit_wait(
        self,
        intent: OrderIntent,
        *,
        queue_timeout: float | None = None,
        deadline_s: float | None = None,
        client: str | None = None,
    ) -> asyncio.Future[OrderOutcome]:
        """Like ``submit``, but wait up to ``queue_timeout`` s (None: forever) for room."""
        await self._room(queue_timeout)
        return self.submit(intent, deadline_s=deadline_s, client=client)

    async def place(
        self,
        intent: OrderIntent,
        *,
        queue_timeout: float | None = None,
        deadline_s: float | None = None,
        client: str | None = None,
    ) -> OrderOutcome:
        """Submit (waiting for room, as ``submit_wait``) and wait for the outcome."""
        future = await self.submit_wait(
            intent, queue_timeout=queue_timeout, deadline_s=deadline_s, client=client
        )
        return await future

    async def place_many(
        self,
        intents: Iterable[OrderIntent],
        *,
        deadline_s: float | None = None,
        client: str | None = None,
    ) -> list[OrderOutcome]:
        """``submit_many``, then every outcome, in order (cancelling this cancels them all)."""
        return await all_of(self.submit_many(intents, deadline_s=deadline_s, client=client))

    def submit_many(
        self,
        intents: Iterable[OrderIntent],
        *,
        deadline_s: float | None = None,
        client: str | None = None,
    ) -> list[asyncio.Future[OrderOutcome]]:
        """Queue all or none: raises before queueing any if one is invalid or there is no room."""
        batch = list(intents)
        for intent in batch:
            _expect(intent, OrderIntent)
            self._client.dialect.check(intent)
        self._check_batch("create", [intent.client_order_id for intent in batch])
        return [
            self._enqueue(
                "create", intent.client_order_id, intent.ticker, intent, deadline_s, client
            )
            for intent in batch
        ]

    def cancel(
        self,
        order_id: str | CancelIntent,
        ticker: str | None = None,
        *,
        deadline_s: float | None = None,
        client: str | None = None,
    ) -> asyncio.Future[CancelOutcome]:
        """Cancel a resting order; ``ticker`` routes it to the market's exchange shard."""
        intent = order_id if isinstance(order_id, CancelIntent) else None
        if intent is None:
            if ticker is None:
                raise IntentError("ticker", "required: Kalshi routes cancels by market ticker")
            intent = CancelIntent(order_id=str(order_id), ticker=ticker)
        return self._enqueue("cancel", intent.order_id, intent.ticker, intent, deadline_s, client)

    def cancel_many(
        self, cancels: Iterable[CancelIntent], *, client: str | None = None
    ) -> list[asyncio.Future[CancelOutcome]]:
        """Queue all or none, as ``submit_many``."""
        batch = list(cancels)
        for cancel in batch:
            _expect(cancel, CancelIntent)
        self._check_batch("cancel", [cancel.order_id for cancel in batch])
        return [self.cancel(cancel, client=client) for cancel in batch]

    def _check_batch(self, kind: Kind, keys: list[str]) -> None:
        """Everything that could stop one of ``keys`` from queueing, checked before any is."""
        self._check_open()
        field = "client_order_id" if kind == "create" else "order_id"
        if len(set(keys)) != len(keys):
            raise IntentError(field, f"used more than once in one {kind} batch")
        for key in keys:
            if (kind, key) in self._live:
                raise IntentError(field, f"{key!r} already has a pending {kind}")
        if len(self._acc) + len(keys) > self._acc.capacity:
            raise QueueFull(f"no room for {len(keys)} intents ({len(self._acc)} queued)")

    def _check_open(self) -> None:
        if self._crashed is not None:
            raise RouterCrashed(f"dispatcher crashed: {self._crashed!r}")
        if not self._accepting:
            raise RouterClosed(
                "the router is closed" if self._closed else "the router is not started"
            )

    def amend(
        self, intent: AmendIntent, *, deadline_s: float | None = None, client: str | None = None
    ) -> asyncio.Future[AmendOutcome]:
        _expect(intent, AmendIntent)
        return self._enqueue("single", intent.order_id, intent.ticker, intent, deadline_s, client)

    def decrease(
        self, intent: DecreaseIntent, *, deadline_s: float | None = None, client: str | None = None
    ) -> asyncio.Future[AmendOutcome]:
        _expect(intent, DecreaseIntent)
        return self._enqueue("single", intent.order_id, intent.ticker, intent, deadline_s, client)

    def _enqueue(
        self,
        kind: Kind,
        key: str,
        ticker: str,
        payload: Intent,
        deadline_s: float | None,
        client: str | None = None,
    ) -> asyncio.Future[Any]:
        # Every intent passes here: kept to what each one needs. The arguments are checked
        # before the router's state, so a bad argument is named whatever that state is.
        timeout = self._config.deadline_s if deadline_s is None else _checked(deadline_s)
        dispatcher = self._dispatcher
        if not self._accepting or dispatcher is None:
            self._check_open()
            raise _not_started()
        if self._acc.full():
            raise QueueFull(f"the queue holds {self._acc.capacity} intents")
        live = (kind, key)
        if live in self._live:
            field = "client_order_id" if kind == "create" else "order_id"
            raise IntentError(field, f"{key!r} already has a pending {kind}")
        now = self._now()
        deadline = now + timeout
        future = IntentFuture(loop=self._loop)
        pending = Pending(
            kind, key, ticker, payload, future, now, deadline, time.time(), queued_at=now
        )
        pending.client = client
        future.pending = pending
        future.dispatcher = dispatcher
        self._live[live] = pending
        self._acc.push(pending)
        if self._journal is not None:
            self._journal.taken(pending)
        dispatcher.queued(pending)
        return future

    async def _room(self, queue_timeout: float | None) -> None:
        async def wait() -> None:
            while self._acc.full():
                # Closed or crashed while we waited: say so now, not at the timeout.
                self._check_open()
                await self._running().wait_for_space()

        if not self._acc.full():
            # wait_for with a timeout of 0 times out even when its awaitable would not wait.
            return
        try:
            await asyncio.wait_for(wait(), queue_timeout)
        except TimeoutError:
            raise QueueFull(f"no room in the queue within {queue_timeout} s") from None

    # Outcomes.

    def _settle(self, pending: Pending, outcome: Outcome) -> None:
        """The only place an intent gets its outcome; a second one raises IllegalTransition."""
        pending.move("settled")
        self._live.pop((pending.kind, pending.key), None)
        seconds = self._now() - pending.submitted
        self._observers.settled(pending.kind, outcome, seconds)
        if self._journal is not None:
            self._journal.settled(pending, outcome)
        # One line per order that did not go through (debug for the rest), its id as a field;
        # a warning for the ones a person has to look up.
        level = logging.DEBUG if outcome.ok else logging.INFO
        if isinstance(outcome, Unknown):
            level = logging.WARNING
        if log.isEnabledFor(level):
            detail = (
                outcome.code if isinstance(outcome, Rejected) else getattr(outcome, "reason", "")
            )
            log.log(
                level,
                "%s %s %s: %s",
                pending.kind,
                pending.key,
                outcome_name(outcome),
                detail,
                extra=pending.ids(),
            )
        # Its caller may have cancelled the future: then nobody reads the outcome.
        if not pending.future.cancelled():
            pending.future.set_result(outcome)

    def _runner_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("dispatcher crashed; failing %d pending intents", len(self._live), exc_info=exc)
        self._accepting = False
        self._crashed = exc
        if self._dispatcher is not None:
            self._dispatcher.wake_space_waiters()
        for pending in list(self._live.values()):
            self._acc.discard(pending)  # out of the queue first, if it waits there
            pending.move("settled")
            if not pending.future.cancelled():
                pending.future.set_exception(RouterCrashed(f"dispatcher crashed: {exc!r}"))
        self._live.clear()

    # Control.

    async def flush(self) -> None:
        """Send everything queued now, ignoring linger, and wait for all of it to settle."""
        futures = [p.future for p in self._live.values()]
        self._running().flush()
        if futures:
            await asyncio.wait(futures)

    async def aclose(self, drain_timeout: float | None = None) -> None:
        """Stop intake, send what is queued, wait for what is in flight (up to
        ``drain_timeout``), then settle the rest: queued ones closed, in-flight ones unknown."""
        if self._closed:
            return
        self._closed = True
        self._accepting = False
        timeout = self._config.drain_timeout_s if drain_timeout is None else drain_timeout
        if self._dispatcher is not None and self._runner is not None:
            self._dispatcher.wake_space_waiters()
            self._dispatcher.close()
            try:
                await asyncio.wait_for(asyncio.shield(self._runner), timeout)
            except TimeoutError:
                log.warning("drain timed out after %s s", timeout)
            except Exception:  # noqa: S110 - the crash was reported by _runner_done
                pass
            # The dispatcher first: stopping the sends frees their slots, which it would
            # otherwise fill with what is still queued.
            if not self._runner.done():
                self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            await self._dispatcher.stop()
        for pending in self._acc.drain():
            reason = "router closed before this intent was sent"
            self._settle(pending, given_up(pending, reason, Closed))
        unsure = list(self._live.values())
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
            self._settle(pending, Unknown(reason=reason, **pending.ids()))
        if self._owns_transport:
            await self._client.transport.close()

    @property
    def in_flight(self) -> int:
        """Intents in requests that are on the wire now."""
        return self._dispatcher.in_flight if self._dispatcher else 0

    def stats(self) -> RouterStats:
        spent = self._budget.spent if self._budget else 0
        return self._stats.snapshot(
            tokens_spent=spent, queue_depth=len(self._acc), in_flight=self.in_flight
        )

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            # No __aexit__ follows a failed __aenter__: let go of the transport here.
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _expect(intent: object, kind: type) -> None:
    """A bad argument is an ``IntentError`` like any bad field, not an AttributeError later."""
    if not isinstance(intent, kind):
        raise IntentError("intent", f"expected a {kind.__name__}, got {type(intent).__name__}")


def _checked(deadline_s: float) -> float:
    if isinstance(deadline_s, bool) or not isinstance(deadline_s, int | float):
        raise IntentError("deadline_s", f"must be a number of seconds, got {deadline_s!r}")
    if not (deadline_s >= 0 and math.isfinite(deadline_s)):
        # NaN or infinity would mean "never expires", which no intent may have.
        raise IntentError("deadline_s", f"must be a finite number >= 0, got {deadline_s}")
    return float(deadline_s)


def _not_started() -> RouterClosed:
    return RouterClosed("the router is not started: use 'async with' or await start()")
