"""``[service] client_order_group_limit`` (``service.groups``): each named client's creates in an
order group of its own, made at its first create; fills that reach one client's limit pull that
client's orders only; a group that cannot be made refuses the client's creates, not sends them
outside it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from kalshi_router.config import ServiceConfig
from kalshi_router.errors import ExchangeError, IntentError
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Rejected
from kalshi_router.service.client import RouterClient
from kalshi_router.service.groups import RETRY_S, ClientGroups
from kalshi_router.service.protocol import ItemResult, ResultsBody
from kalshi_router.sim import SimServer
from kalshi_router.sim._model import SimOrder
from tests.integration.conftest import KEY_ID
from tests.service.conftest import AUTH, TICKER, TOKEN, MakeService, Running, resting

GROUPED = ServiceConfig(client_order_group_limit=2)
TAKES = "0.60"  # above the house's best ask ($0.55): fills at once


def client(running: Running, name: str) -> RouterClient:
    return RouterClient(str(running.http.make_url("")), token=TOKEN, name=name)


async def post(running: Running, item: dict[str, Any], name: str | None = None) -> ItemResult:
    headers = AUTH if name is None else {**AUTH, "X-Client-Name": name}
    async with running.http.post("/v1/orders", json={"items": [item]}, headers=headers) as answer:
        assert answer.status == 200
        return msgspec.json.decode(await answer.read(), type=ResultsBody).results[0]


def at_sim(sim: SimServer, order_id: str | None) -> SimOrder:
    assert order_id is not None
    found = sim.state.exchange.get(KEY_ID, order_id)
    assert found is not None
    return found


async def test_each_named_client_gets_its_own_group_in_its_creates(
    make_service: MakeService,
) -> None:
    running = await make_service(GROUPED)
    groups = running.router.order_groups
    by_http = (await post(running, resting(), name="bot-a")).outcome
    async with client(running, "bot-b") as b:
        by_stream = await b.place(OrderIntent.bid(TICKER, "0.30", 1))
        again = await b.place(OrderIntent.bid(TICKER, "0.31", 1))
    unnamed = (await post(running, resting())).outcome
    own = await groups.create_order_group(10)
    named_own = (await post(running, resting(order_group_id=own), name="bot-a")).outcome
    for outcome in (by_http, by_stream, again, unnamed, named_own):
        assert isinstance(outcome, Accepted), outcome
    assert set(groups.by_client) == {"bot-a", "bot-b"}
    assert groups.by_client["bot-a"] != groups.by_client["bot-b"]
    assert isinstance(by_http, Accepted)
    assert at_sim(running.sim, by_http.order_id).order_group_id == groups.by_client["bot-a"]
    for streamed in (by_stream, again):
        assert isinstance(streamed, Accepted)
        assert at_sim(running.sim, streamed.order_id).order_group_id == groups.by_client["bot-b"]
    assert isinstance(unnamed, Accepted)
    assert at_sim(running.sim, unnamed.order_id).order_group_id is None
    assert isinstance(named_own, Accepted)
    assert at_sim(running.sim, named_own.order_id).order_group_id == own


async def test_fills_that_reach_a_clients_limit_pull_only_its_orders(
    make_service: MakeService,
) -> None:
    running = await make_service(GROUPED)
    async with client(running, "runaway") as runaway, client(running, "calm") as calm:
        quote = await runaway.place(OrderIntent.bid(TICKER, "0.30", 1))
        kept = await calm.place(OrderIntent.bid(TICKER, "0.30", 1))
        # Takes 3 from the house's asks: the runaway's group of 2 is reached.
        taken = await runaway.place(OrderIntent.bid(TICKER, TAKES, 3))
        assert isinstance(taken, Accepted)
        assert taken.fill_count == Decimal(3)
        refused = await runaway.place(OrderIntent.bid(TICKER, "0.30", 1))
        still = await calm.place(OrderIntent.bid(TICKER, "0.31", 1))
    assert isinstance(quote, Accepted)
    assert isinstance(kept, Accepted)
    assert at_sim(running.sim, quote.order_id).status == "canceled"
    assert at_sim(running.sim, kept.order_id).status == "resting"
    assert isinstance(refused, Rejected)
    assert refused.code == "order_group_triggered"
    assert isinstance(still, Accepted)


async def test_a_group_that_cannot_be_made_refuses_the_clients_creates(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = await make_service(GROUPED)
    groups = running.router.order_groups
    now = [0.0]
    running.service.groups = ClientGroups(lambda: groups, 2, clock=lambda: now[0])
    attempts: list[str] = []
    made = groups.group_for

    async def failing(client: str, limit: Decimal | int, **_: object) -> str:
        attempts.append(client)
        raise ExchangeError(400, "max_order_groups", "too many order groups")

    monkeypatch.setattr(groups, "group_for", failing)
    first = await post(running, resting(), name="bot-a")
    soon = await post(running, resting(), name="bot-a")
    async with client(running, "bot-a") as bot:
        with pytest.raises(IntentError, match=r"^order_group_id: client bot-a's order group"):
            await bot.place(OrderIntent.bid(TICKER, "0.30", 1))
        assert attempts == ["bot-a"]  # refused within RETRY_S without another attempt
        now[0] += RETRY_S
        monkeypatch.setattr(groups, "group_for", made)
        later = await bot.place(OrderIntent.bid(TICKER, "0.30", 1))
    for refused in (first, soon):
        assert refused.error is not None
        assert refused.error.field == "order_group_id"
        assert "too many order groups" in refused.error.message
        assert "the create was not sent" in refused.error.message
    unnamed = (await post(running, resting())).outcome
    assert isinstance(unnamed, Accepted)  # no group for it: nothing to make
    assert isinstance(later, Accepted)
    assert at_sim(running.sim, later.order_id).order_group_id == groups.by_client["bot-a"]
    # The refused creates never reached the exchange: only these two did.
    placed = [o.order_group_id for o in running.sim.state.exchange.orders() if o.user_id == KEY_ID]
    assert sorted(placed, key=str) == sorted([None, groups.by_client["bot-a"]], key=str)


def test_the_limit_is_checked_as_a_config_key() -> None:
    with pytest.raises(ValueError, match=r"^service\.client_order_group_limit: must be between"):
        ServiceConfig(client_order_group_limit=-1)
    assert ServiceConfig().client_order_group_limit == 0
