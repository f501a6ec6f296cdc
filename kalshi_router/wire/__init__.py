"""Everything Kalshi-specific: JSON models, the two batch dialects, signing and HTTP.

``connect`` is the one way in: every path to the exchange (the router, the service's start-up
recovery, ``check``) builds its transport and client there, from the configuration, so that
none of them can drift from the others (a timeout, the clock-skew limit, the pool size).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialect import DialectName
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.signer import Signer

__all__ = ["ConnectSettings", "Connection", "connect"]


# What ``connect`` reads of the configuration, as protocols (``config.Config`` is one) so that
# the wire never imports the configuration, which sits above it (and imports ``wire.hosts``).
class _Exchange(Protocol):
    @property
    def base_url(self) -> str: ...
    @property
    def dialect(self) -> DialectName: ...
    @property
    def request_timeout_s(self) -> float: ...
    @property
    def verify_tls(self) -> bool: ...
    @property
    def max_clock_skew_s(self) -> float: ...
    @property
    def presign(self) -> bool: ...
    @property
    def presign_max_age_ms(self) -> int: ...


class _Router(Protocol):
    @property
    def max_in_flight(self) -> int: ...


class ConnectSettings(Protocol):
    @property
    def exchange(self) -> _Exchange: ...
    @property
    def router(self) -> _Router: ...


class Connection(NamedTuple):
    """A signed HTTP transport and the exchange client over it; whoever connects closes the
    transport."""

    transport: HttpTransport
    client: ExchangeClient


def connect(
    config: ConnectSettings,
    signer: Signer,
    *,
    base_url: str | None = None,
    max_connections: int | None = None,
    max_clock_skew_s: float | None = None,
    writes: bool = False,
) -> Connection:
    """The exchange as ``config.exchange`` describes it, signed by ``signer``; nothing is sent.

    ``base_url`` replaces ``exchange.base_url`` (the embedded simulator's address). The pool
    holds ``router.max_in_flight`` connections for the batches plus two for lookups unless
    ``max_connections`` says otherwise; ``max_clock_skew_s`` replaces ``exchange.max_clock_skew_s``
    (an infinite one never warns). ``writes``: the connection sends batches (the router's), so
    their signatures are made ahead as ``exchange.presign`` says; a connection that only reads
    (recovery, ``check``) has no use for that thread."""
    exchange = config.exchange
    if max_connections is None:
        max_connections = config.router.max_in_flight + 2
    if max_clock_skew_s is None:
        max_clock_skew_s = exchange.max_clock_skew_s
    dialect = dialect_for(exchange.dialect)
    presign = writes and exchange.presign
    transport = HttpTransport(
        base_url or exchange.base_url,
        signer,
        timeout_s=exchange.request_timeout_s,
        max_connections=max_connections,
        verify_tls=exchange.verify_tls,
        max_clock_skew_s=max_clock_skew_s,
        presign=[("POST", dialect.create_path), ("DELETE", dialect.cancel_path)] if presign else (),
        presign_max_age_ms=exchange.presign_max_age_ms,
    )
    return Connection(transport, ExchangeClient(transport, dialect))
