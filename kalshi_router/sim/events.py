"""What the engine tells observers as it changes orders: the seam the WebSocket feed reads.

Observers run synchronously inside the engine's step, after the records changed, and must not
call back into the engine; REST behaviour does not depend on whether anyone listens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from kalshi_router.sim._model import SimOrder

# The spec's lastUpdateReason values the sim produces; None: created, or cancelled by request
# (the spec's enum has no value for a user's own cancel: sim assumption, the field is omitted).
Reason: TypeAlias = Literal[
    "Decrease", "Amend", "SelfTradeCancel", "ExpiryCancel", "HaltCancel", "Trade"
]


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """``order`` (the live record) was created or changed; ``reason`` says why."""

    order: SimOrder
    reason: Reason | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Filled:
    """One side of one trade: ``order`` traded ``qty`` at ``price``; ``position`` is after."""

    order: SimOrder
    trade_id: str
    is_taker: bool
    price: int
    qty: int
    fee: int
    position: int
    ts_ms: int


Event: TypeAlias = OrderChanged | Filled
Observer: TypeAlias = Callable[[Event], None]
