"""The desk's calls to a running service over HTTP (``POST /v1/kill``, ``GET``/``PUT
/v1/trading_state``), for ``RouterClient.kill`` and the CLI; and where the service that a
config's ``[service]`` describes listens, as ``open_router`` and the CLI find it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import msgspec

from kalshi_router.config import ServiceConfig
from kalshi_router.errors import ConfigError, ServiceError
from kalshi_router.risk.config import TradingState, check_state
from kalshi_router.risk.kill import KillReport
from kalshi_router.service.protocol import (
    ErrorBody,
    KillRequest,
    TradingStateBody,
    TradingStateReply,
)
from kalshi_router.service.token import read_token

__all__ = ["DeskCalls", "ServiceAt", "service_at", "token_source"]

T = TypeVar("T")
_encode = msgspec.json.Encoder().encode
# Beyond the kill's own timeout: its last reconciliation, and a loaded service's answer.
_KILL_MARGIN_S = 60.0
_CALL_TIMEOUT_S = 30.0
_MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class ServiceAt:
    """Where a service listens: its base URL (whose host is not used on a Unix socket)."""

    url: str
    unix_socket: str | None = None

    @property
    def where(self) -> str:
        return self.unix_socket or self.url

    def session(self) -> aiohttp.ClientSession:
        connector = aiohttp.UnixConnector(self.unix_socket) if self.unix_socket else None
        return aiohttp.ClientSession(connector=connector)


def service_at(settings: ServiceConfig) -> ServiceAt:
    """The service ``settings`` describe: its Unix socket, or its host and port."""
    if settings.unix_socket:
        return ServiceAt("http://localhost", settings.unix_socket)
    if settings.port == 0:
        raise ConfigError(
            "service.port: 0 lets the service pick a port; clients need the port it announced"
        )
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return ServiceAt(f"http://{host}:{settings.port}")


def token_source(settings: ServiceConfig) -> Callable[[], str | None]:
    """Read again at every connection: a restarted service may have written a new token."""

    def token() -> str | None:
        return read_token(settings)

    return token


class DeskCalls:
    """The desk's routes of the service at ``at``, on ``session``; ``headers`` gives the
    headers of each call (the bearer token, the client's name)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        at: ServiceAt,
        headers: Callable[[], Mapping[str, str]],
    ) -> None:
        self._session = session
        self._at = at
        self._headers = headers

    async def kill(
        self, reason: str, *, subaccount: int | None = None, timeout_s: float = 30.0
    ) -> KillReport:
        """The service's kill switch; its report once done (``done`` False: it gave up with
        orders still listed resting). ``ConfigError`` naming an argument the service refused;
        ``ServiceError`` when it cannot be reached or could not run it."""
        if not isinstance(reason, str) or not 0 < len(reason) <= _MAX_REASON:
            raise ConfigError(f"reason: a str of 1 to {_MAX_REASON} characters")
        body = KillRequest(reason=reason, subaccount=subaccount, timeout_s=timeout_s)
        status, data = await self._call("POST", "/v1/kill", body, timeout_s + _KILL_MARGIN_S)
        if status not in (200, 504):
            raise _refused(status, data, self._at.where)
        return _decoded(data, KillReport, self._at.where)

    async def trading_state(self) -> TradingState:
        status, data = await self._call("GET", "/v1/trading_state", None, _CALL_TIMEOUT_S)
        if status != 200:
            raise _refused(status, data, self._at.where)
        return _decoded(data, TradingStateReply, self._at.where).state

    async def set_trading_state(
        self, state: TradingState, *, resume: bool = False
    ) -> TradingStateReply:
        """The state from now on (the reply's ``was``: before); from ``halted`` to trading the
        service reconciles the orders it follows first."""
        body = TradingStateBody(state=check_state(state, "state"), resume=resume)
        status, data = await self._call("PUT", "/v1/trading_state", body, _CALL_TIMEOUT_S)
        if status != 200:
            raise _refused(status, data, self._at.where)
        return _decoded(data, TradingStateReply, self._at.where)

    async def _call(
        self, method: str, path: str, body: object, timeout_s: float
    ) -> tuple[int, bytes]:
        headers = {**self._headers(), "Content-Type": "application/json"}
        data = b"" if body is None else _encode(body)
        try:
            async with self._session.request(
                method,
                f"{self._at.url}{path}",
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise ServiceError(f"cannot reach the service at {self._at.where}: {reason}") from None


def _decoded(data: bytes, kind: type[T], where: str) -> T:
    try:
        return msgspec.json.decode(data, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ServiceError(f"undecodable answer from the service at {where}: {exc}") from None


def _refused(status: int, data: bytes, where: str) -> Exception:
    if status == 401:
        return ServiceError(f"the service at {where} refused the token (401)")
    try:
        error = msgspec.json.decode(data, type=ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ServiceError(f"the service at {where} answered {status}")
    if status == 400 and error.field:
        return ConfigError(f"{error.field}: {error.error}")
    field = f" ({error.field})" if error.field else ""
    return ServiceError(f"the service at {where} answered {status}{field}: {error.error}")
