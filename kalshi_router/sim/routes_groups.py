"""Handlers for the order-group endpoints (OpenAPI 3.31.0, ``spec/kalshi-openapi-3.31.0-order-
groups.yaml``), and their request and response bodies; the engine's side is ``groups``.

Every endpoint costs the default 10 tokens (the spec gives none of them a non-default cost, so
``GET /account/endpoint_costs`` lists none). Sim assumption: the two GETs are charged to the
read bucket (the rate-limits page: "Read: GET requests"), the five that change a group to the
write bucket ("Write: ... order groups").

Sim assumptions on bodies and parameters (see also ``groups``):

- a limit body with neither ``contracts_limit`` nor ``contracts_limit_fp``, with both and
  different, with a limit below 1 (or 0.01), or a ``contracts_limit_fp`` that is not a
  0-2-decimal count, is a 400 ``invalid_parameters``; a ``null`` ``contracts_limit_fp`` counts
  as absent (the spec marks it nullable); no maximum is enforced;
- reset and trigger take no body or an empty JSON object (other fields: 400, as everywhere);
- the sim has shard 0 only: an ``exchange_index`` other than 0, in the create body or the
  query, is a 400;
- a group is addressed in its own subaccount: get with another ``subaccount`` (the others with
  another, or without one for a group outside subaccount 0) answer 404.
"""

from __future__ import annotations

import msgspec
from aiohttp import web
from msgspec import UNSET, Struct, UnsetType

from kalshi_router.sim import validate
from kalshi_router.sim.groups import OrderGroup
from kalshi_router.sim.render import count_str, json_response
from kalshi_router.sim.routes_v2 import subaccount_query
from kalshi_router.sim.state import Call
from kalshi_router.sim.validate import SimError, invalid


class _Request(Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class CreateOrderGroupRequest(_Request, kw_only=True):
    subaccount: int | UnsetType = UNSET
    contracts_limit: int | UnsetType = UNSET
    contracts_limit_fp: str | UnsetType | None = UNSET
    exchange_index: int | UnsetType = UNSET


class UpdateOrderGroupLimitRequest(_Request, kw_only=True):
    contracts_limit: int | UnsetType = UNSET
    contracts_limit_fp: str | UnsetType | None = UNSET


class EmptyBody(_Request):
    """The optional ``EmptyResponse`` body of reset and trigger."""


class EmptyResponse(Struct):
    """``{}``: the answer of every endpoint that changes a group."""


class CreateOrderGroupResponse(Struct, kw_only=True):
    order_group_id: str
    subaccount: int
    exchange_index: int


class OrderGroupOut(Struct, kw_only=True):
    id: str
    contracts_limit_fp: str
    is_auto_cancel_enabled: bool
    exchange_index: int


class GetOrderGroupsResponse(Struct, kw_only=True):
    order_groups: list[OrderGroupOut]


class GetOrderGroupResponse(Struct, kw_only=True):
    is_auto_cancel_enabled: bool
    contracts_limit_fp: str
    orders: list[str]
    exchange_index: int


_create = msgspec.json.Decoder(CreateOrderGroupRequest)
_update = msgspec.json.Decoder(UpdateOrderGroupLimitRequest)
_empty = msgspec.json.Decoder(EmptyBody)
_EMPTY = EmptyResponse()


def contracts_limit(whole: int | UnsetType, fp: str | UnsetType | None) -> int:
    """The limit in 0.01 contract from whichever of the two fields was given."""
    if whole is not UNSET and whole < 1:
        raise invalid("contracts_limit: must be at least 1")
    fixed = None
    if fp is not UNSET and fp is not None:
        try:
            fixed = validate.parse_count(fp, "contracts_limit_fp")
        except SimError as exc:
            raise invalid(exc.details) from None
        if fixed < 1:
            raise invalid("contracts_limit_fp: must be at least 0.01")
    if whole is not UNSET and fixed is not None and whole * 100 != fixed:
        raise invalid("contracts_limit_fp: contracts_limit and contracts_limit_fp must match")
    if whole is not UNSET:
        return whole * 100
    if fixed is None:
        raise invalid("contracts_limit: provide contracts_limit or contracts_limit_fp")
    return fixed


def _shard(value: int | None, field: str) -> int:
    if value not in (None, 0):
        raise invalid(f"{field}: unknown exchange shard {value}; the sim has shard 0 only")
    return 0


def _addressed(call: Call) -> tuple[str, int]:
    """The path's group id and the query's subaccount ("Defaults to 0") and shard (0)."""
    query = call.request.query
    subaccount = subaccount_query(call)
    _shard(validate.query_int(query, "exchange_index"), "exchange_index")
    return call.request.match_info["order_group_id"], 0 if subaccount is None else subaccount


async def _optional_empty_body(call: Call) -> None:
    raw = await call.request.read()
    if raw.strip():
        validate.decode(_empty, raw)


def _group_out(group: OrderGroup) -> OrderGroupOut:
    return OrderGroupOut(
        id=group.group_id,
        contracts_limit_fp=count_str(group.limit),
        is_auto_cancel_enabled=True,
        exchange_index=group.exchange_index,
    )


async def create_group(call: Call) -> web.Response:
    """POST /portfolio/order_groups/create: 201 with the new group's id."""
    req = await call.body(_create)
    call.spend()
    limit = contracts_limit(req.contracts_limit, req.contracts_limit_fp)
    subaccount = validate.subaccount(req.subaccount, "subaccount")
    shard = _shard(None if req.exchange_index is UNSET else req.exchange_index, "exchange_index")
    group = call.exchange.create_group(call.user_id, limit, subaccount, shard)
    return json_response(
        CreateOrderGroupResponse(
            order_group_id=group.group_id,
            subaccount=group.subaccount,
            exchange_index=group.exchange_index,
        ),
        201,
    )


async def list_groups(call: Call) -> web.Response:
    """GET /portfolio/order_groups: every group of the caller (of one subaccount if given)."""
    call.spend()
    groups = call.exchange.order_groups(call.user_id, subaccount_query(call))
    return json_response(GetOrderGroupsResponse(order_groups=[_group_out(g) for g in groups]))


async def get_group(call: Call) -> web.Response:
    """GET /portfolio/order_groups/{order_group_id}: the limit and the group's order ids."""
    call.spend()
    group = call.exchange.order_group(
        call.user_id, call.request.match_info["order_group_id"], subaccount_query(call)
    )
    return json_response(
        GetOrderGroupResponse(
            is_auto_cancel_enabled=True,
            contracts_limit_fp=count_str(group.limit),
            orders=call.exchange.group_orders(group),
            exchange_index=group.exchange_index,
        )
    )


async def delete_group(call: Call) -> web.Response:
    """DELETE /portfolio/order_groups/{order_group_id}: cancel its orders, remove it."""
    call.spend()
    group_id, subaccount = _addressed(call)
    call.exchange.delete_group(call.user_id, group_id, subaccount)
    return json_response(_EMPTY)


async def reset_group(call: Call) -> web.Response:
    """PUT /portfolio/order_groups/{order_group_id}/reset."""
    await _optional_empty_body(call)
    call.spend()
    group_id, subaccount = _addressed(call)
    call.exchange.reset_group(call.user_id, group_id, subaccount)
    return json_response(_EMPTY)


async def trigger_group(call: Call) -> web.Response:
    """PUT /portfolio/order_groups/{order_group_id}/trigger."""
    await _optional_empty_body(call)
    call.spend()
    group_id, subaccount = _addressed(call)
    call.exchange.trigger_group(call.user_id, group_id, subaccount)
    return json_response(_EMPTY)


async def update_limit(call: Call) -> web.Response:
    """PUT /portfolio/order_groups/{order_group_id}/limit (body required)."""
    req = await call.body(_update)
    call.spend()
    group_id, subaccount = _addressed(call)
    limit = contracts_limit(req.contracts_limit, req.contracts_limit_fp)
    call.exchange.update_group_limit(call.user_id, group_id, subaccount, limit)
    return json_response(_EMPTY)
