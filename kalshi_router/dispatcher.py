"""The one sender: a chain of links, one dispatching at a time. A link waits for work, takes an
in-flight slot, has the next batch paid for and cut (``batching``), hands the loop on to a new
link and sends the batch itself (``sending``). A task of ours that fails (our bug) stops
everything at once.

The idle fast path: ``place()`` on a router with nothing queued, nothing being dispatched and a
slot free, whose budget pays at once, takes the steps a link would (the same cut, the same
send, the same answer) in its caller's task, so its request goes out in the caller's turn and
its outcome comes back without another. Nothing is queued ahead of it and no link is between
seeing work and cutting it, so the order of the wire is still the order of the lanes, and the
budget is still spent one batch at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from kalshi_router.accumulator import Accumulator
from kalshi_router.answers import Backoff
from kalshi_router.batching import Batcher, Settle
from kalshi_router.budget import WriteBudget
from kalshi_router.budget.protocol import SpendsAtOnce
from kalshi_router.expiry import ExpiryTimer
from kalshi_router.journal import IntentJournal
from kalshi_router.pending import Kind, Pending
from kalshi_router.reconcile import Reconciler
from kalshi_router.sending import Sender
from kalshi_router.stats import RouterObserver
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.reply import BatchReply

T = TypeVar("T")
log = logging.getLogger("kalshi_router.dispatcher")


class Dispatcher:
    def __init__(
        self,
        *,
        client: ExchangeClient,
        accumulator: Accumulator,
        budget: WriteBudget,
        reconciler: Reconciler,
        stats: RouterObserver,
        settle: Settle,
        journal: IntentJournal | None = None,
        max_batch: int,
        max_in_flight: int,
        linger_s: float,
        backoff: Backoff,
    ) -> None:
        self._acc = accumulator
        self._limits = {kind: budget.batch_limit(kind, max_batch) for kind in budget.costs}
        self._batcher = Batcher(
            accumulator=accumulator,
            budget=budget,
            stats=stats,
            settle=settle,
            limits=self._limits,
            linger_s=linger_s,
        )
        self._sender = Sender(
            client=client,
            accumulator=accumulator,
            budget=budget,
            reconciler=reconciler,
            stats=stats,
            settle=settle,
            journal=journal,
            backoff=backoff,
            notify=self._batcher.notify,
            spawn=self._spawn,
        )
        self._budget = budget
        # The fast path needs tokens granted without a wait (and no linger to honour).
        self._take = budget.take if isinstance(budget, SpendsAtOnce) and linger_s == 0 else None
        self._slots = asyncio.Semaphore(max_in_flight)
        self._dispatching = False
        """A link has seen work and has not cut it yet."""
        self._taking = False
        self._sending_now = 0
        """Fast-path requests on the wire: ``run`` does not end before them."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._crash: BaseException | None = None
        self._runner: asyncio.Task[Any] | None = None
        self._stopped = False
        self._finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._expiry = ExpiryTimer(accumulator, self._batcher.unsent)
        self._time = asyncio.get_running_loop().time

    @property
    def batch_limits(self) -> dict[str, int]:
        return dict(self._limits)

    @property
    def in_flight(self) -> int:
        """Intents in requests on the wire now."""
        return self._sender.in_flight

    @property
    def creates_halted(self) -> str | None:
        """Why creates are halted (the kill switch): a create due for a resend is settled
        instead; ``None`` when trading."""
        return self._sender.creates_halted

    @creates_halted.setter
    def creates_halted(self, why: str | None) -> None:
        self._sender.creates_halted = why

    def queued(self, deadline: float, *, priority: bool) -> None:
        """Intents were pushed to the accumulator, the earliest due at ``deadline``: watch it,
        wake the loop (``priority``: as ``notify``); not for an intent the fast path is
        taking, which is cut before anything else runs (its deadline is watched all the same:
        a retry of it may wait in the queue)."""
        self._expiry.watch(deadline)
        if not self._taking:
            self._batcher.notify(priority=priority)

    def notify(self, *, priority: bool = False) -> None:
        """Something was queued; ``priority``: above creates (a create's token wait yields)."""
        self._batcher.notify(priority=priority)

    def give_up_waiting(self, pending: Pending) -> None:
        """Settle ``pending`` if it still waits to be sent (its caller cancelled it)."""
        if self._acc.discard(pending):
            self._batcher.unsent([pending], expired=False)

    def flush(self) -> None:
        """Send what is queued now without lingering (later arrivals linger as usual)."""
        self._batcher.flush()

    def close(self) -> None:
        """Stop lingering; ``run`` returns once nothing is waiting or in flight."""
        self._batcher.closing = True
        self._batcher.notify()

    async def stop(self) -> None:
        """Cancel what is still sending or reconciling (the drain ran out of time)."""
        self._stopped = True
        self._expiry.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_for_space(self) -> None:
        self._batcher.space.clear()
        await self._batcher.space.wait()

    def wake_space_waiters(self) -> None:
        """Let callers waiting for room look again (the router closed or crashed)."""
        self._batcher.space.set()

    def idle(self) -> bool:
        """``place_now`` may send in its caller's turn: nothing queued or being dispatched, a
        slot free, a budget that pays at once, no linger, not closing, not crashed, creates
        not halted."""
        return (
            not self._acc
            and not self._dispatching
            and self._take is not None
            and not self._slots.locked()
            and self._crash is None
            and not self._batcher.closing
            and not self._stopped
            and self._sender.creates_halted is None
        )

    async def place_now(
        self, enqueue: Callable[[], asyncio.Future[T]], sent: Callable[[], None]
    ) -> T:
        """The outcome of the create ``enqueue`` queues (the router's checks, risk gate, live
        table and journal, as for any submit), cut and sent in this task, as a link would,
        once ``idle`` says so; ``sent`` as it goes out. If the bucket cannot pay at once, it
        waits in the queue the usual way.

        A caller cancelled mid-send gets its future cancelled, and its intent is looked up as
        after a dropped connection (the request may have reached the exchange): still exactly
        one outcome, for nobody. A bug of ours crashes the dispatcher as in a link."""
        cost = self._budget.costs["create"]
        if self._take is None or not self._take("create", cost):
            return await enqueue()
        self._taking = True
        try:
            future = enqueue()
        except BaseException:
            self._budget.refund("create", cost)
            if self._acc:  # half-queued (a journal that failed): let a link see it
                self._batcher.notify()
            raise
        finally:
            self._taking = False
        # The cut a link makes: the tokens of an intent refused or expired go back.
        batch = self._batcher.cut("create", 1, 0.0)
        if batch:
            sent()
            await self._slots.acquire()  # free (``idle``): taken without a wait
            self._sending_now += 1
            try:
                reply = await self._sender.request("create", batch)
            except asyncio.CancelledError:
                self._answered(batch, BatchReply("ambiguous", 0, unanswered=[batch[0].key]))
                future.cancel()
                raise
            except Exception as exc:
                self._fail(exc)
            else:
                self._answered(batch, reply)
            finally:
                self._slots.release()
                self._sending_now -= 1
                if self._batcher.closing:
                    self._batcher.notify()  # ``run`` waits for this send
        return await future

    def _answered(self, batch: list[Pending], reply: BatchReply) -> None:
        if self._crash is not None or self._stopped:
            # Everything pending was failed by the crash, or is settled by the close.
            return
        try:
            self._sender.handle("create", batch, reply)
        except Exception as exc:
            self._fail(exc)

    async def run(self) -> None:
        """Dispatch until closed and drained. A send or reconcile task that fails (our bug)
        ends this at once with its exception, even mid-wait, so nothing more is sent.

        The loop runs in links: a link waits for work, takes a slot and tokens, cuts a batch,
        hands the loop on to a new link and sends the batch itself. So a request goes out in
        the turn its batch is cut, not one turn of the loop later in a task of its own (a turn
        costs tens of µs of latency on a busy machine)."""
        self._runner = asyncio.current_task()
        if self._crash is not None:
            raise self._crash
        self._spawn(self._link())
        try:
            await self._finished
        except asyncio.CancelledError:
            if self._crash is None:
                raise
            raise self._crash from None

    def _next_link(self) -> None:
        if not self._stopped:
            self._spawn(self._link())

    async def _link(self) -> None:
        while True:
            # Work first, holding no slot while idle (one is then free for the fast path).
            kind = await self._next_kind()
            if kind is None:
                if not self._finished.done():
                    self._finished.set_result(None)
                return
            self._dispatching = True
            batch = None
            try:
                await self._slots.acquire()
                try:
                    # The lanes again: whatever arrived while every slot was busy competes
                    # for this one in priority order.
                    self._acc.promote(self._time())
                    now_kind = self._acc.next_kind()
                    if now_kind is not None:
                        kind = now_kind
                        batch = await self._batcher.dispatch(kind)
                finally:
                    if batch is None:
                        self._slots.release()
            finally:
                self._dispatching = False
            if batch is not None:
                # The successor's task is made next turn, not before this request goes out.
                asyncio.get_running_loop().call_soon(self._next_link)
                await self._send(kind, batch)
                return

    async def _next_kind(self) -> Kind | None:
        while True:
            if self._crash is not None:
                raise self._crash
            now = self._time()
            self._acc.promote(now)
            kind = self._acc.next_kind()
            if kind is not None:
                return kind
            # The only task left is this link: nothing is sending or reconciling.
            if (
                self._batcher.closing
                and not self._acc
                and len(self._tasks) == 1
                and not self._sending_now
            ):
                return None
            due = self._acc.next_due()
            await self._batcher.wait(None if due is None else max(0.0, due - now))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(self._guarded(coro))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def _guarded(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except Exception as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: Exception) -> None:
        """Our own bug, not the network's (the client turns those into replies). Stop
        dispatching before anything else runs: a send's slot is already free, and the
        dispatcher must not use it; nor may an answer or a deadline settle an intent after the
        router has failed every pending one loudly (``run`` ends with ``exc``)."""
        if self._crash is None:
            self._crash = exc
            # A fast send's bug may come before ``run`` began (which then ends with it at
            # once) or after it ended (at close: nobody is left to report it but us).
            runner = self._runner
            if runner is not None and not runner.done():
                runner.cancel()
            elif runner is not None:
                log.error("dispatcher bug after it stopped", exc_info=exc)
            self._expiry.cancel()
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: ``_guarded`` already acted on it
        self._batcher.notify()

    async def _send(self, kind: Kind, batch: list[Pending]) -> None:
        if self._crash is not None:
            self._slots.release()
            return
        try:
            reply = await self._sender.request(kind, batch)
        finally:
            self._slots.release()
        self._sender.handle(kind, batch, reply)
