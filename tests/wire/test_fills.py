"""``GET /portfolio/fills`` bodies decoded (wire.fills): Kalshi's documented ``Fill``, its
legacy names, what may be absent, and the values refused with an error naming the field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from kalshi_router.wire.fills import GetFillsResponse, RestFill
from kalshi_router.wire.ws_models import FillFrame, decode_frame

_page = msgspec.json.Decoder(GetFillsResponse)


def documented(**changes: Any) -> dict[str, Any]:
    """A fill with every field of the Get Fills page (spec 3.29.0), deprecated ones too."""
    fill: dict[str, Any] = {
        "fill_id": "t-1",
        "exchange_index": 2,
        "trade_id": "t-1",
        "order_id": "o-1",
        "ticker": "KXT-26-A",
        "market_ticker": "KXT-26-A",
        "side": "no",
        "action": "sell",
        "outcome_side": "no",
        "book_side": "ask",
        "count_fp": "2.50",
        "yes_price_dollars": "0.5600",
        "no_price_dollars": "0.4400",
        "is_taker": True,
        "created_time": "2026-01-01T00:00:01.234Z",
        "fee_cost": "0.0300",
        "subaccount_number": 0,
        "ts": 1767225601,
    }
    fill.update(changes)
    return {key: value for key, value in fill.items() if value is not None}


def decode(*fills: dict[str, Any], cursor: str | None = "next") -> GetFillsResponse:
    body: dict[str, Any] = {"fills": list(fills)}
    if cursor is not None:
        body["cursor"] = cursor
    return _page.decode(msgspec.json.encode(body))


def test_a_documented_fill_decodes_into_decimals() -> None:
    page = decode(documented(), documented(fill_id="t-2", trade_id="t-2", is_taker=False))
    assert page.cursor == "next"
    fill = page.fills[0]
    assert (fill.fill_id, fill.trade_id, fill.order_id) == ("t-1", "t-1", "o-1")
    assert (fill.ticker, fill.market_ticker, fill.exchange_index) == ("KXT-26-A", "KXT-26-A", 2)
    assert (fill.book_side, fill.outcome_side, fill.is_taker) == ("ask", "no", True)
    assert (fill.count_fp, fill.yes_price_dollars, fill.no_price_dollars, fill.fee_cost) == (
        Decimal("2.50"),
        Decimal("0.56"),
        Decimal("0.44"),
        Decimal("0.03"),
    )
    assert (fill.side, fill.action, fill.subaccount_number) == ("no", "sell", 0)
    assert fill.ts_ms == 1_767_225_601_234
    assert page.fills[1].is_taker is False


def test_legacy_and_deprecated_fields_may_be_absent_and_unknown_ones_are_ignored() -> None:
    bare = documented(
        trade_id=None,
        market_ticker=None,
        side=None,
        action=None,
        no_price_dollars=None,
        created_time=None,
        subaccount_number=None,
        invented={"nested": [1]},
    )
    (fill,) = decode(bare, cursor=None).fills
    # "trade_id: legacy field name, same as fill_id"; "market_ticker: ... same as ticker".
    assert (fill.trade_id, fill.market_ticker) == ("t-1", "KXT-26-A")
    assert (fill.side, fill.action, fill.no_price_dollars, fill.client_order_id) == (
        None,
        None,
        None,
        None,
    )
    assert fill.ts_ms == 1_767_225_601_000  # from the legacy seconds
    (no_time,) = decode(documented(created_time=None, ts=None)).fills
    assert no_time.ts_ms is None
    assert decode(cursor=None).cursor is None


def test_rest_and_websocket_name_the_same_fill_alike() -> None:
    frame = decode_frame(
        msgspec.json.encode(
            {
                "type": "fill",
                "sid": 1,
                "msg": {
                    "trade_id": "t-1",
                    "order_id": "o-1",
                    "market_ticker": "KXT-26-A",
                    "exchange_index": 2,
                    "is_taker": True,
                    "yes_price_dollars": "0.560000",
                    "count_fp": "2.50",
                    "fee_cost": "0.030000",
                    "post_position_fp": "-2.50",
                    "outcome_side": "no",
                    "book_side": "ask",
                    "ts_ms": 1_767_225_601_234,
                },
            }
        )
    )
    assert isinstance(frame, FillFrame)
    (rest,) = decode(documented()).fills
    shared = (
        "trade_id",
        "order_id",
        "market_ticker",
        "exchange_index",
        "is_taker",
        "yes_price_dollars",
        "count_fp",
        "fee_cost",
        "outcome_side",
        "book_side",
        "ts_ms",
    )
    assert {n: getattr(rest, n) for n in shared} == {n: getattr(frame.msg, n) for n in shared}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"count_fp": "NaN"}, "count_fp must be a finite number >= 0, got NaN"),
        ({"count_fp": "-1.00"}, "count_fp must be a finite number >= 0, got -1.00"),
        ({"yes_price_dollars": "-0.5"}, "yes_price_dollars must be a finite number >= 0"),
        ({"no_price_dollars": "Infinity"}, "no_price_dollars must be a finite number >= 0"),
        ({"fee_cost": "Infinity"}, "fee_cost must be a finite number, got Infinity"),
        ({"is_taker": "yes"}, "Expected `bool`, got `str`"),
        ({"count_fp": "lots"}, "Invalid decimal string"),
        ({"book_side": "buy"}, "Invalid enum value 'buy'"),
        ({"exchange_index": None}, "missing required field `exchange_index`"),
        ({"fill_id": None}, "missing required field `fill_id`"),
        ({"created_time": "yesterday"}, "created_time must be an RFC 3339 time"),
        ({"created_time": "2026-01-01T00:00:01"}, "created_time must name its time zone"),
    ],
)
def test_bad_values_are_refused_naming_the_field_and_the_fill(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        decode(documented(), documented(**changes))
    assert message in str(info.value)
    assert "$.fills[1]" in str(info.value)


def test_a_fill_built_in_code_gets_its_legacy_names_too() -> None:
    fill = RestFill(
        fill_id="t-9",
        order_id="o-9",
        ticker="KXT",
        book_side="bid",
        outcome_side="yes",
        count_fp=Decimal(1),
        yes_price_dollars=Decimal("0.5"),
        is_taker=False,
        fee_cost=Decimal(0),
        exchange_index=0,
    )
    assert (fill.trade_id, fill.market_ticker, fill.ts_ms) == ("t-9", "KXT", None)
