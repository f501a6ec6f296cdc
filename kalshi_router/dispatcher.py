"""The one task that sends: in-flight slot, then write tokens, then the batch cut, then send.

Cutting *after* the slot and the tokens lets intents that came in while we waited join the
batch (all of them after a slot wait; after a token wait, as many as the bucket already covers:
the wait is sized when it starts and never grows, which would be a hidden linger). So batches
fill by themselves under load and an idle router sends a lone intent at once. Only this module
touches the write budget, one spend at a time, so the order of the lanes is the order of the
wire.

Every answer is classified (see ``wire.reply``) and what it means is decided in ``answers`` as
a plan (settle, retry, look up): this module only carries plans out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from kalshi_router.accumulator import Accumulator
from kalshi_router.answers import (
    Backoff,
    LookUp,
    Plan,
    answer,
    given_up,
    looked_up,
    never_sent,
)
from kalshi_router.budget import WriteBudget
from kalshi_router.errors import WireError
from kalshi_router.expiry import ExpiryTimer
from kalshi_router.journal import IntentJournal
from kalshi_router.outcome import Closed, Outcome
from kalshi_router.pending import Kind, Pending
from kalshi_router.reconcile import Reconciler
from kalshi_router.stats import RouterObserver
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.models import Order
from kalshi_router.wire.reply import BatchReply

log = logging.getLogger("kalshi_router.dispatcher")
Settle = Callable[[Mapping[Pending, Outcome]], None]  # the router's: each intent its outcome


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
        self._client = client
        self._acc = accumulator
        self._budget = budget
        self._reconciler = reconciler
        self._stats = stats
        self._settle = settle
        self._journal = journal
        self._limits = {kind: budget.batch_limit(kind, max_batch) for kind in budget.costs}
        self._slots = asyncio.Semaphore(max_in_flight)
        self._linger_s = linger_s
        self._backoff = backoff
        self._wakeup = asyncio.Event()
        self._urgent = asyncio.Event()
        self._space = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.creates_halted: str | None = None
        """Why creates are halted (the kill switch): a create due for a resend is settled
        instead; ``None`` when trading."""
        self._crash: BaseException | None = None
        self._runner: asyncio.Task[Any] | None = None
        self._stopped = False
        self._finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Creates queued at or before this time were flushed: they do not linger.
        self._flushed_at = -math.inf
        self._expiry = ExpiryTimer(accumulator, self._unsent)
        self.in_flight = 0
        """Intents in requests on the wire now."""
        self._time = asyncio.get_running_loop().time

    @property
    def batch_limits(self) -> dict[str, int]:
        return dict(self._limits)

    def queued(self, deadline: float, *, priority: bool) -> None:
        """Intents were pushed to the accumulator, the earliest due at ``deadline``: watch it,
        wake the loop (``priority``: as ``notify``)."""
        self._expiry.watch(deadline)
        self.notify(priority=priority)

    def notify(self, *, priority: bool = False) -> None:
        """Something was queued; ``priority``: above creates (a create's token wait yields)."""
        self._wakeup.set()
        if priority:
            self._urgent.set()

    def give_up_waiting(self, pending: Pending) -> None:
        """Settle ``pending`` if it still waits to be sent (its caller cancelled it)."""
        if self._acc.discard(pending):
            self._unsent([pending], expired=False)

    def _unsent(self, taken: list[Pending], *, expired: bool = True) -> None:
        """Settle ``taken``, out of the queue unsent because their deadlines passed (``expired``)
        or their callers cancelled them. That makes room, and a create batch waiting for tokens
        may now be waiting for more than it needs."""
        if not taken:
            return
        blocked = self._budget.blocked
        self._settle({p: never_sent(p, expired=expired, blocked=blocked) for p in taken})
        self._space.set()
        self._urgent.set()

    def flush(self) -> None:
        """Send what is queued now without lingering (later arrivals linger as usual)."""
        self._flushed_at = self._time()
        self.notify()

    def close(self) -> None:
        """Stop lingering; ``run`` returns once nothing is waiting or in flight."""
        self._closing = True
        self.notify()

    async def stop(self) -> None:
        """Cancel what is still sending or reconciling (the drain ran out of time)."""
        self._stopped = True
        self._expiry.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_for_space(self) -> None:
        self._space.clear()
        await self._space.wait()

    def wake_space_waiters(self) -> None:
        """Let callers waiting for room look again (the router closed or crashed)."""
        self._space.set()

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
                batch = await self._dispatch(kind)
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
            if self._closing and not self._acc and len(self._tasks) == 1:
                return None
            self._wakeup.clear()
            due = self._acc.next_due()
            timeout = None if due is None else max(0.0, due - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _dispatch(self, kind: Kind) -> list[Pending] | None:
        """Take the tokens and cut the batch; None: nothing to send after all."""
        cost = self._budget.costs[kind]
        limit = self._limits[kind]
        if self._linger_s > 0 and kind == "create":
            await self._linger(limit)
            if self._outranked():
                return None
        want = min(limit, self._acc.count(kind))
        started = self._time()
        if not await self._spend(kind, cost * want):
            return None
        waited = self._time() - started
        # Intents that arrived while we waited join the batch if the bucket covers them too.
        extra = min(limit, self._acc.count(kind)) - want
        if extra > 0 and await self._budget.spend_now(kind, cost * extra):
            want += extra
        now = self._time()
        cut = self._acc.cut(kind, want, now)
        self._unsent(cut.expired)
        self._unsent(cut.dropped, expired=False)
        self._space.set()  # the cut made room in the queue
        if unused := want - len(cut.batch):
            self._budget.refund(kind, cost * unused)
        if not cut.batch:
            return None
        waits = [now - pending.queued_at for pending in cut.batch]
        self._stats.sent(kind, len(cut.batch), waits, waited)
        return cut.batch

    def _outranked(self) -> bool:
        """A lane above creates has work (retries that came due included)."""
        self._acc.promote(self._time())
        return self._acc.next_kind() not in ("create", None)

    async def _spend(self, kind: Kind, amount: int) -> bool:
        """Take ``amount`` tokens. A create batch gives way (and takes nothing) as soon as a
        higher lane has work (queued while we waited for a slot or lingered, queued during the
        token wait, or a retry coming due during it), or as soon as its lane no longer holds
        what ``amount`` pays for (expired or cancelled meanwhile), to be sized again."""
        if kind != "create":
            await self._budget.spend(kind, amount)
            return True
        if self._outranked():
            return False
        if await self._budget.spend_now(kind, amount):
            return True
        spend = asyncio.ensure_future(self._budget.spend(kind, amount))
        try:
            while not spend.done():
                self._urgent.clear()
                if self._outranked() or self._acc.count(kind) * self._budget.costs[kind] < amount:
                    break
                due = self._acc.next_due()
                timeout = None if due is None else max(0.0, due - self._time())
                urgent = asyncio.ensure_future(self._urgent.wait())
                try:
                    await asyncio.wait(
                        (spend, urgent), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    urgent.cancel()
                    await asyncio.gather(urgent, return_exceptions=True)
        finally:
            if not spend.done():
                spend.cancel()
            await asyncio.gather(spend, return_exceptions=True)
        if spend.cancelled():
            return False
        spend.result()
        if self._outranked() or self._acc.count(kind) * self._budget.costs[kind] < amount:
            # Both happened in the same turn: hand the tokens back and decide again.
            self._budget.refund(kind, amount)
            return False
        return True

    async def _linger(self, limit: int) -> None:
        oldest = self._acc.oldest("create")
        if oldest is None:
            return
        end = oldest.queued_at + self._linger_s
        while self._acc.count("create") < limit and not self._closing:
            now = self._time()
            if now >= end or oldest.queued_at <= self._flushed_at or self._outranked():
                return
            due = self._acc.next_due()
            timeout = end - now if due is None else min(end - now, max(0.0, due - now))
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

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
        self.notify()

    async def _send(self, kind: Kind, batch: list[Pending]) -> None:
        if self._crash is not None:
            self._slots.release()
            return
        self.in_flight += len(batch)
        started = self._time()
        try:
            for pending in batch:
                pending.attempts += 1
            if self._journal is not None:
                self._journal.sending(batch)
            payloads = [pending.payload for pending in batch]
            if kind == "create":
                reply = await self._client.create_batch(payloads)
            elif kind == "cancel":
                reply = await self._client.cancel_batch(payloads)
            else:
                reply = await self._client.single(payloads[0])
        finally:
            self._stats.answered(kind, len(batch), self._time() - started)
            self.in_flight -= len(batch)
            self._slots.release()
        self._handle(kind, batch, reply)

    def _handle(self, kind: Kind, batch: list[Pending], reply: BatchReply) -> None:
        if reply.anomalies:
            log.warning("answer anomalies: %s", "; ".join(reply.anomalies))
        self._carry_out(answer(kind, batch, reply, self._time(), self._backoff.delay))

    def _carry_out(self, plan: Plan) -> None:
        for pending in plan.maybe_placed:
            pending.mark_maybe_placed()
        if plan.drain:
            self._stats.rate_limited()
            self._budget.rate_limited()
        if plan.settle:
            self._settle(plan.settle)
        if plan.retry:
            self._stats.retried(len(plan.retry))
            for pending in plan.retry:
                if pending.kind == "create" and self.creates_halted is not None:
                    # Halted: a create is never sent again (unknown if it may have landed).
                    self._settle({pending: given_up(pending, self.creates_halted, Closed)})
                else:
                    self._acc.push_retry(pending, plan.retry_at)
            # A create batch waiting for tokens must learn when a cancel's retry comes due.
            self.notify(priority=plan.retry[0].kind != "create")
        for look in plan.look_up:
            for pending in look.pending:
                pending.move("looking_up")
            if look.if_absent == "resend":
                keys = [p.key for p in look.pending]
                log.info(
                    "reconciling %d orders after %s: %s",
                    len(keys),
                    look.reason,
                    " ".join(keys),
                    extra={"client_order_ids": keys},
                )
            self._spawn(self._reconcile(look))

    async def _reconcile(self, look: LookUp) -> None:
        self._stats.reconciling(len(look.pending))
        await self._reconciler.rounds(look, self._looked_up, self._carry_out)

    def _looked_up(self, look: LookUp, found: Mapping[str, Order] | WireError) -> Plan:
        return looked_up(look, found, self._time(), self._backoff.delay)
