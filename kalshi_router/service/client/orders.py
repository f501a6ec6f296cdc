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

Fills are counted once, by ``FillEvent.trade_id``: the router's tracker counts each trade once
and the service forwards it once, in one update with its own ``seq``; the client applies each
``seq`` once, and its Watch drops a trade it has counted already. ``positions()`` is the last
snapshot's positions (the fills up to its ``seq``) plus what the Watch has counted since.

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
from kalshi_router.orders.updates import OrderHandle, OrderUpdate, Position
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
        """Positions as of the last snapshot, and what the Watch had counted then: the fills
        counted since are the Watch's positions less ``_counted``."""
        self._counted: dict[str, Position] = {}
        self._syncing = True
        """Between streams, and on one until its view is taken: updates are ignored."""
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
        for ticker, now in self._watch.positions().items():
            before = self._counted.get(ticker)
            if now != before:
                since = now if before is None else _add(now, before, -1)
                merged[ticker] = since if ticker not in merged else _add(merged[ticker], since)
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

    def dropped(self) -> None:
        """The stream broke: what the next one carries before its view is covered by it."""
        self._syncing = True

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
            for update in (*view.latest, *view.open):
                # The Watch drops what it holds already (the same update, or an older one).
                self._watch.push(update)
            # Any fill those carried is in the snapshot's positions too: counted from here.
            self._base = dict(view.positions)
            self._counted = dict(self._watch.positions())
        self._seq = view.seq
        self._syncing = False

    def _apply(self, message: StreamOrderUpdate) -> None:
        if message.seq <= self._seq:
            return  # covered by the view already
        self._seq = message.seq
        self._watch.push(message.update)


def _add(first: Position, second: Position, sign: int = 1) -> Position:
    return Position(
        ticker=first.ticker,
        position=first.position + sign * second.position,
        cost=first.cost + sign * second.cost,
        fees=first.fees + sign * second.fees,
        volume=first.volume + sign * second.volume,
    )
