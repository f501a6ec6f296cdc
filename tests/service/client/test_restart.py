"""A bot placing orders through RouterClient while ``kalshi-router serve`` restarts under it
(stopped with SIGTERM, or killed with SIGKILL, then started again on the same port and journal),
against ``kalshi-router sim`` (all subprocesses). Every intent gets exactly one outcome, which
the simulator's books agree with; none reached the exchange twice; intents placed while the
service was down go out once it is back; and placing works after the restart."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Closed, Expired, OrderOutcome, Unknown
from kalshi_router.service.client import RouterClient
from tests.journal.test_crash import CREATE_COST, sim_books, write_tokens
from tests.journal.test_crash import config_file as crash_config
from tests.service.conftest import eventually
from tests.service.test_serve_e2e import TICKER, TOKEN, Command, Sim, serve_env


def config_file(directory: Path, sim: Sim, port: int, journal: Path) -> Path:
    directory.mkdir()
    return crash_config(directory, sim, journal, port)


class Bot:
    """Places two resting bids every 25 ms (about the Premier budget) until told to stop."""

    def __init__(self, client: RouterClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.futures: dict[str, asyncio.Future[OrderOutcome]] = {}
        self.while_away: set[str] = set()
        """Placed while no stream to the service was open."""

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for _ in range(2):
                key = f"{self.prefix}{len(self.futures)}"
                if not self.client.connected:
                    self.while_away.add(key)
                intent = OrderIntent.bid(TICKER, "0.30", 1, client_order_id=key)
                self.futures[key] = self.client.submit(intent)
            await asyncio.sleep(0.025)

    def count(self, kind: type) -> Callable[[], bool]:
        def enough() -> bool:
            done = [f for f in self.futures.values() if f.done() and not f.exception()]
            return sum(isinstance(f.result(), kind) for f in done) >= 20

        return enough


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
async def test_a_service_restart_mid_run_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, unused_tcp_port: int, signum: signal.Signals
) -> None:
    journal = tmp_path / "journal.sqlite3"
    env = serve_env(tmp_path)
    async with Sim(tmp_path, "premier") as sim, aiohttp.ClientSession() as session:
        # Answers take 50-150 ms: at the signal, intents are on the wire and in the queue.
        latency = {"latency": {"kind": "uniform", "min_ms": 50, "max_ms": 150}}
        async with session.put(f"{sim.origin}/_sim/faults", json=latency) as response:
            assert response.status == 200
        tokens_before = await write_tokens(session, sim)
        first_config = config_file(tmp_path / "first", sim, unused_tcp_port, journal)
        stop = asyncio.Event()
        async with Command(
            tmp_path / "first", "serve", ["--config", str(first_config)], env
        ) as first:
            client = RouterClient(first.url, token=TOKEN)
            await client.connect()
            bot = Bot(client, f"restart-{signum.name}-")
            placing = asyncio.create_task(bot.run(stop))
            await eventually(bot.count(Accepted))
            unanswered = {key for key, future in bot.futures.items() if not future.done()}
            if signum == signal.SIGKILL:
                first.proc.kill()
                assert await first.proc.wait() == -signal.SIGKILL
            else:
                code, _ = await first.stop(signum)
                assert code == 0, first.log()
        assert unanswered, "nothing was on its way at the signal"
        await eventually(lambda: len(bot.while_away) >= 10)

        second_config = config_file(tmp_path / "second", sim, unused_tcp_port, journal)
        async with Command(tmp_path / "second", "serve", ["--config", str(second_config)], env):
            await eventually(lambda: client.connected)
            placed_before = len(bot.futures)
            await eventually(lambda: len(bot.futures) >= placed_before + 20)
            stop.set()
            await placing
            async with asyncio.timeout(30):
                results = await asyncio.gather(*bot.futures.values(), return_exceptions=True)
            after = await client.place(OrderIntent.bid(TICKER, "0.30", 1, client_order_id="after"))
            await client.aclose()
        tokens_after = await write_tokens(session, sim)
        books = await sim_books(session, sim, "")

    outcomes = dict(zip(bot.futures, results, strict=True))
    assert {k: o for k, o in outcomes.items() if isinstance(o, BaseException)} == {}
    assert isinstance(after, Accepted)
    assert books.get("after") == [after.order_id]
    # One outcome each, and the books agree with it.
    for key, outcome in outcomes.items():
        placed = books.get(key, [])
        assert len(placed) <= 1, f"{key} is at the exchange {len(placed)} times"
        if isinstance(outcome, Accepted):
            assert placed == [outcome.order_id], key
        elif isinstance(outcome, Closed | Expired):
            assert placed == [], f"{key} is at the exchange but was settled {outcome}"
        else:
            assert isinstance(outcome, Unknown), (key, outcome)
    assert set(books) <= {*outcomes, "after"}, "an order nobody was told of"
    # Nothing was processed twice: the simulator charges every create it processes,
    # a refused duplicate included.
    processed = (tokens_after - tokens_before) / CREATE_COST
    assert processed == sum(len(ids) for ids in books.values()), "a create was processed twice"
    # What was placed while the service was away went out once it was back.
    assert all(isinstance(outcomes[key], Accepted) for key in bot.while_away)
    # What was on its way at the signal got its outcome: by the drain (SIGTERM), or by asking
    # the restarted service, which recovered it from its journal (SIGKILL).
    assert all(isinstance(outcomes[key], Accepted | Closed) for key in unanswered)
