"""The desk's routes: the kill switch and the trading state over HTTP, and a stream's
``trading_state`` request (see :mod:`kalshi_router.service.desk`).

    POST /v1/kill              {"reason"?, "subaccount"?, "timeout_s"?} -> KillReport, once done
    GET  /v1/trading_state     -> {"state": "active"}
    PUT  /v1/trading_state     {"state": "reducing", "resume"?: false} -> {"state", "was"}

``POST /v1/kill`` holds the request open until the kill switch has its report (at most its
``timeout_s``, 30 s by default, plus a last reconciliation): 200 when every resting order is
confirmed cancelled, 504 with the same report when it gave up with orders still listed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TypeVar

import msgspec
from aiohttp import hdrs, web

from kalshi_router.client_names import HEADER
from kalshi_router.errors import ConfigError, KalshiRouterError
from kalshi_router.service.context import (
    SERVICE,
    Outbox,
    Service,
    caller,
    codec_for,
    error_response,
    json_response,
)
from kalshi_router.service.encoding import decode_body
from kalshi_router.service.protocol import (
    Codec,
    KillRequest,
    StreamAck,
    StreamError,
    StreamRequest,
    TradingStateBody,
    TradingStateReply,
    item_error,
)

__all__ = ["add_desk_routes", "stream_trading_state"]

log = logging.getLogger("kalshi_router.service")
T = TypeVar("T")


def add_desk_routes(app: web.Application) -> None:
    app.router.add_post("/v1/kill", kill)
    app.router.add_get("/v1/trading_state", get_trading_state)
    app.router.add_put("/v1/trading_state", put_trading_state)
    app.cleanup_ctx.append(_kills_finish)


async def _kills_finish(app: web.Application) -> AsyncIterator[None]:
    """A kill a signal started is not cut short by the app stopping: its report is logged."""
    yield
    await app[SERVICE].desk.finished()


async def kill(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    who = _who(request)
    if isinstance(who, web.Response):
        return who
    body = await _body(request, KillRequest, empty=KillRequest())
    if isinstance(body, web.Response):
        return body
    reason = body.reason if body.reason is not None else f"POST /v1/kill by {who}"
    if not reason.isprintable():
        return error_response(request, 400, "printable characters only (no line breaks)", "reason")
    log.warning("POST /v1/kill by %s: %s", who, reason)
    try:
        report = await service.desk.kill(
            reason, subaccount=body.subaccount, timeout_s=body.timeout_s
        )
    except KalshiRouterError as exc:
        return error_response(request, 503, f"the kill switch could not run: {exc}")
    return json_response(200 if report.done else 504, report, codec_for(request))


async def get_trading_state(request: web.Request) -> web.Response:
    state = request.app[SERVICE].desk.trading_state
    return json_response(200, TradingStateReply(state=state), codec_for(request))


async def put_trading_state(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    who = _who(request)
    if isinstance(who, web.Response):
        return who
    body = await _body(request, TradingStateBody)
    if isinstance(body, web.Response):
        return body
    log.info("PUT /v1/trading_state by %s: %s", who, body.state)
    try:
        was = await service.desk.set_state(body.state, resume=body.resume)
    except KalshiRouterError as exc:
        # Reconciling before a resume failed: the state stays what it was (halted, after a kill).
        return error_response(request, 503, f"could not resume: {exc}")
    reply = TradingStateReply(state=service.desk.trading_state, was=was)
    return json_response(200, reply, codec_for(request))


async def stream_trading_state(
    service: Service, codec: Codec, request: StreamRequest, outbox: Outbox, client: str
) -> None:
    """A stream's ``trading_state`` request, answered with an ack (``key``: the state now) or
    an error naming the field. The stream reads nothing more of its client until then, so
    what the client sends after it is taken in the new state."""
    try:
        body = codec.decode(request.item, TradingStateBody)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        problem = item_error(exc)
        outbox.put_nowait(StreamError(request.id, problem.field, problem.message))
        return
    log.info("trading_state from client %s: %s", service.names.label(client), body.state)
    try:
        await service.desk.set_state(body.state, resume=body.resume)
    except ConfigError as exc:
        outbox.put_nowait(StreamError(request.id, "state", str(exc)))
        return
    except KalshiRouterError as exc:
        outbox.put_nowait(StreamError(request.id, "service", f"could not resume: {exc}"))
        return
    outbox.put_nowait(StreamAck(request.id, service.desk.trading_state))
    if outbox in service.watchers:
        # At once, rather than within 250 ms: the client shows the new state from this frame.
        outbox.put_nowait(service.state())


def _who(request: web.Request) -> str | web.Response:
    """Who asked, for the log: the client's name, or ``an unnamed client``."""
    found = caller(request)
    if isinstance(found, web.Response):
        return found
    name = request.headers.get(HEADER)
    return "an unnamed client" if name is None else f"client {name}"


async def _body(request: web.Request, kind: type[T], *, empty: T | None = None) -> T | web.Response:
    """The request's body as ``kind`` (``empty`` when there is none and that is allowed); else
    the 400 naming the field."""
    settings = request.app[SERVICE].settings
    data = decode_body(
        await request.read(),
        request.headers.get(hdrs.CONTENT_ENCODING, ""),
        settings.max_body_bytes,
    )
    if empty is not None and not data.strip():
        return empty
    try:
        return codec_for(request).decode(data, kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        problem = item_error(exc)
        return error_response(request, 400, f"malformed body: {problem.message}", problem.field)
