"""Order groups' wire types (wire.groups): what each request encodes to, checked against the
order-groups extract's request schemas; answers decoded from the spec's shapes; the limit's
fixed-point form; and each call's token cost from the account's table."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from kalshi_router.errors import IntentError
from kalshi_router.wire.groups import (
    ENDPOINTS,
    CreateOrderGroupRequest,
    GetOrderGroupResponse,
    GetOrderGroupsResponse,
    UpdateOrderGroupLimitRequest,
    group_costs,
    limit_fp,
)
from kalshi_router.wire.models import EndpointTokenCost, GetAccountEndpointCostsResponse
from tests.spec_schema import GROUPS_FILE, validate_schema


def encoded(body: msgspec.Struct) -> Any:
    return msgspec.json.decode(msgspec.json.encode(body))


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        (5, "5.00"),
        (Decimal("2.5"), "2.50"),
        (Decimal("0.01"), "0.01"),
        (Decimal("1E+2"), "100.00"),
        (Decimal("7.000"), "7.00"),
    ],
)
def test_a_limit_is_sent_as_a_two_decimal_count(given: Decimal | int, sent: str) -> None:
    assert limit_fp(given) == sent
    body = encoded(CreateOrderGroupRequest(contracts_limit_fp=limit_fp(given)))
    assert body == {"contracts_limit_fp": sent}
    validate_schema("CreateOrderGroupRequest", body, GROUPS_FILE)


@pytest.mark.parametrize(
    "bad", [0, -1, Decimal("0.001"), Decimal("NaN"), Decimal("Infinity"), True, "5", 1.5]
)
def test_a_limit_that_is_not_a_positive_hundredth_is_refused(bad: Any) -> None:
    with pytest.raises(IntentError) as info:
        limit_fp(bad)
    assert info.value.field == "contracts_limit"


def test_requests_carry_only_what_was_given() -> None:
    full = encoded(
        CreateOrderGroupRequest(contracts_limit_fp="3.00", subaccount=2, exchange_index=0)
    )
    assert full == {"contracts_limit_fp": "3.00", "subaccount": 2, "exchange_index": 0}
    validate_schema("CreateOrderGroupRequest", full, GROUPS_FILE)
    update = encoded(UpdateOrderGroupLimitRequest(contracts_limit_fp="4.50"))
    assert update == {"contracts_limit_fp": "4.50"}
    validate_schema("UpdateOrderGroupLimitRequest", update, GROUPS_FILE)


def test_answers_decode_from_the_spec_shapes_and_ignore_new_fields() -> None:
    listed = {
        "order_groups": [
            {"id": "g1", "contracts_limit_fp": "5.00", "is_auto_cancel_enabled": True,
             "exchange_index": 0, "added_later": 1},
            {"id": "g2", "is_auto_cancel_enabled": False},
        ]
    }  # fmt: skip
    validate_schema("GetOrderGroupsResponse", listed, GROUPS_FILE)
    groups = msgspec.json.decode(msgspec.json.encode(listed), type=GetOrderGroupsResponse)
    assert [(g.id, g.contracts_limit_fp, g.exchange_index) for g in groups.order_groups] == [
        ("g1", Decimal("5.00"), 0),
        ("g2", None, None),
    ]
    assert msgspec.json.decode(b"{}", type=GetOrderGroupsResponse).order_groups == []
    one = {"is_auto_cancel_enabled": True, "orders": ["o1"], "contracts_limit_fp": "1.50"}
    validate_schema("GetOrderGroupResponse", one, GROUPS_FILE)
    got = msgspec.json.decode(msgspec.json.encode(one), type=GetOrderGroupResponse)
    assert (got.orders, got.contracts_limit_fp) == (["o1"], Decimal("1.50"))


def test_costs_come_from_the_table_else_its_default_else_the_documented_ones() -> None:
    documented = group_costs(None)
    assert documented == dict.fromkeys(ENDPOINTS, 10) | {"cancel_all": 2}
    table = GetAccountEndpointCostsResponse(
        default_cost=12,
        endpoint_costs=[
            EndpointTokenCost("DELETE", "/portfolio/events/orders", 2),
            EndpointTokenCost(
                "PUT", "/trade-api/v2/portfolio/order_groups/{order_group_id}/trigger", 1
            ),
        ],
    )
    costs = group_costs(table)
    # Listed calls cost what the table says (with or without the /trade-api/v2 prefix), and
    # every other one the table's default.
    assert (costs["cancel_all"], costs["trigger"]) == (2, 1)
    assert {c for c, n in costs.items() if n == 12} == set(ENDPOINTS) - {"cancel_all", "trigger"}
