"""One WebSocket to the service, for ``RouterClient``: opened with the state frame the service
sends first, a writer that sends the client's frames in order, a reader that hands each reply
over. A link that ends is not reopened: the client opens a new one (``RouterClient._supervise``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import aiohttp
import msgspec

from kalshi_router.errors import ServiceError
from kalshi_router.service.client.holding import Held
from kalshi_router.service.protocol import ErrorBody, StreamFrame, StreamState

log = logging.getLogger("kalshi_router.client")
_replies = msgspec.json.Decoder(StreamFrame)
_refusal = msgspec.json.Decoder(ErrorBody)
# Opening a stream (TCP, handshake, the first state frame): a service that takes longer than
# this is treated as down, and tried again.
OPEN_TIMEOUT_S = 10.0
_HEARTBEAT_S = 20.0


class Link:
    """An open stream. ``ended`` finishes with why it closed, and whether that is fatal (a
    reply this client cannot read: nothing more from that service can be trusted)."""

    def __init__(
        self,
        socket: aiohttp.ClientWebSocketResponse,
        state: StreamState,
        on_reply: Callable[[StreamFrame], None],
    ) -> None:
        self.socket = socket
        self.state = state
        self.draining = False
        """The service said it is shutting down: nothing more is sent on this stream."""
        self.ready = True
        """False while the client loads its orders' view on it: intents wait until then."""
        self._on_reply = on_reply
        self._outbox: asyncio.Queue[tuple[Held | None, str]] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write(), name="kalshi-router-client-writer")
        self.ended = asyncio.create_task(self._read(), name="kalshi-router-client-reader")

    @property
    def run(self) -> str:
        return self.state.run

    @property
    def usable(self) -> bool:
        return self.ready and not self.draining and not self.socket.closed and not self.ended.done()

    def send(self, held: Held | None, frame: str) -> None:
        """``held``: the intent ``frame`` carries (None: a read, such as a view request)."""
        self._outbox.put_nowait((held, frame))

    def unwritten(self) -> list[Held]:
        """Once the link has stopped: what it never handed to the socket (certainly unsent)."""
        left = []
        while not self._outbox.empty():
            held = self._outbox.get_nowait()[0]
            if held is not None:
                left.append(held)
        return left

    async def stop(self) -> None:
        """Close the stream and wait for its tasks (safe to call more than once)."""
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)
        await self.socket.close()
        await asyncio.gather(self.ended, return_exceptions=True)

    async def _write(self) -> None:
        while True:
            _, frame = await self._outbox.get()
            try:
                await self.socket.send_str(frame)
            except (ConnectionError, aiohttp.ClientError):
                # The stream is going: the reader sees it end. This frame may have gone out,
                # the ones after it have not.
                return

    async def _read(self) -> tuple[str, bool]:
        try:
            async for message in self.socket:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._on_reply(_replies.decode(message.data))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await self.socket.close()
            return f"undecodable reply from the service: {exc}", True
        code = self.socket.close_code
        return f"the stream closed ({'no close code' if code is None else code})", False


async def open_link(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    on_reply: Callable[[StreamFrame], None],
    where: str,
    query: Mapping[str, str] | None = None,
) -> Link:
    """Open ``url``'s stream and read its first frame, the state; ``ServiceError`` if either
    fails."""
    stream_url = f"{url}/v1/stream"
    query = query or {"state": "1", "orders": "1"}
    try:
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            socket = await session.ws_connect(
                stream_url, params=query, headers=headers, heartbeat=_HEARTBEAT_S
            )
    except aiohttp.WSServerHandshakeError as exc:
        hint = " (check the token)" if exc.status == 401 else ""
        if exc.status in (400, 409):
            hint = await _why_refused(session, stream_url, query, headers)
        raise ServiceError(
            f"the service at {where} refused the stream: {exc.status}{hint}"
        ) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        raise ServiceError(f"cannot open the stream at {where}: {reason}") from None
    try:
        try:
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                first = await socket.receive()
        except TimeoutError:
            raise ServiceError(f"the service at {where} sent no state frame") from None
        if first.type != aiohttp.WSMsgType.TEXT:
            raise ServiceError(f"the service at {where} closed the stream at once")
        try:
            state = _replies.decode(first.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ServiceError(f"undecodable reply from the service at {where}: {exc}") from None
        if not isinstance(state, StreamState):
            raise ServiceError(f"the service at {where} sent no state frame first")
    except BaseException:
        # Refused, cancelled or timed out: no socket may outlive this call.
        await socket.close()
        raise
    log.debug("stream open to %s (service run %s)", where, state.run)
    return Link(socket, state, on_reply)


async def _why_refused(
    session: aiohttp.ClientSession, url: str, query: Mapping[str, str], headers: Mapping[str, str]
) -> str:
    """The service's reason for refusing a handshake (a bad option, a setting it lacks): the
    handshake's answer body is not readable through ``ws_connect``, so the same request is made
    again as a plain GET, which the service refuses the same way before any upgrade."""
    try:
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            async with session.get(url, params=query, headers=headers) as response:
                body = _refusal.decode(await response.read())
    except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError, msgspec.ValidationError):
        return ""
    return f" ({body.field}: {body.error})" if body.field else f" ({body.error})"
