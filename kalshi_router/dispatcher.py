"""The one sender: a chain of links, one dispatching at a time. A link takes an in-flight slot,
has the next batch paid for and cut (``batching``), hands the loop on to a new link and sends
the batch itself (``sending``). A task of ours that fails (our bug) stops everything at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from kalshi_router.accumulator import Accumulator
from kalshi_router.answers import Backoff
from kalshi_router.batching import Batcher, Settle
from kalshi_router.budget import WriteBudget
from kalshi_router.expiry import ExpiryTimer
from kalshi_router.journal import IntentJournal
from kalshi_router.pending import Kind, Pending
from kalshi_router.reconcile import Reconciler
from kalshi_router.sending import Sender
from kalshi_router.stats import RouterObserver
from kalshi_router.wire.client import ExchangeClient


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
        self._slots = asyncio.Semaphore(max_in_flight)
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
        wake the loop (``priority``: as ``notify``)."""
        self._expiry.watch(deadline)
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

    async def run(self) -> None:
        """Dispatch until closed and drained. A send or reconcile task that fails (our bug)
        ends this at once with its exception, even mid-wait, so nothing more is sent.

        The loop runs in links: a link takes a slot, waits for work and tokens, cuts a batch,
        hands the loop on to a new link and sends the batch itself. So a request goes out in
        the turn its batch is cut, not one turn of the loop later in a task of its own (a turn
        costs tens of µs of latency on a busy machine)."""
        self._runner = asyncio.current_task()
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
            # The slot first and the lane after: whatever arrived while every slot was busy
            # then competes for this one in priority order.
            await self._slots.acquire()
            batch = None
            try:
                kind = await self._next_kind()
                if kind is None:
                    if not self._finished.done():
                        self._finished.set_result(None)
                    return
                batch = await self._batcher.dispatch(kind)
            finally:
                if batch is None:
                    self._slots.release()
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
            if self._batcher.closing and not self._acc and len(self._tasks) == 1:
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
            # Our own bug, not the network's (the client turns those into replies). Stop
            # dispatching before anything else runs: a send's slot is already free, and the
            # dispatcher must not use it; nor may an answer or a deadline settle an intent
            # after the router has failed every pending one loudly.
            if self._crash is None:
                self._crash = exc
                if self._runner is not None:
                    self._runner.cancel()
                self._expiry.cancel()
                for task in self._tasks:
                    if task is not asyncio.current_task():
                        task.cancel()
            raise

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
