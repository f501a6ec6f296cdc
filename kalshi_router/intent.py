"""The caller's order and cancel intents: one type for every API version, validated when built.

Money is exact: prices and counts are ``Decimal`` (never ``float``), read by one rule whether
built here or decoded from the service's JSON or msgpack (see :mod:`kalshi_router.amounts`: a
str is dollars, an int cents; an int count is whole contracts), and normalised to Kalshi's
fixed-point forms.
"""

from __future__ import annotations

import functools
import re
import time
import uuid
from decimal import Decimal
from typing import Any, Literal, TypeAlias

import msgspec
from msgspec.structs import force_setattr

from kalshi_router.amounts import (
    CountLike,
    Exact,
    PriceLike,
    contracts,
    dollars,
    parse_count,
    parse_price,
)
from kalshi_router.errors import IntentError

BookSide: TypeAlias = Literal["bid", "ask"]
Action: TypeAlias = Literal["buy", "sell"]
OutcomeSide: TypeAlias = Literal["yes", "no"]
TimeInForce: TypeAlias = Literal["fill_or_kill", "good_till_canceled", "immediate_or_cancel"]
SelfTradePrevention: TypeAlias = Literal["taker_at_cross", "maker"]

_ONE = Decimal(1)
MAX_CLIENT_ORDER_ID = 64
MAX_SUBACCOUNT = 63
# Kalshi documents no REST format for client_order_id; its FIX ClOrdID rule (<= 64 characters,
# alphanumerics and _ + = : / -) is the strictest published one, so we hold REST to it too.
_CLIENT_ORDER_ID = re.compile(r"[A-Za-z0-9_+=:/\-]{1,64}")
_TICKER = re.compile(r"[\x21-\x7e]{1,128}")
# An order id is a segment of the amend and decrease URLs: "/", "?", "#", "%" or ".." there
# would address another endpoint, and a space or a non-ASCII letter would break the signature.
# Kalshi's own ids are UUIDs.
_ORDER_ID = re.compile(r"[A-Za-z0-9_+=:\-]{1,128}")
_SIDES = ("bid", "ask")
_TIFS = ("fill_or_kill", "good_till_canceled", "immediate_or_cancel")
_STPS = ("taker_at_cross", "maker")


def new_client_order_id() -> str:
    """A fresh UUID4: single-use forever, as Kalshi treats client order ids."""
    return str(uuid.uuid4())


def _check_int(field: str, value: object, low: int, high: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise IntentError(field, f"must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise IntentError(field, f"must be {bound}, got {value}")


def check_client_order_id(value: object, field: str = "client_order_id") -> None:
    """Kalshi's FIX ClOrdID rule: 1-64 characters of A-Z a-z 0-9 _ + = : / -."""
    if not isinstance(value, str):
        raise IntentError(field, f"must be a str, not {type(value).__name__}")
    if len(value) > MAX_CLIENT_ORDER_ID:
        raise IntentError(field, f"at most {MAX_CLIENT_ORDER_ID} characters, got {len(value)}")
    if not _CLIENT_ORDER_ID.fullmatch(value):
        raise IntentError(field, "1-64 characters of A-Z a-z 0-9 _ + = : / - only")


def check_ticker(value: object, field: str = "ticker") -> None:
    if not isinstance(value, str) or not _TICKER.fullmatch(value):
        raise IntentError(field, "must be 1-128 printable ASCII characters without spaces")


def _check_choice(field: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise IntentError(field, f"must be one of {', '.join(choices)}; got {value!r}")


class OrderIntent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One order a bot wants placed, independent of the wire dialect.

    ``side`` is on Kalshi's YES book (bid = buy YES, ask = sell YES) and ``price`` is the YES
    price; use :meth:`legacy` for the original buy/sell + yes/no form. A bad field raises
    :class:`IntentError` naming it, so nothing invalid ever reaches the wire::

        OrderIntent.bid("KXHIGHNY-26DEC31-T60", price="0.56", count=10)  # 10 at $0.56
        OrderIntent.ask("KXHIGHNY-26DEC31-T60", price=58, count="2.5")  # 2.5 at 58 cents
    """

    ticker: str
    side: BookSide
    price: Exact
    count: Exact
    time_in_force: TimeInForce = "good_till_canceled"
    self_trade_prevention: SelfTradePrevention = "taker_at_cross"
    client_order_id: str = msgspec.field(default_factory=new_client_order_id)
    post_only: bool = False
    reduce_only: bool = False
    expiration_time: int | None = None
    """Unix seconds; only with good_till_canceled."""
    order_group_id: str | None = None
    subaccount: int | None = None
    cancel_order_on_pause: bool = False
    exchange_index: int | None = None
    buy_max_cost: int | None = None
    """V1 only: cost cap in cents (implies fill-or-kill)."""
    sell_position_floor: int | None = None
    """V1 only and deprecated by Kalshi: only 0 is accepted."""

    def __post_init__(self) -> None:
        check_ticker(self.ticker)
        _check_choice("side", self.side, _SIDES)
        force_setattr(self, "price", parse_price(self.price))
        force_setattr(self, "count", parse_count(self.count))
        _check_choice("time_in_force", self.time_in_force, _TIFS)
        _check_choice("self_trade_prevention", self.self_trade_prevention, _STPS)
        check_client_order_id(self.client_order_id)
        for flag in ("post_only", "reduce_only", "cancel_order_on_pause"):
            if not isinstance(getattr(self, flag), bool):
                raise IntentError(flag, "must be true or false")
        ioc = self.time_in_force == "immediate_or_cancel"
        if self.reduce_only and not ioc:
            raise IntentError("reduce_only", "only allowed with time_in_force immediate_or_cancel")
        if self.post_only and self.time_in_force != "good_till_canceled":
            # A post-only order that may not rest can never do anything.
            raise IntentError("post_only", "only allowed with time_in_force good_till_canceled")
        if self.expiration_time is not None:
            self._check_expiration(self.expiration_time)
        if self.order_group_id is not None and (
            not isinstance(self.order_group_id, str) or not _TICKER.fullmatch(self.order_group_id)
        ):
            # Printable ASCII: text that cannot be encoded (a lone surrogate) would otherwise
            # fail only when its whole batch is encoded.
            raise IntentError(
                "order_group_id",
                "must be a non-empty str of at most 128 printable ASCII characters, no spaces",
            )
        if self.subaccount is not None:
            _check_int("subaccount", self.subaccount, 0, MAX_SUBACCOUNT)
        if self.exchange_index is not None:
            _check_int("exchange_index", self.exchange_index, -1)
        if self.buy_max_cost is not None:
            _check_int("buy_max_cost", self.buy_max_cost, 1)
            if self.side != "bid":
                raise IntentError("buy_max_cost", "only for buys (side bid)")
        if self.sell_position_floor is not None:
            _check_int("sell_position_floor", self.sell_position_floor, 0, 0)

    def __repr__(self) -> str:
        # A sentence, so that a price and a count given the wrong way round show at a glance:
        # OrderIntent(bid 0.56 contracts of KXFOO at $0.10, client_order_id='...').
        return (
            f"OrderIntent({self.side} {contracts(self.count)} of {self.ticker} at"
            f" {dollars(self.price)}{_other_fields(self, _SAID)})"
        )

    def _check_expiration(self, expiration: object) -> None:
        _check_int("expiration_time", expiration, 1)
        if self.time_in_force == "immediate_or_cancel":
            raise IntentError("expiration_time", "immediate_or_cancel cannot have an expiration")
        if self.time_in_force != "good_till_canceled":
            raise IntentError("expiration_time", "only allowed with good_till_canceled")
        if isinstance(expiration, int) and expiration <= time.time():
            raise IntentError("expiration_time", f"must be in the future, got {expiration}")

    @classmethod
    def bid(cls, ticker: str, price: PriceLike, count: CountLike, **fields: Any) -> OrderIntent:
        """Buy ``count`` YES at ``price``: ``bid(ticker, price="0.56", count=10)``.

        A price is dollars as a str or Decimal, or cents as an int; a count is whole contracts
        as an int, or a str or Decimal to 2 places. Floats are refused."""
        return cls(
            ticker=ticker, side="bid", price=parse_price(price), count=parse_count(count), **fields
        )

    @classmethod
    def ask(cls, ticker: str, price: PriceLike, count: CountLike, **fields: Any) -> OrderIntent:
        """Sell ``count`` YES at ``price`` (the same as buying NO at 1 - price):
        ``ask(ticker, price="0.58", count=10)``."""
        return cls(
            ticker=ticker, side="ask", price=parse_price(price), count=parse_count(count), **fields
        )

    @classmethod
    def legacy(
        cls,
        *,
        ticker: str,
        action: Action,
        side: OutcomeSide,
        price: PriceLike,
        count: CountLike,
        **fields: Any,
    ) -> OrderIntent:
        """The original brief's form: buy/sell YES or NO at that side's own price.

        Buying NO at q is selling YES at 1 - q, so it becomes an ask at 1 - q (and so on).
        """
        _check_choice("action", action, ("buy", "sell"))
        _check_choice("side", side, ("yes", "no"))
        own = parse_price(price)
        yes_price = own if side == "yes" else _ONE - own
        book: BookSide = "bid" if (action == "buy") == (side == "yes") else "ask"
        return cls(ticker=ticker, side=book, price=yes_price, count=parse_count(count), **fields)

    @property
    def outcome_side(self) -> OutcomeSide:
        """The exposure the order adds: a bid is long YES, an ask is long NO."""
        return "yes" if self.side == "bid" else "no"


class CancelIntent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Cancel one resting order. ``ticker`` is required: Kalshi routes a cancel to the market's
    exchange shard by it, and an order id alone may land on the wrong shard."""

    order_id: str
    ticker: str
    subaccount: int | None = None
    exchange_index: int | None = None

    def __post_init__(self) -> None:
        _check_order_ref(self.order_id, self.ticker, self.subaccount, self.exchange_index)


class AmendIntent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Change a resting order's price and/or size (Kalshi's V2 amend).

    ``count`` is the new *total*: contracts already filled plus those that should rest after.
    Only an expiry-only change or a size decrease keeps the order's place in the queue.
    """

    order_id: str
    ticker: str
    side: BookSide
    price: Exact
    count: Exact
    client_order_id: str | None = None
    updated_client_order_id: str | None = None
    expiration_time: int | None = None
    """Unix seconds; 0 removes the expiry, None keeps it."""
    subaccount: int | None = None
    exchange_index: int | None = None

    def __post_init__(self) -> None:
        _check_order_ref(self.order_id, self.ticker, self.subaccount, self.exchange_index)
        _check_choice("side", self.side, _SIDES)
        force_setattr(self, "price", parse_price(self.price))
        force_setattr(self, "count", parse_count(self.count))
        for name in ("client_order_id", "updated_client_order_id"):
            value = getattr(self, name)
            if value is not None:
                check_client_order_id(value, name)
        if self.expiration_time is not None:
            _check_int("expiration_time", self.expiration_time, 0)
            if 0 < self.expiration_time <= time.time():
                raise IntentError("expiration_time", "must be in the future (or 0 to remove it)")

    def __repr__(self) -> str:
        return (
            f"AmendIntent(order {self.order_id} on {self.ticker}: {self.side}"
            f" {contracts(self.count)} in all at {dollars(self.price)}"
            f"{_other_fields(self, _AMEND_SAID)})"
        )


class DecreaseIntent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Take contracts off a resting order: exactly one of ``reduce_by`` and ``reduce_to``."""

    order_id: str
    ticker: str
    reduce_by: Exact | None = None
    reduce_to: Exact | None = None
    subaccount: int | None = None
    exchange_index: int | None = None

    def __post_init__(self) -> None:
        _check_order_ref(self.order_id, self.ticker, self.subaccount, self.exchange_index)
        if (self.reduce_by is None) == (self.reduce_to is None):
            raise IntentError("reduce_by", "give exactly one of reduce_by and reduce_to")
        if self.reduce_by is not None:
            force_setattr(self, "reduce_by", parse_count(self.reduce_by, "reduce_by"))
        if self.reduce_to is not None:
            # Zero cancels the rest of the order.
            to = parse_count(self.reduce_to, "reduce_to", allow_zero=True)
            force_setattr(self, "reduce_to", to)

    def __repr__(self) -> str:
        by = self.reduce_by is not None
        change = (
            f"reduce {'by' if by else 'to'} {contracts(self.reduce_by if by else self.reduce_to)}"
        )
        return (
            f"DecreaseIntent(order {self.order_id} on {self.ticker}: {change}"
            f"{_other_fields(self, _DECREASE_SAID)})"
        )


def _check_order_ref(
    order_id: object, ticker: object, subaccount: object, exchange_index: object
) -> None:
    if not isinstance(order_id, str) or not _ORDER_ID.fullmatch(order_id):
        raise IntentError(
            "order_id", "must be a non-empty str of at most 128 of A-Z a-z 0-9 _ + = : - only"
        )
    check_ticker(ticker)
    if subaccount is not None:
        _check_int("subaccount", subaccount, 0, MAX_SUBACCOUNT)
    if exchange_index is not None:
        _check_int("exchange_index", exchange_index, -1)


_SAID = ("side", "count", "ticker", "price")
_AMEND_SAID = ("order_id", "ticker", "side", "count", "price")
_DECREASE_SAID = ("order_id", "ticker", "reduce_by", "reduce_to")


def _other_fields(intent: msgspec.Struct, said: tuple[str, ...]) -> str:
    """Each field the sentence did not say and that is away from its default, as ', name=value'
    (a field without a default, like a generated client_order_id, always shows)."""
    return "".join(
        f", {name}={getattr(intent, name)!r}"
        for name, default in _defaults(type(intent))
        if name not in said and getattr(intent, name) != default
    )


@functools.cache
def _defaults(kind: type[msgspec.Struct]) -> tuple[tuple[str, object], ...]:
    # Once per class: msgspec.structs.fields resolves the type hints on every call.
    return tuple((field.name, field.default) for field in msgspec.structs.fields(kind))
