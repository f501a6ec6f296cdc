"""Numbers in intents: one rule for the library and the service's intake, JSON and msgpack alike.

A price given as a str (or Decimal) is dollars, as an int cents; a count given as an int is whole
contracts, as a str (or Decimal) it may be fractional; a float is refused everywhere, naming its
field; a bool is not a number.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalshi_router.errors import IntentError
from kalshi_router.intent import AmendIntent, DecreaseIntent, OrderIntent
from kalshi_router.outcome import Accepted
from kalshi_router.service.protocol import (
    Codec,
    ItemError,
    ResultsBody,
    StreamAck,
    StreamError,
    StreamReply,
    item_error,
)
from tests.integration.conftest import KEY_ID
from tests.service.conftest import AUTH, TICKER, Running, resting

Kind = type[OrderIntent] | type[AmendIntent] | type[DecreaseIntent]
_REF = {"order_id": "num-order", "ticker": TICKER}
# Each number field of each intent kind, in an otherwise valid intent.
NUMBER_FIELDS: list[tuple[Kind, dict[str, Any], str]] = [
    (OrderIntent, resting(client_order_id="num-fixed"), "price"),
    (OrderIntent, resting(client_order_id="num-fixed"), "count"),
    (AmendIntent, _REF | {"side": "bid", "price": "0.30", "count": "2"}, "price"),
    (AmendIntent, _REF | {"side": "bid", "price": "0.30", "count": "2"}, "count"),
    (DecreaseIntent, _REF | {"reduce_by": "1"}, "reduce_by"),
    (DecreaseIntent, _REF | {"reduce_to": "1"}, "reduce_to"),
]
PRICE_FIELDS = [case for case in NUMBER_FIELDS if case[2] == "price"]
IDS = [f"{kind.__name__}.{field}" for kind, _, field in NUMBER_FIELDS]
CODECS = pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
MSGPACK = "application/msgpack"


def in_python(kind: Kind, fields: dict[str, Any]) -> Any:
    """The intent the library builds, or its refusal as the service would report it."""
    try:
        return kind(**fields)
    except IntentError as exc:
        return item_error(exc)


def from_wire(binary: bool, kind: Kind, fields: dict[str, Any]) -> Any:
    """The intent the service's intake decodes from these fields sent in JSON or msgpack, or
    the per-item error it answers."""
    codec = Codec(binary)
    try:
        return codec.decode(codec.encode(fields), kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return item_error(exc)


@CODECS
@pytest.mark.parametrize(("kind", "base", "field"), PRICE_FIELDS, ids=["order", "amend"])
def test_an_int_price_on_the_wire_is_cents(
    binary: bool, kind: Kind, base: dict[str, Any], field: str
) -> None:
    intent = from_wire(binary, kind, base | {field: 45})
    assert not isinstance(intent, ItemError), intent
    assert intent.price == Decimal("0.45")
    assert intent == in_python(kind, base | {field: 45})
    assert from_wire(binary, kind, base | {field: "0.45"}) == intent


@CODECS
@pytest.mark.parametrize(("kind", "base", "field"), NUMBER_FIELDS, ids=IDS)
@pytest.mark.parametrize("value", [0.45, 2.0, 1.0, -0.0])
def test_a_float_is_refused_naming_the_field(
    binary: bool, kind: Kind, base: dict[str, Any], field: str, value: float
) -> None:
    refused = from_wire(binary, kind, base | {field: value})
    assert isinstance(refused, ItemError), refused
    assert refused.field == field
    assert "float" in refused.message
    assert "exactly" in refused.message  # why: binary floats cannot say 0.45 exactly
    # And what to send instead.
    assert ('"0.45"' in refused.message) == (field == "price")
    assert refused == in_python(kind, base | {field: value})


@pytest.mark.parametrize(("kind", "base", "field"), NUMBER_FIELDS, ids=IDS)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_msgpack_non_finite_floats_are_refused_as_floats(
    kind: Kind, base: dict[str, Any], field: str, value: float
) -> None:
    """msgpack carries NaN and infinities (JSON cannot): floats all the same."""
    refused = from_wire(True, kind, base | {field: value})
    assert isinstance(refused, ItemError)
    assert (refused.field, "float" in refused.message) == (field, True)


@CODECS
@pytest.mark.parametrize(("kind", "base", "field"), NUMBER_FIELDS, ids=IDS)
@pytest.mark.parametrize("value", [True, False])
def test_a_bool_is_not_a_number(
    binary: bool, kind: Kind, base: dict[str, Any], field: str, value: bool
) -> None:
    refused = from_wire(binary, kind, base | {field: value})
    assert isinstance(refused, ItemError)
    assert (refused.field, "bool" in refused.message) == (field, True)
    assert refused == in_python(kind, base | {field: value})


@CODECS
@pytest.mark.parametrize(
    ("kind", "base", "field", "value", "expected"),
    [
        pytest.param(OrderIntent, NUMBER_FIELDS[1][1], "count", 2, "2.00", id="order-int"),
        pytest.param(OrderIntent, NUMBER_FIELDS[1][1], "count", "2.5", "2.50", id="order-str"),
        pytest.param(AmendIntent, NUMBER_FIELDS[3][1], "count", 3, "3.00", id="amend-int"),
        pytest.param(DecreaseIntent, _REF, "reduce_by", 1, "1.00", id="reduce-by-int"),
        pytest.param(DecreaseIntent, _REF, "reduce_to", "0.5", "0.50", id="reduce-to-str"),
        # Zero is "cancel the rest", however it is written.
        pytest.param(DecreaseIntent, _REF, "reduce_to", 0, "0.00", id="reduce-to-int-0"),
        pytest.param(DecreaseIntent, _REF, "reduce_to", "0", "0.00", id="reduce-to-str-0"),
        pytest.param(DecreaseIntent, _REF, "reduce_to", "-0", "0.00", id="reduce-to-minus-0"),
    ],
)
def test_an_int_count_is_whole_contracts_and_a_str_may_be_fractional(
    binary: bool, kind: Kind, base: dict[str, Any], field: str, value: Any, expected: str
) -> None:
    intent = from_wire(binary, kind, base | {field: value})
    assert not isinstance(intent, ItemError), intent
    assert str(getattr(intent, field)) == expected
    assert intent == in_python(kind, base | {field: value})


def test_an_int_price_out_of_range_says_it_was_read_as_cents() -> None:
    refused = from_wire(False, OrderIntent, resting(price=4500))
    assert isinstance(refused, ItemError)
    assert refused.field == "price"
    assert "cents" in refused.message


# --- the property: the library, JSON and msgpack agree ------------------------------------------

_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
NUMBERS = st.one_of(
    st.integers(-(2**63), 2**64 - 1),  # what msgpack carries
    st.integers(-200, 200),
    st.floats(allow_nan=False, allow_infinity=False),  # JSON has neither
    st.floats(0, 1),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(0, 1000, places=4),
    st.from_regex(r"\s?-?[0-9]{0,4}(\.[0-9]{0,6})?([eE][-+]?[0-9]{1,3})?\s?", fullmatch=True),
    st.sampled_from(["0.45", "45", "-0", "NaN", "sNaN", "Infinity", "1e999999999", "0,45", ""]),
    _text,
    st.booleans(),
    st.none(),
)


def _same(first: Any, second: Any) -> bool:
    return type(first) is type(second) and first == second


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=st.sampled_from(NUMBER_FIELDS), value=NUMBERS)
def test_the_library_and_both_codecs_agree(
    case: tuple[Kind, dict[str, Any], str], value: Any
) -> None:
    """Any representation of any price or count: building the intent in Python and decoding it
    from JSON and from msgpack give the same intent, or the same refusal naming the same field
    for the same reason."""
    kind, base, field = case
    fields = base | {field: value}
    python = in_python(kind, fields)
    if isinstance(python, ItemError):
        # A decrease with neither size (null is "not given") is refused for that, at reduce_by.
        assert python.field == ("reduce_by" if value is None and kind is DecreaseIntent else field)
    for binary in (False, True):
        assert _same(from_wire(binary, kind, fields), python), (binary, value)
    if kind is OrderIntent:
        # The builders read a price and a count by the same rule.
        built = attempt_bid(fields)
        assert _same(built, python)


def attempt_bid(fields: dict[str, Any]) -> Any:
    rest = {k: v for k, v in fields.items() if k not in ("ticker", "side", "price", "count")}
    try:
        return OrderIntent.bid(
            fields["ticker"], price=fields["price"], count=fields["count"], **rest
        )
    except IntentError as exc:
        return item_error(exc)


# --- through the service ----------------------------------------------------------------------


def _sim_price(running: Running, client_order_id: str) -> int:
    """The resting order's price at the simulator, in ten-thousandths of a dollar."""
    found = running.sim.state.exchange.find_client_order_id(KEY_ID, client_order_id)
    assert found is not None
    return found.price


@CODECS
async def test_posted_numbers_follow_the_rule(running: Running, binary: bool) -> None:
    codec = Codec(binary)
    name = f"num-cents-{'mp' if binary else 'json'}"
    items = [
        resting(price=30, count=2, client_order_id=name),
        resting(price=0.30),
        resting(count=2.0),
        resting(price=True),
    ]
    headers = AUTH | {"Content-Type": MSGPACK if binary else "application/json"}
    async with running.http.post(
        "/v1/orders", data=codec.encode({"items": items}), headers=headers
    ) as response:
        assert response.status == 200, await response.read()
        results = codec.decode(await response.read(), ResultsBody).results
    placed = results[0].outcome
    assert isinstance(placed, Accepted), results[0]
    assert placed.remaining_count == Decimal(2)
    assert _sim_price(running, name) == 3_000  # $0.30: 30 cents, not $30
    errors = [(r.error.field, r.error.message) for r in results[1:] if r.error is not None]
    assert [field for field, _ in errors] == ["price", "count", "price"]
    assert all("float" in message for _, message in errors[:2])


@CODECS
async def test_streamed_numbers_follow_the_rule(running: Running, binary: bool) -> None:
    query = "?format=msgpack" if binary else ""
    socket = await running.http.ws_connect(f"/v1/stream{query}", headers=AUTH)
    codec = Codec(binary)
    replies = (msgspec.msgpack.Decoder if binary else msgspec.json.Decoder)(StreamReply)
    requests = [
        ("submit", resting(price=0.30)),
        ("amend", _REF | {"side": "bid", "price": "0.30", "count": 2.0}),
        ("decrease", _REF | {"reduce_by": 1.5}),
        ("submit", resting(price=31, client_order_id=f"num-ws-{binary}")),
    ]
    for index, (verb, item) in enumerate(requests):
        data = codec.encode({"type": verb, "id": index, "item": item})
        await (socket.send_bytes(data) if binary else socket.send_str(data.decode()))
    got = [replies.decode((await socket.receive(timeout=10)).data) for _ in range(4)]
    errors = {r.id: r.field for r in got if isinstance(r, StreamError)}
    assert errors == {0: "price", 1: "count", 2: "reduce_by"}
    assert any(isinstance(r, StreamAck) and r.id == 3 for r in got)
    await socket.close()
    await running.router.flush()
    assert _sim_price(running, f"num-ws-{binary}") == 3_100
