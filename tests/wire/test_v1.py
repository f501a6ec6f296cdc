"""The legacy V1 dialect: integer cents and counts when whole, fixed point otherwise."""

from __future__ import annotations

import itertools
import json
import time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.outcome import Accepted, Cancelled, Rejected
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.reply import BatchReply
from kalshi_router.wire.v1 import V1Dialect
from tests.spec_schema import require_spec, validate_schema

V1 = V1Dialect()
TICKER = "HIGHNY-24JAN01-T60"
A, B, C = "coid-a", "coid-b", "coid-c"
OA, OB, OC = "order-a", "order-b", "order-c"
EXPIRY = int(time.time()) + 86_400
V2_DOCS = "https://docs.kalshi.com/api-reference/orders/create-order-v2"


def test_dialect_identity() -> None:
    assert (V1.name, V1.create_path, V1.cancel_path) == (
        "v1",
        "/portfolio/orders/batched",
        "/portfolio/orders/batched",
    )
    assert isinstance(dialect_for("v1"), V1Dialect)


def test_encode_create_fits_the_spec_and_says_exactly_this() -> None:
    intents = [
        OrderIntent.bid(
            TICKER,
            56,
            10,
            client_order_id=A,
            post_only=True,
            expiration_time=EXPIRY,
            buy_max_cost=600,
            order_group_id="grp-1",
            subaccount=2,
            exchange_index=0,
            cancel_order_on_pause=True,
        ),
        OrderIntent.ask(
            TICKER,
            "0.5805",
            "2.5",
            client_order_id=B,
            time_in_force="immediate_or_cancel",
            self_trade_prevention="maker",
            reduce_only=True,
            sell_position_floor=0,
        ),
    ]
    body = json.loads(V1.encode_create(intents))
    validate_schema("BatchCreateOrdersRequest", body)
    assert body == {
        "orders": [
            {
                "ticker": TICKER,
                "side": "yes",
                "action": "buy",
                "client_order_id": A,
                "count": 10,
                "yes_price": 56,
                "expiration_ts": EXPIRY,
                "time_in_force": "good_till_canceled",
                "buy_max_cost": 600,
                "post_only": True,
                "self_trade_prevention_type": "taker_at_cross",
                "order_group_id": "grp-1",
                "cancel_order_on_pause": True,
                "subaccount": 2,
                "exchange_index": 0,
            },
            {
                "ticker": TICKER,
                "side": "yes",
                "action": "sell",
                "client_order_id": B,
                "count_fp": "2.50",
                "yes_price_dollars": "0.5805",
                "time_in_force": "immediate_or_cancel",
                "reduce_only": True,
                "sell_position_floor": 0,
                "self_trade_prevention_type": "maker",
                # V1 sends an omitted exchange_index to shard 0; -1 routes by the ticker.
                "exchange_index": -1,
            },
        ]
    }


@pytest.mark.parametrize(
    ("price", "count", "expected"),
    [
        pytest.param(56, 10, {"yes_price": 56, "count": 10}, id="whole-cents-whole-count"),
        pytest.param("0.01", 1, {"yes_price": 1, "count": 1}, id="lowest-cent"),
        pytest.param("0.99", "100.00", {"yes_price": 99, "count": 100}, id="highest-cent"),
        pytest.param(
            "0.5650", 10, {"yes_price_dollars": "0.5650", "count": 10}, id="sub-cent-price"
        ),
        pytest.param(56, "2.5", {"yes_price": 56, "count_fp": "2.50"}, id="fractional-count"),
        pytest.param(
            "0.0050", "0.01", {"yes_price_dollars": "0.0050", "count_fp": "0.01"}, id="both-fine"
        ),
    ],
)
def test_integer_fields_when_whole_fixed_point_otherwise(
    price: str | int, count: str | int, expected: dict[str, Any]
) -> None:
    (item,) = json.loads(V1.encode_create([OrderIntent.bid(TICKER, price, count)]))["orders"]
    validate_schema("CreateOrderRequest", item)
    money = {"yes_price", "yes_price_dollars", "no_price", "no_price_dollars", "count", "count_fp"}
    assert {key: value for key, value in item.items() if key in money} == expected


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(price=st.integers(1, 9_999), count=st.integers(1, 10**6))
def test_v1_money_round_trips(price: int, count: int) -> None:
    require_spec()
    exact_price, exact_count = Decimal(price).scaleb(-4), Decimal(count).scaleb(-2)
    (item,) = json.loads(V1.encode_create([OrderIntent.ask(TICKER, exact_price, exact_count)]))[
        "orders"
    ]
    validate_schema("CreateOrderRequest", item)
    if price % 100 == 0:
        assert item["yes_price"] == price // 100
        assert "yes_price_dollars" not in item
    else:
        assert Decimal(item["yes_price_dollars"]) == exact_price
        assert "yes_price" not in item
    if count % 100 == 0:
        assert item["count"] == count // 100
        assert "count_fp" not in item
    else:
        assert Decimal(item["count_fp"]) == exact_count
        assert "count" not in item


def test_encode_cancel_routes_by_ticker() -> None:
    cancels = [
        CancelIntent(order_id=OA, ticker=TICKER),
        CancelIntent(order_id=OB, ticker="KXBTC-26JUN-B100", subaccount=3, exchange_index=1),
    ]
    body = json.loads(V1.encode_cancel(cancels))
    validate_schema("BatchCancelOrdersRequest", body)
    assert body == {
        "orders": [
            {"order_id": OA, "exchange_index": -1, "market_ticker": TICKER},
            {
                "order_id": OB,
                "subaccount": 3,
                "exchange_index": 1,
                "market_ticker": "KXBTC-26JUN-B100",
            },
        ]
    }


def _order(
    order_id: str, client_order_id: str, status: str, fill: str, left: str
) -> dict[str, Any]:
    """A complete ``Order`` as GET /portfolio/orders and the V1 batch answers carry it."""
    return {
        "order_id": order_id,
        "user_id": "user-1",
        "client_order_id": client_order_id,
        "ticker": TICKER,
        "side": "yes",
        "action": "buy",
        "outcome_side": "yes",
        "book_side": "bid",
        "type": "limit",
        "status": status,
        "yes_price_dollars": "0.5600",
        "no_price_dollars": "0.4400",
        "fill_count_fp": fill,
        "remaining_count_fp": left,
        "initial_count_fp": "10.00",
        "taker_fees_dollars": "0.0000",
        "maker_fees_dollars": "0.0000",
        "taker_fill_cost_dollars": "0.0000",
        "maker_fill_cost_dollars": "0.0000",
        "expiration_time": None,
        "created_time": "2026-05-15T12:00:00Z",
        "self_trade_prevention_type": "taker_at_cross",
        "order_group_id": None,
        "cancel_order_on_pause": False,
        "exchange_index": 0,
    }


POST_ONLY_CROSS = {
    "code": "invalid order",
    "message": "invalid order",
    "details": "post only cross",
}
CREATED: list[dict[str, Any]] = [
    {"client_order_id": A, "order": _order(OA, A, "resting", "0.00", "10.00"), "error": None},
    # client_order_id null on the item: the key comes from its order
    {"client_order_id": None, "order": _order(OB, B, "executed", "10.00", "0.00")},
    {"client_order_id": C, "order": None, "error": POST_ONLY_CROSS},
]


def _created(items: list[dict[str, Any]], keys: list[str]) -> BatchReply:
    payload = {"orders": items}
    validate_schema("BatchCreateOrdersResponse", payload)
    return V1.decode_create(201, json.dumps(payload).encode(), keys)


@pytest.mark.parametrize("items", [list(order) for order in itertools.permutations(CREATED)])
def test_create_answer_matched_by_client_order_id(items: list[dict[str, Any]]) -> None:
    reply = _created(items, [A, B, C])
    assert (reply.disposition, reply.http_status) == ("answered", 201)
    assert reply.outcomes == {
        A: Accepted(
            client_order_id=A,
            order_id=OA,
            fill_count=Decimal("0.00"),
            remaining_count=Decimal("10.00"),
        ),
        B: Accepted(
            client_order_id=B,
            order_id=OB,
            fill_count=Decimal("10.00"),
            remaining_count=Decimal("0.00"),
        ),
        C: Rejected(
            code="invalid order",
            message="invalid order",
            details="post only cross",
            http_status=201,
            client_order_id=C,
        ),
    }
    assert (reply.unanswered, reply.anomalies) == ([], [])


def test_create_answer_anomalies() -> None:
    stranger = {"order": _order("order-x", "coid-x", "resting", "0.00", "1.00")}
    empty = {"client_order_id": None, "order": None, "error": None}
    reply = _created([CREATED[0], stranger, empty, CREATED[0]], [A, B])
    assert reply.outcomes == {}
    assert reply.unanswered == [A, B]
    assert len(reply.anomalies) == 4
    assert "'coid-x'" in reply.anomalies[0]
    assert "unknown client_order_id None" in reply.anomalies[1]
    assert f"{A!r} answered twice" in reply.anomalies[2]
    assert reply.anomalies[3] == "answer left out 1 of 2 client_order_ids"


CANCELLED: list[dict[str, Any]] = [
    {
        "order_id": OA,
        "order": _order(OA, A, "canceled", "0.00", "0.00"),
        "reduced_by_fp": "10.00",
        "error": None,
    },
    {
        "order_id": OB,
        "order": None,
        "reduced_by_fp": "0.00",
        "error": {"code": "not_found", "message": "order not found"},
    },
]


@pytest.mark.parametrize("items", [list(order) for order in itertools.permutations(CANCELLED)])
def test_cancel_answer_matched_by_order_id(items: list[dict[str, Any]]) -> None:
    payload = {"orders": [*items, {"order_id": OC, "reduced_by_fp": "1.00"}]}
    validate_schema("BatchCancelOrdersResponse", payload)
    reply = V1.decode_cancel(200, json.dumps(payload).encode(), [OA, OB, "order-d"])
    assert (reply.disposition, reply.http_status) == ("answered", 200)
    assert reply.outcomes == {
        OA: Cancelled(order_id=OA, reduced_by=Decimal("10.00"), client_order_id=A),
        OB: Rejected(code="not_found", message="order not found", http_status=200, order_id=OB),
    }
    assert reply.unanswered == ["order-d"]
    assert len(reply.anomalies) == 2
    assert repr(OC) in reply.anomalies[0]
    assert reply.anomalies[1] == "answer left out 1 of 3 order_ids"


DEPRECATED = {
    "error": {
        "code": "deprecated_v1_order_endpoint",
        "message": "Please switch to the V2 endpoints",
        "details": V2_DOCS,
    }
}


@pytest.mark.parametrize("operation", ["create", "cancel"])
def test_retired_endpoint_410_rejects_every_key(operation: str) -> None:
    validate_schema("ErrorResponse", DEPRECATED["error"])
    decode = V1.decode_create if operation == "create" else V1.decode_cancel
    reply = decode(410, json.dumps(DEPRECATED).encode(), ["k1", "k2"])
    assert (reply.disposition, reply.http_status) == ("rejected", 410)
    assert reply.unanswered == []
    for key in ("k1", "k2"):
        assert reply.outcomes[key] == Rejected(
            code="deprecated_v1_order_endpoint",
            message="Please switch to the V2 endpoints",
            details=V2_DOCS,
            http_status=410,
            client_order_id=key if operation == "create" else None,
            order_id=key if operation == "cancel" else None,
        )
    assert list(reply.outcomes) == ["k1", "k2"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(json.dumps({"orders": CREATED}).encode()[:100], id="truncated"),
        pytest.param(b'{"orders": {"client_order_id": 7}}', id="orders-not-a-list"),
    ],
)
def test_unreadable_create_answer_is_ambiguous(body: bytes) -> None:
    reply = V1.decode_create(201, body, [A, B])
    assert (reply.disposition, reply.outcomes, reply.unanswered) == ("ambiguous", {}, [A, B])
    assert len(reply.anomalies) == 1
