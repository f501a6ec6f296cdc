"""Each bot's own orders after acceptance: the service's router follows every order of the
account (``router.orders``); this hands each update to the client that placed the order, and
keeps that client's view (its open orders, its positions) to serve.

Who placed what: ``placed`` files each create's client_order_id under the client that sent it
(``admit``); the first update that names the order's id files that too (an amend may give the
order a new client_order_id: the order id keeps it found). An update no client placed (an order
of another process on the account, or one placed before this run) goes to no client.

Per client: a :class:`Watch` fed with its updates only (its open orders, its positions from its
fills, each counted once by ``trade_id``), a sequence number, the newest ``REPLAY_KEPT`` updates
(so a client back on a new stream soon is sent exactly what it missed), and the outboxes of its
streams opened with ``?orders=1``. A named client's view outlives its streams (it reconnects
under its name); an unnamed client's key is its connection, so its view ends with its stream
and its orders are followed only while that stream is open.

Memory: an order is filed under its client while it is open; once final, among the newest
``FINAL_KEPT`` final ones (a late fill after a cancel still finds its client).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from kalshi_router.client_names import is_named
from kalshi_router.errors import UpdatesOverflow
from kalshi_router.orders.updates import Orders, OrderUpdate
from kalshi_router.orders.watch import Watch
from kalshi_router.outcome import Accepted, Unknown
from kalshi_router.service.protocol import (
    MessageId,
    OpenOrdersBody,
    PositionsBody,
    StreamOrderUpdate,
    StreamView,
    ViewRequest,
)

__all__ = ["FINAL_KEPT", "ORDERS_OFF", "REPLAY_KEPT", "OrderForwarding"]

log = logging.getLogger("kalshi_router.service")
REPLAY_KEPT = 1000
"""Updates kept per client to resend to a client that comes back (beyond: a snapshot)."""
FINAL_KEPT = 10_000
ORDERS_OFF = (
    "orders.track is off at this service: it does not follow orders after acceptance; "
    "set [orders] track = true in its config"
)


class Sink(Protocol):
    """A stream's outbox, as far as forwarding goes."""

    def put_nowait(self, item: StreamOrderUpdate, /) -> None: ...


@dataclass(eq=False, slots=True)
class _Client:
    watch: Watch = field(default_factory=Watch)
    seq: int = 0
    recent: deque[StreamOrderUpdate] = field(default_factory=lambda: deque(maxlen=REPLAY_KEPT))
    sinks: set[Sink] = field(default_factory=set)


class OrderForwarding:
    """See the module docstring. ``start()`` runs the one task that reads ``source``;
    ``aclose()`` stops it; ``finished()`` waits for it to end by itself (the source closed)."""

    def __init__(self, source: Orders, run: str) -> None:
        self._source = source
        self._run = run
        self._clients: dict[str, _Client] = {}
        self._owner: dict[str, str] = {}
        """client_order_id or order id -> the client key that placed the order."""
        self._final: OrderedDict[str, set[str]] = OrderedDict()
        """The orders filed that are final, oldest first: each one's names."""
        self._task: asyncio.Task[None] | None = None

    # The task.

    def start(self) -> None:
        self._task = asyncio.create_task(self._forward_all(), name="kalshi-router-orders")

    async def finished(self, within_s: float) -> None:
        """Wait up to ``within_s`` for every update to be forwarded, once the router closed."""
        if self._task is not None:
            await asyncio.wait([self._task], timeout=within_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for client in self._clients.values():
            client.watch.close()

    async def _forward_all(self) -> None:
        while True:
            try:
                async for update in self._source.updates():
                    self.forward(update)
            except UpdatesOverflow as exc:
                # Updates were lost here (a burst larger than the stream's bound in one turn
                # of the loop): each order filed here is brought up to date, but a fill in
                # what was lost is not in its client's positions.
                log.error("forwarding order updates: %s; catching up from the router", exc)
                self._catch_up()
                continue
            log.debug("the router's order updates ended")
            return

    def _catch_up(self) -> None:
        for key, owner in list(self._owner.items()):
            client = self._clients.get(owner)
            latest = self._source.get(key)
            if client is None or latest is None:
                continue
            stripped = msgspec.structs.replace(latest, fill=None)
            if client.watch.get(key) not in (latest, stripped):
                self.forward(stripped)

    # Who placed what.

    def placed(self, client: str, client_order_id: str, future: asyncio.Future[Any]) -> None:
        """``client`` submitted a create with ``client_order_id`` (``future``: its outcome)."""
        if not is_named(client) and client not in self._clients:
            return  # an unnamed client with no orders stream: nowhere to send, nothing to keep
        self._clients.setdefault(client, _Client())
        self._owner[client_order_id] = client

        def settled(done: asyncio.Future[Any]) -> None:
            # A create that placed nothing (rejected, expired, closed) has no updates coming;
            # an unknown one is resolved later by an update on the same key.
            failed = done.cancelled() or done.exception() is not None
            if failed or not isinstance(done.result(), Accepted | Unknown):
                self._forget((client_order_id,))

        future.add_done_callback(settled)

    def forward(self, update: OrderUpdate) -> None:
        """One update of the router's: to its client's view and streams, if it has one."""
        keys = (update.client_order_id, update.order_id)
        owner = next((self._owner[key] for key in keys if key in self._owner), None)
        if owner is None:
            return
        client = self._clients.get(owner)
        if client is None:  # an unnamed client whose stream has closed
            self._forget(keys)
            return
        names = {key for key in keys if key is not None}
        for key in names:
            self._owner[key] = owner
        if update.final:
            first = update.order_id or update.client_order_id
            assert first is not None  # it was found by one of them
            self._final[first] = self._final.pop(first, set()) | names
            while len(self._final) > FINAL_KEPT:
                self._forget(self._final.popitem(last=False)[1])
        client.seq += 1
        message = StreamOrderUpdate(client.seq, update)
        client.watch.push(update)
        client.recent.append(message)
        for sink in client.sinks:
            sink.put_nowait(message)

    def _forget(self, keys: Iterable[str | None]) -> None:
        for key in keys:
            if key is not None:
                self._owner.pop(key, None)

    # Streams.

    def attach(self, client: str, sink: Sink) -> None:
        """A stream of ``client``'s opened with ``?orders=1``: its updates go there too."""
        self._clients.setdefault(client, _Client()).sinks.add(sink)

    def detach(self, client: str, sink: Sink) -> None:
        found = self._clients.get(client)
        if found is None:
            return
        found.sinks.discard(sink)
        if not found.sinks and not is_named(client):
            # Nobody can come back under a connection's key.
            del self._clients[client]
            found.watch.close()

    # Reads, each as of one seq: no update is forwarded while one is made.

    def view(self, client: str, request_id: MessageId, request: ViewRequest) -> StreamView:
        """What a client asks for when its stream opens: the updates it missed since
        ``request.since``, when all of them are still held; else a snapshot."""
        found = self._clients.get(client)
        if found is None:
            return StreamView(id=request_id, run=self._run, seq=0)
        if request.run == self._run and request.since <= found.seq:
            missed = [message for message in found.recent if message.seq > request.since]
            if len(missed) == found.seq - request.since:
                return StreamView(id=request_id, run=self._run, seq=found.seq, missed=missed)
        latest = self._latest(client, found, request.keys)
        return StreamView(
            id=request_id,
            run=self._run,
            seq=found.seq,
            open=list(found.watch.open_orders()),
            latest=latest,
            positions=dict(found.watch.positions()),
        )

    def _latest(self, key: str, client: _Client, keys: list[str]) -> list[OrderUpdate]:
        """The newest update of each of ``keys`` the client's view (or, for an order nobody
        here placed, such as one placed before a restart, the router's) knows. Such an order
        is filed under this client from now on: it held it, so it placed it."""
        latest: dict[tuple[str | None, str | None], OrderUpdate] = {}
        for name in keys:
            update = client.watch.get(name)
            if update is None and self._owner.get(name, key) == key:
                found = self._source.get(name)
                if found is not None:
                    # Its fill (if any) was counted before this client was known: the
                    # positions count the fills forwarded to it, nothing else.
                    update = msgspec.structs.replace(found, fill=None)
                    self._owner[name] = key
                    for other in (update.client_order_id, update.order_id):
                        if other is not None:
                            self._owner.setdefault(other, key)
                    client.watch.push(update)
            if update is not None:
                latest[update.client_order_id, update.order_id] = update
        return list(latest.values())

    def open_orders(self, client: str, ticker: str | None) -> OpenOrdersBody:
        found = self._clients.get(client)
        if found is None:
            return OpenOrdersBody(run=self._run, seq=0, orders=[])
        orders = list(found.watch.open_orders(ticker))
        return OpenOrdersBody(run=self._run, seq=found.seq, orders=orders)

    def positions(self, client: str) -> PositionsBody:
        found = self._clients.get(client)
        if found is None:
            return PositionsBody(run=self._run, seq=0, positions={})
        return PositionsBody(run=self._run, seq=found.seq, positions=dict(found.watch.positions()))
