"""reply: status classes, the three error envelopes, and matching answer items to keys."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from kalshi_router.outcome import ApiError, Cancelled, Rejected
from kalshi_router.wire.reply import (
    BatchReply,
    Disposition,
    Outcome,
    build_reply,
    classify_status,
    decode_error,
)

KEYS = ["k1", "k2", "k3"]


@pytest.mark.parametrize(
    ("status", "disposition"),
    [
        (200, "answered"),
        (201, "answered"),
        (204, "answered"),
        (400, "rejected"),
        (401, "rejected"),
        (403, "rejected"),
        (404, "rejected"),
        (409, "rejected"),
        (410, "rejected"),
        (422, "rejected"),
        (408, "retry"),
        (429, "retry"),
        (503, "retry"),
        (500, "ambiguous"),
        (502, "ambiguous"),
        (504, "ambiguous"),
        (599, "ambiguous"),
    ],
)
def test_classify_status(status: int, disposition: Disposition) -> None:
    assert classify_status(status) == disposition


AUTH_DETAILS = "rpc error: code = Unauthenticated desc = INCORRECT_API_KEY_SIGNATURE"
V2_DOCS = "https://docs.kalshi.com/api-reference/orders/create-order-v2"

# (status, body, the ApiError it must give)
ERROR_BODIES: list[Any] = [
    pytest.param(
        400,
        b'{"error":{"code":"invalid_price","message":"invalid price"}}',
        ApiError("invalid_price", "invalid price", ""),
        id="wrapped-no-details",
    ),
    pytest.param(
        401,
        json.dumps(
            {
                "error": {
                    "code": "authentication_error",
                    "message": "authentication_error",
                    "details": AUTH_DETAILS,
                }
            }
        ).encode(),
        ApiError("authentication_error", "authentication_error", AUTH_DETAILS),
        id="wrapped-with-details",
    ),
    pytest.param(
        410,
        b'{"error":{"code":"deprecated_v1_order_endpoint","message":"Please switch to the V2 '
        b'endpoints","details":"' + V2_DOCS.encode() + b'"}}',
        ApiError("deprecated_v1_order_endpoint", "Please switch to the V2 endpoints", V2_DOCS),
        id="wrapped-410",
    ),
    pytest.param(
        400,
        b'{"error":{"code":"c","message":"m","details":"d","service":"exchange","extra":[1]}}',
        ApiError("c", "m", "d"),
        id="wrapped-extra-fields",
    ),
    pytest.param(
        400,
        b'{"error":{"code":"c","message":"m","details":null}}',
        ApiError("c", "m", ""),
        id="wrapped-null-details",
    ),
    pytest.param(
        429,
        b'{"error": "too many requests"}',
        ApiError("too_many_requests", "too many requests", ""),
        id="string-429",
    ),
    pytest.param(
        409,
        b'{"code":"order_already_exists","message":"duplicate","details":"client_order_id"}',
        ApiError("order_already_exists", "duplicate", "client_order_id"),
        id="flat",
    ),
    pytest.param(
        400, b'{"code":"invalid_order"}', ApiError("invalid_order", "", ""), id="flat-code"
    ),
    pytest.param(
        502,
        b'{"message":"Internal server error"}',
        ApiError("http_502", "Internal server error", ""),
        id="flat-message-only",
    ),
    pytest.param(400, b'{"error":{}}', ApiError("http_400", "HTTP 400", ""), id="wrapped-empty"),
    pytest.param(400, b'{"error":""}', ApiError("http_400", "HTTP 400", ""), id="string-empty"),
    pytest.param(500, b"{}", ApiError("http_500", "HTTP 500", ""), id="empty-object"),
    pytest.param(503, b"", ApiError("http_503", "HTTP 503", ""), id="empty-body"),
    pytest.param(503, b"  \n", ApiError("http_503", "HTTP 503", ""), id="blank-body"),
    pytest.param(
        502,
        b"<html><body>502 Bad Gateway</body></html>\n",
        ApiError("http_502", "<html><body>502 Bad Gateway</body></html>", ""),
        id="html",
    ),
    pytest.param(400, b"[1, 2]", ApiError("http_400", "[1, 2]", ""), id="json-array"),
    pytest.param(400, b'{"error": 5}', ApiError("http_400", '{"error": 5}', ""), id="error-int"),
    pytest.param(400, b'{"error":{"code"', ApiError("http_400", '{"error":{"code"', ""), id="cut"),
    pytest.param(500, b"\xff\xfeboom", ApiError("http_500", "\ufffd\ufffdboom", ""), id="not-utf8"),
]


@pytest.mark.parametrize(("status", "body", "expected"), ERROR_BODIES)
def test_decode_error(status: int, body: bytes, expected: ApiError) -> None:
    assert decode_error(status, body) == expected


def test_decode_error_keeps_at_most_200_bytes_of_text() -> None:
    error = decode_error(502, b"x" * 5000)
    assert error == ApiError("http_502", "x" * 200, "")


class Item(msgspec.Struct):
    """A stand-in answer item: the shared matcher is independent of any dialect's shape."""

    key: str | None
    reduced_by: Decimal | None = None


_items = msgspec.json.Decoder(list[Item])


def _settle(item: Item) -> tuple[str | None, Outcome | None]:
    if item.key is None:
        return None, None
    if item.reduced_by is None:
        return item.key, None
    return item.key, Cancelled(order_id=item.key, reduced_by=item.reduced_by)


def _reply(status: int, body: bytes, keys: list[str] = KEYS) -> BatchReply:
    return build_reply(status, body, keys, _items.decode, _settle, "order_id")


def _done(key: str, reduced_by: str = "1.00") -> dict[str, Any]:
    return {"key": key, "reduced_by": reduced_by}


# (answer items, outcomes by key as reduced_by, unanswered, anomaly fragments)
MATCHING: list[Any] = [
    pytest.param(
        [_done("k3", "3.00"), _done("k1", "1.00"), _done("k2", "2.00")],
        {"k1": "1.00", "k2": "2.00", "k3": "3.00"},
        [],
        [],
        id="shuffled",
    ),
    pytest.param(
        [_done("k2")],
        {"k2": "1.00"},
        ["k1", "k3"],
        ["answer left out 2 of 3 order_ids"],
        id="missing-keep-key-order",
    ),
    pytest.param([], {}, KEYS, ["answer left out 3 of 3 order_ids"], id="no-items"),
    pytest.param(
        [_done("k1"), _done("zz"), _done("k2")],
        {"k1": "1.00", "k2": "1.00"},
        ["k3"],
        ["unknown order_id 'zz'", "left out 1 of 3"],
        id="unknown-key",
    ),
    pytest.param(
        [{"key": None, "reduced_by": "1.00"}, _done("k1")],
        {"k1": "1.00"},
        ["k2", "k3"],
        ["unknown order_id None", "left out 2 of 3"],
        id="keyless-item",
    ),
    pytest.param(
        [_done("k1"), _done("k2"), _done("k1")],
        {"k2": "1.00"},
        ["k1", "k3"],
        ["order_id 'k1' answered twice", "left out 1 of 3"],
        id="duplicate",
    ),
    pytest.param(
        [_done("k1"), _done("k1"), _done("k1")],
        {},
        KEYS,
        ["order_id 'k1' answered twice", "left out 2 of 3"],
        id="triplicate",
    ),
    pytest.param(
        [{"key": "k1"}, _done("k2")],
        {"k2": "1.00"},
        ["k1", "k3"],
        ["order_id 'k1' lacks required fields", "left out 1 of 3"],
        id="unsettleable",
    ),
    pytest.param(
        [{"key": "k1"}, _done("k1")],
        {},
        KEYS,
        ["order_id 'k1' lacks required fields", "order_id 'k1' answered twice", "left out 2"],
        id="unsettleable-then-good",
    ),
    pytest.param(
        [_done("k1"), {"key": "k1"}],
        {},
        KEYS,
        ["order_id 'k1' lacks required fields", "order_id 'k1' answered twice", "left out 2"],
        id="good-then-unsettleable",
    ),
]


@pytest.mark.parametrize(("items", "settled", "unanswered", "anomalies"), MATCHING)
def test_build_reply_matches_by_key(
    items: list[dict[str, Any]],
    settled: dict[str, str],
    unanswered: list[str],
    anomalies: list[str],
) -> None:
    reply = _reply(201, json.dumps(items).encode())
    assert (reply.disposition, reply.http_status, reply.error) == ("answered", 201, None)
    assert reply.outcomes == {
        key: Cancelled(order_id=key, reduced_by=Decimal(value)) for key, value in settled.items()
    }
    assert reply.unanswered == unanswered
    assert len(reply.anomalies) == len(anomalies)
    for fragment, anomaly in zip(anomalies, reply.anomalies, strict=True):
        assert fragment in anomaly


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'[{"key": "k1", "reduced_by": "1.0', id="truncated"),
        pytest.param(b'{"key": "k1"}', id="wrong-shape"),
        pytest.param(b'[{"key": 1}]', id="wrong-type"),
        pytest.param(b'[{"key": "k1", "reduced_by": "lots"}]', id="bad-decimal"),
        pytest.param(b"null", id="null"),
        pytest.param(b"<html>OK</html>", id="html"),
    ],
)
def test_unreadable_2xx_is_ambiguous_for_every_key(body: bytes) -> None:
    reply = _reply(200, body)
    assert (reply.disposition, reply.http_status) == ("ambiguous", 200)
    assert reply.outcomes == {}
    assert reply.unanswered == KEYS
    assert reply.error is None
    assert len(reply.anomalies) == 1
    assert reply.anomalies[0]  # the decoder's message, kept for the log


def _never(raw: bytes) -> Iterable[Item]:
    raise AssertionError("an error answer must not be read as items")


@pytest.mark.parametrize("key_field", ["order_id", "client_order_id"])
def test_rejected_answer_settles_every_key_with_its_own_rejection(key_field: str) -> None:
    body = b'{"error":{"code":"invalid_order","message":"bad batch","details":"orders[1]"}}'
    reply = build_reply(400, body, KEYS, _never, _settle, key_field)
    error = ApiError("invalid_order", "bad batch", "orders[1]")
    assert (reply.disposition, reply.http_status, reply.error) == ("rejected", 400, error)
    assert reply.unanswered == []
    assert reply.anomalies == []
    assert list(reply.outcomes) == KEYS
    for key, outcome in reply.outcomes.items():
        assert isinstance(outcome, Rejected)
        assert (outcome.code, outcome.message, outcome.details, outcome.http_status) == (
            "invalid_order",
            "bad batch",
            "orders[1]",
            400,
        )
        expected = (key, None) if key_field == "order_id" else (None, key)
        assert (outcome.order_id, outcome.client_order_id) == expected


@pytest.mark.parametrize(
    ("status", "disposition", "body", "error"),
    [
        pytest.param(
            429,
            "retry",
            b'{"error":"too many requests"}',
            ApiError("too_many_requests", "too many requests", ""),
            id="429",
        ),
        pytest.param(503, "retry", b"", ApiError("http_503", "HTTP 503", ""), id="503"),
        pytest.param(
            500,
            "ambiguous",
            b'{"code":"internal","message":"oops"}',
            ApiError("internal", "oops", ""),
            id="500",
        ),
        pytest.param(
            504,
            "ambiguous",
            b"gateway timeout",
            ApiError("http_504", "gateway timeout", ""),
            id="504",
        ),
    ],
)
def test_unsettled_answer_leaves_every_key_unanswered(
    status: int, disposition: Disposition, body: bytes, error: ApiError
) -> None:
    reply = build_reply(status, body, KEYS, _never, _settle, "client_order_id")
    assert (reply.disposition, reply.http_status, reply.error) == (disposition, status, error)
    assert reply.outcomes == {}
    assert reply.unanswered == KEYS
    assert reply.anomalies == []
