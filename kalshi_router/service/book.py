"""What the service knows of each order, so that any client can ask about it later (the HTTP
answer may have been lost, or the bot asked not to wait): every action taken on it (place,
amend, decrease, cancel), in the order the service took them, each with its outcome once
settled; found by client_order_id or by order id.

An order's names come from the exchange's answers: an accepted place gives its order id, a
cancel's or an amend's answer its client_order_id (an amend may give it a new one).

Memory is bounded: at most ``keep`` settled actions in all (``service.keep_outcomes``), and
the newest ``ACTIONS_KEPT`` per order (older ones are counted as omitted). The orders acted on
least recently are forgotten first, but never one with an action pending (those are bounded by
the router's queue): if only such orders are left, their oldest settled actions are omitted.

With a journal, an order the book does not hold from its place on (placed before a restart,
placed elsewhere, or forgotten) is answered from the journal, and ``durable`` commits the
journal before the service acknowledges anything.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from kalshi_router.journal import SqliteJournal
from kalshi_router.outcome import Accepted, Amended, Cancelled, Outcome
from kalshi_router.service.history import ACTIONS_KEPT, from_journal
from kalshi_router.service.protocol import Action, OrderAction, OrderStatus, Verb

_ACTIONS: dict[Verb, Action] = {
    "submit": "place",
    "amend": "amend",
    "decrease": "decrease",
    "cancel": "cancel",
}


# Few objects per order (an order, its list of steps, a step per action; the step is the done
# callback): with tens of thousands of orders held, every object the garbage collector tracks
# makes its passes slower.


@dataclass(eq=False, slots=True)
class _Order:
    steps: list[_Step]
    client_order_id: str | None = None
    """Its newest names; ``aliases`` holds any it had before (an amend may rename it)."""
    order_id: str | None = None
    aliases: list[str] | None = None
    pending: int = 0
    omitted: int = 0
    placed_here: bool = False
    """The book has the order from its place on (some early actions may be omitted)."""
    accepted: Accepted | None = None

    def names(self) -> list[str]:
        return [
            name
            for name in (self.client_order_id, self.order_id, *(self.aliases or ()))
            if name is not None
        ]


@dataclass(eq=False, slots=True)
class _Step:
    book: OutcomeBook
    seq: int
    action: Action
    order: _Order
    """Reassigned when two records turn out to be one order."""
    outcome: Outcome | None = None

    def __call__(self, future: asyncio.Future[Any]) -> None:
        self.book._settled(self, future)


class OutcomeBook:
    """Orders by client_order_id and order id; see the module docstring."""

    def __init__(self, keep: int, journal: SqliteJournal | None = None) -> None:
        self._keep = keep
        self._per_order = min(keep, ACTIONS_KEPT)
        self._journal = journal
        self._by_client: dict[str, _Order] = {}
        self._by_order: dict[str, _Order] = {}
        # Least recently acted on first.
        self._recent: OrderedDict[_Order, None] = OrderedDict()
        self._held = 0
        self._seq = itertools.count()

    def track(self, verb: Verb, key: str, future: asyncio.Future[Any]) -> None:
        """``key``: the client_order_id of a place, the order id of any other action."""
        action = _ACTIONS[verb]
        place = action == "place"
        index = self._by_client if place else self._by_order
        order = index.get(key)
        if order is None:
            order = _Order([], key, None) if place else _Order([], None, key)
            index[key] = order
            self._recent[order] = None
        else:
            self._recent.move_to_end(order)
        order.placed_here |= place
        step = _Step(self, next(self._seq), action, order)
        order.steps.append(step)
        order.pending += 1
        future.add_done_callback(step)

    def _settled(self, step: _Step, future: asyncio.Future[Any]) -> None:
        order = step.order
        order.pending -= 1
        if future.cancelled() or future.exception() is not None:
            # No outcome to show (the router crashed): as if it had never been taken.
            order.steps.remove(step)
            if not order.steps:
                self._forget(order)
            return
        outcome: Outcome = future.result()
        step.outcome = outcome
        self._held += 1
        if isinstance(outcome, Accepted | Amended | Cancelled):
            if isinstance(outcome, Accepted) and step.action == "place":
                order.accepted = outcome
            if outcome.order_id != order.order_id:
                self._name(order, self._by_order, outcome.order_id)
            if outcome.client_order_id != order.client_order_id:
                self._name(order, self._by_client, outcome.client_order_id)
        # Pending orders are never forgotten: it is still there (or merged into ``order``).
        self._recent.move_to_end(order)
        while len(order.steps) > self._per_order and self._omit_oldest(order):
            pass
        while self._held > self._keep:
            idle = next((each for each in self._recent if not each.pending), None)
            if idle is not None:
                self._forget(idle)
            else:
                # Every order held has an action pending: each stays, its oldest outcomes go.
                next(each for each in self._recent if self._omit_oldest(each))

    def accepted(self, client_order_id: str) -> Accepted | None:
        """The accepted place of the order known by ``client_order_id``, if this book has one."""
        order = self._by_client.get(client_order_id)
        return None if order is None else order.accepted

    def find(self, key: str) -> OrderStatus | None:
        """The order known by ``key`` (client_order_id first, then order id), or None."""
        order = self._by_client.get(key) or self._by_order.get(key)
        if order is not None and (order.placed_here or self._journal is None):
            return _status(key, order)
        if self._journal is not None:
            self.durable()
            found = from_journal(self._journal, key)
            if found is not None:
                return found
        return None if order is None else _status(key, order)

    @property
    def held(self) -> int:
        """Settled actions held: at most ``keep``."""
        return self._held

    def durable(self) -> None:
        """Commit what the journal holds for intents taken or settled so far: call it before
        acknowledging an intent or reporting an outcome to a bot."""
        if self._journal is not None:
            self._journal.commit()

    # Names, memory.

    def _name(self, order: _Order, index: dict[str, _Order], name: str | None) -> None:
        """``order`` is known by ``name`` (in ``index``: by client_order_id or by order id)."""
        if name is None:
            return
        other = index.get(name)
        if other is order:
            return
        if other is not None:
            self._merge(order, other)
        index[name] = order
        by_client = index is self._by_client
        old = order.client_order_id if by_client else order.order_id
        if by_client:
            order.client_order_id = name
        else:
            order.order_id = name
        if old is not None and old != name:
            self._alias(order, [old])

    def _merge(self, order: _Order, other: _Order) -> None:
        """``other`` was the same order under another name (one action was taken by order id
        before the answer that linked it to a client_order_id): one record from now on."""
        for step in other.steps:
            step.order = order
        order.steps = sorted([*order.steps, *other.steps], key=lambda step: step.seq)
        order.pending += other.pending
        order.omitted += other.omitted
        order.placed_here |= other.placed_here
        order.accepted = order.accepted or other.accepted
        order.client_order_id = order.client_order_id or other.client_order_id
        order.order_id = order.order_id or other.order_id
        for name in other.names():
            for index in (self._by_client, self._by_order):
                if index.get(name) is other:
                    index[name] = order
        self._recent.pop(other, None)
        self._alias(order, other.names())

    def _alias(self, order: _Order, names: list[str]) -> None:
        """Keep ``names`` as the order's former names; the oldest beyond ACTIONS_KEPT go (an
        order renamed by every amend must not hold ever more names)."""
        aliases = [*(order.aliases or ()), *names]
        order.aliases = aliases[-ACTIONS_KEPT:]
        current = (order.client_order_id, order.order_id, *order.aliases)
        for name in aliases[:-ACTIONS_KEPT]:
            for index in (self._by_client, self._by_order):
                if index.get(name) is order and name not in current:
                    del index[name]

    def _omit_oldest(self, order: _Order) -> bool:
        oldest = next((step for step in order.steps if step.outcome is not None), None)
        if oldest is None:
            return False
        order.steps.remove(oldest)
        order.omitted += 1
        self._held -= 1
        return True

    def _forget(self, order: _Order) -> None:
        self._recent.pop(order, None)
        for name in order.names():
            for index in (self._by_client, self._by_order):
                if index.get(name) is order:
                    del index[name]
        self._held -= len(order.steps) - order.pending


def _status(key: str, order: _Order) -> OrderStatus:
    actions = [
        OrderAction(step.action, "pending" if step.outcome is None else "settled", step.outcome)
        for step in order.steps
    ]
    return OrderStatus(
        key,
        "pending" if order.pending else "settled",
        order.steps[-1].outcome,
        order.client_order_id,
        order.order_id,
        actions,
        order.omitted,
    )
