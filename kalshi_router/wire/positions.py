"""``GET /portfolio/positions`` as msgspec Structs: one page of the account's positions.

The endpoint is not in the spec extract; this follows Kalshi's Get Positions page (spec
3.34.0): ``market_positions``, ``event_positions`` and ``cursor``. As in
:mod:`kalshi_router.wire.models`, unknown fields are ignored and fixed-point strings decode into
``Decimal``, checked as decoded: a bad value makes the page unreadable, with an error naming
the field and where it is (``$.market_positions[2]``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec

from kalshi_router.wire.models import check_decoded

__all__ = ["EventPosition", "GetPositionsResponse", "MarketPosition"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class MarketPosition(msgspec.Struct, kw_only=True):
    """The account's position in one market (Kalshi's ``MarketPosition``).

    ``position_fp`` is signed: positive holds YES contracts, negative NO. Kalshi's money fields
    are dollars: ``market_exposure_dollars`` "cost of the aggregate market position",
    ``realized_pnl_dollars`` "locked in profit and loss" (signed), ``fees_paid_dollars``, and
    ``total_traded_dollars`` "total spent on this market". ``last_updated_ts`` is "last time the
    position is updated" (RFC 3339). 3.34.0 requires ``exchange_index`` and
    ``last_updated_ts``; older answers lack them, so both are optional here. The legacy
    ``resting_orders_count`` (older specs; gone from 3.34.0) is read when present.
    """

    ticker: str
    position_fp: Decimal
    market_exposure_dollars: Decimal
    realized_pnl_dollars: Decimal
    fees_paid_dollars: Decimal
    total_traded_dollars: Decimal
    last_updated_ts: datetime | None = None
    exchange_index: int | None = None
    resting_orders_count: int | None = None

    def __post_init__(self) -> None:
        check_decoded(self, _MARKET_COUNTS, ("position_fp", "realized_pnl_dollars"))
        stamp = self.last_updated_ts
        if stamp is not None and stamp.tzinfo is None:
            raise ValueError(f"last_updated_ts must name its time zone, got {stamp.isoformat()}")

    @property
    def updated_ms(self) -> int | None:
        """``last_updated_ts`` in epoch milliseconds (rounded down); None when absent."""
        stamp = self.last_updated_ts
        return None if stamp is None else (stamp - _EPOCH) // _MS


# Never negative: what holding costs, fees, and what was spent.
_MARKET_COUNTS = ("market_exposure_dollars", "fees_paid_dollars", "total_traded_dollars")


class EventPosition(msgspec.Struct, kw_only=True):
    """The account's position over one event's markets (Kalshi's ``EventPosition``)."""

    event_ticker: str
    total_cost_dollars: Decimal
    total_cost_shares_fp: Decimal
    event_exposure_dollars: Decimal
    realized_pnl_dollars: Decimal
    fees_paid_dollars: Decimal

    def __post_init__(self) -> None:
        check_decoded(self, _EVENT_COUNTS, ("realized_pnl_dollars",))


_EVENT_COUNTS = (
    "total_cost_dollars",
    "total_cost_shares_fp",
    "event_exposure_dollars",
    "fees_paid_dollars",
)


class GetPositionsResponse(msgspec.Struct):
    """One page of ``GET /portfolio/positions``; an empty ``cursor`` means the last page."""

    market_positions: list[MarketPosition] = msgspec.field(default_factory=list)
    event_positions: list[EventPosition] = msgspec.field(default_factory=list)
    cursor: str | None = None
