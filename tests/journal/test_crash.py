"""THE crash test: ``kalshi-router serve`` under load, killed with SIGKILL at a random moment,
restarted on the same journal against the same simulator (both subprocesses). After recovery:

- every intent the service acknowledged is in the journal, settled, with one outcome that the
  service API reports too, and no outcome is unknown;
- accepted <=> the simulator holds that client_order_id (with the same order id), at most once;
- what the bot was told before the crash is what the journal says after it;
- no client_order_id was processed twice: the simulator charged exactly one create per order it
  holds (it charges every item of a batch it processes, duplicates included);
- the restarted service routes new intents.

Three seeds by default; ``KALSHI_ROUTER_CRASH_LONG=1`` runs twenty.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from kalshi_router.cli import main as cli_main
from kalshi_router.journal import SqliteJournal
from kalshi_router.outcome import Accepted, Closed, Outcome
from kalshi_router.service.protocol import OrderStatus, StreamAck, StreamOutcome, StreamReply
from tests.long import is_long
from tests.service.test_serve_e2e import AUTH, KEY_ID, Command, Sim, serve_env

LONG = is_long("CRASH")
SEEDS = range(20) if LONG else range(3)
TICKERS = [f"KXCRASH-26DEC31-T{n}" for n in (40, 50, 60)]
CREATE_COST = 10
# A request lost in the crash lands within the sim's latency (at most 80 ms): 0.5 s is plenty.
GRACE_S = 0.5
_replies = msgspec.json.Decoder(StreamReply)
_status = msgspec.json.Decoder(OrderStatus)


def config_file(directory: Path, sim: Sim, journal: Path, port: int = 0) -> Path:
    """``serve``'s config for a crash or restart test (``port`` 0: any free port)."""
    path = directory / "serve.toml"
    path.write_text(
        f"""
[exchange]
target = "url"
base_url = "{sim.url}"

[router]
# Nothing expires under load: whatever is open at the crash is open because of the crash.
deadline_s = 60
drain_timeout_s = 1
backoff_base_s = 0.01
backoff_cap_s = 0.1

[service]
host = "127.0.0.1"
port = {port}
token_file = "{directory / "token"}"

[journal]
path = "{journal}"
landing_grace_s = {GRACE_S}
lookup_timeout_s = 5
"""
    )
    return path


def order(key: str, rng: random.Random) -> dict[str, Any]:
    # Below the house's bids: it rests, so the sim accepts every one it processes.
    return {
        "ticker": rng.choice(TICKERS),
        "side": "bid",
        "price": "0.30",
        "count": "1",
        "client_order_id": key,
    }


@dataclass
class Client:
    """A bot streaming intents over the WebSocket until the service dies under it."""

    acked: set[str] = field(default_factory=set)
    told: dict[str, Outcome] = field(default_factory=dict)
    sent: int = 0

    async def run(self, url: str, seed: int, rng: random.Random, first_ack: asyncio.Event) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{url}/v1/stream", headers=AUTH) as socket,
        ):
            reader = asyncio.create_task(self._read(socket, first_ack))
            try:
                while not reader.done():
                    for _ in range(8):
                        key = f"crash{seed}-{self.sent}"
                        message = {"type": "submit", "id": self.sent, "item": order(key, rng)}
                        self.sent += 1
                        await socket.send_str(json.dumps(message))
                    await asyncio.sleep(0.01)
            except ConnectionError:
                pass  # the service died mid-send
            await reader

    async def _read(self, socket: aiohttp.ClientWebSocketResponse, first: asyncio.Event) -> None:
        async for message in socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            reply = _replies.decode(message.data)
            if isinstance(reply, StreamAck):
                self.acked.add(reply.key)
                first.set()
            elif isinstance(reply, StreamOutcome):
                self.told[reply.key] = reply.outcome


async def sim_books(session: aiohttp.ClientSession, sim: Sim, prefix: str) -> dict[str, list[str]]:
    async with session.get(f"{sim.origin}/_sim/orders") as response:
        orders = await response.json()
    books: dict[str, list[str]] = {}
    for placed in orders:
        coid = placed["client_order_id"] or ""
        if placed["user_id"] == KEY_ID and coid.startswith(prefix):
            books.setdefault(coid, []).append(placed["order_id"])
    return books


async def write_tokens(session: aiohttp.ClientSession, sim: Sim) -> float:
    async with session.get(f"{sim.origin}/_sim/stats") as response:
        spent: float = (await response.json())["tokens_spent"]["write"]
        return spent


async def crash_and_recover(tmp_path: Path, sim: Sim, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    journal_path = tmp_path / "journal.sqlite3"
    env = serve_env(tmp_path)
    prefix = f"crash{seed}-"
    async with aiohttp.ClientSession() as session:
        tokens_before = await write_tokens(session, sim)
        first_run = tmp_path / f"seed{seed}-first"
        first_run.mkdir()
        config = config_file(first_run, sim, journal_path)
        client = Client()
        async with Command(first_run, "serve", ["--config", str(config)], env) as service:
            first_ack = asyncio.Event()
            bot = asyncio.create_task(client.run(service.url, seed, rng, first_ack))
            await asyncio.wait_for(first_ack.wait(), 10)
            await asyncio.sleep(rng.uniform(0.1, 1.0))
            service.proc.kill()
            assert await service.proc.wait() == -9
            with contextlib.suppress(aiohttp.ClientError):
                await asyncio.wait_for(bot, 10)
        assert client.acked, "nothing was acknowledged before the crash"

        second_run = tmp_path / f"seed{seed}-second"
        second_run.mkdir()
        config = config_file(second_run, sim, journal_path)
        # The announcement comes after recovery: by then every journaled intent is settled.
        async with Command(second_run, "serve", ["--config", str(config)], env) as service:
            with SqliteJournal.read(journal_path) as journal:
                entries = {key: journal.find(key) for key in client.acked}
                assert journal.open_entries() == []
            outcomes: dict[str, Outcome] = {}
            for key, entry in entries.items():
                assert entry is not None, f"{key} was acknowledged but is not in the journal"
                assert entry.state == "settled"
                assert entry.outcome is not None
                outcomes[key] = entry.outcome
            for key in rng.sample(sorted(client.acked), min(20, len(client.acked))):
                async with session.get(f"{service.url}/v1/orders/{key}", headers=AUTH) as reply:
                    assert reply.status == 200, key
                    status = _status.decode(await reply.read())
                assert (status.status, status.outcome) == ("settled", outcomes[key])
            # The restarted service routes new intents.
            body = {"items": [order(f"{prefix}after", rng)]}
            async with session.post(f"{service.url}/v1/orders", json=body, headers=AUTH) as reply:
                assert (await reply.json())["results"][0]["outcome"]["type"] == "accepted"
            recovery_log = service.log()
        tokens_after = await write_tokens(session, sim)
        books = await sim_books(session, sim, prefix)

    assert set(books) <= client.acked | {f"{prefix}after"}, "an order nobody was told of"
    for key, outcome in outcomes.items():
        assert isinstance(outcome, Accepted | Closed), (key, outcome)
        placed = books.get(key, [])
        assert len(placed) <= 1, f"{key} is at the exchange {len(placed)} times"
        if isinstance(outcome, Accepted):
            assert placed == [outcome.order_id], key
        else:
            assert placed == [], f"{key} is at the exchange but was settled {outcome}"
    for key, outcome in client.told.items():
        assert outcomes[key] == outcome, f"{key}: the bot was told {outcome}"
    processed = (tokens_after - tokens_before) / CREATE_COST
    assert processed == sum(len(ids) for ids in books.values()), "a create was processed twice"
    assert "journal:" in recovery_log
    return {
        "acked": len(client.acked),
        "told_before_crash": len(client.told),
        "accepted": sum(isinstance(o, Accepted) for o in outcomes.values()),
        "closed": sum(isinstance(o, Closed) for o in outcomes.values()),
    }


@pytest.mark.timeout(600 if LONG else 60)
async def test_kill_9_under_load_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Sim(tmp_path, "premier") as sim, aiohttp.ClientSession() as session:
        # Requests take 10-80 ms at the exchange, so some are on the wire when the kill lands
        # (and are processed after it), while the write budget keeps a queue behind them.
        latency = {
            "latency": {"kind": "uniform", "min_ms": 10, "max_ms": 80},
            # Processed, then answered slowly: a kill then leaves orders the bot never heard of.
            "trickle_rate": 0.5,
            "trickle_interval_ms": 20,
        }
        async with session.put(f"{sim.origin}/_sim/faults", json=latency) as response:
            assert response.status == 200
        totals: dict[str, int] = {}
        for seed in SEEDS:
            for name, n in (await crash_and_recover(tmp_path, sim, seed)).items():
                totals[name] = totals.get(name, 0) + n
    assert totals["accepted"] > 0
    assert totals["closed"] > 0
    assert cli_main(["journal", "--path", str(tmp_path / "journal.sqlite3"), "--unresolved"]) == 0
    out = capsys.readouterr().out
    assert "unresolved: 0" in out
    with capsys.disabled():
        print(f"\ncrash test, {len(SEEDS)} kill -9 cycles: {totals}")
