"""The exchange client's order-group calls and cancel-all (``ExchangeClient`` inherits them).

Each call is one signed request; an answer other than the documented success raises
:class:`~kalshi_router.errors.ExchangeError` with Kalshi's status and code (404
``not_found`` for a group that is not there), no answer :class:`~kalshi_router.errors.
TransportError`, as the client's reads do. Nothing is retried here: a group call is not
idempotent in general (a create sent twice makes two groups), so whoever calls decides.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypeVar
from urllib.parse import quote

import msgspec

from kalshi_router.errors import ExchangeError, IntentError, WireError
from kalshi_router.wire.groups import (
    CANCEL_ALL_PATH,
    CREATE_PATH,
    GROUPS_PATH,
    CreateOrderGroupRequest,
    CreateOrderGroupResponse,
    GetOrderGroupResponse,
    GetOrderGroupsResponse,
    OrderGroup,
    UpdateOrderGroupLimitRequest,
    limit_fp,
)
from kalshi_router.wire.http import Response, Transport
from kalshi_router.wire.reply import decode_error

T = TypeVar("T")
_encoder = msgspec.json.Encoder()
_created = msgspec.json.Decoder(CreateOrderGroupResponse)
_groups = msgspec.json.Decoder(GetOrderGroupsResponse)
_group = msgspec.json.Decoder(GetOrderGroupResponse)


def _params(**values: int | None) -> dict[str, str] | None:
    given = {name: str(value) for name, value in values.items() if value is not None}
    return given or None


def _path(order_group_id: str, action: str = "") -> str:
    if not order_group_id:
        # An empty id would address the list (or "create") instead of a group.
        raise IntentError("order_group_id", "must not be empty")
    path = f"{GROUPS_PATH}/{quote(order_group_id, safe='')}"
    return f"{path}/{action}" if action else path


def _check(response: Response, expected: int) -> None:
    if response.status != expected:
        error = decode_error(response.status, response.body)
        raise ExchangeError(response.status, error.code, error.message, error.details)


def _decode(response: Response, expected: int, decoder: msgspec.json.Decoder[T]) -> T:
    _check(response, expected)
    try:
        return decoder.decode(response.body)
    except msgspec.DecodeError as exc:
        raise WireError(f"unreadable answer: {exc}") from None


class OrderGroupCalls:
    """Cancel-all and the seven order-group calls, over ``transport``."""

    transport: Transport

    async def cancel_all(self, subaccount: int | None = None) -> None:
        """``DELETE /portfolio/events/orders``: cancel every resting order (of ``subaccount``
        if given, else of all); 204. "Newly placed orders may also be cancelled during the
        minute after the request": hold new creates back around it, and reconcile after."""
        response = await self.transport.request(
            "DELETE", CANCEL_ALL_PATH, params=_params(subaccount=subaccount)
        )
        _check(response, 204)

    async def create_order_group(
        self,
        contracts_limit: Decimal | int,
        subaccount: int | None = None,
        exchange_index: int | None = None,
    ) -> str:
        """``POST /portfolio/order_groups/create``; the new group's id. ``contracts_limit``:
        contracts its orders may match over a rolling 15 s (a multiple of 0.01, else
        :class:`~kalshi_router.errors.IntentError` and nothing is sent)."""
        body = CreateOrderGroupRequest(
            contracts_limit_fp=limit_fp(contracts_limit),
            subaccount=subaccount,
            exchange_index=exchange_index,
        )
        response = await self.transport.request("POST", CREATE_PATH, body=_encoder.encode(body))
        return _decode(response, 201, _created).order_group_id

    async def get_order_group(
        self, order_group_id: str, subaccount: int | None = None
    ) -> GetOrderGroupResponse | None:
        """``GET /portfolio/order_groups/{id}``: its limit and order ids; None when the exchange
        has no such group (as ``get_order`` answers for an order)."""
        response = await self.transport.request(
            "GET", _path(order_group_id), params=_params(subaccount=subaccount)
        )
        if response.status == 404:
            return None
        return _decode(response, 200, _group)

    async def list_order_groups(self, subaccount: int | None = None) -> list[OrderGroup]:
        """``GET /portfolio/order_groups``: every group (of ``subaccount`` if given)."""
        response = await self.transport.request(
            "GET", GROUPS_PATH, params=_params(subaccount=subaccount)
        )
        return _decode(response, 200, _groups).order_groups

    async def trigger_order_group(
        self, order_group_id: str, subaccount: int | None = None, exchange_index: int | None = None
    ) -> None:
        """``PUT .../trigger``: cancel the group's orders and refuse new ones until reset."""
        await self._change("PUT", order_group_id, "trigger", subaccount, exchange_index)

    async def reset_order_group(
        self, order_group_id: str, subaccount: int | None = None, exchange_index: int | None = None
    ) -> None:
        """``PUT .../reset``: zero the matched count and take orders again."""
        await self._change("PUT", order_group_id, "reset", subaccount, exchange_index)

    async def update_order_group_limit(
        self,
        order_group_id: str,
        contracts_limit: Decimal | int,
        subaccount: int | None = None,
        exchange_index: int | None = None,
    ) -> None:
        """``PUT .../limit``: a new limit; one already reached triggers the group at once."""
        body = _encoder.encode(UpdateOrderGroupLimitRequest(limit_fp(contracts_limit)))
        await self._change("PUT", order_group_id, "limit", subaccount, exchange_index, body)

    async def delete_order_group(
        self, order_group_id: str, subaccount: int | None = None, exchange_index: int | None = None
    ) -> None:
        """``DELETE /portfolio/order_groups/{id}``: cancel its orders and remove it for good."""
        await self._change("DELETE", order_group_id, "", subaccount, exchange_index)

    async def _change(
        self,
        method: str,
        order_group_id: str,
        action: str,
        subaccount: int | None,
        exchange_index: int | None,
        body: bytes | None = None,
    ) -> None:
        # The answer is the spec's EmptyResponse, {}: only its status matters.
        # ``subaccount`` "Defaults to 0" on these calls: a group in another subaccount must
        # be named with it.
        response = await self.transport.request(
            method,
            _path(order_group_id, action),
            body=body,
            params=_params(subaccount=subaccount, exchange_index=exchange_index),
        )
        _check(response, 200)
