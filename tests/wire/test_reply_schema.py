"""Answers that break the schema are classified, never trusted.

Each order whose item is missing, duplicated, unreadable, or lacking what an outcome needs stays
unanswered (the dispatcher looks it up: it may exist); every other order settles from its own
item. A 2xx that cannot be read at all leaves every order unanswered. Tables per dialect (V2,
V1) and for the single-order answers, then the same through ``ExchangeClient`` on a scripted
transport, and through the router against the simulator with a transport that corrupts answers.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from kalshi_router.config import LimitsConfig
from kalshi_router.errors import TransportError
from kalshi_router.intent import AmendIntent, CancelIntent, OrderIntent
from kalshi_router.outcome import Accepted, Amended, Cancelled, Rejected
from kalshi_router.router import OrderRouter
from kalshi_router.sim import SimConfig
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialect import Dialect
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport, Response
from kalshi_router.wire.reply import BatchReply, Outcome
from kalshi_router.wire.single import decode_single
from kalshi_router.wire.v1 import V1Dialect
from kalshi_router.wire.v2 import V2Dialect
from tests.integration.conftest import FAST_RETRIES, check_outcomes, make_signer, running_sim

A, B, C = "coid-a", "coid-b", "coid-c"
OA, OB = "order-a", "order-b"
TICKER = "KXSCHEMA-26DEC31-T50"
Items = list[Any]


def body(items: Items) -> bytes:
    return json.dumps({"orders": items}).encode()


def without(item: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != field}


def check(
    reply: BatchReply,
    keys: Sequence[str],
    good: Mapping[str, Outcome],
    settled: str,
    anomaly: str | None,
) -> None:
    """``settled``: the keys (one letter each: "ab") that must settle, each to its good
    outcome; every other key must be unanswered, none lost, none in both."""
    by_letter = {key[-1]: key for key in keys}
    expected = {by_letter[letter]: good[by_letter[letter]] for letter in settled}
    assert reply.outcomes == expected
    assert reply.unanswered == [key for key in keys if key not in expected]
    if anomaly is None:
        assert reply.anomalies == []
    else:
        assert any(anomaly in text for text in reply.anomalies), reply.anomalies


# --- V2 ----------------------------------------------------------------------------------------

V2 = V2Dialect()
V2_A: dict[str, Any] = {
    "order_id": OA,
    "client_order_id": A,
    "fill_count": "0.00",
    "remaining_count": "10.00",
    "ts_ms": 1715793600123,
}
V2_B: dict[str, Any] = {
    "order_id": OB,
    "client_order_id": B,
    "fill_count": "5.00",
    "remaining_count": "0.00",
    "average_fill_price": "0.5800",
    "average_fee_paid": "0.0012",
    "ts_ms": 1715793600456,
}
V2_C: dict[str, Any] = {
    "client_order_id": C,
    "fill_count": None,
    "remaining_count": None,
    "error": {"code": "invalid order", "message": "invalid order", "details": "post only cross"},
}
V2_GOOD: dict[str, Outcome] = {
    A: Accepted(
        client_order_id=A,
        order_id=OA,
        fill_count=Decimal("0.00"),
        remaining_count=Decimal("10.00"),
        ts_ms=1715793600123,
    ),
    B: Accepted(
        client_order_id=B,
        order_id=OB,
        fill_count=Decimal("5.00"),
        remaining_count=Decimal("0.00"),
        average_fill_price=Decimal("0.5800"),
        average_fee_paid=Decimal("0.0012"),
        ts_ms=1715793600456,
    ),
    C: Rejected(
        code="invalid order",
        message="invalid order",
        details="post only cross",
        http_status=201,
        client_order_id=C,
    ),
}
SCHEMA = "does not fit the schema"
LACKS = "lacks required fields"
IMPOSSIBLE = "impossible values"

# (answer items, keys that settle, an anomaly fragment or None)
V2_CREATE: list[Any] = [
    pytest.param([V2_A, V2_B, V2_C], "abc", None, id="clean"),
    pytest.param([without(V2_A, "remaining_count"), V2_B, V2_C], "bc", LACKS, id="no-remaining"),
    pytest.param([without(V2_A, "fill_count"), V2_B, V2_C], "bc", LACKS, id="no-fill-count"),
    pytest.param([without(V2_A, "order_id"), V2_B, V2_C], "bc", LACKS, id="no-order-id"),
    pytest.param([V2_A | {"order_id": ""}, V2_B, V2_C], "bc", LACKS, id="empty-order-id"),
    pytest.param([V2_A | {"order_id": 7}, V2_B, V2_C], "bc", SCHEMA, id="order-id-int"),
    pytest.param([V2_A | {"ts_ms": "soon"}, V2_B, V2_C], "bc", SCHEMA, id="ts-not-int"),
    pytest.param([V2_A | {"fill_count": True}, V2_B, V2_C], "bc", SCHEMA, id="count-bool"),
    pytest.param([V2_A | {"fill_count": "1/2"}, V2_B, V2_C], "bc", SCHEMA, id="count-text"),
    pytest.param(
        [V2_A | {"remaining_count": "-1.00"}, V2_B, V2_C], "bc", IMPOSSIBLE, id="negative"
    ),
    pytest.param([V2_A | {"fill_count": "NaN"}, V2_B, V2_C], "bc", IMPOSSIBLE, id="nan"),
    pytest.param([V2_A | {"fill_count": "sNaN"}, V2_B, V2_C], "bc", IMPOSSIBLE, id="snan"),
    pytest.param(
        [V2_A, V2_B | {"average_fill_price": "Infinity"}, V2_C], "ac", IMPOSSIBLE, id="inf-price"
    ),
    pytest.param([V2_A, V2_B, V2_C | {"error": "no"}], "ab", SCHEMA, id="error-not-object"),
    pytest.param([V2_A, V2_B, V2_C | {"error": [1]}], "ab", SCHEMA, id="error-list"),
    pytest.param(
        [V2_A | {"client_order_id": 7}, V2_B, V2_C],
        "bc",
        "unknown client_order_id None",
        id="key-int",
    ),
    pytest.param(
        [V2_A | {"client_order_id": None}, V2_B, V2_C], "bc", "left out 1 of 3", id="key-null"
    ),
    pytest.param([5, V2_B, V2_C], "bc", "unknown client_order_id None", id="item-not-object"),
    pytest.param([None, V2_B, V2_C], "bc", "unknown client_order_id None", id="item-null"),
    pytest.param(
        [V2_A, V2_B, V2_C, V2_A | {"client_order_id": "stranger"}],
        "abc",
        "unknown client_order_id 'stranger'",
        id="unknown-key",
    ),
    pytest.param([V2_B], "b", "left out 2 of 3", id="fewer-items"),
    pytest.param([], "", "left out 3 of 3", id="no-items"),
    pytest.param(
        [V2_A, V2_B, V2_C, V2_A | {"client_order_id": "d"}, V2_B | {"client_order_id": "e"}],
        "abc",
        "unknown client_order_id 'd'",
        id="more-items",
    ),
    pytest.param([V2_A, V2_B, V2_C, V2_A], "bc", "answered twice", id="duplicate"),
    pytest.param(
        [V2_A, V2_B, V2_C, V2_C | {"client_order_id": A}], "bc", "answered twice", id="contradict"
    ),
    pytest.param(
        [V2_A, V2_B, V2_C, V2_A | {"ts_ms": "soon"}], "bc", SCHEMA, id="duplicate-unreadable"
    ),
]


@pytest.mark.parametrize("status", [200, 201])
@pytest.mark.parametrize(("items", "settled", "anomaly"), V2_CREATE)
def test_v2_create_answer(status: int, items: Items, settled: str, anomaly: str | None) -> None:
    reply = V2.decode_create(status, body(items), [A, B, C])
    assert (reply.disposition, reply.http_status, reply.error) == ("answered", status, None)
    check(reply, [A, B, C], V2_GOOD, settled, anomaly)


def test_long_unknown_key_is_quoted_only_in_part() -> None:
    stranger = V2_A | {"client_order_id": "x" * 500}
    reply = V2.decode_create(201, body([V2_A, V2_B, V2_C, stranger]), [A, B, C])
    # A key the exchange made up is quoted, but only so far.
    assert len(reply.anomalies) == 1
    assert len(reply.anomalies[0]) < 150


# 2xx answers that cannot be read at all: every order stays unanswered.
UNREADABLE: list[Any] = [
    pytest.param(b"", id="empty"),
    pytest.param(b"  \n", id="blank"),
    pytest.param(b"<html><body>OK</body></html>", id="html"),
    pytest.param(b"not json", id="text"),
    pytest.param(b'{"orders": [{"order_id": "x", "client_order_id": "coid-a"', id="truncated"),
    pytest.param(b"[]", id="top-level-array"),
    pytest.param(b"{}", id="empty-object"),
    pytest.param(b"null", id="null"),
    pytest.param(b'"orders"', id="string"),
    pytest.param(b'{"orders": null}', id="orders-null"),
    pytest.param(b'{"orders": {"coid-a": {}}}', id="orders-object"),
    pytest.param(b'{"orders": "all good"}', id="orders-string"),
    pytest.param(b'{"error": {"code": "internal", "message": "oops"}}', id="error-envelope"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
]


@pytest.mark.parametrize("dialect", [V2, V1Dialect()], ids=["v2", "v1"])
@pytest.mark.parametrize("operation", ["create", "cancel"])
@pytest.mark.parametrize("status", [200, 201, 204])
@pytest.mark.parametrize("raw", UNREADABLE)
def test_unreadable_2xx_leaves_every_order_unanswered(
    dialect: Dialect, operation: str, status: int, raw: bytes
) -> None:
    keys = [A, B] if operation == "create" else [OA, OB]
    decode = dialect.decode_create if operation == "create" else dialect.decode_cancel
    reply = decode(status, raw, keys)
    assert (reply.disposition, reply.http_status, reply.error) == ("ambiguous", status, None)
    assert (reply.outcomes, reply.unanswered) == ({}, keys)
    assert len(reply.anomalies) == 1
    assert reply.anomalies[0]


V2_CANCEL_A: dict[str, Any] = {
    "order_id": OA,
    "client_order_id": A,
    "reduced_by": "10.00",
    "ts_ms": 1715793660456,
}
V2_CANCEL_B: dict[str, Any] = {
    "order_id": OB,
    "reduced_by": "0.00",
    "error": {"code": "not_found", "message": "order not found", "details": ""},
}
V2_CANCEL_GOOD: dict[str, Outcome] = {
    OA: Cancelled(order_id=OA, reduced_by=Decimal("10.00"), client_order_id=A, ts_ms=1715793660456),
    OB: Rejected(code="not_found", message="order not found", http_status=200, order_id=OB),
}

V2_CANCEL: list[Any] = [
    pytest.param([V2_CANCEL_A, V2_CANCEL_B], "ab", None, id="clean"),
    pytest.param([without(V2_CANCEL_A, "reduced_by"), V2_CANCEL_B], "b", LACKS, id="no-reduced"),
    pytest.param([V2_CANCEL_A | {"reduced_by": "-2"}, V2_CANCEL_B], "b", IMPOSSIBLE, id="negative"),
    pytest.param([V2_CANCEL_A | {"reduced_by": "NaN"}, V2_CANCEL_B], "b", IMPOSSIBLE, id="nan"),
    pytest.param([V2_CANCEL_A | {"ts_ms": 1.5}, V2_CANCEL_B], "b", SCHEMA, id="ts-float"),
    pytest.param([V2_CANCEL_A | {"order_id": 1}, V2_CANCEL_B], "b", "unknown", id="key-int"),
    pytest.param([V2_CANCEL_B], "b", "left out 1 of 2", id="fewer"),
    pytest.param([V2_CANCEL_A, V2_CANCEL_B, V2_CANCEL_B], "a", "answered twice", id="duplicate"),
    pytest.param(
        [V2_CANCEL_A, V2_CANCEL_B, V2_CANCEL_A | {"order_id": "o-x"}], "ab", "'o-x'", id="more"
    ),
]


@pytest.mark.parametrize(("items", "settled", "anomaly"), V2_CANCEL)
def test_v2_cancel_answer(items: Items, settled: str, anomaly: str | None) -> None:
    reply = V2.decode_cancel(200, body(items), [OA, OB])
    assert reply.disposition == "answered"
    check(reply, [OA, OB], V2_CANCEL_GOOD, settled, anomaly)


# --- V1 ----------------------------------------------------------------------------------------

V1 = V1Dialect()


def v1_order(order_id: str, client_order_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "client_order_id": client_order_id,
        "ticker": TICKER,
        "status": "resting",
        "fill_count_fp": "0.00",
        "remaining_count_fp": "10.00",
        **fields,
    }


V1_A: dict[str, Any] = {"client_order_id": A, "order": v1_order(OA, A), "error": None}
# No key on the item: it comes from the order.
V1_B: dict[str, Any] = {"client_order_id": None, "order": v1_order(OB, B)}
V1_C: dict[str, Any] = {
    "client_order_id": C,
    "order": None,
    "error": {"code": "invalid order", "message": "invalid order", "details": "post only cross"},
}
V1_GOOD: dict[str, Outcome] = {
    A: Accepted(
        client_order_id=A, order_id=OA, fill_count=Decimal("0.00"), remaining_count=Decimal(10)
    ),
    B: Accepted(
        client_order_id=B, order_id=OB, fill_count=Decimal("0.00"), remaining_count=Decimal(10)
    ),
    C: V2_GOOD[C],
}

V1_CREATE: list[Any] = [
    pytest.param([V1_A, V1_B, V1_C], "abc", None, id="clean"),
    pytest.param(
        [V1_A | {"order": {"order_id": OA}}, V1_B, V1_C], "bc", SCHEMA, id="order-missing-fields"
    ),
    pytest.param(
        [V1_A, V1_B | {"order": v1_order(OB, B) | {"order_id": 5}}, V1_C],
        "ac",
        SCHEMA,
        id="key-only-in-broken-order",
    ),
    pytest.param(
        [V1_A | {"order": v1_order(OA, "someone-else")}, V1_B, V1_C],
        "bc",
        LACKS,
        id="item-and-order-disagree",
    ),
    pytest.param(
        [V1_A, V1_B, V1_C | {"order": v1_order("order-c", C)}], "ab", LACKS, id="error-and-order"
    ),
    pytest.param([V1_A | {"order": v1_order("", A)}, V1_B, V1_C], "bc", LACKS, id="empty-id"),
    pytest.param(
        [V1_A | {"order": v1_order(OA, A, fill_count_fp="NaN")}, V1_B, V1_C],
        "bc",
        "finite",
        id="nan",
    ),
    pytest.param(
        [V1_A | {"order": v1_order(OA, A, remaining_count_fp="-3")}, V1_B, V1_C],
        "bc",
        ">= 0",
        id="negative",
    ),
    pytest.param([V1_A | {"order": None}, V1_B, V1_C], "bc", LACKS, id="no-order-no-error"),
    pytest.param(
        [V1_A | {"client_order_id": 7, "order": None}, V1_B, V1_C], "bc", "None", id="key-int"
    ),
    pytest.param([V1_A, V1_C], "ac", "left out 1 of 3", id="fewer"),
    pytest.param([V1_A, V1_B, V1_C, V1_B], "ac", "answered twice", id="duplicate"),
    pytest.param(
        [V1_A, V1_B, V1_C, {"order": v1_order("o-x", "coid-x")}], "abc", "'coid-x'", id="more"
    ),
]


@pytest.mark.parametrize(("items", "settled", "anomaly"), V1_CREATE)
def test_v1_create_answer(items: Items, settled: str, anomaly: str | None) -> None:
    reply = V1.decode_create(201, body(items), [A, B, C])
    assert reply.disposition == "answered"
    check(reply, [A, B, C], V1_GOOD, settled, anomaly)


V1_CANCEL_A: dict[str, Any] = {
    "order_id": OA,
    "order": v1_order(OA, A, status="canceled", remaining_count_fp="0.00"),
    "reduced_by_fp": "10.00",
}
V1_CANCEL_B: dict[str, Any] = {
    "order_id": OB,
    "reduced_by_fp": "0.00",
    "error": {"code": "not_found", "message": "order not found"},
}
V1_CANCEL_GOOD: dict[str, Outcome] = {
    OA: Cancelled(order_id=OA, reduced_by=Decimal("10.00"), client_order_id=A),
    OB: V2_CANCEL_GOOD[OB],
}

V1_CANCEL: list[Any] = [
    pytest.param([V1_CANCEL_A, V1_CANCEL_B], "ab", None, id="clean"),
    pytest.param(
        [V1_CANCEL_A | {"order": v1_order("order-z", A)}, V1_CANCEL_B], "b", LACKS, id="other-order"
    ),
    pytest.param(
        [V1_CANCEL_A | {"reduced_by_fp": "-1"}, V1_CANCEL_B], "b", IMPOSSIBLE, id="negative"
    ),
    pytest.param([without(V1_CANCEL_A, "reduced_by_fp"), V1_CANCEL_B], "b", LACKS, id="missing"),
    pytest.param([V1_CANCEL_A | {"order": "gone"}, V1_CANCEL_B], "b", SCHEMA, id="order-text"),
    pytest.param([V1_CANCEL_A, V1_CANCEL_B, V1_CANCEL_A], "b", "answered twice", id="duplicate"),
]


@pytest.mark.parametrize(("items", "settled", "anomaly"), V1_CANCEL)
def test_v1_cancel_answer(items: Items, settled: str, anomaly: str | None) -> None:
    reply = V1.decode_cancel(200, body(items), [OA, OB])
    assert reply.disposition == "answered"
    check(reply, [OA, OB], V1_CANCEL_GOOD, settled, anomaly)


# --- single-order answers (amend, decrease) ------------------------------------------------------

SINGLE: dict[str, Any] = {
    "order_id": OA,
    "client_order_id": A,
    "remaining_count": "8.00",
    "fill_count": "0.00",
    "ts_ms": 1715793690123,
}


def test_single_answer_settles() -> None:
    reply = decode_single(OA, 200, json.dumps(SINGLE).encode())
    assert reply.outcomes == {
        OA: Amended(
            order_id=OA,
            client_order_id=A,
            remaining_count=Decimal("8.00"),
            fill_count=Decimal("0.00"),
            ts_ms=1715793690123,
        )
    }
    assert (reply.unanswered, reply.anomalies) == ([], [])


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(json.dumps(SINGLE | {"order_id": OB}).encode(), id="other-order"),
        pytest.param(json.dumps(SINGLE | {"order_id": ""}).encode(), id="empty-order-id"),
        pytest.param(json.dumps(without(SINGLE, "order_id")).encode(), id="no-order-id"),
        pytest.param(json.dumps(SINGLE | {"order_id": 1}).encode(), id="order-id-int"),
        pytest.param(json.dumps(SINGLE | {"remaining_count": "NaN"}).encode(), id="nan"),
        pytest.param(json.dumps(SINGLE | {"fill_count": "-1"}).encode(), id="negative"),
        pytest.param(json.dumps(SINGLE | {"ts_ms": "now"}).encode(), id="ts-text"),
        pytest.param(json.dumps({"orders": [SINGLE]}).encode(), id="batch-shape"),
        pytest.param(json.dumps([SINGLE]).encode(), id="list"),
        pytest.param(b"", id="empty"),
        pytest.param(b"<html>ok</html>", id="html"),
        pytest.param(json.dumps(SINGLE).encode()[:-10], id="truncated"),
    ],
)
@pytest.mark.parametrize("status", [200, 201])
def test_single_answer_that_breaks_the_schema_is_unanswered(raw: bytes, status: int) -> None:
    reply = decode_single(OA, status, raw)
    # "ambiguous" or "answered" with the order unanswered: the dispatcher treats both the same.
    assert reply.disposition in ("ambiguous", "answered")
    assert (reply.outcomes, reply.unanswered) == ({}, [OA])
    assert reply.anomalies


# --- through ExchangeClient --------------------------------------------------------------------


class ScriptedTransport:
    """A :class:`~kalshi_router.wire.http.Transport` that answers from a script."""

    def __init__(self, *answers: Response | TransportError) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, str, bytes | None]] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Response:
        self.requests.append((method, path, body))
        answer = self.answers.pop(0)
        if isinstance(answer, TransportError):
            raise answer
        return answer

    async def close(self) -> None:
        self.answers.clear()


def intents() -> list[OrderIntent]:
    return [OrderIntent.bid(TICKER, "0.30", 10, client_order_id=key) for key in (A, B, C)]


@pytest.mark.parametrize(
    ("dialect", "items"),
    [
        pytest.param(V2, [V2_A | {"ts_ms": "soon"}, V2_B, V2_C, V2_B], id="v2"),
        pytest.param(V1, [V1_A | {"order": {"order_id": OA}}, V1_B, V1_C, V1_B], id="v1"),
    ],
)
async def test_client_create_batch_classifies_each_item(dialect: Dialect, items: Items) -> None:
    transport = ScriptedTransport(Response(201, body(items), None))
    client = ExchangeClient(transport, dialect)
    reply = await client.create_batch(intents())
    assert transport.requests[0][:2] == ("POST", dialect.create_path)
    good = V2_GOOD if dialect is V2 else V1_GOOD
    # A unreadable, B answered twice: both looked up; C settles from its own item.
    assert reply.disposition == "answered"
    assert reply.outcomes == {C: good[C]}
    assert reply.unanswered == [A, B]
    assert len(reply.anomalies) == 2


async def test_client_cancel_and_single_classify_broken_answers() -> None:
    transport = ScriptedTransport(
        Response(200, body([V2_CANCEL_A | {"reduced_by": "-1"}, V2_CANCEL_B]), None),
        Response(200, b"", None),
    )
    client = ExchangeClient(transport, V2)
    cancels = [CancelIntent(order_id=OA, ticker=TICKER), CancelIntent(order_id=OB, ticker=TICKER)]
    reply = await client.cancel_batch(cancels)
    assert (reply.outcomes, reply.unanswered) == ({OB: V2_CANCEL_GOOD[OB]}, [OA])
    amend = AmendIntent(
        order_id=OA, ticker=TICKER, side="bid", price=Decimal("0.31"), count=Decimal(10)
    )
    single = await client.single(amend)
    assert (single.disposition, single.outcomes, single.unanswered) == ("ambiguous", {}, [OA])


@pytest.mark.parametrize(("sent", "disposition"), [(True, "ambiguous"), (False, "retry")])
async def test_client_reports_no_answer_by_whether_it_was_sent(
    sent: bool, disposition: str
) -> None:
    client = ExchangeClient(ScriptedTransport(TransportError("gone", sent=sent)), V2)
    reply = await client.create_batch(intents())
    assert (reply.disposition, reply.outcomes, reply.unanswered) == (disposition, {}, [A, B, C])


# --- through the router, against the simulator -------------------------------------------------


Corrupt = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


class CorruptingTransport(HttpTransport):
    """The real transport to the sim, whose first create answer ``corrupt`` rewrites."""

    def __init__(self, url: str, corrupt: Corrupt) -> None:
        super().__init__(url, make_signer(), timeout_s=5.0)
        self._corrupt: Corrupt | None = corrupt
        self.corrupted: list[str] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Response:
        response = await super().request(method, path, body=body, params=params)
        if method == "POST" and path.endswith("/batched") and self._corrupt is not None:
            items = msgspec.json.decode(response.body)["orders"]
            self.corrupted = [item["client_order_id"] for item in items]
            answer = {"orders": self._corrupt(items)}
            self._corrupt = None
            return response._replace(body=msgspec.json.encode(answer))
        return response


def corrupt_four(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of six items: one loses a field, one gets a wrong type, one is duplicated, one is left
    out, and a stranger is added; the last two are untouched."""
    first, second, third, _, *rest = items
    broken = [
        without(first, "remaining_count"),
        second | {"ts_ms": "soon"},
        third,
        third,
        first | {"client_order_id": "stranger"},
    ]
    return broken + rest


async def test_router_looks_up_the_orders_a_broken_answer_left_unsure() -> None:
    async with running_sim(SimConfig(tier="premier")) as sim:
        transport = CorruptingTransport(sim.url, corrupt_four)
        client = ExchangeClient(transport, dialect_for("v2"))
        router = OrderRouter(
            client, FAST_RETRIES, LimitsConfig(), rng=random.Random(0), owns_transport=True
        )
        async with router:
            batch = [OrderIntent.bid(TICKER, "0.30", 1 + i) for i in range(6)]
            futures = router.submit_many(batch)
            await router.flush()
            outcomes = check_outcomes(sim, batch, futures)
            stats = router.stats()
    assert transport.corrupted == [intent.client_order_id for intent in batch]
    # Every order was placed once and reported accepted with the exchange's id...
    assert all(isinstance(outcome, Accepted) for outcome in outcomes.values())
    # ...the four the answer garbled after a lookup, the other two from their own items.
    assert stats.reconciliations == 4
    assert stats.retries == 0
