"""Fault injection: latency, 5xx, 429 storms, dropped connections, broken, slow or mislabelled
bodies, hangs and read timeouts.

Every request on a faulted endpoint draws exactly three numbers from one ``random.Random(seed)``
(storm, latency, outcome), whatever happens to it afterwards, so the same seed and the same
sequence of requests give the same faults. At most one outcome applies per request; everything
else about a fault (how long a hang, how many pieces a trickle) is fixed by the config.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from kalshi_router.sim.config import FAULT_OUTCOMES, FaultConfig, FaultOutcome
from kalshi_router.sim.render import error_response, rate_limited_response

Outcome = Literal["none"] | FaultOutcome
MALFORMED_BODY = b'<html><body>sim fault: this is not JSON {"orders": [</body></html>'
PROXY_502_BODY = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>sim fault: proxy</center></body></html>"
)
# Sleeps that return False were cut short: the server is shutting down (or restarting).
Pause = Callable[[float], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What one request will suffer."""

    storm: bool
    latency_s: float
    outcome: Outcome


class FaultInjector:
    """Draws a FaultPlan per request from the current FaultConfig; reconfigurable at runtime."""

    def __init__(self, config: FaultConfig, seed: int, clock_s: Callable[[], float]) -> None:
        self._rng = random.Random(seed)  # noqa: S311  # reproducible faults, not secrets
        self._clock_s = clock_s
        self._storm_until = -math.inf
        self.configure(config)

    @property
    def config(self) -> FaultConfig:
        return self._config

    def configure(self, config: FaultConfig) -> None:
        """Replace the fault settings; the random sequence carries on, a storm ends."""
        self._config = config
        self._paths = frozenset(config.paths)
        self._storm_until = -math.inf
        self._outcomes = tuple((config.rate(name), name) for name in FAULT_OUTCOMES)

    def applies(self, key: str, path: str) -> bool:
        """Whether the endpoint (``key`` is "METHOD /path/template") is faulted."""
        return key in self._paths or path in self._paths

    def plan(self) -> FaultPlan | None:
        """Draw this request's faults (always three draws, in a fixed order); None: no fault."""
        u_storm, u_latency, u_outcome = (self._rng.random() for _ in range(3))
        cfg = self._config
        now = self._clock_s()
        storm = now < self._storm_until
        if not storm and u_storm < cfg.storm_429_rate:
            self._storm_until = now + cfg.storm_429_s
            storm = True
        latency = cfg.latency
        if latency.kind == "fixed":
            latency_ms = latency.fixed_ms
        elif latency.kind == "uniform":
            latency_ms = latency.min_ms + u_latency * (latency.max_ms - latency.min_ms)
        elif latency.kind == "exponential":
            latency_ms = -latency.mean_ms * math.log(1.0 - u_latency)
        else:
            latency_ms = 0.0
        outcome: Outcome = "none"
        edge = 0.0
        for rate, name in self._outcomes:
            edge += rate
            if u_outcome < edge:
                outcome = name
                break
        if not storm and outcome == "none" and latency_ms == 0.0:
            return None
        return FaultPlan(storm=storm, latency_s=latency_ms / 1000, outcome=outcome)


async def apply(
    plan: FaultPlan,
    request: web.BaseRequest,
    process: Callable[[], Awaitable[web.Response]],
    pause: Pause,
    config: FaultConfig,
) -> tuple[web.StreamResponse, str]:
    """Answer a request under ``plan``; also returns what happened, for the stats.

    ``process`` runs the request for real; it is skipped by a storm, a 503, a reset before and
    a timeout before, and by a shutdown during the latency before it.
    """
    if plan.latency_s and not await pause(plan.latency_s):
        # The server is going down: a request it had not processed yet never will be (a
        # gateway restart loses what it held), and the client sees its connection drop.
        return _drop_connection(request), "shutdown"
    if plan.storm:
        # Sim assumption: a storm is an overload in front of the exchange; no bucket is charged.
        return rate_limited_response(), "storm_429"
    outcome = plan.outcome
    if outcome in ("reset_before", "timeout_before"):
        if outcome == "timeout_before":
            # A gateway that holds the request past any client's patience, then gives up on it.
            await pause(config.timeout_s)
        return _drop_connection(request), outcome
    # Sim assumption: the 5xx bodies use Kalshi's wrapped error envelope with these codes.
    if outcome == "error_503":
        return error_response(
            503, "service_unavailable", "service unavailable", "sim fault: not processed"
        ), outcome
    response = await process()
    return await _after(outcome, request, response, pause, config), (
        str(response.status) if outcome == "none" else outcome
    )


async def _after(
    outcome: Outcome,
    request: web.BaseRequest,
    response: web.Response,
    pause: Pause,
    config: FaultConfig,
) -> web.StreamResponse:
    """What the client gets for a request that was processed."""
    if outcome == "error_500":
        return error_response(
            500, "internal_server_error", "internal server error", "sim fault: processed"
        )
    if outcome in ("reset_after", "timeout_after"):
        if outcome == "timeout_after":
            await pause(config.timeout_s)
        return _drop_connection(request)
    if outcome == "malformed":
        return _malformed(response)
    if outcome == "truncated":
        return await _truncated(request, response)
    if outcome == "hang":
        await pause(config.hang_s)
    elif outcome == "trickle":
        return _Trickle(response, pause, config.trickle_chunks, config.trickle_interval_ms / 1000)
    elif outcome == "text_plain":
        # Sim assumption: a gateway that labels the exchange's JSON as plain text.
        return web.Response(body=response.body, status=response.status, content_type="text/plain")
    elif outcome == "proxy_502":
        # Sim assumption: the proxy lost the exchange's answer, so the request was processed.
        return web.Response(body=PROXY_502_BODY, status=502, content_type="text/html")
    return response


def _drop_connection(request: web.BaseRequest) -> web.Response:
    """Close the TCP connection with no answer at all.

    The returned response is never sent: aiohttp finds the transport closing and gives up
    quietly (it treats that as a client disconnect), so nothing is logged.
    """
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=500)


def _malformed(response: web.Response) -> web.Response:
    """The same status, with a body that is not JSON."""
    return web.Response(
        body=MALFORMED_BODY, status=response.status, content_type="application/json"
    )


async def _truncated(request: web.BaseRequest, response: web.Response) -> web.StreamResponse:
    """Announce the full Content-Length, send half the body, then close the connection."""
    body = response.body
    if not isinstance(body, bytes) or not body:
        # Nothing to cut short (e.g. a 204): the client sees a dropped connection instead.
        return _drop_connection(request)
    stream = web.StreamResponse(status=response.status)
    stream.content_type = "application/json"
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    transport = request.transport
    if transport is not None:
        # close(), not abort(): the half body already written must reach the client first.
        transport.close()
    return stream


class _Trickle(web.StreamResponse):
    """The whole answer, with its Content-Length, in ``chunks`` pieces ``interval_s`` apart:
    slow, but complete for a client that waits.

    The pieces go out from ``write_eof``, which aiohttp calls after the handler has returned,
    so the request is counted in the stats even if the client stops waiting midway (aiohttp
    then cancels the writing)."""

    def __init__(self, response: web.Response, pause: Pause, chunks: int, interval_s: float):
        super().__init__(status=response.status)
        body = response.body if isinstance(response.body, bytes) else b""
        self.content_type = response.content_type
        self.content_length = len(body)
        step = max(1, -(-len(body) // chunks))
        self._pieces = [body[start : start + step] for start in range(0, len(body), step)]
        self._pause = pause
        self._interval_s = interval_s

    async def write_eof(self, data: bytes = b"") -> None:
        for index, piece in enumerate(self._pieces):
            if index:
                await self._pause(self._interval_s)
            await self.write(piece)
        self._pieces = []
        await super().write_eof(data)
