"""``GET /v1/stream``: pipelined intents over a WebSocket, JSON text or msgpack binary frames.
Each request is acked with its key at once and its outcome follows; one writer per socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from kalshi_router.client_names import HEADER, is_named
from kalshi_router.config import ServiceConfig
from kalshi_router.errors import IntentError, KalshiRouterError, QueueFull
from kalshi_router.service.context import (
    SERVICE,
    Outbox,
    Service,
    _GoingAway,
    admit,
    caller,
    error_response,
)
from kalshi_router.service.dead_man import PARAMETER, parse_seconds
from kalshi_router.service.desk_routes import stream_trading_state
from kalshi_router.service.order_reads import view
from kalshi_router.service.orders import ORDERS_OFF
from kalshi_router.service.protocol import (
    SHUTTING_DOWN,
    Codec,
    MessageId,
    StreamAck,
    StreamError,
    StreamOutcome,
    StreamRequest,
    StreamRequestId,
    Verb,
    item_error,
)


async def stream(request: web.Request) -> web.StreamResponse:
    """Pipelined intents: each request is acked with its key at once, its outcome follows."""
    service = request.app[SERVICE]
    if service.draining:
        return error_response(request, 503, "shutting down: not taking new streams")
    client = caller(request)
    if isinstance(client, web.Response):
        return client
    cancel_after = _cancel_on_disconnect(request, service, client)
    if isinstance(cancel_after, web.Response):
        return cancel_after
    codec = Codec(binary=request.query.get("format") == "msgpack")
    socket = _Socket(service.settings, cancel_after)
    await socket.prepare(request)
    outbox: Outbox = asyncio.Queue()
    service.streams[socket] = outbox
    # Every named client's streams are counted: any of them coming back stops a timer.
    dead_man = service.dead_man if is_named(client) else None
    if dead_man is not None:
        dead_man.connected(client, cancel_after)
    if request.query.get("state") == "1":
        service.watchers.add(outbox)
        outbox.put_nowait(service.state())
    forwarding = service.orders if request.query.get("orders") == "1" else None
    if forwarding is not None:
        forwarding.attach(client, outbox)
    writer = asyncio.create_task(_write(socket, codec, outbox, service.book.durable))
    try:
        async for message in socket:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                first = _on_message(service, codec, message.data, outbox, client)
                if first is not None:
                    # A state change, or a client's first create waiting for its order group:
                    # nothing more of this client's is read until it is done, so what it sent
                    # next is taken after it, in order.
                    await first
    finally:
        if dead_man is not None:
            dead_man.disconnected(client)
        service.streams.pop(socket, None)
        service.watchers.discard(outbox)
        if forwarding is not None:
            forwarding.detach(client, outbox)
        outbox.put_nowait(None)
        await writer
    return socket


def _cancel_on_disconnect(
    request: web.Request, service: Service, client: str
) -> float | web.Response | None:
    """The seconds of ``?cancel_on_disconnect=`` (None: not asked), or the refusal."""
    raw = request.query.get(PARAMETER)
    if raw is None:
        return None
    try:
        seconds = parse_seconds(raw)
    except ValueError as exc:
        return error_response(request, 400, str(exc), PARAMETER)
    if service.dead_man is None:
        message = f"{PARAMETER} needs the service to follow orders, and {ORDERS_OFF}"
        return error_response(request, 409, message, "orders.track")
    if not is_named(client):
        # Its key would be this connection: it could never come back in time to keep its
        # orders, and its view of them ends with the stream.
        message = f"{PARAMETER} needs a named client: send {HEADER}"
        return error_response(request, 400, message, HEADER)
    return seconds


class _Socket(web.WebSocketResponse):
    """The stream's socket: pinged when quiet (at least every ``cancel_after`` s for a client
    that asked to have its orders cancelled when it goes: a silent peer is found in time); a
    frame over the size limit closes it with 1009 and the reason (aiohttp sends that code with
    no reason; the frame cannot be answered on its own, as the rest of it was never read)."""

    def __init__(self, settings: ServiceConfig, cancel_after: float | None = None) -> None:
        heartbeat = settings.stream_heartbeat_s
        if cancel_after is not None:
            heartbeat = min(heartbeat, cancel_after)
        super().__init__(heartbeat=heartbeat, max_msg_size=settings.max_body_bytes)
        self._too_big = f"frame larger than {settings.max_body_bytes} bytes".encode()

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not message:
            message = self._too_big
        return await super().close(code=code, message=message, drain=drain)


def _on_message(
    service: Service, codec: Codec, data: bytes | str, outbox: Outbox, client: str
) -> Awaitable[None] | None:
    """Answer one frame; what must finish before the next frame is read, if anything."""
    try:
        request = codec.decode(data, StreamRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        problem = item_error(exc)
        outbox.put_nowait(StreamError(_request_id(codec, data), problem.field, problem.message))
        return None
    verb = request.type
    if verb == "view":
        # A read: answered while draining too (the last updates still come).
        outbox.put_nowait(view(service, codec, request.id, request.item, client))
        return None
    if verb == "trading_state":
        # The desk's control, taken while draining too.
        return stream_trading_state(service, codec, request, outbox, client)
    if service.draining:
        outbox.put_nowait(StreamError(request.id, "service", SHUTTING_DOWN))
        return None
    if service.needs_group(verb, client):
        return _after_group(service, codec, request, outbox, client, verb)
    _admit(service, codec, request, outbox, client, verb)
    return None


async def _after_group(
    service: Service,
    codec: Codec,
    request: StreamRequest,
    outbox: Outbox,
    client: str,
    verb: Verb,
) -> None:
    await service.make_group(client)
    _admit(service, codec, request, outbox, client, verb)


def _admit(
    service: Service,
    codec: Codec,
    request: StreamRequest,
    outbox: Outbox,
    client: str,
    verb: Verb,
) -> None:
    try:
        key, future = admit(service, verb, request.item, codec, request.deadline_s, client)
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
