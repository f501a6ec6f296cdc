"""The retired V1 order-mutation endpoints: 410 Gone (as Kalshi answers today), or served.

Serving them (``v1_mode = "serve"``) keeps old clients and fixtures testable: V1 orders are
mapped onto the same YES book as V2 ones.
"""

from __future__ import annotations

import msgspec
from aiohttp import web
from msgspec import UNSET

from kalshi_router.sim import render, validate
from kalshi_router.sim.book import Placed, Reduced
from kalshi_router.sim.buckets import CANCEL_ITEM_COST, CREATE_ITEM_COST, V1_CREATE_ITEM_COST
from kalshi_router.sim.render import error_response, json_response
from kalshi_router.sim.routes_v2 import cancel_each, place, place_each
from kalshi_router.sim.schema import (
    BatchCancelItemV1,
    BatchCancelOrdersV1Request,
    BatchCancelOrdersV1Response,
    BatchCreateItemV1,
    BatchCreateOrdersV1Request,
    BatchCreateOrdersV1Response,
    CancelItemV1,
    CreateOrderV1Request,
    CreateOrderV1Response,
)
from kalshi_router.sim.state import Call
from kalshi_router.sim.validate import invalid

# Third-party reports say V1 creates cost ten times V2's; sim assumption: V1 cancels too.
V1_CANCEL_ITEM_COST = CANCEL_ITEM_COST * V1_CREATE_ITEM_COST // CREATE_ITEM_COST

_create = msgspec.json.Decoder(CreateOrderV1Request)
_batch_create = msgspec.json.Decoder(BatchCreateOrdersV1Request)
_batch_cancel = msgspec.json.Decoder(BatchCancelOrdersV1Request)


def gone() -> web.Response:
    """The 410 that live Kalshi answers on every V1 order mutation since June 2026."""
    return error_response(
        410,
        "deprecated_v1_order_endpoint",
        "Please switch to the V2 endpoints",
        "https://docs.kalshi.com/api-reference/orders/create-order-v2",
    )


async def create(call: Call) -> web.Response:
    """POST /portfolio/orders: one V1 order; answers ``{order}``."""
    req = await call.body(_create)
    call.spend(V1_CREATE_ITEM_COST)
    placed = place(call, validate.v1_order(req, call.user_id))
    return json_response(CreateOrderV1Response(order=render.order_out(placed.order)), 201)


async def batch_create(call: Call) -> web.Response:
    """POST /portfolio/orders/batched: ``{orders: [{client_order_id, order, error}]}``."""
    req = await call.body(_batch_create)
    if not req.orders:
        raise invalid("orders: must not be empty")
    call.spend(V1_CREATE_ITEM_COST * len(req.orders))
    results = place_each(call, req.orders, validate.v1_order)
    items = [
        BatchCreateItemV1(
            client_order_id=order.client_order_id or None,
            order=render.order_out(r.order) if isinstance(r, Placed) else None,
            error=None if isinstance(r, Placed) else validate.error_body(r),
        )
        for order, r in zip(req.orders, results, strict=True)
    ]
    return json_response(BatchCreateOrdersV1Response(orders=items), 201)


async def batch_cancel(call: Call) -> web.Response:
    """DELETE /portfolio/orders/batched: ``{orders: [...]}`` or the deprecated ``{ids: [...]}``.

    Sim assumption: giving both, or neither, is a 400.
    """
    req = await call.body(_batch_cancel)
    if req.ids is not UNSET and req.orders is UNSET:
        # "ids" is deprecated and "maps to subaccount 0".
        targets = [CancelItemV1(order_id=i) for i in req.ids]
    elif req.orders is not UNSET and req.ids is UNSET:
        targets = req.orders
    else:
        raise invalid("orders: give exactly one of orders or ids")
    if not targets:
        raise invalid("orders: must not be empty")
    call.spend(V1_CANCEL_ITEM_COST * len(targets))
    results = cancel_each(call, targets)
    items = [
        BatchCancelItemV1(
            order_id=item.order_id,
            order=render.order_out(r.order) if isinstance(r, Reduced) else None,
            reduced_by_fp=render.count_str(r.reduced_by if isinstance(r, Reduced) else 0),
            error=None if isinstance(r, Reduced) else validate.error_body(r),
        )
        for item, r in zip(targets, results, strict=True)
    ]
    return json_response(BatchCancelOrdersV1Response(orders=items))
