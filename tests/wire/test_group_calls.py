"""The exchange client's order-group calls and cancel-all (wire.group_calls) against the
simulator on loopback: each call's effect on the books, the errors it raises, and a group
triggered by fills in the middle of a batch sent through the V2 dialect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from kalshi_router.errors import ExchangeError, IntentError
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Rejected
from kalshi_router.sim import SimConfig, SimServer
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.signer import Signer, generate_key, load_private_key
from kalshi_router.wire.v2 import V2Dialect

TICKER = "KXGROUP-26DEC31-T50"
USER = "key-groups"
PRIVATE, PUBLIC = generate_key("ed25519")


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(SimConfig(tier="premier")) as server:
        server.register_key(USER, PUBLIC)
        yield server


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[ExchangeClient]:
    async with HttpTransport(sim.url, Signer(USER, load_private_key(PRIVATE))) as transport:
        yield ExchangeClient(transport, V2Dialect())


def status_of(sim: SimServer, order_id: str) -> str:
    order = sim.state.exchange.get(USER, order_id)
    assert order is not None
    return order.status


async def test_create_get_list_update(client: ExchangeClient, sim: SimServer) -> None:
    group_id = await client.create_order_group(Decimal("2.5"))
    got = await client.get_order_group(group_id)
    assert got is not None
    assert (got.contracts_limit_fp, got.orders, got.is_auto_cancel_enabled) == (
        Decimal("2.50"),
        [],
        True,
    )
    await client.update_order_group_limit(group_id, 4)
    (listed,) = await client.list_order_groups()
    assert (listed.id, listed.contracts_limit_fp, listed.exchange_index) == (
        group_id,
        Decimal("4.00"),
        0,
    )
    assert await client.list_order_groups(subaccount=1) == []
    reply = await client.create_batch([OrderIntent.bid(TICKER, "0.30", 1, order_group_id=group_id)])
    (placed,) = reply.outcomes.values()
    assert isinstance(placed, Accepted)
    got = await client.get_order_group(group_id)
    assert got is not None
    assert got.orders == [placed.order_id]


async def test_trigger_reset_delete(client: ExchangeClient, sim: SimServer) -> None:
    group_id = await client.create_order_group(10)
    intent = OrderIntent.bid(TICKER, "0.30", 1, order_group_id=group_id)
    (resting,) = (await client.create_batch([intent])).outcomes.values()
    assert isinstance(resting, Accepted)
    assert resting.order_id is not None
    await client.trigger_order_group(group_id)
    assert status_of(sim, resting.order_id) == "canceled"
    again = OrderIntent.bid(TICKER, "0.30", 1, order_group_id=group_id)
    (refused,) = (await client.create_batch([again])).outcomes.values()
    assert isinstance(refused, Rejected)
    assert refused.code == "order_group_triggered"
    await client.reset_order_group(group_id)
    retry = OrderIntent.bid(TICKER, "0.30", 1, order_group_id=group_id)
    (accepted,) = (await client.create_batch([retry])).outcomes.values()
    assert isinstance(accepted, Accepted)
    assert accepted.order_id is not None
    await client.delete_order_group(group_id)
    assert status_of(sim, accepted.order_id) == "canceled"
    assert await client.get_order_group(group_id) is None
    with pytest.raises(ExchangeError) as info:
        await client.delete_order_group(group_id)
    assert (info.value.status, info.value.code) == (404, "not_found")


async def test_fills_trip_the_group_mid_batch(client: ExchangeClient, sim: SimServer) -> None:
    group_id = await client.create_order_group(2)
    intents = [
        OrderIntent.bid(TICKER, "0.30", 1, order_group_id=group_id),
        # Crosses the house asks from $0.55: fills 3, reaching the limit of 2.
        OrderIntent.bid(TICKER, "0.60", 3, order_group_id=group_id),
        OrderIntent.bid(TICKER, "0.30", 1, order_group_id=group_id),
        OrderIntent.bid(TICKER, "0.30", 1),
    ]
    reply = await client.create_batch(intents)
    outcomes = [reply.outcomes[i.client_order_id] for i in intents]
    assert [type(o).__name__ for o in outcomes] == ["Accepted", "Accepted", "Rejected", "Accepted"]
    first, tripper, refused, outside = outcomes
    assert isinstance(refused, Rejected)
    assert refused.code == "order_group_triggered"
    assert isinstance(tripper, Accepted)
    assert tripper.fill_count == Decimal(3)
    assert isinstance(first, Accepted)
    assert first.order_id is not None
    assert isinstance(outside, Accepted)
    assert outside.order_id is not None
    assert status_of(sim, first.order_id) == "canceled"
    assert status_of(sim, outside.order_id) == "resting"


async def test_a_group_outside_subaccount_zero_is_named_with_its_subaccount(
    client: ExchangeClient,
) -> None:
    group_id = await client.create_order_group(5, subaccount=2, exchange_index=0)
    with pytest.raises(ExchangeError) as info:
        await client.trigger_order_group(group_id)
    assert info.value.status == 404
    await client.trigger_order_group(group_id, subaccount=2, exchange_index=0)
    assert await client.get_order_group(group_id, subaccount=0) is None
    assert await client.get_order_group(group_id, subaccount=2) is not None
    assert [g.id for g in await client.list_order_groups(subaccount=2)] == [group_id]


async def test_refusals_raise_exchange_errors_and_bad_limits_send_nothing(
    client: ExchangeClient, sim: SimServer
) -> None:
    with pytest.raises(ExchangeError) as info:
        await client.create_order_group(1, exchange_index=3)
    assert (info.value.status, info.value.code) == (400, "invalid_parameters")
    for call in (client.reset_order_group, client.trigger_order_group):
        with pytest.raises(ExchangeError) as info:
            await call("no-such-group")
        assert info.value.status == 404
    with pytest.raises(IntentError):
        await client.create_order_group(Decimal("0.005"))
    with pytest.raises(IntentError):
        await client.trigger_order_group("")
    assert sim.state.exchange.order_groups(USER) == []
    # Only the shard-3 create reached the exchange; the bad limit and the empty id did not.
    sent = {key: n for key, n in sim.state.stats.requests.items() if "order_groups" in key[0]}
    assert sent == {
        ("POST /portfolio/order_groups/create", "400"): 1,
        ("PUT /portfolio/order_groups/{order_group_id}/reset", "404"): 1,
        ("PUT /portfolio/order_groups/{order_group_id}/trigger", "404"): 1,
    }


async def test_cancel_all_by_subaccount_then_everything(
    client: ExchangeClient, sim: SimServer
) -> None:
    intents = [OrderIntent.bid(TICKER, "0.30", 1, subaccount=s) for s in (0, 1, 1)]
    reply = await client.create_batch(intents)
    ids = [o.order_id for o in reply.outcomes.values() if isinstance(o, Accepted)]
    assert len(ids) == 3
    assert all(ids)
    await client.cancel_all(subaccount=1)
    assert [status_of(sim, i) for i in ids if i] == ["resting", "canceled", "canceled"]
    await client.cancel_all()
    assert [status_of(sim, i) for i in ids if i] == ["canceled"] * 3
    assert sim.state.stats.requests["DELETE /portfolio/events/orders", "204"] == 2
