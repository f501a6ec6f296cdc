"""An intent's one state: every move the table lists succeeds, every other raises, and any legal
life ends settled exactly once."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kalshi_router
from kalshi_router.errors import IllegalTransition, KalshiRouterError
from kalshi_router.pending import STATES, TABLE, TRANSITIONS, Pending, State
from tests.pendings import path, walked

LEGAL = {(was, to) for was, to, _ in TABLE}
ILLEGAL = sorted(set(itertools.product(STATES, STATES)) - LEGAL)


def made(key: str = "k") -> Pending:
    return Pending(
        kind="create",
        key=key,
        ticker="KX",
        payload=None,
        # Moving never touches the future: no loop needed.
        future=cast("asyncio.Future[Any]", None),
        submitted=0.0,
        deadline=1.0,
    )


def test_the_table_lists_each_move_once_between_known_states() -> None:
    assert len(LEGAL) == len(TABLE)
    assert {state for move in LEGAL for state in move} == set(STATES)
    assert {to for was in STATES for to in TRANSITIONS[was]} == {to for _, to in LEGAL}
    assert made().state == "new"


@pytest.mark.parametrize(("was", "to"), sorted(LEGAL), ids=lambda s: str(s))
def test_every_legal_move_succeeds(was: State, to: State) -> None:
    pending = walked(made(), was)
    pending.move(to)
    assert pending.state == to


@pytest.mark.parametrize(("was", "to"), ILLEGAL, ids=lambda s: str(s))
def test_every_other_move_raises_naming_the_intent_and_both_states(was: State, to: State) -> None:
    pending = walked(made("coid-1"), was)
    with pytest.raises(IllegalTransition) as raised:
        pending.move(to)
    assert (raised.value.key, raised.value.from_state, raised.value.to_state) == ("coid-1", was, to)
    assert str(raised.value) == f"intent 'coid-1': illegal transition {was} -> {to}"
    assert pending.state == was, "a refused move changes nothing"


def test_a_second_settle_is_illegal() -> None:
    pending = walked(made(), "settled")
    with pytest.raises(IllegalTransition, match="settled -> settled"):
        pending.move("settled")


def test_every_state_is_reachable_and_every_life_can_end_settled() -> None:
    for state in STATES:
        # ``path`` raises where there is no way.
        assert state == "new" or path("new", state)[-1] == state
        assert state == "settled" or path(state, "settled")[-1] == "settled"
    assert TRANSITIONS["settled"] == frozenset()


@pytest.mark.parametrize("state", STATES)
def test_only_the_answer_to_a_send_may_mark_an_intent_maybe_placed(state: State) -> None:
    pending = walked(made(), state)
    if state == "sending":
        pending.mark_maybe_placed()
        assert pending.maybe_placed
        # Marked for good: the moves after it keep it.
        pending.move("looking_up")
        pending.move("waiting_retry")
        assert pending.maybe_placed
        return
    with pytest.raises(IllegalTransition, match=f"{state} -> maybe_placed"):
        pending.mark_maybe_placed()
    assert not pending.maybe_placed


def test_illegal_transition_is_a_router_error_exported_from_the_package() -> None:
    assert issubclass(IllegalTransition, KalshiRouterError)
    assert kalshi_router.IllegalTransition is IllegalTransition


@given(st.lists(st.integers(0, 3), max_size=40), st.booleans())
def test_any_legal_life_ends_settled_exactly_once(choices: list[int], ambiguous: bool) -> None:
    """Random legal moves (``choices`` pick among the ways out, settling aside until the
    choices run out), then the shortest way to settled: it is reached once and is final."""
    pending = made()
    visited: list[State] = [pending.state]

    def move(to: State) -> None:
        if ambiguous and pending.state == "sending":  # each answer to a send is ambiguous
            pending.mark_maybe_placed()
        pending.move(to)
        visited.append(to)

    for choice in choices:
        ways = sorted(TRANSITIONS[pending.state] - {"settled"})
        if not ways:  # leaving: its only way out is its outcome
            break
        move(ways[choice % len(ways)])
    for state in path(pending.state, "settled"):
        move(state)
    assert visited.count("settled") == 1
    assert visited[-1] == "settled"
    assert pending.maybe_placed == (ambiguous and "sending" in visited[:-1])
    for to in STATES:
        with pytest.raises(IllegalTransition):
            pending.move(to)
