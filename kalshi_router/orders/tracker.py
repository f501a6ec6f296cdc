"""``OrderTracker``: the router's memory of what is at the exchange, after acceptance.

The WebSocket (:class:`OrderFeed`) is fast but can drop, and its order channels carry no
sequence numbers, so nothing shows what it missed. REST reconciliation makes the view complete:
after every reconnect and at least every ``reconcile_every_s`` the tracker lists the account's
resting orders, asks for each order it holds open that is no longer resting, reads the fills
since the last sweep, and looks up the creates that settled ``Unknown``. A frame lost is thus
found within one sweep; the exchange's REST answer is the truth where the two disagree.

At start, after the feed is subscribed and before the first sweep, the tracker reads the
positions the account already holds and seeds them (:mod:`kalshi_router.orders.baseline`, where
the rule that counts each fill once is), into :attr:`watch` and to its position listeners.

Every change becomes an :class:`OrderUpdate` pushed into :attr:`watch` (what a bot reads, as
``router.orders``). An ``Unknown`` create is resolved later on the same key: by its
``user_order`` frame, by a REST lookup that finds it, or, once ``landing_grace_s`` has passed
without a trace, as never placed; the proof is the update's ``resolved`` and goes to the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import msgspec
from aiolimiter import AsyncLimiter

from kalshi_router.config import OrdersConfig
from kalshi_router.errors import ExchangeError, TransportError, WireError
from kalshi_router.intent import OrderIntent
from kalshi_router.orders.baseline import PositionSeed, read_seeds
from kalshi_router.orders.feed import OrderFeed, OrderFrame
from kalshi_router.orders.ledger import Ledger
from kalshi_router.orders.updates import OrderUpdate, fill_event, rest_fill_event
from kalshi_router.orders.watch import Watch
from kalshi_router.outcome import Accepted, Closed, OrderOutcome, Outcome, Unknown
from kalshi_router.reconcile import LOOKBACK_S, READ_COST, Reconciler, Sought
from kalshi_router.stats import OrderFigures
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.models import Order
from kalshi_router.wire.orders import accepted_from
from kalshi_router.wire.signer import Signer
from kalshi_router.wire.ws_models import (
    FillFrame,
    MarketPosition,
    MarketPositionFrame,
    OrderGroupUpdate,
    UserOrderFrame,
)

__all__ = ["OrderTracker", "Resolutions", "TrackerStats"]

log = logging.getLogger(__name__)
_PAGE = 1000
_NEVER_PLACED = (
    "resolved: the create never reached the exchange (no order with this client_order_id "
    "{grace:g}s after it was sent)"
)


class Resolutions(Protocol):
    """Where a later proof of an ``Unknown`` intent is recorded (the journal)."""

    def resolve_later(self, kind: str, key: str, outcome: Outcome) -> bool: ...


@dataclass(slots=True)
class TrackerStats:
    frames: int = 0
    """Order frames read from the WebSocket."""
    reconnects: int = 0
    sweeps: int = 0
    sweep_errors: int = 0
    found_by_rest: int = 0
    """Updates only a REST sweep brought: each is a frame the WebSocket lost (or a late one)."""
    resolved: int = 0
    """Unknown creates resolved later."""
    unresolved: int = 0
    """Unknown creates still waiting for a proof."""
    seeded: int = 0
    """Markets whose position the account held at start (read through REST)."""


@dataclass(slots=True)
class _Sought:
    ticker: str
    key: str
    submitted_wall: float
    unknown_wall: float
    """When it settled unknown: no attempt of it was sent later than this."""


class OrderTracker:
    """Follows every order of the account; see the module docstring. ``start(reads)`` connects
    (raising ``CredentialsRefused`` when the handshake is refused); ``aclose()`` stops."""

    def __init__(
        self,
        client: ExchangeClient,
        base_url: str,
        signer: Signer,
        config: OrdersConfig,
        *,
        verify_tls: bool = True,
        journal: Resolutions | None = None,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._config = config
        self._journal = journal
        self._wall = wall
        self.ledger = Ledger(keep_final=config.keep_final)
        self.watch = Watch(seeded=True)
        self.exchange_positions: dict[str, MarketPosition] = {}
        """The newest ``market_position`` frame per ticker, as the exchange reports it."""
        self.order_groups: dict[str, OrderGroupUpdate] = {}
        """The newest ``order_group_updates`` event per order group (``triggered``, ...)."""
        self.stats = TrackerStats()
        self._feed = OrderFeed(
            base_url,
            signer,
            self._on_frame,
            on_reconnect=self._reconnected,
            verify_tls=verify_tls,
            backoff_base_s=config.reconnect_base_s,
            backoff_cap_s=config.reconnect_cap_s,
            rng=rng,
        )
        self._rng = rng or random.Random()  # noqa: S311 - retry jitter, not a secret
        self._sought: dict[str, _Sought] = {}
        self._placed_wall: dict[str, float] = {}
        self._fills_checked = wall()
        self._wake = asyncio.Event()
        self._reads: AsyncLimiter | None = None
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[OrderUpdate], None]] = []
        self._position_listeners: list[Callable[[str, Decimal], None]] = []

    def figures(self) -> OrderFigures:
        """The tracker's counters and the ledger's sizes, for ``router.stats()``."""
        held = self.ledger.stats()
        stats = self.stats
        return OrderFigures(
            orders=held.orders,
            open=held.open,
            fills=held.fills,
            frames=stats.frames,
            reconnects=stats.reconnects,
            sweeps=stats.sweeps,
            sweep_errors=stats.sweep_errors,
            found_by_rest=stats.found_by_rest,
            resolved=stats.resolved,
            unresolved=stats.unresolved,
        )

    async def start(self, reads: AsyncLimiter) -> None:
        """Connect and subscribe, read the positions the account holds (every page), then
        sweep on reconnects and on the timer. Raises what made the positions unreadable
        (:data:`~kalshi_router.orders.baseline.ATTEMPTS` tries a page), the feed closed."""
        self._reads = reads
        self._fills_checked = self._wall()
        await self._feed.start()
        try:
            seeds = await read_seeds(self._client, self._read, self._wall, self._config, self._rng)
        except BaseException:
            await self._feed.aclose()
            raise
        self._seed(seeds)
        self._task = asyncio.create_task(self._sweeper(), name="order-tracker-sweeps")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._feed.aclose()
        self.watch.close()

    # What the router tells it.

    def settled(self, intent: OrderIntent, outcome: Outcome, submitted_wall: float) -> None:
        """A create got its outcome: follow the order it placed, or resolve it later."""
        if isinstance(outcome, Accepted):
            self.placed(intent, outcome)
        elif isinstance(outcome, Unknown):
            self.unknown(intent, outcome, submitted_wall)

    def placed(self, intent: OrderIntent, outcome: Accepted) -> None:
        """A create was accepted: follow its order from now on."""
        self._placed_wall[outcome.order_id] = self._wall()
        self._publish(
            self.ledger.expect(
                order_id=outcome.order_id,
                client_order_id=outcome.client_order_id,
                ticker=intent.ticker,
                book_side=intent.side,
                yes_price=intent.price,
                initial=intent.count,
                filled=outcome.fill_count,
                remaining=outcome.remaining_count,
            )
        )

    def unknown(self, intent: OrderIntent, outcome: Unknown, submitted_wall: float) -> None:
        """A create settled unknown: resolve it later, on the same key."""
        key = intent.client_order_id
        self._sought[key] = _Sought(intent.ticker, key, submitted_wall, self._wall())
        self.stats.unresolved = len(self._sought)
        seen = self.ledger.seen_as_order(key)
        if seen is not None:
            self._resolve(key, accepted_from(seen), [])

    def seen(self, client_order_id: str) -> Order | None:
        """The order the feed has shown for ``client_order_id``: proof that its create landed
        (the router's lookup of an ambiguous create asks here before REST)."""
        return self.ledger.seen_as_order(client_order_id)

    # The WebSocket.

    def _on_frame(self, frame: OrderFrame) -> None:
        self.stats.frames += 1
        if isinstance(frame, UserOrderFrame):
            updates = self.ledger.on_user_order(frame.msg)
            key = frame.msg.client_order_id
            if key in self._sought:
                order = self.ledger.seen_as_order(key)
                if order is not None:
                    self._resolve(key, accepted_from(order), updates)
                    return
            self._publish(updates)
        elif isinstance(frame, FillFrame):
            self._publish(self.ledger.on_fill(fill_event(frame.msg)))
        elif isinstance(frame, MarketPositionFrame):
            self.exchange_positions[frame.msg.market_ticker] = frame.msg
        else:
            self.order_groups[frame.msg.order_group_id] = frame.msg

    def _reconnected(self) -> None:
        self.stats.reconnects += 1
        self._wake.set()

    def listen(self, listener: Callable[[OrderUpdate], None]) -> None:
        """Call ``listener`` with every update, synchronously, before a bot sees it (the risk
        gate's exposure follows the orders this way). It must be cheap and never raise."""
        self._listeners.append(listener)

    def listen_positions(self, listener: Callable[[str, Decimal], None]) -> None:
        """Call ``listener(ticker, position)`` when a position is set otherwise than by a fill:
        each market seeded at start (with the later fills counted since), and after an update
        whose fill the seed holds (an update listener counting every fill, as the risk gate's
        exposure does, just counted it once too often). Cheap, synchronous, never raising."""
        self._position_listeners.append(listener)

    def _seed(self, seeds: list[PositionSeed]) -> None:
        self.stats.seeded = len(seeds)
        for position in self.watch.seed(seeds):
            for listener in self._position_listeners:
                listener(position.ticker, position.position)

    def _publish(self, updates: Iterable[OrderUpdate]) -> None:
        for update in updates:
            for listener in self._listeners:
                listener(update)
            self.watch.push(update)
            fill = update.fill
            if fill is not None and self._position_listeners and self.watch.in_seed(fill):
                held = self.watch.position(fill.ticker)
                if held is not None:
                    for tell in self._position_listeners:
                        tell(fill.ticker, held.position)

    def _resolve(self, key: str, outcome: OrderOutcome, updates: list[OrderUpdate]) -> None:
        """Deliver the proof for the unknown create ``key`` with the first update it caused
        (or with the order's latest view when it caused none)."""
        sought = self._sought.pop(key)
        self.stats.unresolved = len(self._sought)
        self.stats.resolved += 1
        if self._journal is not None:
            self._journal.resolve_later("create", key, outcome)
        if isinstance(outcome, Accepted):
            self._placed_wall.setdefault(outcome.order_id, sought.unknown_wall)
        first = updates[0] if updates else self.ledger.get(key)
        if first is not None and not updates:
            # The order's latest view, sent again for its proof: the fill it carried (if any)
            # was delivered already, and a bot counts each fill once.
            first = msgspec.structs.replace(first, fill=None)
        if first is None:
            first = OrderUpdate(
                order_id=None,
                client_order_id=key,
                ticker=sought.ticker,
                state="reconciled_absent",
                source="rest",
                reason=getattr(outcome, "reason", None),
            )
        log.info("unknown create %s resolved: %s", key, type(outcome).__name__.lower())
        self._publish([msgspec.structs.replace(first, resolved=outcome), *updates[1:]])

    # REST reconciliation.

    async def _sweeper(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._config.reconcile_every_s)
            self._wake.clear()
            try:
                await self.sweep()
            except (WireError, ExchangeError, TransportError) as exc:
                # The next sweep tries again; what this one missed is still missing then.
                self.stats.sweep_errors += 1
                log.warning("order reconciliation failed, will retry: %s", exc)

    async def sweep(self) -> None:
        """One reconciliation through REST (the timer and every reconnect call it)."""
        self.stats.sweeps += 1
        await self._sweep_orders()
        await self._sweep_fills()
        await self._sweep_unknowns()

    async def _read(self) -> None:
        assert self._reads is not None, "start() first"
        await self._reads.acquire(READ_COST)

    def _from_rest(self, updates: list[OrderUpdate]) -> None:
        self.stats.found_by_rest += len(updates)
        self._publish(updates)

    async def _sweep_orders(self) -> None:
        resting: set[str] = set()
        cursor: str | None = None
        while True:
            await self._read()
            page = await self._client.get_orders(status="resting", cursor=cursor, limit=_PAGE)
            for order in page.orders:
                resting.add(order.order_id)
                self._from_rest(self.ledger.on_rest_order(order))
            cursor = page.cursor
            if not cursor or not page.orders:
                break
        now = self._wall()
        for update in self.ledger.open_orders():
            order_id = update.order_id
            if order_id is None or order_id in resting:
                continue
            current = self.ledger.get(order_id)
            if current is None or current.final:
                continue  # a frame closed it while this sweep ran: nothing to ask
            await self._read()
            found = await self._client.get_order(order_id)
            if found is not None:
                self._from_rest(self.ledger.on_rest_order(found))
            elif now - self._placed_wall.get(order_id, 0.0) >= self._config.landing_grace_s:
                why = "not at the exchange (REST) past the landing grace"
                self._from_rest(self.ledger.absent(order_id, why))
        for order_id in [o for o in self._placed_wall if self.ledger.get(o) is None]:
            del self._placed_wall[order_id]

    async def _sweep_fills(self) -> None:
        # Kalshi's min_ts is in seconds and our clock may lead the exchange's: look back.
        started = self._wall()
        since = int(self._fills_checked) - LOOKBACK_S
        cursor: str | None = None
        while True:
            await self._read()
            page = await self._client.get_fills(min_ts=since, cursor=cursor, limit=_PAGE)
            for fill in page.fills:
                event = rest_fill_event(fill, int(started * 1000))
                self._from_rest(self.ledger.on_fill(event, source="rest"))
            cursor = page.cursor
            if not cursor or not page.fills:
                break
        self._fills_checked = started

    async def _sweep_unknowns(self) -> None:
        if not self._sought:
            return
        assert self._reads is not None
        probes = [Sought(s.ticker, s.key, s.submitted_wall) for s in self._sought.values()]
        found = await Reconciler(self._client, self._reads).find(probes)
        now = self._wall()
        for key, sought in list(self._sought.items()):
            order = found.get(key)
            if order is not None:
                self._resolve(key, accepted_from(order), self.ledger.on_rest_order(order))
            elif now - sought.unknown_wall >= self._config.landing_grace_s:
                why = _NEVER_PLACED.format(grace=self._config.landing_grace_s)
                self._resolve(key, Closed(reason=why, client_order_id=key), [])
