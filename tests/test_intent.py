"""OrderIntent and CancelIntent: every rule, normalisation, the legacy mapping, JSON decoding."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalshi_router.errors import IntentError
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.wire.v2 import V2Dialect
from tests.spec_schema import require_spec, validate_schema

TICKER = "KXHIGHNY-24JAN01-T60"
BASE: dict[str, Any] = {"ticker": TICKER, "side": "bid", "price": "0.56", "count": "10"}
FUTURE = int(time.time()) + 86_400


def make(**overrides: Any) -> OrderIntent:
    """An OrderIntent built through the constructor, so loosely typed values reach validation."""
    return OrderIntent(**(BASE | overrides))


# (overrides, field named by the IntentError, piece of its rule)
REFUSED: list[Any] = [
    pytest.param({"ticker": ""}, "ticker", "printable ASCII", id="ticker-empty"),
    pytest.param({"ticker": "KX HIGH"}, "ticker", "without spaces", id="ticker-space"),
    pytest.param({"ticker": "T" * 129}, "ticker", "1-128", id="ticker-129-chars"),
    pytest.param({"ticker": "KXÉTÉ"}, "ticker", "printable ASCII", id="ticker-unicode"),
    pytest.param({"ticker": 7}, "ticker", "printable ASCII", id="ticker-not-str"),
    pytest.param({"side": "buy"}, "side", "one of bid, ask", id="side-buy"),
    pytest.param({"side": "yes"}, "side", "one of bid, ask", id="side-yes"),
    pytest.param({"price": 0.56}, "price", "cannot say 0.45 exactly", id="price-float"),
    pytest.param({"price": True}, "price", "not a bool", id="price-bool"),
    pytest.param({"price": None}, "price", "not null", id="price-none"),
    pytest.param({"price": b"0.5"}, "price", "not bytes", id="price-bytes"),
    pytest.param({"price": "56c"}, "price", "not a decimal number", id="price-garbage"),
    pytest.param({"price": "NaN"}, "price", "finite", id="price-nan"),
    pytest.param({"price": "Infinity"}, "price", "finite", id="price-infinity"),
    pytest.param({"price": 0}, "price", "between 0 and 1", id="price-0-cents"),
    pytest.param({"price": 100}, "price", "an int is cents", id="price-100-cents"),
    pytest.param({"price": -5}, "price", "between 0 and 1", id="price-negative-cents"),
    pytest.param({"price": "0"}, "price", "between 0 and 1", id="price-0-dollars"),
    pytest.param({"price": "1"}, "price", "between 0 and 1", id="price-1-dollar"),
    pytest.param({"price": Decimal("1.0000")}, "price", "between 0 and 1", id="price-1-decimal"),
    pytest.param({"price": "-0.5"}, "price", "between 0 and 1", id="price-negative"),
    pytest.param({"price": "0.56781"}, "price", "at most 4 decimal places", id="price-5-places"),
    pytest.param({"price": "0.00001"}, "price", "at most 4 decimal places", id="price-tiny"),
    pytest.param({"count": 0}, "count", "> 0", id="count-0"),
    pytest.param({"count": "-1"}, "count", "> 0", id="count-negative"),
    pytest.param({"count": "1.001"}, "count", "at most 2 decimal places", id="count-3-places"),
    pytest.param({"count": 1.0}, "count", "must not be a float", id="count-float"),
    pytest.param({"count": False}, "count", "not a bool", id="count-bool"),
    pytest.param({"count": "ten"}, "count", "not a decimal number", id="count-garbage"),
    pytest.param({"count": "1e30"}, "count", "too many digits", id="count-beyond-precision"),
    pytest.param({"count": 10**30}, "count", "too many digits", id="count-huge-int"),
    pytest.param({"time_in_force": "gtc"}, "time_in_force", "one of", id="tif-gtc"),
    pytest.param({"time_in_force": "GTT"}, "time_in_force", "one of", id="tif-gtt"),
    pytest.param({"self_trade_prevention": "none"}, "self_trade_prevention", "one of", id="stp"),
    pytest.param({"client_order_id": ""}, "client_order_id", "1-64 characters", id="coid-empty"),
    pytest.param({"client_order_id": "a" * 65}, "client_order_id", "at most 64", id="coid-65"),
    pytest.param({"client_order_id": "a b"}, "client_order_id", "1-64 characters", id="coid-space"),
    pytest.param({"client_order_id": "a.b"}, "client_order_id", "1-64 characters", id="coid-dot"),
    pytest.param({"client_order_id": "ordre-é"}, "client_order_id", "1-64", id="coid-unicode"),
    pytest.param({"client_order_id": "a\n"}, "client_order_id", "1-64", id="coid-newline"),
    pytest.param({"client_order_id": 42}, "client_order_id", "must be a str", id="coid-int"),
    pytest.param({"post_only": "yes"}, "post_only", "true or false", id="post-only-str"),
    pytest.param({"reduce_only": 1}, "reduce_only", "true or false", id="reduce-only-int"),
    pytest.param(
        {"cancel_order_on_pause": None}, "cancel_order_on_pause", "true or false", id="coop"
    ),
    pytest.param({"reduce_only": True}, "reduce_only", "immediate_or_cancel", id="reduce-gtc"),
    pytest.param(
        {"reduce_only": True, "time_in_force": "fill_or_kill"},
        "reduce_only",
        "immediate_or_cancel",
        id="reduce-fok",
    ),
    pytest.param(
        {"post_only": True, "time_in_force": "immediate_or_cancel"},
        "post_only",
        "good_till_canceled",
        id="post-only-ioc",
    ),
    pytest.param(
        {"post_only": True, "time_in_force": "fill_or_kill"},
        "post_only",
        "good_till_canceled",
        id="post-only-fok",
    ),
    pytest.param(
        {"expiration_time": FUTURE, "time_in_force": "immediate_or_cancel"},
        "expiration_time",
        "immediate_or_cancel cannot",
        id="expiry-ioc",
    ),
    pytest.param(
        {"expiration_time": FUTURE, "time_in_force": "fill_or_kill"},
        "expiration_time",
        "only allowed with good_till_canceled",
        id="expiry-fok",
    ),
    pytest.param({"expiration_time": 1_700_000_000}, "expiration_time", "future", id="expiry-past"),
    pytest.param(
        {"expiration_time": float(FUTURE)}, "expiration_time", "an int", id="expiry-float"
    ),
    pytest.param({"expiration_time": str(FUTURE)}, "expiration_time", "an int", id="expiry-str"),
    pytest.param({"expiration_time": True}, "expiration_time", "an int", id="expiry-bool"),
    pytest.param({"expiration_time": 0}, "expiration_time", ">= 1", id="expiry-zero"),
    pytest.param({"subaccount": -1}, "subaccount", "between 0 and 63", id="subaccount-negative"),
    pytest.param({"subaccount": 64}, "subaccount", "between 0 and 63", id="subaccount-64"),
    pytest.param({"subaccount": "1"}, "subaccount", "an int", id="subaccount-str"),
    pytest.param({"exchange_index": -2}, "exchange_index", ">= -1", id="exchange-index-minus-2"),
    pytest.param({"exchange_index": 1.0}, "exchange_index", "an int", id="exchange-index-float"),
    pytest.param({"buy_max_cost": 0}, "buy_max_cost", ">= 1", id="buy-max-cost-0"),
    pytest.param({"buy_max_cost": "500"}, "buy_max_cost", "an int", id="buy-max-cost-str"),
    pytest.param({"buy_max_cost": 500, "side": "ask"}, "buy_max_cost", "buys", id="buy-max-ask"),
    pytest.param({"sell_position_floor": 1}, "sell_position_floor", "between 0 and 0", id="spf-1"),
    pytest.param({"sell_position_floor": -1}, "sell_position_floor", "between 0 and 0", id="spf-"),
    pytest.param({"order_group_id": ""}, "order_group_id", "non-empty", id="group-empty"),
    pytest.param({"order_group_id": 5}, "order_group_id", "non-empty str", id="group-int"),
]


@pytest.mark.parametrize(("overrides", "field", "rule"), REFUSED)
def test_invalid_field_raises_intent_error_naming_it(
    overrides: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(IntentError) as caught:
        make(**overrides)
    assert caught.value.field == field
    assert rule in caught.value.rule
    assert str(caught.value).startswith(f"{field}: ")


# (overrides, attribute, its str after normalisation)
NORMALISED: list[Any] = [
    pytest.param({"price": "0.5"}, "price", "0.5000", id="price-str-1-place"),
    pytest.param({"price": " 0.25 "}, "price", "0.2500", id="price-str-padded"),
    pytest.param({"price": Decimal("0.56")}, "price", "0.5600", id="price-decimal"),
    pytest.param({"price": "0.1234"}, "price", "0.1234", id="price-4-places"),
    pytest.param({"price": "0.56780"}, "price", "0.5678", id="price-trailing-zero"),
    pytest.param({"price": "5.6E-1"}, "price", "0.5600", id="price-exponent"),
    pytest.param({"price": "0.0001"}, "price", "0.0001", id="price-lowest"),
    pytest.param({"price": "0.9999"}, "price", "0.9999", id="price-highest"),
    pytest.param({"price": 56}, "price", "0.5600", id="price-int-cents"),
    pytest.param({"price": 1}, "price", "0.0100", id="price-1-cent"),
    pytest.param({"price": 99}, "price", "0.9900", id="price-99-cents"),
    pytest.param({"count": 1}, "count", "1.00", id="count-int"),
    pytest.param({"count": "2.5"}, "count", "2.50", id="count-str"),
    pytest.param({"count": Decimal("0.01")}, "count", "0.01", id="count-decimal-min"),
    pytest.param({"count": "10.00"}, "count", "10.00", id="count-2-places"),
    pytest.param({"count": "1E+3"}, "count", "1000.00", id="count-exponent"),
]


@pytest.mark.parametrize(("overrides", "attribute", "expected"), NORMALISED)
def test_money_is_normalised_to_fixed_places(
    overrides: dict[str, Any], attribute: str, expected: str
) -> None:
    value = getattr(make(**overrides), attribute)
    assert isinstance(value, Decimal)
    assert str(value) == expected  # the value and its exponent: what the encoders write


ACCEPTED: list[Any] = [
    pytest.param({"client_order_id": "a" * 64}, id="coid-64"),
    pytest.param({"client_order_id": "AZaz09_+=:/-"}, id="coid-every-allowed-character"),
    pytest.param({"client_order_id": "quote:ab12:q-1"}, id="coid-rfq-form"),
    pytest.param({"ticker": "T" * 128}, id="ticker-128-chars"),
    pytest.param({"reduce_only": True, "time_in_force": "immediate_or_cancel"}, id="reduce-ioc"),
    pytest.param({"post_only": True}, id="post-only-gtc"),
    pytest.param({"expiration_time": FUTURE}, id="expiry-future-gtc"),
    pytest.param({"subaccount": 0}, id="subaccount-0"),
    pytest.param({"subaccount": 63}, id="subaccount-63"),
    pytest.param({"exchange_index": -1}, id="exchange-index-auto"),
    pytest.param({"exchange_index": 3}, id="exchange-index-3"),
    pytest.param({"buy_max_cost": 1}, id="buy-max-cost-1"),
    pytest.param({"sell_position_floor": 0, "side": "ask"}, id="sell-position-floor-0"),
    pytest.param({"order_group_id": "g-1"}, id="order-group"),
    pytest.param({"cancel_order_on_pause": True}, id="cancel-on-pause"),
    pytest.param({"self_trade_prevention": "maker"}, id="stp-maker"),
    pytest.param({"time_in_force": "fill_or_kill"}, id="fok"),
]


@pytest.mark.parametrize("overrides", ACCEPTED)
def test_valid_field_is_kept_as_given(overrides: dict[str, Any]) -> None:
    intent = make(**overrides)
    for name, value in overrides.items():
        assert getattr(intent, name) == value


def test_defaults() -> None:
    intent = make()
    assert (intent.time_in_force, intent.self_trade_prevention) == (
        "good_till_canceled",
        "taker_at_cross",
    )
    flags = (intent.post_only, intent.reduce_only, intent.cancel_order_on_pause)
    assert flags == (False, False, False)
    optional = (intent.expiration_time, intent.order_group_id, intent.subaccount)
    assert optional == (None, None, None)
    v1_only = (intent.exchange_index, intent.buy_max_cost, intent.sell_position_floor)
    assert v1_only == (None, None, None)


def test_default_client_order_id_is_a_fresh_uuid4() -> None:
    ids = [make().client_order_id for _ in range(3)]
    assert len(set(ids)) == 3
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.version == 4
        assert str(parsed) == value  # canonical 36-character form


@pytest.mark.parametrize(
    ("action", "side", "price", "book", "yes_price"),
    [
        pytest.param("buy", "yes", 56, "bid", "0.5600", id="buy-yes-cents"),
        pytest.param("buy", "yes", "0.56", "bid", "0.5600", id="buy-yes-dollars"),
        pytest.param("sell", "yes", 56, "ask", "0.5600", id="sell-yes-cents"),
        pytest.param("sell", "yes", "0.5612", "ask", "0.5612", id="sell-yes-dollars"),
        pytest.param("buy", "no", 44, "ask", "0.5600", id="buy-no-cents"),
        pytest.param("buy", "no", "0.0001", "ask", "0.9999", id="buy-no-dollars"),
        pytest.param("sell", "no", 44, "bid", "0.5600", id="sell-no-cents"),
        pytest.param("sell", "no", "0.4388", "bid", "0.5612", id="sell-no-dollars"),
    ],
)
def test_legacy_maps_to_the_yes_book(
    action: Any, side: Any, price: Any, book: str, yes_price: str
) -> None:
    intent = OrderIntent.legacy(
        ticker=TICKER, action=action, side=side, price=price, count=3, client_order_id="c-1"
    )
    assert intent.side == book
    assert str(intent.price) == yes_price
    assert str(intent.count) == "3.00"
    assert intent.client_order_id == "c-1"
    # Buying YES or selling NO adds YES exposure; the other two add NO exposure.
    assert intent.outcome_side == ("yes" if (action == "buy") == (side == "yes") else "no")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"action": "hold", "side": "yes", "price": 56}, "action", id="action"),
        pytest.param({"action": "buy", "side": "maybe", "price": 56}, "side", id="side"),
        pytest.param({"action": "buy", "side": "no", "price": 0}, "price", id="no-price-0"),
        pytest.param({"action": "buy", "side": "no", "price": 0.44}, "price", id="no-price-float"),
        pytest.param(
            {"action": "buy", "side": "yes", "price": 56, "time_in_force": "x"},
            "time_in_force",
            id="extra-field",
        ),
    ],
)
def test_legacy_validates(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(IntentError) as caught:
        OrderIntent.legacy(ticker=TICKER, count=1, **fields)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("factory", "side", "outcome"),
    [
        pytest.param(OrderIntent.bid, "bid", "yes", id="bid"),
        pytest.param(OrderIntent.ask, "ask", "no", id="ask"),
    ],
)
def test_bid_and_ask_factories(factory: Any, side: str, outcome: str) -> None:
    intent = factory(TICKER, 56, "2.5", time_in_force="immediate_or_cancel", client_order_id="x")
    assert (intent.side, intent.outcome_side) == (side, outcome)
    assert (str(intent.price), str(intent.count)) == ("0.5600", "2.50")
    assert (intent.time_in_force, intent.client_order_id) == ("immediate_or_cancel", "x")
    with pytest.raises(IntentError) as caught:
        factory(TICKER, 0.56, 1)
    assert caught.value.field == "price"
    with pytest.raises(IntentError) as caught:
        factory(TICKER, 56, "0.001")
    assert caught.value.field == "count"


@pytest.mark.parametrize(
    ("name", "value"),
    [("price", Decimal("0.10")), ("client_order_id", "other"), ("side", "ask"), ("count", 1)],
)
def test_intent_is_immutable(name: str, value: object) -> None:
    intent = make(client_order_id="fixed")
    with pytest.raises(AttributeError):
        setattr(intent, name, value)
    assert (intent.price, intent.client_order_id, intent.side) == (
        Decimal("0.5600"),
        "fixed",
        "bid",
    )


def test_equal_intents_hash_alike() -> None:
    assert hash(make(client_order_id="a")) == hash(make(client_order_id="a", price=56))


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        pytest.param({"order_id": ""}, "order_id", "non-empty", id="order-id-empty"),
        pytest.param({"order_id": 12}, "order_id", "non-empty str", id="order-id-int"),
        pytest.param({"ticker": ""}, "ticker", "printable ASCII", id="ticker-empty"),
        pytest.param({"ticker": "A B"}, "ticker", "without spaces", id="ticker-space"),
        pytest.param({"subaccount": 64}, "subaccount", "between 0 and 63", id="subaccount-64"),
        pytest.param({"exchange_index": -2}, "exchange_index", ">= -1", id="exchange-index"),
        pytest.param({"exchange_index": True}, "exchange_index", "an int", id="exchange-bool"),
    ],
)
def test_cancel_intent_rules(fields: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(IntentError) as caught:
        CancelIntent(**({"order_id": "o-1", "ticker": TICKER} | fields))
    assert caught.value.field == field
    assert rule in caught.value.rule


def test_cancel_intent_valid() -> None:
    cancel = CancelIntent(order_id="o-1", ticker=TICKER, subaccount=63, exchange_index=-1)
    assert (cancel.order_id, cancel.ticker, cancel.subaccount, cancel.exchange_index) == (
        "o-1",
        TICKER,
        63,
        -1,
    )
    with pytest.raises(AttributeError):
        setattr(cancel, "order_id", "o-2")  # noqa: B010 - the point is that it raises


def _decode(doc: dict[str, Any]) -> OrderIntent:
    return msgspec.json.decode(json.dumps(BASE | doc).encode(), type=OrderIntent)


def test_json_decoding_validates_and_normalises() -> None:
    intent = _decode({"price": "0.5", "count": "2.5", "time_in_force": "immediate_or_cancel"})
    assert (str(intent.price), str(intent.count)) == ("0.5000", "2.50")
    assert intent.time_in_force == "immediate_or_cancel"
    assert uuid.UUID(intent.client_order_id).version == 4
    # The one rule, as in Python: a JSON int price is cents, an int count whole contracts.
    intent = _decode({"price": 56, "count": 3})
    assert (str(intent.price), str(intent.count)) == ("0.5600", "3.00")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        pytest.param({"price": "0.56781"}, "price", id="price-places"),
        pytest.param({"price": 0.30000000000000004}, "price", id="price-binary-float-text"),
        pytest.param({"price": 0.56}, "price", id="price-float"),
        pytest.param({"price": 5600}, "price", id="price-int-is-cents"),
        pytest.param({"price": None}, "price", id="price-null"),
        pytest.param({"price": True}, "price", id="price-bool"),
        pytest.param({"count": 2.5}, "count", id="count-float"),
        pytest.param({"count": "0"}, "count", id="count-zero"),
        pytest.param({"reduce_only": True}, "reduce_only", id="reduce-only-gtc"),
        pytest.param({"client_order_id": "a b"}, "client_order_id", id="coid"),
        pytest.param({"expiration_time": 5}, "expiration_time", id="expiry-past"),
        pytest.param({"subaccount": 64}, "subaccount", id="subaccount"),
    ],
)
def test_json_decoding_runs_intent_rules(doc: dict[str, Any], field: str) -> None:
    # msgspec turns the IntentError raised in __post_init__ into a ValidationError, keeping the
    # IntentError (and so the field) as its cause.
    with pytest.raises(msgspec.ValidationError) as caught:
        _decode(doc)
    assert str(caught.value).startswith(f"{field}: ")
    cause = caught.value.__cause__
    assert isinstance(cause, IntentError)
    assert cause.field == field


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param({"foo": 1}, "unknown field `foo`", id="unknown-field"),
        pytest.param({"side": "buy"}, "`$.side`", id="side-enum"),
        pytest.param({"time_in_force": "gtc"}, "`$.time_in_force`", id="tif-enum"),
        pytest.param({"self_trade_prevention": "x"}, "`$.self_trade_prevention`", id="stp-enum"),
        pytest.param({"expiration_time": 1.5}, "`$.expiration_time`", id="expiry-type"),
        pytest.param({"post_only": "yes"}, "`$.post_only`", id="flag-type"),
    ],
)
def test_json_decoding_type_errors_name_the_path(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        _decode(doc)
    assert message in str(caught.value)


def test_json_decoding_requires_count() -> None:
    with pytest.raises(msgspec.ValidationError, match="missing required field `count`"):
        msgspec.json.decode(b'{"ticker": "T", "side": "bid", "price": "0.5"}', type=OrderIntent)


def _json_types(node: Any) -> set[type]:
    if isinstance(node, dict):
        return set().union(*(_json_types(value) for value in node.values()), {dict})
    if isinstance(node, list):
        return set().union(*(_json_types(value) for value in node), {list})
    return {type(node)}


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    price=st.integers(1, 9_999),
    count=st.integers(1, 10**6),
    side=st.sampled_from(["bid", "ask"]),
    tif=st.sampled_from(["fill_or_kill", "good_till_canceled", "immediate_or_cancel"]),
    stp=st.sampled_from(["taker_at_cross", "maker"]),
)
def test_valid_intent_round_trips_through_v2(
    price: int, count: int, side: str, tif: str, stp: str
) -> None:
    require_spec()
    exact_price = Decimal(price).scaleb(-4)  # ten-thousandths of a dollar
    exact_count = Decimal(count).scaleb(-2)  # hundredths of a contract
    intent = make(
        side=side,
        price=exact_price,
        count=exact_count,
        time_in_force=tif,
        self_trade_prevention=stp,
    )
    body = json.loads(V2Dialect().encode_create([intent]))
    validate_schema("BatchCreateOrdersV2Request", body)
    (item,) = body["orders"]
    validate_schema("CreateOrderV2Request", item)
    assert item["price"] == f"0.{price:04d}"
    assert item["count"] == f"{count // 100}.{count % 100:02d}"
    assert (Decimal(item["price"]), Decimal(item["count"])) == (exact_price, exact_count)
    assert (item["side"], item["time_in_force"], item["self_trade_prevention_type"]) == (
        side,
        tif,
        stp,
    )
    assert float not in _json_types(body)


# --- repr: a sentence ---------------------------------------------------------------------------


def test_the_repr_reads_as_a_sentence_so_a_swapped_price_and_count_shows() -> None:
    swapped = OrderIntent.bid(TICKER, 10, "0.56", client_order_id="c-1")  # price and count swapped
    assert repr(swapped) == (
        f"OrderIntent(bid 0.56 contracts of {TICKER} at $0.10, client_order_id='c-1')"
    )
    meant = OrderIntent.bid(TICKER, price="0.56", count=10, client_order_id="c-1")
    assert (
        repr(meant) == f"OrderIntent(bid 10 contracts of {TICKER} at $0.56, client_order_id='c-1')"
    )
    # Places past the cents when there are any; fields away from their defaults; a generated id.
    other = OrderIntent.ask(TICKER, price="0.5612", count=1, post_only=True, subaccount=2)
    assert repr(other) == (
        f"OrderIntent(ask 1 contract of {TICKER} at $0.5612,"
        f" client_order_id={other.client_order_id!r}, post_only=True, subaccount=2)"
    )


def test_the_repr_leaves_equality_and_hash_alone() -> None:
    first = OrderIntent.bid(TICKER, price="0.56", count=10, client_order_id="c-1")
    second = make(client_order_id="c-1", price=56, count=10)
    assert (first == second, hash(first) == hash(second)) == (True, True)
    assert first != OrderIntent.bid(TICKER, price="0.56", count=11, client_order_id="c-1")
    assert len({first, second}) == 1


def test_amend_and_decrease_reprs_are_sentences() -> None:
    amend = AmendIntent(
        order_id="o-1", ticker=TICKER, side="ask", price=Decimal("0.45"), count=Decimal("2.5")
    )
    assert repr(amend) == f"AmendIntent(order o-1 on {TICKER}: ask 2.5 contracts in all at $0.45)"
    by = DecreaseIntent(order_id="o-1", ticker=TICKER, reduce_by=Decimal(2), exchange_index=1)
    assert (
        repr(by)
        == f"DecreaseIntent(order o-1 on {TICKER}: reduce by 2 contracts, exchange_index=1)"
    )
    to = DecreaseIntent(order_id="o-1", ticker=TICKER, reduce_to=Decimal(0))
    assert repr(to) == f"DecreaseIntent(order o-1 on {TICKER}: reduce to 0 contracts)"


def test_the_repr_of_an_intent_refused_while_being_built_does_not_fail() -> None:
    """A traceback's locals (pytest --showlocals, error trackers) hold the half-built intent,
    whose price is still what the caller gave."""
    with pytest.raises(IntentError) as caught:
        make(price=0.45, client_order_id="c-1")
    (half_built,) = (
        entry.locals["self"] for entry in caught.traceback if entry.name == "__post_init__"
    )
    assert repr(half_built) == f"OrderIntent(bid '10' of {TICKER} at 0.45, client_order_id='c-1')"
