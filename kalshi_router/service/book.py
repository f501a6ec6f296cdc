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
from dataclasses import dataclass, field
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


@dataclass(eq=False, slots=True)
class _Order:
    client_ids: set[str] = field(default_factory=set)
    order_ids: set[str] = field(default_factory=set)
    client_order_id: str | None = None
    """The newest name the order was given; the same for ``order_id``."""
    order_id: str | None = None
    steps: list[_Step] = field(default_factory=list)
    pending: int = 0
    omitted: int = 0
    placed_here: bool = False
    """The book has the order from its place on (some early actions may be omitted)."""
    accepted: Accepted | None = None


@dataclass(eq=False, slots=True)
class _Step:
    seq: int
    action: Action
    order: _Order
    """Reassigned when two records turn out to be one order."""
    outcome: Outcome | None = None


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
        names = self._by_client if action == "place" else self._by_order
        order = names.get(key)
        if order is None:
            order = _Order()
            if action == "place":
                self._name(order, client_order_id=key)
            else:
                self._name(order, order_id=key)
        order.placed_here |= action == "place"
        step = _Step(next(self._seq), action, order)
        order.steps.append(step)
        order.pending += 1
        self._touch(order)
        future.add_done_callback(lambda done: self._settled(step, done))

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
        if isinstance(outcome, Accepted) and step.action == "place":
            order.accepted = outcome
        if isinstance(outcome, Accepted | Amended | Cancelled):
            self._name(order, client_order_id=outcome.client_order_id, order_id=outcome.order_id)
        self._touch(order)
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

    def _name(
        self, order: _Order, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> None:
        for name, index, names in (
            (client_order_id, self._by_client, order.client_ids),
            (order_id, self._by_order, order.order_ids),
        ):
            if name is None:
                continue
            other = index.get(name)
            if other is not None and other is not order:
                self._merge(order, other)
            index[name] = order
            names.add(name)
        order.client_order_id = client_order_id or order.client_order_id
        order.order_id = order_id or order.order_id

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
        for name in other.client_ids:
            self._by_client[name] = order
        for name in other.order_ids:
            self._by_order[name] = order
        order.client_ids |= other.client_ids
        order.order_ids |= other.order_ids
        self._recent.pop(other, None)

    def _touch(self, order: _Order) -> None:
        self._recent[order] = None
        self._recent.move_to_end(order)

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
        for name in order.client_ids:
            if self._by_client.get(name) is order:
                del self._by_client[name]
        for name in order.order_ids:
            if self._by_order.get(name) is order:
                del self._by_order[name]
        self._held -= sum(step.outcome is not None for step in order.steps)


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
