"""The simulator's configuration: strict msgspec Structs, loadable from TOML or JSON."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, get_args

import msgspec

from kalshi_router.sim.book import Market
from kalshi_router.sim.buckets import TIERS, Tier
from kalshi_router.sim.validate import SimError, parse_price

# Method + path template (without /trade-api/v2) of every order-mutation endpoint, V2 and V1.
ORDER_WRITE_PATHS: tuple[str, ...] = (
    "POST /portfolio/events/orders",
    "DELETE /portfolio/events/orders",
    "POST /portfolio/events/orders/batched",
    "DELETE /portfolio/events/orders/batched",
    "DELETE /portfolio/events/orders/{order_id}",
    "POST /portfolio/events/orders/{order_id}/amend",
    "POST /portfolio/events/orders/{order_id}/decrease",
    "POST /portfolio/orders",
    "POST /portfolio/orders/batched",
    "DELETE /portfolio/orders/batched",
)

_HTTP_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})

# The per-request fault outcomes, each set by ``FaultConfig.<name>_rate``. The order is the
# order of the bands one uniform draw falls into: new outcomes go at the end, so that a seed
# keeps giving the same faults to configurations that do not use them.
FaultOutcome = Literal[
    "error_503",
    "reset_before",
    "error_500",
    "reset_after",
    "malformed",
    "truncated",
    "hang",
    "timeout_before",
    "timeout_after",
    "trickle",
    "text_plain",
    "proxy_502",
]
FAULT_OUTCOMES: tuple[FaultOutcome, ...] = get_args(FaultOutcome)


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    pass


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")


class LatencyConfig(_Strict, frozen=True, kw_only=True):
    """Added delay before a faulted endpoint is processed; ``kind`` picks which fields count."""

    kind: Literal["none", "fixed", "uniform", "exponential"] = "none"
    fixed_ms: float = 0.0
    min_ms: float = 0.0
    max_ms: float = 0.0
    mean_ms: float = 0.0

    def __post_init__(self) -> None:
        if min(self.fixed_ms, self.min_ms, self.max_ms, self.mean_ms) < 0:
            raise ValueError("latency values must not be negative")
        if self.min_ms > self.max_ms:
            raise ValueError("latency.min_ms must not exceed latency.max_ms")


class WsFaultConfig(_Strict, frozen=True, kw_only=True):
    """What can go wrong on the WebSocket (``faults.ws``). All off by default.

    Every data frame (``user_order``, ``fill``, ``market_position``) draws five numbers from its
    connection's own seeded stream; command answers draw nothing and are never faulted. A draw
    may drop the connection in place of the frame, or drop the frame alone; otherwise the
    connection may stall (silent both ways, pings included, for ``stall_s``) before the frame,
    and the frame may be held back ``delay_min_ms``..``delay_max_ms`` while later ones go on.
    A connection is also dropped once it has sent ``drop_connection_every_frames`` data frames.
    A create's REST answer may come late: after every open connection has sent (or lost) the
    frames queued so far, then ``late_create_answer_ms`` more.
    """

    drop_connection_rate: float = 0.0
    drop_connection_every_frames: int = 0
    drop_frame_rate: float = 0.0
    stall_rate: float = 0.0
    stall_s: float = 15.0
    delay_rate: float = 0.0
    delay_min_ms: float = 0.0
    delay_max_ms: float = 100.0
    late_create_answer_rate: float = 0.0
    late_create_answer_ms: float = 100.0

    def __post_init__(self) -> None:
        for name in (
            "drop_connection_rate",
            "drop_frame_rate",
            "stall_rate",
            "delay_rate",
            "late_create_answer_rate",
        ):
            _check_rate(f"ws.{name}", getattr(self, name))
        for name in ("stall_s", "delay_min_ms", "delay_max_ms", "late_create_answer_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"ws.{name} must not be negative")
        if self.drop_connection_every_frames < 0:
            raise ValueError("ws.drop_connection_every_frames must not be negative")
        if self.delay_min_ms > self.delay_max_ms:
            raise ValueError("ws.delay_min_ms must not exceed ws.delay_max_ms")


class FaultConfig(_Strict, frozen=True, kw_only=True):
    """What can go wrong, per request, on the endpoints in ``paths``. All off by default.

    The outcome rates (one per ``FAULT_OUTCOMES`` name) are mutually exclusive per request and
    must sum to at most 1. A 429 storm, once started by a request, answers every request on
    ``paths`` for ``storm_429_s`` seconds. Not processed: 503, reset before, timeout before
    (held ``timeout_s``, then dropped). Processed, then: 500, reset after, malformed,
    truncated, hang (answer held ``hang_s``), timeout after (held ``timeout_s``, then
    dropped unanswered), trickle (the answer in ``trickle_chunks`` pieces
    ``trickle_interval_ms`` apart), text_plain (the answer labelled ``text/plain``),
    proxy_502 (a proxy's HTML 502 page instead of the answer). ``ws``: the WebSocket's faults,
    which ``paths`` does not concern.
    """

    latency: LatencyConfig = LatencyConfig()
    error_503_rate: float = 0.0
    error_500_rate: float = 0.0
    reset_before_rate: float = 0.0
    reset_after_rate: float = 0.0
    malformed_rate: float = 0.0
    truncated_rate: float = 0.0
    hang_rate: float = 0.0
    hang_s: float = 30.0
    timeout_before_rate: float = 0.0
    timeout_after_rate: float = 0.0
    timeout_s: float = 30.0
    trickle_rate: float = 0.0
    trickle_chunks: int = 8
    trickle_interval_ms: float = 10.0
    text_plain_rate: float = 0.0
    proxy_502_rate: float = 0.0
    storm_429_rate: float = 0.0
    storm_429_s: float = 1.0
    ws: WsFaultConfig = WsFaultConfig()
    # "METHOD /path/template" (or "/path/template" for any method), without /trade-api/v2.
    paths: list[str] = msgspec.field(default_factory=lambda: list(ORDER_WRITE_PATHS))

    def __post_init__(self) -> None:
        for name in (*(f"{outcome}_rate" for outcome in FAULT_OUTCOMES), "storm_429_rate"):
            _check_rate(name, getattr(self, name))
        if self.outcome_total() > 1.0:
            raise ValueError("the fault outcome rates must sum to at most 1")
        for name in ("hang_s", "storm_429_s", "timeout_s", "trickle_interval_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.trickle_chunks < 1:
            raise ValueError("trickle_chunks must be at least 1")
        for entry in self.paths:
            method, _, path = entry.rpartition(" ")
            if not path.startswith("/") or (method and method not in _HTTP_METHODS):
                raise ValueError(f"faults.paths entry {entry!r} is not '[METHOD ]/path'")

    def rate(self, outcome: FaultOutcome) -> float:
        """The probability of ``outcome`` per request."""
        value: float = getattr(self, f"{outcome}_rate")
        return value

    def outcome_total(self) -> float:
        """The probability that a request gets one of the exclusive fault outcomes."""
        return sum(self.rate(outcome) for outcome in FAULT_OUTCOMES)


class MarketConfig(_Strict, frozen=True, kw_only=True):
    """A market known at start; prices are dollar strings like Kalshi's ("0.01")."""

    ticker: str
    tick: str = "0.01"
    min_price: str = "0.01"
    max_price: str = "0.99"
    fractional: bool = True
    trading_active: bool = True

    def __post_init__(self) -> None:
        self.to_market()

    def to_market(self) -> Market:
        """The engine's Market ($0.0001 ints); raises ValueError naming a bad field."""
        where = f"markets[{self.ticker!r}]"
        try:
            return Market(
                ticker=self.ticker,
                tick=parse_price(self.tick, f"{where}.tick"),
                min_price=parse_price(self.min_price, f"{where}.min_price"),
                max_price=parse_price(self.max_price, f"{where}.max_price"),
                fractional=self.fractional,
                trading_active=self.trading_active,
            )
        except SimError as exc:
            raise ValueError(exc.details) from None


class ApiKeyConfig(_Strict, frozen=True, kw_only=True):
    """One API key: its id and exactly one of an inline PEM public key or a path to one."""

    key_id: str
    public_key_pem: str | None = None
    public_key_path: str | None = None
    user_id: str | None = None

    def __post_init__(self) -> None:
        if (self.public_key_pem is None) == (self.public_key_path is None):
            raise ValueError(
                f"api key {self.key_id!r}: give exactly one of public_key_pem or public_key_path"
            )

    @property
    def owner(self) -> str:
        """The user the key acts for (the key id unless configured)."""
        return self.user_id if self.user_id is not None else self.key_id


class SimConfig(_Strict, frozen=True, kw_only=True):
    """Everything the simulator can be told at start."""

    tier: str = "basic"
    write_refill: int | None = None
    write_capacity: int | None = None
    read_refill: int | None = None
    read_capacity: int | None = None
    # Kalshi does not say whether a 429'd request spends tokens (UNCONFIRMED).
    rejected_requests_spend_tokens: bool = False
    v1_mode: Literal["gone", "serve"] = "gone"
    max_clock_skew_ms: int = 10_000
    markets: list[MarketConfig] = msgspec.field(default_factory=list)
    auto_create_markets: bool = True
    seed_liquidity: bool = True
    api_keys: list[ApiKeyConfig] = msgspec.field(default_factory=list)
    faults: FaultConfig = FaultConfig()
    seed: int = 0
    # Seconds between the WebSocket's heartbeat pings (Kalshi: every 10 s).
    ws_ping_interval_s: float = 10.0

    def __post_init__(self) -> None:
        if self.ws_ping_interval_s <= 0:
            raise ValueError("ws_ping_interval_s must be positive")
        if self.tier not in TIERS:
            raise ValueError(f"unknown tier {self.tier!r}; known tiers: {', '.join(TIERS)}")
        for name in ("write_refill", "write_capacity", "read_refill", "read_capacity"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.max_clock_skew_ms < 0:
            raise ValueError("max_clock_skew_ms must not be negative")

    def effective_tier(self) -> Tier:
        """The named tier with any configured overrides applied."""
        base = TIERS[self.tier]
        return replace(
            base,
            read_refill=self.read_refill or base.read_refill,
            read_capacity=self.read_capacity or base.read_capacity,
            write_refill=self.write_refill or base.write_refill,
            write_capacity=self.write_capacity or base.write_capacity,
        )
