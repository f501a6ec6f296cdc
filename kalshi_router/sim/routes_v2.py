"""Handlers for the V2 order endpoints (spec 3.31.0 shapes); the reads are in ``routes_reads``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from kalshi_router.sim import render, validate
from kalshi_router.sim._model import duplicate, not_found
from kalshi_router.sim.book import NewOrder, OrderRejected, Placed, Reduced, SimOrder
from kalshi_router.sim.buckets import CANCEL_ITEM_COST, CREATE_ITEM_COST
from kalshi_router.sim.render import json_response
from kalshi_router.sim.schema import (
    AmendOrderV2Request,
    AmendOrderV2Response,
    BatchCancelItemV2,
    BatchCancelOrdersV2Request,
    BatchCancelOrdersV2Response,
    BatchCreateItemV2,
    BatchCreateOrdersV2Request,
    BatchCreateOrdersV2Response,
    CancelItemV1,
    CancelItemV2,
    CancelOrderV2Response,
    CreateOrderV1Request,
    CreateOrderV2Request,
    CreateOrderV2Response,
    DecreaseOrderV2Request,
    DecreaseOrderV2Response,
)
from kalshi_router.sim.state import Call
from kalshi_router.sim.validate import SimError, invalid

_create = msgspec.json.Decoder(CreateOrderV2Request)
_batch_create = msgspec.json.Decoder(BatchCreateOrdersV2Request)
_batch_cancel = msgspec.json.Decoder(BatchCancelOrdersV2Request)
_amend = msgspec.json.Decoder(AmendOrderV2Request)
_decrease = msgspec.json.Decoder(DecreaseOrderV2Request)

R = TypeVar("R", CreateOrderV1Request, CreateOrderV2Request)


def _coid(value: str) -> str | UnsetType:
    """A stored client_order_id for a field that is a plain optional string ("" = none)."""
    return value or UNSET


def place(call: Call, new: NewOrder) -> Placed:
    """Create the market (and its house liquidity) if needed, then place the order."""
    call.state.prepare_market(new.ticker)
    return call.exchange.place(new)


def owned(call: Call, order_id: str, subaccount: int | None) -> SimOrder:
    """The caller's order, in ``subaccount`` if given, else 404."""
    order = call.exchange.get(call.user_id, order_id)
    if order is None or (subaccount is not None and order.subaccount != subaccount):
        raise not_found(order_id)
    return order


def cancel_one(
    call: Call,
    order_id: str,
    subaccount: int,
    shard: int | UnsetType,
    market_ticker: str | UnsetType,
    prefix: str = "",
) -> Reduced:
    """Route and cancel one order, as the single and the batch cancel both do."""
    where = f"{prefix}." if prefix else ""
    validate.exchange_index(shard, f"{where}exchange_index")
    if shard == -1 and market_ticker is UNSET:
        raise invalid(f"{where}market_ticker: required to auto-route (exchange_index -1)")
    order = owned(call, order_id, subaccount)
    # A ticker names the shard to look in; a wrong one finds nothing there.
    if market_ticker is not UNSET and market_ticker != order.ticker:
        raise not_found(order_id)
    return call.exchange.cancel(call.user_id, order_id, subaccount)


def place_each(
    call: Call, orders: Sequence[R], to_new: Callable[[R, str, str], NewOrder]
) -> list[Placed | SimError | OrderRejected]:
    """Place a batch item by item: a failed item becomes its error, the others proceed."""
    seen: set[str] = set()
    results: list[Placed | SimError | OrderRejected] = []
    for i, order in enumerate(orders):
        coid = order.client_order_id
        try:
            # Sim assumption: an id repeated within one batch is a duplicate from its second
            # use on, whatever became of the first.
            if coid:
                if coid in seen:
                    raise duplicate(coid)
                seen.add(coid)
            results.append(place(call, to_new(order, call.user_id, f"orders[{i}]")))
        except (SimError, OrderRejected) as exc:
            results.append(exc)
    return results


def cancel_each(
    call: Call, items: Sequence[CancelItemV1 | CancelItemV2]
) -> list[Reduced | SimError | OrderRejected]:
    """Cancel a batch item by item: a failed item becomes its error, the others proceed."""
    results: list[Reduced | SimError | OrderRejected] = []
    for i, item in enumerate(items):
        prefix = f"orders[{i}]"
        try:
            # Sim assumption: an omitted subaccount means 0, as for the single cancel.
            sub = validate.subaccount(item.subaccount, f"{prefix}.subaccount")
            results.append(
                cancel_one(
                    call, item.order_id, sub, item.exchange_index, item.market_ticker, prefix
                )
            )
        except (SimError, OrderRejected) as exc:
            results.append(exc)
    return results


def subaccount_query(call: Call) -> int | None:
    """SubaccountQuery: omitted means every subaccount."""
    return validate.query_int(call.request.query, "subaccount", low=0, high=validate.MAX_SUBACCOUNT)


def _primary_subaccount(call: Call) -> int:
    """SubaccountQueryDefaultPrimary: "Defaults to 0"."""
    value = subaccount_query(call)
    return 0 if value is None else value


def _optional_count(value: str | UnsetType | None, field: str) -> int | None:
    return None if value is None or value is UNSET else validate.parse_count(value, field)


async def create(call: Call) -> web.Response:
    """POST /portfolio/events/orders: one order; every problem is a whole-request error."""
    req = await call.body(_create)
    call.spend()
    placed = place(call, validate.v2_order(req, call.user_id))
    avg_price, avg_fee = placed.average_fill_price, placed.average_fee_paid
    return json_response(
        CreateOrderV2Response(
            order_id=placed.order.order_id,
            client_order_id=_coid(placed.order.client_order_id),
            fill_count=render.count_str(placed.fill_count),
            remaining_count=render.count_str(placed.remaining_count),
            average_fill_price=UNSET if avg_price is None else render.money_str(avg_price),
            average_fee_paid=UNSET if avg_fee is None else render.money_str(avg_fee),
            ts_ms=placed.ts_ms,
        ),
        201,
    )


def _create_item(
    req: CreateOrderV2Request, result: Placed | SimError | OrderRejected
) -> BatchCreateItemV2:
    # Sim assumption for a failed item: no order_id, ts_ms absent ("Absent when the request
    # errored"), the x-omitempty:false counts and averages null, client_order_id echoed.
    if not isinstance(result, Placed):
        return BatchCreateItemV2(
            client_order_id=req.client_order_id or None,
            fill_count=None,
            remaining_count=None,
            average_fill_price=None,
            average_fee_paid=None,
            error=validate.error_body(result),
        )
    return BatchCreateItemV2(
        order_id=result.order.order_id,
        client_order_id=result.order.client_order_id or None,
        fill_count=render.count_str(result.fill_count),
        remaining_count=render.count_str(result.remaining_count),
        average_fill_price=render.optional_money(result.average_fill_price),
        average_fee_paid=render.optional_money(result.average_fee_paid),
        ts_ms=result.ts_ms,
    )


async def batch_create(call: Call) -> web.Response:
    """POST /portfolio/events/orders/batched: per-item results, in request order."""
    req = await call.body(_batch_create)
    if not req.orders:
        raise invalid("orders: must not be empty")
    call.spend(CREATE_ITEM_COST * len(req.orders))
    results = place_each(call, req.orders, validate.v2_order)
    items = [_create_item(o, r) for o, r in zip(req.orders, results, strict=True)]
    return json_response(BatchCreateOrdersV2Response(orders=items), 201)


async def cancel(call: Call) -> web.Response:
    """DELETE /portfolio/events/orders/{order_id}."""
    call.spend()
    query = call.request.query
    shard = validate.query_int(query, "exchange_index")
    reduced = cancel_one(
        call,
        call.request.match_info["order_id"],
        _primary_subaccount(call),
        UNSET if shard is None else shard,
        query.get("market_ticker", UNSET),
    )
    return json_response(
        CancelOrderV2Response(
            order_id=reduced.order.order_id,
            client_order_id=_coid(reduced.order.client_order_id),
            reduced_by=render.count_str(reduced.reduced_by),
            ts_ms=reduced.ts_ms,
        )
    )


def _cancel_item(
    item: CancelItemV2, result: Reduced | SimError | OrderRejected
) -> BatchCancelItemV2:
    if not isinstance(result, Reduced):
        return BatchCancelItemV2(
            order_id=item.order_id,
            client_order_id=None,
            reduced_by=render.count_str(0),
            error=validate.error_body(result),
        )
    return BatchCancelItemV2(
        order_id=item.order_id,
        client_order_id=result.order.client_order_id or None,
        reduced_by=render.count_str(result.reduced_by),
        ts_ms=result.ts_ms,
    )


async def batch_cancel(call: Call) -> web.Response:
    """DELETE /portfolio/events/orders/batched: per-item results, in request order."""
    req = await call.body(_batch_cancel)
    if not req.orders:
        raise invalid("orders: must not be empty")
    call.spend(CANCEL_ITEM_COST * len(req.orders))
    results = cancel_each(call, req.orders)
    items = [_cancel_item(o, r) for o, r in zip(req.orders, results, strict=True)]
    return json_response(BatchCancelOrdersV2Response(orders=items))


async def cancel_all(call: Call) -> web.Response:
    """DELETE /portfolio/events/orders: 204; no subaccount means every subaccount."""
    call.spend()
    call.exchange.cancel_all(call.user_id, subaccount_query(call))
    return web.Response(status=204)


async def amend(call: Call) -> web.Response:
    """POST /portfolio/events/orders/{order_id}/amend."""
    req = await call.body(_amend)
    call.spend()
    order_id = call.request.match_info["order_id"]
    price = validate.parse_price(req.price, "price")
    count = validate.parse_count(req.count, "count")
    coid = validate.client_order_id(req.client_order_id, "client_order_id")
    new_coid = validate.client_order_id(req.updated_client_order_id, "updated_client_order_id")
    expiry = validate.expiration(req.expiration_time, "expiration_time")
    validate.exchange_index(req.exchange_index, "exchange_index")
    before = owned(call, order_id, _primary_subaccount(call)).remaining_count
    reduced = call.exchange.amend(
        call.user_id,
        order_id,
        ticker=req.ticker,
        side=req.side,
        price=price,
        count=count,
        client_order_id=coid or None,
        updated_client_order_id=new_coid or None,
        expiration_time=expiry,
    )
    after = reduced.order.remaining_count
    # "Only present when the amend caused a fill or changed the resting size"; x-omitempty
    # false makes "absent" a null.
    changed = reduced.fill_count > 0 or after != before
    return json_response(
        AmendOrderV2Response(
            order_id=order_id,
            client_order_id=_coid(reduced.order.client_order_id),
            remaining_count=render.count_str(after) if changed else None,
            fill_count=render.count_str(reduced.fill_count) if changed else None,
            average_fill_price=render.optional_money(reduced.average_fill_price),
            average_fee_paid=render.optional_money(reduced.average_fee_paid),
            ts_ms=reduced.ts_ms,
        )
    )


async def decrease(call: Call) -> web.Response:
    """POST /portfolio/events/orders/{order_id}/decrease: exactly one of reduce_by/reduce_to."""
    req = await call.body(_decrease)
    call.spend()
    order_id = call.request.match_info["order_id"]
    reduce_by = _optional_count(req.reduce_by, "reduce_by")
    reduce_to = _optional_count(req.reduce_to, "reduce_to")
    validate.exchange_index(req.exchange_index, "exchange_index")
    order = owned(call, order_id, _primary_subaccount(call))
    if req.market_ticker is not UNSET and req.market_ticker != order.ticker:
        raise not_found(order_id)
    reduced = call.exchange.decrease(
        call.user_id, order_id, reduce_by=reduce_by, reduce_to=reduce_to
    )
    return json_response(
        DecreaseOrderV2Response(
            order_id=order_id,
            client_order_id=_coid(reduced.order.client_order_id),
            remaining_count=render.count_str(reduced.order.remaining_count),
            ts_ms=reduced.ts_ms,
        )
    )
