"""Formats, types and ranges of incoming requests, checked before the engine sees them.

Structural problems (bad JSON, wrong types, unknown or missing fields) fail the whole request.
Field rules (price and count strings, client_order_id, subaccount, shard) raise ``SimError``;
inside a batch that becomes the item's ``error`` while the other items proceed. Business rules
(market structure, post-only, reduce-only, expiry, balance, duplicates) are the engine's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from kalshi_router.sim.book import NewOrder, OrderRejected, Side, TimeInForce
from kalshi_router.sim.schema import CreateOrderV1Request, CreateOrderV2Request, ErrorBody

T = TypeVar("T")

# "Most request fields accept 2-4 decimal places (e.g., "0.56", "0.5600")" (FixedPointDollars).
_PRICE_RE = re.compile(r"(0|[1-9][0-9]*)\.([0-9]{2,4})")
# "Requests accept 0-2 decimal places (e.g., "10", "10.0", "10.00")" (FixedPointCount).
_COUNT_RE = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]{1,2}))?")
# Kalshi documents no REST format; this is FIX's ClOrdID rule (max 64, ^[\-\w:+=/]*$, ASCII).
_CLIENT_ORDER_ID_RE = re.compile(r"[A-Za-z0-9_+=:/-]{1,64}")
_QUERY_INT_RE = re.compile(r"-?[0-9]{1,18}")
MAX_SUBACCOUNT = 63
# Sim assumption: a single exchange shard, index 0; -1 asks for auto-routing, which lands there.
_SHARDS = (-1, 0)
_V1_CENTS = range(1, 100)


class SimError(Exception):
    """A rejected request or batch item, in Kalshi's error triple plus the HTTP status."""

    def __init__(self, code: str, message: str, details: str, status: int = 400) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.message = message
        self.details = details
        self.status = status


def error_body(exc: SimError | OrderRejected) -> ErrorBody:
    """The flat ErrorResponse for a rejection from validation or from the engine."""
    return ErrorBody(code=exc.code, message=exc.message, details=exc.details)


def invalid(details: str) -> SimError:
    """The generic 400 for a field that breaks a rule; ``details`` starts with the field."""
    return SimError("invalid_parameters", "invalid parameters", details)


def decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """Decode a request body strictly; any problem is a whole-request 400 naming the field."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise invalid(_field_message(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise SimError("bad_request", "malformed request body", f"body: {exc}") from None


def _field_message(text: str) -> str:
    """msgspec's "Why - at `$.orders[3]`" as "orders[3].field: Why"."""
    why, _, where = text.partition(" - at `$")
    path = where.rstrip("`").lstrip(".")
    named = re.search(r"(?:unknown|missing required) field `([^`]+)`", why)
    if named:
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return f"{path or 'body'}: {why}"


def _prefixed(field: str, prefix: str) -> str:
    return f"{prefix}.{field}" if prefix else field


def parse_price(text: str, field: str) -> int:
    """A FixedPointDollars request string in $0.0001 ("0.56" -> 5600)."""
    match = _PRICE_RE.fullmatch(text)
    if match is None:
        raise SimError(
            "invalid_price",
            "invalid price",
            f"{field}: {text!r} is not a dollar amount with 2-4 decimal places",
        )
    whole, frac = match.groups()
    return int(whole) * 10_000 + int(frac.ljust(4, "0"))


def parse_count(text: str, field: str) -> int:
    """A FixedPointCount request string in hundredths ("10" -> 1000, "2.5" -> 250)."""
    match = _COUNT_RE.fullmatch(text)
    if match is None:
        raise SimError(
            "invalid_order_size",
            "invalid order size",
            f"{field}: {text!r} is not a contract count with 0-2 decimal places",
        )
    whole, frac = match.groups()
    return int(whole) * 100 + int((frac or "").ljust(2, "0"))


def client_order_id(value: str | UnsetType, field: str) -> str:
    """The id, or "" when omitted (Go cannot tell "" from absent for this field)."""
    if value is UNSET or value == "":
        return ""
    if _CLIENT_ORDER_ID_RE.fullmatch(value) is None:
        raise invalid(f"{field}: must be at most 64 characters of A-Z a-z 0-9 _ + = : / -")
    return value


def subaccount(value: int | UnsetType, field: str) -> int:
    """The subaccount number; every user has all 64 (sim assumption)."""
    if value is UNSET:
        return 0
    if not 0 <= value <= MAX_SUBACCOUNT:
        raise invalid(f"{field}: must be 0-{MAX_SUBACCOUNT}")
    return value


def exchange_index(value: int | UnsetType, field: str) -> int:
    """The shard the request addresses, after auto-routing."""
    if value is UNSET:
        return 0
    if value not in _SHARDS:
        raise invalid(f"{field}: unknown exchange shard {value}; the sim has shard 0 only")
    return 0


def expiration(value: int | UnsetType, field: str) -> int | None:
    """Unix seconds; whether it lies in the future is the engine's check."""
    if value is UNSET:
        return None
    if value < 0:
        raise invalid(f"{field}: must not be negative")
    return value


def _group_id(value: str | UnsetType) -> str | None:
    """The group an order joins; "" is none (Go cannot tell "" from absent for this field).
    Whether the group exists and takes orders is the engine's check (``groups``)."""
    return None if value is UNSET or value == "" else value


def v2_order(req: CreateOrderV2Request, user_id: str, prefix: str = "") -> NewOrder:
    """A V2 create as the engine's NewOrder; ``prefix`` is e.g. "orders[3]" in a batch."""
    return NewOrder(
        user_id=user_id,
        ticker=req.ticker,
        client_order_id=client_order_id(req.client_order_id, _prefixed("client_order_id", prefix)),
        side=req.side,
        price=parse_price(req.price, _prefixed("price", prefix)),
        count=parse_count(req.count, _prefixed("count", prefix)),
        time_in_force=req.time_in_force,
        stp=req.self_trade_prevention_type,
        post_only=req.post_only,
        reduce_only=req.reduce_only,
        expiration_time=expiration(req.expiration_time, _prefixed("expiration_time", prefix)),
        order_group_id=_group_id(req.order_group_id),
        subaccount=subaccount(req.subaccount, _prefixed("subaccount", prefix)),
        cancel_order_on_pause=req.cancel_order_on_pause,
        exchange_index=exchange_index(req.exchange_index, _prefixed("exchange_index", prefix)),
    )


def _v1_count(req: CreateOrderV1Request, prefix: str) -> int:
    count = None if req.count is UNSET else req.count * 100
    if req.count is not UNSET and req.count < 1:
        raise SimError("invalid_order_size", "invalid order size", _prefixed("count", prefix))
    fp = None
    if req.count_fp is not UNSET and req.count_fp is not None:
        fp = parse_count(req.count_fp, _prefixed("count_fp", prefix))
    if count is not None and fp is not None and count != fp:
        raise invalid(f"{_prefixed('count_fp', prefix)}: count and count_fp must match")
    result = count if count is not None else fp
    if result is None:
        raise invalid(f"{_prefixed('count', prefix)}: provide count or count_fp")
    return result


def _v1_yes_price(req: CreateOrderV1Request, prefix: str) -> int:
    """The YES price in $0.0001 from whichever single price field was given."""
    given = [
        name
        for name in ("yes_price", "no_price", "yes_price_dollars", "no_price_dollars")
        if getattr(req, name) is not UNSET
    ]
    if len(given) != 1:
        raise SimError(
            "invalid_price",
            "invalid price",
            f"{prefix or 'order'}: give exactly one of yes_price, no_price, yes_price_dollars, "
            "no_price_dollars",
        )
    name = given[0]
    field = _prefixed(name, prefix)
    value: int | str = getattr(req, name)
    if isinstance(value, int):
        if value not in _V1_CENTS:
            raise SimError("invalid_price", "invalid price", f"{field}: must be 1-99 cents")
        price = value * 100
    else:
        price = parse_price(value, field)
    return price if name.startswith("yes") else 10_000 - price


def v1_order(req: CreateOrderV1Request, user_id: str, prefix: str = "") -> NewOrder:
    """A V1 create mapped onto the YES book.

    buy YES@p -> bid p; sell YES@p -> ask p; buy NO@q -> ask 1-q; sell NO@q -> bid 1-q.
    """
    if req.sell_position_floor is not UNSET and req.sell_position_floor != 0:
        raise invalid(f"{_prefixed('sell_position_floor', prefix)}: only 0 is accepted")
    side: Side = "bid" if (req.action == "buy") == (req.side == "yes") else "ask"
    # Sim assumption: V1 defaults are GTC and taker_at_cross when the fields are omitted.
    tif: TimeInForce = "good_till_canceled" if req.time_in_force is UNSET else req.time_in_force
    buy_max_cost = None
    if req.buy_max_cost is not UNSET:
        if req.buy_max_cost < 1:
            raise invalid(f"{_prefixed('buy_max_cost', prefix)}: must be positive")
        buy_max_cost = req.buy_max_cost
    return NewOrder(
        user_id=user_id,
        ticker=req.ticker,
        client_order_id=client_order_id(req.client_order_id, _prefixed("client_order_id", prefix)),
        side=side,
        price=_v1_yes_price(req, prefix),
        count=_v1_count(req, prefix),
        time_in_force=tif,
        stp="taker_at_cross"
        if req.self_trade_prevention_type is UNSET
        else req.self_trade_prevention_type,
        post_only=req.post_only,
        reduce_only=req.reduce_only,
        expiration_time=expiration(req.expiration_ts, _prefixed("expiration_ts", prefix)),
        order_group_id=_group_id(req.order_group_id),
        subaccount=subaccount(req.subaccount, _prefixed("subaccount", prefix)),
        cancel_order_on_pause=req.cancel_order_on_pause,
        exchange_index=exchange_index(req.exchange_index, _prefixed("exchange_index", prefix)),
        buy_max_cost=buy_max_cost,
    )


def query_int(
    query: Mapping[str, str], name: str, *, low: int | None = None, high: int | None = None
) -> int | None:
    """An optional integer query parameter, range-checked; a bad one is a 400 naming it."""
    text = query.get(name)
    if text is None:
        return None
    if _QUERY_INT_RE.fullmatch(text) is None:
        raise invalid(f"{name}: {text!r} is not an integer")
    value = int(text)
    if (low is not None and value < low) or (high is not None and value > high):
        raise invalid(f"{name}: {value} is out of range")
    return value
