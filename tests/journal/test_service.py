"""The service with a journal: an intent is journaled before it is acknowledged, and the status
endpoint answers from the journal for intents this process does not hold (an earlier run's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kalshi_router.config import Config, ServiceConfig
from kalshi_router.journal import SqliteJournal
from kalshi_router.outcome import Closed
from kalshi_router.router import OrderRouter
from kalshi_router.service import Metrics, build_service_app
from kalshi_router.sim import FaultConfig, LatencyConfig, SimConfig
from tests.integration.conftest import FAST_RETRIES, make_signer, running_sim
from tests.journal.test_recover import intent, left_open
from tests.service.conftest import AUTH, TOKEN, resting

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture
async def http(path: Path) -> AsyncIterator[tuple[Client, SqliteJournal]]:
    async with AsyncExitStack() as stack:
        journal = SqliteJournal.open(path, exchange="sim")
        stack.callback(journal.close)
        # An earlier run left one intent queued; recovery settled it.
        left_open(journal, intent("earlier"), sent=False)
        journal.resolve(
            [(e.id, Closed(reason="restarted", **e.ids())) for e in journal.open_entries()]
        )
        sim = await stack.enter_async_context(running_sim(SimConfig(tier="premier")))
        router = OrderRouter.connect(
            Config(router=FAST_RETRIES), make_signer(), sim.url, journal=journal
        )
        await stack.enter_async_context(router)
        app = build_service_app(router, ServiceConfig(), Metrics(), TOKEN, journal)
        client = await stack.enter_async_context(TestClient(TestServer(app)))
        # Every order write takes 200 ms: an acknowledged intent is still open meanwhile.
        sim.state.faults.configure(FaultConfig(latency=LatencyConfig(kind="fixed", fixed_ms=200)))
        yield client, journal


def journaled(path: Path, key: str) -> list[str]:
    """What a crash would leave: the committed state of ``key``, read by another process."""
    with SqliteJournal.read(path) as reader, reader._snapshot() as conn:
        rows = conn.execute("SELECT state FROM all_intents WHERE key = ?", (key,))
        return [row[0] for row in rows]


async def test_an_earlier_runs_intent_is_answered_from_the_journal(
    http: tuple[Client, SqliteJournal],
) -> None:
    client, _ = http
    response = await client.get("/v1/orders/earlier", headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "settled"
    assert body["outcome"]["type"] == "closed"
    assert (body["outcome"]["reason"], body["outcome"]["client_order_id"]) == (
        "restarted",
        "earlier",
    )
    assert (await client.get("/v1/orders/never-seen", headers=AUTH)).status == 404


async def test_an_intent_is_durable_before_it_is_acknowledged(
    http: tuple[Client, SqliteJournal], path: Path
) -> None:
    client, _ = http
    body = {"items": [resting(client_order_id="acked")], "wait": False}
    response = await client.post("/v1/orders", json=body, headers=AUTH)
    assert response.status == 202
    # Not settled yet, but committed: a crash now would leave it to recovery.
    assert journaled(path, "acked") in (["taken"], ["sending"])
    async with client.ws_connect("/v1/stream", headers=AUTH) as socket:
        await socket.send_json({"type": "submit", "id": 1, "item": resting(client_order_id="ws")})
        ack = await socket.receive_json(timeout=5)
        assert ack == {"type": "ack", "id": 1, "key": "ws"}
        assert journaled(path, "ws") in (["taken"], ["sending"])
        outcome = await socket.receive_json(timeout=5)
        assert outcome["outcome"]["type"] == "accepted"
        assert journaled(path, "ws") == ["settled"]
