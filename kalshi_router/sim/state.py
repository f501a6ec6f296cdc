"""What one running simulator holds, and the per-request context its handlers get."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import msgspec
from aiohttp import web

from kalshi_router.sim.auth import KeyRing
from kalshi_router.sim.book import Exchange, Side
from kalshi_router.sim.buckets import AccountBuckets, TokenBucket
from kalshi_router.sim.config import SimConfig
from kalshi_router.sim.faults import FaultInjector
from kalshi_router.sim.validate import decode
from kalshi_router.sim.ws_faults import WsFaults, WsStats
from kalshi_router.sim.ws_feed import Positions

T = TypeVar("T")
BucketName = Literal["read", "write"]

HOUSE_USER = "house"
# Seeded liquidity: asks $0.55-0.60 and bids $0.40-0.45, a cent apart, 100 contracts a level.
_HOUSE_LEVELS: tuple[tuple[Side, range], ...] = (
    ("ask", range(5500, 6001, 100)),
    ("bid", range(4000, 4501, 100)),
)
_HOUSE_COUNT = 100 * 100


class RateLimited(Exception):
    """The bucket could not cover the request's cost."""


@dataclass(slots=True)
class Stats:
    """Counters for GET /_sim/stats."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    rate_limited: int = 0
    tokens_spent: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "write": 0.0})
    refused: dict[str, int] = field(default_factory=lambda: {"read": 0, "write": 0})
    """429s each bucket answered (a fault's 429 storm is not a bucket's)."""
    last_spend: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Per route: when it last spent, and its bucket's ``tokens_spent`` just after."""
    ws: WsStats = field(default_factory=WsStats)

    def record(self, route: str, outcome: str) -> None:
        """Count one answer: its status, or the fault that replaced or spoiled it."""
        self.requests[route, outcome] += 1
        if outcome in ("429", "storm_429"):
            self.rate_limited += 1

    def as_json(self) -> dict[str, Any]:
        """Requests by route and outcome, 429s, tokens spent and 429s per bucket, and the
        WebSocket's connections, frames and faults."""
        by_route: dict[str, dict[str, int]] = {}
        for (route, outcome), n in sorted(self.requests.items()):
            by_route.setdefault(route, {})[outcome] = n
        return {
            "requests": by_route,
            "rate_limited": self.rate_limited,
            "tokens_spent": self.tokens_spent,
            "refused": self.refused,
            "last_spend": {
                route: {"at_s": at, "tokens_spent": spent}
                for route, (at, spent) in sorted(self.last_spend.items())
            },
            "ws": self.ws.as_json(),
        }


class SimState:
    """The exchange, the keys, every account's buckets, the REST and WebSocket faults and the
    stats."""

    def __init__(
        self,
        config: SimConfig,
        *,
        clock_ms: Callable[[], int] | None = None,
        exchange: Exchange | None = None,
    ) -> None:
        self.config = config
        self.clock_ms: Callable[[], int] = clock_ms or (lambda: time.time_ns() // 1_000_000)
        # Buckets follow a fake clock when one is given, else the monotonic one. Seconds since
        # start, not since the epoch: at 1.7e9 s a float cannot hold 0.1 s steps exactly.
        self.clock_s: Callable[[], float] = time.monotonic
        if clock_ms is not None:
            fake, origin = clock_ms, clock_ms()
            self.clock_s = lambda: (fake() - origin) / 1000
        markets = [m.to_market() for m in config.markets]
        self.exchange = exchange or Exchange(
            clock_ms=self.clock_ms,
            markets=markets,
            auto_create_markets=config.auto_create_markets,
        )
        # Counted from the start, before any WebSocket observer, so position frames are current.
        self.positions = Positions()
        self.exchange.observe(self.positions)
        self.keys = KeyRing(config.max_clock_skew_ms, self.clock_ms)
        self.keys.add_configured(config.api_keys)
        self.tier = config.effective_tier()
        # Sim assumption: limits are per user (Kalshi: "your tier"), shared by a user's keys.
        self.buckets: dict[str, AccountBuckets] = {}
        self.faults = FaultInjector(config.faults, config.seed, self.clock_s)
        self.stats = Stats()
        # Read through the injector, so that PUT /_sim/faults reconfigures the socket's faults.
        self.ws_faults = WsFaults(
            lambda: self.faults.config.ws, config.seed, self.stats.ws, self.pause
        )
        self._seeded: set[str] = set()
        self._closing = asyncio.Event()
        for market in markets:
            self.prepare_market(market.ticker)

    def buckets_for(self, user_id: str) -> AccountBuckets:
        """The user's read and write buckets, created full on first use."""
        buckets = self.buckets.get(user_id)
        if buckets is None:
            buckets = self.buckets[user_id] = AccountBuckets(self.tier, self.clock_s)
        return buckets

    def spend(self, bucket: TokenBucket, name: BucketName, cost: int, route: str = "") -> None:
        """Take ``cost`` tokens or raise RateLimited (draining if refusals spend, by config).
        ``route``: the endpoint's key, for the stats."""
        if bucket.try_spend(cost):
            self.stats.tokens_spent[name] += cost
            self.stats.last_spend[route] = (self.clock_s(), self.stats.tokens_spent[name])
            return
        self.stats.refused[name] += 1
        if self.config.rejected_requests_spend_tokens:
            # A refused cost exceeds what is left, and buckets never go below zero.
            self.stats.tokens_spent[name] += bucket.tokens
            bucket.drain()
        raise RateLimited

    def prepare_market(self, ticker: str) -> None:
        """Make sure the market exists (or raise OrderRejected) and, once, seed house orders."""
        market = self.exchange.market(ticker)
        if not self.config.seed_liquidity or ticker in self._seeded:
            return
        self._seeded.add(ticker)
        for side, prices in _HOUSE_LEVELS:
            for price in prices:
                if market.min_price <= price <= market.max_price and price % market.tick == 0:
                    self.exchange.seed(ticker, HOUSE_USER, side, price, _HOUSE_COUNT)

    async def pause(self, seconds: float) -> bool:
        """Sleep, but wake at once when the server shuts down (so a hang cannot block it).
        False: woken by the shutdown."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        return not self._closing.is_set()

    def close(self) -> None:
        """Wake every pending pause; the app does this when it shuts down."""
        self._closing.set()

    def reopen(self) -> None:
        """Pauses sleep in full again: the server is listening once more after a restart."""
        self._closing = asyncio.Event()


@dataclass(slots=True)
class Call:
    """One authenticated request as a handler sees it."""

    request: web.Request
    state: SimState
    user_id: str
    bucket_name: BucketName
    default_cost: int
    route: str = ""
    """The endpoint's key (``POST /portfolio/events/orders``), as the stats name it."""

    @property
    def exchange(self) -> Exchange:
        return self.state.exchange

    def spend(self, cost: int | None = None) -> None:
        """Charge the endpoint's bucket (its listed cost unless ``cost`` is given)."""
        buckets = self.state.buckets_for(self.user_id)
        bucket = buckets.write if self.bucket_name == "write" else buckets.read
        cost = self.default_cost if cost is None else cost
        self.state.spend(bucket, self.bucket_name, cost, self.route)

    async def body(self, decoder: msgspec.json.Decoder[T]) -> T:
        """The request body decoded strictly (a whole-request 400 on any problem).

        Sim assumptions: the Content-Type header is not checked; handlers decode before they
        spend, so a body that fails to decode costs no tokens.
        """
        return decode(decoder, await self.request.read())


Handler = Callable[[Call], Awaitable[web.Response]]
