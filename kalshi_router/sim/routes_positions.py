"""``GET /portfolio/positions``: the caller's positions per market and per event, paged.

Not in the spec extract (3.31.0): shaped on Kalshi's Get Positions page of spec 3.34.0
(``GetPositionsResponse``: ``market_positions``, ``event_positions``, ``cursor``). The numbers
are those the ``market_position`` frames carry (:class:`~kalshi_router.sim.ws_feed.Positions`,
fed every fill) and the engine's own position: nothing is counted a second time here.

Sim assumptions (Kalshi's page is silent on them):

- a market is listed once the user has a fill in it (resting orders alone do not list it),
  whatever its position now; ``count_filter`` (``position``, ``total_traded``, comma-separated)
  keeps those with any of the named fields non-zero, and refuses any other name;
- no market settles in the simulator: ``settlement_status`` ``unsettled`` (the default) and
  ``all`` list every market, ``settled`` none;
- positions are kept per user, not per subaccount (the engine holds one position per market):
  ``subaccount`` is checked (0-63) and changes nothing;
- every market is on shard 0: an ``exchange_index`` other than 0 lists nothing;
- markets come in ticker order, paged by an opaque cursor (the last ticker sent), so a page
  read while fills land never repeats a market;
- ``event_positions`` sum the markets of the same page by event (a market's event is its
  ticker up to the last ``-``); ``total_cost_shares_fp`` is the contracts traded in them;
- ``market_exposure_dollars`` is the average cost of the contracts held, of whichever outcome
  (the frames' ``position_cost_dollars``); ``total_traded_dollars`` is what every fill cost at
  the price of the outcome it bought, closing fills included; ``realized_pnl_dollars`` excludes
  fees; ``last_updated_ts`` is the time of the market's last fill (RFC 3339 as Go prints it,
  to the millisecond, the precision of a fill's ``ts_ms``);
- ``event_ticker`` names one event (Kalshi: "Only a single event ticker is supported"): a
  list is refused; the read costs the default 10 tokens.
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from kalshi_router.sim import validate
from kalshi_router.sim.render import count_str, json_response, money_str, rfc3339_ms
from kalshi_router.sim.routes_reads import event_of
from kalshi_router.sim.schema import EventPositionOut, GetPositionsResponse, MarketPositionOut
from kalshi_router.sim.state import Call
from kalshi_router.sim.validate import invalid
from kalshi_router.sim.ws_feed import Holding

_COUNT_FILTERS = ("position", "total_traded")
_SETTLEMENT_STATUSES = ("unsettled", "settled", "all")
_CURSOR_KIND = "positions"
_SHARD = 0

Row = tuple[str, int, Holding]
"""A market listed: its ticker, the engine's position (0.01 contracts) and its record."""


def _encode_cursor(ticker: str) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_KIND}:{ticker}".encode()).decode()


def _decode_cursor(cursor: str) -> str:
    """The ticker a page ends at; a cursor of another endpoint is refused."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid("cursor: not a cursor this server issued") from None
    kind, _, ticker = text.partition(":")
    if kind != _CURSOR_KIND or not ticker:
        raise invalid("cursor: not a cursor this server issued")
    return ticker


def _count_filter(text: str) -> frozenset[str]:
    names = frozenset(name for name in text.split(",") if name)
    unknown = sorted(names.difference(_COUNT_FILTERS))
    if unknown:
        raise invalid(f"count_filter: {unknown[0]!r} is not one of position, total_traded")
    return names


def _kept(wanted: frozenset[str], position: int, holding: Holding) -> bool:
    if not wanted:
        return True
    return ("position" in wanted and position != 0) or (
        "total_traded" in wanted and holding.traded != 0
    )


def _market(ticker: str, position: int, holding: Holding) -> MarketPositionOut:
    return MarketPositionOut(
        ticker=ticker,
        exchange_index=_SHARD,
        total_traded_dollars=money_str(holding.traded),
        position_fp=count_str(position),
        market_exposure_dollars=money_str(holding.cost),
        realized_pnl_dollars=money_str(holding.realized),
        fees_paid_dollars=money_str(holding.fees),
        last_updated_ts=rfc3339_ms(holding.updated_ms),
    )


def _events(page: list[Row]) -> list[EventPositionOut]:
    sums: dict[str, Holding] = {}
    for ticker, _, holding in page:
        total = sums.setdefault(event_of(ticker), Holding())
        total.traded += holding.traded
        total.volume += holding.volume
        total.cost += holding.cost
        total.realized += holding.realized
        total.fees += holding.fees
    return [
        EventPositionOut(
            event_ticker=event,
            total_cost_dollars=money_str(total.traded),
            total_cost_shares_fp=count_str(total.volume),
            event_exposure_dollars=money_str(total.cost),
            realized_pnl_dollars=money_str(total.realized),
            fees_paid_dollars=money_str(total.fees),
        )
        for event, total in sums.items()
    ]


async def get_positions(call: Call) -> web.Response:
    """GET /portfolio/positions: the caller's markets in ticker order, and their events."""
    call.spend()
    query = call.request.query
    limit = validate.query_int(query, "limit", low=1, high=1000) or 100
    validate.query_int(query, "subaccount", low=0, high=validate.MAX_SUBACCOUNT)
    shard = validate.query_int(query, "exchange_index", low=0)
    status = query.get("settlement_status", "unsettled")
    if status not in _SETTLEMENT_STATUSES:
        raise invalid(f"settlement_status: {status!r} is not one of unsettled, settled, all")
    wanted = _count_filter(query.get("count_filter", ""))
    ticker = query.get("ticker") or None
    event = query.get("event_ticker") or None
    if event is not None and "," in event:
        raise invalid("event_ticker: only a single event ticker is supported")
    cursor = query.get("cursor", "")
    after = _decode_cursor(cursor) if cursor else None
    rows: list[Row] = []
    if status != "settled" and shard in (None, _SHARD):
        held = call.state.positions.held(call.user_id)
        for name in sorted(held):
            if (
                (after is not None and name <= after)
                or (ticker is not None and name != ticker)
                or (event is not None and event_of(name) != event)
            ):
                continue
            position = call.exchange.position(call.user_id, name)
            if _kept(wanted, position, held[name]):
                rows.append((name, position, held[name]))
                # One more than a page says whether another page follows.
                if len(rows) > limit:
                    break
    page = rows[:limit]
    return json_response(
        GetPositionsResponse(
            market_positions=[_market(*row) for row in page],
            event_positions=_events(page),
            cursor=_encode_cursor(page[-1][0]) if len(rows) > limit else "",
        )
    )
