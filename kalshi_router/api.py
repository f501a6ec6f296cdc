"""``Router``: what a bot holds, whether the router runs in its process or in the service.

``OrderRouter`` (embedded) and ``RouterClient`` (a client of ``kalshi-router serve``) both
implement it, with the same calls, the same sync or async shape for each member, and the same
outcomes, so a bot written against ``Router`` runs on either (``open_router`` picks one from the
configuration). On the client, the read-only members (``stats()``, ``queue_depth``,
``in_flight``, ``budget``, ``crashed``, ``batch_limits``) report the state the service last
pushed on the stream (every 250 ms, and as of the end of each ``flush()``).

``orders`` (when the router follows orders, ``[orders] track = true``; on the client, the
service's setting) is the bot's orders after acceptance: handles, updates, open orders and
positions. The embedded router's covers every order of the account; the client's covers the
orders this bot placed through the service (see ``kalshi_router.service.client.orders``).

The desk's controls (``trading_state``, ``set_trading_state``, ``kill``, ``resume``) act on the
router: on the client, the service's, so they apply to every bot sharing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Protocol, Self

from kalshi_router.budget import BudgetView as BudgetView  # a bot may type against it here
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.orders.updates import Orders
from kalshi_router.outcome import AmendOutcome, CancelOutcome, OrderOutcome
from kalshi_router.risk.config import TradingState
from kalshi_router.risk.kill import KillReport
from kalshi_router.stats import RouterStats


class Router(Protocol):
    """Submit intents, get one future each, settled exactly once; see ``OrderRouter``."""

    def submit(
        self, intent: OrderIntent, *, deadline_s: float | None = None
    ) -> asyncio.Future[OrderOutcome]: ...

    async def submit_wait(
        self,
        intent: OrderIntent,
        *,
        queue_timeout: float | None = None,
        deadline_s: float | None = None,
    ) -> asyncio.Future[OrderOutcome]: ...

    async def place(
        self,
        intent: OrderIntent,
        *,
        queue_timeout: float | None = None,
        deadline_s: float | None = None,
    ) -> OrderOutcome: ...

    def submit_many(
        self, intents: Iterable[OrderIntent], *, deadline_s: float | None = None
    ) -> list[asyncio.Future[OrderOutcome]]: ...

    async def place_many(
        self, intents: Iterable[OrderIntent], *, deadline_s: float | None = None
    ) -> list[OrderOutcome]: ...

    def cancel(
        self,
        order_id: str | CancelIntent,
        ticker: str | None = None,
        *,
        deadline_s: float | None = None,
    ) -> asyncio.Future[CancelOutcome]: ...

    def cancel_many(
        self, cancels: Iterable[CancelIntent]
    ) -> list[asyncio.Future[CancelOutcome]]: ...

    def amend(
        self, intent: AmendIntent, *, deadline_s: float | None = None
    ) -> asyncio.Future[AmendOutcome]: ...

    def decrease(
        self, intent: DecreaseIntent, *, deadline_s: float | None = None
    ) -> asyncio.Future[AmendOutcome]: ...

    async def flush(self) -> None:
        """Send what is queued and wait until every intent taken so far has its outcome."""

    async def aclose(self, drain_timeout: float | None = None) -> None:
        """Refuse new intents, wait up to ``drain_timeout`` for the rest, then settle what is
        left: never sent, ``Closed``; sent without an answer, ``Unknown``."""

    def stats(self) -> RouterStats: ...

    @property
    def queue_depth(self) -> int:
        """Intents waiting to be sent."""

    @property
    def in_flight(self) -> int:
        """Intents in requests on the wire to the exchange."""

    @property
    def budget(self) -> BudgetView: ...

    @property
    def crashed(self) -> BaseException | None:
        """Why the router's dispatcher died, if it did (it then takes nothing new)."""

    @property
    def batch_limits(self) -> Mapping[str, int]:
        """The largest batch per lane (``create``, ``cancel``, ``single``)."""

    @property
    def orders(self) -> Orders:
        """The orders after acceptance; ``ConfigError`` naming ``orders.track`` when the
        router does not follow them."""

    # The desk's controls: on the client, those of the service's router (every client's).

    @property
    def trading_state(self) -> TradingState:
        """``active``, ``reducing`` (only creates that cannot add exposure pass) or
        ``halted``."""

    def set_trading_state(self, state: TradingState) -> None:
        """Change the trading state; the intents submitted after this are taken in it."""

    async def kill(
        self, reason: str, *, subaccount: int | None = None, timeout_s: float = 30.0
    ) -> KillReport:
        """Halt, pull every resting order of the account (or of ``subaccount``), confirm
        through REST; the report. Creates stay refused until ``resume``."""

    async def resume(self, state: TradingState = "active") -> None:
        """Reconcile the orders followed with the exchange, then take creates in ``state``."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
