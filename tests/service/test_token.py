"""The generated token's file: named for the service's address, written only once the service
has bound it, found by clients from the same settings, removed when the service stops."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from kalshi_router.config import Config, ExchangeConfig, ServiceConfig
from kalshi_router.errors import ConfigError
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted
from kalshi_router.service.client import RouterClient, open_router
from kalshi_router.service.token import published, read_token, token_path
from tests.service.test_serve_e2e import TICKER, Command, base_env, run_cli

# --- where the file is --------------------------------------------------------------------------


def test_the_default_file_is_named_for_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/bot")
    directory = Path("/home/bot/.cache/kalshi-router")
    assert token_path(ServiceConfig()) == directory / "token-127.0.0.1-8088"
    assert token_path(ServiceConfig(port=9000)) == directory / "token-127.0.0.1-9000"
    assert token_path(ServiceConfig(host="::1")) == directory / "token-%3A%3A1-8088"
    assert token_path(ServiceConfig(host="localhost")) == directory / "token-localhost-8088"
    # Port 0: the service names the file for the port it was given.
    assert token_path(ServiceConfig(port=0), 43210) == directory / "token-127.0.0.1-43210"
    # A host is one name, whatever it holds.
    assert token_path(ServiceConfig(host="../x")).parent == directory


def test_a_configured_file_is_used_as_it_is(tmp_path: Path) -> None:
    settings = ServiceConfig(port=0, token_file=str(tmp_path / "mine"))
    assert token_path(settings, 43210) == tmp_path / "mine"


def test_a_client_reads_the_environment_then_its_services_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = ServiceConfig(port=9000)
    assert read_token(settings, {}) is None
    with published(token_path(settings), "from-file"):
        assert read_token(settings, {}) == "from-file"
        assert read_token(settings, {"KALSHI_ROUTER_TOKEN": "from-env"}) == "from-env"
        # Another service's file is not this one's.
        assert read_token(ServiceConfig(port=9001), {}) is None
    assert read_token(settings, {}) is None


def test_the_file_goes_with_its_service_but_not_a_successors(tmp_path: Path) -> None:
    path = tmp_path / "token"
    with published(path, "first"):
        assert path.read_text() == "first"
    assert not path.exists()
    with published(path, "first"):
        path.write_text("second")
    assert path.read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["token"]  # no temporary left behind


def test_a_file_that_cannot_be_written_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with (
        pytest.raises(ConfigError, match=r"^service\.token_file: cannot write .*/file/token: "),
        published(tmp_path / "file" / "token", "t"),
    ):
        pass


# --- two services --------------------------------------------------------------------------------


def config_file(directory: Path, port: int) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / "serve.toml"
    # No journal: a second service must get as far as its bind (two on one journal are
    # refused before that, which is not what is tested here).
    path.write_text(f"[service]\nport = {port}\n\n[journal]\nenabled = false\n")
    return path


def serving(home: Path, name: str, port: int) -> Command:
    """``serve`` on the embedded simulator, with no token configured: it generates one."""
    config = config_file(home / name, port)
    return Command(home / name, "serve", ["--config", str(config)], base_env(home))


async def place_through(port: int) -> None:
    """A bot starting now: it finds the token from the configuration, as ``open_router`` does."""
    config = Config(exchange=ExchangeConfig(target="service"), service=ServiceConfig(port=port))
    client = open_router(config)
    assert isinstance(client, RouterClient)
    async with client:
        assert isinstance(await client.place(OrderIntent.bid(TICKER, "0.30", 1)), Accepted)


async def test_a_second_service_on_a_taken_port_leaves_the_first_ones_token(
    tmp_path: Path, unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KALSHI_ROUTER_TOKEN", raising=False)
    port = unused_tcp_port
    path = token_path(ServiceConfig(port=port))
    async with serving(tmp_path, "first", port) as first:
        token = path.read_text()
        written = os.stat(path)
        config = config_file(tmp_path / "second", port)
        async with RouterClient(first.url, token=token) as connected:
            # The second one starts its router, then fails to bind: exit 2, nothing written.
            result = await asyncio.to_thread(
                run_cli, "serve", "--config", str(config), env=base_env(tmp_path)
            )
            assert result.returncode == 2, result.stderr
            assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
            assert path.read_text() == token
            assert (os.stat(path).st_ino, os.stat(path).st_mtime_ns) == (
                written.st_ino,
                written.st_mtime_ns,
            )
            # The first one's bots keep working: those connected, and those connecting now.
            assert isinstance(await connected.place(OrderIntent.bid(TICKER, "0.30", 1)), Accepted)
            await place_through(port)
        code, _ = await first.stop()
        assert code == 0, first.log()
    assert not path.exists()


async def test_two_services_on_two_ports_have_two_token_files(
    tmp_path: Path,
    unused_tcp_port_factory: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KALSHI_ROUTER_TOKEN", raising=False)
    ports = (unused_tcp_port_factory(), unused_tcp_port_factory())
    async with serving(tmp_path, "a", ports[0]), serving(tmp_path, "b", ports[1]):
        paths = [token_path(ServiceConfig(port=port)) for port in ports]
        assert paths[0] != paths[1]
        assert paths[0].read_text() != paths[1].read_text()
        for port in ports:
            await place_through(port)
