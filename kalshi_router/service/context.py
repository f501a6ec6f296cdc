"""What every intake handler shares: the ``Service`` (the router and what the service keeps
beside it), the verbs and the router calls they make, and the shape of answers and errors."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import msgspec
from aiohttp import web

from kalshi_router.client_names import HEADER, ClientNames, name_problem
from kalshi_router.config import ServiceConfig
from kalshi_router.errors import IntentError
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.orders.updates import OrderUpdate
from kalshi_router.outcome import CancelOutcome
from kalshi_router.router import OrderRouter
from kalshi_router.service.book import OutcomeBook
from kalshi_router.service.dead_man import DeadMan
from kalshi_router.service.desk import Desk
from kalshi_router.service.groups import ClientGroups
from kalshi_router.service.metrics import Metrics
from kalshi_router.service.orders import OrderForwarding
from kalshi_router.service.protocol import (
    BudgetState,
    Codec,
    ErrorBody,
    StreamFrame,
    StreamState,
    Verb,
)
from kalshi_router.stats import ClientFigures, ClientTally, RouterStats

log = logging.getLogger("kalshi_router.service")
MSGPACK = "application/msgpack"
# Forwarding the router's last order updates at shutdown: they are in memory, so this is a
# bound for a bug, not a wait.
_FORWARD_GRACE_S = 1.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    """How one verb turns a decoded intent into a router future."""

    kind: type[OrderIntent] | type[CancelIntent] | type[AmendIntent] | type[DecreaseIntent]
    key: Callable[[Any], str]
    call: RouterCall


class RouterCall(Protocol):
    """``OrderRouter.submit``, ``cancel``, ``amend`` or ``decrease``, unbound."""

    def __call__(
        self, router: OrderRouter, intent: Any, /, *, deadline_s: float | None, client: str | None
    ) -> asyncio.Future[Any]: ...


ROUTES: dict[Verb, Route] = {
    "submit": Route(OrderIntent, lambda i: i.client_order_id, OrderRouter.submit),
    "cancel": Route(CancelIntent, lambda i: i.order_id, OrderRouter.cancel),
    "amend": Route(AmendIntent, lambda i: i.order_id, OrderRouter.amend),
    "decrease": Route(DecreaseIntent, lambda i: i.order_id, OrderRouter.decrease),
}
PATHS: dict[str, Verb] = {
    "/v1/orders": "submit",
    "/v1/cancels": "cancel",
    "/v1/amends": "amend",
    "/v1/decreases": "decrease",
}


class _GoingAway:
    """Tells a stream's writer that the service is shutting down."""


GOING_AWAY = _GoingAway()
# None: the client left, stop writing.
Outbox = asyncio.Queue[StreamFrame | _GoingAway | None]


@dataclass(slots=True)
class Service:
    router: OrderRouter
    settings: ServiceConfig
    metrics: Metrics
    # Out of the repr: the object may end up in a log line or a traceback's locals.
    token: str | None = field(repr=False)
    book: OutcomeBook
    draining: bool = False
    streams: dict[web.WebSocketResponse, Outbox] = field(default_factory=dict)
    journaled: bool = False
    run: str = field(default_factory=lambda: secrets.token_hex(8))
    reports: itertools.count[int] = field(default_factory=itertools.count)
    # The outboxes of the streams that asked for state frames.
    watchers: set[Outbox] = field(default_factory=set)
    names: ClientNames = field(default_factory=ClientNames)
    tally: ClientTally = field(default_factory=ClientTally)
    orders: OrderForwarding | None = None
    """Each client's own orders after acceptance, when the router follows them."""
    dead_man: DeadMan | None = None
    """Cancel on disconnect (it needs ``orders``)."""
    desk: Desk = field(init=False)
    """The kill switch and the trading state (``service.desk``)."""
    groups: ClientGroups | None = None
    """Each named client's own order group (``[service] client_order_group_limit``)."""

    def __post_init__(self) -> None:
        self.desk = Desk(self.router, reported=self.metrics.killed)
        limit = self.settings.client_order_group_limit
        if self.groups is None and limit:
            router = self.router
            self.groups = ClientGroups(lambda: router.order_groups, limit)

    def needs_group(self, verb: Verb, client: str) -> bool:
        """A create of ``client`` must wait for its order group to be made (``make_group``)."""
        return verb == "submit" and self.groups is not None and self.groups.needs_group(client)

    async def make_group(self, client: str) -> None:
        if self.groups is not None:
            await self.groups.make(client)

    def follow(self, forwarding: OrderForwarding) -> None:
        """The router follows orders: each client's are forwarded to it, and a client may ask
        to have them cancelled when it goes."""
        self.orders = forwarding

        def open_orders(client: str) -> list[OrderUpdate]:
            return forwarding.open_orders(client, None).orders

        def counted(client: str, count: int) -> None:
            self.tally.cancelled_on_disconnect(self.names.label(client), count)

        self.dead_man = DeadMan(open_orders, partial(cancel_for, self), counted)

    def start_draining(self) -> None:
        """Take no more intents; a stream closing from now on pulls nothing."""
        self.draining = True
        if self.dead_man is not None:
            self.dead_man.close()

    def state(self) -> StreamState:
        """What a client of this service reports as its router's state."""
        router = self.router
        crashed = router.crashed
        return StreamState(
            seq=next(self.reports),
            run=self.run,
            journal=self.journaled,
            deadline_s=router.deadline_s,
            stats=self.stats(),
            budget=BudgetState.of(router.budget),
            batch_limits=router.batch_limits,
            crashed=None if crashed is None else repr(crashed),
            orders=self.orders is not None,
        )

    def client_figures(self) -> dict[str, ClientFigures]:
        return self.tally.snapshot(self.router.queued_by_client(), self.names.label)

    def stats(self) -> RouterStats:
        """The router's stats, and the figures of each client."""
        return msgspec.structs.replace(self.router.stats(), clients=self.client_figures())

    async def close_streams(self, *, router_closed: bool = False) -> None:
        """Once the router has settled everything: each stream's writer sends what it holds
        (the last outcomes and, once the router has closed, its last order updates), then
        closes its socket."""
        if router_closed and self.orders is not None:
            await self.orders.finished(_FORWARD_GRACE_S)
        # Outcome callbacks run on the loop's turn after their futures settle.
        await asyncio.sleep(0)
        for outbox in self.streams.values():
            outbox.put_nowait(GOING_AWAY)


SERVICE = web.AppKey("service", Service)


def codec_for(request: web.Request) -> Codec:
    """msgpack for a client that sends it or asks for it; JSON otherwise. Errors too, so that a
    msgpack client can always decode the answer."""
    binary = request.content_type == MSGPACK or MSGPACK in request.headers.get("Accept", "")
    return Codec(binary=binary)


def json_response(
    status: int, body: Any, codec: Codec, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=codec.encode(body),
        content_type=MSGPACK if codec.binary else "application/json",
        headers=headers,
    )


def error_response(
    request: web.Request,
    status: int,
    message: str,
    field_name: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return json_response(status, ErrorBody(message, field_name), codec_for(request), headers)


def caller(request: web.Request) -> str | web.Response:
    """The client key of whoever sent ``request``: its name, or its connection; a bad name is
    answered 400."""
    name = request.headers.get(HEADER)
    if name is not None and (problem := name_problem(name)):
        return error_response(request, 400, f"{HEADER}: {problem}", HEADER)
    return request.app[SERVICE].names.key(name, request.transport)


def admit(
    service: Service,
    verb: Verb,
    raw: msgspec.Raw,
    codec: Codec,
    deadline: float | None,
    client: str,
) -> tuple[str, asyncio.Future[Any]]:
    """Decode one intent and hand it to the router; raise what the caller should report."""
    route = ROUTES[verb]
    intent = codec.decode(raw, route.kind)
    key = route.key(intent)
    if service.groups is not None and isinstance(intent, OrderIntent):
        intent = service.groups.stamp(client, intent)
    if verb == "submit":
        # Kalshi would refuse it as a duplicate (at the price of a write), and the order's
        # history would show a second place: say so here instead.
        accepted = service.book.accepted(key)
        if accepted is not None:
            raise IntentError(
                "client_order_id", f"{key!r} was already accepted as order {accepted.order_id}"
            )
    future = route.call(service.router, intent, deadline_s=deadline, client=client)
    service.book.track(verb, key, future)
    if verb == "submit":
        if service.orders is not None:
            service.orders.placed(client, key, future)
        if service.dead_man is not None and isinstance(intent, OrderIntent):
            service.dead_man.placed(client, intent, future)
    service.tally.track(service.names.label(client), future)
    return key, future


def cancel_for(
    service: Service, client: str | None, intent: CancelIntent
) -> asyncio.Future[CancelOutcome]:
    """A cancel the service itself sends (``None``: for no client; else for ``client``, in its
    turn on the cancel lane), recorded as a client's would be."""
    future = service.router.cancel(intent, client=client)
    service.book.track("cancel", intent.order_id, future)
    if client is not None:
        service.tally.track(service.names.label(client), future)
    return future
