"""WebSocket wire types against Kalshi's AsyncAPI extract in ``../shared/spec``: the spec's own
examples decode, and every command we encode fits the spec's schema.

Under CI (``CI=true``) a missing spec fails; elsewhere the spec-driven tests skip with the reason.
"""

from __future__ import annotations

import base64
import functools
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ed25519

# Installed with openapi-schema-validator, without stubs.
from jsonschema import Draft7Validator, ValidationError  # type: ignore[import-untyped]

from kalshi_router.errors import WireError
from kalshi_router.wire.signer import Signer
from kalshi_router.wire.ws_models import (
    Command,
    ErrorFrame,
    FillFrame,
    ListedSubscription,
    ListSubscriptions,
    MarketPositionFrame,
    OkFrame,
    OkMsg,
    OrderGroupUpdatesFrame,
    OtherFrame,
    Subscribe,
    SubscribedFrame,
    SubscribeParams,
    Unsubscribe,
    UnsubscribedFrame,
    UnsubscribeParams,
    UpdateSubscription,
    UpdateSubscriptionParams,
    UserOrderFrame,
    decode_frame,
    encode_command,
)
from kalshi_router.wire.ws_sign import WS_PATH, handshake_headers

SPEC_FILE = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "spec"
    / "kalshi-asyncapi-2.0.0-orders.yaml"
)


@functools.cache
def _spec() -> dict[str, Any]:
    with SPEC_FILE.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.safe_load(handle)
    return spec


def _require_spec() -> dict[str, Any]:
    if not SPEC_FILE.is_file():
        reason = f"Kalshi AsyncAPI extract not found at {SPEC_FILE}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return _spec()


def _examples(message: str) -> list[Any]:
    return [
        example["payload"]
        for example in _require_spec()["components"]["messages"][message]["examples"]
    ]


def _validate(schema_name: str, body: Any) -> None:
    # AsyncAPI 3.0's default schema format is a superset of JSON Schema draft 7; the spec uses
    # nothing beyond it. Its $refs point into the document, so the components go alongside.
    components = json.loads(json.dumps(_require_spec()["components"]))
    # The spec's marketTicker pattern, ^[A-Z0-9-]+$, refuses its own examples ("FED-23DEC-T3.00")
    # and real tickers: the dot is missing. Checked with the dot, the rest as written.
    ticker = components["schemas"]["marketTicker"]
    assert ticker["pattern"] == "^[A-Z0-9-]+$"
    ticker["pattern"] = "^[A-Z0-9.-]+$"
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": components}
    Draft7Validator(schema).validate(body)


def _decode(payload: Any) -> Any:
    return decode_frame(json.dumps(payload).encode())


# The spec's examples of server frames: (message, the frame type they decode to).
SERVER_MESSAGES = [
    ("subscribedResponse", SubscribedFrame),
    ("unsubscribedResponse", UnsubscribedFrame),
    ("okResponse", OkFrame),
    ("listSubscriptionsResponse", OkFrame),
    ("errorResponse", ErrorFrame),
    ("userOrder", UserOrderFrame),
    ("fill", FillFrame),
    ("marketPosition", MarketPositionFrame),
    ("orderGroupUpdates", OrderGroupUpdatesFrame),
]


@pytest.mark.parametrize(("message", "kind"), SERVER_MESSAGES)
def test_every_spec_example_of_a_server_frame_decodes(message: str, kind: type) -> None:
    examples = _examples(message)
    assert examples
    assert all(isinstance(_decode(example), kind) for example in examples)


def test_user_order_example_reads_as_the_spec_says() -> None:
    (example,) = _examples("userOrder")
    frame = _decode(example)
    assert isinstance(frame, UserOrderFrame)
    order = frame.msg
    assert (frame.sid, order.order_id, order.status) == (
        22,
        "ee587a1c-8b87-4dcf-b721-9f6f790619fa",
        "resting",
    )
    assert (order.fill_count_fp, order.remaining_count_fp, order.initial_count_fp) == (
        Decimal("0.00"),
        Decimal("10.00"),
        Decimal("10.00"),
    )
    assert (order.yes_price_dollars, order.client_order_id, order.created_ts_ms) == (
        Decimal("0.3500"),
        "my-order-1",
        1733047200000,
    )


def test_fill_example_reads_as_the_spec_says() -> None:
    (example,) = _examples("fill")
    frame = _decode(example)
    assert isinstance(frame, FillFrame)
    fill = frame.msg
    assert (fill.trade_id, fill.count_fp, fill.fee_cost, fill.yes_price_dollars) == (
        "d91bc706-ee49-470d-82d8-11418bda6fed",
        Decimal("278.00"),
        Decimal("0.010000"),
        Decimal("0.7500"),
    )
    assert (fill.ts_ms, fill.post_position_fp, fill.subaccount) == (1671899397000, Decimal(500), 3)


def test_ok_reads_an_update_ack_and_a_subscription_list() -> None:
    (update,) = _examples("okResponse")
    (listing,) = _examples("listSubscriptionsResponse")
    assert _decode(update) == OkFrame(
        id=123, sid=456, seq=222, msg=OkMsg(market_tickers=["MARKET-1", "MARKET-2", "MARKET-3"])
    )
    assert _decode(listing) == OkFrame(
        id=3,
        msg=[
            ListedSubscription(channel="orderbook_delta", sid=1),
            ListedSubscription(channel="ticker", sid=2),
            ListedSubscription(channel="fill", sid=3),
        ],
    )


@pytest.mark.parametrize(("code", "terminal"), [(7, False), (9, False), (10, True), (25, True)])
def test_terminal_errors_are_10_and_25(code: int, terminal: bool) -> None:
    frame = decode_frame(b'{"type": "error", "sid": 3, "msg": {"code": %d, "msg": "x"}}' % code)
    assert isinstance(frame, ErrorFrame)
    assert frame.terminal is terminal


def test_deprecated_fields_may_be_absent() -> None:
    (example,) = _examples("fill")
    payload = json.loads(json.dumps(example))
    for name in ("side", "purchased_side", "action", "ts"):
        del payload["msg"][name]
    frame = _decode(payload)
    assert isinstance(frame, FillFrame)
    assert frame.msg.side is None


def test_an_unknown_frame_type_is_kept_not_refused() -> None:
    raw = b'{"type": "orderbook_delta", "sid": 2, "seq": 3, "msg": {"price_dollars": "0.5"}}'
    assert decode_frame(raw) == OtherFrame("orderbook_delta", raw)
    assert decode_frame(raw.decode()) == OtherFrame("orderbook_delta", raw)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b'{"type": "fill", "sid": 13}', "'fill'"),
        (b'{"type": "user_order", "sid": 0, "msg": {}}', "sid"),
        (b"[1, 2]", "array"),
        (b'{"sid": 1}', "type"),
        (b"not json", "JSON"),
    ],
)
def test_a_frame_that_does_not_fit_is_a_wire_error(raw: bytes, named: str) -> None:
    with pytest.raises(WireError, match=named):
        decode_frame(raw)


@pytest.mark.parametrize("field", ["count_fp", "yes_price_dollars"])
@pytest.mark.parametrize("value", ["-1.00", "NaN"])
def test_an_impossible_count_is_refused_naming_it(field: str, value: str) -> None:
    (example,) = _examples("fill")
    payload = json.loads(json.dumps(example))
    payload["msg"][field] = value
    with pytest.raises(WireError, match=field):
        _decode(payload)


# Commands: the spec's examples that use only what we send come back byte for byte, and every
# command we build fits the spec's schema.

COMMAND_MESSAGES = [
    ("subscribeCommand", "subscribeCommandPayload"),
    ("unsubscribeCommand", "unsubscribeCommandPayload"),
    ("listSubscriptionsCommand", "listSubscriptionsCommandPayload"),
    ("updateSubscriptionCommand", "updateSubscriptionCommandPayload"),
    ("updateSubscriptionDeleteCommand", "updateSubscriptionCommandPayload"),
    ("updateSubscriptionSingleSidCommand", "updateSubscriptionCommandPayload"),
]
_command_decoder = msgspec.json.Decoder(Command)
_PARAMS = frozenset(SubscribeParams.__struct_fields__)


@pytest.mark.parametrize(("message", "schema"), COMMAND_MESSAGES)
def test_spec_command_examples_round_trip(message: str, schema: str) -> None:
    ours = [
        example
        for example in _examples(message)
        if set(example.get("params", {})) <= _PARAMS | {"sid", "sids", "action"}
    ]
    assert ours
    for example in ours:
        encoded = encode_command(_command_decoder.decode(json.dumps(example)))
        assert json.loads(encoded) == example
        _validate(schema, json.loads(encoded))


BUILT: list[tuple[Command, str]] = [
    (Subscribe(id=1, params=SubscribeParams(channels=["user_orders"])), "subscribeCommandPayload"),
    (
        Subscribe(
            id=2,
            params=SubscribeParams(
                channels=["fill", "market_positions"], market_tickers=["FED-23DEC-T3.00"]
            ),
        ),
        "subscribeCommandPayload",
    ),
    (
        Subscribe(
            id=3,
            params=SubscribeParams(
                channels=["fill"], market_ticker="HIGHNY-22DEC23-B53.5", skip_ticker_ack=True
            ),
        ),
        "subscribeCommandPayload",
    ),
    (Unsubscribe(id=4, params=UnsubscribeParams(sids=[1, 2])), "unsubscribeCommandPayload"),
    (ListSubscriptions(id=5), "listSubscriptionsCommandPayload"),
    (
        UpdateSubscription(
            id=6,
            params=UpdateSubscriptionParams(
                action="add_markets", sids=[456], market_tickers=["NEW-MARKET-1"]
            ),
        ),
        "updateSubscriptionCommandPayload",
    ),
    (
        UpdateSubscription(
            id=7,
            params=UpdateSubscriptionParams(action="delete_markets", sid=456, market_ticker="M-1"),
        ),
        "updateSubscriptionCommandPayload",
    ),
]


@pytest.mark.parametrize(("command", "schema"), BUILT)
def test_built_commands_fit_the_spec(command: Command, schema: str) -> None:
    _validate(schema, json.loads(encode_command(command)))


def test_the_schema_check_can_fail() -> None:
    with pytest.raises(ValidationError):
        _validate(
            "unsubscribeCommandPayload", {"id": 1, "cmd": "unsubscribe", "params": {"sids": []}}
        )


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: SubscribeParams(channels=[]), "channels"),
        (lambda: SubscribeParams(channels=["fill"], market_tickers=[]), "market_tickers"),
        (
            lambda: SubscribeParams(channels=["fill"], market_ticker="A", market_tickers=["B"]),
            "market_ticker and market_tickers",
        ),
        (lambda: UnsubscribeParams(sids=[]), "sids"),
        (lambda: UpdateSubscriptionParams(action="add_markets"), "exactly one"),
        (lambda: UpdateSubscriptionParams(action="add_markets", sids=[1, 2]), "exactly one"),
        (lambda: UpdateSubscriptionParams(action="add_markets", sid=1, sids=[1]), "sid and sids"),
    ],
)
def test_a_command_the_spec_forbids_cannot_be_built(build: Any, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        build()


def test_handshake_headers_sign_get_and_the_ws_path() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    headers = handshake_headers(Signer("key-id", key, clock_ms=lambda: 1703123456789))
    assert headers["KALSHI-ACCESS-KEY"] == "key-id"
    assert headers["KALSHI-ACCESS-TIMESTAMP"] == "1703123456789"
    signature = base64.b64decode(headers["KALSHI-ACCESS-SIGNATURE"], validate=True)
    key.public_key().verify(signature, f"1703123456789GET{WS_PATH}".encode())
    assert WS_PATH == "/trade-api/ws/v2"
