"""Intents put in a state for a test by the transition table's own moves, never by assignment,
so no test starts from a state the router could not reach."""

from __future__ import annotations

from collections import deque

from kalshi_router.pending import TRANSITIONS, Pending, State


def path(start: State, end: State) -> list[State]:
    """The states of a shortest legal way from ``start`` to ``end`` (``start`` left out)."""
    paths: dict[State, list[State]] = {start: []}
    frontier = deque([start])
    while frontier:
        state = frontier.popleft()
        if state == end:
            return paths[state]
        for after in sorted(TRANSITIONS[state]):
            if after not in paths:
                paths[after] = [*paths[state], after]
                frontier.append(after)
    raise ValueError(f"no legal way from {start} to {end}")


def walked(pending: Pending, end: State, *, maybe_placed: bool = False) -> Pending:
    """``pending``, moved to ``end`` (through ``sending``, marked, if ``maybe_placed``)."""
    if maybe_placed:
        for state in path(pending.state, "sending"):
            pending.move(state)
        pending.mark_maybe_placed()
    for state in path(pending.state, end):
        pending.move(state)
    return pending
