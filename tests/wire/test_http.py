"""The signed transport and the client on a scripted loopback server (no simulator)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from kalshi_router.errors import ExchangeError, TransportError
from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.outcome import Accepted, Cancelled
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.signer import Signer, generate_key, load_private_key
from kalshi_router.wire.v2 import V2Dialect

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PRIVATE, PUBLIC = generate_key("rsa")


def _rsa_public(pem: bytes) -> rsa.RSAPublicKey:
    key = load_pem_public_key(pem)
    assert isinstance(key, rsa.RSAPublicKey)
    return key


PUBLIC_KEY = _rsa_public(PUBLIC)


def verify(request: web.Request) -> None:
    """The server side of Kalshi's signature rule, written out independently."""
    timestamp = request.headers["KALSHI-ACCESS-TIMESTAMP"]
    signature = base64.b64decode(request.headers["KALSHI-ACCESS-SIGNATURE"])
    message = (timestamp + request.method + request.path).encode()
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    PUBLIC_KEY.verify(signature, message, pss, hashes.SHA256())


class Server:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        self.handler: Handler | None = None
        self.url = ""

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        verify(request)
        self.seen.append((request.method, request.path_qs, await request.read()))
        assert self.handler is not None
        return await self.handler(request)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", state.dispatch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}/trade-api/v2"
    yield state
    await runner.cleanup()


def signer() -> Signer:
    return Signer("key-1", load_private_key(PRIVATE))


def answer(payload: object, status: int = 201) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(payload, status=status)

    return handler


async def test_requests_are_signed_over_the_full_path_without_query(server: Server) -> None:
    server.handler = answer({"orders": [], "cursor": ""}, 200)
    async with HttpTransport(server.url, signer()) as transport:
        client = ExchangeClient(transport, V2Dialect())
        page = await client.get_orders(ticker="KX-1", min_ts=5)
    assert page.orders == []
    method, path_qs, _ = server.seen[0]
    assert method == "GET"
    assert path_qs.startswith("/trade-api/v2/portfolio/orders?")
    assert "ticker=KX-1" in path_qs
    assert "min_ts=5" in path_qs


async def test_batch_create_round_trip_matches_by_client_order_id(server: Server) -> None:
    intents = [OrderIntent.bid("KX-1", "0.40", 1), OrderIntent.ask("KX-1", "0.60", 2)]

    async def handler(request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        items = [
            {
                "order_id": f"oid-{n}",
                "client_order_id": order["client_order_id"],
                "fill_count": "0.00",
                "remaining_count": order["count"],
                "ts_ms": 1,
            }
            for n, order in enumerate(reversed(body["orders"]))
        ]
        return web.json_response({"orders": items}, status=201)

    server.handler = handler
    async with HttpTransport(server.url, signer()) as transport:
        reply = await ExchangeClient(transport, V2Dialect()).create_batch(intents)
    assert reply.disposition == "answered"
    second = reply.outcomes[intents[1].client_order_id]
    assert isinstance(second, Accepted)
    assert second.order_id == "oid-0"
    assert str(second.remaining_count) == "2.00"
    method, path, body = server.seen[0]
    assert (method, path) == ("POST", "/trade-api/v2/portfolio/events/orders/batched")
    assert json.loads(body)["orders"][0]["price"] == "0.4000"


async def test_batch_cancel_is_a_signed_delete_with_a_body(server: Server) -> None:
    server.handler = answer(
        {"orders": [{"order_id": "o1", "reduced_by": "3.00", "ts_ms": 2}]}, status=200
    )
    async with HttpTransport(server.url, signer()) as transport:
        reply = await ExchangeClient(transport, V2Dialect()).cancel_batch(
            [CancelIntent(order_id="o1", ticker="KX-1")]
        )
    assert isinstance(reply.outcomes["o1"], Cancelled)
    method, _, body = server.seen[0]
    assert method == "DELETE"
    assert json.loads(body) == {"orders": [{"order_id": "o1", "market_ticker": "KX-1"}]}


async def test_connection_refused_is_not_sent_and_batch_is_retryable(refused_port: int) -> None:
    url = f"http://127.0.0.1:{refused_port}/trade-api/v2"
    async with HttpTransport(url, signer()) as transport:
        with pytest.raises(TransportError) as caught:
            await transport.request("GET", "/account/limits")
        assert caught.value.sent is False
        intent = OrderIntent.bid("KX-1", "0.40", 1)
        reply = await ExchangeClient(transport, V2Dialect()).create_batch([intent])
    assert reply.disposition == "retry"
    assert reply.unanswered == [intent.client_order_id]


async def test_reset_after_send_is_ambiguous(server: Server) -> None:
    async def reset(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(0.05)
        return web.Response()

    server.handler = reset
    intent = OrderIntent.bid("KX-1", "0.40", 1)
    async with HttpTransport(server.url, signer()) as transport:
        reply = await ExchangeClient(transport, V2Dialect()).create_batch([intent])
    assert reply.disposition == "ambiguous"
    assert reply.unanswered == [intent.client_order_id]


async def test_timeout_is_sent_and_ambiguous(server: Server) -> None:
    async def hang(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1)
        return web.Response()

    server.handler = hang
    async with HttpTransport(server.url, signer(), timeout_s=0.1) as transport:
        with pytest.raises(TransportError) as caught:
            await transport.request("POST", "/portfolio/events/orders/batched", body=b"{}")
    assert caught.value.sent is True
    assert "no answer in time" in str(caught.value)


async def test_read_error_status_raises_exchange_error_with_code(server: Server) -> None:
    server.handler = answer(
        {"error": {"code": "authentication_error", "message": "authentication_error"}}, 401
    )
    async with HttpTransport(server.url, signer()) as transport:
        with pytest.raises(ExchangeError) as caught:
            await ExchangeClient(transport, V2Dialect()).get_limits()
    assert caught.value.status == 401
    assert caught.value.code == "authentication_error"
