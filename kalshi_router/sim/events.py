"""What the engine tells observers as it changes orders and order groups: the seam the
WebSocket feed reads.

Observers run synchronously inside the engine's step, after the records changed, and must not
call back into the engine; REST behaviour does not depend on whether anyone listens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from kalshi_router.sim._model import SimOrder

# The spec's lastUpdateReason values the sim produces; None: created, or cancelled by request
# or by its order group (the spec's enum has no value for either: sim assumption, the field is
# omitted).
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


# The AsyncAPI orderGroupUpdates payload's event_type values.
GroupEventType: TypeAlias = Literal["created", "triggered", "reset", "deleted", "limit_updated"]


@dataclass(frozen=True, slots=True)
class GroupChanged:
    """``user_id``'s order group ``order_group_id`` was created, triggered, reset, deleted or
    given a new limit; ``contracts_limit`` (0.01 contract) is set for created and limit_updated
    only, as the frame's ``contracts_limit_fp`` is."""

    user_id: str
    order_group_id: str
    event_type: GroupEventType
    contracts_limit: int | None
    ts_ms: int


Event: TypeAlias = OrderChanged | Filled | GroupChanged
Observer: TypeAlias = Callable[[Event], None]
