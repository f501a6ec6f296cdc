"""``RouterClient``: the service's client, a ``Router`` like the embedded one.

    async with RouterClient("http://127.0.0.1:8088", token=token) as router:
        outcome = await router.place(OrderIntent.bid("KX-1", price="0.56", count=10))

Intents are pipelined over one WebSocket: ``submit`` returns a future at once and the service's
outcome message settles it. The service pushes its router's state on the same stream, which
``stats()``, ``queue_depth``, ``in_flight``, ``budget``, ``crashed`` and ``batch_limits`` report.
A broken stream is opened again and nothing is lost (``client_connection``). ``open_router``
(``client.opening``) picks the embedded router or this client from the configuration, so a bot
can switch between them without code changes. The desk's controls (``kill``, ``resume``,
``set_trading_state``, ``trading_state``) act on the service's router, for every client of it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

import msgspec

from kalshi_router.awaiting import all_of
from kalshi_router.client_names import name_problem
from kalshi_router.errors import (
    ConfigError,
    IntentError,
    RouterClosed,
    RouterCrashed,
    ServiceError,
)
from kalshi_router.intake import checked_deadline, expect
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.outcome import AmendOutcome, CancelOutcome, Closed, OrderOutcome, Unknown
from kalshi_router.risk.config import TradingState, check_state
from kalshi_router.risk.kill import KillReport
from kalshi_router.service.client.connection import Connection, Token
from kalshi_router.service.client.holding import Holding
from kalshi_router.service.client.orders import RemoteOrders
from kalshi_router.service.dead_man import parse_seconds
from kalshi_router.service.protocol import BudgetState, StreamState, Verb
from kalshi_router.stats import RouterStats, StatsRecorder

__all__ = ["RouterClient"]

log = logging.getLogger("kalshi_router.client")


class RouterClient:
    """A connection to ``kalshi-router serve`` over TCP (with its bearer token) or a Unix
    socket (``unix_socket=path``, with any ``url`` host). ``name``: who this bot is, for the
    service's fairness between bots and its per-client figures (none: this connection).

    ``token`` may be a function, called (on a thread) each time a stream is opened: a restarted
    service may have a new token. While the stream is down, up to ``queue_size`` new intents
    wait for it (more raise ``QueueFull``), each until its deadline (then ``Expired``); intents
    sent before it broke are settled ``Unknown`` if the service stays unreachable for
    ``outage_timeout`` seconds.

    ``cancel_on_disconnect``: seconds; the service cancels this bot's resting orders once it
    has had no stream for that long (killed, hung, cut off), unless it is back under the same
    ``name`` (required) by then. The service must follow orders (``[orders] track``)."""

    def __init__(
        self,
        url: str,
        *,
        token: Token = None,
        unix_socket: str | None = None,
        drain_timeout: float = 10.0,
        queue_size: int = 10_000,
        outage_timeout: float = 60.0,
        rng: random.Random | None = None,
        name: str | None = None,
        cancel_on_disconnect: float | None = None,
    ) -> None:
        if name is not None and (problem := name_problem(name)):
            raise ConfigError(f"name: {problem}")
        if cancel_on_disconnect is not None:
            try:
                parse_seconds(repr(cancel_on_disconnect))
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            if name is None:
                raise ConfigError(
                    "cancel_on_disconnect: needs a name (the service keeps the orders of a bot "
                    "that comes back under the same name in time)"
                )
        self._drain_timeout = drain_timeout
        self._holding = Holding(queue_size)
        self._connection = Connection(
            url.rstrip("/"),
            self._holding,
            token=token,
            unix_socket=unix_socket,
            name=name,
            cancel_on_disconnect=cancel_on_disconnect,
            outage_timeout=outage_timeout,
            rng=rng or random.Random(),  # noqa: S311 - reconnect jitter, not a secret
        )
        self._crash: tuple[str, RouterCrashed] | None = None
        self._closed = False

    @property
    def url(self) -> str:
        """The service's base URL (its host is not used on a Unix socket)."""
        return self._connection.url

    @property
    def connected(self) -> bool:
        """A stream to the service is open (False while it reconnects)."""
        return self._connection.connected

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Open the stream; ``ServiceError`` if it cannot be (later breaks are reconnected)."""
        if self._closed:
            raise RouterClosed("the client is closed")
        if self._connection.opened:
            raise ServiceError("already connected")
        await self._connection.open()

    # The Router API.

    def submit(
        self, intent: OrderIntent, *, deadline_s: float | None = None
    ) -> asyncio.Future[OrderOutcome]:
        expect(intent, OrderIntent)
        return self._send("submit", intent, intent.client_order_id, deadline_s)

    async def submit_wait(
        self,
        intent: OrderIntent,
        *,
        queue_timeout: float | None = None,
        deadline_s: float | None = None,
    ) -> asyncio.Future[OrderOutcome]:
        """The embedded router's signature. ``queue_timeout`` has no effect here: a full queue
        is answered at once with ``QueueFull`` (the future fails with it when the service's is
        full; ``submit`` raises it when the client's own, while the service is away, is)."""
        return self.submit(intent, deadline_s=deadline_s)

    async def place(
        self,
        intent: OrderIntent,
        *,
        queue_timeout: float | None = None,
        deadline_s: float | None = None,
    ) -> OrderOutcome:
        """Submit and wait for the outcome (``queue_timeout``: as ``submit_wait``)."""
        return await self.submit(intent, deadline_s=deadline_s)

    async def place_many(
        self, intents: Iterable[OrderIntent], *, deadline_s: float | None = None
    ) -> list[OrderOutcome]:
        """``submit_many``, then every outcome, in order (cancelling this cancels them all)."""
        return await all_of(self.submit_many(intents, deadline_s=deadline_s))

    def submit_many(
        self, intents: Iterable[OrderIntent], *, deadline_s: float | None = None
    ) -> list[asyncio.Future[OrderOutcome]]:
        batch = list(intents)
        if not self._connection.connected:
            self._holding.room_for(len(batch))  # all or none, as the embedded router
        return [self.submit(intent, deadline_s=deadline_s) for intent in batch]

    def cancel(
        self,
        order_id: str | CancelIntent,
        ticker: str | None = None,
        *,
        deadline_s: float | None = None,
    ) -> asyncio.Future[CancelOutcome]:
        if isinstance(order_id, CancelIntent):
            intent = order_id
        elif ticker is None:
            raise IntentError("ticker", "required: Kalshi routes cancels by market ticker")
        else:
            intent = CancelIntent(order_id=order_id, ticker=ticker)
        return self._send("cancel", intent, intent.order_id, deadline_s)

    def cancel_many(self, cancels: Iterable[CancelIntent]) -> list[asyncio.Future[CancelOutcome]]:
        return [self.cancel(cancel) for cancel in cancels]

    def amend(
        self, intent: AmendIntent, *, deadline_s: float | None = None
    ) -> asyncio.Future[AmendOutcome]:
        expect(intent, AmendIntent)
        return self._send("amend", intent, intent.order_id, deadline_s)

    def decrease(
        self, intent: DecreaseIntent, *, deadline_s: float | None = None
    ) -> asyncio.Future[AmendOutcome]:
        expect(intent, DecreaseIntent)
        return self._send("decrease", intent, intent.order_id, deadline_s)

    async def flush(self) -> None:
        """Wait until every intent submitted so far has its outcome; the state reported then
        (``stats()`` and the rest) includes them all."""
        futures = self._holding.futures()
        if futures:
            await asyncio.wait(futures)
        await self._connection.refresh()

    def stats(self) -> RouterStats:
        """The service's router stats as of its last report; ``queue_depth`` counts the intents
        waiting here for a stream too."""
        state = self._connection.state
        waiting = len(self._holding.queued)
        if state is None:
            return StatsRecorder().snapshot(tokens_spent=0, queue_depth=waiting, in_flight=0)
        if not waiting:
            return state.stats
        return msgspec.structs.replace(state.stats, queue_depth=state.stats.queue_depth + waiting)

    @property
    def queue_depth(self) -> int:
        state = self._connection.state
        return (state.stats.queue_depth if state else 0) + len(self._holding.queued)

    @property
    def in_flight(self) -> int:
        state = self._connection.state
        return state.stats.in_flight if state else 0

    @property
    def budget(self) -> BudgetState:
        return self._reported().budget

    @property
    def batch_limits(self) -> dict[str, int]:
        return self._reported().batch_limits

    @property
    def orders(self) -> RemoteOrders:
        """This bot's own orders after acceptance, as the service forwards them (the same
        ``Orders`` as the embedded router's; see ``service.client.orders`` for what a
        reconnect keeps); ``ConfigError`` when the service does not follow orders."""
        if not self._reported().orders:
            raise ConfigError(
                f"orders.track: off at the service at {self._connection.where}; set [orders] "
                "track = true in the service's config to follow orders"
            )
        return self._connection.orders

    @property
    def crashed(self) -> RouterCrashed | None:
        state = self._connection.state
        if state is None or state.crashed is None:
            return None
        if self._crash is None or self._crash[0] != state.crashed:
            # One object per crash, as the embedded router keeps its own.
            self._crash = (state.crashed, RouterCrashed(f"dispatcher crashed: {state.crashed}"))
        return self._crash[1]

    async def aclose(self, drain_timeout: float | None = None) -> None:
        """Stop taking intents, wait up to ``drain_timeout`` (default: the constructor's) for
        the outcomes still due, reconnecting if need be, then close. What is left is settled
        as the embedded router settles it: never sent, ``Closed``; sent, ``Unknown`` (the
        service settles it all the same: its outcome is at ``GET /v1/orders/{key}``)."""
        if self._closed:
            return
        self._closed = True
        timeout = self._drain_timeout if drain_timeout is None else drain_timeout
        futures = self._holding.futures()
        if futures and timeout > 0:
            await asyncio.wait(futures, timeout=timeout)
        await self._connection.close()
        holding = self._holding
        for held in list(holding.queued.values()):
            reason = "client closed before this intent was sent"
            holding.settle(held, Closed(reason=reason, **held.ids()))
        unsure = [*holding.sent.values(), *holding.orphans.values()]
        if unsure:
            log.warning(
                "closing with %d intents sent and not answered, outcome unknown: %s",
                len(unsure),
                " ".join(held.key for held in unsure),
            )
        for held in unsure:
            reason = (
                "client closed before the service answered; its outcome is at the service "
                "(GET /v1/orders/{key}) or the exchange"
            )
            holding.settle(held, Unknown(reason=reason, **held.ids()))

    # The desk's controls.

    @property
    def trading_state(self) -> TradingState:
        """The service's trading state as last reported; a change this client asked for shows
        at once, until the service reports after making it."""
        risk = self._reported().stats.risk
        return self._connection.controls.shown("active" if risk is None else risk.state)

    def set_trading_state(self, state: TradingState) -> None:
        """Change the service's trading state: sent on the stream, ahead of every intent sent
        after it, which the service then takes in the new state (from ``halted`` to trading
        it reconciles first, as ``resume`` does). A refusal is logged; ``resume`` raises it."""
        state = check_state(state, "state")
        self._usable()
        self._connection.ask_state(state, resume=False, wait=False)

    async def resume(self, state: TradingState = "active") -> None:
        """As the embedded router's: the service reconciles the orders it follows with the
        exchange, then takes creates in ``state``; returns once it has."""
        state = check_state(state, "state")
        self._usable()
        answered = self._connection.ask_state(state, resume=True, wait=True)
        assert answered is not None
        await answered

    async def kill(
        self, reason: str, *, subaccount: int | None = None, timeout_s: float = 30.0
    ) -> KillReport:
        """The service's kill switch (``POST /v1/kill``): it halts, pulls every resting order
        of the account (or of ``subaccount``) and confirms through REST; the report once done.
        Creates stay refused, for every client of the service, until ``resume``."""
        self._usable()
        report = await self._connection.desk().kill(
            reason, subaccount=subaccount, timeout_s=timeout_s
        )
        await self._connection.refresh()  # trading_state and stats() as of the report
        return report

    def _usable(self) -> StreamState:
        state = self._connection.state
        if self._closed or state is None:
            raise RouterClosed(
                "the client is closed" if self._closed else "the client is not connected"
            )
        if self._connection.fatal is not None:
            raise ServiceError(self._connection.fatal)
        return state

    def _send(
        self, verb: Verb, item: Any, key: str, deadline_s: float | None
    ) -> asyncio.Future[Any]:
        state = self._usable()
        lasts = state.deadline_s if deadline_s is None else checked_deadline(deadline_s)
        held = self._holding.new(verb, item, key, asyncio.get_running_loop().time() + lasts)
        self._connection.send(held, deadline_s)
        return held.future

    def _reported(self) -> StreamState:
        if self._connection.state is None:
            raise RouterClosed("the client is not connected: use 'async with' or await connect()")
        return self._connection.state
