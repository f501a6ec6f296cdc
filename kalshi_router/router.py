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
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import Any, Self

from kalshi_router.assembly import assemble, track
from kalshi_router.awaiting import all_of
from kalshi_router.budget import discover_budget
from kalshi_router.budget.opening import open_budget
from kalshi_router.config import Config
from kalshi_router.errors import IntentError, QueueFull
from kalshi_router.intake import (
    IntentFuture,
    check_batch,
    checked_deadline,
    drain,
    expect,
    fail_all,
    not_started,
    settle_each,
    settle_the_rest,
    wait_for_room,
)
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.journal import IntentJournal
from kalshi_router.order_groups import OrderGroups
from kalshi_router.outcome import AmendOutcome, CancelOutcome, OrderOutcome, Outcome, Rejected
from kalshi_router.pending import Kind, Pending
from kalshi_router.router_controls import RouterControls
from kalshi_router.stats import RouterObserver
from kalshi_router.wire import connect
from kalshi_router.wire.signer import Signer

log = logging.getLogger("kalshi_router.router")
Intent = OrderIntent | CancelIntent | AmendIntent | DecreaseIntent


class OrderRouter(RouterControls):
    """Batches intents to Kalshi under the account's write budget; see the module docstring."""

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
        """A router with its own signed HTTP transport, as the config describes; it follows
        its orders (``orders``) when ``[orders] track`` is on."""
        client = connect(config, signer, base_url=base_url, writes=True).client
        tracker = track(config, client, signer, base_url, journal)
        return cls(
            client,
            config.router,
            config.limits,
            owns_transport=True,
            observers=observers,
            journal=journal,
            tracker=tracker,
            risk=config.risk,
            budget=config.budget,
            key_id=signer.key_id,
        )

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._now = self._loop.time
        found = await discover_budget(self._client, self._limits)
        self._budget = await open_budget(self._budget_config, found, self._limits, self._key_id)
        self._dispatcher, reads = assemble(
            self._client,
            self._acc,
            found,
            self._budget,
            self._config,
            stats=self._observers,
            settle=self._settle_all,
            journal=self._journal,
            rng=self._rng,
            seen=self._tracker.seen if self._tracker else None,
        )
        self._reads = reads
        if self._gate.state == "halted":
            self._dispatcher.creates_halted = "trading halted ([risk] state at start)"
        self._groups = OrderGroups(self._client, self._budget, found.group_costs, reads=reads)
        if self._tracker is not None:
            await self._tracker.start(reads)
        self._runner = asyncio.create_task(self._dispatcher.run(), name="kalshi-router-dispatcher")
        self._runner.add_done_callback(self._runner_done)
        self._accepting = True

    # Intake.

    def submit(
        self, intent: OrderIntent, *, deadline_s: float | None = None, client: str | None = None
    ) -> asyncio.Future[OrderOutcome]:
        """Queue ``intent`` and return its future at once; raise ``QueueFull`` if no room.
        ``client``: who sends it; the intents of different clients take turns in each lane."""
        expect(intent, OrderIntent)
        self._client.dialect.check(intent)
        return self._enqueue("create", intent.client_order_id, intent, deadline_s, client)

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
        """Submit (waiting for room, as ``submit_wait``) and wait for the outcome. On an idle
        router (``[router] idle_fast_path``), sent in this task, in this turn."""
        dispatcher = self._dispatcher
        if self._config.idle_fast_path and dispatcher is not None and dispatcher.idle():
            enqueue = partial(self.submit, intent, deadline_s=deadline_s, client=client)
            return await dispatcher.place_now(enqueue, self._stats.sent_at_once)
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
        check = self._client.dialect.check
        for intent in batch:
            if type(intent) is not OrderIntent:  # a subclass, or the wrong type: checked
                expect(intent, OrderIntent)
            check(intent)
        keys = [intent.client_order_id for intent in batch]
        return self._enqueue_all("create", keys, batch, deadline_s, client)

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
        return self._enqueue("cancel", intent.order_id, intent, deadline_s, client)

    def cancel_many(
        self, cancels: Iterable[CancelIntent], *, client: str | None = None
    ) -> list[asyncio.Future[CancelOutcome]]:
        """Queue all or none, as ``submit_many``."""
        batch = list(cancels)
        for cancel in batch:
            expect(cancel, CancelIntent)
        keys = [cancel.order_id for cancel in batch]
        return self._enqueue_all("cancel", keys, batch, None, client)

    def amend(
        self, intent: AmendIntent, *, deadline_s: float | None = None, client: str | None = None
    ) -> asyncio.Future[AmendOutcome]:
        expect(intent, AmendIntent)
        return self._enqueue("single", intent.order_id, intent, deadline_s, client)

    def decrease(
        self, intent: DecreaseIntent, *, deadline_s: float | None = None, client: str | None = None
    ) -> asyncio.Future[AmendOutcome]:
        expect(intent, DecreaseIntent)
        return self._enqueue("single", intent.order_id, intent, deadline_s, client)

    def _enqueue(
        self, kind: Kind, key: str, payload: Intent, deadline_s: float | None, client: str | None
    ) -> asyncio.Future[Any]:
        # The arguments are checked before the router's state, so a bad argument is named
        # whatever that state is.
        timeout = self._config.deadline_s if deadline_s is None else checked_deadline(deadline_s)
        if not self._accepting or self._dispatcher is None:
            self._check_open()
            raise not_started()
        if self._acc.full():
            raise QueueFull(f"the queue holds {self._acc.capacity} intents")
        if (kind, key) in self._live:
            field = "client_order_id" if kind == "create" else "order_id"
            raise IntentError(field, f"{key!r} already has a pending {kind}")
        return self._queue(kind, [key], [payload], timeout, client)[0]

    def _enqueue_all(
        self,
        kind: Kind,
        keys: list[str],
        payloads: Sequence[Intent],
        deadline_s: float | None,
        client: str | None,
    ) -> list[asyncio.Future[Any]]:
        """``_enqueue`` for a batch, all or none: every check before any is queued."""
        timeout = self._config.deadline_s if deadline_s is None else checked_deadline(deadline_s)
        self._check_open()
        check_batch(kind, keys, self._live, len(self._acc), self._acc.capacity)
        return self._queue(kind, keys, payloads, timeout, client)

    def _queue(
        self,
        kind: Kind,
        keys: list[str],
        payloads: Sequence[Intent],
        timeout: float,
        client: str | None,
    ) -> list[asyncio.Future[Any]]:
        """Queue intents of one kind from one client, checked and with room, unless the risk
        gate refuses them: the gate last, so that what it reserves is always queued (cancels
        and decreases only take exposure off: never checked). One clock reading, one push and
        one wake-up of the dispatcher for them all: this runs for every intent."""
        now, wall = self._now(), time.time()
        deadline = now + timeout
        gate, live, give_up, loop = self._gate, self._live, self._give_up, self._loop
        futures: list[asyncio.Future[Any]] = []
        queued: list[Pending] = []
        plain = gate.plain  # no limit, trading active: no check, so it stays so for them all
        for key, payload in zip(keys, payloads, strict=True):
            if not plain:
                refusal = None
                if type(payload) is OrderIntent:
                    refusal = gate.check_create(payload, client)
                elif type(payload) is AmendIntent:
                    refusal = gate.check_amend(payload, client)
                if refusal is not None:
                    futures.append(self._refused(kind, key, refusal))
                    continue
            # Its loop named: on 3.11, a future that finds the running loop itself asks the
            # kernel for the process id (a getpid syscall an intent, which callgrind misses).
            future = IntentFuture(loop=loop)
            # One tuple for the future and the live table: an object fewer for every intent.
            future.key = named = (kind, key)
            future.give_up = give_up
            # Positional: a keyword costs a lookup, for every intent.
            pending = Pending(
                kind, key, payload.ticker, payload, future, now, deadline, wall, now, client
            )
            live[named] = pending
            futures.append(future)
            queued.append(pending)
        if queued:
            self._acc.push_all(queued, deadline)
            if self._journal is not None:
                for pending in queued:
                    self._journal.taken(pending)
            if self._dispatcher is not None:
                self._dispatcher.queued(deadline, priority=kind != "create")
        return futures

    def _refused(self, kind: Kind, key: str, refusal: Rejected) -> asyncio.Future[Any]:
        """The risk gate refused it: settled now, never queued, sent or journaled."""
        self._observers.settled(kind, refusal, 0.0)
        log.info("%s %s refused by the risk gate: %s", kind, key, refusal.message)
        future: asyncio.Future[Any] = asyncio.Future(loop=self._loop)
        future.set_result(refusal)
        return future

    async def _room(self, queue_timeout: float | None) -> None:
        await wait_for_room(self._acc, self._check_open, self._running, queue_timeout)

    # Outcomes.

    def _settle(self, pending: Pending, outcome: Outcome) -> None:
        """The only way an intent gets its outcome; a second one raises IllegalTransition."""
        self._settle_all({pending: outcome})

    def _settle_all(self, outcomes: Mapping[Pending, Outcome]) -> None:
        """``_settle`` for each, in one call: a batch's answers settle together."""
        settle_each(
            outcomes,
            self._live,
            self._observers,
            self._now(),
            journal=self._journal,
            gate=self._gate,
            tracker=self._tracker,
        )

    def _runner_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("dispatcher crashed; failing %d pending intents", len(self._live), exc_info=exc)
        self._accepting = False
        self._crashed = exc
        if self._dispatcher is not None:
            self._dispatcher.wake_space_waiters()
        fail_all(self._live, self._acc, f"dispatcher crashed: {exc!r}")

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
            await drain(self._dispatcher, self._runner, timeout)
        settle_the_rest(self._acc, self._live, self._settle)
        if self._watchdog is not None:
            await self._watchdog.aclose()
        if self._tracker is not None:
            await self._tracker.aclose()
        if self._budget is not None:
            await self._budget.aclose()
        if self._owns_transport:
            await self._client.transport.close()

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
