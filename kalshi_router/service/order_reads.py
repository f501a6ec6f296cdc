"""A client's reads of its own orders (``OrderForwarding`` keeps them): the stream's ``view``
request, ``GET /v1/open_orders?ticker=`` and ``GET /v1/positions``. Each is scoped to the
calling client (its ``X-Client-Name``, or its connection) and authenticated like every /v1
route; when the router does not follow orders, each says so, naming ``orders.track``."""

from __future__ import annotations

import msgspec
from aiohttp import web

from kalshi_router.service.context import (
    SERVICE,
    Service,
    caller,
    codec_for,
    error_response,
    json_response,
)
from kalshi_router.service.orders import ORDERS_OFF
from kalshi_router.service.protocol import (
    Codec,
    MessageId,
    StreamError,
    StreamView,
    ViewRequest,
    item_error,
)

__all__ = ["open_orders", "positions", "view"]
_OFF_STATUS = 409
"""The request is fine; the service's configuration does not allow it."""


def view(
    service: Service, codec: Codec, request_id: MessageId, item: msgspec.Raw, client: str
) -> StreamView | StreamError:
    """The answer to a stream's ``view`` request."""
    if service.orders is None:
        return StreamError(request_id, "orders.track", ORDERS_OFF)
    try:
        request = codec.decode(item, ViewRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        problem = item_error(exc)
        return StreamError(request_id, problem.field, problem.message)
    return service.orders.view(client, request_id, request)


async def open_orders(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    client = caller(request)
    if isinstance(client, web.Response):
        return client
    if service.orders is None:
        return error_response(request, _OFF_STATUS, ORDERS_OFF, "orders.track")
    body = service.orders.open_orders(client, request.query.get("ticker") or None)
    return json_response(200, body, codec_for(request))


async def positions(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    client = caller(request)
    if isinstance(client, web.Response):
        return client
    if service.orders is None:
        return error_response(request, _OFF_STATUS, ORDERS_OFF, "orders.track")
    return json_response(200, service.orders.positions(client), codec_for(request))
