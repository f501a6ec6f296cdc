"""``kalshi-router serve``: the router as a long-lived local service for several bots.

SIGTERM or SIGINT: stop taking intents, (with ``[service] cancel_on_shutdown``: cancel every
open order the router follows,) drain the router within its timeout, give every client the
outcome of each intent it sent, then exit 0.

SIGUSR1: the kill switch (``router.kill("signal SIGUSR1")``: halt, pull every resting order of
the account, confirm through REST); the service keeps running, halted, and logs the report.
A kill in progress at SIGTERM finishes (within its timeout) before the router is drained.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import stat
import time
from collections.abc import Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager
from functools import partial
from pathlib import Path

import msgspec
from aiohttp import web

from kalshi_router.config import Config, ServiceConfig
from kalshi_router.errors import ConfigError, KalshiRouterError
from kalshi_router.journal import SqliteJournal
from kalshi_router.journal.recover import recover
from kalshi_router.router import OrderRouter
from kalshi_router.service.app import build_service_app, server_options
from kalshi_router.service.context import SERVICE, Service, cancel_for
from kalshi_router.service.dead_man import cancel_open_orders
from kalshi_router.service.desk import SIGNAL_REASON, Desk
from kalshi_router.service.metrics import Metrics
from kalshi_router.service.scrape import build_metrics_app
from kalshi_router.service.token import published, resolve_token, token_path
from kalshi_router.sim import SimServer
from kalshi_router.wire import connect
from kalshi_router.wire.signer import Signer, generate_key, load_private_key

log = logging.getLogger("kalshi_router.service")
SIM_KEY_ID = "serve-sim-key"
# The journal's name for the embedded simulator (its port changes with every run).
EMBEDDED = "embedded simulator"
_CLOSE_GRACE_S = 5.0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(settings: ServiceConfig, environ: Mapping[str, str]) -> None:
    """Refuse a TCP bind beyond this machine without a token, before anything starts: the
    intake's, and the metrics listener's (which asks for no token on loopback only)."""
    configured = bool(environ.get(settings.token_env))
    if not (settings.unix_socket or configured or _loopback(settings.host)):
        raise ConfigError(
            f"service.host: {settings.host} is not loopback; set a bearer token in "
            f"${settings.token_env} to listen there"
        )
    if settings.metrics_port is not None and not (configured or _loopback(settings.metrics_host)):
        raise ConfigError(
            f"service.metrics_host: {settings.metrics_host} is not loopback; set a bearer token "
            f"in ${settings.token_env} to serve metrics there (scrapers must then send it)"
        )


async def serve(config: Config, *, announce: bool = True) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    settings = config.service
    if config.exchange.target == "service":
        raise ConfigError(
            'exchange.target: "service" is for clients of a running service; serve needs '
            '"sim" or "url"'
        )
    check_bind(settings, os.environ)
    if settings.cancel_on_shutdown and not config.orders.track:
        raise ConfigError(
            "service.cancel_on_shutdown: cancels the open orders the router follows; set "
            "[orders] track = true"
        )
    stop = asyncio.Event()
    async with AsyncExitStack() as stack:
        # First: a journal that cannot be used stops the service before anything starts.
        journal = _open_journal(config)
        if journal is not None:
            stack.callback(journal.close)
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
        if journal is not None:
            # Before the router exists: what was on the wire is settled before anything new is.
            await _recover(config, journal, signer, base_url)
        metrics = Metrics()
        router = OrderRouter.connect(config, signer, base_url, observers=[metrics], journal=journal)
        # As a context: a router that fails to start (exchange unreachable) still closes its
        # HTTP session, and one that started is drained however this block is left.
        await stack.enter_async_context(router)
        metrics.bind(
            tokens=lambda: router.budget.spent,
            queue_depth=lambda: router.queue_depth,
            in_flight=lambda: router.in_flight,
        )
        token, generated = resolve_token(settings, os.environ)
        # The handlers go in before the address is announced: a signal sent as soon as a
        # supervisor sees the line must drain, not kill the process (the default action, which
        # still applies while starting, when nothing has been accepted yet).
        stack.enter_context(_signals_set(stop))
        app = build_service_app(router, settings, metrics, token, journal)
        desk = app[SERVICE].desk
        kill_signal = _KillSignal(desk)
        stack.callback(kill_signal.remove)
        # By the time the runner shuts down the router has settled everything: what is left
        # is writing the last answers and closing handshakes, which need seconds at most.
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=_CLOSE_GRACE_S,
            **server_options(settings),
        )
        await runner.setup()
        try:
            address = await _listen(runner, settings)
            if settings.metrics_port is not None:
                scraped = await _listen_metrics(stack, metrics, settings, os.environ)
                if announce:
                    print(f"kalshi-router metrics on {scraped}", flush=True)
                log.info("metrics on %s", scraped)
            if generated and token is not None:
                # Only once every address is bound: a service that failed to start must not
                # replace the token file that the clients of one already running read.
                path = token_path(settings, runner.addresses[0][1])
                stack.enter_context(published(path, token))
                log.info("generated a bearer token for this run in %s (mode 0600)", path)
            if announce:
                print(f"kalshi-router serving on {address}", flush=True)
            log.info("serving on %s", address)
            await stop.wait()
            log.info("signal received: draining")
            app[SERVICE].start_draining()
            if settings.cancel_on_shutdown:
                await _cancel_everything(router, app[SERVICE], config.router.drain_timeout_s)
            # A kill from here on would find the router closed: the last one finishes first.
            kill_signal.remove()
            await desk.finished()
            await router.aclose()
            await app[SERVICE].close_streams(router_closed=True)
        finally:
            await router.aclose()
            await runner.cleanup()
    log.info("stopped")
    return 0


async def _cancel_everything(router: OrderRouter, service: Service, timeout_s: float) -> None:
    """``cancel_on_shutdown``: what is in flight settles first (a create accepted after the
    cancels went would stay), then every open order the router follows is cancelled; each
    step waits up to ``timeout_s``."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            await router.flush()
    except TimeoutError:
        log.warning("cancel_on_shutdown: intents still in flight after %g s", timeout_s)
    except KalshiRouterError as exc:  # the router crashed: it can send nothing
        log.error("cancel_on_shutdown: the router cannot send: %s", exc)
        return
    open_orders = list(router.orders.open_orders())
    sent, confirmed = await cancel_open_orders(open_orders, partial(cancel_for, service), timeout_s)
    log.warning(
        "cancel_on_shutdown: %d open orders, %d cancels sent, %d confirmed, in %.3f s",
        len(open_orders),
        sent,
        confirmed,
        time.monotonic() - started,
    )


def _open_journal(config: Config) -> SqliteJournal | None:
    settings = config.journal
    if not settings.enabled:
        return None
    exchange = EMBEDDED if config.exchange.target == "sim" else config.exchange.base_url
    journal = SqliteJournal.open(
        settings.journal_path(),
        exchange=exchange,
        keep_settled_s=settings.keep_settled_h * 3600,
        compact_every_s=settings.compact_every_s,
    )
    removed = journal.compact()
    log.info("journal %s (%d settled intents compacted away)", journal.path, removed)
    return journal


async def _recover(
    config: Config, journal: SqliteJournal, signer: Signer, base_url: str | None
) -> None:
    settings = config.journal
    if config.exchange.target == "sim":
        # The embedded exchange died with the previous process: nothing can land there now.
        settings = msgspec.structs.replace(settings, landing_grace_s=0.0)
    # The router's own connection, so that a recovery reads the exchange exactly as it will.
    transport, client = connect(config, signer, base_url=base_url)
    async with transport:
        found = await recover(journal, client, settings)
    if found.outcomes:
        counts = ", ".join(f"{kind} {n}" for kind, n in sorted(found.counts.items()))
        log.info(
            "journal: settled %d intents left open by the last run: %s", len(found.outcomes), counts
        )


async def _listen(runner: web.AppRunner, settings: ServiceConfig) -> str:
    """Bind; an address in use or a path that cannot be bound is a ConfigError naming it."""
    if settings.unix_socket:
        path = Path(settings.unix_socket)
        site: web.BaseSite = web.UnixSite(runner, str(path))
        # The socket is created 0600, not chmod-ed after: between the two, any local user
        # could connect to a service that asks Unix-socket clients for no token.
        umask = os.umask(0o177)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"service.unix_socket: cannot listen on {path}: {exc}") from None
        finally:
            os.umask(umask)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        return f"unix:{path}"
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        where = f"{settings.host}:{settings.port}"
        raise ConfigError(f"service.host/port: cannot listen on {where}: {exc}") from None
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


async def _listen_metrics(
    stack: AsyncExitStack, metrics: Metrics, settings: ServiceConfig, environ: Mapping[str, str]
) -> str:
    """The metrics listener (see ``service.scrape``): no token on loopback, the configured one
    beyond it. Its URL; an address in use is a ConfigError naming it."""
    host = settings.metrics_host
    token = None if _loopback(host) else environ.get(settings.token_env)
    runner = web.AppRunner(
        build_metrics_app(metrics, token),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=_CLOSE_GRACE_S,
        **server_options(settings),
    )
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    try:
        await web.TCPSite(runner, host, settings.metrics_port).start()
    except OSError as exc:
        where = f"{host}:{settings.metrics_port}"
        raise ConfigError(f"service.metrics_port: cannot listen on {where}: {exc}") from None
    bound, port = runner.addresses[0][:2]
    return f"http://{bound}:{port}/metrics"


class _KillSignal:
    """SIGUSR1 starts the kill switch (``Desk.kill_soon``), from install to :meth:`remove`.
    Installed before the address is announced, like the stop signals (its default action
    would end the process)."""

    def __init__(self, desk: Desk) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_signal_handler(signal.SIGUSR1, desk.kill_soon, SIGNAL_REASON)

    def remove(self) -> None:
        self._loop.remove_signal_handler(signal.SIGUSR1)


@contextmanager
def _signals_set(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` while the service runs, the drain included: a second
    signal does not cut the drain short (it is bounded by router.drain_timeout_s anyway)."""
    loop = asyncio.get_running_loop()

    def signalled(signum: signal.Signals) -> None:
        if stop.is_set():
            log.info("%s received while draining: still draining", signum.name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, signalled, signum)
    try:
        yield
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
