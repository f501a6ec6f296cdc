"""The pre-trade risk gate: intent + exposure + limits -> pass, or a refusal naming the rule.

Synchronous and pure (the time comes from injected clocks), so it sits on the hot path before
an intent is queued and is tested without a loop. A refused intent settles ``Rejected`` with a
code ``risk.<rule>`` (``http_status=0``); nothing is sent, no write budget is spent, and the
gate's state is unchanged (a refusal reserves nothing and takes no token).

Creates. Checked in this order, the first failing check refusing:

1. ``risk.halted``: the state is ``halted``.
2. ``risk.reducing``: the state is ``reducing`` and the create could add exposure. A bid passes
   only if the worst case long after it stays <= 0 (position + open and pending bids + this
   bid <= 0: even if every bid filled and no ask did, it would only shrink a short position);
   an ask only if the worst case short after it stays <= 0 (open and pending asks + this ask
   <= position).
3. ``risk.price_collar`` (``price_min`` <= price <= ``price_max``), ``risk.max_contracts``,
   ``risk.max_notional`` (the order's worst-case cost: price x count for a bid, (1 - price) x
   count for an ask).
4. ``risk.max_open_orders``: open and pending orders on the ticker + 1.
5. ``risk.max_position``: worst case long (bid) or short (ask) after it, on the ticker.
6. ``risk.max_daily_notional``: bought today at worst (fills today, open and pending orders
   at their worst-case cost) + this order's worst-case cost.
7. ``risk.max_orders_per_s``: a token in every fitting rule's bucket for this client; taken
   last, so that an intent another check refuses spends none.

A create that passes is reserved at its full size until its outcome (:meth:`RiskGate.settled`)
and the tracker's updates (:meth:`Exposure.on_update`) replace that. So concurrent intents
racing for the same room cannot all pass: the second sees the first's reservation.

Amends. ``halted`` refuses them; the collar, ``max_contracts`` and ``max_notional`` apply to the
new price and new total count. An amend that raises what the order may come to (its new total
over the order's known total, or over nothing when the order is not known) is refused while
``reducing``, must fit ``max_position`` and ``max_daily_notional`` by the increase, and is
reserved at its new total until it settles. Amends spend no orders-per-second token and do not
count as open orders. Cancels and decreases only take exposure off: they are never checked.

With no limit configured and the state ``active``, a check is one attribute read: nothing is
reserved then (``reducing`` set later counts the orders admitted before it once the tracker
reports them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Literal, TypeAlias

import msgspec

from kalshi_router.amounts import dollars
from kalshi_router.intent import AmendIntent, OrderIntent
from kalshi_router.outcome import Accepted, Amended, Outcome, Rejected, Unknown
from kalshi_router.risk.bucket import TokenBucket
from kalshi_router.risk.config import RiskConfig, TradingState, check_state
from kalshi_router.risk.exposure import Exposure, cost
from kalshi_router.risk.limits import Applicable, Rate, applicable
from kalshi_router.risk.refusals import count_text, order_limits, over, rejected, worst_case

__all__ = ["RiskFigures", "RiskGate", "TradingState"]

KEEP_RESOLVED = 10_000
"""(ticker, client) pairs whose applicable limits are kept worked out."""
_Buckets: TypeAlias = tuple[tuple[Rate, TokenBucket], ...]
KEEP_BUCKETS = 10_000
"""Buckets kept before full (idle) ones are dropped: a full bucket is the same as a new one."""


class RiskFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What the risk gate shows in stats and metrics."""

    state: TradingState
    refusals: dict[str, int]
    """Intents refused since the start, by code (``risk.max_position``...)."""
    reserved_creates: int
    """Creates admitted whose outcome is not known yet."""
    reserved_amends: int
    orders: int
    """Orders counted in the exposure (open, pending, or with fills still to count)."""


class RiskGate:
    """Pre-trade checks and the trading state, over one :class:`Exposure`."""

    def __init__(
        self,
        config: RiskConfig,
        exposure: Exposure,
        clock: Callable[[], float],
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock``: seconds on any steady scale (``time.monotonic``), for orders per second;
        ``wall_clock``: Unix seconds, for the UTC day of ``max_daily_notional``, which fills
        are dated by (their ``ts_ms``). Two clocks, because a monotonic clock has no day and a
        wall clock may step."""
        self._config = config
        self._exposure = exposure
        self._clock = clock
        self._wall_clock = wall_clock
        self._state: TradingState = check_state(config.state)
        self._limited = config.limited()
        self.plain = not self._limited and self._state == "active"
        """No limit and trading active: every check passes, reserving nothing (read-only)."""
        self._resolved: dict[tuple[str, str | None], tuple[Applicable, _Buckets]] = {}
        self._buckets: dict[tuple[int, str | None], TokenBucket] = {}
        self._refusals: dict[str, int] = {}

    @property
    def state(self) -> TradingState:
        return self._state

    @property
    def exposure(self) -> Exposure:
        return self._exposure

    def set_state(self, state: TradingState) -> None:
        """``active``, ``reducing`` or ``halted``, from now on; anything else raises
        :class:`ConfigError` naming the values allowed."""
        self._state = check_state(state, "state")
        self.plain = not self._limited and self._state == "active"

    # --- creates ---

    def check_create(self, intent: OrderIntent, client: str | None = None) -> Rejected | None:
        """``None``: the create passes and is reserved (key: its client_order_id); else the
        refusal to settle it with, and nothing changed."""
        if self.plain:
            return None
        refusal = self._refuse_create(intent, client)
        if refusal is not None:
            return self._refused(refusal)
        self._exposure.reserve(intent.client_order_id, intent)
        return None

    def _refuse_create(self, intent: OrderIntent, client: str | None) -> Rejected | None:
        if self._state == "halted":
            return self._halted(intent.client_order_id, None)
        ticker, side, count, price = intent.ticker, intent.side, intent.count, intent.price
        exposure = self._exposure
        if self._state == "reducing":
            after = exposure.worst_long(ticker) if side == "bid" else exposure.worst_short(ticker)
            if after + count > 0:
                return rejected(
                    intent,
                    "risk.reducing",
                    "trading is reducing: only orders that cannot add exposure pass; "
                    f"this {side} could leave {ticker} {worst_case(exposure, ticker, side, count)}",
                    f"limit=0 value={count_text(after + count)} scope=state",
                )
        limits, buckets = self._applicable(ticker, client)
        if limits.per_order:
            refusal = order_limits(intent, limits, side, count, price)
            if refusal is not None:
                return refusal
        bound = limits.max_open_orders
        if bound is not None and exposure.open_orders(ticker) + 1 > bound.value:
            held = exposure.open_orders(ticker)
            return over(
                intent,
                "max_open_orders",
                bound,
                held + 1,
                f"{ticker} has {held} open and pending orders already",
            )
        if limits.room:
            refusal = self._room(intent, limits, side, count, price)
            if refusal is not None:
                return refusal
        return self._rate(intent, buckets, client) if buckets else None

    # --- amends ---

    def check_amend(self, intent: AmendIntent, client: str | None = None) -> Rejected | None:
        """``None``: the amend passes (and, if it raises the order's count, is reserved under
        its order_id); else the refusal. See the module's docstring for the rules."""
        if self.plain:
            return None
        refusal = self._refuse_amend(intent, client)
        if refusal is not None:
            return self._refused(refusal)
        return None

    def _refuse_amend(self, intent: AmendIntent, client: str | None) -> Rejected | None:
        if self._state == "halted":
            return self._halted(None, intent.order_id)
        limits, _ = self._applicable(intent.ticker, client)
        side, count, price = intent.side, intent.count, intent.price
        refusal = order_limits(intent, limits, side, count, price)
        if refusal is not None:
            return refusal
        known = self._exposure.order_total(intent.order_id)
        increase = count if known is None else count - known
        if increase <= 0:
            return None
        if self._state == "reducing":
            was = "an unknown count" if known is None else count_text(known)
            return rejected(
                intent,
                "risk.reducing",
                "trading is reducing: an amend that raises an order's count does not pass "
                f"(to {count_text(count)} from {was})",
                f"limit=0 value={count_text(increase)} scope=state",
            )
        refusal = self._room(intent, limits, side, increase, price)
        if refusal is None:
            self._exposure.reserve_amend(intent.order_id, intent)
        return refusal

    # --- outcomes ---

    def reserving(self) -> bool:
        """Some create or amend is reserved: ``settled`` has work only then (settling only ever
        takes reservations away)."""
        exposure = self._exposure
        return bool(exposure.reserved_creates() or exposure.reserved_amends())

    def settled(
        self, key: str, outcome: Outcome, kind: Literal["create", "single", "cancel"] = "create"
    ) -> None:
        """The intent admitted under ``key`` settled with ``outcome``: a create's reservation
        goes unless it was accepted (the tracker's view replaces it) or is unknown (its worst
        case stays until the tracker resolves it). ``kind`` is the router's: ``single`` (an
        amend or a decrease, keyed by order_id) for amends; cancels reserve nothing."""
        exposure = self._exposure
        if kind == "create":
            if isinstance(outcome, Accepted):
                exposure.settled(key)
            elif not isinstance(outcome, Unknown):
                exposure.release(key)
        elif kind == "single":
            if isinstance(outcome, Amended):
                exposure.amend_settled(key)
            elif not isinstance(outcome, Unknown):
                exposure.release_amend(key)

    def figures(self) -> RiskFigures:
        return RiskFigures(
            state=self._state,
            refusals=dict(self._refusals),
            reserved_creates=self._exposure.reserved_creates(),
            reserved_amends=self._exposure.reserved_amends(),
            orders=self._exposure.orders(),
        )

    # --- checks shared by creates and amends ---

    def _room(
        self,
        intent: OrderIntent | AmendIntent,
        limits: Applicable,
        side: Literal["bid", "ask"],
        count: Decimal,
        price: Decimal,
    ) -> Rejected | None:
        """``max_position`` and ``max_daily_notional`` for ``count`` more contracts."""
        exposure, ticker = self._exposure, intent.ticker
        bound = limits.max_position
        if bound is not None:
            held = exposure.worst_long(ticker) if side == "bid" else exposure.worst_short(ticker)
            if held + count > bound.value:
                return over(
                    intent,
                    "max_position",
                    bound,
                    held + count,
                    worst_case(exposure, ticker, side, count),
                )
        bound = limits.max_daily_notional
        if bound is not None:
            spent = exposure.bought_today(self._wall_clock())
            more = count * cost(side, price)
            if spent + more > bound.value:
                return over(
                    intent,
                    "max_daily_notional",
                    bound,
                    spent + more,
                    f"bought today at worst {dollars(spent + more)} (fills, open and pending "
                    f"orders {dollars(spent)}, this {side} {dollars(more)})",
                    money=True,
                )
        return None

    def _rate(self, intent: OrderIntent, buckets: _Buckets, client: str | None) -> Rejected | None:
        now = self._clock()
        for rate, bucket in buckets:
            if not bucket.ready(now):
                who = "this router" if client is None else f"client {client}"
                return rejected(
                    intent,
                    "risk.max_orders_per_s",
                    f"max_orders_per_s {rate.per_s:g} for {rate.scope}: {who} has sent its "
                    f"orders for now (a bucket of {bucket.capacity:g}, refilled at "
                    f"{rate.per_s:g}/s; the next in {bucket.wait(now):.3g} s)",
                    f"limit={rate.per_s:g} scope={rate.scope}",
                )
        for _, bucket in buckets:
            bucket.take(now)
        return None

    def _applicable(self, ticker: str, client: str | None) -> tuple[Applicable, _Buckets]:
        """The limits for (ticker, client), and the buckets of its rates, worked out once."""
        key = (ticker, client)
        found = self._resolved.get(key)
        if found is None:
            if len(self._resolved) >= KEEP_RESOLVED:
                self._resolved.clear()
            limits = applicable(self._config, ticker, client)
            buckets = tuple((rate, self._bucket(rate, client)) for rate in limits.rates)
            found = self._resolved[key] = (limits, buckets)
        return found

    def _bucket(self, rate: Rate, client: str | None) -> TokenBucket:
        key = (rate.rule, client)
        bucket = self._buckets.get(key)
        if bucket is None:
            now = self._clock()
            if len(self._buckets) >= KEEP_BUCKETS:
                # A full bucket is as good as a new one. The worked-out limits hold buckets
                # too: they go with them, so that no key ever has two buckets.
                for old in [k for k, b in self._buckets.items() if b.full(now)]:
                    del self._buckets[old]
                self._resolved.clear()
            bucket = TokenBucket(rate.per_s, max(1.0, rate.per_s), now)
            self._buckets[key] = bucket
        return bucket

    def _halted(self, client_order_id: str | None, order_id: str | None) -> Rejected:
        return Rejected(
            code="risk.halted",
            message="trading is halted: no order or amend is admitted until the state is set "
            "to active or reducing (cancels still pass)",
            details="scope=state",
            client_order_id=client_order_id,
            order_id=order_id,
        )

    def _refused(self, refusal: Rejected) -> Rejected:
        self._refusals[refusal.code] = self._refusals.get(refusal.code, 0) + 1
        return refusal
