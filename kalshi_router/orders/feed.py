"""The router's WebSocket connection for its orders: signed, subscribed to the order channels,
and reconnected (with a fresh signature) whenever it drops.

The order channels carry no ``seq``, so nothing shows what a dropped connection missed: after
every reconnect the feed resubscribes and calls ``on_reconnect``, where the tracker reconciles
through REST. A frame that does not fit its schema is treated the same way (the update it
carried is lost either way). Refused credentials end the feed instead: every later handshake
would be refused the same way.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from types import TracebackType
from typing import TypeAlias
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from kalshi_router.answers import Backoff
from kalshi_router.errors import ConfigError, CredentialsRefused, WireError
from kalshi_router.wire.hosts import check_transport_security, describe_exchange
from kalshi_router.wire.signer import Signer
from kalshi_router.wire.ws_models import (
    Channel,
    ErrorFrame,
    FillFrame,
    MarketPositionFrame,
    OrderGroupUpdatesFrame,
    Subscribe,
    SubscribedFrame,
    SubscribeParams,
    UserOrderFrame,
    decode_frame,
    encode_command,
)
from kalshi_router.wire.ws_sign import WS_PATH, handshake_headers

__all__ = ["CHANNELS", "OrderFeed", "OrderFrame", "ws_url"]

log = logging.getLogger(__name__)

OrderFrame: TypeAlias = UserOrderFrame | FillFrame | MarketPositionFrame | OrderGroupUpdatesFrame
CHANNELS: tuple[Channel, ...] = (
    "user_orders",
    "fill",
    "market_positions",
    "order_group_updates",
)

_REST_PATH = "/trade-api/v2"
# Kalshi's recommended REST hosts have their own WebSocket hosts (kalshi_api.md, section 2);
# the legacy hosts and the simulator serve both on one host.
_WS_HOSTS = {
    "external-api.kalshi.com": "external-api-ws.kalshi.com",
    "external-api.demo.kalshi.co": "external-api-ws.demo.kalshi.co",
}
_WS_SCHEMES = {"https": "wss", "http": "ws"}


def ws_url(base_url: str) -> str:
    """The WebSocket URL of the exchange whose REST root is ``base_url``.

    ``https://external-api.kalshi.com/trade-api/v2`` gives
    ``wss://external-api-ws.kalshi.com/trade-api/ws/v2``; ``http://127.0.0.1:PORT/trade-api/v2``
    (the simulator) gives ``ws://127.0.0.1:PORT/trade-api/ws/v2``.
    """
    url = urlsplit(base_url)
    scheme = _WS_SCHEMES.get(url.scheme)
    path = url.path.rstrip("/")
    if scheme is None or not path.endswith(_REST_PATH) or url.query or url.fragment:
        raise ConfigError(
            f"exchange.base_url: expected http(s)://HOST{_REST_PATH} to derive the WebSocket "
            f"URL from, got {base_url!r}"
        )
    host = url.hostname or ""
    netloc = url.netloc
    if host in _WS_HOSTS:
        netloc = _WS_HOSTS[host] + (f":{url.port}" if url.port else "")
    return urlunsplit((scheme, netloc, path[: -len(_REST_PATH)] + WS_PATH, "", ""))


class _Dropped(Exception):
    """The connection is no longer worth reading: reconnect."""


# Error codes that answer a subscribe but may not the next time (kalshi_ws.md, section 9):
# unable to process, command timeout, too many requests.
_TRANSIENT = frozenset({1, 18, 27})


def _refused(frame: ErrorFrame) -> None:
    """Our subscribe was answered with an error: every later connection would subscribe in
    vain unless the error is transient, and the feed would wait for updates that never come."""
    said = f"error {frame.msg.code}: {frame.msg.msg}"
    if frame.msg.code in _TRANSIENT:
        raise _Dropped(f"subscribe refused ({said})")
    raise WireError(f"the exchange refused to subscribe to the order channels ({said})")


class OrderFeed:
    """Order updates from the exchange's WebSocket, handed to ``on_frame`` as they come.

    ``async with OrderFeed(...)`` returns once the first connection is subscribed to
    :data:`CHANNELS` (it raises :class:`CredentialsRefused` if the handshake is refused). After
    each drop the feed reconnects with capped exponential backoff and full jitter, resubscribes
    and then calls ``on_reconnect``. ``aclose()`` ends the connection and its task.
    """

    def __init__(
        self,
        base_url: str,
        signer: Signer,
        on_frame: Callable[[OrderFrame], None],
        *,
        on_reconnect: Callable[[], None],
        verify_tls: bool = True,
        backoff_base_s: float = 0.1,
        backoff_cap_s: float = 10.0,
        heartbeat_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        check_transport_security(base_url, verify_tls, prefix="exchange.")
        self._url = ws_url(base_url)
        self._signer = signer
        self._on_frame = on_frame
        self._on_reconnect = on_reconnect
        self._verify_tls = verify_tls
        jitter = rng or random.Random()  # noqa: S311 - reconnect jitter, not a secret
        self._backoff = Backoff(backoff_base_s, backoff_cap_s, jitter)
        self._heartbeat_s = heartbeat_s
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.connections = 0
        """How many connections have been subscribed so far (reconnects are the rest)."""

    @property
    def url(self) -> str:
        return self._url

    async def start(self) -> None:
        """Connect and subscribe; return once subscribed, or raise why the feed ended."""
        if self._task is not None:
            raise RuntimeError("OrderFeed already started")
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._verify_tls))
        self._task = asyncio.create_task(self._run(), name="order-feed")
        subscribed = asyncio.create_task(self._subscribed.wait())
        try:
            await asyncio.wait({self._task, subscribed}, return_when=asyncio.FIRST_COMPLETED)
            if self._task.done():
                self._task.result()
        except BaseException:
            # Refused, or the caller gave up waiting: nothing may outlive start().
            await self.aclose()
            raise
        finally:
            subscribed.cancel()
            await asyncio.gather(subscribed, return_exceptions=True)

    async def wait(self) -> None:
        """Return when the feed has been closed; raise the error that ended it, if one did."""
        if self._task is None:
            raise RuntimeError("OrderFeed not started")
        await asyncio.wait({self._task})
        if not self._task.cancelled():
            self._task.result()

    async def aclose(self) -> None:
        """End the connection and the feed's task, and wait for both."""
        if self._task is not None:
            self._task.cancel()
            # The error that ended the feed was logged; ``wait()`` is where it is raised.
            await asyncio.gather(self._task, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> OrderFeed:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._connection()
            except CredentialsRefused:
                log.error("order feed: credentials refused by %s; the feed ends", self._url)
                raise
            except (TimeoutError, _Dropped, aiohttp.ClientError, OSError) as exc:
                # A subscribed connection that then dropped starts the backoff anew.
                attempt = 1 if self._subscribed.is_set() else attempt + 1
                self._subscribed.clear()
                delay = self._backoff.delay(attempt)
                reason = str(exc) or type(exc).__name__
                log.warning("order feed: %s; reconnecting in %.2fs", reason, delay)
                await asyncio.sleep(delay)
            except Exception:
                log.exception("order feed: ended by an error")
                raise

    async def _connection(self) -> None:
        """One connection: handshake, subscribe, read until it drops."""
        assert self._session is not None
        try:
            ws = await self._session.ws_connect(
                self._url, headers=handshake_headers(self._signer), heartbeat=self._heartbeat_s
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                raise CredentialsRefused(
                    exc.status, f"GET {WS_PATH} (WebSocket)", describe_exchange(self._url)
                ) from None
            raise
        async with ws:
            subscribe = Subscribe(id=1, params=SubscribeParams(channels=list(CHANNELS)))
            await ws.send_str(encode_command(subscribe).decode())
            pending: set[str] = set(CHANNELS)
            async for message in ws:
                if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    break
                try:
                    frame = decode_frame(message.data)
                except WireError as exc:
                    raise _Dropped(f"unreadable frame ({exc})") from None
                if isinstance(
                    frame, UserOrderFrame | FillFrame | MarketPositionFrame | OrderGroupUpdatesFrame
                ):
                    self._on_frame(frame)
                elif isinstance(frame, SubscribedFrame):
                    pending.discard(frame.msg.channel)
                    if not pending and not self._subscribed.is_set():
                        self._subscribed.set()
                        self.connections += 1
                        if self.connections > 1:
                            self._on_reconnect()
                elif isinstance(frame, ErrorFrame):
                    if frame.terminal:
                        raise _Dropped(f"subscription ended (error {frame.msg.code})")
                    if frame.id == subscribe.id and pending:
                        _refused(frame)
                    log.warning("order feed: error frame %s", frame.msg.msg)
                else:
                    log.debug("order feed: skipped a %r frame", type(frame).__name__)
        raise _Dropped(f"connection closed (code {ws.close_code})")
