"""The bot's side of the order tracker (``router.orders``): the updates pushed into it, read
as handles, streams, open orders and positions.

A :class:`Watch` has no task of its own: whoever learns of a change pushes the update (the
tracker in an embedded router, the service's client with updates forwarded to it), and readers
wait on futures and streams. Use it from the event loop's thread.

It is defensive about what is pushed, since forwarded updates may come twice (a resumed
connection replays some): a fill counts once by ``trade_id``, and an update that repeats the
latest one, or would move the order back (a state the table does not reach from the latest, or
lower counts), is dropped. Positions add up the distinct fills only, from a baseline per ticker
when the tracker seeds one (:meth:`Watch.seed`; the rule that counts each fill once is in
:mod:`kalshi_router.orders.baseline`).

Streams are bounded: every reader has its own buffer of ``stream_bound`` updates (default
10,000); one that falls that far behind has its stream ended with
:class:`~kalshi_router.errors.UpdatesOverflow` rather than slowing :meth:`Watch.push` or growing
memory. Memory is otherwise bounded by the open orders: the ``keep_final`` orders (default
10,000) that became final last are kept, older ones forgotten (their ids remembered, the last
``keep_forgotten``, so a late duplicate of theirs is dropped instead of counted again).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from kalshi_router.errors import KalshiRouterError, RouterClosed
from kalshi_router.orders.baseline import PositionSeed
from kalshi_router.orders.state import CORRECTION_MOVES, TRANSITIONS
from kalshi_router.orders.stream import DEFAULT_BOUND, UpdateStream
from kalshi_router.orders.updates import FillEvent, OrderUpdate, Position

__all__ = ["Handle", "Watch"]


class _Entry:
    """One order: its latest update, and who waits on it."""

    __slots__ = ("keys", "latest", "streams", "trade_ids", "waiters")

    def __init__(self, latest: OrderUpdate) -> None:
        self.latest = latest
        self.keys: list[str] = []
        self.trade_ids: set[str] = set()
        self.waiters: list[asyncio.Future[OrderUpdate]] = []
        self.streams: weakref.WeakSet[UpdateStream] = weakref.WeakSet()


def _supersedes(new: OrderUpdate, old: OrderUpdate) -> bool:
    """Whether ``new`` is news after ``old``, rather than a repeat or an older update."""
    if new == old:
        return False
    if new.state != old.state:
        return new.state in TRANSITIONS[old.state] or (old.state, new.state) in CORRECTION_MOVES
    remaining_grew = (
        old.remaining is not None and new.remaining is not None and new.remaining > old.remaining
    )
    return new.filled >= old.filled and new.fees >= old.fees and not remaining_grew


def _moved(was: Position, fill: FillEvent) -> Position:
    """``was`` after ``fill``."""
    sign = Decimal(1) if fill.book_side == "bid" else Decimal(-1)
    return Position(
        ticker=fill.ticker,
        position=was.position + sign * fill.count,
        cost=was.cost + sign * fill.yes_price * fill.count,
        fees=was.fees + fill.fee,
        volume=was.volume + fill.count,
    )


class Handle:
    """One order as the :class:`Watch` follows it (an ``OrderHandle``)."""

    __slots__ = ("_entry", "_watch")

    def __init__(self, watch: Watch, entry: _Entry) -> None:
        self._watch = watch
        self._entry = entry

    @property
    def latest(self) -> OrderUpdate:
        return self._entry.latest

    async def final(self) -> OrderUpdate:
        """The order's first final update: at once if it is final already. Raises
        :class:`RouterClosed` (or the error the watch was closed with) if the watch closes
        first."""
        return await self._watch._wait_final(self._entry)

    def updates(self) -> UpdateStream:
        """This order's updates from now on, ending after its final one (at once if it is
        final already, or the watch is closed)."""
        return self._watch._order_stream(self._entry)


class Watch:
    """The orders a bot placed, from the updates pushed into it (implements ``Orders``)."""

    def __init__(
        self,
        *,
        stream_bound: int = DEFAULT_BOUND,
        keep_final: int = 10_000,
        keep_forgotten: int = 100_000,
        seeded: bool = False,
    ) -> None:
        """``seeded``: :meth:`seed` will be called once; until then the fills counted are kept
        so that the seed can tell which of them it holds already."""
        if stream_bound < 1 or keep_final < 0 or keep_forgotten < 0:
            raise ValueError("stream_bound must be >= 1, keep_final and keep_forgotten >= 0")
        self._bound = stream_bound
        self._keep_final = keep_final
        self._keep_forgotten = keep_forgotten
        self._index: dict[str, _Entry] = {}
        self._open: dict[_Entry, None] = {}
        self._finals: OrderedDict[_Entry, None] = OrderedDict()
        self._forgotten: OrderedDict[str, None] = OrderedDict()
        self._positions: dict[str, Position] = {}
        self._seeds: dict[str, PositionSeed] = {}
        self._before_seed: list[FillEvent] | None = [] if seeded else None
        self._streams: weakref.WeakSet[UpdateStream] = weakref.WeakSet()
        self._closed: tuple[str, Callable[[str], KalshiRouterError]] | None = None

    # --- the writer's side ---

    def push(self, update: OrderUpdate) -> None:
        """Take one update: keep it as its order's latest, count its fill, and hand it to the
        readers. Never blocks; ignored once the watch is closed."""
        if self._closed is not None:
            return
        keys = [key for key in (update.order_id, update.client_order_id) if key]
        if not keys or any(key in self._forgotten for key in keys):
            return
        entry = self._entry_of(update)
        fill = update.fill
        if entry is not None and fill is not None and fill.trade_id in entry.trade_ids:
            return
        if entry is None:
            entry = _Entry(update)
            newer = True
        else:
            newer = _supersedes(update, entry.latest)
            if not newer and fill is None:
                return
        for key in keys:
            if key not in self._index:
                self._index[key] = entry
                entry.keys.append(key)
        if fill is not None:
            entry.trade_ids.add(fill.trade_id)
            self._count(fill)
        if newer:
            entry.latest = update
        for stream in list(self._streams):
            stream.offer(update)
        for stream in list(entry.streams):
            stream.offer(update)
        if newer:
            self._file(entry)

    def _entry_of(self, update: OrderUpdate) -> _Entry | None:
        entry = self._index.get(update.order_id or "")
        if entry is None and update.client_order_id:
            entry = self._index.get(update.client_order_id)
            # A client_order_id names one order: never merge two orders with different ids.
            known = None if entry is None else entry.latest.order_id
            if known is not None and update.order_id is not None and known != update.order_id:
                entry = None
        return entry

    def close(
        self,
        reason: str = "the router closed",
        error: Callable[[str], KalshiRouterError] = RouterClosed,
    ) -> None:
        """End every stream (each stops after what it kept) and fail every ``final()`` still
        waiting with ``error`` (its own instance each, naming the order and ``reason``). Later
        pushes are ignored; later waits fail at once."""
        if self._closed is not None:
            return
        self._closed = (reason, error)
        for stream in list(self._streams):
            stream.finish()
        for entry in self._open:
            for stream in list(entry.streams):
                stream.finish()
            for waiter in entry.waiters:
                if not waiter.done():
                    waiter.set_exception(self._closed_error(entry))
            entry.waiters.clear()

    @property
    def closed(self) -> bool:
        return self._closed is not None

    # --- the readers' side ---

    def handle(self, key: str) -> Handle:
        """The order with client_order_id or order id ``key``; ``KeyError`` if none was pushed
        (or it was forgotten)."""
        return Handle(self, self._index[key])

    def updates(self) -> UpdateStream:
        """Every update pushed from now on (fills included), in order; ends at :meth:`close`."""
        stream = UpdateStream("order updates", self._bound)
        if self._closed is not None:
            stream.finish()
        else:
            self._streams.add(stream)
        return stream

    def open_orders(self, ticker: str | None = None) -> list[OrderUpdate]:
        """Orders not in a final state, for one ticker or all."""
        found = (entry.latest for entry in self._open)
        return [update for update in found if ticker is None or update.ticker == ticker]

    def positions(self) -> Mapping[str, Position]:
        """Positions by ticker, from the distinct fills pushed and the seeds (a copy)."""
        return dict(self._positions)

    def get(self, key: str) -> OrderUpdate | None:
        """The latest update of the order with client_order_id or order id ``key``."""
        entry = self._index.get(key)
        return None if entry is None else entry.latest

    def position(self, ticker: str) -> Position | None:
        """The position in ``ticker`` (no copy of the others)."""
        return self._positions.get(ticker)

    # --- the baseline ---

    def seed(self, seeds: Iterable[PositionSeed]) -> list[Position]:
        """Take the positions the account held when the tracker started as each ticker's
        baseline: its position is the seed plus the fills counted with a later time than the
        seed's; from now on a fill at or before that time moves no position (the seed holds
        it). Returns the positions it set. Tickers without a seed keep counting every fill."""
        early: dict[str, list[FillEvent]] = {}
        for fill in self._before_seed or ():
            early.setdefault(fill.ticker, []).append(fill)
        self._before_seed = None
        seeded: list[Position] = []
        for seed in seeds:
            self._seeds[seed.ticker] = seed
            position = Position(
                ticker=seed.ticker, position=seed.position, cost=seed.cost, fees=seed.fees
            )
            for fill in early.get(seed.ticker, ()):
                if not seed.holds(fill.ts_ms):
                    position = _moved(position, fill)
            self._positions[seed.ticker] = position
            seeded.append(position)
        return seeded

    def in_seed(self, fill: FillEvent) -> bool:
        """Whether the seed of ``fill``'s ticker holds it already (so it moves no position)."""
        seed = self._seeds.get(fill.ticker)
        return seed is not None and seed.holds(fill.ts_ms)

    @property
    def readers(self) -> int:
        """Streams being read (an abandoned one goes when it is collected, or overflows)."""
        streams = [*self._streams, *(s for entry in self._open for s in entry.streams)]
        return sum(not stream.ended for stream in streams)

    # --- bookkeeping ---

    def _count(self, fill: FillEvent) -> None:
        if self._before_seed is not None:
            self._before_seed.append(fill)
        elif self.in_seed(fill):
            return
        was = self._positions.get(fill.ticker) or Position(ticker=fill.ticker)
        self._positions[fill.ticker] = _moved(was, fill)

    def _file(self, entry: _Entry) -> None:
        latest = entry.latest
        if not latest.final:
            self._finals.pop(entry, None)
            self._open[entry] = None
            return
        for stream in list(entry.streams):
            stream.finish()
        for waiter in entry.waiters:
            if not waiter.done():
                waiter.set_result(latest)
        entry.waiters.clear()
        if entry in self._finals:
            return  # a correction between final states: it keeps its place
        self._open.pop(entry, None)
        self._finals[entry] = None
        while len(self._finals) > self._keep_final:
            gone, _ = self._finals.popitem(last=False)
            for key in gone.keys:
                del self._index[key]
                self._forgotten[key] = None
            while len(self._forgotten) > self._keep_forgotten:
                self._forgotten.popitem(last=False)

    def _closed_error(self, entry: _Entry) -> KalshiRouterError:
        assert self._closed is not None
        reason, error = self._closed
        latest = entry.latest
        name = latest.client_order_id or latest.order_id
        return error(f"order {name!r} was {latest.state}, not final, when {reason}")

    async def _wait_final(self, entry: _Entry) -> OrderUpdate:
        if entry.latest.final:
            return entry.latest
        if self._closed is not None:
            raise self._closed_error(entry)
        waiter: asyncio.Future[OrderUpdate] = asyncio.get_running_loop().create_future()
        entry.waiters.append(waiter)
        try:
            return await waiter
        finally:
            if waiter in entry.waiters:
                entry.waiters.remove(waiter)

    def _order_stream(self, entry: _Entry) -> UpdateStream:
        name = entry.latest.client_order_id or entry.latest.order_id
        stream = UpdateStream(f"updates of order {name!r}", self._bound)
        if entry.latest.final or self._closed is not None:
            stream.finish()
        else:
            entry.streams.add(stream)
        return stream
