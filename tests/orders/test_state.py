"""The order after acceptance: its table of moves, and ``user_order`` frames, fills, REST
snapshots and the create's answer read into it in any order, twice or late."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.errors import IllegalTransition
from kalshi_router.orders.state import (
    CORRECTIONS,
    FINAL,
    STATES,
    TABLE,
    TRANSITIONS,
    Evidence,
    OrderView,
    State,
    apply,
    apply_answer,
    apply_rest,
    mark_absent,
)
from kalshi_router.orders.updates import FillEvent
from kalshi_router.wire.ws_models import UserOrder
from tests.orders.frames import ORDER_ID, TICKER, D, fill, rest, user_order


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
    # A frame that changes the order without a move still gives its reason.
    (
        "resting",
        user_order("resting", "0", "7", reason="Decrease"),
        "resting",
        "0",
        "7",
        "Decrease",
    ),
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
    frame: UserOrder | FillEvent,
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


# --- corrections: the only ways out of a final state ---


@pytest.mark.parametrize(("was", "to", "by", "why"), CORRECTIONS)
def test_every_correction_is_legal_for_its_evidence_only(
    was: State, to: State, by: frozenset[Evidence], why: str
) -> None:
    for evidence in by:
        assert view(was).correct(to, None, evidence).state == to
    for other in frozenset(get_args(Evidence)) - by:
        with pytest.raises(IllegalTransition):
            view(was).correct(to, None, other)


def test_corrections_leave_only_final_states() -> None:
    assert {was for was, _, _, _ in CORRECTIONS} <= FINAL
    assert not any(to in TRANSITIONS[was] for was, to, _, _ in CORRECTIONS)


def test_a_move_outside_both_tables_raises() -> None:
    with pytest.raises(IllegalTransition, match="filled -> resting"):
        view("filled").correct("resting", None, "rest")


# --- REST snapshots: the exchange's truth ---


def test_rest_moves_along_the_table_and_counts_only_grow() -> None:
    after = apply_rest(view(), rest("resting", "4", "6"))
    assert (after.state, after.filled, after.remaining) == ("partially_filled", D(4), D(6))
    older = apply_rest(after, rest("resting", "0", "10"))
    assert older == after
    assert apply_rest(after, rest("executed", "10", "0")).state == "filled"


def test_rest_identifies_an_order_first_seen_there() -> None:
    after = apply_rest(OrderView(ORDER_ID), rest("resting"))
    assert (after.client_order_id, after.ticker, after.book_side, after.yes_price) == (
        "c-1",
        TICKER,
        "bid",
        D("0.35"),
    )
    assert (after.initial, after.state, after.settled_by) == (D(10), "resting", None)


def test_rest_canceled_corrects_the_feeds_executed() -> None:
    filled = apply(view(), user_order("executed", "10", "0"))
    after = apply_rest(filled, rest("canceled", "6", "0"))
    assert (after.state, after.settled_by, after.filled) == ("cancelled", "rest", D(10))
    assert after.reason == "REST says canceled (the feed said filled)"


def test_rest_executed_corrects_the_feeds_cancel() -> None:
    cancelled = apply(view(), user_order("canceled", "4", "0", reason="ExpiryCancel"))
    after = apply_rest(cancelled, rest("executed", "10", "0"))
    assert (after.state, after.reason) == ("filled", "REST says executed (the feed said expired)")


def test_rest_canceled_agrees_with_an_expiry_it_cannot_name() -> None:
    expired = apply(view(), user_order("canceled", "0", "0", reason="ExpiryCancel"))
    assert apply_rest(expired, rest("canceled", "0", "0")) == expired


def test_the_feed_names_the_reason_of_a_cancel_rest_reported() -> None:
    by_rest = apply_rest(view("resting"), rest("canceled", "0", "0"))
    assert (by_rest.state, by_rest.reason, by_rest.settled_by) == ("cancelled", None, "rest")
    expired = apply(by_rest, user_order("canceled", "0", "0", reason="ExpiryCancel"))
    assert (expired.state, expired.reason, expired.settled_by) == (
        "expired",
        "ExpiryCancel",
        "user_order",
    )
    self_trade = apply(by_rest, user_order("canceled", "0", "0", reason="SelfTradeCancel"))
    assert (self_trade.state, self_trade.reason) == ("cancelled", "SelfTradeCancel")
    # Once the feed said why, another frame says nothing new.
    assert apply(expired, user_order("canceled", "0", "0", reason="SelfTradeCancel")) == expired


def test_the_feed_never_turns_its_own_cancel_into_an_expiry() -> None:
    cancelled = apply(view("resting"), user_order("canceled", "0", "0"))
    later = apply(cancelled, user_order("canceled", "0", "0", reason="ExpiryCancel"))
    assert (later.state, later.reason) == ("cancelled", None)


# --- the create's answer ---

ANSWERS = [
    # (filled, remaining, state)
    ("0", "10", "accepted"),
    ("3", "7", "partially_filled"),
    ("10", "0", "filled"),
    ("4", "0", "cancelled"),
]


@pytest.mark.parametrize(("filled", "remaining", "state"), ANSWERS)
def test_the_answer(filled: str, remaining: str, state: State) -> None:
    after = answer(OrderView(ORDER_ID), filled, remaining)
    assert (after.state, after.filled, after.initial, after.ticker) == (
        state,
        D(filled),
        D(10),
        TICKER,
    )
    assert after.remaining == (D(remaining) if state not in FINAL else D(0))


def answer(base: OrderView, filled: str, remaining: str) -> OrderView:
    return apply_answer(
        base,
        client_order_id="c-1",
        ticker=TICKER,
        book_side="bid",
        yes_price=D("0.35"),
        initial=D(10),
        filled=D(filled),
        remaining=D(remaining),
    )


def test_an_answer_read_after_the_feed_never_moves_it_back() -> None:
    resting = apply(OrderView(ORDER_ID), user_order("resting", "2", "8"))
    assert answer(resting, "0", "10") == resting


# --- absence ---


def test_absent_where_the_table_allows() -> None:
    gone = mark_absent(view("resting"), "not listed 30s after the create")
    assert (gone.state, gone.reason, gone.settled_by) == (
        "reconciled_absent",
        "not listed 30s after the create",
        "router",
    )
    partly = view("partially_filled")
    assert mark_absent(partly, "x") is partly


@pytest.mark.parametrize(
    ("step", "state", "reason"),
    [
        (lambda v: apply(v, user_order("resting", reason="Amend")), "resting", "Amend"),
        (lambda v: apply(v, fill("t1", "2")), "partially_filled", None),
        (lambda v: apply_rest(v, rest("canceled", "0", "0")), "cancelled", None),
    ],
)
def test_evidence_of_the_order_corrects_an_absence(
    step: Callable[[OrderView], OrderView], state: State, reason: str | None
) -> None:
    after = step(mark_absent(view(), "not listed"))
    assert (after.state, after.reason, after.settled_by) == (
        state,
        reason,
        None if state == "resting" or state == "partially_filled" else "rest",
    )


# --- what the order is ---


def test_the_price_is_the_newest_frames() -> None:
    newer = apply(view(), user_order("resting", price="0.40", ts=5))
    assert apply(newer, user_order("resting", price="0.30", ts=3)).yes_price == D("0.40")
    assert apply(newer, user_order("resting", price="0.45", ts=9)).yes_price == D("0.45")


def test_the_count_is_the_largest_given() -> None:
    amended = apply(view(), user_order("resting", "0", "15", initial="15"))
    assert apply(amended, user_order("resting", "0", "10")).initial == D(15)
    # Fills up to the old count no longer prove it filled.
    assert apply(amended, fill("t1", "10")).state == "partially_filled"


# --- any order, any duplicates: the same end ---


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[UserOrder | FillEvent], str]:
    """A consistent history of one order of 10: its fills, a resting snapshot after each, and
    perhaps a final snapshot; then shuffled with duplicates. Returns (events, expected state)."""
    counts = draw(st.lists(st.integers(1, 4), max_size=4).filter(lambda c: sum(c) <= 10))
    fees = [D(draw(st.integers(0, 5))) / 100 for _ in counts]
    events: list[UserOrder | FillEvent] = []
    total, paid = 0, D(0)
    for number, (count, fee) in enumerate(zip(counts, fees, strict=True)):
        events.append(fill(f"t{number}", str(count), fee=str(fee)))
        total, paid = total + count, paid + fee
        if total < 10:
            events.append(user_order("resting", str(total), str(10 - total), fees=str(paid)))
    end = "partially_filled" if total else "accepted"
    if total == 10:
        end = "filled"
        events.append(user_order("executed", "10", "0", fees=str(paid)))
    elif draw(st.booleans()):
        end = "cancelled"
        events.append(user_order("canceled", str(total), "0", fees=str(paid)))
    duplicates = draw(st.lists(st.sampled_from(events), max_size=6)) if events else []
    return draw(st.permutations(events + duplicates)), end


@given(histories())
def test_any_order_of_events_gives_the_same_end(
    history: tuple[list[UserOrder | FillEvent], str],
) -> None:
    events, end = history
    fills = [event for event in events if isinstance(event, FillEvent)]
    distinct = {item.trade_id: item for item in fills}.values()
    current = view()
    seen_final: State | None = None
    for event in events:
        current = apply(current, event)
        assert seen_final is None or current.state == seen_final
        seen_final = current.state if current.final else None
    assert current.filled == sum((item.count for item in distinct), D(0))
    assert current.fees == sum((item.fee for item in distinct), D(0))
    assert current.state == end
