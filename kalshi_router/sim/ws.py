"""``GET /trade-api/ws/v2``: Kalshi's WebSocket, signed like REST, with heartbeat pings.

Per connection: a reader answering commands (and pings), an Outbox sending queued frames in
order unless a fault (``ws_faults``) says otherwise, and a pinger; engine events reach the
Outbox through an observer on the exchange, so a frame is queued in the same step as the change
that caused it. Control routes ``POST /_sim/ws/drop`` and ``POST /_sim/ws/stall`` are test
hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import WSMsgType, web

from kalshi_router.sim.auth import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, AuthError
from kalshi_router.sim.events import Event
from kalshi_router.sim.render import error_response, json_response, rejection_response
from kalshi_router.sim.state import SimState
from kalshi_router.sim.validate import SimError, decode
from kalshi_router.sim.ws_faults import Outbox
from kalshi_router.sim.ws_session import Session

WS_PATH = "/trade-api/ws/v2"
_OPEN: web.AppKey[dict[web.WebSocketResponse, Outbox]] = web.AppKey("sim_ws_open")


async def _pinger(ws: web.WebSocketResponse, outbox: Outbox, period_s: float) -> None:
    # "Kalshi sends Ping frames (0x9) every 10 seconds with body heartbeat."
    while not ws.closed:
        await asyncio.sleep(period_s)
        await outbox.gate()
        with contextlib.suppress(ConnectionError):
            await ws.ping(b"heartbeat")


def handler(state: SimState) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler for the WebSocket route of ``state``'s simulator."""

    async def handle(request: web.Request) -> web.StreamResponse:
        headers = request.headers
        try:
            user_id = state.keys.verify(
                headers.get(HEADER_KEY),
                headers.get(HEADER_TIMESTAMP),
                headers.get(HEADER_SIGNATURE),
                "GET",
                WS_PATH,
            )
        except AuthError as exc:
            # Sim assumption: the spec does not document a refused handshake; the sim answers
            # the upgrade as it answers REST, 401 in Kalshi's error shape.
            return error_response(401, "authentication_error", "authentication_error", exc.details)
        # Pongs are sent here rather than by aiohttp, so that a stall withholds them too.
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        session = Session(user_id, state.positions)
        outbox = state.ws_faults.open(ws, functools.partial(_abort, request))

        def observe(event: Event) -> None:
            for frame in session.on_event(event):
                outbox.put(frame)

        state.exchange.observe(observe)
        open_sockets = request.app[_OPEN]
        open_sockets[ws] = outbox
        tasks = [
            asyncio.create_task(outbox.run()),
            asyncio.create_task(_pinger(ws, outbox, state.config.ws_ping_interval_s)),
        ]
        try:
            async for msg in ws:
                await outbox.gate()
                if msg.type is WSMsgType.PING:
                    with contextlib.suppress(ConnectionError):
                        await ws.pong(msg.data)
                elif msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    for frame in session.command(msg.data):
                        outbox.put(frame)
        finally:
            state.exchange.forget(observe)
            open_sockets.pop(ws, None)
            outbox.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return ws

    return handle


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


async def _close_all(app: web.Application) -> None:
    # Shutdown waits for handlers; an open socket (or a stalled one) would hold it up.
    sockets = app[_OPEN]
    for ws, outbox in list(sockets.items()):
        outbox.stall(0)
        await ws.close(code=1001, message=b"server shutdown")


class StallRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``POST /_sim/ws/stall``: how long every open connection stays silent (0: no longer)."""

    stall_s: float

    def __post_init__(self) -> None:
        if not 0 <= self.stall_s <= 600:
            raise ValueError("stall_s must be between 0 and 600")


_stall_request = msgspec.json.Decoder(StallRequest)


def _control_routes(state: SimState) -> list[web.RouteDef]:
    """Test hooks: drop or stall every open connection now."""

    async def drop(request: web.Request) -> web.StreamResponse:
        return json_response({"dropped": state.ws_faults.drop_connections()})

    async def stall(request: web.Request) -> web.StreamResponse:
        try:
            body = decode(_stall_request, await request.read())
        except SimError as exc:
            return rejection_response(exc)
        return json_response({"stalled": state.ws_faults.stall_connections(body.stall_s)})

    return [web.post("/_sim/ws/drop", drop), web.post("/_sim/ws/stall", stall)]


def install(app: web.Application, state: SimState) -> None:
    """Add the WebSocket route, and its control routes, to the simulator's app."""
    app[_OPEN] = {}
    app.on_shutdown.append(_close_all)
    app.router.add_get(WS_PATH, handler(state))
    app.router.add_routes(_control_routes(state))
