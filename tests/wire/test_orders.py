"""What an order the exchange lists proves (wire.orders), and which refusal means "that
client_order_id is taken" (wire.reply.is_duplicate_id)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kalshi_router.outcome import Accepted, Cancelled, Rejected
from kalshi_router.wire.models import Order
from kalshi_router.wire.orders import accepted_from, cancelled_from
from kalshi_router.wire.reply import is_duplicate_id


def order(status: str, *, filled: str = "0", left: str = "3", initial: str | None = "5") -> Order:
    return Order(
        order_id="ord-1",
        client_order_id="c-1",
        ticker="KXTEST-1",
        status=status,
        fill_count_fp=Decimal(filled),
        remaining_count_fp=Decimal(left),
        initial_count_fp=None if initial is None else Decimal(initial),
    )


def test_a_listed_order_proves_its_create_was_accepted_with_its_counts() -> None:
    assert accepted_from(order("resting", filled="2", left="3")) == Accepted(
        client_order_id="c-1", order_id="ord-1", fill_count=Decimal(2), remaining_count=Decimal(3)
    )


@pytest.mark.parametrize(
    ("filled", "initial", "reduced_by"),
    [
        pytest.param("2", "5", Decimal(3), id="partly-filled"),
        pytest.param("0", "5", Decimal(5), id="unfilled"),
        pytest.param("4", None, Decimal(0), id="no-initial-count"),
    ],
)
def test_a_canceled_order_proves_the_cancel_took_what_had_not_filled(
    filled: str, initial: str | None, reduced_by: Decimal
) -> None:
    found = cancelled_from(order("canceled", filled=filled, left="0", initial=initial))
    assert found == Cancelled(order_id="ord-1", reduced_by=reduced_by, client_order_id="c-1")


@pytest.mark.parametrize("status", ["resting", "executed", "pending", "some_future_status"])
def test_an_order_in_any_other_state_proves_no_cancel(status: str) -> None:
    assert cancelled_from(order(status)) is None


@pytest.mark.parametrize(
    ("code", "duplicate"),
    [
        ("duplicate_client_order_id", True),
        ("order_already_exists", True),
        ("conflict", True),
        ("insufficient_balance", False),
        ("invalid_parameters", False),
    ],
)
def test_which_refusals_mean_the_client_order_id_is_taken(code: str, duplicate: bool) -> None:
    assert is_duplicate_id(Rejected(code=code, message="")) is duplicate
