"""``kalshi-router check``: whether the configured key can trade on the configured exchange,
found by reading only (``GET /exchange/status``, ``/account/limits``, ``/account/endpoint_costs``);
no order is sent.

It prints what it learned (the key's type, the exchange's state, the tier, the write budget and
costs, the clock skew), then either that all is well or each reason it is not, naming the
setting or variable to look at, never a secret.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from kalshi_router.config import Config
from kalshi_router.errors import ConfigError, KeyLoadError, TransportError, WireError
from kalshi_router.wire import connect
from kalshi_router.wire.client import ExchangeClient, credentials_refused
from kalshi_router.wire.hosts import describe_exchange
from kalshi_router.wire.models import GetExchangeStatusResponse
from kalshi_router.wire.signer import Signer

T = TypeVar("T")
Print = Callable[[str], None]


class _Stop(Exception):
    """Why no further request can tell us more (unreachable, or the key refused)."""


def _line(label: str, text: str) -> str:
    return f"{label:<13} {text}"


def status_problems(status: GetExchangeStatusResponse) -> list[str]:
    problems = []
    if not status.exchange_active:
        resume = status.exchange_estimated_resume_time
        when = f"; estimated to resume at {resume}" if resume else ""
        problems.append(f"the exchange is closed for maintenance (exchange_active false{when})")
    if not status.trading_active:
        problems.append("trading is paused (trading_active false: outside trading hours or paused)")
    return problems


def skew_problem(skew_s: float, limit_s: float) -> str:
    """Why a clock ``skew_s`` behind the exchange's is too much ("" if it is not)."""
    if abs(skew_s) <= limit_s:
        return ""
    direction = "behind" if skew_s > 0 else "ahead of"
    return (
        f"our clock is {abs(skew_s):.1f} s {direction} the exchange's (more than "
        f"exchange.max_clock_skew_s = {limit_s:g}): signatures carry our time and are refused "
        "outside the exchange's window; synchronise the clock (NTP)"
    )


class _Reader:
    """Reads the exchange one endpoint at a time, sorting failures into those that end the
    check and those after which the next read can still tell us something."""

    def __init__(self, config: Config, client: ExchangeClient) -> None:
        credentials = config.credentials
        self._names = (
            credentials.key_id_env,
            credentials.private_key_env,
            credentials.private_key_path_env,
        )
        self._base_url = config.exchange.base_url
        self.client = client

    async def read(self, request: str, call: Callable[[], Awaitable[T]]) -> T | WireError:
        """The answer, or the error when another request may still tell us something; raises
        ``_Stop`` when none can (no connection, or the key refused)."""
        try:
            return await call()
        except TransportError as exc:
            raise _Stop(f"cannot reach {describe_exchange(self._base_url)}: {exc}") from None
        except WireError as exc:
            refused = credentials_refused(exc, request, self._base_url, self._names)
            if refused is not None:
                raise _Stop(str(refused)) from None
            return exc


async def _read_all(reader: _Reader, out: Print) -> list[str]:
    client = reader.client
    problems: list[str] = []
    status = await reader.read("GET /exchange/status", client.get_exchange_status)
    if isinstance(status, WireError):
        out(_line("status", f"unknown: {status}"))
        problems.append(f"GET /exchange/status: {status}")
    else:
        active = "active" if status.exchange_active else "CLOSED"
        trading = "trading active" if status.trading_active else "trading PAUSED"
        out(_line("status", f"exchange {active}, {trading}"))
        problems += status_problems(status)
    limits = await reader.read("GET /account/limits", client.get_limits)
    refill = 0
    if isinstance(limits, WireError):
        out(_line("limits", f"unknown: {limits}"))
        problems.append(f"GET /account/limits: {limits}")
    else:
        refill, capacity = limits.write.refill_rate, limits.write.bucket_capacity
        out(_line("tier", limits.usage_tier))
        out(_line("write budget", f"refill {refill} tokens/s, bucket {capacity} tokens"))
    table = await reader.read("GET /account/endpoint_costs", client.get_endpoint_costs)
    if isinstance(table, WireError):
        # Not a problem: the router then assumes Kalshi's published costs.
        out(_line("costs", f"unknown: {table}"))
        return problems
    costs = client.dialect.costs(table)
    orders = f": {refill / costs['create']:g} orders/s" if refill else ""
    out(_line("costs", f"{costs['create']} tokens per order, {costs['cancel']} per cancel{orders}"))
    return problems


async def run_check(
    config: Config, *, environ: Mapping[str, str] = os.environ, out: Print = print
) -> list[str]:
    """Check ``config``'s credentials against its exchange, printing what is learned through
    ``out``; returns the problems found (none: all is well). Raises ``ConfigError`` for a
    config that names no exchange to check."""
    exchange = config.exchange
    if exchange.target != "url":
        raise ConfigError(
            f"exchange.target: check reads the exchange at exchange.base_url (target = "
            f'"url"), not {exchange.target!r} (the embedded simulator makes its own key; a '
            "service client uses the service's)"
        )
    credentials = config.credentials
    out(_line("exchange", describe_exchange(exchange.base_url)))
    try:
        signer = Signer.from_env(
            credentials.key_id_env,
            credentials.private_key_env,
            credentials.private_key_path_env,
            environ=environ,
        )
    except KeyLoadError as exc:
        return [str(exc)]
    pem_set = environ.get(credentials.private_key_env, "").strip()
    source = credentials.private_key_env if pem_set else credentials.private_key_path_env
    out(_line("key", f"id {signer.key_id}, {signer.key_type} (from {source})"))
    # An infinite limit keeps the transport from logging the skew: it is judged once, below,
    # against the configured limit.
    transport, client = connect(config, signer, max_connections=1, max_clock_skew_s=math.inf)
    async with transport:
        reader = _Reader(config, client)
        try:
            problems = await _read_all(reader, out)
        except _Stop as stop:
            return [str(stop)]
    skew = transport.clock_skew_s
    if skew is None:
        out(_line("clock skew", "unknown (the exchange sent no Date header)"))
        return problems
    limit = exchange.max_clock_skew_s
    # A Date header has whole seconds: the estimate is good to about half of one.
    out(_line("clock skew", f"{skew:+.1f} s, the exchange's clock minus ours (limit {limit:g} s)"))
    if problem := skew_problem(skew, limit):
        problems.append(problem)
    return problems


async def check(
    config: Config,
    *,
    environ: Mapping[str, str] = os.environ,
    out: Print = print,
    err: Print = print,
) -> int:
    """``kalshi-router check``: 0 when all is well, 1 with each problem through ``err``."""
    problems = await run_check(config, environ=environ, out=out)
    for problem in problems:
        err(f"kalshi-router check: {problem}")
    if not problems:
        out("ok: the exchange accepts this key, and trading is open")
    return 1 if problems else 0
