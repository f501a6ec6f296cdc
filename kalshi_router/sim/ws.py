"""``GET /trade-api/ws/v2``: Kalshi's WebSocket, signed like REST, with heartbeat pings.

Per connection: a reader answering commands, a writer sending queued frames in order, and a
pinger; engine events reach the queue through an observer on the exchange, so a frame is
queued in the same step as the change that caused it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import WSMsgType, web

from kalshi_router.sim.auth import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, AuthError
from kalshi_router.sim.events import Event
from kalshi_router.sim.render import error_response
from kalshi_router.sim.state import SimState
from kalshi_router.sim.ws_schema import Frame
from kalshi_router.sim.ws_session import Session

WS_PATH = "/trade-api/ws/v2"
_OPEN: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("sim_ws_open")
_encode = msgspec.json.Encoder().encode


async def _pinger(ws: web.WebSocketResponse, period_s: float) -> None:
    # "Kalshi sends Ping frames (0x9) every 10 seconds with body heartbeat."
    while not ws.closed:
        await asyncio.sleep(period_s)
        with contextlib.suppress(ConnectionError):
            await ws.ping(b"heartbeat")


async def _writer(ws: web.WebSocketResponse, queue: asyncio.Queue[Frame]) -> None:
    while True:
        frame = await queue.get()
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(_encode(frame))


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
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        session = Session(user_id, state.positions)
        queue: asyncio.Queue[Frame] = asyncio.Queue()

        def observe(event: Event) -> None:
            for frame in session.on_event(event):
                queue.put_nowait(frame)

        state.exchange.observe(observe)
        open_sockets = request.app[_OPEN]
        open_sockets.add(ws)
        tasks = [
            asyncio.create_task(_writer(ws, queue)),
            asyncio.create_task(_pinger(ws, state.config.ws_ping_interval_s)),
        ]
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    for frame in session.command(msg.data):
                        queue.put_nowait(frame)
        finally:
            state.exchange.forget(observe)
            open_sockets.discard(ws)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return ws

    return handle


async def _close_all(app: web.Application) -> None:
    # Shutdown waits for handlers; an open socket would hold it up.
    sockets = app[_OPEN]
    for ws in list(sockets):
        await ws.close(code=1001, message=b"server shutdown")


def install(app: web.Application, state: SimState) -> None:
    """Add the WebSocket route to the simulator's app."""
    app[_OPEN] = set[web.WebSocketResponse]()
    app.on_shutdown.append(_close_all)
    app.router.add_get(WS_PATH, handler(state))
