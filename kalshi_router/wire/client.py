"""Kalshi's order surface as typed calls: one batch in, one classified :class:`BatchReply` out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import quote

import msgspec

from kalshi_router.errors import (
    CredentialsRefused,
    ExchangeError,
    IntentError,
    TransportError,
    WireError,
)
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.wire.dialect import Dialect
from kalshi_router.wire.fills import GetFillsResponse
from kalshi_router.wire.group_calls import OrderGroupCalls
from kalshi_router.wire.hosts import describe_exchange
from kalshi_router.wire.http import Response, Transport
from kalshi_router.wire.models import (
    GetAccountApiLimitsResponse,
    GetAccountEndpointCostsResponse,
    GetExchangeStatusResponse,
    GetOrderResponse,
    GetOrdersResponse,
    Order,
)
from kalshi_router.wire.positions import GetPositionsResponse
from kalshi_router.wire.reply import BatchReply, decode_error
from kalshi_router.wire.single import decode_single, encode_single

T = TypeVar("T")
_limits = msgspec.json.Decoder(GetAccountApiLimitsResponse)
_costs = msgspec.json.Decoder(GetAccountEndpointCostsResponse)
_orders = msgspec.json.Decoder(GetOrdersResponse)
_order = msgspec.json.Decoder(GetOrderResponse)
_fills = msgspec.json.Decoder(GetFillsResponse)
_positions = msgspec.json.Decoder(GetPositionsResponse)
_status = msgspec.json.Decoder(GetExchangeStatusResponse)


def credentials_refused(
    exc: Exception,
    request: str,
    base_url: str,
    variables: tuple[str, str, str] | None = None,
) -> CredentialsRefused | None:
    """The error to raise when ``exc`` is the exchange refusing our credentials (401, 403)."""
    if not (isinstance(exc, ExchangeError) and exc.status in (401, 403)):
        return None
    # Kalshi's details are gRPC text: "rpc error: code = Unauthenticated desc = <cause>".
    cause = exc.details.rpartition("desc = ")[2].strip()
    said = f"{exc.code}: {cause}" if cause else exc.code
    exchange = describe_exchange(base_url) if base_url else "the exchange"
    return CredentialsRefused(exc.status, request, exchange, said, variables)


def _query(**values: str | int | None) -> dict[str, str]:
    """Query parameters, leaving out the unset ones (and an empty cursor: the first page)."""
    return {name: str(value) for name, value in values.items() if value is not None and value != ""}


def _unreachable(keys: Sequence[str], exc: TransportError) -> BatchReply:
    return BatchReply(
        "ambiguous" if exc.sent else "retry", 0, unanswered=list(keys), anomalies=[str(exc)]
    )


class ExchangeClient(OrderGroupCalls):
    """Batches go through ``dialect``; reads use the paths every dialect shares; cancel-all
    and the order-group calls are :class:`~kalshi_router.wire.group_calls.OrderGroupCalls`'."""

    def __init__(self, transport: Transport, dialect: Dialect) -> None:
        self.transport = transport
        self.dialect = dialect

    async def create_batch(self, intents: Sequence[OrderIntent]) -> BatchReply:
        keys = [intent.client_order_id for intent in intents]
        if len(set(keys)) != len(keys):
            # Answers are matched by id, so a repeated id could never be told apart.
            raise IntentError("client_order_id", "used more than once in one batch")
        body = self.dialect.encode_create(intents)
        try:
            response = await self.transport.request("POST", self.dialect.create_path, body=body)
        except TransportError as exc:
            return _unreachable(keys, exc)
        return self.dialect.decode_create(response.status, response.body, keys)

    async def cancel_batch(self, cancels: Sequence[CancelIntent]) -> BatchReply:
        keys = [cancel.order_id for cancel in cancels]
        body = self.dialect.encode_cancel(cancels)
        try:
            response = await self.transport.request("DELETE", self.dialect.cancel_path, body=body)
        except TransportError as exc:
            return _unreachable(keys, exc)
        return self.dialect.decode_cancel(response.status, response.body, keys)

    async def single(self, intent: AmendIntent | DecreaseIntent) -> BatchReply:
        """An amend or a decrease: its own request, keyed by the order id."""
        request = encode_single(intent)
        try:
            response = await self.transport.request(
                "POST", request.path, body=request.body, params=request.params or None
            )
        except TransportError as exc:
            return _unreachable([intent.order_id], exc)
        return decode_single(intent.order_id, response.status, response.body)

    async def get_orders(
        self,
        *,
        ticker: str | None = None,
        event_ticker: str | None = None,
        status: str | None = None,
        min_ts: int | None = None,
        max_ts: int | None = None,
        cursor: str | None = None,
        limit: int = 1000,
    ) -> GetOrdersResponse:
        """One page of ``GET /portfolio/orders`` (it has no client_order_id filter).

        ``status`` is ``resting``, ``canceled`` or ``executed``; ``event_ticker`` a
        comma-separated list of at most 10; ``min_ts`` and ``max_ts`` Unix seconds."""
        params = _query(
            limit=limit,
            ticker=ticker,
            event_ticker=event_ticker,
            status=status,
            min_ts=min_ts,
            max_ts=max_ts,
            cursor=cursor,
        )
        return self._read(
            await self.transport.request("GET", "/portfolio/orders", params=params), _orders
        )

    async def get_fills(
        self,
        *,
        ticker: str | None = None,
        order_id: str | None = None,
        min_ts: int | None = None,
        max_ts: int | None = None,
        cursor: str | None = None,
        limit: int = 1000,
    ) -> GetFillsResponse:
        """One page of ``GET /portfolio/fills``: the account's fills, filtered by market, by
        order, or by time (``min_ts`` and ``max_ts`` in Unix seconds; Kalshi does not say
        whether inclusive, the simulator takes both so). A fill with an impossible value makes
        the page a :class:`~kalshi_router.errors.WireError` naming it."""
        params = _query(
            limit=limit,
            ticker=ticker,
            order_id=order_id,
            min_ts=min_ts,
            max_ts=max_ts,
            cursor=cursor,
        )
        return self._read(
            await self.transport.request("GET", "/portfolio/fills", params=params), _fills
        )

    async def get_positions(
        self,
        *,
        ticker: str | None = None,
        event_ticker: str | None = None,
        count_filter: str | None = None,
        settlement_status: str | None = None,
        subaccount: int | None = None,
        exchange_index: int | None = None,
        cursor: str | None = None,
        limit: int = 1000,
    ) -> GetPositionsResponse:
        """One page of ``GET /portfolio/positions`` (Kalshi's Get Positions, spec 3.34.0).

        ``count_filter`` is ``position``, ``total_traded`` or both, comma-separated (markets
        with any of them non-zero); ``settlement_status`` ``unsettled`` (Kalshi's default),
        ``settled`` or ``all``; ``subaccount`` 0-63 (Kalshi: "Defaults to 0", the primary);
        ``event_ticker`` a single event. A position with an impossible value makes the page a
        :class:`~kalshi_router.errors.WireError` naming it."""
        params = _query(
            limit=limit,
            ticker=ticker,
            event_ticker=event_ticker,
            count_filter=count_filter,
            settlement_status=settlement_status,
            subaccount=subaccount,
            exchange_index=exchange_index,
            cursor=cursor,
        )
        return self._read(
            await self.transport.request("GET", "/portfolio/positions", params=params), _positions
        )

    async def get_order(self, order_id: str) -> Order | None:
        """``GET /portfolio/orders/{order_id}``; None when the exchange has no such order."""
        response = await self.transport.request("GET", f"/portfolio/orders/{quote(order_id)}")
        if response.status == 404:
            return None
        return self._read(response, _order).order

    async def get_limits(self) -> GetAccountApiLimitsResponse:
        return self._read(await self.transport.request("GET", "/account/limits"), _limits)

    async def get_endpoint_costs(self) -> GetAccountEndpointCostsResponse:
        return self._read(await self.transport.request("GET", "/account/endpoint_costs"), _costs)

    async def get_exchange_status(self) -> GetExchangeStatusResponse:
        return self._read(await self.transport.request("GET", "/exchange/status"), _status)

    @staticmethod
    def _read(response: Response, decoder: msgspec.json.Decoder[T]) -> T:
        if response.status != 200:
            error = decode_error(response.status, response.body)
            raise ExchangeError(response.status, error.code, error.message, error.details)
        try:
            return decoder.decode(response.body)
        except msgspec.DecodeError as exc:
            raise WireError(f"unreadable answer: {exc}") from None
