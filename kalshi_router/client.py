"""``RouterClient``: the service's client, with the embedded router's submit/place/cancel API.

    async with RouterClient("http://127.0.0.1:8088", token=token) as router:
        outcome = await router.place(OrderIntent.bid("KX-1", "0.56", 10))

Intents are pipelined over one WebSocket: ``submit`` returns a future at once and the service's
outcome message settles it. ``open_router`` picks the embedded router or this client from the
configuration, so a bot can switch between them without code changes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

import aiohttp
import msgspec

from kalshi_router.awaiting import all_of
from kalshi_router.config import Config
from kalshi_router.errors import (
    ConfigError,
    IntentError,
    KalshiRouterError,
    QueueFull,
    RouterClosed,
)
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.outcome import AmendOutcome, CancelOutcome, OrderOutcome
from kalshi_router.router import OrderRouter
from kalshi_router.service.protocol import (
    StreamAck,
    StreamOutcome,
    StreamReply,
    Verb,
)
from kalshi_router.service.token import read_token
from kalshi_router.stats import RouterStats
from kalshi_router.wire.signer import Signer

log = logging.getLogger("kalshi_router.client")
_encoder = msgspec.json.Encoder()
_replies = msgspec.json.Decoder(StreamReply)
_stats = msgspec.json.Decoder(RouterStats)


class ServiceError(KalshiRouterError):
    """The service refused a request or went away."""


class RouterClient:
    """A connection to ``kalshi-router serve`` over TCP (with its bearer token) or a Unix
    socket (``unix_socket=path``, with any ``url`` host)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        unix_socket: str | None = None,
        drain_timeout: float = 10.0,
    ) -> None:
        self._url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._unix_socket = unix_socket
        self._drain_timeout = drain_timeout
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        # Frames being written: owned here so that none is collected mid-send or left
        # pending at close.
        self._sending: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._closed = False

    @property
    def url(self) -> str:
        """The service's base URL (its host is not used on a Unix socket)."""
        return self._url

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
        if self._session is not None:
            raise ServiceError("already connected")
        connector = aiohttp.UnixConnector(self._unix_socket) if self._unix_socket else None
        session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        where = self._unix_socket or self._url
        try:
            self._socket = await session.ws_connect(f"{self._url}/v1/stream", heartbeat=20)
        except aiohttp.WSServerHandshakeError as exc:
            await session.close()
            hint = " (check the token)" if exc.status == 401 else ""
            raise ServiceError(
                f"the service at {where} refused the stream: {exc.status}{hint}"
            ) from None
        except aiohttp.ClientError as exc:
            await session.close()
            raise ServiceError(f"cannot open the stream at {where}: {exc}") from None
        except BaseException:
            # Cancelled or timed out while connecting: no session may outlive this call.
            await session.close()
            raise
        self._session = session
        self._reader = asyncio.create_task(self._read(self._socket))

    # The embedded router's API.

    def submit(
        self, intent: OrderIntent, *, deadline_s: float | None = None
    ) -> asyncio.Future[OrderOutcome]:
        return self._send("submit", intent, deadline_s)

    async def submit_wait(
        self,
        intent: OrderIntent,
        *,
        queue_timeout: float | None = None,
        deadline_s: float | None = None,
    ) -> asyncio.Future[OrderOutcome]:
        """The embedded router's signature. ``queue_timeout`` has no effect here: the service
        answers a full queue at once, and the future fails with ``QueueFull``."""
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
        return [self.submit(intent, deadline_s=deadline_s) for intent in intents]

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
        return self._send("cancel", intent, deadline_s)

    def cancel_many(self, cancels: Iterable[CancelIntent]) -> list[asyncio.Future[CancelOutcome]]:
        return [self.cancel(cancel) for cancel in cancels]

    def amend(
        self, intent: AmendIntent, *, deadline_s: float | None = None
    ) -> asyncio.Future[AmendOutcome]:
        return self._send("amend", intent, deadline_s)

    def decrease(
        self, intent: DecreaseIntent, *, deadline_s: float | None = None
    ) -> asyncio.Future[AmendOutcome]:
        return self._send("decrease", intent, deadline_s)

    async def flush(self) -> None:
        """Wait until every intent sent on this connection has its outcome."""
        if self._waiting:
            await asyncio.wait(list(self._waiting.values()))

    async def stats(self) -> RouterStats:
        """The service's router stats (a request, unlike the embedded ``stats()``)."""
        session = self._open()[0]
        async with session.get(f"{self._url}/v1/stats") as response:
            if response.status != 200:
                raise ServiceError(f"GET /v1/stats: HTTP {response.status}")
            return _stats.decode(await response.read())

    async def aclose(self, drain_timeout: float | None = None) -> None:
        """Stop taking intents, wait up to ``drain_timeout`` (default: the constructor's) for
        the outcomes still due, as the embedded router drains, then close. What is still
        unanswered fails with ``ServiceError`` (the service settles it anyway; its outcome is
        at ``GET /v1/orders/{key}``)."""
        if self._closed:
            return
        self._closed = True
        timeout = self._drain_timeout if drain_timeout is None else drain_timeout
        if self._waiting and timeout > 0:
            await asyncio.wait(list(self._waiting.values()), timeout=timeout)
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            await self._reader
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # Plumbing.

    def _open(self) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
        if self._closed or self._session is None or self._socket is None:
            raise RouterClosed("the client is not connected")
        if self._socket.closed:
            raise ServiceError("the service closed the stream")
        return self._session, self._socket

    def _send(self, verb: Verb, intent: Any, deadline_s: float | None) -> asyncio.Future[Any]:
        socket = self._open()[1]
        message_id = next(self._ids)
        message: dict[str, Any] = {"type": verb, "id": message_id, "item": intent}
        if deadline_s is not None:
            message["deadline_s"] = deadline_s
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        # send_str only queues the frame on the transport; the task just surfaces its errors.
        sending = asyncio.create_task(socket.send_str(_encoder.encode(message).decode()))
        self._sending.add(sending)
        sending.add_done_callback(lambda done: self._sent(message_id, done))
        return future

    def _sent(self, message_id: int, done: asyncio.Task[None]) -> None:
        self._sending.discard(done)
        if not done.cancelled() and (error := done.exception()) is not None:
            self._fail(message_id, ServiceError(f"could not send: {error}"))

    def _fail(self, message_id: int, error: Exception) -> None:
        future = self._waiting.pop(message_id, None)
        if future is not None and not future.done():
            future.set_exception(error)

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        reason = "stream closed before the outcome arrived"
        try:
            async for message in socket:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                self._on_reply(_replies.decode(message.data))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # Not the protocol this client speaks: nothing more on this stream can be trusted.
            reason = f"undecodable reply from the service: {exc}"
            log.error("%s; closing the stream", reason)
            await socket.close()
        finally:
            # Whatever was not answered will not be on this connection: say so, loudly. The
            # service still settles it; GET /v1/orders/{key} has its outcome.
            for message_id in list(self._waiting):
                self._fail(message_id, ServiceError(reason))

    def _on_reply(self, reply: StreamReply) -> None:
        if isinstance(reply, StreamAck):
            return
        if not isinstance(reply.id, int):
            # Ours are ints: null means the service could not read a frame of ours at all (a
            # bug in this client); anything else is no request of this client's.
            log.error("reply to no request of ours: %r", reply)
            return
        if isinstance(reply, StreamOutcome):
            future = self._waiting.pop(reply.id, None)
            if future is not None and not future.done():
                future.set_result(reply.outcome)
            return
        error: Exception
        if reply.field == "queue":
            error = QueueFull(reply.message)
        elif reply.field in ("router", "service"):
            error = ServiceError(f"{reply.field}: {reply.message}")
        else:
            error = IntentError(reply.field, reply.message)
        self._fail(reply.id, error)


def open_router(config: Config, signer: Signer | None = None) -> OrderRouter | RouterClient:
    """The embedded router (``exchange.target = "url"``) or a client of the local service
    (``"service"``), from the same config, both used as ``async with``."""
    target = config.exchange.target
    if target == "service":
        settings = config.service
        if settings.unix_socket:
            return RouterClient("http://localhost", unix_socket=settings.unix_socket)
        if settings.port == 0:
            raise ConfigError(
                "service.port: 0 lets the service pick a port; clients need the port it announced"
            )
        token = read_token(settings)
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        return RouterClient(f"http://{host}:{settings.port}", token=token)
    if target == "url":
        if signer is None:
            credentials = config.credentials
            signer = Signer.from_env(
                credentials.key_id_env,
                credentials.private_key_env,
                credentials.private_key_path_env,
            )
        return OrderRouter.connect(config, signer)
    raise ConfigError(
        'exchange.target: "sim" runs the simulator in-process; use the demo or serve for it, '
        'or "url" / "service" here'
    )
