"""Amend and decrease: V2 single-order endpoints, one request per order (whatever the dialect:
Kalshi has no other form of them left)."""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from kalshi_router.intent import AmendIntent, DecreaseIntent
from kalshi_router.outcome import Amended
from kalshi_router.wire.models import (
    AmendOrderV2Request,
    DecreaseOrderV2Request,
    SingleOrderV2Response,
    impossible_count,
)
from kalshi_router.wire.reply import BatchReply, Outcome, build_reply

_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(SingleOrderV2Response)


class SingleRequest(NamedTuple):
    path: str
    body: bytes
    params: dict[str, str]


def encode_single(intent: AmendIntent | DecreaseIntent) -> SingleRequest:
    params = {} if intent.subaccount is None else {"subaccount": str(intent.subaccount)}
    if isinstance(intent, AmendIntent):
        body = AmendOrderV2Request(
            ticker=intent.ticker,
            side=intent.side,
            price=intent.price,
            count=intent.count,
            client_order_id=intent.client_order_id,
            updated_client_order_id=intent.updated_client_order_id,
            expiration_time=intent.expiration_time,
            exchange_index=intent.exchange_index,
        )
        path = f"/portfolio/events/orders/{intent.order_id}/amend"
        return SingleRequest(path, _encoder.encode(body), params)
    decrease = DecreaseOrderV2Request(
        reduce_by=intent.reduce_by,
        reduce_to=intent.reduce_to,
        exchange_index=intent.exchange_index,
        market_ticker=intent.ticker,
    )
    path = f"/portfolio/events/orders/{intent.order_id}/decrease"
    return SingleRequest(path, _encoder.encode(decrease), params)


def _settle(answer: SingleOrderV2Response) -> tuple[str | None, Outcome | None]:
    if impossible_count(answer.remaining_count) or impossible_count(answer.fill_count):
        return answer.order_id, None
    return answer.order_id, Amended(
        order_id=answer.order_id,
        client_order_id=answer.client_order_id,
        remaining_count=answer.remaining_count,
        fill_count=answer.fill_count,
        ts_ms=answer.ts_ms,
    )


def decode_single(order_id: str, status: int, body: bytes) -> BatchReply:
    return build_reply(
        status, body, [order_id], lambda raw: [_decoder.decode(raw)], _settle, "order_id"
    )
