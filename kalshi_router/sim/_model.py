"""Value types and account state of the simulated exchange, and the checks on requests.

Units: prices in $0.0001, counts in hundredths of a contract, money in micro-dollars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

# $1 in price units; also the micro-dollars one hundredth of a contract pays out.
PRICE_ONE = 10_000

Side: TypeAlias = Literal["bid", "ask"]
TimeInForce: TypeAlias = Literal["fill_or_kill", "good_till_canceled", "immediate_or_cancel"]
Stp: TypeAlias = Literal["taker_at_cross", "maker"]
Status: TypeAlias = Literal["resting", "canceled", "executed"]


@dataclass(frozen=True, slots=True)
class Market:
    """A market's price structure and trading state."""

    ticker: str
    tick: int = 100
    min_price: int = 100
    max_price: int = 9900
    fractional: bool = True
    trading_active: bool = True

    def __post_init__(self) -> None:
        if not (self.tick > 0 and 0 < self.min_price <= self.max_price < PRICE_ONE):
            raise ValueError(f"bad price structure for {self.ticker}")


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A create request, already parsed into integer units."""

    user_id: str
    ticker: str
    client_order_id: str
    side: Side
    price: int
    count: int
    time_in_force: TimeInForce
    stp: Stp
    post_only: bool = False
    reduce_only: bool = False
    expiration_time: int | None = None
    order_group_id: str | None = None
    subaccount: int = 0
    cancel_order_on_pause: bool = False
    exchange_index: int = 0
    buy_max_cost: int | None = None


class OrderRejected(Exception):
    """The exchange refused a request; carries Kalshi's error triple and the HTTP status."""

    def __init__(self, code: str, message: str, details: str = "", http_status: int = 400) -> None:
        super().__init__(f"{code}: {message}" + (f" ({details})" if details else ""))
        self.code = code
        self.message = message
        self.details = details
        self.http_status = http_status


@dataclass(slots=True)
class SimOrder:
    """The exchange's record of one order; mutable, owned by ``Exchange``."""

    order_id: str
    user_id: str
    client_order_id: str
    ticker: str
    side: Side
    price: int
    initial_count: int
    fill_count: int
    remaining_count: int
    time_in_force: TimeInForce
    stp: Stp
    post_only: bool
    reduce_only: bool
    expiration_time: int | None
    order_group_id: str | None
    subaccount: int
    cancel_order_on_pause: bool
    exchange_index: int
    status: Status
    taker_fill_cost: int
    maker_fill_cost: int
    taker_fees: int
    maker_fees: int
    created_ts_ms: int
    last_update_ts_ms: int
    seq: int


@dataclass(frozen=True, slots=True)
class Placed:
    """What a create did; averages are micro-dollars per contract, None when nothing filled."""

    order: SimOrder
    fill_count: int
    remaining_count: int
    average_fill_price: int | None
    average_fee_paid: int | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Reduced:
    """What a cancel, decrease or amend did; ``fill_count`` counts fills an amend caused."""

    order: SimOrder
    reduced_by: int
    fill_count: int
    average_fill_price: int | None
    average_fee_paid: int | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class SimFill:
    """One side of one trade as the account's fill list keeps it (``GET /portfolio/fills``).

    The order's identity is copied, not referenced: an amend may rename its client_order_id
    later, and a fill stays as it was made. ``seq`` counts the account's fills from 1.
    """

    seq: int
    trade_id: str
    order_id: str
    client_order_id: str
    ticker: str
    side: Side
    is_taker: bool
    price: int
    qty: int
    fee: int
    ts_ms: int
    subaccount: int
    exchange_index: int


def unit_cost(side: Side, price: int) -> int:
    """Micro-dollars one hundredth of a contract costs: YES at ``price``, or NO at 1 - price."""
    return price if side == "bid" else PRICE_ONE - price


@dataclass(slots=True)
class Account:
    """One user's cash, reservations, positions and orders."""

    cash: int
    reserved: int = 0
    positions: dict[str, int] = field(default_factory=dict)
    orders: list[SimOrder] = field(default_factory=list)
    fills: list[SimFill] = field(default_factory=list)
    resting: dict[str, SimOrder] = field(default_factory=dict)
    used_client_ids: set[str] = field(default_factory=set)
    by_client_id: dict[str, SimOrder] = field(default_factory=dict)


def settle(acct: Account, side: Side, ticker: str, price: int, qty: int) -> None:
    """Move cash and position for one fill at ``price``."""
    # Buying YES against a short (or NO against a long) closes pairs that pay out $1 each.
    position = acct.positions.get(ticker, 0)
    acct.cash -= unit_cost(side, price) * qty
    closing = -position if side == "bid" else position
    acct.cash += PRICE_ONE * min(qty, max(closing, 0))
    acct.positions[ticker] = position + (qty if side == "bid" else -qty)


def invalid_order(details: str, message: str = "invalid order") -> OrderRejected:
    return OrderRejected("invalid_order", message, details)


def post_only_cross() -> OrderRejected:
    # Kalshi's changelog (Oct 24, 2025) spells this code with a space.
    return OrderRejected("invalid order", "invalid order", "post only cross")


def balance_too_low(details: str) -> OrderRejected:
    return OrderRejected("available_balance_too_low", "available balance too low", details)


def invalid_parameters(details: str) -> OrderRejected:
    return OrderRejected("invalid_parameters", "invalid parameters", details)


def not_found(order_id: str) -> OrderRejected:
    return OrderRejected("not_found", "order not found", order_id, http_status=404)


def not_resting(order: SimOrder) -> OrderRejected:
    return OrderRejected("order_not_resting", "order is not resting", order.status)


def duplicate(client_order_id: str) -> OrderRejected:
    return OrderRejected(
        "duplicate_client_order_id", "client order id already exists", client_order_id, 409
    )


def check_price(market: Market, price: int) -> None:
    if not market.min_price <= price <= market.max_price or price % market.tick:
        raise OrderRejected("invalid_price", "invalid price", f"{market.ticker}: {price}")


def check_count(market: Market, count: int, what: str = "count") -> None:
    if count < 1 or (not market.fractional and count % 100):
        raise OrderRejected("invalid_order_size", "invalid order size", f"{what}: {count}")


def check_expiration(expiration_time: int, now_ms: int) -> None:
    if expiration_time * 1000 <= now_ms:
        raise invalid_order(str(expiration_time), "Expiration timestamp must be in the future")


def check_trading(market: Market) -> None:
    # Sim assumption: Kalshi documents no code for orders on a paused market.
    if not market.trading_active:
        raise OrderRejected("trading_is_paused", "trading is paused", market.ticker)


def check_new_order(market: Market, new: NewOrder, now_ms: int) -> TimeInForce:
    """The checks that need no book; returns the effective time in force."""
    check_trading(market)
    check_price(market, new.price)
    check_count(market, new.count)
    # V1's buy_max_cost "will automatically have Fill-or-Kill (FoK) behavior".
    tif: TimeInForce = "fill_or_kill" if new.buy_max_cost is not None else new.time_in_force
    if new.reduce_only and tif != "immediate_or_cancel":
        raise invalid_order("reduce_only requires time_in_force immediate_or_cancel")
    if new.expiration_time is not None:
        if tif == "immediate_or_cancel":
            raise invalid_order(
                "immediate_or_cancel with expiration_time",
                "Cannot specify both immediate_or_cancel and expiration_time",
            )
        check_expiration(new.expiration_time, now_ms)
    return tif


def check_amend_target(
    order: SimOrder, ticker: str, side: Side, client_order_id: str | None
) -> None:
    """An amend must name the order's own ticker, side and (if given) client order id."""
    if order.ticker != ticker:
        raise OrderRejected("order_ticker_mismatch", "order ticker mismatch", ticker)
    if order.side != side:
        raise OrderRejected("order_side_mismatch", "order side mismatch", side)
    if client_order_id is not None and client_order_id != order.client_order_id:
        raise OrderRejected(
            "order_id_and_client_order_id_mismatch",
            "order id and client order id mismatch",
            client_order_id,
        )
    if order.status != "resting":
        raise not_resting(order)


def new_record(new: NewOrder, order_id: str, tif: TimeInForce, now_ms: int, seq: int) -> SimOrder:
    """A fresh, unfilled record of an accepted order."""
    return SimOrder(
        order_id=order_id,
        user_id=new.user_id,
        client_order_id=new.client_order_id,
        ticker=new.ticker,
        side=new.side,
        price=new.price,
        initial_count=new.count,
        fill_count=0,
        remaining_count=new.count,
        time_in_force=tif,
        stp=new.stp,
        post_only=new.post_only,
        reduce_only=new.reduce_only,
        expiration_time=new.expiration_time,
        order_group_id=new.order_group_id,
        subaccount=new.subaccount,
        cancel_order_on_pause=new.cancel_order_on_pause,
        exchange_index=new.exchange_index,
        status="resting",
        taker_fill_cost=0,
        maker_fill_cost=0,
        taker_fees=0,
        maker_fees=0,
        created_ts_ms=now_ms,
        last_update_ts_ms=now_ms,
        seq=seq,
    )
