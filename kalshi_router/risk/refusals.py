"""The refusals' words: each names the limit, its value, the rule's scope and what was over.

``message`` is for people (``max_position 100 for KXHIGHNY-*: worst case long 105 (position
80, open and pending bids 20, this bid 5)``); ``details`` is for programs
(``limit=100 value=105 scope=KXHIGHNY-*``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from kalshi_router.amounts import dollars
from kalshi_router.intent import AmendIntent, OrderIntent
from kalshi_router.outcome import Rejected
from kalshi_router.risk.exposure import Exposure, cost
from kalshi_router.risk.limits import Applicable, Bound

__all__ = ["count_text", "order_limits", "over", "rejected", "worst_case"]


def count_text(value: Decimal | int) -> str:
    """A count as people write it: 100, 2.5, -3."""
    if isinstance(value, int):
        return str(value)
    return f"{value.normalize():f}" if value else "0"


def order_limits(
    intent: OrderIntent | AmendIntent,
    limits: Applicable,
    side: Literal["bid", "ask"],
    count: Decimal,
    price: Decimal,
) -> Rejected | None:
    """The limits on one order alone: the price collar, its size, its worst-case cost."""
    bound = limits.price_min
    if bound is not None and price < bound.value:
        return over(
            intent,
            "price_min",
            bound,
            price,
            f"price {dollars(price)} is below it",
            code="risk.price_collar",
            money=True,
        )
    bound = limits.price_max
    if bound is not None and price > bound.value:
        return over(
            intent,
            "price_max",
            bound,
            price,
            f"price {dollars(price)} is above it",
            code="risk.price_collar",
            money=True,
        )
    bound = limits.max_contracts
    if bound is not None and count > bound.value:
        return over(
            intent, "max_contracts", bound, count, f"this order is {count_text(count)} contracts"
        )
    bound = limits.max_notional
    if bound is not None:
        unit = cost(side, price)
        notional = count * unit
        if notional > bound.value:
            return over(
                intent,
                "max_notional",
                bound,
                notional,
                f"this {side} costs {dollars(notional)} at worst ({count_text(count)} at "
                f"{dollars(unit)}{'' if side == 'bid' else ', 1 - its YES price'})",
                money=True,
            )
    return None


def worst_case(exposure: Exposure, ticker: str, side: Literal["bid", "ask"], count: Decimal) -> str:
    """``worst case long 105 (position 80, open and pending bids 20, this bid 5)``."""
    position = exposure.position(ticker)
    if side == "bid":
        held, way, orders = exposure.bids(ticker), "long", "bids"
        worst = position + held + count
    else:
        held, way, orders = exposure.asks(ticker), "short", "asks"
        worst = held - position + count
    return (
        f"worst case {way} {count_text(worst)} (position {count_text(position)}, "
        f"open and pending {orders} {count_text(held)}, this {side} {count_text(count)})"
    )


def over(
    intent: OrderIntent | AmendIntent,
    name: str,
    bound: Bound,
    value: Decimal | int,
    said: str,
    *,
    code: str | None = None,
    money: bool = False,
) -> Rejected:
    show = dollars if money else count_text
    return rejected(
        intent,
        code or f"risk.{name}",
        f"{name} {show(bound.value)} for {bound.scope}: {said}",
        f"limit={count_text(bound.value)} value={count_text(value)} scope={bound.scope}",
    )


def rejected(intent: OrderIntent | AmendIntent, code: str, message: str, details: str) -> Rejected:
    if isinstance(intent, OrderIntent):
        return Rejected(
            code=code, message=message, details=details, client_order_id=intent.client_order_id
        )
    return Rejected(
        code=code,
        message=message,
        details=details,
        client_order_id=intent.client_order_id,
        order_id=intent.order_id,
    )
