"""The tracker's memory: orders from the answer, the feed and REST in any order, each change
one update, fills once, bounded memory; and a property over lossy, shuffled, duplicated
histories reconciled by REST."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.orders.ledger import Ledger, LedgerStats
from kalshi_router.orders.state import CORRECTION_MOVES, TRANSITIONS
from kalshi_router.orders.updates import FillEvent, OrderUpdate, Source
from kalshi_router.wire.models import Order
from kalshi_router.wire.orders import accepted_from
from kalshi_router.wire.ws_models import UserOrder
from tests.orders.frames import CLIENT_ID, ORDER_ID, TICKER, D, fill, rest, user_order


def expect(
    ledger: Ledger, filled: str = "0", remaining: str = "10", **ids: str
) -> list[OrderUpdate]:
    return ledger.expect(
        order_id=ids.get("order_id", ORDER_ID),
        client_order_id=ids.get("client_order_id", CLIENT_ID),
        ticker=TICKER,
        book_side="bid",
        yes_price=D("0.35"),
        initial=D(10),
        filled=D(filled),
        remaining=D(remaining),
    )


def one(updates: list[OrderUpdate]) -> OrderUpdate:
    assert len(updates) == 1
    return updates[0]


# --- the answer, and the feed before it ---


def test_an_expected_order_is_tracked_from_the_answer() -> None:
    ledger = Ledger()
    update = one(expect(ledger))
    assert (update.source, update.state, update.order_id, update.client_order_id) == (
        "answer",
        "accepted",
        ORDER_ID,
        CLIENT_ID,
    )
    assert (update.initial, update.filled, update.remaining, update.yes_price) == (
        D(10),
        D(0),
        D(10),
        D("0.35"),
    )
    assert (update.fill, update.fees, update.average_fill_price) == (None, D(0), None)
    assert ledger.get(ORDER_ID) == ledger.get(CLIENT_ID) == update
    assert ledger.order_id_of(CLIENT_ID) == ORDER_ID


def test_an_answer_after_the_feed_merges_and_never_goes_back() -> None:
    ledger = Ledger()
    partly = one(ledger.on_user_order(user_order("resting", "3", "7", fees="0.02")))
    assert (partly.source, partly.state) == ("ws", "partially_filled")
    assert expect(ledger) == []
    assert ledger.get(CLIENT_ID) == partly


def test_an_answer_after_the_feed_adds_what_the_feed_did_not_say() -> None:
    ledger = Ledger()
    one(ledger.on_fill(fill("t1", "3")))
    update = one(expect(ledger, "0", "10"))
    # The fill is kept; the answer gives the order's count and limit price.
    assert (update.state, update.filled, update.remaining, update.initial) == (
        "partially_filled",
        D(3),
        D(7),
        D(10),
    )
    assert (update.source, update.yes_price) == ("answer", D("0.35"))


def test_an_order_never_expected_is_tracked_too() -> None:
    ledger = Ledger()
    update = one(ledger.on_user_order(user_order("resting", order_id="o-2", client_order_id="x")))
    assert (update.order_id, update.state, update.ticker) == ("o-2", "resting", TICKER)
    assert ledger.get("x") == update
    assert [u.order_id for u in ledger.open_orders()] == ["o-2"]


# --- fills ---


def test_a_fill_before_its_order_is_kept_and_merged() -> None:
    ledger = Ledger()
    early = one(ledger.on_fill(fill("t1", "4", "0.30", "0.02")))
    assert (early.state, early.filled, early.initial, early.remaining) == (
        "partially_filled",
        D(4),
        None,
        None,
    )
    assert early.fill is not None
    assert early.fill.trade_id == "t1"
    # The order's first snapshot does not count the fill yet: the fill stays counted.
    later = one(ledger.on_user_order(user_order("resting", "0", "10")))
    assert (later.state, later.filled, later.remaining, later.fill) == (
        "partially_filled",
        D(4),
        D(6),
        None,
    )
    assert (later.fees, later.average_fill_price) == (D("0.02"), D("0.30"))
    assert ledger.fills() == 1


def test_a_fill_counts_once_across_sources() -> None:
    ledger = Ledger()
    expect(ledger)
    assert one(ledger.on_fill(fill("t1", "3"), source="rest")).source == "rest"
    assert ledger.on_fill(fill("t1", "3")) == []
    assert ledger.on_fill(fill("t1", "3"), source="rest") == []
    last = one(ledger.on_fill(fill("t2", "7", fee="0.03")))
    assert (last.state, last.filled, last.fees, last.remaining) == (
        "filled",
        D(10),
        D("0.04"),
        D(0),
    )
    assert ledger.fills() == 2
    assert ledger.open_orders() == []


def test_a_fill_after_the_cancel_counts_and_the_order_stays_cancelled() -> None:
    ledger = Ledger()
    expect(ledger)
    one(ledger.on_user_order(user_order("canceled", "0", "0")))
    late = one(ledger.on_fill(fill("t1", "2")))
    assert (late.state, late.filled, late.fill is not None) == ("cancelled", D(2), True)


# --- REST snapshots ---


def test_an_older_snapshot_changes_nothing() -> None:
    ledger = Ledger()
    expect(ledger)
    one(ledger.on_user_order(user_order("resting", "5", "5")))
    assert ledger.on_rest_order(rest("resting", "2", "8")) == []
    assert ledger.get(ORDER_ID).filled == D(5)  # type: ignore[union-attr]


def test_rest_settles_what_the_feed_missed() -> None:
    ledger = Ledger()
    expect(ledger)
    update = one(ledger.on_rest_order(rest("canceled", "4", "0")))
    assert (update.source, update.state, update.filled, update.remaining, update.reason) == (
        "rest",
        "cancelled",
        D(4),
        D(0),
        None,
    )


def test_rest_is_the_truth_between_final_states() -> None:
    ledger = Ledger()
    expect(ledger)
    one(ledger.on_user_order(user_order("executed", "10", "0")))
    corrected = one(ledger.on_rest_order(rest("canceled", "6", "0")))
    assert (corrected.state, corrected.filled, corrected.source) == ("cancelled", D(10), "rest")
    assert corrected.reason == "REST says canceled (the feed said filled)"
    # The feed repeating itself does not undo the correction.
    assert ledger.on_user_order(user_order("executed", "10", "0")) == []
    assert ledger.stats().final == 1


def test_rest_passes_its_source_through() -> None:
    ledger = Ledger()
    assert one(ledger.on_rest_order(rest("resting"), source="answer")).source == "answer"


# --- absence ---


def test_absent_only_where_the_table_allows() -> None:
    ledger = Ledger()
    expect(ledger)
    gone = one(ledger.absent(ORDER_ID, "not listed 30s after the create"))
    assert (gone.state, gone.reason, gone.source) == (
        "reconciled_absent",
        "not listed 30s after the create",
        "rest",
    )
    assert ledger.absent("never-seen", "x") == []
    expect(ledger, order_id="o-2", client_order_id="c-2")
    one(ledger.on_fill(fill("t1", "1", order_id="o-2")))
    assert ledger.absent("o-2", "x") == []


def test_an_absent_order_that_shows_up_is_corrected() -> None:
    ledger = Ledger()
    expect(ledger)
    ledger.absent(ORDER_ID, "not listed")
    back = one(ledger.on_user_order(user_order("resting")))
    assert (back.state, back.reason) == ("resting", None)
    assert [u.order_id for u in ledger.open_orders()] == [ORDER_ID]
    assert ledger.stats().final == 0


# --- reading ---


def test_open_orders_by_ticker() -> None:
    ledger = Ledger()
    expect(ledger)
    ledger.on_user_order(user_order("resting", order_id="o-2", client_order_id="c-2", ticker="B"))
    ledger.on_user_order(user_order("canceled", "0", "0", order_id="o-3", client_order_id="c-3"))
    assert [u.order_id for u in ledger.open_orders()] == [ORDER_ID, "o-2"]
    assert [u.order_id for u in ledger.open_orders("B")] == ["o-2"]
    assert ledger.open_orders("C") == []
    assert ledger.stats() == LedgerStats(orders=3, open=2, final=1, fills=0, forgotten=0)


def test_an_amend_gives_a_second_client_order_id() -> None:
    ledger = Ledger()
    expect(ledger)
    ledger.on_user_order(user_order("resting", client_order_id="c-1-amended", reason="Amend"))
    assert ledger.order_id_of("c-1-amended") == ORDER_ID
    assert ledger.get("c-1-amended") == ledger.get(CLIENT_ID)
    assert ledger.get(CLIENT_ID).client_order_id == CLIENT_ID  # type: ignore[union-attr]


def test_get_of_an_unknown_key() -> None:
    ledger = Ledger()
    assert (ledger.get("x"), ledger.view("x"), ledger.order_id_of("x")) == (None, None, None)


# --- seen_as_order: the feed proves a create landed ---


def test_seen_as_order_from_the_feed() -> None:
    ledger = Ledger()
    assert ledger.seen_as_order(CLIENT_ID) is None
    ledger.on_user_order(user_order("resting", "2", "8"))
    seen = ledger.seen_as_order(CLIENT_ID)
    assert seen is not None
    assert (seen.order_id, seen.status, seen.ticker, seen.book_side, seen.outcome_side) == (
        ORDER_ID,
        "resting",
        TICKER,
        "bid",
        "yes",
    )
    assert (seen.fill_count_fp, seen.remaining_count_fp, seen.initial_count_fp) == (
        D(2),
        D(8),
        D(10),
    )
    accepted = accepted_from(seen)
    assert (accepted.order_id, accepted.fill_count, accepted.remaining_count) == (
        ORDER_ID,
        D(2),
        D(8),
    )


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (user_order("executed", "10", "0"), "executed"),
        (user_order("canceled", "3", "0"), "canceled"),
        (user_order("canceled", "0", "0", reason="ExpiryCancel"), "canceled"),
    ],
)
def test_seen_as_order_of_a_final_order(event: UserOrder, status: str) -> None:
    ledger = Ledger()
    ledger.on_user_order(event)
    seen = ledger.seen_as_order(CLIENT_ID)
    assert seen is not None
    assert (seen.status, seen.remaining_count_fp) == (status, D(0))


def test_seen_as_order_is_no_proof_when_absent_or_only_fills_are_known() -> None:
    ledger = Ledger()
    ledger.on_fill(fill("t1", "2"))
    assert ledger.get(CLIENT_ID) is not None
    assert ledger.seen_as_order(CLIENT_ID) is None
    expect(ledger, order_id="o-2", client_order_id="c-2")
    ledger.absent("o-2", "not listed")
    assert ledger.seen_as_order("c-2") is None


# --- memory ---


def test_final_orders_beyond_the_bound_are_forgotten_and_stay_so() -> None:
    ledger = Ledger(keep_final=2)
    for n in range(3):
        ledger.on_fill(fill(f"t{n}", "10", order_id=f"o-{n}", client_order_id=f"c-{n}"))
        ledger.on_user_order(
            user_order("executed", "10", "0", order_id=f"o-{n}", client_order_id=f"c-{n}")
        )
    assert (ledger.get("o-0"), ledger.get("c-0"), ledger.order_id_of("c-0")) == (None, None, None)
    assert ledger.get("o-1") is not None
    assert ledger.get("c-2") is not None
    # A late duplicate of the forgotten order's fill is not counted again.
    assert ledger.on_fill(fill("t0", "10", order_id="o-0", client_order_id="c-0")) == []
    assert ledger.on_rest_order(rest("executed", "10", "0", order_id="o-0")) == []
    assert ledger.stats() == LedgerStats(orders=2, open=0, final=2, fills=3, forgotten=1)


def test_open_orders_are_never_forgotten() -> None:
    ledger = Ledger(keep_final=0)
    expect(ledger)
    ledger.on_user_order(user_order("canceled", "0", "0", order_id="o-2", client_order_id="c-2"))
    assert ledger.get(CLIENT_ID) is not None
    assert ledger.get("o-2") is None
    assert ledger.stats().forgotten == 1


def test_bounds_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="keep_final"):
        Ledger(keep_final=-1)


# --- any interleaving, loss and duplication, then REST's truth ---


@dataclass(frozen=True)
class Truth:
    state: str
    filled: Decimal
    fees: Decimal
    notional: Decimal
    trade_ids: frozenset[str]


Step = Callable[[Ledger], list[OrderUpdate]]


@st.composite
def reconciled_histories(draw: st.DrawFn) -> tuple[list[Step], Truth]:
    """One order of 10's true history (its fills, the feed's snapshots after each, REST's
    snapshots along the way, perhaps an end), delivered as a shuffled subset with duplicates:
    the answer, some feed frames, every fill by the feed or REST or both, older REST snapshots;
    then REST's snapshot of the truth last."""
    counts = draw(st.lists(st.integers(1, 4), max_size=4).filter(lambda c: sum(c) <= 10))
    fills: list[FillEvent] = []
    frames: list[UserOrder] = [user_order("resting")]
    snapshots: list[Order] = [rest("resting")]
    total, paid, notional = 0, D(0), D(0)
    for number, count in enumerate(counts):
        fee, price = D(draw(st.integers(0, 5))) / 100, D(draw(st.integers(1, 99))) / 100
        fills.append(fill(f"t{number}", str(count), str(price), str(fee)))
        total, paid, notional = total + count, paid + fee, notional + price * count
        if total < 10:
            left = str(10 - total)
            frames.append(user_order("resting", str(total), left, fees=str(paid), reason="Trade"))
            snapshots.append(rest("resting", str(total), left))
    end = draw(st.sampled_from(["open", "canceled", "SelfTradeCancel", "ExpiryCancel"]))
    state = "partially_filled" if total else "resting"
    truth_snapshot = rest("resting", str(total), str(10 - total))
    if total == 10:
        state, end = "filled", "executed"
        frames.append(user_order("executed", "10", "0", fees=str(paid), reason="Trade"))
        truth_snapshot = rest("executed", "10", "0")
    elif end != "open":
        reason = None if end == "canceled" else end
        cancel = user_order("canceled", str(total), "0", fees=str(paid), reason=reason)
        frames.append(cancel)
        truth_snapshot = rest("canceled", str(total), "0")
        # REST cannot tell an expiry from a cancel: only the feed's frame can.
        state = "expired" if end == "ExpiryCancel" and draw(st.booleans()) else "cancelled"
        if state == "cancelled" and end == "ExpiryCancel":
            frames.remove(cancel)

    steps: list[Step] = [lambda ledger: expect(ledger)]
    delivered = draw(st.lists(st.sampled_from(frames), max_size=len(frames) + 2))
    if state == "expired" and frames[-1] not in delivered:
        delivered.append(frames[-1])
    steps += [partial(Ledger.on_user_order, order=frame) for frame in delivered]
    for item in fills:
        by: tuple[Source, ...] = draw(
            st.sampled_from([("ws",), ("rest",), ("ws", "rest"), ("ws", "ws", "rest")])
        )
        steps += [partial(Ledger.on_fill, fill=item, source=source) for source in by]
    older = draw(st.lists(st.sampled_from(snapshots), max_size=3))
    steps += [partial(Ledger.on_rest_order, order=snapshot) for snapshot in older]
    steps = draw(st.permutations(steps))
    steps.append(lambda ledger: ledger.on_rest_order(truth_snapshot))
    trade_ids = frozenset(item.trade_id for item in fills)
    return steps, Truth(state, D(total), paid, notional, trade_ids)


@given(reconciled_histories())
def test_any_delivery_reconciled_by_rest_ends_in_the_truth(
    history: tuple[list[Step], Truth],
) -> None:
    steps, truth = history
    ledger = Ledger()
    updates = [update for step in steps for update in step(ledger)]
    end = ledger.get(ORDER_ID)
    assert end is not None
    assert end == updates[-1]
    assert (end.state, end.filled, end.fees) == (truth.state, truth.filled, truth.fees)
    assert end.remaining == (0 if end.final else 10 - truth.filled)
    if truth.filled:
        assert end.average_fill_price == truth.notional / truth.filled
    # Every fill counted exactly once, whichever sources brought it and how often.
    counted = [u.fill.trade_id for u in updates if u.fill is not None]
    assert sorted(counted) == sorted(truth.trade_ids)
    assert ledger.fills() == len(truth.trade_ids)
    # Every change is a move of the table, or one of the corrections; nothing leaves the final
    # states, and within them only REST's reasonless cancel learns it was an expiry.
    for before, after in itertools.pairwise(updates):
        moved = (before.state, after.state)
        assert (
            after.state == before.state
            or after.state in TRANSITIONS[before.state]
            or (moved in CORRECTION_MOVES)
        )
        if before.final:
            assert after.state == before.state or moved == ("cancelled", "expired")
