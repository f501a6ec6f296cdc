"""Ambiguous outcomes are looked up, never guessed.

``GET /portfolio/orders`` has no client_order_id filter, so we list each ticker's orders since
just before the first attempt, page by cursor, and match on client_order_id. When the router
follows its orders, an order the WebSocket has already shown for a key is proof enough: ``seen``
answers for it and REST is asked only for the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple, Protocol, TypeAlias

from aiolimiter import AsyncLimiter

from kalshi_router.answers import LookUp, Plan
from kalshi_router.errors import WireError
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.models import Order

# Kalshi's min_ts is in seconds and our clock may lead the exchange's; look back further than
# any sane skew so an order placed "before" we sent it is still found.
LOOKBACK_S = 120
READ_COST = 10
Decide: TypeAlias = Callable[[LookUp, Mapping[str, Order] | WireError], Plan]


class Probe(Protocol):
    """What a lookup needs of an intent: a live one (``Pending``) or a journaled one."""

    @property
    def ticker(self) -> str: ...

    @property
    def key(self) -> str:
        """Its client_order_id."""

    @property
    def submitted_wall(self) -> float:
        """Unix seconds, no later than its first attempt."""


class Sought(NamedTuple):
    """A probe by value, for intents that are no longer live (a journal's, after a restart)."""

    ticker: str
    key: str
    submitted_wall: float


class Reconciler:
    def __init__(
        self,
        client: ExchangeClient,
        reads: AsyncLimiter,
        page_size: int = 1000,
        seen: Callable[[str], Order | None] | None = None,
    ) -> None:
        self._client = client
        self._reads = reads
        self._page_size = page_size
        self._seen = seen

    async def find(self, probes: Iterable[Probe]) -> dict[str, Order]:
        """The exchange's order for each probed client_order_id it holds. Raises the client's
        errors (transport, HTTP status, unreadable answer) for the caller to classify."""
        wanted: dict[str, list[Probe]] = {}
        found: dict[str, Order] = {}
        for probe in probes:
            shown = self._seen(probe.key) if self._seen is not None else None
            if shown is not None:
                found[probe.key] = shown
            else:
                wanted.setdefault(probe.ticker, []).append(probe)
        for ticker, group in wanted.items():
            keys = {p.key for p in group}
            since = int(min(p.submitted_wall for p in group)) - LOOKBACK_S
            cursor: str | None = None
            while keys:
                await self._reads.acquire(READ_COST)
                page = await self._client.get_orders(
                    ticker=ticker, min_ts=since, cursor=cursor, limit=self._page_size
                )
                for order in page.orders:
                    if order.client_order_id in keys:
                        keys.discard(order.client_order_id)
                        found[order.client_order_id] = order
                cursor = page.cursor
                if not cursor or not page.orders:
                    break
        return found

    async def rounds(self, look: LookUp, decide: Decide, carry_out: Callable[[Plan], None]) -> None:
        """Look ``look.pending`` up round after round, carrying out what ``decide`` makes of
        each (``answers.looked_up``), until it leaves nothing to look up again."""
        while True:
            found: dict[str, Order] | WireError
            try:
                found = await self.find(look.pending)
            except WireError as exc:
                found = exc
            plan = decide(look, found)
            carry_out(plan)
            if plan.look_again is None:
                return
            look = plan.look_again
            await asyncio.sleep(look.wait_s)
