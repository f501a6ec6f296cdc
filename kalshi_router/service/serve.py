"""``kalshi-router serve``: the router as a long-lived local service for several bots.

SIGTERM or SIGINT: stop taking intents, drain the router within its timeout, give every
client the outcome of each intent it sent, then exit 0.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import signal
import stat
from contextlib import AsyncExitStack
from pathlib import Path

from aiohttp import web

from kalshi_router.config import Config, ServiceConfig
from kalshi_router.errors import ConfigError
from kalshi_router.router import OrderRouter
from kalshi_router.service.app import SERVICE, build_service_app
from kalshi_router.service.metrics import Metrics
from kalshi_router.sim import SimServer
from kalshi_router.wire.signer import Signer, generate_key, load_private_key

log = logging.getLogger("kalshi_router.service")
SIM_KEY_ID = "serve-sim-key"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(
    settings: ServiceConfig, environ: dict[str, str] | os._Environ[str]
) -> str | None:
    """The bearer token TCP clients must send; None on a Unix socket (its 0600 mode guards it).

    A loopback bind without a configured token gets a random one, written to a 0600 file for
    local clients; any other TCP bind without one is refused.
    """
    if settings.unix_socket:
        return None
    token = environ.get(settings.token_env, "")
    if token:
        return token
    if not _loopback(settings.host):
        raise ConfigError(
            f"service.host: {settings.host} is not loopback; set a bearer token in "
            f"${settings.token_env} to listen there"
        )
    token = secrets.token_urlsafe(32)
    path = settings.token_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    os.chmod(path, 0o600)
    log.info("generated a bearer token for this run in %s (mode 0600)", path)
    return token


async def serve(config: Config, *, announce: bool = True) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    settings = config.service
    token = resolve_token(settings, os.environ)
    async with AsyncExitStack() as stack:
        base_url: str | None = None
        if config.exchange.target == "sim":
            private_pem, public_pem = generate_key(config.credentials.key_type)
            sim = await stack.enter_async_context(SimServer(config.sim))
            sim.register_key(SIM_KEY_ID, public_pem)
            signer = Signer(SIM_KEY_ID, load_private_key(private_pem))
            base_url = sim.url
            log.info("embedded simulator at %s (tier %s)", sim.url, config.sim.tier)
        else:
            credentials = config.credentials
            signer = Signer.from_env(
                credentials.key_id_env,
                credentials.private_key_env,
                credentials.private_key_path_env,
            )
        metrics = Metrics()
        router = OrderRouter.connect(config, signer, base_url, observers=[metrics])
        await router.start()
        metrics.bind(
            tokens=lambda: router.budget.spent,
            queue_depth=lambda: router.queue_depth,
            in_flight=lambda: router.in_flight,
        )
        app = build_service_app(router, settings, metrics, token)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            address = await _listen(runner, settings)
            if announce:
                print(f"kalshi-router serving on {address}", flush=True)
            log.info("serving on %s", address)
            await _until_signalled()
            log.info("signal received: draining")
            app[SERVICE].draining = True
            await router.aclose()
            await app[SERVICE].close_streams()
        finally:
            await router.aclose()
            await runner.cleanup()
    log.info("stopped")
    return 0


async def _listen(runner: web.AppRunner, settings: ServiceConfig) -> str:
    if settings.unix_socket:
        path = Path(settings.unix_socket)
        site: web.BaseSite = web.UnixSite(runner, str(path))
        await site.start()
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        return f"unix:{path}"
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
