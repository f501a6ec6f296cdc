"""``GET /portfolio/fills`` as msgspec Structs: one page of the account's fills.

As in :mod:`kalshi_router.wire.models`, unknown fields are ignored and fixed-point strings
decode into ``Decimal``, checked as decoded: a bad value makes the page unreadable, with an
error naming the field and the fill (``$.fills[2]``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

import msgspec

from kalshi_router.intent import BookSide
from kalshi_router.wire.models import check_decoded

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class RestFill(msgspec.Struct, kw_only=True):
    """One fill of one of our orders as ``GET /portfolio/fills`` lists it (Kalshi's ``Fill``).

    The endpoint is not in the spec extract; this follows Kalshi's Get Fills page (spec
    3.29.0). Names are the WebSocket ``Fill``'s where they mean the same thing, so one fill
    seen both ways compares field by field (``trade_id``, ``count_fp``, ``yes_price_dollars``,
    ``fee_cost``, ``is_taker``, ``book_side``, ``outcome_side``, ``exchange_index``); REST says
    ``ticker`` and ``subaccount_number`` where the WebSocket says ``market_ticker`` and
    ``subaccount``, and has no ``ts_ms`` (see :attr:`ts_ms`).

    ``trade_id`` and ``market_ticker`` are "legacy field name, same as" ``fill_id`` and
    ``ticker``: either may be dropped, so each is filled from the other when absent.
    Deprecated ``side`` and ``action`` are optional, as are ``client_order_id`` (in the page of
    spec 3.15.0, gone from 3.29.0's) and ``no_price_dollars``: nothing reads them.

    Sim assumptions (``kalshi_router.sim``; Kalshi's docs are silent): a user's fill id is the
    trade id, and the maker's and the taker's fill of one trade share it (they are different
    users: self-trade prevention keeps one user off both sides); a maker pays no fee.
    """

    fill_id: str
    order_id: str
    ticker: str
    book_side: BookSide
    outcome_side: Literal["yes", "no"]
    count_fp: Decimal
    yes_price_dollars: Decimal
    is_taker: bool
    fee_cost: Decimal
    exchange_index: int
    trade_id: str = ""
    market_ticker: str = ""
    no_price_dollars: Decimal | None = None
    client_order_id: str | None = None
    created_time: str | None = None
    ts: int | None = None
    subaccount_number: int | None = None
    side: Literal["yes", "no"] | None = None
    action: str | None = None

    def __post_init__(self) -> None:
        self.trade_id = self.trade_id or self.fill_id
        self.market_ticker = self.market_ticker or self.ticker
        check_decoded(self, _FILL_COUNTS, ("fee_cost",))
        if self.created_time is not None:
            _rfc3339(self.created_time)

    @property
    def ts_ms(self) -> int | None:
        """When it filled, epoch milliseconds: from ``created_time`` (to the millisecond),
        else from the legacy ``ts`` (seconds); None when the answer has neither."""
        if self.created_time is not None:
            return (_rfc3339(self.created_time) - _EPOCH) // _MS
        return None if self.ts is None else self.ts * 1000


_FILL_COUNTS = ("count_fp", "yes_price_dollars", "no_price_dollars")


def _rfc3339(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"created_time must be an RFC 3339 time, got {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"created_time must name its time zone, got {text!r}")
    return moment


class GetFillsResponse(msgspec.Struct):
    """One page of ``GET /portfolio/fills``; an empty ``cursor`` means the last page."""

    fills: list[RestFill]
    cursor: str | None = None
