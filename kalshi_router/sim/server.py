"""Running the simulator on a socket: ``SimServer`` for tests and ``serve_forever`` for the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from kalshi_router.sim.app import PREFIX, SIM_STATE, build_app
from kalshi_router.sim.auth import PublicKey
from kalshi_router.sim.book import Exchange
from kalshi_router.sim.config import SimConfig
from kalshi_router.sim.state import SimState

# Handlers never outlive shutdown for long: hangs and latency wake when the state closes.
_SHUTDOWN_TIMEOUT_S = 2.0


class SimServer:
    """The simulator listening on ``host:port`` (0: a free port) inside ``async with``."""

    def __init__(
        self,
        config: SimConfig,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock_ms: Callable[[], int] | None = None,
        exchange: Exchange | None = None,
    ) -> None:
        self._app = build_app(config, clock_ms=clock_ms, exchange=exchange)
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def state(self) -> SimState:
        """The exchange, the buckets, the keys, the faults and the config."""
        return self._app[SIM_STATE]

    @property
    def port(self) -> int:
        """The port actually bound."""
        if self._port is None:
            raise RuntimeError("SimServer is not running")
        return self._port

    @property
    def url(self) -> str:
        """The API root clients use, e.g. ``http://127.0.0.1:PORT/trade-api/v2``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}{PREFIX}"

    def register_key(
        self, key_id: str, public_key: PublicKey | str | bytes, user_id: str | None = None
    ) -> None:
        """Accept requests signed by ``key_id`` (a key object or PEM), acting for ``user_id``."""
        self.state.keys.add(key_id, public_key, key_id if user_id is None else user_id)

    async def __aenter__(self) -> SimServer:
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._port = None


async def serve_forever(config: SimConfig, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the simulator until cancelled, printing its URL once it listens."""
    async with SimServer(config, host, port) as server:
        print(f"kalshi-router sim listening on {server.url}", flush=True)
        await asyncio.Event().wait()
