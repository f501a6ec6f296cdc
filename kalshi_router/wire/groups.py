"""Kalshi's order groups on the wire (OpenAPI 3.31.0, ``CreateOrderGroup`` and the six calls
beside it): request and answer bodies, the paths, and what each call costs in tokens.

A group caps the contracts its orders match over a rolling 15-second window: "When the limit
is hit, all orders in the group are cancelled and no new orders can be placed until reset."
Requests give the limit as ``contracts_limit_fp`` only (the spec accepts either field; the
fixed-point one also carries fractional limits). Answers ignore unknown fields and decode
fixed-point counts into ``Decimal``, as ``wire.models`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Literal, TypeAlias

import msgspec

from kalshi_router.errors import IntentError
from kalshi_router.wire.dialect import DEFAULT_COST, cost_of
from kalshi_router.wire.models import GetAccountEndpointCostsResponse

GroupCall: TypeAlias = Literal[
    "create", "list", "get", "delete", "reset", "trigger", "limit", "cancel_all"
]

GROUPS_PATH = "/portfolio/order_groups"
CREATE_PATH = "/portfolio/order_groups/create"
ONE_PATH = "/portfolio/order_groups/{order_group_id}"
CANCEL_ALL_PATH = "/portfolio/events/orders"

# Each call as GET /account/endpoint_costs names it (route templates, as the dialects match).
ENDPOINTS: Mapping[GroupCall, tuple[str, str]] = MappingProxyType(
    {
        "create": ("POST", CREATE_PATH),
        "list": ("GET", GROUPS_PATH),
        "get": ("GET", ONE_PATH),
        "delete": ("DELETE", ONE_PATH),
        "reset": ("PUT", f"{ONE_PATH}/reset"),
        "trigger": ("PUT", f"{ONE_PATH}/trigger"),
        "limit": ("PUT", f"{ONE_PATH}/limit"),
        "cancel_all": ("DELETE", CANCEL_ALL_PATH),
    }
)
# The costs the spec documents apart from the default: cancel-all's x-mint note, "2 tokens per
# request, the same cost as cancelling one event-market order". The group calls have none.
DOCUMENTED_COSTS: Mapping[GroupCall, int] = MappingProxyType({"cancel_all": 2})
# The two reads go to the read bucket ("Read: GET requests"); the rest are writes.
READS: frozenset[GroupCall] = frozenset({"list", "get"})


def group_costs(table: GetAccountEndpointCostsResponse | None) -> dict[GroupCall, int]:
    """Tokens per call: the account's table where it lists the call, else its default (every
    unlisted endpoint costs ``default_cost``); with no table, the documented costs."""
    costs: dict[GroupCall, int] = {}
    for call, (method, path) in ENDPOINTS.items():
        fallback = (
            table.default_cost if table is not None else DOCUMENTED_COSTS.get(call, DEFAULT_COST)
        )
        costs[call] = cost_of(table, method, path, fallback)
    return costs


_CENT = Decimal("0.01")


def limit_fp(contracts_limit: Decimal | int) -> str:
    """A contracts limit as ``FixedPointCount`` ("10.00"); it must be a positive multiple of
    0.01 contract ("the minimum granularity is 0.01 contracts")."""
    # Floats are refused, as intents refuse them: 0.1 is not a hundredth in binary.
    if isinstance(contracts_limit, bool) or not isinstance(contracts_limit, Decimal | int):
        raise IntentError("contracts_limit", "must be a Decimal or an int")
    value = Decimal(contracts_limit)
    if not value.is_finite() or value <= 0:
        raise IntentError("contracts_limit", "must be a positive number of contracts")
    if value % _CENT:
        raise IntentError("contracts_limit", "must be a multiple of 0.01 contract")
    return f"{value:.2f}"


class _Request(msgspec.Struct, omit_defaults=True, kw_only=True):
    pass


class CreateOrderGroupRequest(_Request):
    contracts_limit_fp: str
    subaccount: int | None = None
    exchange_index: int | None = None


class UpdateOrderGroupLimitRequest(_Request):
    contracts_limit_fp: str


class CreateOrderGroupResponse(msgspec.Struct, kw_only=True):
    order_group_id: str
    subaccount: int | None = None
    exchange_index: int | None = None


class OrderGroup(msgspec.Struct, kw_only=True, frozen=True):
    """One group of ``GET /portfolio/order_groups``. Nothing in it says whether the group is
    triggered (the ``order_group_updates`` WebSocket channel does)."""

    id: str
    is_auto_cancel_enabled: bool
    contracts_limit_fp: Decimal | None = None
    exchange_index: int | None = None


class GetOrderGroupsResponse(msgspec.Struct, kw_only=True):
    order_groups: list[OrderGroup] = msgspec.field(default_factory=list)


class GetOrderGroupResponse(msgspec.Struct, kw_only=True, frozen=True):
    """``GET /portfolio/order_groups/{id}``: the limit and the ids of the group's orders."""

    is_auto_cancel_enabled: bool
    orders: list[str]
    contracts_limit_fp: Decimal | None = None
    exchange_index: int | None = None
