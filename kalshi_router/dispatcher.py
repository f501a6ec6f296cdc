"""The one task that sends: in-flight slot, then write tokens, then the batch cut, then send.

Cutting *after* the slot and the tokens lets intents that came in while we waited join the
batch (all of them after a slot wait; after a token wait, as many as the bucket already covers:
the wait is sized when it starts and never grows, which would be a hidden linger). So batches
fill by themselves under load and an idle router sends a lone intent at once. Only this module
touches the write budget, one spend at a time, so the order of the lanes is the order of the
wire.

Every answer is classified (see ``wire.reply``): definitive answers settle, "not executed" ones
are retried with the same client_order_ids after a jittered backoff, and ambiguous ones are
looked up before anything is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from kalshi_router.accumulator import Accumulator, Kind, Pending
from kalshi_router.errors import WireError
from kalshi_router.journal import IntentJournal
from kalshi_router.limiter import WriteBudget
from kalshi_router.outcome import Closed, Expired, Outcome, Rejected, Unknown
from kalshi_router.reconcile import Reconciler, accepted_from
from kalshi_router.stats import RouterObserver
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.reply import BatchReply

log = logging.getLogger("kalshi_router.dispatcher")

# Sim assumption shared with kalshi_router.sim: Kalshi documents 409 for a reused id but not its
# code; any of these on a resend of an order that may have landed means "it is there".
DUPLICATE_CODES = frozenset({"duplicate_client_order_id", "order_already_exists", "conflict"})
Settle = Callable[[Pending, Outcome], None]


def given_up(pending: Pending, reason: str, outcome: type[Expired | Closed]) -> Outcome:
    """``outcome`` for an intent we stop trying to send, unless an earlier attempt may have
    reached the exchange: a negative lookup does not prove a request still on its way will not
    land, and only a resend (answered "duplicate" if it did) could, so it is unknown."""
    if pending.maybe_placed:
        why = f"{reason}; an earlier attempt may have reached the exchange"
        return Unknown(reason=why, **pending.ids())
    return outcome(reason=reason, **pending.ids())


class Backoff:
    """Exponential backoff with full jitter (no Retry-After exists to honour)."""

    def __init__(self, base: float, cap: float, rng: random.Random) -> None:
        self.base = base
        self.cap = cap
        self._rng = rng

    def delay(self, attempt: int) -> float:
        return self._rng.uniform(0.0, min(self.cap, self.base * 2 ** max(0, attempt - 1)))


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
        self._crash: BaseException | None = None
        self._runner: asyncio.Task[Any] | None = None
        self._link_task: asyncio.Task[Any] | None = None
        self._stopped = False
        self._finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Creates queued at or before this time were flushed: they do not linger.
        self._flushed_at = -math.inf
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at = math.inf
        self.in_flight: set[Pending] = set()
        self._time = asyncio.get_running_loop().time

    @property
    def batch_limits(self) -> dict[str, int]:
        return dict(self._limits)

    def queued(self, pending: Pending) -> None:
        """``pending`` was pushed to the accumulator: watch its deadline, wake the loop."""
        if pending.deadline < self._expiry_at:
            self._arm_expiry(pending.deadline)
        self.notify(priority=pending.kind != "create")

    def _arm_expiry(self, when: float) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry_at = when
        self._expiry = asyncio.get_running_loop().call_at(when, self._expire)

    def _expire(self) -> None:
        """Settle what is still waiting at its deadline now, rather than whenever a batch cut
        reaches it; then wait for the next deadline."""
        # The timer may fire a hair early (the loop's clock resolution): it is due all the same.
        upto = max(self._time(), self._expiry_at)
        self._expiry, self._expiry_at = None, math.inf
        expired = self._acc.expire(upto)
        for pending in expired:
            self._settle(pending, given_up(pending, "deadline passed before sending", Expired))
        if expired:
            self._space.set()
            # A create batch waiting for tokens may now be waiting for more than it needs.
            self._urgent.set()
        due = self._acc.next_deadline()
        if due is not None:
            self._arm_expiry(due)

    def notify(self, *, priority: bool = False) -> None:
        """Something was queued; ``priority``: in a lane above creates, so a create batch
        waiting for tokens must give way."""
        self._wakeup.set()
        if priority:
            self._urgent.set()

    def give_up_waiting(self, pending: Pending) -> None:
        """Settle ``pending`` now if it is still waiting to be sent (its caller cancelled it);
        one already sent is left to its answer."""
        if self._acc.discard(pending):
            reason = "cancelled by the caller before sending"
            self._settle(pending, given_up(pending, reason, Closed))
            self._space.set()
            # A create batch waiting for tokens may now be waiting for more than it needs.
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
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
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
        self._link_task = asyncio.current_task()
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
        if extra > 0 and self._budget.spend_now(cost * extra):
            want += extra
        now = self._time()
        cut = self._acc.cut(kind, want, now)
        self._space.set()
        for pending in cut.expired:
            self._settle(pending, given_up(pending, "deadline passed before sending", Expired))
        for pending in cut.dropped:
            reason = "cancelled by the caller before sending"
            self._settle(pending, given_up(pending, reason, Closed))
        if unused := want - len(cut.batch):
            self._budget.refund(cost * unused)
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
            if not self._budget.spend_now(amount):
                await self._budget.spend(amount)
            return True
        if self._outranked():
            return False
        if self._budget.spend_now(amount):
            return True
        spend = asyncio.ensure_future(self._budget.spend(amount))
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
            self._budget.refund(amount)
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
            # dispatcher must not use it. The router then fails every pending intent loudly.
            if self._crash is None:
                self._crash = exc
                if self._runner is not None:
                    self._runner.cancel()
                link = self._link_task
                if link is not None and link is not asyncio.current_task():
                    link.cancel()
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
        self.in_flight.update(batch)
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
            self.in_flight.difference_update(batch)
            self._slots.release()
        self._handle(kind, batch, reply)

    def _handle(self, kind: Kind, batch: list[Pending], reply: BatchReply) -> None:
        if reply.anomalies:
            log.warning("answer anomalies: %s", "; ".join(reply.anomalies))
        by_key = {pending.key: pending for pending in batch}
        if reply.disposition == "retry":
            if reply.http_status == 429:
                self._stats.rate_limited()
                self._budget.rate_limited()
            self.retry_all(batch, reply.error.code if reply.error else "not executed")
            return
        unsure = [by_key[key] for key in reply.unanswered]
        landed: list[Pending] = []
        refused: dict[Pending, Rejected] = {}
        for key, outcome in reply.outcomes.items():
            pending = by_key[key]
            if not (pending.maybe_placed and isinstance(outcome, Rejected)):
                self._settle(pending, outcome)
            elif kind == "create" and outcome.code in DUPLICATE_CODES:
                landed.append(pending)
            elif kind == "create":
                # The first attempt may have landed after our lookup (and, say, taken the
                # balance the resend then lacked): look again before believing the refusal.
                refused[pending] = outcome
            elif kind == "cancel":
                # Refusing the resend ("not resting", say) is what the exchange would answer
                # had the first attempt cancelled the order: that cannot be told apart.
                why = (
                    f"the resend was refused ({outcome.code}: {outcome.message}), but an "
                    "earlier attempt may have cancelled the order"
                )
                self._settle(pending, Unknown(reason=why, **pending.ids()))
            else:
                self._settle(pending, outcome)
        if landed:
            self._spawn(self._reconcile(landed, if_absent=None))
        if refused:

            def believe(absent: list[Pending]) -> None:
                for pending in absent:
                    self._settle(pending, refused[pending])

            self._spawn(self._reconcile(list(refused), if_absent=believe))
        if unsure:
            self._ambiguous(kind, unsure, reply)

    def _ambiguous(self, kind: Kind, batch: list[Pending], reply: BatchReply) -> None:
        if reply.error:
            reason = reply.error.code
        else:
            reason = "unusable answer" if reply.anomalies and reply.http_status else "no answer"
        if kind == "cancel":
            # Cancelling twice cannot hurt, and the second answer says where the order stands.
            for pending in batch:
                pending.maybe_placed = True
            self.retry_all(batch, reason)
        elif kind == "single":
            for pending in batch:
                self._settle(
                    pending,
                    Unknown(
                        reason=f"{reason}: an amend/decrease is not safe to resend", **pending.ids()
                    ),
                )
        else:
            for pending in batch:
                pending.maybe_placed = True
            keys = [p.key for p in batch]
            log.info(
                "reconciling %d orders after %s: %s",
                len(batch),
                reason,
                " ".join(keys),
                extra={"client_order_ids": keys},
            )
            self._spawn(self._reconcile(batch, if_absent=self._resend))

    def retry(self, pending: Pending, reason: str) -> None:
        self.retry_all([pending], reason)

    def retry_all(self, batch: Sequence[Pending], reason: str) -> None:
        """Queue ``batch`` again after one backoff: what failed together is retried together
        (one jittered delay each would split a batch into as many requests)."""
        now = self._time()
        delay = self._backoff.delay(max(pending.attempts for pending in batch))
        for pending in batch:
            if pending.settled:  # failed loudly after a crash, say: nothing left to retry
                continue
            if now + delay >= pending.deadline:
                why = f"deadline passed while retrying ({reason})"
                self._settle(pending, given_up(pending, why, Expired))
                continue
            self._stats.retried(1)
            self._acc.push_retry(pending, now + delay)
        # A create batch waiting for tokens must learn when a cancel's retry comes due.
        self.notify(priority=any(pending.kind != "create" for pending in batch))

    async def _reconcile(
        self, batch: Sequence[Pending], *, if_absent: Callable[[list[Pending]], None] | None
    ) -> None:
        """Look ``batch`` up until each is found (accepted), not found (``if_absent``) or out of
        time (unknown). ``if_absent`` None: the order is known to exist (a duplicate-id answer),
        so it is looked for until its deadline."""
        self._stats.reconciling(len(batch))
        waiting = list(batch)
        attempt = 0
        while True:
            attempt += 1
            try:
                found = await self._reconciler.find(waiting)
            except WireError as exc:
                why = f"could not look the order up before its deadline: {exc}"
            else:
                why = "the exchange holds this client_order_id but did not list it in time"
                absent: list[Pending] = []
                for pending in waiting:
                    order = found.get(pending.key)
                    if order is not None:
                        self._settle(pending, accepted_from(order))
                    elif if_absent is not None:
                        absent.append(pending)
                if if_absent is not None and absent:
                    if_absent(absent)
                    waiting = [p for p in waiting if p not in absent]
            now = self._time()
            for pending in waiting:
                if now >= pending.deadline:
                    self._settle(pending, Unknown(reason=why, **pending.ids()))
            waiting = [p for p in waiting if not p.settled]
            if not waiting:
                return
            # Never sleep past a deadline: the last lookup happens at it, not after it.
            until = min(p.deadline for p in waiting) - now
            await asyncio.sleep(min(self._backoff.delay(attempt), until))

    def _resend(self, absent: list[Pending]) -> None:
        # Not there: resending the same id is safe, the exchange refuses a second.
        self.retry_all(absent, "not found after an ambiguous attempt")
