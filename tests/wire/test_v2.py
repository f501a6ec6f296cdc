"""The V2 dialect: bodies that fit Kalshi's 3.31.0 schemas, answers matched by key, not position."""

from __future__ import annotations

import itertools
import json
import time
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from kalshi_router.errors import DialectError, IntentError
from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.outcome import Accepted, ApiError, Cancelled, Rejected
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.reply import BatchReply, Disposition
from kalshi_router.wire.v2 import V2Dialect
from tests.spec_schema import validate_operation, validate_schema

V2 = V2Dialect()
PATH = "/portfolio/events/orders/batched"
TICKER = "HIGHNY-24JAN01-T60"
A = "8c35ecb3-328f-4f52-8c7c-0f4b9862f8d1"
B = "2a0e3fc9-b593-4aa3-96e5-82f7f7566c2a"
C = "c0ffee00-0000-4000-8000-000000000003"
KEYS = [A, B, C]
OA = "3b23c1c7-f4ef-4f0d-8b9a-9e53c61f1a0d"
OB = "a6d6010d-6d5f-40a1-a7e7-5501386bb621"
OC = "5d1c5b9e-5a7e-4a47-9a55-0c4a9d1f0e77"
EXPIRY = int(time.time()) + 86_400


def test_dialect_identity() -> None:
    assert (V2.name, V2.create_path, V2.cancel_path) == ("v2", PATH, PATH)
    assert isinstance(dialect_for("v2"), V2Dialect)


def _intents() -> list[OrderIntent]:
    return [
        OrderIntent.bid(
            TICKER,
            56,
            10,
            client_order_id=A,
            post_only=True,
            expiration_time=EXPIRY,
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
            exchange_index=-1,
        ),
        OrderIntent.legacy(
            ticker="KXBTC-26JUN-B100",
            action="buy",
            side="no",
            price="0.07",
            count=1,
            client_order_id=C,
            time_in_force="fill_or_kill",
        ),
    ]


def test_encode_create_fits_the_spec_and_says_exactly_this() -> None:
    body = json.loads(V2.encode_create(_intents()))
    validate_schema("BatchCreateOrdersV2Request", body)
    assert body == {
        "orders": [
            {
                "ticker": TICKER,
                "side": "bid",
                "count": "10.00",
                "price": "0.5600",
                "time_in_force": "good_till_canceled",
                "self_trade_prevention_type": "taker_at_cross",
                "client_order_id": A,
                "expiration_time": EXPIRY,
                "post_only": True,
                "cancel_order_on_pause": True,
                "subaccount": 2,
                "order_group_id": "grp-1",
                "exchange_index": 0,
            },
            {
                "ticker": TICKER,
                "side": "ask",
                "count": "2.50",
                "price": "0.5805",
                "time_in_force": "immediate_or_cancel",
                "self_trade_prevention_type": "maker",
                "client_order_id": B,
                "reduce_only": True,
                "exchange_index": -1,
            },
            {
                # buy NO at 0.07 is an ask on the YES book at 0.93
                "ticker": "KXBTC-26JUN-B100",
                "side": "ask",
                "count": "1.00",
                "price": "0.9300",
                "time_in_force": "fill_or_kill",
                "self_trade_prevention_type": "taker_at_cross",
                "client_order_id": C,
            },
        ]
    }


def test_encode_create_empty_batch() -> None:
    body = json.loads(V2.encode_create([]))
    validate_schema("BatchCreateOrdersV2Request", body)
    assert body == {"orders": []}


@pytest.mark.parametrize(
    ("field", "fields"),
    [
        pytest.param("buy_max_cost", {"buy_max_cost": 500}, id="buy_max_cost"),
        pytest.param("sell_position_floor", {"sell_position_floor": 0}, id="sell_position_floor"),
    ],
)
def test_v1_only_fields_are_refused(field: str, fields: dict[str, Any]) -> None:
    ok, bad = OrderIntent.bid(TICKER, 56, 1), OrderIntent.bid(TICKER, 56, 1, **fields)
    V2.check(ok)
    for attempt in (lambda: V2.check(bad), lambda: V2.encode_create([ok, bad])):
        with pytest.raises(DialectError) as caught:
            attempt()
        assert caught.value.field == field
        assert "V1-only" in caught.value.rule
        assert isinstance(caught.value, IntentError)


def test_encode_cancel_always_names_the_market() -> None:
    cancels = [
        CancelIntent(order_id=OA, ticker=TICKER),
        CancelIntent(order_id=OB, ticker="KXBTC-26JUN-B100", subaccount=3, exchange_index=1),
        CancelIntent(order_id=OC, ticker=TICKER, exchange_index=-1),
    ]
    body = json.loads(V2.encode_cancel(cancels))
    validate_schema("BatchCancelOrdersV2Request", body)
    assert body == {
        "orders": [
            {"order_id": OA, "market_ticker": TICKER},
            {
                "order_id": OB,
                "subaccount": 3,
                "exchange_index": 1,
                "market_ticker": "KXBTC-26JUN-B100",
            },
            {"order_id": OC, "exchange_index": -1, "market_ticker": TICKER},
        ]
    }


# Answer items in the spec's own example shape, plus a per-item error (flat ErrorResponse).
RESTING_A: dict[str, Any] = {
    "order_id": OA,
    "client_order_id": A,
    "fill_count": "0.00",
    "remaining_count": "10.00",
    "ts_ms": 1715793600123,
}
FILLED_B: dict[str, Any] = {
    "order_id": OB,
    "client_order_id": B,
    "fill_count": "5.00",
    "remaining_count": "0.00",
    "average_fill_price": "0.5800",
    "average_fee_paid": "0.0012",
    "ts_ms": 1715793600456,
}
FAILED_C: dict[str, Any] = {
    "client_order_id": C,
    "fill_count": None,
    "remaining_count": None,
    "error": {"code": "invalid order", "message": "invalid order", "details": "post only cross"},
}
OUTCOME_A = Accepted(
    client_order_id=A,
    order_id=OA,
    fill_count=Decimal("0.00"),
    remaining_count=Decimal("10.00"),
    ts_ms=1715793600123,
)
OUTCOME_B = Accepted(
    client_order_id=B,
    order_id=OB,
    fill_count=Decimal("5.00"),
    remaining_count=Decimal("0.00"),
    average_fill_price=Decimal("0.5800"),
    average_fee_paid=Decimal("0.0012"),
    ts_ms=1715793600456,
)
OUTCOME_C = Rejected(
    code="invalid order",
    message="invalid order",
    details="post only cross",
    http_status=201,
    client_order_id=C,
)


def _created(items: list[dict[str, Any]], keys: list[str] = KEYS, **top: Any) -> BatchReply:
    payload = {"orders": items} | top
    # The fixture is one Kalshi could send.
    validate_operation(PATH, "post", "201", payload)
    return V2.decode_create(201, json.dumps(payload).encode(), keys)


@pytest.mark.parametrize(
    "items",
    [list(order) for order in itertools.permutations([RESTING_A, FILLED_B, FAILED_C])],
)
def test_create_answer_matched_by_client_order_id_in_any_order(
    items: list[dict[str, Any]],
) -> None:
    reply = _created(items)
    assert (reply.disposition, reply.http_status) == ("answered", 201)
    assert reply.outcomes == {A: OUTCOME_A, B: OUTCOME_B, C: OUTCOME_C}
    assert (reply.unanswered, reply.anomalies, reply.error) == ([], [], None)


def test_create_answer_tolerates_nulls_and_unknown_fields() -> None:
    nulls = RESTING_A | {"average_fill_price": None, "average_fee_paid": None, "ts_ms": None}
    nulls |= {"error": None}
    extra = FILLED_B | {"exchange_index": 0, "queue_position": {"level": 3}, "service": "oms"}
    failed = FAILED_C | {"error": FAILED_C["error"] | {"service": "exchange"}}
    reply = _created([failed, extra, nulls], cursor="ignored", schema_version=7)
    assert reply.disposition == "answered"
    assert reply.outcomes == {
        A: Accepted(
            client_order_id=A, order_id=OA, fill_count=Decimal(0), remaining_count=Decimal(10)
        ),
        B: OUTCOME_B,
        C: OUTCOME_C,
    }
    assert (reply.unanswered, reply.anomalies) == ([], [])


def test_create_error_with_a_null_detail_still_settles_the_batch() -> None:
    # Off-spec (details is a plain string in ErrorResponse), so not spec-validated: one such item
    # must not make its 19 neighbours unreadable.
    failed = FAILED_C | {"error": {"code": "invalid_order", "message": "m", "details": None}}
    body = json.dumps({"orders": [RESTING_A, failed]}).encode()
    reply = V2.decode_create(201, body, [A, C])
    assert reply.disposition == "answered"
    assert reply.outcomes == {
        A: OUTCOME_A,
        C: Rejected(code="invalid_order", message="m", http_status=201, client_order_id=C),
    }


@pytest.mark.parametrize(
    ("items", "keys", "settled", "unanswered", "anomaly"),
    [
        pytest.param(
            [RESTING_A, RESTING_A | {"client_order_id": "stranger"}],
            [A],
            {A: OUTCOME_A},
            [],
            "'stranger'",
            id="unknown-client-order-id",
        ),
        pytest.param(
            [RESTING_A | {"client_order_id": None}, FILLED_B],
            [A, B],
            {B: OUTCOME_B},
            [A],
            "unknown client_order_id None",
            id="null-client-order-id",
        ),
        pytest.param(
            [RESTING_A, FILLED_B, RESTING_A],
            [A, B],
            {B: OUTCOME_B},
            [A],
            "answered twice",
            id="duplicate",
        ),
        pytest.param(
            [FAILED_C | {"client_order_id": A}, FILLED_B, RESTING_A],
            [A, B],
            {B: OUTCOME_B},
            [A],
            "answered twice",
            id="duplicate-error-and-success",
        ),
        pytest.param(
            [{"order_id": OA, "client_order_id": A, "fill_count": "0.00"}, FILLED_B],
            [A, B],
            {B: OUTCOME_B},
            [A],
            "lacks required fields",
            id="no-remaining-count",
        ),
    ],
)
def test_create_answer_anomalies_leave_the_key_unsettled(
    items: list[dict[str, Any]],
    keys: list[str],
    settled: dict[str, Accepted],
    unanswered: list[str],
    anomaly: str,
) -> None:
    reply = _created(items, keys)
    assert reply.disposition == "answered"
    assert reply.outcomes == settled
    assert reply.unanswered == unanswered
    assert any(anomaly in text for text in reply.anomalies), reply.anomalies


@pytest.mark.parametrize(
    ("count", "settled", "anomaly"),
    [
        pytest.param("7.50", Decimal("7.50"), None, id="decimal-string"),
        pytest.param(" 7.5", Decimal("7.5"), None, id="what-Decimal-takes"),
        pytest.param(7.5, Decimal("7.5"), None, id="json-number"),
        pytest.param("NaN", None, "impossible values", id="not-a-number"),
        pytest.param("-1.00", None, "impossible values", id="negative"),
        pytest.param("lots", None, "does not fit the schema", id="not-a-decimal"),
    ],
)
def test_create_answer_counts_read_as_decimals_whatever_their_string(
    count: Any, settled: Decimal | None, anomaly: str | None
) -> None:
    # Counts are read as strings and made Decimals once per string: the same as decoding them
    # into Decimals, misfits included (not validated against the spec: some are not numbers).
    for _ in range(2):  # the second time from the strings already seen
        body = json.dumps({"orders": [RESTING_A | {"remaining_count": count}, FILLED_B]})
        reply = V2.decode_create(201, body.encode(), [A, B])
        assert reply.outcomes[B] == OUTCOME_B
        if settled is None:
            assert A not in reply.outcomes
            assert reply.unanswered == [A]
            assert anomaly is not None
            assert anomaly in reply.anomalies[0], reply.anomalies
        else:
            assert reply.outcomes[A] == msgspec.structs.replace(OUTCOME_A, remaining_count=settled)
            assert reply.anomalies == []


def test_create_answer_with_fewer_items_than_sent() -> None:
    reply = _created([FILLED_B])
    assert reply.outcomes == {B: OUTCOME_B}
    assert reply.unanswered == [A, C]
    assert reply.anomalies == ["answer left out 2 of 3 client_order_ids"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(json.dumps({"orders": [RESTING_A, FILLED_B]}).encode()[:-9], id="truncated"),
        pytest.param(b'{"orders": {"a": 1}}', id="orders-not-a-list"),
        pytest.param(b'{"order": []}', id="no-orders-key"),
        pytest.param(b'{"error":{"code":"internal"}}', id="error-envelope-in-201"),
    ],
)
def test_unreadable_create_answer_is_ambiguous(body: bytes) -> None:
    reply = V2.decode_create(201, body, KEYS)
    assert (reply.disposition, reply.http_status) == ("ambiguous", 201)
    assert reply.outcomes == {}
    assert reply.unanswered == KEYS
    assert len(reply.anomalies) == 1


ERROR_SHAPES: list[Any] = [
    pytest.param(
        b'{"error":{"code":"invalid_order","message":"bad","details":"orders[2].count"}}',
        ("invalid_order", "bad", "orders[2].count"),
        id="wrapped",
    ),
    pytest.param(
        b'{"error":"too many requests"}', ("too_many_requests", "too many requests", ""), id="str"
    ),
    pytest.param(
        b'{"code":"internal_error","message":"try again","details":""}',
        ("internal_error", "try again", ""),
        id="flat",
    ),
    pytest.param(b"<h1>Bad Gateway</h1>", ("http_{status}", "<h1>Bad Gateway</h1>", ""), id="html"),
]
STATUSES: list[tuple[int, Disposition]] = [
    (400, "rejected"),
    (401, "rejected"),
    (403, "rejected"),
    (404, "rejected"),
    (409, "rejected"),
    (410, "rejected"),
    (429, "retry"),
    (503, "retry"),
    (500, "ambiguous"),
    (502, "ambiguous"),
    (504, "ambiguous"),
]


@pytest.mark.parametrize("operation", ["create", "cancel"])
@pytest.mark.parametrize(("status", "disposition"), STATUSES)
@pytest.mark.parametrize(("body", "triple"), ERROR_SHAPES)
def test_whole_request_error(
    operation: str,
    status: int,
    disposition: Disposition,
    body: bytes,
    triple: tuple[str, str, str],
) -> None:
    code, message, details = triple
    code = code.format(status=status)
    decode = V2.decode_create if operation == "create" else V2.decode_cancel
    keys = KEYS if operation == "create" else [OA, OB, OC]
    reply = decode(status, body, keys)
    assert (reply.disposition, reply.http_status) == (disposition, status)
    assert reply.error == ApiError(code, message, details)
    if disposition == "rejected":
        assert reply.unanswered == []
        expected = {
            key: Rejected(
                code=code,
                message=message,
                details=details,
                http_status=status,
                client_order_id=key if operation == "create" else None,
                order_id=key if operation == "cancel" else None,
            )
            for key in keys
        }
        assert reply.outcomes == expected
    else:
        assert reply.outcomes == {}
        assert reply.unanswered == keys


CANCELLED_A: dict[str, Any] = {
    "order_id": OA,
    "client_order_id": A,
    "reduced_by": "10.00",
    "ts_ms": 1715793660456,
}
CANCELLED_B: dict[str, Any] = {
    "order_id": OB,
    "client_order_id": None,
    "reduced_by": "2.50",
    "ts_ms": None,
    "error": None,
}
NOT_FOUND_C: dict[str, Any] = {
    "order_id": OC,
    "reduced_by": "0.00",
    "error": {"code": "not_found", "message": "order not found", "details": ""},
}


def _cancelled(items: list[dict[str, Any]], keys: list[str]) -> BatchReply:
    payload = {"orders": items}
    validate_operation(PATH, "delete", "200", payload)
    return V2.decode_cancel(200, json.dumps(payload).encode(), keys)


@pytest.mark.parametrize(
    "items",
    [list(order) for order in itertools.permutations([CANCELLED_A, CANCELLED_B, NOT_FOUND_C])],
)
def test_cancel_answer_matched_by_order_id(items: list[dict[str, Any]]) -> None:
    reply = _cancelled(items, [OA, OB, OC])
    assert (reply.disposition, reply.http_status) == ("answered", 200)
    assert reply.outcomes == {
        OA: Cancelled(
            order_id=OA, reduced_by=Decimal("10.00"), client_order_id=A, ts_ms=1715793660456
        ),
        OB: Cancelled(order_id=OB, reduced_by=Decimal("2.50")),
        OC: Rejected(code="not_found", message="order not found", http_status=200, order_id=OC),
    }
    assert (reply.unanswered, reply.anomalies) == ([], [])


def test_cancel_answer_anomalies() -> None:
    stranger = CANCELLED_A | {"order_id": "o-unknown"}
    reply = _cancelled([CANCELLED_B, stranger, CANCELLED_B], [OA, OB])
    assert reply.outcomes == {}
    assert reply.unanswered == [OA, OB]
    assert len(reply.anomalies) == 3
    assert "'o-unknown'" in reply.anomalies[0]
    assert f"{OB!r} answered twice" in reply.anomalies[1]
    assert reply.anomalies[2] == "answer left out 1 of 2 order_ids"


def test_unreadable_cancel_answer_is_ambiguous() -> None:
    reply = V2.decode_cancel(200, b'{"orders":[{"order_id":"x","reduced_by":', [OA])
    assert (reply.disposition, reply.outcomes, reply.unanswered) == ("ambiguous", {}, [OA])
