"""An intent in flight: one state, and one table of the moves between states that are legal.

An intent's outcome is given exactly once, so where it stands is one field, moved only along
:data:`TRANSITIONS`; any other move is a bug of ours and raises :class:`IllegalTransition` (as
an order state machine does), rather than being ignored. ``settled`` has no way out: a second
outcome is always illegal. The router never attempts one: a caller cancelling its future does
not settle the intent (one still waiting is settled closed at once, one already sent keeps its
answer for a future nobody reads); a dispatcher crash first stops every task of the dispatcher,
so no answer arrives after the crash has failed everything; and ``aclose`` settles what is left
only after stopping them too.

``maybe_placed`` is a flag, not a state (it would double every state after ``sending``): an
attempt's answer was ambiguous, so the order may be at the exchange and only the same id may be
sent again. Only the plan for an attempt's answer raises it, while the intent is ``sending``,
and nothing lowers it.

The order's life after acceptance (resting, partly filled, filled, cancelled) is the order
tracker's, continuing from ``settled`` with an accepted outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, get_args

import msgspec

from kalshi_router.errors import IllegalTransition

Kind: TypeAlias = Literal["cancel", "single", "create"]
Client: TypeAlias = str | None
State: TypeAlias = Literal[
    "new", "queued", "waiting_retry", "sending", "looking_up", "leaving", "settled"
]
STATES: tuple[State, ...] = get_args(State)

TABLE: tuple[tuple[State, State, str], ...] = (
    # (from, to, who moves it and why)
    ("new", "queued", "Accumulator.push: the router took it"),
    ("queued", "sending", "Accumulator.cut: in the batch the dispatcher sends next"),
    ("queued", "leaving", "Accumulator.discard: deadline, caller's cancel, shutdown, crash"),
    ("waiting_retry", "queued", "Accumulator.promote: its backoff ended"),
    ("waiting_retry", "leaving", "Accumulator.discard: deadline, caller's cancel, shutdown, crash"),
    ("sending", "waiting_retry", "Accumulator.push_retry: not executed, or a cancel unanswered"),
    ("sending", "looking_up", "Dispatcher: a create unanswered, or a resend refused"),
    ("sending", "settled", "router: its answer; unknown at shutdown; a crash"),
    ("looking_up", "waiting_retry", "Accumulator.push_retry: absent after an unanswered attempt"),
    ("looking_up", "settled", "router: found, absent, or unknown; unknown at shutdown; a crash"),
    ("leaving", "settled", "router: expired or closed (unknown if it may have been placed)"),
)
"""Every legal move. ``new`` lasts only while the router builds the intent; ``leaving`` while
the one that took it out of the queue unsent gives it its outcome."""

TRANSITIONS: Mapping[State, frozenset[State]] = MappingProxyType(
    {state: frozenset(to for was, to, _ in TABLE if was == state) for state in STATES}
)
SETTLING: frozenset[State] = frozenset(was for was, to, _ in TABLE if to == "settled")
"""The states an outcome may be given in: the settling loops check it inline (a ``move`` is a
call per intent)."""


class Pending(msgspec.Struct, eq=False, gc=False):
    """One intent from submit to its outcome. ``key`` is its client_order_id (creates) or the
    order id it acts on (cancels, single-order requests). Compared and hashed by identity.

    A Struct rather than a dataclass: its constructor is msgspec's, in C, where a dataclass's
    generated ``__init__`` ran some fifty bytecodes for every intent. ``state`` and
    ``maybe_placed`` are fields like the others for that, but only ``move`` and
    ``mark_maybe_placed`` change them (the router builds every intent ``new``).

    ``gc=False``: the garbage collector never tracks one (an object less per intent for each
    of its passes: some 800 instructions an order when a batch of thousands is queued at
    once). Reference counting frees every settled intent, as nothing it refers to refers back
    to it (its future names it by key, see ``intake.IntentFuture``; tests/test_router.py pins
    it). The price: an intent abandoned in flight with its router and loop (no ``aclose``)
    sits in a cycle the collector cannot see, and keeps that router alive."""

    kind: Kind
    key: str
    ticker: str
    payload: Any
    future: asyncio.Future[Any]
    submitted: float
    deadline: float
    submitted_wall: float = 0.0
    queued_at: float = 0.0
    client: Client = None
    """Who sent it: intents of different clients take turns in their lane."""
    attempts: int = 0
    not_before: float = 0.0
    state: State = "new"
    maybe_placed: bool = False
    """A previous attempt may have reached the exchange: a resend is safe only with the same id,
    and a duplicate-id answer then means the order is there."""

    def move(self, to: State) -> None:
        """Move to ``to``; raises :class:`IllegalTransition` unless :data:`TABLE` has the move.
        (One dict and one set lookup: every intent makes three moves at least.)"""
        if to not in TRANSITIONS[self.state]:
            raise IllegalTransition(self.key, self.state, to)
        self.state = to

    def mark_maybe_placed(self) -> None:
        """The answer to the attempt being sent was ambiguous; legal only while ``sending``."""
        if self.state != "sending":
            raise IllegalTransition(self.key, self.state, "maybe_placed")
        self.maybe_placed = True

    def ids(self) -> dict[str, str]:
        """The identifying field for this intent's outcome."""
        return {"client_order_id" if self.kind == "create" else "order_id": self.key}
