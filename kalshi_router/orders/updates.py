"""What a bot learns about its orders after acceptance: one update per change, a fill once
per trade, a position per ticker, and the protocol both routers (embedded and the service's
client) expose it through.

These are msgspec Structs so the service forwards them to its clients as they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Literal, Protocol, TypeAlias

import msgspec

from kalshi_router.orders.fills import FillEvent, fill_event, rest_fill_event
from kalshi_router.orders.state import State
from kalshi_router.outcome import OrderOutcome

__all__ = [
    "FillEvent",
    "OrderHandle",
    "OrderUpdate",
    "Orders",
    "Position",
    "Source",
    "fill_event",
    "rest_fill_event",
]

Source: TypeAlias = Literal["ws", "rest", "answer"]
"""Where the change was learnt: a WebSocket frame, a REST reconciliation, or the REST answer
to the create."""


class OrderUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """One order's whole view after one change.

    ``state`` is the order's state (``kalshi_router.orders.state``); ``reason`` is Kalshi's
    ``last_update_reason`` when it gave one (``SelfTradeCancel``, ``ExpiryCancel``, ...), or
    the router's when the change came from reconciliation. ``fill`` is set when this change is
    a new fill. ``resolved`` is set when this update settles an intent whose outcome was
    ``Unknown``: the proof found later (``Accepted``, or ``Closed`` when the create never
    reached the exchange; then ``order_id`` is ``None`` and ``state`` is ``reconciled_absent``).
    """

    order_id: str | None
    client_order_id: str | None
    ticker: str | None
    state: State
    source: Source
    reason: str | None = None
    book_side: Literal["bid", "ask"] | None = None
    yes_price: Decimal | None = None
    initial: Decimal | None = None
    filled: Decimal = Decimal(0)
    remaining: Decimal | None = None
    fees: Decimal = Decimal(0)
    average_fill_price: Decimal | None = None
    fill: FillEvent | None = None
    resolved: OrderOutcome | None = None

    @property
    def final(self) -> bool:
        return self.state in ("filled", "cancelled", "expired", "reconciled_absent")


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """YES contracts held in one market, from the fills counted: ``position`` is signed
    (negative: short YES, i.e. long NO); ``cost`` is what buying them cost less what selling
    brought in (dollars); ``fees`` the fees paid; ``volume`` the contracts traded."""

    ticker: str
    position: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    volume: Decimal = Decimal(0)


class OrderHandle(Protocol):
    """One order as the router follows it."""

    @property
    def latest(self) -> OrderUpdate: ...

    async def final(self) -> OrderUpdate:
        """Wait until the order is in a final state; return that update."""

    def updates(self) -> AsyncIterator[OrderUpdate]:
        """This order's updates from now on, ending after the final one."""


class Orders(Protocol):
    """What a bot reads of its orders after acceptance (``router.orders``)."""

    def handle(self, key: str) -> OrderHandle:
        """The order placed with client_order_id (or having order id) ``key``; raises
        ``KeyError`` if the router has not seen it."""

    def updates(self) -> AsyncIterator[OrderUpdate]:
        """Every update from now on (fills included), in the order they were learnt."""

    def open_orders(self, ticker: str | None = None) -> Sequence[OrderUpdate]:
        """Orders not in a final state, for one ticker or all."""

    def positions(self) -> Mapping[str, Position]:
        """Positions by ticker."""

    def get(self, key: str) -> OrderUpdate | None:
        """The latest update of the order with client_order_id or order id ``key``."""
