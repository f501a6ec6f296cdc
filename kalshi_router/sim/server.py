"""Running the simulator on a socket: ``SimServer`` for tests and ``serve_forever`` for the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

import msgspec
from aiohttp import web

from kalshi_router.sim.app import PREFIX, SIM_STATE, build_app
from kalshi_router.sim.auth import PublicKey
from kalshi_router.sim.book import Exchange
from kalshi_router.sim.config import SimConfig
from kalshi_router.sim.render import json_response, rejection_response
from kalshi_router.sim.state import SimState
from kalshi_router.sim.validate import SimError, decode

# Handlers never outlive shutdown for long: hangs and latency wake when the state closes.
_SHUTDOWN_TIMEOUT_S = 2.0


class RestartRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``POST /_sim/restart``: how long the server stays down before it listens again."""

    down_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.down_s <= 60:
            raise ValueError("down_s must be between 0 and 60")


_restart_request = msgspec.json.Decoder(RestartRequest)


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
        self._app = self._build(build_app(config, clock_ms=clock_ms, exchange=exchange))
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._restarting: asyncio.Task[None] | None = None
        self.restarts = 0

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

    def _build(self, app: web.Application) -> web.Application:
        app.router.add_post("/_sim/restart", self._restart_requested)
        return app

    async def _listen(self, port: int) -> None:
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def restart(self, down_s: float = 0.0) -> None:
        """Go down and come back as an exchange's gateway does: stop listening, drop every
        connection (requests held before processing are never processed), refuse connections
        for ``down_s``, then listen on the same port again. The state carries over: orders,
        books, buckets, keys, faults and stats, as the exchange behind a gateway keeps them."""
        port = self.port
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await asyncio.sleep(down_s)
        state = self.state
        state.reopen()
        # A cleaned-up aiohttp Application cannot start again: serve the same state anew.
        self._app = self._build(build_app(state.config, state=state))
        await self._listen(port)
        self.restarts += 1

    async def _restart_requested(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/restart`` (body optional: ``{"down_s": 0.5}``): answered at once, the
        restart follows; 409 while one is under way."""
        try:
            body = decode(_restart_request, await request.read() or b"{}")
        except SimError as exc:
            return rejection_response(exc)
        if self._restarting is not None and not self._restarting.done():
            return json_response({"error": "a restart is already under way"}, status=409)
        self._restarting = asyncio.create_task(self.restart(body.down_s), name="sim-restart")
        return json_response({"restarting": True, "down_s": body.down_s}, status=202)

    async def wait_restarted(self) -> None:
        """Return once the restart asked for through the control route (if any) is done."""
        if self._restarting is not None:
            await self._restarting

    async def __aenter__(self) -> SimServer:
        await self._listen(self._requested_port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._restarting is not None:
            # A restart asked for at the very end would otherwise listen again after this.
            await asyncio.gather(self._restarting, return_exceptions=True)
            self._restarting = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._port = None


async def serve_forever(
    config: SimConfig,
    host: str = "127.0.0.1",
    port: int = 8080,
    ready: Callable[[SimServer], None] | None = None,
) -> None:
    """Run the simulator until cancelled, printing its URL once it listens, then calling
    ``ready`` (which may register keys, say)."""
    async with SimServer(config, host, port) as server:
        print(f"kalshi-router sim listening on {server.url}", flush=True)
        if ready is not None:
            ready(server)
        await asyncio.Event().wait()
