"""The write budget as the dispatcher spends it, and as everyone else reads it.

Kalshi's write limit is a token bucket per account (see ``kalshi_router.budget.local``). The
dispatcher is the only spender: it asks for the tokens a batch costs before it cuts the batch,
gives back what a smaller cut did not use, and drains the budget when the exchange answers 429.
Everything else (stats, the service's state frame, the demo) reads the figures of ``BudgetView``.

Spending is async because an implementation may have to ask a server for its share (one bucket
shared by several routers); giving back and draining only inform, so they return at once, and an
implementation that must tell a server does so in a task it owns. ``kind`` (``create``,
``cancel``, ``single``, the keys of ``costs``) travels with every spend: an implementation may
serve the kinds differently (creates leaving a reserve that only cancels may use), never in a
different order from the one the dispatcher asks in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from kalshi_router.redis_budget.figures import SharedBudgetFigures


class BudgetView(Protocol):
    """The write budget, read-only: every ``WriteBudget`` is one, and so is the service's report
    of its own (``kalshi_router.service.protocol.BudgetState``)."""

    @property
    def refill_rate(self) -> float:
        """Tokens per second."""

    @property
    def capacity(self) -> float:
        """The exchange's bucket, in tokens."""

    @property
    def headroom(self) -> float:
        """Tokens of the bucket the router keeps unspent (see ``kalshi_router.budget.local``)."""

    @property
    def costs(self) -> Mapping[str, int]:
        """Tokens per created order (``create``), per cancel, and per single-order call."""

    @property
    def spent(self) -> int:
        """Tokens spent since the router started."""

    def tokens(self) -> float:
        """Tokens the budget holds now, as far as this process knows."""


class WriteBudget(BudgetView, Protocol):
    """What the dispatcher calls, one call at a time, and nothing else does."""

    @property
    def blocked(self) -> str | None:
        """Why creates cannot be paid for now, whatever the tokens (None: they can): a shared
        budget's server unreachable, say. Named in the outcome of creates whose deadline
        passes meanwhile."""

    def batch_limit(self, kind: str, configured_max: int) -> int:
        """The largest batch of ``kind`` (at most ``configured_max``) one request may carry."""

    async def spend_now(self, kind: str, amount: int) -> bool:
        """Take ``amount`` tokens if the budget holds them now, without waiting for any; False
        (and nothing taken) if not."""

    async def spend(self, kind: str, amount: int) -> None:
        """Wait until the budget covers ``amount``, then take it. Cancellation-safe: a wait
        cancelled before it returns takes nothing."""

    def refund(self, kind: str, amount: int) -> None:
        """Give back tokens taken for orders that were dropped before the request went out."""

    def rate_limited(self) -> None:
        """The exchange answered 429: its bucket is empty, whatever this one says."""

    def figures(self) -> SharedBudgetFigures | None:
        """A shared budget's own figures (None for the local bucket)."""

    async def aclose(self) -> None:
        """Let go of what the budget holds (a connection, tasks telling a server); the router
        calls it last, once nothing spends any more."""


@runtime_checkable
class SpendsAtOnce(Protocol):
    """A ``WriteBudget`` that can grant tokens without awaiting anything (the local bucket; not a
    shared one, which asks its server first): what the idle fast path needs, to take a batch's
    tokens and send it in one turn."""

    def take(self, kind: str, amount: int) -> bool:
        """Take ``amount`` if the budget holds it now; False (and nothing taken) if not."""
