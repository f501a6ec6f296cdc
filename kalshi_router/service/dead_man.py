"""Cancel on disconnect: Kalshi's REST API has no dead-man's switch (only FIX has one), so a bot
killed with quotes resting would leave them on the book. A named bot that opens its stream with
``?cancel_on_disconnect=N`` asks the service to cancel its resting orders once it has had no
stream for N seconds.

Per client name: how many streams it has open, the N its newest stream asked for (a stream
opened without it withdraws the request), and a timer. When its last stream closes with N set,
the timer starts; any stream of the same name opening before it fires stops it, so a network
blip that the client reconnects through pulls nothing. When it fires, every order of the
client's own view that is not final (``OrderForwarding``, so ``orders.track`` is needed) is
cancelled through the router, on the cancel lane, under the client's name; and each create of
the client still in flight then is cancelled once accepted, unless the client is back first.
Other bots' orders are never touched: the view holds this client's orders only.

A peer that goes silent with its socket open (a hung process, a cut cable) is found by the
stream's ping, which for a stream that opts in comes every min(``stream_heartbeat_s``, N) s
and closes the stream when no pong follows within half of that (``stream.py``).

Also here: ``cancel_open_orders``, what ``serve`` does on SIGTERM with ``[service]
cancel_on_shutdown``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from kalshi_router.errors import KalshiRouterError
from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.orders.updates import OrderUpdate
from kalshi_router.outcome import Accepted, CancelOutcome

__all__ = ["PARAMETER", "DeadMan", "cancel_open_orders", "parse_seconds"]

log = logging.getLogger("kalshi_router.service")
PARAMETER = "cancel_on_disconnect"
MAX_SECONDS = 86_400.0
"""A longer wait is no dead-man's switch; and it bounds the timers a client can leave behind."""
CancelFor = Callable[[str | None, CancelIntent], "asyncio.Future[CancelOutcome]"]
"""Hand one cancel to the router for a client (None: the service's own); raises
``KalshiRouterError`` when the router does not take it."""


def parse_seconds(raw: str) -> float:
    """The value of ``?cancel_on_disconnect=``; ``ValueError`` naming the rule otherwise."""
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    # Written so that NaN fails it too.
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"{PARAMETER}: seconds, a number > 0 and <= {MAX_SECONDS:g}; got {raw!r}")
    return seconds


@dataclass(eq=False, slots=True)
class _Client:
    streams: int = 0
    seconds: float | None = None
    timer: asyncio.TimerHandle | None = None
    dead: bool = False
    """Its timer fired and it has not opened a stream since."""
    cancelled: set[str] = field(default_factory=set)
    """Orders cancelled since it died: each once."""
    creates: dict[str, tuple[OrderIntent, asyncio.Future[Any]]] = field(default_factory=dict)
    """Its creates in flight, by client_order_id (kept while it has asked for this)."""


class DeadMan:
    """See the module docstring. ``open_orders(client)``: the client's orders not final;
    ``cancel``: hands a cancel to the router; ``counted(client, n)``: n cancels were sent for
    ``client``'s disconnect (its figures). ``close()`` when the service stops: its own streams
    closing then pull nothing (``[service] cancel_on_shutdown`` decides that)."""

    def __init__(
        self,
        open_orders: Callable[[str], Iterable[OrderUpdate]],
        cancel: CancelFor,
        counted: Callable[[str, int], None],
    ) -> None:
        self._open_orders = open_orders
        self._cancel = cancel
        self._counted = counted
        self._clients: dict[str, _Client] = {}
        self._closed = False

    def armed(self, client: str) -> bool:
        """A timer is running for ``client``."""
        found = self._clients.get(client)
        return found is not None and found.timer is not None

    # Streams of named clients, opened and closed.

    def connected(self, client: str, seconds: float | None) -> None:
        """A stream of ``client`` opened, asking for cancel on disconnect after ``seconds``
        (None: not, and any earlier request of the same name is withdrawn)."""
        if self._closed:
            return
        state = self._clients.setdefault(client, _Client())
        state.streams += 1
        state.seconds = seconds
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
            log.info("client %s is back: its orders stay", client)
        state.dead = False
        state.cancelled.clear()
        if seconds is None:
            state.creates.clear()

    def disconnected(self, client: str) -> None:
        state = self._clients.get(client)
        if self._closed or state is None:
            return
        state.streams -= 1
        if state.streams > 0:
            return
        if state.seconds is None:
            del self._clients[client]
            return
        loop = asyncio.get_running_loop()
        state.timer = loop.call_later(state.seconds, self._fire, client, state)
        log.info(
            "client %s has no stream: its orders are cancelled in %g s unless it comes back",
            client,
            state.seconds,
        )

    def placed(self, client: str, intent: OrderIntent, future: asyncio.Future[Any]) -> None:
        """``client`` sent a create: if it asked for cancel on disconnect, it is kept until
        it settles (it may be accepted after the client died)."""
        state = self._clients.get(client)
        if state is None or state.seconds is None or not state.streams:
            # Sent over HTTP with no stream open: the client is alive, whatever its stream.
            return
        key = intent.client_order_id
        state.creates[key] = (intent, future)
        future.add_done_callback(partial(self._settled, client, state, intent))

    def close(self) -> None:
        """Stop every timer; nothing more is armed or sent."""
        self._closed = True
        for state in self._clients.values():
            if state.timer is not None:
                state.timer.cancel()
        self._clients.clear()

    # Firing.

    def _fire(self, client: str, state: _Client) -> None:
        state.timer = None
        state.dead = True
        sent = [
            order.order_id
            for order in self._open_orders(client)
            if order.order_id is not None
            and order.ticker is not None
            and self._send(client, state, order.order_id, order.ticker)
        ]
        log.warning(
            "client %s had no stream for %g s: cancelled %d open orders (%d creates still in "
            "flight are cancelled once accepted)",
            client,
            state.seconds,
            len(sent),
            len(state.creates),
            extra={"order_ids": sent},
        )

    def _settled(
        self, client: str, state: _Client, intent: OrderIntent, future: asyncio.Future[Any]
    ) -> None:
        state.creates.pop(intent.client_order_id, None)
        if not state.dead or self._clients.get(client) is not state:
            return
        if future.cancelled() or future.exception() is not None:
            return
        outcome = future.result()
        if isinstance(outcome, Accepted) and outcome.remaining_count > 0:
            self._send(client, state, outcome.order_id, intent.ticker, intent.subaccount)
        # An Unknown create: if it did land, its order shows in the client's view later and
        # is not cancelled here (it is not known to be open when the timer fired).

    def _send(
        self,
        client: str,
        state: _Client,
        order_id: str,
        ticker: str,
        subaccount: int | None = None,
    ) -> bool:
        if order_id in state.cancelled:
            return False
        intent = CancelIntent(order_id=order_id, ticker=ticker, subaccount=subaccount)
        try:
            future = self._cancel(client, intent)
        except KalshiRouterError as exc:
            # Already being cancelled (by the bot itself, say), or the router is closing.
            log.warning(
                "client %s: cancel on disconnect of %s not sent: %s",
                client,
                order_id,
                exc,
                extra={"order_id": order_id},
            )
            return False
        state.cancelled.add(order_id)
        self._counted(client, 1)
        future.add_done_callback(partial(_cancel_done, client, order_id))
        return True


def _cancel_done(client: str | None, order_id: str, future: asyncio.Future[CancelOutcome]) -> None:
    if future.cancelled():
        return
    failed = future.exception()
    outcome = None if failed is not None else future.result()
    if outcome is None or not outcome.ok:
        log.warning(
            "cancel of %s (for %s) failed: %s",
            order_id,
            client or "the service",
            failed or outcome,
            extra={"order_id": order_id},
        )


async def cancel_open_orders(
    orders: Iterable[OrderUpdate], cancel: CancelFor, timeout_s: float
) -> tuple[int, int]:
    """Cancel each of ``orders`` (for the service itself) and wait up to ``timeout_s`` for the
    outcomes: how many cancels were sent, and how many of those the exchange confirmed."""
    futures: list[asyncio.Future[CancelOutcome]] = []
    for order in orders:
        if order.order_id is None or order.ticker is None or order.final:
            continue
        try:
            future = cancel(None, CancelIntent(order_id=order.order_id, ticker=order.ticker))
        except KalshiRouterError as exc:
            log.warning(
                "cancel of %s not sent: %s", order.order_id, exc, extra={"order_id": order.order_id}
            )
            continue
        future.add_done_callback(partial(_cancel_done, None, order.order_id))
        futures.append(future)
    if futures:
        await asyncio.wait(futures, timeout=timeout_s)
    confirmed = sum(
        1
        for future in futures
        if future.done()
        and not future.cancelled()
        and future.exception() is None
        and future.result().ok
    )
    return len(futures), confirmed
