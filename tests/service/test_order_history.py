"""``GET /v1/orders/{key}``: every action taken on an order (place, amend, decrease, cancel), in
order, each with its outcome, by client_order_id or by order id; from the journal for what an
earlier run did."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kalshi_router.config import Config, ServiceConfig
from kalshi_router.journal import SqliteJournal
from kalshi_router.outcome import Accepted, Amended, Cancelled, Outcome
from kalshi_router.router import OrderRouter
from kalshi_router.service import Metrics, build_service_app
from kalshi_router.service.protocol import OrderStatus, ResultsBody
from kalshi_router.sim import SimConfig, SimServer
from tests.integration.conftest import FAST_RETRIES, make_signer, running_sim
from tests.service.conftest import AUTH, TICKER, TOKEN, Running, resting, slow_exchange

Http = TestClient[web.Request, web.Application]
_results = msgspec.json.Decoder(ResultsBody)
_status = msgspec.json.Decoder(OrderStatus)
FOUR = ["place", "amend", "decrease", "cancel"]
FOUR_KINDS = [Accepted, Amended, Amended, Cancelled]


async def one(http: Http, path: str, item: dict[str, Any], **body: Any) -> Outcome | None:
    data = msgspec.json.encode({"items": [item], **body})
    async with http.post(path, data=data, headers=AUTH) as response:
        assert response.status in (200, 202), await response.text()
        (result,) = _results.decode(await response.read()).results
    assert result.error is None, result.error
    return result.outcome


async def place(http: Http, client_order_id: str) -> str:
    placed = await one(http, "/v1/orders", resting(count="3", client_order_id=client_order_id))
    assert isinstance(placed, Accepted)
    return placed.order_id


def amend(order_id: str) -> dict[str, Any]:
    return {"ticker": TICKER, "order_id": order_id, "side": "bid", "price": "0.31", "count": "5"}


def decrease(order_id: str) -> dict[str, Any]:
    return {"ticker": TICKER, "order_id": order_id, "reduce_by": "2"}


def cancel(order_id: str) -> dict[str, Any]:
    return {"ticker": TICKER, "order_id": order_id}


async def status(http: Http, key: str) -> OrderStatus:
    async with http.get(f"/v1/orders/{key}", headers=AUTH) as response:
        assert response.status == 200, await response.text()
        return _status.decode(await response.read())


def check_four(found: OrderStatus, key: str, client_order_id: str, order_id: str) -> None:
    assert (found.key, found.client_order_id, found.order_id) == (key, client_order_id, order_id)
    assert [action.action for action in found.actions] == FOUR
    assert [action.status for action in found.actions] == ["settled"] * 4
    assert [type(action.outcome) for action in found.actions] == FOUR_KINDS
    outcomes = [action.outcome for action in found.actions]
    assert isinstance(outcomes[0], Accepted)
    assert outcomes[0].remaining_count == 3
    assert isinstance(outcomes[1], Amended)
    assert outcomes[1].remaining_count == 5
    assert isinstance(outcomes[2], Amended)
    assert outcomes[2].remaining_count == 3
    assert isinstance(outcomes[3], Cancelled)
    assert outcomes[3].reduced_by == 3
    # The order as it is now: the newest action's outcome.
    assert (found.status, found.outcome, found.omitted) == ("settled", outcomes[3], 0)


async def test_every_action_in_order_by_client_order_id_and_by_order_id(running: Running) -> None:
    http = running.http
    order_id = await place(http, "hist-1")
    assert isinstance(await one(http, "/v1/amends", amend(order_id)), Amended)
    assert isinstance(await one(http, "/v1/decreases", decrease(order_id)), Amended)
    assert isinstance(await one(http, "/v1/cancels", cancel(order_id)), Cancelled)
    check_four(await status(http, "hist-1"), "hist-1", "hist-1", order_id)
    check_four(await status(http, order_id), order_id, "hist-1", order_id)


async def test_an_order_id_finds_a_placed_order(running: Running) -> None:
    order_id = await place(running.http, "hist-2")
    found = await status(running.http, order_id)
    assert (found.client_order_id, found.order_id) == ("hist-2", order_id)
    assert [action.action for action in found.actions] == ["place"]


async def test_an_action_still_pending_shows_as_pending(running: Running) -> None:
    http = running.http
    order_id = await place(http, "hist-3")
    slow_exchange(running, 300)
    assert await one(http, "/v1/amends", amend(order_id), wait=False) is None
    found = await status(http, "hist-3")
    assert [(action.action, action.status) for action in found.actions] == [
        ("place", "settled"),
        ("amend", "pending"),
    ]
    # Pending while any action is; the newest action has no outcome yet.
    assert (found.status, found.outcome) == ("pending", None)
    await running.router.flush()
    found = await status(http, order_id)
    assert found.status == "settled"
    assert isinstance(found.outcome, Amended)


async def test_the_answer_is_json_as_documented(running: Running) -> None:
    order_id = await place(running.http, "hist-4")
    await one(running.http, "/v1/cancels", cancel(order_id))
    async with running.http.get("/v1/orders/hist-4", headers=AUTH) as response:
        body = await response.json()
    assert set(body) == {"key", "status", "outcome", "client_order_id", "order_id", "actions"}
    assert [(a["action"], a["status"], a["outcome"]["type"]) for a in body["actions"]] == [
        ("place", "settled", "accepted"),
        ("cancel", "settled", "cancelled"),
    ]
    assert body["outcome"]["type"] == "cancelled"


# --- after a restart: the journal -----------------------------------------------------------------


@pytest.fixture
async def journaled(tmp_path: Path) -> AsyncIterator[tuple[SimServer, SqliteJournal]]:
    async with running_sim(SimConfig(tier="premier")) as sim:
        journal = SqliteJournal.open(tmp_path / "journal.sqlite3", exchange="sim")
        try:
            yield sim, journal
        finally:
            journal.close()


async def service_run(stack: AsyncExitStack, sim: SimServer, journal: SqliteJournal) -> Http:
    """One run of the service on ``journal``: its own router and book."""
    router = OrderRouter.connect(
        Config(router=FAST_RETRIES), make_signer(), sim.url, journal=journal
    )
    await stack.enter_async_context(router)
    app = build_service_app(router, ServiceConfig(), Metrics(), TOKEN, journal)
    return await stack.enter_async_context(TestClient(TestServer(app)))


async def test_after_a_restart_the_journal_has_every_action(
    journaled: tuple[SimServer, SqliteJournal],
) -> None:
    sim, journal = journaled
    async with AsyncExitStack() as first:
        http = await service_run(first, sim, journal)
        order_id = await place(http, "hist-5")
        assert isinstance(await one(http, "/v1/amends", amend(order_id)), Amended)
        only_placed = await place(http, "hist-6")
    async with AsyncExitStack() as second:
        http = await service_run(second, sim, journal)
        # This run acts on the earlier run's order: the book holds only part of its story.
        assert isinstance(await one(http, "/v1/decreases", decrease(order_id)), Amended)
        assert isinstance(await one(http, "/v1/cancels", cancel(order_id)), Cancelled)
        check_four(await status(http, "hist-5"), "hist-5", "hist-5", order_id)
        check_four(await status(http, order_id), order_id, "hist-5", order_id)
        for key in ("hist-6", only_placed):
            found = await status(http, key)
            assert (found.client_order_id, found.order_id) == ("hist-6", only_placed)
            assert [action.action for action in found.actions] == ["place"]
        async with http.get("/v1/orders/never-seen", headers=AUTH) as response:
            assert response.status == 404
