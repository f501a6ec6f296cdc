"""``RouterClient.orders``: this bot's own orders after acceptance, as the service forwards
them, behind the same ``Orders`` protocol as the embedded router's ``router.orders``.

A :class:`Watch` fed by the stream's ``order_update`` messages gives handles, update streams,
open orders and ``get``. Every stream the client opens (the first, and each one after a break)
starts with a ``view`` request, before any intent is sent on it:

- the service answers at its count ``seq`` N of this client's updates; it put every update up
  to N on the stream before its answer and every later one after it, so the updates that come
  before the answer are covered by it and ignored, and those after it are applied in order;
- back on the same run of the service soon enough (it keeps the newest 1,000 updates of each
  client), the answer holds exactly the updates the client missed (``missed``): nothing is
  lost, not even an intermediate update;
- otherwise (away longer, or the service restarted) it is a snapshot: the client's open
  orders, the latest update of each order it holds open or placed without seeing the
  outcome, and its positions. A bot then sees each order's newest state, not each update it
  missed (a bot that adds up fills from ``updates()`` itself misses the fills in between;
  ``positions()`` counts them).

Fills are counted once: the service counts each trade once (by ``FillEvent.trade_id``, in the
router's tracker and in its per-client view) and forwards it in one update with its own
``seq``; ``positions()`` is the snapshot's positions (the fills of updates up to its ``seq``)
plus the fills of the updates applied after it, each applied once by ``seq``.

Positions count the fills of the service's current run: after the service restarts, they start
again from what the new run has counted. Orders placed before such a restart are followed again
only if their keys were held open here (the snapshot asks for them and the service then files
them under this client); otherwise they stay as last seen. An unnamed client's view is tied to
its stream's connection: name the bot (``RouterClient(name=...)``) for a view that survives a
reconnect.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence

import msgspec

from kalshi_router.errors import ServiceError
from kalshi_router.orders.updates import FillEvent, OrderHandle, OrderUpdate, Position
from kalshi_router.orders.watch import Watch
from kalshi_router.service.client.link import Link
from kalshi_router.service.protocol import (
    StreamError,
    StreamFrame,
    StreamOrderUpdate,
    StreamView,
    ViewRequest,
)

__all__ = ["RemoteOrders"]

log = logging.getLogger("kalshi_router.client")
_encode = msgspec.json.Encoder().encode


class RemoteOrders:
    """The client's ``Orders``; see the module docstring. The connection feeds it."""

    def __init__(self) -> None:
        self._watch = Watch()
        self._run: str | None = None
        self._seq = 0
        """The last of this client's updates applied (``StreamOrderUpdate.seq``)."""
        self._base: dict[str, Position] = {}
        """Positions as of the last snapshot; ``_since`` adds the fills after it."""
        self._since: dict[str, Position] = {}
        self._syncing = True
        self._asked: tuple[str, asyncio.Future[StreamView]] | None = None
        self._ids = itertools.count(1)

    # Orders.

    def handle(self, key: str) -> OrderHandle:
        return self._watch.handle(key)

    def updates(self) -> AsyncIterator[OrderUpdate]:
        return self._watch.updates()

    def open_orders(self, ticker: str | None = None) -> Sequence[OrderUpdate]:
        return self._watch.open_orders(ticker)

    def positions(self) -> Mapping[str, Position]:
        merged = dict(self._base)
        for ticker, since in self._since.items():
            merged[ticker] = _plus(merged.get(ticker), since)
        return merged

    def get(self, key: str) -> OrderUpdate | None:
        return self._watch.get(key)

    # The connection's side.

    async def sync(self, link: Link, placed: Iterable[str] = ()) -> None:
        """Load this client's view on ``link``, a stream just opened (``placed``: keys of
        creates sent before and not answered). ``ServiceError`` if the service refuses."""
        self._syncing = True
        request_id = f"view-{next(self._ids)}"
        answer: asyncio.Future[StreamView] = asyncio.get_running_loop().create_future()
        self._asked = (request_id, answer)
        held = [update.client_order_id or update.order_id for update in self.open_orders()]
        keys = list(dict.fromkeys(key for key in (*held, *placed) if key is not None))
        item = ViewRequest(keys=keys, run=self._run, since=self._seq)
        link.send(None, _encode({"type": "view", "id": request_id, "item": item}).decode())
        try:
            view = await answer
        finally:
            self._asked = None
        self._take(view)

    def on_reply(self, reply: StreamFrame) -> bool:
        """Take ``reply`` if it is for the orders (an update, or the answer to a view)."""
        if isinstance(reply, StreamOrderUpdate):
            if not self._syncing:  # else the view being loaded covers it
                self._apply(reply)
            return True
        if not isinstance(reply, StreamView | StreamError):
            return False
        if self._asked is None or reply.id != self._asked[0]:
            return isinstance(reply, StreamView)  # an error for an intent is not ours
        answer = self._asked[1]
        if answer.done():
            pass
        elif isinstance(reply, StreamView):
            answer.set_result(reply)
        else:
            answer.set_exception(ServiceError(f"{reply.field}: {reply.message}"))
        return True

    def close(self) -> None:
        """The client closed: the update streams end."""
        if self._asked is not None and not self._asked[1].done():
            self._asked[1].cancel()
        self._watch.close()

    def _take(self, view: StreamView) -> None:
        if view.missed is not None and view.run == self._run:
            for message in view.missed:
                self._apply(message)
        else:
            if self._run is not None and view.run != self._run:
                log.info("the service restarted (run %s): orders view from a snapshot", view.run)
            self._run = view.run
            self._base = dict(view.positions)
            self._since = {}
            for update in (*view.latest, *view.open):
                key = update.client_order_id or update.order_id
                if key is None or self._watch.get(key) != update:
                    self._watch.push(update)
        self._seq = view.seq
        self._syncing = False

    def _apply(self, message: StreamOrderUpdate) -> None:
        if message.seq <= self._seq:
            return  # covered by the view already
        self._seq = message.seq
        fill = message.update.fill
        if fill is not None:
            self._since[fill.ticker] = _with_fill(self._since.get(fill.ticker), fill)
        self._watch.push(message.update)


def _with_fill(position: Position | None, fill: FillEvent) -> Position:
    """``position`` after ``fill``: a bid fill buys YES contracts, an ask fill sells them."""
    was = position or Position(ticker=fill.ticker)
    signed = fill.count if fill.book_side == "bid" else -fill.count
    return Position(
        ticker=fill.ticker,
        position=was.position + signed,
        cost=was.cost + signed * fill.yes_price,
        fees=was.fees + fill.fee,
        volume=was.volume + fill.count,
    )


def _plus(first: Position | None, second: Position) -> Position:
    if first is None:
        return second
    return Position(
        ticker=second.ticker,
        position=first.position + second.position,
        cost=first.cost + second.cost,
        fees=first.fees + second.fees,
        volume=first.volume + second.volume,
    )
