"""The positions the account already held when the tracker started: read once through REST
(``GET /portfolio/positions``, every page) and taken as each market's baseline.

Fills alone cannot tell what an account held before the router saw it, so a router started
on an account with positions would under-count them (and a ``max_position`` limit could let it
pass its limit). The tracker therefore reads the positions at start, after the feed is
subscribed and before its first sweep, and seeds both :class:`~kalshi_router.orders.watch.Watch`
(``router.orders.positions()``) and its position listeners (the risk gate's exposure).

**The one rule that counts each fill once**: a market's seed holds every fill of that market
with a time (the fill's ``ts_ms``) at or before the seed's time (:attr:`PositionSeed.as_of_ms`,
Kalshi's ``last_updated_ts`` for the market, "last time the position is updated"); a fill with
a later time is not in it and moves the position. Whatever brings a fill (the feed before or
after the read, the first sweep's REST fills, which look back to 120 s before the start) and
in whatever order, the position is the seed plus the fills after its time. Both times are the
exchange's own, so our clock's skew plays no part; and should Kalshi's positions lag its fills
(reported in the V1 era), a lagging snapshot has an older ``last_updated_ts``, so the fills it
lacks still count. A market the listing leaves out has no seed: every fill in it counts.
Assumed (unconfirmed): Kalshi stamps ``last_updated_ts`` when a fill changes the position, at
least to the millisecond of the fills' ``ts_ms``; two fills in the same millisecond on either
side of the read would be taken as both in the seed. An answer without ``last_updated_ts``
(older specs) takes the time the read was sent, on our clock.

**What a seed's figures mean** (:class:`~kalshi_router.orders.updates.Position`'s terms):
``position`` is Kalshi's ``position_fp`` (YES contracts, negative for NO); ``fees`` its
``fees_paid_dollars``; ``cost`` is what counting every fill of the account's history would have
given: dollars paid buying YES less dollars received selling it, i.e.
``market_exposure_dollars`` (the cost of the contracts held, of whichever outcome) plus the
position where it is short (a NO contract bought at ``q`` is a YES contract sold at ``1 - q``)
less ``realized_pnl_dollars`` (which Kalshi is assumed to state before fees, as the simulator
does). ``volume`` starts at 0: Kalshi gives the dollars traded, not the contracts, so
``volume`` counts the contracts traded since the start.

Only the primary subaccount's positions are read (Kalshi's default, "Defaults to 0"), and only
unsettled ones (its default too). The positions are read at start only, not after each
reconnect: a reconnect's sweep already recovers every fill the feed lost (by ``trade_id``, since
the previous sweep), so the fills keep the positions whole; a second read would need the same
rule drawn again against fills already counted, for nothing the sweep does not already give.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from kalshi_router.errors import ExchangeError, WireError
from kalshi_router.wire.positions import MarketPosition

if TYPE_CHECKING:  # the configuration imports the risk gate, which imports this package
    from kalshi_router.config import OrdersConfig
    from kalshi_router.wire.client import ExchangeClient

__all__ = ["ATTEMPTS", "PositionSeed", "read_seeds", "seed_of"]

log = logging.getLogger(__name__)
_ZERO = Decimal(0)
_PAGE = 1000
ATTEMPTS = 6
"""Tries of one page before the start fails: a transport error, an unreadable answer, a 429 or
a 5xx is tried again after a jittered backoff; any other answer fails at once."""


class PositionSeed(msgspec.Struct, frozen=True, kw_only=True):
    """One market's position when the tracker started, in :class:`Position`'s terms (see the
    module docstring for what ``cost`` means)."""

    ticker: str
    position: Decimal
    cost: Decimal
    fees: Decimal
    as_of_ms: int
    """The seed's time (epoch ms, the exchange's clock): it holds every fill of its market at
    or before this time, and none after."""

    def holds(self, ts_ms: int) -> bool:
        """Whether a fill of this market at ``ts_ms`` is in the seed already."""
        return ts_ms <= self.as_of_ms


def seed_of(position: MarketPosition, read_ms: int) -> PositionSeed:
    """Kalshi's ``MarketPosition`` as a seed; ``read_ms`` stands for its time when the answer
    gave no ``last_updated_ts``."""
    held = position.position_fp
    cost = position.market_exposure_dollars + min(held, _ZERO) - position.realized_pnl_dollars
    updated = position.updated_ms
    return PositionSeed(
        ticker=position.ticker,
        position=held,
        cost=cost,
        fees=position.fees_paid_dollars,
        as_of_ms=read_ms if updated is None else updated,
    )


def _passing(exc: WireError) -> bool:
    return not isinstance(exc, ExchangeError) or exc.status == 429 or exc.status >= 500


async def read_seeds(
    client: ExchangeClient,
    read: Callable[[], Awaitable[None]],
    wall: Callable[[], float],
    config: OrdersConfig,
    rng: random.Random,
) -> list[PositionSeed]:
    """Every position of the account, page after page; ``read`` is awaited before each request
    (the read budget). Raises the last error when a page failed :data:`ATTEMPTS` times (backing
    off as the feed reconnects), or at once when the exchange refused it (a 4xx but 429)."""
    seeds: list[PositionSeed] = []
    cursor: str | None = None
    while True:
        for attempt in range(ATTEMPTS):
            await read()
            read_ms = int(wall() * 1000)
            try:
                page = await client.get_positions(cursor=cursor, limit=_PAGE)
                break
            except WireError as exc:
                if attempt == ATTEMPTS - 1 or not _passing(exc):
                    raise
                log.warning("reading the account's positions failed, will retry: %s", exc)
                backoff = min(config.reconnect_cap_s, config.reconnect_base_s * 2**attempt)
                await asyncio.sleep(rng.uniform(0, backoff))
        seeds.extend(seed_of(position, read_ms) for position in page.market_positions)
        cursor = page.cursor
        if not cursor or not page.market_positions:
            return seeds
