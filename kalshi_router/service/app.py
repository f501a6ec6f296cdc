"""The service's intake: HTTP JSON (or msgpack) endpoints and a WebSocket stream over one router.

    POST /v1/orders | /v1/cancels | /v1/amends | /v1/decreases   {"items": [...], "wait": true}
    GET  /v1/orders/{key}        an order's actions and outcomes, by client_order_id or order id
    GET  /v1/stats               the router's stats snapshot
    GET  /v1/state               the router's state as a client reports it (StreamState)
    GET  /v1/stream              WebSocket: {"type": "submit", "id": 1, "item": {...}} and back
                                 {"type": "ack" | "outcome" | "error", "id": 1, ...};
                                 ?state=1: a {"type": "state", ...} first, then every 250 ms;
                                 ?orders=1: {"type": "order_update", ...} for the client's
                                 own orders, and {"type": "view"} requests answered
    GET  /v1/open_orders /v1/positions    the calling client's own (``orders.track`` on)
    POST /v1/kill  GET|PUT /v1/trading_state    the desk's controls (``service.desk_routes``)
    GET  /healthz /readyz /metrics

Every intent is decoded on its own: a bad one gets an error naming its field and the rest go
ahead. Whatever the service accepted settles, even if the client goes away: its outcome stays
available by key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, TypedDict

import msgspec
from aiohttp import hdrs, web

from kalshi_router.client_names import ClientNames
from kalshi_router.config import ServiceConfig
from kalshi_router.errors import (
    BodyRefused,
    ConfigError,
    IntentError,
    KalshiRouterError,
    QueueFull,
)
from kalshi_router.journal import SqliteJournal
from kalshi_router.orders.updates import Orders
from kalshi_router.router import OrderRouter
from kalshi_router.service.book import OutcomeBook
from kalshi_router.service.context import (
    PATHS,
    SERVICE,
    Handler,
    Service,
    admit,
    caller,
    codec_for,
    error_response,
    json_response,
)
from kalshi_router.service.desk_routes import add_desk_routes
from kalshi_router.service.encoding import decode_body
from kalshi_router.service.metrics import Metrics
from kalshi_router.service.order_reads import open_orders, positions
from kalshi_router.service.orders import OrderForwarding
from kalshi_router.service.protocol import (
    IntentsBody,
    ItemError,
    ItemResult,
    ResultsBody,
    item_error,
)
from kalshi_router.service.scrape import scrape
from kalshi_router.service.stream import stream
from kalshi_router.service.token import authorized

log = logging.getLogger("kalshi_router.service")
_LINGER_S = 1.0
STATE_EVERY_S = 0.25


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer token on TCP (constant-time compare, no detail on failure); JSON for errors."""
    service = request.app[SERVICE]
    public = request.path in ("/healthz", "/readyz")
    sent = request.headers.get("Authorization", "")
    if service.token is not None and not public and not authorized(sent, service.token):
        return error_response(request, 401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        limit = service.settings.max_body_bytes
        return error_response(request, 413, f"request body larger than {limit} bytes")
    except BodyRefused as exc:
        return error_response(request, exc.status, exc.message, "Content-Encoding", exc.headers)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return error_response(request, exc.status, exc.reason)
        raise


async def intents(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    verb = PATHS[request.path]
    codec = codec_for(request)
    if service.draining:
        return error_response(request, 503, "shutting down: not taking new intents")
    client = caller(request)
    if isinstance(client, web.Response):
        return client
    limit = service.settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        # Refused before a byte of it is read.
        return error_response(request, 413, f"request body larger than {limit} bytes")
    try:
        # The whole body, not each read: a client trickling a byte at a time gets no longer.
        async with asyncio.timeout(service.settings.body_timeout_s):
            data = await request.read()
    except TimeoutError:
        timeout = service.settings.body_timeout_s
        answer = error_response(request, 408, f"request body not received within {timeout} s")
        answer.force_close()
        return answer
    data = decode_body(data, request.headers.get(hdrs.CONTENT_ENCODING, ""), limit)
    try:
        body = codec.decode(data, IntentsBody)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        problem = item_error(exc)
        return error_response(request, 400, f"malformed body: {problem.message}", problem.field)
    if len(body.items) > service.settings.max_items:
        limit = service.settings.max_items
        return error_response(request, 413, f"{len(body.items)} items; at most {limit}", "items")
    results: list[ItemResult] = []
    waiting: list[tuple[int, str, asyncio.Future[Any]]] = []
    if service.needs_group(verb, client):
        await service.make_group(client)
    for index, raw in enumerate(body.items):
        try:
            key, future = admit(service, verb, raw, codec, body.deadline_s, client)
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
    return json_response(200 if body.wait else 202, ResultsBody(results), codec)


async def status(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    found = request.app[SERVICE].book.find(key)
    if found is None:
        message = f"no order with key {key!r} (settled long ago, or never sent here)"
        return error_response(request, 404, message)
    return json_response(200, found, codec_for(request))


async def stats(request: web.Request) -> web.Response:
    return json_response(200, request.app[SERVICE].stats(), codec_for(request))


async def state(request: web.Request) -> web.Response:
    return json_response(200, request.app[SERVICE].state(), codec_for(request))


async def healthz(request: web.Request) -> web.Response:
    return json_response(200, {"status": "alive"}, codec_for(request))


async def readyz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    if service.draining:
        return json_response(503, {"status": "draining"}, codec_for(request))
    if service.router.crashed is not None:
        return json_response(503, {"status": "crashed"}, codec_for(request))
    return json_response(200, {"status": "ready"}, codec_for(request))


async def metrics_endpoint(request: web.Request) -> web.Response:
    return scrape(request.app[SERVICE].metrics)


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
    *,
    orders: Orders | None = None,
) -> web.Application:
    """``orders``: where the order updates forwarded to clients come from; by default the
    router's own (``router.orders``), when it follows orders (``orders.track``)."""
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
    metrics.bind_risk(lambda: router.stats().risk)
    metrics.bind_signatures(lambda: router.signatures)
    source = orders if orders is not None else _followed(router)
    if source is not None:
        service.follow(OrderForwarding(source, service.run))
    app[SERVICE] = service
    for path in PATHS:
        app.router.add_post(path, intents)
    app.router.add_get("/v1/orders/{key}", status)
    app.router.add_get("/v1/stats", stats)
    app.router.add_get("/v1/state", state)
    app.router.add_get("/v1/stream", stream)
    app.router.add_get("/v1/open_orders", open_orders)
    app.router.add_get("/v1/positions", positions)
    add_desk_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.on_shutdown.append(_shutdown)
    app.cleanup_ctx.append(_push_state)
    app.cleanup_ctx.append(_forward_orders)
    return app


def _followed(router: OrderRouter) -> Orders | None:
    try:
        return router.orders
    except ConfigError:  # orders.track is off
        return None


async def _forward_orders(app: web.Application) -> AsyncIterator[None]:
    """The one task that forwards the router's order updates to their clients."""
    forwarding = app[SERVICE].orders
    if forwarding is not None:
        forwarding.start()
    yield
    if forwarding is not None:
        await forwarding.aclose()


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
    service.start_draining()
    if service.streams:
        await service.close_streams()
