"""The next batch: which lane goes next, how long a create batch may linger, the write tokens it
costs, and the cut. The dispatcher calls it with an in-flight slot in hand.

Cutting *after* the slot and the tokens lets intents that came in while we waited join the
batch (all of them after a slot wait; after a token wait, as many as the bucket already covers:
the wait is sized when it starts and never grows, which would be a hidden linger). So batches
fill by themselves under load and an idle router sends a lone intent at once. Only one batch is
paid for at a time, so the order of the lanes is the order of the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Mapping

from kalshi_router.accumulator import Accumulator
from kalshi_router.answers import never_sent
from kalshi_router.budget import WriteBudget
from kalshi_router.outcome import Outcome
from kalshi_router.pending import Kind, Pending
from kalshi_router.stats import RouterObserver

Settle = Callable[[Mapping[Pending, Outcome]], None]  # the router's: each intent its outcome


class Batcher:
    """Decides and pays for the next batch; holds the events the waits for work and tokens
    wake on."""

    def __init__(
        self,
        *,
        accumulator: Accumulator,
        budget: WriteBudget,
        stats: RouterObserver,
        settle: Settle,
        limits: Mapping[str, int],
        linger_s: float,
    ) -> None:
        self._acc = accumulator
        self._budget = budget
        self._stats = stats
        self._settle = settle
        self._limits = limits
        self.linger_s = linger_s
        self.wakeup = asyncio.Event()
        """Something was queued, or something ended: look at the lanes again."""
        self._urgent = asyncio.Event()
        self.space = asyncio.Event()
        """The queue has room again."""
        self.closing = False
        # Creates queued at or before this time were flushed: they do not linger.
        self._flushed_at = -math.inf
        self._time = asyncio.get_running_loop().time

    def notify(self, *, priority: bool = False) -> None:
        """Something was queued; ``priority``: above creates (a create's token wait yields)."""
        self.wakeup.set()
        if priority:
            self._urgent.set()

    def flush(self) -> None:
        self._flushed_at = self._time()
        self.notify()

    def unsent(self, taken: list[Pending], *, expired: bool = True) -> None:
        """Settle ``taken``, out of the queue unsent because their deadlines passed (``expired``)
        or their callers cancelled them. That makes room, and a create batch waiting for tokens
        may now be waiting for more than it needs."""
        if not taken:
            return
        blocked = self._budget.blocked
        self._settle({p: never_sent(p, expired=expired, blocked=blocked) for p in taken})
        self.space.set()
        self._urgent.set()

    async def wait(self, within_s: float | None) -> None:
        """Until ``notify`` (or ``within_s`` s)."""
        self.wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeup.wait(), within_s)

    def cut(self, kind: Kind, want: int, waited: float) -> list[Pending]:
        """Cut up to ``want`` intents of ``kind``, paid for: what leaves unsent is settled, and
        its tokens given back."""
        now = self._time()
        cut = self._acc.cut(kind, want, now)
        self.unsent(cut.expired)
        self.unsent(cut.dropped, expired=False)
        self.space.set()  # the cut made room in the queue
        if unused := want - len(cut.batch):
            self._budget.refund(kind, self._budget.costs[kind] * unused)
        if cut.batch:
            waits = [now - pending.queued_at for pending in cut.batch]
            self._stats.sent(kind, len(cut.batch), waits, waited)
        return cut.batch

    async def dispatch(self, kind: Kind) -> list[Pending] | None:
        """Take the tokens and cut the batch; None: nothing to send after all."""
        cost = self._budget.costs[kind]
        limit = self._limits[kind]
        if self.linger_s > 0 and kind == "create":
            await self._linger(limit)
            if self.outranked():
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
        return self.cut(kind, want, waited) or None

    def outranked(self) -> bool:
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
        if self.outranked():
            return False
        if await self._budget.spend_now(kind, amount):
            return True
        spend = asyncio.ensure_future(self._budget.spend(kind, amount))
        try:
            while not spend.done():
                self._urgent.clear()
                if self.outranked() or self._acc.count(kind) * self._budget.costs[kind] < amount:
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
        if self.outranked() or self._acc.count(kind) * self._budget.costs[kind] < amount:
            # Both happened in the same turn: hand the tokens back and decide again.
            self._budget.refund(kind, amount)
            return False
        return True

    async def _linger(self, limit: int) -> None:
        oldest = self._acc.oldest("create")
        if oldest is None:
            return
        end = oldest.queued_at + self.linger_s
        while self._acc.count("create") < limit and not self.closing:
            now = self._time()
            if now >= end or oldest.queued_at <= self._flushed_at or self.outranked():
                return
            due = self._acc.next_due()
            await self.wait(end - now if due is None else min(end - now, max(0.0, due - now)))
