"""Fault injection: latency, 5xx, 429 storms, dropped connections, broken bodies, hangs.

Every request on a faulted endpoint draws exactly three numbers from one ``random.Random(seed)``
(storm, latency, outcome), whatever happens to it afterwards, so the same seed and the same
sequence of requests give the same faults. At most one outcome applies per request.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from kalshi_router.sim.config import FaultConfig
from kalshi_router.sim.render import error_response, rate_limited_response

Outcome = Literal[
    "none",
    "error_503",
    "reset_before",
    "error_500",
    "reset_after",
    "malformed",
    "truncated",
    "hang",
]
MALFORMED_BODY = b'<html><body>sim fault: this is not JSON {"orders": [</body></html>'


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
        self._outcomes: tuple[tuple[float, Outcome], ...] = (
            (config.error_503_rate, "error_503"),
            (config.reset_before_rate, "reset_before"),
            (config.error_500_rate, "error_500"),
            (config.reset_after_rate, "reset_after"),
            (config.malformed_rate, "malformed"),
            (config.truncated_rate, "truncated"),
            (config.hang_rate, "hang"),
        )

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
    pause: Callable[[float], Awaitable[None]],
    hang_s: float,
) -> tuple[web.StreamResponse, str]:
    """Answer a request under ``plan``; also returns what happened, for the stats.

    ``process`` runs the request for real; it is skipped by a storm, a 503 and a reset before.
    """
    if plan.latency_s:
        await pause(plan.latency_s)
    if plan.storm:
        # Sim assumption: a storm is an overload in front of the exchange; no bucket is charged.
        return rate_limited_response(), "storm_429"
    if plan.outcome == "reset_before":
        return _drop_connection(request), plan.outcome
    # Sim assumption: the 5xx bodies use Kalshi's wrapped error envelope with these codes.
    if plan.outcome == "error_503":
        return error_response(
            503, "service_unavailable", "service unavailable", "sim fault: not processed"
        ), plan.outcome
    response = await process()
    if plan.outcome == "none":
        return response, str(response.status)
    if plan.outcome == "error_500":
        return error_response(
            500, "internal_server_error", "internal server error", "sim fault: processed"
        ), plan.outcome
    if plan.outcome == "reset_after":
        return _drop_connection(request), plan.outcome
    if plan.outcome == "malformed":
        return _malformed(response), plan.outcome
    if plan.outcome == "truncated":
        return await _truncated(request, response), plan.outcome
    await pause(hang_s)
    return response, plan.outcome


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
