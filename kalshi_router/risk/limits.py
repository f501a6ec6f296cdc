"""Which limits apply to an intent: the strictest of every rule that fits its ticker and client.

A rule fits when it is ``[risk]`` itself, a ``[[risk.tickers]]`` whose ``match`` fits the
ticker, or the ``[[risk.clients]]`` named like the client. Each limit keeps the rule it came
from (its *scope*), so that a refusal can say which rule refused it. Orders per second is the
exception: each fitting rule's rate is a bucket of its own per client, and every one must have a
token, which is the strictest too, and lets a ticker rule's rate count only the orders on its
tickers.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kalshi_router.risk.config import RiskConfig, RiskLimits

__all__ = ["Applicable", "Bound", "Rate", "applicable", "scope_of"]

GLOBAL = "every ticker"


@dataclass(frozen=True, slots=True)
class Bound:
    """One limit and the scope of the rule that set it."""

    value: Decimal
    scope: str


@dataclass(frozen=True, slots=True)
class Rate:
    """One fitting rule's orders per second: ``rule`` names its bucket (per client)."""

    rule: int
    per_s: float
    scope: str


@dataclass(frozen=True, slots=True)
class Applicable:
    """The limits that apply to one (ticker, client): each the strictest, or None."""

    max_contracts: Bound | None = None
    max_notional: Bound | None = None
    price_min: Bound | None = None
    price_max: Bound | None = None
    max_open_orders: Bound | None = None
    max_position: Bound | None = None
    max_daily_notional: Bound | None = None
    rates: tuple[Rate, ...] = ()
    per_order: bool = False
    """Any of the limits on one order alone (collar, size, cost): the hot path skips them
    all at once when there is none."""
    room: bool = False
    """``max_position`` or ``max_daily_notional``."""


NONE = Applicable()
_LOWEST: tuple[str, ...] = ("max_contracts", "max_notional", "price_max", "max_open_orders")
_LOWEST += ("max_position", "max_daily_notional")
_PER_ORDER = ("max_contracts", "max_notional", "price_min", "price_max")


def scope_of(rule: RiskLimits, config: RiskConfig) -> str:
    """How a refusal names the rule: ``every ticker``, the ticker pattern, ``client <name>``."""
    if rule is config:
        return GLOBAL
    match = getattr(rule, "match", None)
    return match if isinstance(match, str) else f"client {getattr(rule, 'name', '?')}"


def applicable(config: RiskConfig, ticker: str, client: str | None) -> Applicable:
    """The strictest limits over every rule that fits ``ticker`` and ``client``."""
    fitting: list[tuple[int, RiskLimits]] = [(0, config)]
    fitting += [(1 + i, rule) for i, rule in enumerate(config.tickers) if rule.fits(ticker)]
    if client is not None:
        fitting += [(-1, rule) for rule in config.clients if rule.name == client]
    found: dict[str, Bound] = {}
    rates: list[Rate] = []
    for index, rule in fitting:
        scope = scope_of(rule, config)
        for name in _LOWEST:
            value = getattr(rule, name)
            if value is not None and (name not in found or value < found[name].value):
                found[name] = Bound(Decimal(value), scope)
        low = rule.price_min
        if low is not None and ("price_min" not in found or low > found["price_min"].value):
            found["price_min"] = Bound(low, scope)
        if rule.max_orders_per_s is not None:
            rates.append(Rate(index, float(rule.max_orders_per_s), scope))
    per_order = any(name in found for name in _PER_ORDER)
    room = "max_position" in found or "max_daily_notional" in found
    return Applicable(**found, rates=tuple(rates), per_order=per_order, room=room)
