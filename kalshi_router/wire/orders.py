"""What an order the exchange lists proves, as an outcome: the one place outside the dialects
that reads an order's fields."""

from __future__ import annotations

from kalshi_router.outcome import Accepted, Cancelled
from kalshi_router.wire.models import Order


def accepted_from(order: Order) -> Accepted:
    """The create that placed ``order`` (found by its client_order_id) was accepted."""
    return Accepted(
        client_order_id=order.client_order_id,
        order_id=order.order_id,
        fill_count=order.fill_count_fp,
        remaining_count=order.remaining_count_fp,
    )


def cancelled_from(order: Order) -> Cancelled | None:
    """The cancel ``order`` proves took effect, or None if it is not cancelled. The contracts
    taken off the book are those it was placed with less those that filled."""
    if order.status != "canceled":
        return None
    reduced = (order.initial_count_fp or order.fill_count_fp) - order.fill_count_fp
    return Cancelled(
        order_id=order.order_id, reduced_by=reduced, client_order_id=order.client_order_id
    )
