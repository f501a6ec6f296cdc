"""One batch on the wire, and what its answer means carried out.

Every answer is classified (see ``wire.reply``) and what it means is decided in ``answers`` as
a plan (settle, retry, look up): this module only carries plans out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from kalshi_router.accumulator import Accumulator
from kalshi_router.answers import Backoff, LookUp, Plan, answer, given_up, looked_up
from kalshi_router.budget import WriteBudget
from kalshi_router.errors import WireError
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
Spawn = Callable[[Coroutine[Any, Any, None]], None]  # the dispatcher's: a task it guards


class Sender:
    """Sends batches and carries out the plans their answers make: settles, queues retries
    (``notify`` then wakes the dispatcher), starts lookups (in tasks ``spawn`` makes)."""

    def __init__(
        self,
        *,
        client: ExchangeClient,
        accumulator: Accumulator,
        budget: WriteBudget,
        reconciler: Reconciler,
        stats: RouterObserver,
        settle: Settle,
        journal: IntentJournal | None,
        backoff: Backoff,
        notify: Callable[..., None],
        spawn: Spawn,
    ) -> None:
        self._client = client
        self._acc = accumulator
        self._budget = budget
        self._reconciler = reconciler
        self._stats = stats
        self._settle = settle
        self._journal = journal
        self._backoff = backoff
        self._notify = notify
        self._spawn = spawn
        self.creates_halted: str | None = None
        """Why creates are halted (the kill switch): a create due for a resend is settled
        instead; ``None`` when trading."""
        self.in_flight = 0
        """Intents in requests on the wire now."""
        self._time = asyncio.get_running_loop().time

    async def request(self, kind: Kind, batch: list[Pending]) -> BatchReply:
        """Send ``batch`` (journaled as sending first) and return the classified answer."""
        self.in_flight += len(batch)
        started = self._time()
        try:
            for pending in batch:
                pending.attempts += 1
            if self._journal is not None:
                self._journal.sending(batch)
            payloads = [pending.payload for pending in batch]
            if kind == "create":
                return await self._client.create_batch(payloads)
            if kind == "cancel":
                return await self._client.cancel_batch(payloads)
            return await self._client.single(payloads[0])
        finally:
            self._stats.answered(kind, len(batch), self._time() - started)
            self.in_flight -= len(batch)

    def handle(self, kind: Kind, batch: list[Pending], reply: BatchReply) -> None:
        if reply.anomalies:
            log.warning("answer anomalies: %s", "; ".join(reply.anomalies))
        self.carry_out(answer(kind, batch, reply, self._time(), self._backoff.delay))

    def carry_out(self, plan: Plan) -> None:
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
            self._notify(priority=plan.retry[0].kind != "create")
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
        await self._reconciler.rounds(look, self._looked_up, self.carry_out)

    def _looked_up(self, look: LookUp, found: Mapping[str, Order] | WireError) -> Plan:
        return looked_up(look, found, self._time(), self._backoff.delay)
