"""The closed loop: each order's life at the exchange after it was accepted (design.md §7)."""

from kalshi_router.orders.baseline import PositionSeed
from kalshi_router.orders.feed import CHANNELS, OrderFeed, OrderFrame, ws_url
from kalshi_router.orders.ledger import Ledger, LedgerStats
from kalshi_router.orders.stream import UpdateStream
from kalshi_router.orders.updates import (
    FillEvent,
    OrderHandle,
    Orders,
    OrderUpdate,
    Position,
    fill_event,
)
from kalshi_router.orders.watch import Handle, Watch

__all__ = [
    "CHANNELS",
    "FillEvent",
    "Handle",
    "Ledger",
    "LedgerStats",
    "OrderFeed",
    "OrderFrame",
    "OrderHandle",
    "OrderUpdate",
    "Orders",
    "Position",
    "PositionSeed",
    "UpdateStream",
    "Watch",
    "fill_event",
    "ws_url",
]
