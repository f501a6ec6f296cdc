"""The intake's security: a token on every TCP bind, compared in constant time, never logged,
refused without a hint; Unix sockets and token files created 0600 whatever the umask."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp import web

from kalshi_router.config import ServiceConfig
from kalshi_router.errors import ConfigError
from kalshi_router.service import Metrics, build_service_app
from kalshi_router.service.serve import _listen, check_bind
from kalshi_router.service.token import published, resolve_token
from kalshi_router.sim import SimConfig
from tests.integration.conftest import running_sim
from tests.service.conftest import AUTH, TOKEN, Running, resting, start_router

# --- a token on every TCP bind -----------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "0.0.0.0", "192.0.2.7"])
def test_a_configured_token_is_used_on_any_tcp_bind(host: str, tmp_path: Path) -> None:
    settings = ServiceConfig(host=host, token_file=str(tmp_path / "token"))
    assert resolve_token(settings, {"KALSHI_ROUTER_TOKEN": "from-env"}) == ("from-env", False)


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_loopback_bind_without_one_gets_a_fresh_token_in_a_0600_file(
    host: str, tmp_path: Path
) -> None:
    path = tmp_path / "dir" / "token"
    settings = ServiceConfig(host=host, token_file=str(path))
    first, generated = resolve_token(settings, {})
    second, _ = resolve_token(settings, {})
    assert generated
    assert first
    assert second
    assert len(first) >= 40
    assert first != second
    with umask(0), published(path, second):
        assert path.read_text() == second
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_any_other_tcp_bind_without_a_token_is_refused(tmp_path: Path) -> None:
    settings = ServiceConfig(host="0.0.0.0", token_file=str(tmp_path / "token"))
    with pytest.raises(ConfigError, match=r"not loopback; set a bearer token"):
        check_bind(settings, {"KALSHI_ROUTER_TOKEN": ""})


def test_only_a_unix_socket_goes_without_a_token(tmp_path: Path) -> None:
    settings = ServiceConfig(unix_socket=str(tmp_path / "s.sock"))
    assert resolve_token(settings, {"KALSHI_ROUTER_TOKEN": "ignored"}) == (None, False)


async def test_a_unix_socket_is_created_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "router.sock"
    settings = ServiceConfig(unix_socket=str(path))
    async with running_sim(SimConfig(tier="premier")) as sim, AsyncExitStack() as stack:
        metrics = Metrics()
        router = await start_router(stack, sim, metrics)
        runner = web.AppRunner(build_service_app(router, settings, metrics, None))
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        with umask(0):
            await _listen(runner, settings)
            # And the process's own umask is given back.
            assert os.umask(0) == 0
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- the comparison and the refusal ------------------------------------------------------------


async def test_the_token_is_compared_in_constant_time(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("kalshi_router.service.token.hmac.compare_digest", spy)
    for headers in (AUTH, {"Authorization": "Bearer nope"}):
        async with running.http.get("/v1/stats", headers=headers) as response:
            assert response.status in (200, 401)
    expected = f"Bearer {TOKEN}".encode()
    assert compared == [(expected, expected), (b"Bearer nope", expected)]


WRONG: list[dict[str, str]] = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": f"bearer {TOKEN}"},
    {"Authorization": f"Bearer  {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": f"Bearer {TOKEN}0"},
    {"Authorization": f"Bearer {TOKEN.upper()}"},
    {"Authorization": "Bearer é"},
]


async def refusal(
    running: Running, headers: dict[str, str]
) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """The whole answer but its date: status, headers, body."""
    async with running.http.post(
        "/v1/orders", data=msgspec.json.encode({"items": [resting()]}), headers=headers
    ) as response:
        kept = sorted((k, v) for k, v in response.headers.items() if k != "Date")
        return response.status, tuple(kept), await response.read()


async def test_every_wrong_token_gets_the_same_bare_401(running: Running) -> None:
    """Nothing tells a missing token from a malformed or a wrong one, nor how close it was."""
    answers = {await refusal(running, headers) for headers in WRONG}
    ((status, headers, body),) = answers
    assert status == 401
    assert dict(headers)["WWW-Authenticate"] == "Bearer"
    assert msgspec.json.decode(body) == {"error": "unauthorized", "field": None}
    assert running.sim.state.exchange.orders("router-it") == []


async def test_a_header_that_is_not_utf8_is_a_401_not_a_500(running: Running) -> None:
    host, port = running.http.server.host, running.http.server.port
    assert port is not None
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /v1/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n")
    async with asyncio.timeout(5):
        status_line = await reader.readline()
    assert status_line.startswith(b"HTTP/1.1 401 "), status_line
    writer.close()


# --- never logged ------------------------------------------------------------------------------


async def test_the_token_never_reaches_the_logs(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG)
    wrong = "wrong-token-also-a-secret"
    for token in (TOKEN, wrong):
        headers = {"Authorization": f"Bearer {token}"}
        body = msgspec.json.encode({"items": [resting(), resting(price="2")]})
        async with running.http.post("/v1/orders", data=body, headers=headers) as response:
            await response.read()
        async with running.http.post("/v1/orders", data=b"{", headers=headers) as response:
            await response.read()
        async with running.http.get("/v1/orders/nope", headers=headers) as response:
            await response.read()
    async with running.http.ws_connect("/v1/stream", headers=AUTH) as socket:
        await socket.send_json({"type": "submit", "id": 1, "item": resting()})
        await socket.send_str("{")
        for _ in range(3):
            await socket.receive(timeout=5)
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await running.http.ws_connect("/v1/stream", headers={"Authorization": f"Bearer {wrong}"})
    logged = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''} {record.__dict__!r}"
        for record in caplog.records
    )
    assert caplog.records  # the capture worked: the access log at least wrote each request
    assert TOKEN not in logged
    assert wrong not in logged
    # Nor in the service's repr, should it land in a log line or a traceback's locals.
    assert TOKEN not in repr(running.service)
