"""Field formats, the V1 mapping, rendering and config checks, without HTTP."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.sim import FaultConfig, MarketConfig, SimConfig
from kalshi_router.sim.config import ApiKeyConfig, LatencyConfig
from kalshi_router.sim.render import count_str, money_str, price_str, rfc3339_ms
from kalshi_router.sim.schema import BatchCreateOrdersV2Request, CreateOrderV1Request
from kalshi_router.sim.validate import (
    SimError,
    client_order_id,
    decode,
    parse_count,
    parse_price,
    v1_order,
)

_batch = msgspec.json.Decoder(BatchCreateOrdersV2Request)


@pytest.mark.parametrize(
    ("text", "units"),
    [("0.56", 5600), ("0.560", 5600), ("0.5600", 5600), ("0.0001", 1), ("1.00", 10000)],
)
def test_price_accepts_two_to_four_places(text: str, units: int) -> None:
    assert parse_price(text, "price") == units


@pytest.mark.parametrize(
    "text", ["0.5", "0.56001", ".56", "1", "-0.56", "00.56", " 0.56", "0,56", "5600", "0x1", ""]
)
def test_price_rejects_other_formats(text: str) -> None:
    with pytest.raises(SimError) as info:
        parse_price(text, "orders[2].price")
    assert info.value.code == "invalid_price"
    assert info.value.details.startswith("orders[2].price: ")


@pytest.mark.parametrize(
    ("text", "hundredths"), [("10", 1000), ("10.0", 1000), ("10.00", 1000), ("2.5", 250), ("0", 0)]
)
def test_count_accepts_zero_to_two_places(text: str, hundredths: int) -> None:
    assert parse_count(text, "count") == hundredths


@pytest.mark.parametrize("text", ["10.", "10.000", "-1", "1e2", " 1", "01", "1.2.3", ""])
def test_count_rejects_other_formats(text: str) -> None:
    with pytest.raises(SimError) as info:
        parse_count(text, "count")
    assert info.value.code == "invalid_order_size"


@given(st.integers(min_value=0, max_value=10**9))
def test_count_round_trips(hundredths: int) -> None:
    assert parse_count(count_str(hundredths), "count") == hundredths
    assert len(count_str(hundredths).split(".")[1]) == 2


@given(st.integers(min_value=0, max_value=10**8))
def test_price_round_trips(units: int) -> None:
    assert parse_price(price_str(units), "price") == units


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_money_has_four_to_six_places_and_loses_nothing(micros: int) -> None:
    text = money_str(micros)
    whole, frac = text.lstrip("-").split(".")
    assert 4 <= len(frac) <= 6
    value = int(whole) * 1_000_000 + int(frac.ljust(6, "0"))
    assert (-value if text.startswith("-") else value) == micros


@pytest.mark.parametrize(
    ("micros", "text"),
    [(580_000, "0.5800"), (1_200, "0.0012"), (553_333, "0.553333"), (12_340, "0.01234")],
)
def test_money_examples(micros: int, text: str) -> None:
    assert money_str(micros) == text


def test_rfc3339_drops_trailing_zeros_like_go() -> None:
    assert rfc3339_ms(1_767_225_600_000) == "2026-01-01T00:00:00Z"
    assert rfc3339_ms(1_767_225_600_120) == "2026-01-01T00:00:00.12Z"


@pytest.mark.parametrize("coid", ["a" * 64, "A-z_0+9=:/", "8c35ecb3-328f-4f52-8c7c-0f4b9862f8d1"])
def test_client_order_id_accepts_fix_charset(coid: str) -> None:
    assert client_order_id(coid, "client_order_id") == coid


@pytest.mark.parametrize("coid", ["a" * 65, "has space", "ümlaut", "semi;colon", "dot."])
def test_client_order_id_rejects_long_or_odd(coid: str) -> None:
    with pytest.raises(SimError) as info:
        client_order_id(coid, "orders[0].client_order_id")
    assert info.value.details.startswith("orders[0].client_order_id: ")


def test_empty_client_order_id_means_none() -> None:
    assert client_order_id("", "client_order_id") == ""


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (b'{"orders":[{}, {"price": 5}]}', "orders[0].ticker"),
        (b'{"orders":"x"}', "orders: Expected `array`"),
        (b'{"orders":[], "extra": 1}', "extra: Object contains unknown field"),
        (b"{}", "orders: Object missing required field"),
        (b"[]", "body: Expected `object`"),
    ],
)
def test_decode_names_the_field(body: bytes, details: str) -> None:
    with pytest.raises(SimError) as info:
        decode(_batch, body)
    assert info.value.status == 400
    assert info.value.code == "invalid_parameters"
    assert info.value.details.startswith(details)


def test_decode_wrong_type_names_the_nested_field() -> None:
    item = {
        "ticker": "T",
        "side": "bid",
        "count": "1",
        "price": 0.5,
        "time_in_force": "good_till_canceled",
        "self_trade_prevention_type": "maker",
    }
    with pytest.raises(SimError) as info:
        decode(_batch, msgspec.json.encode({"orders": [item, item, item, item]}))
    assert info.value.details == "orders[0].price: Expected `str`, got `float`"


def test_malformed_json_is_bad_request() -> None:
    with pytest.raises(SimError) as info:
        decode(_batch, b'{"orders": [')
    assert (info.value.status, info.value.code) == (400, "bad_request")


def _v1(**fields: Any) -> CreateOrderV1Request:
    return msgspec.convert({"ticker": "T", "count": 1} | fields, CreateOrderV1Request)


@pytest.mark.parametrize(
    ("side", "action", "price_field", "price", "book_side", "yes_price"),
    [
        ("yes", "buy", "yes_price", 56, "bid", 5600),
        ("yes", "sell", "yes_price", 56, "ask", 5600),
        ("no", "buy", "no_price", 44, "ask", 5600),
        ("no", "sell", "no_price", 44, "bid", 5600),
        ("no", "buy", "no_price_dollars", "0.44", "ask", 5600),
        ("yes", "buy", "no_price_dollars", "0.4400", "bid", 5600),
    ],
)
def test_v1_maps_onto_the_yes_book(
    side: str, action: str, price_field: str, price: Any, book_side: str, yes_price: int
) -> None:
    new = v1_order(_v1(side=side, action=action, **{price_field: price}), "u")
    assert (new.side, new.price) == (book_side, yes_price)
    assert (new.time_in_force, new.stp) == ("good_till_canceled", "taker_at_cross")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"yes_price": 50, "no_price": 50}, "invalid_price"),
        ({}, "invalid_price"),
        ({"yes_price": 100}, "invalid_price"),
        ({"yes_price": 50, "count": 2, "count_fp": "3.00"}, "invalid_parameters"),
        ({"yes_price": 50, "count": 0}, "invalid_order_size"),
        ({"yes_price": 50, "sell_position_floor": 1}, "invalid_parameters"),
        ({"yes_price": 50, "buy_max_cost": 0}, "invalid_parameters"),
    ],
)
def test_v1_field_rules(fields: dict[str, Any], code: str) -> None:
    with pytest.raises(SimError) as info:
        v1_order(_v1(side="yes", action="buy", **fields), "u")
    assert info.value.code == code


def test_v1_count_fp_alone_and_matching_pair() -> None:
    fp_only = msgspec.convert(
        {"ticker": "T", "side": "yes", "action": "buy", "yes_price": 50, "count_fp": "2.50"},
        CreateOrderV1Request,
    )
    assert v1_order(fp_only, "u").count == 250
    assert v1_order(_v1(side="yes", action="buy", yes_price=50, count_fp="1.00"), "u").count == 100


def test_config_names_an_unknown_tier() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown tier 'gold'"):
        msgspec.convert({"tier": "gold"}, SimConfig)


def test_config_rejects_unknown_fields() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field `tiers`"):
        msgspec.convert({"tiers": "basic"}, SimConfig)


def test_config_tier_overrides() -> None:
    tier = SimConfig(tier="advanced", write_capacity=50).effective_tier()
    assert (tier.name, tier.write_refill, tier.write_capacity) == ("advanced", 300, 50)


@pytest.mark.parametrize(
    "fields",
    [
        {"error_500_rate": 0.6, "hang_rate": 0.5},
        {"error_503_rate": 1.5},
        {"paths": ["portfolio/orders"]},
        {"paths": ["FETCH /portfolio/orders"]},
        {"hang_s": -1},
    ],
)
def test_fault_config_rules(fields: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(fields, FaultConfig)


def test_latency_bounds() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"kind": "uniform", "min_ms": 5, "max_ms": 1}, LatencyConfig)


def test_api_key_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ApiKeyConfig(key_id="k")
    with pytest.raises(ValueError, match="exactly one"):
        ApiKeyConfig(key_id="k", public_key_pem="x", public_key_path="y")
    assert ApiKeyConfig(key_id="k", public_key_pem="x").owner == "k"


def test_market_config_in_dollars() -> None:
    market = MarketConfig(ticker="M", tick="0.001", min_price="0.001", max_price="0.999")
    assert (market.to_market().tick, market.to_market().max_price) == (10, 9990)
    with pytest.raises(ValueError, match="tick"):
        MarketConfig(ticker="M", tick="0.1.0")
