"""What an ``OrderRouter`` holds, and what it shows of it: its parts, its state, and the
read-only views a bot or the service polls. What it does (start, intake, settle, close) is in
:mod:`kalshi_router.router`."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence

from aiolimiter import AsyncLimiter

from kalshi_router.accumulator import Accumulator
from kalshi_router.budget import BudgetView, WriteBudget
from kalshi_router.config import BudgetConfig, LimitsConfig, RouterConfig
from kalshi_router.dispatcher import Dispatcher
from kalshi_router.errors import ConfigError, RouterClosed, RouterCrashed
from kalshi_router.intake import IntentFuture, not_started
from kalshi_router.journal import IntentJournal
from kalshi_router.order_groups import OrderGroups
from kalshi_router.orders.tracker import OrderTracker
from kalshi_router.orders.updates import Orders
from kalshi_router.pending import Kind, Pending
from kalshi_router.risk import Exposure, RiskConfig, RiskGate, TradingState
from kalshi_router.risk.watchdog import Watchdog
from kalshi_router.stats import Observers, RouterObserver, RouterStats, StatsRecorder
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.presign import SignatureFigures

log = logging.getLogger("kalshi_router.router")


class RouterBase:
    """The state of one router; see :class:`kalshi_router.router.OrderRouter`."""

    def __init__(
        self,
        client: ExchangeClient,
        router: RouterConfig | None = None,
        limits: LimitsConfig | None = None,
        *,
        rng: random.Random | None = None,
        observers: Sequence[RouterObserver] = (),
        journal: IntentJournal | None = None,
        tracker: OrderTracker | None = None,
        risk: RiskConfig | None = None,
        budget: BudgetConfig | None = None,
        key_id: str = "",
        owns_transport: bool = False,
    ) -> None:
        self._client = client
        self._config = router or RouterConfig()
        self._limits = limits or LimitsConfig()
        self._rng = rng or random.Random()  # noqa: S311 - retry jitter, not a secret
        self._owns_transport = owns_transport
        self._journal = journal
        self._tracker = tracker
        self._budget_config = budget or BudgetConfig()
        # Names the account's shared budget when [budget] namespace does not.
        self._key_id = key_id
        risk = risk or RiskConfig()
        if tracker is None and (needs := risk.exposure_limits()):
            raise ConfigError(
                f"{needs[0]}: needs [orders] track = true (positions and open orders come "
                "from the order tracker)"
            )
        self._gate = RiskGate(risk, Exposure(), time.monotonic)
        if tracker is not None:
            tracker.listen(self._gate.exposure.on_update)
            tracker.listen_positions(self._gate.exposure.set_position)
        self._watchdog: Watchdog | None = None
        self._halted_why = "set by the caller"
        self._reads: AsyncLimiter | None = None
        # The loop and its clock once started (nothing is pending before that).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._now = time.monotonic
        self._acc = Accumulator(self._config.queue_size)
        self._stats = StatsRecorder()
        # Alone, the recorder needs no fan-out: one call less per report (one per intent).
        self._observers: RouterObserver = (
            Observers([self._stats, *observers]) if observers else self._stats
        )
        self._live: dict[tuple[Kind, str], Pending] = {}
        self._dispatcher: Dispatcher | None = None
        self._budget: WriteBudget | None = None
        self._groups: OrderGroups | None = None
        self._runner: asyncio.Task[None] | None = None
        self._accepting = False
        self._closed = False
        self._crashed: BaseException | None = None
        # Bound once: every intent's future holds this one object.
        self._give_up = self._give_up_waiting

    def _give_up_waiting(self, key: tuple[Kind, str], future: IntentFuture) -> None:
        """``future``'s caller cancelled it: settle its intent now if it still waits."""
        pending = self._live.get(key)
        if pending is not None and pending.future is future and self._dispatcher is not None:
            self._dispatcher.give_up_waiting(pending)

    @property
    def budget(self) -> BudgetView:
        """The write budget as sized at start (capacity, refill rate, costs per order)."""
        if self._budget is None:
            raise not_started()
        return self._budget

    @property
    def trading_state(self) -> TradingState:
        """``active``, ``reducing`` (only creates that reduce exposure pass) or ``halted``."""
        return self._gate.state

    def set_trading_state(self, state: TradingState) -> None:
        """Change the trading state now; ``halted`` refuses every create and amend (what is
        queued stays queued: ``kill`` also closes it and pulls what rests)."""
        self._gate.set_state(state)
        if self._dispatcher is not None:
            halted = f"trading halted ({self._halted_why})" if state == "halted" else None
            self._dispatcher.creates_halted = halted
        log.warning("trading state: %s", state)

    @property
    def order_groups(self) -> OrderGroups:
        """Kalshi's order groups (its own fill limiter) and cancel-all, paid from the write
        budget."""
        if self._groups is None:
            raise not_started()
        return self._groups

    @property
    def orders(self) -> Orders:
        """Every order after acceptance: handles, updates, fills, open orders, positions."""
        if self._tracker is None:
            raise ConfigError("orders.track: off; set [orders] track = true to follow orders")
        return self._tracker.watch

    @property
    def crashed(self) -> BaseException | None:
        """Why the dispatcher died, if it did (the router then takes nothing new)."""
        return self._crashed

    @property
    def queue_depth(self) -> int:
        """Intents waiting to be sent, retries in backoff included. Constant time: poll this
        rather than ``stats()``, which sorts every latency sample."""
        return len(self._acc)

    def queued_by_client(self) -> dict[str | None, int]:
        """``queue_depth`` per client; linear in the queue's length, unlike that."""
        return self._acc.queued()

    @property
    def deadline_s(self) -> float:
        """The deadline of an intent submitted without one (``router.deadline_s``)."""
        return self._config.deadline_s

    @property
    def batch_limits(self) -> dict[str, int]:
        """Largest batch per lane, as sized from the budget at start."""
        return self._running().batch_limits

    def _running(self) -> Dispatcher:
        if self._dispatcher is None:
            raise not_started()
        return self._dispatcher

    def _check_open(self) -> None:
        if self._crashed is not None:
            raise RouterCrashed(f"dispatcher crashed: {self._crashed!r}")
        if not self._accepting:
            raise RouterClosed(
                "the router is closed" if self._closed else "the router is not started"
            )

    @property
    def in_flight(self) -> int:
        """Intents in requests that are on the wire now."""
        return self._dispatcher.in_flight if self._dispatcher else 0

    @property
    def signatures(self) -> SignatureFigures | None:
        """Batch requests sent with a signature made ahead vs signed inline (``[exchange]
        presign``); None when off. Cheap: the service's metrics read it at each scrape."""
        transport = self._client.transport
        return transport.signatures if isinstance(transport, HttpTransport) else None

    def stats(self) -> RouterStats:
        spent = self._budget.spent if self._budget else 0
        orders = self._tracker.figures() if self._tracker is not None else None
        return self._stats.snapshot(
            tokens_spent=spent,
            queue_depth=len(self._acc),
            in_flight=self.in_flight,
            orders=orders,
            risk=self._gate.figures(),
            shared_budget=self._budget.figures() if self._budget else None,
            signatures=self.signatures,
        )
