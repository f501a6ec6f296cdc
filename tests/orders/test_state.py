"""The order after acceptance: its table of moves, and ``user_order``/``fill`` frames read into
it in any order, twice or late."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.errors import IllegalTransition
from kalshi_router.orders.state import (
    FINAL,
    STATES,
    TABLE,
    TRANSITIONS,
    OrderView,
    State,
    apply,
)
from kalshi_router.wire.ws_models import Fill, FillFrame, UserOrder, UserOrderFrame

ORDER_ID = "ee587a1c-8b87-4dcf-b721-9f6f790619fa"
D = Decimal


def user_order(
    status: str,
    filled: str = "0",
    remaining: str = "10",
    *,
    fees: str = "0",
    reason: str | None = None,
) -> UserOrderFrame:
    return UserOrderFrame(
        sid=22,
        msg=UserOrder(
            order_id=ORDER_ID,
            user_id="u",
            ticker="FED-23DEC-T3.00",
            exchange_index=2,
            status=status,
            outcome_side="yes",
            book_side="bid",
            yes_price_dollars=D("0.35"),
            fill_count_fp=D(filled),
            remaining_count_fp=D(remaining),
            initial_count_fp=D(10),
            taker_fill_cost_dollars=D(0),
            maker_fill_cost_dollars=D(0),
            taker_fees_dollars=D(fees),
            maker_fees_dollars=D(0),
            client_order_id="c-1",
            created_ts_ms=1,
            last_update_reason=reason,
        ),
    )


def fill(trade_id: str, count: str, price: str = "0.35", fee: str = "0.01") -> FillFrame:
    return FillFrame(
        sid=13,
        msg=Fill(
            trade_id=trade_id,
            order_id=ORDER_ID,
            market_ticker="FED-23DEC-T3.00",
            exchange_index=2,
            is_taker=True,
            yes_price_dollars=D(price),
            count_fp=D(count),
            fee_cost=D(fee),
            post_position_fp=D(count),
            outcome_side="yes",
            book_side="bid",
            ts_ms=1,
        ),
    )


def view(state: State = "accepted", **fields: object) -> OrderView:
    return OrderView(ORDER_ID, initial=D(10), state=state, **fields)  # type: ignore[arg-type]


# --- the table ---


@pytest.mark.parametrize(("was", "to", "why"), TABLE)
def test_every_move_in_the_table_is_legal(was: State, to: State, why: str) -> None:
    assert view(was).move(to).state == to


ILLEGAL = [(was, to) for was, to in itertools.product(STATES, STATES) if to not in TRANSITIONS[was]]


@pytest.mark.parametrize(("was", "to"), ILLEGAL)
def test_every_other_move_raises_naming_the_order(was: State, to: State) -> None:
    with pytest.raises(IllegalTransition, match=f"{ORDER_ID}.*{was} -> {to}"):
        view(was).move(to)


@pytest.mark.parametrize("state", sorted(FINAL))
def test_a_final_state_has_no_way_out(state: State) -> None:
    assert TRANSITIONS[state] == frozenset()


def test_an_order_with_a_fill_is_never_absent() -> None:
    assert "reconciled_absent" not in TRANSITIONS["partially_filled"]


# --- one frame applied: (state before, frame, state after, filled, remaining, reason) ---

CASES = [
    ("accepted", user_order("resting"), "resting", "0", "10", None),
    ("accepted", user_order("resting", "4", "6"), "partially_filled", "4", "6", None),
    ("accepted", user_order("executed", "10", "0"), "filled", "10", "0", None),
    ("resting", user_order("canceled", "0", "0"), "cancelled", "0", "0", None),
    (
        "resting",
        user_order("canceled", "0", "0", reason="SelfTradeCancel"),
        "cancelled",
        "0",
        "0",
        "SelfTradeCancel",
    ),
    (
        "partially_filled",
        user_order("canceled", "4", "0", reason="ExpiryCancel"),
        "expired",
        "4",
        "0",
        "ExpiryCancel",
    ),
    ("resting", user_order("unknown"), "resting", "0", "10", None),
    ("resting", user_order("paused"), "resting", "0", "10", None),
    ("resting", user_order("resting", "0", "7", reason="Decrease"), "resting", "0", "7", None),
    # Older frames than what is known change no state.
    ("partially_filled", user_order("resting"), "partially_filled", "0", "10", None),
    ("cancelled", user_order("resting", "2", "8"), "cancelled", "2", "0", None),
    ("filled", user_order("canceled", "9", "0"), "filled", "9", "0", None),
    ("accepted", fill("t1", "3"), "partially_filled", "3", "7", None),
    ("resting", fill("t1", "10"), "filled", "10", "0", None),
    # A fill that comes after the cancel counts, and the order stays cancelled.
    ("cancelled", fill("t1", "3"), "cancelled", "3", "0", None),
]


@pytest.mark.parametrize(("was", "frame", "to", "filled", "remaining", "reason"), CASES)
def test_one_frame(
    was: State,
    frame: UserOrderFrame | FillFrame,
    to: State,
    filled: str,
    remaining: str,
    reason: str | None,
) -> None:
    after = apply(view(was), frame)
    assert (after.state, after.filled, after.remaining, after.reason) == (
        to,
        D(filled),
        D(remaining),
        reason,
    )


def test_a_fill_counts_once_by_trade_id() -> None:
    once = apply(view(), fill("t1", "3", fee="0.02"))
    assert apply(once, fill("t1", "3", fee="0.02")) is once
    assert (once.filled, once.fees, once.trade_ids) == (D(3), D("0.02"), frozenset({"t1"}))


def test_average_price_and_fees_over_fills() -> None:
    after = apply(apply(view(), fill("t1", "2", "0.30", "0.01")), fill("t2", "6", "0.40", "0.03"))
    assert (after.average_yes_price, after.fees, after.state) == (
        D("0.375"),
        D("0.04"),
        "partially_filled",
    )
    assert view().average_yes_price is None


def test_the_first_user_order_gives_the_count_and_client_order_id() -> None:
    after = apply(OrderView(ORDER_ID), user_order("resting"))
    assert (after.initial, after.client_order_id, after.remaining) == (D(10), "c-1", D(10))
    assert OrderView(ORDER_ID).remaining is None


def test_fees_are_the_larger_of_fills_and_the_feed() -> None:
    after = apply(view(), user_order("resting", "3", "7", fees="0.05"))
    assert apply(after, fill("t1", "3", fee="0.01")).fees == D("0.05")


# --- any order, any duplicates: the same end ---


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[UserOrderFrame | FillFrame], str]:
    """A consistent history of one order of 10: its fills, a resting snapshot after each, and
    perhaps a final snapshot; then shuffled with duplicates. Returns (frames, expected state)."""
    counts = draw(st.lists(st.integers(1, 4), max_size=4).filter(lambda c: sum(c) <= 10))
    fees = [D(draw(st.integers(0, 5))) / 100 for _ in counts]
    frames: list[UserOrderFrame | FillFrame] = []
    total, paid = 0, D(0)
    for number, (count, fee) in enumerate(zip(counts, fees, strict=True)):
        frames.append(fill(f"t{number}", str(count), fee=str(fee)))
        total, paid = total + count, paid + fee
        if total < 10:
            frames.append(user_order("resting", str(total), str(10 - total), fees=str(paid)))
    end = "partially_filled" if total else "accepted"
    if total == 10:
        end = "filled"
        frames.append(user_order("executed", "10", "0", fees=str(paid)))
    elif draw(st.booleans()):
        end = "cancelled"
        frames.append(user_order("canceled", str(total), "0", fees=str(paid)))
    duplicates = draw(st.lists(st.sampled_from(frames), max_size=6)) if frames else []
    return draw(st.permutations(frames + duplicates)), end


@given(histories())
def test_any_order_of_frames_gives_the_same_end(
    history: tuple[list[UserOrderFrame | FillFrame], str],
) -> None:
    frames, end = history
    fills = [frame.msg for frame in frames if isinstance(frame, FillFrame)]
    distinct = {item.trade_id: item for item in fills}.values()
    current = view()
    seen_final: State | None = None
    for frame in frames:
        current = apply(current, frame)
        assert seen_final is None or current.state == seen_final
        seen_final = current.state if current.final else None
    assert current.filled == sum((item.count_fp for item in distinct), D(0))
    assert current.fees == sum((item.fee_cost for item in distinct), D(0))
    assert current.state == end
