"""An order's actions as the journal holds them: ``GET /v1/orders/{key}`` for an order the
service's book does not hold from its place on (placed before a restart, or forgotten).

Found by client_order_id (its creates, and through the accepted one its order id) or by order id
(the create whose outcome is that order, found by an index of the journal's). A client_order_id
that an amend gave the order is known to the book only.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from kalshi_router.journal import SqliteJournal
from kalshi_router.journal.entry import Entry
from kalshi_router.outcome import Accepted
from kalshi_router.service.protocol import Action, OrderAction, OrderStatus

ACTIONS_KEPT = 100
"""The most actions shown for one order: the newest."""


class _Single(msgspec.Struct):
    """Enough of an amend's or a decrease's payload to tell them apart: amends have a price."""

    price: str | None = None


_single = msgspec.json.Decoder(_Single)


def from_journal(journal: SqliteJournal, key: str) -> OrderStatus | None:
    placed = journal.placed(key)
    if placed is not None:
        client_order_id, order_id = placed.key, key
    else:
        creates, _ = journal.history(key, None, ACTIONS_KEPT)
        made = [entry.outcome.order_id for entry in creates if isinstance(entry.outcome, Accepted)]
        # Not a client_order_id the journal knows: it may still be an order placed elsewhere
        # that the service cancelled or amended.
        client_order_id, order_id = key, made[-1] if made else key
    entries, total = journal.history(client_order_id, order_id, ACTIONS_KEPT)
    if not entries:
        return None
    actions = [
        OrderAction(_action(entry), "settled", entry.outcome)
        if entry.state == "settled"
        else OrderAction(_action(entry), "pending")
        for entry in entries
    ]
    return OrderStatus(
        key,
        "pending" if any(action.status == "pending" for action in actions) else "settled",
        actions[-1].outcome,
        _newest(entry.outcome.client_order_id if entry.outcome else None for entry in entries)
        or _newest(entry.key if entry.kind == "create" else None for entry in entries),
        _newest(entry.outcome.order_id if entry.outcome else None for entry in entries)
        or _newest(entry.key if entry.kind != "create" else None for entry in entries),
        actions,
        total - len(entries),
    )


def _action(entry: Entry) -> Action:
    if entry.kind == "create":
        return "place"
    if entry.kind == "cancel":
        return "cancel"
    return "amend" if _single.decode(entry.payload).price is not None else "decrease"


def _newest(names: Iterable[str | None]) -> str | None:
    found = [name for name in names if name]
    return found[-1] if found else None
