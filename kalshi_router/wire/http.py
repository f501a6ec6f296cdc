"""Signed HTTP to Kalshi over one pooled aiohttp session.

Each request is signed just before it goes out, with a fresh timestamp, over the full path from
the root (``/trade-api/v2/...``) without the query; or, for the requests named in ``presign``,
takes a signature a thread made at most ``presign_max_age_ms`` before (``wire.presign``).

Transport failures are split in two, because the router's retry rule depends on it:
``sent=False`` means the request certainly never reached the exchange (connection refused),
``sent=True`` means it may have been processed.

TLS is verified, and plain HTTP refused, for every host but loopback (``wire.hosts``); redirects
are not followed (a signed request goes where it was addressed, or nowhere); every answer's
``Date`` header feeds the clock-skew estimate (``wire.clock``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import NamedTuple, Protocol, Self
from urllib.parse import urlsplit

import aiohttp

from kalshi_router.errors import TransportError
from kalshi_router.wire.clock import ClockSkew
from kalshi_router.wire.hosts import check_transport_security
from kalshi_router.wire.presign import MAX_AGE_MS, SignatureFigures, SignaturePool
from kalshi_router.wire.signer import Signer

_JSON = "application/json"


class Response(NamedTuple):
    status: int
    body: bytes
    date: str | None
    """The server's ``Date`` header, for clock-skew checks."""


class Transport(Protocol):
    """What :class:`~kalshi_router.wire.client.ExchangeClient` needs from HTTP."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Response: ...

    async def close(self) -> None: ...


class HttpTransport:
    """Owns its aiohttp session, made on first use inside the running loop.

    Raises :class:`~kalshi_router.errors.ConfigError` for ``verify_tls=False`` or an ``http``
    URL unless the host is loopback (the simulator). ``presign``: (method, path below the base
    URL) of the requests whose signatures a thread makes ahead; it runs from the first request
    to ``close``.
    """

    def __init__(
        self,
        base_url: str,
        signer: Signer,
        *,
        timeout_s: float = 10.0,
        max_connections: int = 8,
        verify_tls: bool = True,
        max_clock_skew_s: float = 5.0,
        wall_clock_s: Callable[[], float] = time.time,
        presign: Iterable[tuple[str, str]] = (),
        presign_max_age_ms: int = MAX_AGE_MS,
    ) -> None:
        check_transport_security(base_url, verify_tls)
        self._base_url = base_url.rstrip("/")
        self._root_path = urlsplit(self._base_url).path
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._verify_tls = verify_tls
        self._session: aiohttp.ClientSession | None = None
        self._skew = ClockSkew(max_clock_skew_s)
        self._wall_clock_s = wall_clock_s
        requests = [(method, self._root_path + path) for method, path in presign]
        self._pool = (
            SignaturePool(signer, requests, max_age_ms=presign_max_age_ms) if requests else None
        )
        self._sign = self._pool.headers if self._pool is not None else signer.headers

    def __repr__(self) -> str:
        return f"HttpTransport(base_url={self._base_url!r}, verify_tls={self._verify_tls})"

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def clock_skew_s(self) -> float | None:
        """The exchange's clock minus ours, in seconds, from recent ``Date`` headers (None
        before the first answer)."""
        return self._skew.estimate_s

    @property
    def signatures(self) -> SignatureFigures | None:
        """Pre-signed requests sent with a signature made ahead or signed inline (None: no
        request is pre-signed)."""
        return self._pool.figures if self._pool is not None else None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._verify_tls)
            # No cookie jar: the API authenticates by signature, so the jar's work on every
            # request and answer buys nothing.
            session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, cookie_jar=aiohttp.DummyCookieJar()
            )
            # aiohttp resends an idempotent request (DELETE included) once, by itself, when the
            # connection drops: a batch cancel processed before the drop would be sent again and
            # the second answer ("not resting") taken for the only one. The dispatcher must see
            # every drop to classify it, so no silent resends. aiohttp has no public switch; its
            # own test client clears the same flag (tests/integration pins the behaviour).
            if hasattr(session, "_retry_connection"):
                session._retry_connection = False
            self._session = session
            if self._pool is not None:
                self._pool.start()
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one signed request; raise :class:`TransportError` when no answer was read."""
        headers = self._sign(method, self._root_path + path)
        if body is not None:
            headers["Content-Type"] = _JSON
        session = self._get_session()
        sent = self._wall_clock_s()
        try:
            async with session.request(
                method,
                self._base_url + path,
                data=body,
                params=params,
                headers=headers,
                allow_redirects=False,
            ) as response:
                date = response.headers.get("Date")
                self._skew.observe(date, sent, self._wall_clock_s())
                payload = await response.read()
                return Response(response.status, payload, date)
        except aiohttp.ClientSSLError as exc:
            # A connector error too (nothing was sent), named apart: no retry will mend it.
            raise TransportError(f"{method} {path}: TLS failed: {exc}", sent=False) from None
        except aiohttp.ClientConnectorError as exc:
            raise TransportError(f"{method} {path}: cannot connect: {exc}", sent=False) from None
        except TimeoutError:
            raise TransportError(
                f"{method} {path}: no answer in time ({self._timeout.total:g} s)", sent=True
            ) from None
        except aiohttp.ClientError as exc:
            # Reset, disconnect, truncated body: the request may have been processed.
            kind = type(exc).__name__
            raise TransportError(f"{method} {path}: {kind}: {exc}", sent=True) from None

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._session is not None:
            await self._session.close()
            # Give the connector's transports a turn to close before the loop may go away.
            await asyncio.sleep(0)
        self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
