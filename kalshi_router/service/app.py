"""The service's intake: HTTP JSON (or msgpack) endpoints and a WebSocket stream over one router.

    POST /v1/orders | /v1/cancels | /v1/amends | /v1/decreases   {"items": [...], "wait": true}
    GET  /v1/orders/{key}        an order's actions and outcomes, by client_order_id or order id
    GET  /v1/stats               the router's stats snapshot
    GET  /v1/state               the router's state as a client reports it (StreamState)
    GET  /v1/stream              WebSocket: {"type": "submit", "id": 1, "item": {...}} and back
                                 {"type": "ack" | "outcome" | "error", "id": 1, ...};
                                 ?state=1: a {"type": "state", ...} first, then every 250 ms
    GET  /healthz /readyz /metrics

Every intent is decoded on its own: a bad one gets an error naming its field and the rest go
ahead. Whatever the service accepted settles, even if the client goes away: its outcome stays
available by key.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

import msgspec
from aiohttp import WSCloseCode, WSMsgType, hdrs, web

from kalshi_router.client_names import HEADER, ClientNames, name_problem
from kalshi_router.config import ServiceConfig
from kalshi_router.errors import BodyRefused, IntentError, KalshiRouterError, QueueFull
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.journal import SqliteJournal
from kalshi_router.router import OrderRouter
from kalshi_router.service.book import OutcomeBook
from kalshi_router.service.encoding import decode_body
from kalshi_router.service.metrics import Metrics
from kalshi_router.service.protocol import (
    SHUTTING_DOWN,
    BudgetState,
    Codec,
    ErrorBody,
    IntentsBody,
    ItemError,
    ItemResult,
    MessageId,
    ResultsBody,
    StreamAck,
    StreamError,
    StreamFrame,
    StreamOutcome,
    StreamRequest,
    StreamRequestId,
    StreamState,
    Verb,
    item_error,
)
from kalshi_router.service.scrape import scrape
from kalshi_router.service.token import authorized
from kalshi_router.stats import ClientFigures, ClientTally, RouterStats

log = logging.getLogger("kalshi_router.service")
MSGPACK = "application/msgpack"
_LINGER_S = 1.0
STATE_EVERY_S = 0.25
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
        )

    def client_figures(self) -> dict[str, ClientFigures]:
        return self.tally.snapshot(self.router.queued_by_client(), self.names.label)

    def stats(self) -> RouterStats:
        """The router's stats, and the figures of each client."""
        return msgspec.structs.replace(self.router.stats(), clients=self.client_figures())

    async def close_streams(self) -> None:
        """Once the router has settled everything: each stream's writer sends what it holds
        (the last outcomes), then closes its socket."""
        # Outcome callbacks run on the loop's turn after their futures settle.
        await asyncio.sleep(0)
        for outbox in self.streams.values():
            outbox.put_nowait(GOING_AWAY)


SERVICE = web.AppKey("service", Service)


def _codec(request: web.Request) -> Codec:
    """msgpack for a client that sends it or asks for it; JSON otherwise. Errors too, so that a
    msgpack client can always decode the answer."""
    binary = request.content_type == MSGPACK or MSGPACK in request.headers.get("Accept", "")
    return Codec(binary=binary)


def _json(
    status: int, body: Any, codec: Codec, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=codec.encode(body),
        content_type=MSGPACK if codec.binary else "application/json",
        headers=headers,
    )


def _problem(
    request: web.Request,
    status: int,
    message: str,
    field_name: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return _json(status, ErrorBody(message, field_name), _codec(request), headers)


def _caller(request: web.Request) -> str | web.Response:
    """The client key of whoever sent ``request``: its name, or its connection; a bad name is
    answered 400."""
    name = request.headers.get(HEADER)
    if name is not None and (problem := name_problem(name)):
        return _problem(request, 400, f"{HEADER}: {problem}", HEADER)
    return request.app[SERVICE].names.key(name, request.transport)


def _admit(
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
    service.tally.track(service.names.label(client), future)
    return key, future


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer token on TCP (constant-time compare, no detail on failure); JSON for errors."""
    service = request.app[SERVICE]
    public = request.path in ("/healthz", "/readyz")
    sent = request.headers.get("Authorization", "")
    if service.token is not None and not public and not authorized(sent, service.token):
        return _problem(request, 401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        limit = service.settings.max_body_bytes
        return _problem(request, 413, f"request body larger than {limit} bytes")
    except BodyRefused as exc:
        return _problem(request, exc.status, exc.message, "Content-Encoding", exc.headers)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return _problem(request, exc.status, exc.reason)
        raise


async def intents(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    verb = PATHS[request.path]
    codec = _codec(request)
    if service.draining:
        return _problem(request, 503, "shutting down: not taking new intents")
    client = _caller(request)
    if isinstance(client, web.Response):
        return client
    limit = service.settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        # Refused before a byte of it is read.
        return _problem(request, 413, f"request body larger than {limit} bytes")
    try:
        # The whole body, not each read: a client trickling a byte at a time gets no longer.
        async with asyncio.timeout(service.settings.body_timeout_s):
            data = await request.read()
    except TimeoutError:
        timeout = service.settings.body_timeout_s
        answer = _problem(request, 408, f"request body not received within {timeout} s")
        answer.force_close()
        return answer
    data = decode_body(data, request.headers.get(hdrs.CONTENT_ENCODING, ""), limit)
    try:
        body = codec.decode(data, IntentsBody)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        problem = item_error(exc)
        return _problem(request, 400, f"malformed body: {problem.message}", problem.field)
    if len(body.items) > service.settings.max_items:
        limit = service.settings.max_items
        return _problem(request, 413, f"{len(body.items)} items; at most {limit}", "items")
    results: list[ItemResult] = []
    waiting: list[tuple[int, str, asyncio.Future[Any]]] = []
    for index, raw in enumerate(body.items):
        try:
            key, future = _admit(service, verb, raw, codec, body.deadline_s, client)
        except (msgspec.DecodeError, msgspec.ValidationError, IntentError) as exc:
            results.append(ItemResult(index=index, error=item_error(exc)))
        except QueueFull as exc:
            results.append(ItemResult(index=index, error=ItemError("queue", str(exc))))
        except KalshiRouterError as exc:
            # RouterClosed, RouterCrashed: the item gets the reason (not a 500 for them all).
            results.append(ItemResult(index=index, error=ItemError("service", str(exc))))
        else:
            waiting.append((index, key, future))
    if body.wait and waiting:
        # asyncio.wait, not gather: if this handler is cancelled the intents must still settle.
        await asyncio.wait([future for _, _, future in waiting])
    for index, key, future in waiting:
        if not future.done():
            results.append(ItemResult(index=index, key=key, status="pending"))
        elif future.exception() is not None:
            error = ItemError("router", str(future.exception()))
            results.append(ItemResult(index=index, key=key, error=error))
        else:
            results.append(ItemResult(index=index, key=key, outcome=future.result()))
    results.sort(key=lambda result: result.index)
    service.book.durable()  # the journal holds every intent acknowledged here
    return _json(200 if body.wait else 202, ResultsBody(results), codec)


async def status(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    found = request.app[SERVICE].book.find(key)
    if found is None:
        message = f"no order with key {key!r} (settled long ago, or never sent here)"
        return _problem(request, 404, message)
    return _json(200, found, _codec(request))


async def stats(request: web.Request) -> web.Response:
    return _json(200, request.app[SERVICE].stats(), _codec(request))


async def state(request: web.Request) -> web.Response:
    return _json(200, request.app[SERVICE].state(), _codec(request))


async def healthz(request: web.Request) -> web.Response:
    return _json(200, {"status": "alive"}, _codec(request))


async def readyz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    if service.draining:
        return _json(503, {"status": "draining"}, _codec(request))
    if service.router.crashed is not None:
        return _json(503, {"status": "crashed"}, _codec(request))
    return _json(200, {"status": "ready"}, _codec(request))


async def metrics_endpoint(request: web.Request) -> web.Response:
    return scrape(request.app[SERVICE].metrics)


async def stream(request: web.Request) -> web.StreamResponse:
    """Pipelined intents: each request is acked with its key at once, its outcome follows."""
    service = request.app[SERVICE]
    if service.draining:
        return _problem(request, 503, "shutting down: not taking new streams")
    client = _caller(request)
    if isinstance(client, web.Response):
        return client
    codec = Codec(binary=request.query.get("format") == "msgpack")
    socket = _Socket(service.settings)
    await socket.prepare(request)
    outbox: Outbox = asyncio.Queue()
    service.streams[socket] = outbox
    if request.query.get("state") == "1":
        service.watchers.add(outbox)
        outbox.put_nowait(service.state())
    writer = asyncio.create_task(_write(socket, codec, outbox, service.book.durable))
    try:
        async for message in socket:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                _on_message(service, codec, message.data, outbox, client)
    finally:
        service.streams.pop(socket, None)
        service.watchers.discard(outbox)
        outbox.put_nowait(None)
        await writer
    return socket


class _Socket(web.WebSocketResponse):
    """The stream's socket: pinged when quiet; a frame over the size limit closes it with 1009
    and the reason (aiohttp sends that code with no reason; the frame cannot be answered on its
    own, as the rest of it was never read)."""

    def __init__(self, settings: ServiceConfig) -> None:
        super().__init__(
            heartbeat=settings.stream_heartbeat_s, max_msg_size=settings.max_body_bytes
        )
        self._too_big = f"frame larger than {settings.max_body_bytes} bytes".encode()

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not message:
            message = self._too_big
        return await super().close(code=code, message=message, drain=drain)


def _on_message(
    service: Service, codec: Codec, data: bytes | str, outbox: Outbox, client: str
) -> None:
    try:
        request = codec.decode(data, StreamRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        problem = item_error(exc)
        outbox.put_nowait(StreamError(_request_id(codec, data), problem.field, problem.message))
        return
    if service.draining:
        outbox.put_nowait(StreamError(request.id, "service", SHUTTING_DOWN))
        return
    try:
        key, future = _admit(service, request.type, request.item, codec, request.deadline_s, client)
    except (msgspec.DecodeError, msgspec.ValidationError, IntentError) as exc:
        problem = item_error(exc)
        outbox.put_nowait(StreamError(request.id, problem.field, problem.message))
        return
    except QueueFull as exc:
        outbox.put_nowait(StreamError(request.id, "queue", str(exc)))
        return
    except KalshiRouterError as exc:
        outbox.put_nowait(StreamError(request.id, "service", str(exc)))
        return
    outbox.put_nowait(StreamAck(request.id, key))

    def done(settled: asyncio.Future[Any]) -> None:
        if settled.cancelled() or settled.exception() is not None:
            reason = "cancelled" if settled.cancelled() else str(settled.exception())
            outbox.put_nowait(StreamError(request.id, "router", reason))
        else:
            outbox.put_nowait(StreamOutcome(request.id, key, settled.result()))

    future.add_done_callback(done)


def _request_id(codec: Codec, data: bytes | str) -> MessageId | None:
    """The id of a request that did not decode, if it has a readable one: its sender is waiting
    for an answer to that id, and an error with id null would leave it waiting."""
    try:
        return codec.decode(data, StreamRequestId).id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


async def _write(
    socket: web.WebSocketResponse, codec: Codec, outbox: Outbox, durable: Callable[[], None]
) -> None:
    # One writer per socket: frames from many callbacks must not interleave.
    while (reply := await outbox.get()) is not None:
        durable()  # the journal holds what this ack or outcome reports
        if isinstance(reply, _GoingAway):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"shutting down")
            continue
        if socket.closed:
            continue
        data = codec.encode(reply)
        with contextlib.suppress(ConnectionError):
            if codec.binary:
                await socket.send_bytes(data)
            else:
                await socket.send_str(data.decode())


class ServerOptions(TypedDict):
    keepalive_timeout: float
    lingering_time: float


def server_options(settings: ServiceConfig) -> ServerOptions:
    """The intake's timeouts that aiohttp's server enforces itself (``web.AppRunner`` keywords):
    a connection that sends no whole request head in ``idle_timeout_s`` is closed, and after an
    answer given before its body was read (408, 413), what is left of it is read for at most a
    second before the connection is closed."""
    return ServerOptions(
        keepalive_timeout=settings.idle_timeout_s,
        lingering_time=min(_LINGER_S, settings.body_timeout_s),
    )


def build_service_app(
    router: OrderRouter,
    settings: ServiceConfig,
    metrics: Metrics,
    token: str | None,
    journal: SqliteJournal | None = None,
) -> web.Application:
    app = web.Application(
        middlewares=[guard],
        client_max_size=settings.max_body_bytes,
        # Bodies are decoded by ``decode_body``, whatever server the app runs on.
        handler_args={"auto_decompress": False},
    )
    book = OutcomeBook(settings.keep_outcomes, journal)
    service = Service(
        router,
        settings,
        metrics,
        token,
        book,
        journaled=journal is not None,
        names=ClientNames(settings.max_client_names),
    )
    metrics.bind_clients(service.client_figures)
    app[SERVICE] = service
    for path in PATHS:
        app.router.add_post(path, intents)
    app.router.add_get("/v1/orders/{key}", status)
    app.router.add_get("/v1/stats", stats)
    app.router.add_get("/v1/state", state)
    app.router.add_get("/v1/stream", stream)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.on_shutdown.append(_shutdown)
    app.cleanup_ctx.append(_push_state)
    return app


async def _push_state(app: web.Application) -> AsyncIterator[None]:
    """One task for the app: every STATE_EVERY_S, one state frame for every stream that asked."""
    service = app[SERVICE]

    async def push() -> None:
        while True:
            await asyncio.sleep(STATE_EVERY_S)
            if service.watchers:
                frame = service.state()  # made once: stats() sorts every latency sample
                for outbox in service.watchers:
                    outbox.put_nowait(frame)

    task = asyncio.create_task(push(), name="kalshi-router-state")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _shutdown(app: web.Application) -> None:
    """The server is stopping: streams are told so and closed, rather than held open until
    the runner's shutdown timeout. (``serve`` drains the router and closes them itself first;
    this covers the other ways out, such as an error, or an embedder's own runner.)"""
    service = app[SERVICE]
    service.draining = True
    if service.streams:
        await service.close_streams()
