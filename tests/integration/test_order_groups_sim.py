"""An order group on the simulator through the router: group calls paid from the router's own
write budget, orders joining the group through ``OrderIntent.order_group_id``, and the group
triggered by fills, after which the exchange refuses the group's orders until it is reset."""

from __future__ import annotations

from decimal import Decimal

from kalshi_router.intent import OrderIntent
from kalshi_router.order_groups import OrderGroups
from kalshi_router.outcome import Accepted, Rejected
from kalshi_router.sim import SimConfig
from kalshi_router.wire.groups import group_costs
from tests.integration.conftest import KEY_ID, MakeRouter, MakeSim

TICKER = "KXGROUPS-26DEC31-T50"


async def test_a_group_triggered_by_fills_through_the_router(
    make_sim: MakeSim, make_router: MakeRouter
) -> None:
    sim = await make_sim(SimConfig())
    router = await make_router(sim)
    # As the router wires ``router.order_groups``: its client, its write budget, its costs.
    client, budget = router._client, router._budget
    assert budget is not None
    groups = OrderGroups(client, budget, group_costs(await client.get_endpoint_costs()))
    group_id = await groups.group_for("bot-a", 2)
    assert budget.spent == 10

    resting = await router.place(OrderIntent.bid(TICKER, "0.30", 1, order_group_id=group_id))
    assert isinstance(resting, Accepted)
    # Takes 3 from the house asks at $0.55: the group's limit of 2 is reached.
    taker = await router.place(OrderIntent.bid(TICKER, "0.60", 3, order_group_id=group_id))
    assert isinstance(taker, Accepted)
    assert taker.fill_count == Decimal(3)
    assert resting.order_id is not None
    cancelled = sim.state.exchange.get(KEY_ID, resting.order_id)
    assert cancelled is not None
    assert cancelled.status == "canceled"

    refused = await router.place(OrderIntent.bid(TICKER, "0.30", 1, order_group_id=group_id))
    assert isinstance(refused, Rejected)
    assert refused.code == "order_group_triggered"
    outside = await router.place(OrderIntent.bid(TICKER, "0.30", 1))
    assert isinstance(outside, Accepted)

    await groups.reset_order_group(group_id)
    again = await router.place(OrderIntent.bid(TICKER, "0.30", 1, order_group_id=group_id))
    assert isinstance(again, Accepted)
    found = await groups.get_order_group(group_id)
    assert found is not None
    assert len(found.orders) == 3  # the refused order never joined
    # One bucket: the group's create and reset beside five orders.
    assert budget.spent == 10 + 10 + 5 * 10
