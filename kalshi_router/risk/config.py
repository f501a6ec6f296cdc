"""``[risk]``: pre-trade limits and the trading state, decoded from TOML with msgspec.

Every limit is optional (unset: no limit). Numbers follow the project's one rule
(:mod:`kalshi_router.amounts`): a price given as a str is dollars (``"0.05"``) and as an int is
cents (``5``); a count is an int of whole contracts or a str (``"2.5"``); a money amount
(``max_notional``, ``max_daily_notional``) is a str of dollars (``"250"``): an int there would
be ambiguous, since an int price means cents, so it is refused. Floats are refused everywhere
but in ``max_orders_per_s``, a rate of time that nothing rounds into money.

Limits come from three places, and every one that applies to an intent applies (the strictest
wins): ``[risk]`` itself (every intent), each ``[[risk.tickers]]`` whose ``match`` fits the
intent's ticker (an exact ticker, or a prefix ending in ``*``: ``"KXHIGHNY-*"``), and the
``[[risk.clients]]`` named like the service client that sent it.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, get_args

import msgspec
from msgspec.structs import force_setattr

from kalshi_router.amounts import parse_count, parse_price
from kalshi_router.client_names import name_problem
from kalshi_router.errors import ConfigError, IntentError

__all__ = [
    "ClientLimits",
    "RiskConfig",
    "RiskLimits",
    "TickerLimits",
    "TradingState",
    "check_state",
]

TradingState: TypeAlias = Literal["active", "reducing", "halted"]
"""``active``: every limit applies; ``reducing``: only creates that cannot add exposure pass
(see :mod:`kalshi_router.risk.gate`); ``halted``: no create or amend passes."""
STATES: tuple[TradingState, ...] = get_args(TradingState)

if TYPE_CHECKING:
    Amount: TypeAlias = Decimal
else:
    # As in kalshi_router.amounts: msgspec hands __post_init__ the value as TOML carried it
    # (int, str, float), so the one rule is applied there, naming the key.
    Amount = Any

COUNT_LIMITS = ("max_contracts", "max_position")
MONEY_LIMITS = ("max_notional", "max_daily_notional")
PRICE_LIMITS = ("price_min", "price_max")
EXPOSURE_LIMITS = ("max_open_orders", "max_position", "max_daily_notional")
"""Limits measured on what the account holds: they need the order tracker's updates."""
_MONEY_FORMS = 'a str of dollars ("250" or "250.00")'


def check_state(state: object, key: str = "risk.state") -> TradingState:
    """``state`` if it is a trading state; else a :class:`ConfigError` naming ``key``."""
    for known in STATES:
        if state == known:
            return known
    raise ConfigError(f"{key}: must be one of {', '.join(STATES)}; got {state!r}")


class RiskLimits(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One rule's limits; each unset one is no limit. Validated (and its numbers normalised to
    ``Decimal``) by the :class:`RiskConfig` that holds it, so that errors name its place."""

    max_contracts: Amount | None = None
    """Contracts in one order."""
    max_notional: Amount | None = None
    """Dollars one order may cost at worst: price x count for a bid, (1 - price) x count for
    an ask (selling YES is buying NO)."""
    price_min: Amount | None = None
    """The lowest YES price an order may have (the collar's floor)."""
    price_max: Amount | None = None
    """The highest YES price an order may have (the collar's ceiling)."""
    max_open_orders: int | None = None
    """Open orders on one ticker (resting, and creates admitted but not yet answered)."""
    max_position: Amount | None = None
    """Contracts on one ticker at worst, on either side: the position plus every open and
    pending order on that side, as if they all filled."""
    max_orders_per_s: float | None = None
    """Creates per second from one client (a token bucket holding one second's worth)."""
    max_daily_notional: Amount | None = None
    """Dollars bought on the account per UTC day: fills today plus the worst-case cost of every
    open and pending order."""

    def _normalise(self, prefix: str) -> None:
        for name in COUNT_LIMITS:
            value = getattr(self, name)
            if value is not None:
                force_setattr(self, name, _amount(prefix + name, value, parse_count))
        for name in PRICE_LIMITS:
            value = getattr(self, name)
            if value is not None:
                force_setattr(self, name, _amount(prefix + name, value, parse_price))
        for name in MONEY_LIMITS:
            value = getattr(self, name)
            if value is not None:
                force_setattr(self, name, _money(prefix + name, value))
        opens = self.max_open_orders
        if opens is not None and (type(opens) is not int or opens < 1):
            raise ConfigError(f"{prefix}max_open_orders: must be an int >= 1, got {opens!r}")
        rate = self.max_orders_per_s
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < math.inf
        ):
            raise ConfigError(f"{prefix}max_orders_per_s: must be a finite number > 0")
        low, high = self.price_min, self.price_max
        if low is not None and high is not None and low > high:
            raise ConfigError(f"{prefix}price_min: must be <= price_max ({low} > {high})")

    def limited(self) -> bool:
        """Whether this rule sets any limit."""
        return any(getattr(self, name) is not None for name in RiskLimits.__struct_fields__)


class TickerLimits(RiskLimits, kw_only=True, frozen=True):
    """``[[risk.tickers]]``: limits for the tickers ``match`` fits."""

    match: str
    """An exact ticker (``"KXHIGHNY-26DEC31-T60"``) or a prefix ending in ``*``
    (``"KXHIGHNY-*"``; ``"*"`` alone fits every ticker)."""

    def fits(self, ticker: str) -> bool:
        if self.match.endswith("*"):
            return ticker.startswith(self.match[:-1])
        return ticker == self.match


class ClientLimits(RiskLimits, kw_only=True, frozen=True):
    """``[[risk.clients]]``: limits for one service client (its ``X-Client-Name``)."""

    name: str


class RiskConfig(RiskLimits, kw_only=True, frozen=True):
    """``[risk]``: the trading state at start, the global limits, and the rules per ticker and
    per client. Everything is off by default: no limit, state ``active``."""

    state: TradingState = "active"
    tickers: list[TickerLimits] = msgspec.field(default_factory=list)
    clients: list[ClientLimits] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        check_state(self.state)
        self._normalise("risk.")
        for index, rule in enumerate(self.tickers):
            where = f"risk.tickers[{index}]."
            if not isinstance(rule, TickerLimits):
                raise ConfigError(f"{where[:-1]}: must be a TickerLimits")
            _check_match(where + "match", rule.match)
            rule._normalise(where)
        seen: set[str] = set()
        for index, client in enumerate(self.clients):
            where = f"risk.clients[{index}]."
            if not isinstance(client, ClientLimits):
                raise ConfigError(f"{where[:-1]}: must be a ClientLimits")
            problem = name_problem(client.name) if isinstance(client.name, str) else "not a str"
            if problem:
                raise ConfigError(f"{where}name: {problem}")
            if client.name in seen:
                raise ConfigError(f"{where}name: {client.name!r} has a rule already")
            seen.add(client.name)
            client._normalise(where)

    def limited(self) -> bool:
        """Whether any limit is set anywhere (the gate's fast path when none is)."""
        rules: tuple[RiskLimits, ...] = (*self.tickers, *self.clients)
        return super().limited() or any(rule.limited() for rule in rules)

    def exposure_limits(self) -> list[str]:
        """The keys of limits measured on what the account holds (open orders, position,
        daily notional): they need the order tracker (``[orders] track = true``)."""
        found = []
        rules: list[tuple[str, RiskLimits]] = [("risk.", self)]
        rules += [(f"risk.tickers[{i}].", rule) for i, rule in enumerate(self.tickers)]
        rules += [(f"risk.clients[{i}].", rule) for i, rule in enumerate(self.clients)]
        for where, rule in rules:
            found += [where + name for name in EXPOSURE_LIMITS if getattr(rule, name) is not None]
        return found


def _check_match(key: str, match: object) -> None:
    if not isinstance(match, str) or not match:
        raise ConfigError(f"{key}: must be a ticker or a prefix ending in '*'")
    if "*" in match[:-1]:
        raise ConfigError(f"{key}: '*' may only end a prefix, got {match!r}")
    if not all("\x21" <= char <= "\x7e" for char in match):
        raise ConfigError(f"{key}: printable ASCII without spaces only, got {match!r}")


def _amount(key: str, value: object, parse: Any) -> Decimal:
    try:
        result: Decimal = parse(value, key)
    except IntentError as exc:
        raise ConfigError(str(exc)) from None
    return result


def _money(key: str, value: object) -> Decimal:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ConfigError(
            f"{key}: must be {_MONEY_FORMS}, not an int (an int price means cents, so an int "
            "amount would be ambiguous)"
        )
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except ArithmeticError:
            raise ConfigError(f"{key}: not a decimal number: {value!r}") from None
    elif isinstance(value, float):
        raise ConfigError(f"{key}: must not be a float; send {_MONEY_FORMS}")
    else:
        raise ConfigError(f"{key}: must be {_MONEY_FORMS}, not {type(value).__name__}")
    if not amount.is_finite() or not amount > 0:
        raise ConfigError(f"{key}: must be > 0, got {value!r}")
    return amount
