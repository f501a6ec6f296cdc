"""The wire layer against the simulator on loopback: both dialects, signatures, books."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Literal

import msgspec
import pytest

from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.outcome import Accepted, Cancelled, Rejected
from kalshi_router.sim import SimConfig, SimServer
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialect import DialectName
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.signer import Signer, generate_key, load_private_key

TICKER = "KXWIRE-26DEC31-T50"
KEYS = {kind: generate_key(kind) for kind in ("rsa", "ed25519")}


@pytest.fixture(params=["v2", "v1"])
def dialect(request: pytest.FixtureRequest) -> DialectName:
    name: DialectName = request.param
    return name


@pytest.fixture
async def sim(dialect: DialectName) -> AsyncIterator[SimServer]:
    # Premier: V1 orders cost 100 tokens, more than a Basic bucket holds for a batch.
    config = SimConfig(tier="premier", v1_mode="serve" if dialect == "v1" else "gone")
    async with SimServer(config) as server:
        for kind, (_, public) in KEYS.items():
            server.register_key(f"key-{kind}", public)
        yield server


def signer(kind: Literal["rsa", "ed25519"]) -> Signer:
    return Signer(f"key-{kind}", load_private_key(KEYS[kind][0]))


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
async def test_batch_round_trip_matches_the_books(
    sim: SimServer, dialect: DialectName, kind: Literal["rsa", "ed25519"]
) -> None:
    resting = OrderIntent.bid(TICKER, "0.41", 4)
    taker = OrderIntent.bid(TICKER, "0.56", 2, time_in_force="immediate_or_cancel")
    legacy = OrderIntent.legacy(ticker=TICKER, action="buy", side="no", price="0.35", count="1.5")
    crossing = OrderIntent.ask(TICKER, "0.40", 1, post_only=True)
    intents = [resting, taker, legacy, crossing]
    async with HttpTransport(sim.url, signer(kind)) as transport:
        client = ExchangeClient(transport, dialect_for(dialect))
        reply = await client.create_batch(intents)
        assert reply.disposition == "answered"
        assert reply.unanswered == []
        placed = reply.outcomes[resting.client_order_id]
        assert isinstance(placed, Accepted)
        assert placed.remaining_count == Decimal("4.00")
        filled = reply.outcomes[taker.client_order_id]
        assert isinstance(filled, Accepted)
        assert (filled.fill_count, filled.remaining_count) == (Decimal(2), Decimal(0))
        assert isinstance(reply.outcomes[legacy.client_order_id], Accepted)
        refused = reply.outcomes[crossing.client_order_id]
        assert isinstance(refused, Rejected)
        assert refused.details == "post only cross"

        user = f"key-{kind}"
        book = {o.client_order_id: o for o in sim.state.exchange.orders(user)}
        assert set(book) == {resting.client_order_id, taker.client_order_id, legacy.client_order_id}
        assert (book[legacy.client_order_id].side, book[legacy.client_order_id].price) == (
            "ask",
            6500,
        )
        page = await client.get_orders(ticker=TICKER)
        assert {o.client_order_id for o in page.orders} == set(book)
        by_id = await client.get_order(placed.order_id)
        assert by_id is not None
        assert (by_id.client_order_id, by_id.remaining_count_fp) == (
            resting.client_order_id,
            Decimal(4),
        )
        assert await client.get_order("no-such-order") is None

        cancel = CancelIntent(order_id=placed.order_id, ticker=TICKER)
        cancelled = await client.cancel_batch([cancel])
        outcome = cancelled.outcomes[placed.order_id]
        assert isinstance(outcome, Cancelled)
        assert outcome.reduced_by == Decimal(4)
    assert sim.state.exchange.get(user, placed.order_id) is not None


async def test_resend_with_same_id_is_refused_not_doubled(
    sim: SimServer, dialect: DialectName
) -> None:
    intent = OrderIntent.bid(TICKER, "0.30", 1)
    async with HttpTransport(sim.url, signer("ed25519")) as transport:
        client = ExchangeClient(transport, dialect_for(dialect))
        first = await client.create_batch([intent])
        again = await client.create_batch([intent])
    assert isinstance(first.outcomes[intent.client_order_id], Accepted)
    duplicate = again.outcomes[intent.client_order_id]
    assert isinstance(duplicate, Rejected)
    assert duplicate.code == "duplicate_client_order_id"
    assert sim.state.exchange.client_order_ids("key-ed25519")[intent.client_order_id] == 1


async def test_wrong_key_is_refused_with_kalshis_401(sim: SimServer, dialect: DialectName) -> None:
    impostor = Signer("key-rsa", load_private_key(generate_key("rsa")[0]))
    intent = OrderIntent.bid(TICKER, "0.30", 1)
    async with HttpTransport(sim.url, impostor) as transport:
        reply = await ExchangeClient(transport, dialect_for(dialect)).create_batch([intent])
    assert reply.disposition == "rejected"
    assert reply.http_status == 401
    refused = reply.outcomes[intent.client_order_id]
    assert isinstance(refused, Rejected)
    assert refused.code == "authentication_error"
    assert sim.state.exchange.orders("key-rsa") == []


async def test_limits_and_costs_size_the_budget(sim: SimServer) -> None:
    async with HttpTransport(sim.url, signer("rsa")) as transport:
        client = ExchangeClient(transport, dialect_for("v2"))
        limits = await client.get_limits()
        costs = await client.get_endpoint_costs()
    assert (limits.usage_tier, limits.write.refill_rate, limits.write.bucket_capacity) == (
        "premier",
        1000,
        2000,
    )
    assert costs.default_cost == 10
    assert ("DELETE", "/portfolio/events/orders/{order_id}", 2) in {
        (c.method, c.path, c.cost) for c in costs.endpoint_costs
    }


async def test_v1_route_is_gone_by_default() -> None:
    async with SimServer(SimConfig()) as server:
        server.register_key("key-rsa", KEYS["rsa"][1])
        intent = OrderIntent.bid(TICKER, "0.30", 1)
        async with HttpTransport(server.url, signer("rsa")) as transport:
            reply = await ExchangeClient(transport, dialect_for("v1")).create_batch([intent])
    assert (reply.disposition, reply.http_status) == ("rejected", 410)
    assert reply.error is not None
    assert reply.error.code == "deprecated_v1_order_endpoint"
    body = json.loads(msgspec.json.encode(reply.outcomes[intent.client_order_id]))
    assert body["message"] == "Please switch to the V2 endpoints"


async def test_fills_and_orders_read_back_what_traded(sim: SimServer) -> None:
    sweep = OrderIntent.bid(TICKER, "0.56", 150, time_in_force="immediate_or_cancel")
    resting = OrderIntent.bid(TICKER, "0.20", 1)
    async with HttpTransport(sim.url, signer("rsa")) as transport:
        client = ExchangeClient(transport, dialect_for("v2"))
        placed = await client.create_batch([sweep, resting])
        accepted = placed.outcomes[sweep.client_order_id]
        assert isinstance(accepted, Accepted)
        order_id = accepted.order_id
        page = await client.get_fills(ticker=TICKER, limit=1)
        assert page.cursor
        rest = await client.get_fills(ticker=TICKER, cursor=page.cursor)
        fills = page.fills + rest.fills
        by_order = await client.get_fills(order_id=order_id)
        executed = await client.get_orders(ticker=TICKER, status="executed")
        still = await client.get_orders(ticker=TICKER, status="resting")
    # 100 house contracts at $0.55, then 50 at $0.56: newest first.
    assert [(f.yes_price_dollars, f.count_fp) for f in fills] == [
        (Decimal("0.56"), Decimal(50)),
        (Decimal("0.55"), Decimal(100)),
    ]
    assert [f.trade_id for f in by_order.fills] == [f.trade_id for f in fills]
    assert all(f.order_id == order_id and f.is_taker and f.ts_ms for f in fills)
    (order,) = executed.orders
    assert order.order_id == order_id
    assert order.taker_fees_dollars == sum(f.fee_cost for f in fills) > 0
    assert order.taker_fill_cost_dollars == sum(f.count_fp * f.yes_price_dollars for f in fills)
    assert [o.client_order_id for o in still.orders] == [resting.client_order_id]
