"""``RouterClient``'s connection to the service: the stream, kept open.

When the stream breaks, a supervisor task opens a new one, with capped exponential backoff and
full jitter, reading the token again each time. Meanwhile new intents wait (``Holding.queued``)
until their deadline. Once a stream is open again, what waited is sent with what is left of its
deadline, and what was sent on the broken stream without an answer is looked up at the service
by key until each has its outcome (``client_resume``). If the service stays unreachable for
``outage_timeout`` seconds, those are settled ``Unknown``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Callable

import aiohttp
import msgspec

from kalshi_router.answers import Backoff
from kalshi_router.client_names import HEADER
from kalshi_router.errors import IntentError, QueueFull, RouterClosed, ServiceError
from kalshi_router.outcome import Unknown
from kalshi_router.risk.config import TradingState
from kalshi_router.service.client.controls import RemoteControls
from kalshi_router.service.client.desk_calls import DeskCalls, ServiceAt
from kalshi_router.service.client.holding import Held, Holding
from kalshi_router.service.client.link import OPEN_TIMEOUT_S, Link, open_link
from kalshi_router.service.client.orders import RemoteOrders
from kalshi_router.service.client.resume import after_reconnect, look_up
from kalshi_router.service.dead_man import PARAMETER
from kalshi_router.service.protocol import (
    SHUTTING_DOWN,
    StreamError,
    StreamFrame,
    StreamOutcome,
    StreamState,
)

log = logging.getLogger("kalshi_router.client")
_state = msgspec.json.Decoder(StreamState)
Token = str | Callable[[], str | None] | None
# Reconnecting, and asking again about intents the service still has pending.
_RECONNECT_BASE_S, _RECONNECT_CAP_S = 0.05, 2.0
_ASK_AGAIN_BASE_S, _ASK_AGAIN_CAP_S = 0.05, 1.0


class Connection:
    def __init__(
        self,
        url: str,
        holding: Holding,
        *,
        token: Token,
        unix_socket: str | None,
        name: str | None,
        outage_timeout: float,
        cancel_on_disconnect: float | None = None,
        rng: random.Random,
    ) -> None:
        self.url = url
        self.where = unix_socket or url
        self.state: StreamState | None = None
        """The latest the service reported."""
        self.fatal: str | None = None
        """Why the client gave up on the service for good (it spoke another protocol)."""
        self.orders = RemoteOrders()
        self.controls = RemoteControls()
        self._holding = holding
        self._token = token
        # Who this bot is, on every request (see client_names): the service's fairness key.
        self._identity = {} if name is None else {HEADER: name}
        self._headers: dict[str, str] = dict(self._identity)
        self._query = {"state": "1", "orders": "1"}
        if cancel_on_disconnect is not None:
            self._query[PARAMETER] = repr(cancel_on_disconnect)
        self._unix_socket = unix_socket
        self._outage_timeout = outage_timeout
        self._rng = rng
        self._session: aiohttp.ClientSession | None = None
        self._link: Link | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._resumer: asyncio.Task[None] | None = None
        self._outage: asyncio.TimerHandle | None = None

    @property
    def opened(self) -> bool:
        return self._session is not None

    async def open(self) -> None:
        """The first stream: ``ServiceError`` if it cannot be opened."""
        connector = aiohttp.UnixConnector(self._unix_socket) if self._unix_socket else None
        session = aiohttp.ClientSession(connector=connector)
        try:
            link = await self._open(session)
            try:
                # Before the client is in use: its orders are there when connect returns.
                await self._load_orders(link)
            except BaseException:
                await link.stop()
                raise
        except BaseException:
            # Refused, cancelled or timed out: no session may outlive this call.
            await session.close()
            raise
        self._session = session
        self._up(link, synced=True)
        self._supervisor = asyncio.create_task(self._supervise(link), name="kalshi-router-client")
        self._supervisor.add_done_callback(self._supervisor_done)

    def send(self, held: Held, deadline_s: float | None) -> None:
        """On the stream if one is open; else it waits for one (``QueueFull`` if no room)."""
        link = self._link
        if link is not None and link.usable:
            self._write(link, held, deadline_s)
        else:
            self._holding.room_for(1)
            self._holding.hold(held)

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.usable

    def ask_state(
        self, state: TradingState, *, resume: bool, wait: bool
    ) -> asyncio.Future[None] | None:
        """A trading-state change on the stream (``client.controls``)."""
        return self.controls.ask(self._link, state, resume=resume, wait=wait)

    def desk(self) -> DeskCalls:
        """The desk's HTTP calls, with this client's token and name."""
        if self._session is None:
            raise RouterClosed("the client is not connected: use 'async with' or await connect()")
        return DeskCalls(
            self._session, ServiceAt(self.url, self._unix_socket), lambda: self._headers
        )

    async def refresh(self) -> None:
        """Ask for the state now (it is pushed only every 250 ms)."""
        if self._session is None or self._link is None:
            return
        try:
            url = f"{self.url}/v1/state"
            async with self._session.get(url, headers=self._headers) as response:
                if response.status == 200:
                    self._report(_state.decode(await response.read()))
        except (aiohttp.ClientError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.debug("could not refresh the service's state: %s", exc)

    async def close(self) -> None:
        """Stop reconnecting and looking up, close the stream and the session."""
        tasks = [task for task in (self._supervisor, self._resumer) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._outage is not None:
            self._outage.cancel()
        if self._link is not None:
            await self._link.stop()
            self._link = None
        if self._session is not None:
            await self._session.close()
        self.orders.close()
        self.controls.close()

    def _write(self, link: Link, held: Held, deadline_s: float | None) -> None:
        self._holding.sent_on(held, link.run)
        link.send(held, held.frame(deadline_s))

    def _send_late(self, link: Link, held: Held) -> None:
        """Send what waited for a stream with what is left of its deadline."""
        if held.future.done():  # its caller cancelled it
            return
        remaining = held.expires - asyncio.get_running_loop().time()
        if remaining <= 0:
            self._holding.expire(held)
        elif link.usable:
            self._write(link, held, remaining)
        else:
            self._holding.hold(held)

    # Replies.

    def _on_reply(self, reply: StreamFrame) -> None:
        if self.controls.on_reply(reply) or self.orders.on_reply(reply):
            return
        if isinstance(reply, StreamState):
            self._report(reply)
            return
        if not isinstance(reply, StreamOutcome | StreamError):
            return  # an ack (the outcome follows), or a view answered too late to be used
        if not isinstance(reply.id, int):
            # Ours are ints: null means the service could not read a frame of ours at all (a
            # bug in this client); anything else is no request of this client's.
            log.error("reply to no request of ours: %r", reply)
            return
        held = self._holding.sent.pop(reply.id, None)
        if held is None or held.future.done():
            return
        if isinstance(reply, StreamOutcome):
            held.future.set_result(reply.outcome)
            return
        if reply.field == "service" and reply.message == SHUTTING_DOWN:
            # The service is stopping and did not take it: it waits for the next stream.
            if self._link is not None:
                self._link.draining = True
            self._holding.hold(held)
            return
        error: Exception
        if reply.field == "queue":
            error = QueueFull(reply.message)
        elif reply.field in ("router", "service"):
            error = ServiceError(f"{reply.field}: {reply.message}")
        else:
            error = IntentError(reply.field, reply.message)
        held.future.set_exception(error)

    def _report(self, state: StreamState) -> None:
        """Keep the latest state: a GET's answer and the pushed frames may cross."""
        last = self.state
        if last is None or last.run != state.run or state.seq > last.seq:
            self.state = state

    # The stream: opened, watched, opened again.

    async def _open(self, session: aiohttp.ClientSession) -> Link:
        token = self._token
        if callable(token):
            token = await asyncio.to_thread(token)  # it may read a file
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._headers = {**self._identity, **auth}
        return await open_link(
            session, self.url, self._headers, self._on_reply, self.where, self._query
        )

    def _up(self, link: Link, *, synced: bool = False) -> None:
        """A stream is open: load the orders' view on it first (when the service follows
        orders), then send what waited for it and look up what the last one left open."""
        self._link = link
        self._report(link.state)
        self.controls.up(link)  # before the intents that waited: they come after the change
        if self._outage is not None:
            self._outage.cancel()
            self._outage = None
        if link.state.orders and not synced:
            link.ready = False  # intents wait: their outcomes must not overtake the view
            self._resumer = asyncio.create_task(
                self._take_up(link), name="kalshi-router-client-resume"
            )
            return
        for held in self._holding.waiting():
            self._send_late(link, held)
        if self._holding.orphans:
            resume = self._resume(link)
            self._resumer = asyncio.create_task(resume, name="kalshi-router-client-resume")

    async def _load_orders(self, link: Link) -> None:
        if not link.state.orders:
            return
        placed = [held.key for held in self._holding.orphans.values() if held.verb == "submit"]
        try:
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                await self.orders.sync(link, placed)
        except (ServiceError, TimeoutError) as exc:
            # Its updates stay ignored until a view is loaded (on the next stream): a stale
            # view rather than one that counts a fill twice.
            log.error("could not load this client's orders from %s: %r", self.where, exc)

    async def _take_up(self, link: Link) -> None:
        await self._load_orders(link)
        link.ready = True
        for held in self._holding.waiting():
            self._send_late(link, held)
        if self._holding.orphans:
            await self._resume(link)

    async def _supervise(self, link: Link) -> None:
        while True:
            reason, fatal = await link.ended
            await link.stop()
            await self._dropped(link, reason)
            if fatal:
                self._give_up(reason)
                return
            link = await self._reconnect()

    async def _dropped(self, link: Link, reason: str) -> None:
        self._link = None
        self.orders.dropped()
        if self._resumer is not None:
            self._resumer.cancel()
            await asyncio.gather(self._resumer, return_exceptions=True)
            self._resumer = None
        self._holding.dropped({held.id for held in link.unwritten()})
        orphans = len(self._holding.orphans)
        log.warning(
            "lost the stream to %s (%s): reconnecting; %d intents to look up, %d waiting",
            self.where,
            reason,
            orphans,
            len(self._holding.queued),
        )
        if orphans and self._outage is None:
            loop = asyncio.get_running_loop()
            self._outage = loop.call_later(self._outage_timeout, self._outage_over)

    async def _reconnect(self) -> Link:
        """Open a stream, trying until one opens, and take it up."""
        assert self._session is not None
        backoff = Backoff(_RECONNECT_BASE_S, _RECONNECT_CAP_S, self._rng)
        last = ""
        for attempt in itertools.count(1):
            # Jittered from the first attempt: bots that lost a restarted service together do
            # not all come back at the same instant.
            await asyncio.sleep(backoff.delay(attempt))
            try:
                link = await self._open(self._session)
            except ServiceError as exc:
                if str(exc) != last:  # once per kind of failure, not once per attempt
                    log.warning("reconnecting to %s: %s; trying again", self.where, exc)
                    last = str(exc)
                continue
            log.info(
                "reconnected to %s (attempt %d, service run %s)", self.where, attempt, link.run
            )
            # In the step that opened it: no cancellation can come in between and leak it.
            self._up(link)
            return link
        raise AssertionError("unreachable")  # itertools.count never ends

    async def _resume(self, link: Link) -> None:
        """Ask the service about each orphan until none is left. Cancelled if the stream breaks
        again: those not settled by then stay orphans, for the next stream."""
        assert self._session is not None
        holding = self._holding
        backoff = Backoff(_ASK_AGAIN_BASE_S, _ASK_AGAIN_CAP_S, self._rng)
        for attempt in itertools.count(1):
            asked = list(holding.orphans.values())
            try:
                keys = [held.key for held in asked]
                found = await look_up(self._session, self.url, self._headers, keys)
            except ServiceError as exc:
                log.debug("looking up %d intents: %s", len(asked), exc)
                found = {}
            for held in asked:
                if held.id not in holding.orphans or held.key not in found:
                    continue
                trusted = link.state.journal or held.run == link.run
                decision = after_reconnect(
                    held.verb, held.key, found[held.key], absence_proves_unsent=trusted
                )
                if decision == "resend":
                    del holding.orphans[held.id]
                    self._send_late(link, held)
                elif decision != "wait":
                    holding.settle(held, decision)
            if not holding.orphans:
                return
            await asyncio.sleep(backoff.delay(attempt))

    def _outage_over(self) -> None:
        self._outage = None
        reason = (
            f"the service was unreachable for {self._outage_timeout:g} s after this intent was "
            "sent; look it up at the service (GET /v1/orders/{key}) or the exchange"
        )
        for held in list(self._holding.orphans.values()):
            self._holding.settle(held, Unknown(reason=reason, **held.ids()))

    def _give_up(self, reason: str) -> None:
        """Every intent held fails, loudly, and so does every new one."""
        log.error("%s; giving up on the service at %s", reason, self.where)
        self.fatal = reason
        for held in self._holding.all():
            self._holding.fail(held, ServiceError(reason))

    def _supervisor_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._give_up(f"the client's connection task failed: {exc!r}")
