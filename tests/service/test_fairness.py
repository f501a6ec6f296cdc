"""Two bots through one service on the Basic tier: one bot's backlog must not starve the other's.

Basic refills 100 write tokens a second, so the router sends 10 creates a second, in batches of
7 (one request every 0.7 s). Bot A sends 40 creates, then bot B 40 more, each on its own
connection; with a 2.5 s deadline about 30 go out in time. Served first come first served, A
took every one of them and B's 40 all expired.

Taking turns, B's first intents go out in the first request cut after they arrive: A is ahead by
what it had sent before that (one batch: its 40 were all queued before B's, and the router sent
7 of them at once), and from then on the two alternate, one intent each. So ``a - b`` is at most
that head start plus one. The other way round, A's intents expire a few milliseconds before B's
(they came first): at most one request can go out in between, so ``b - a`` is at most a batch
plus one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
from prometheus_client.parser import text_string_to_metric_families

from kalshi_router.config import Config, RouterConfig
from kalshi_router.intent import AmendIntent, DecreaseIntent
from kalshi_router.outcome import outcome_name
from kalshi_router.service.protocol import ResultsBody
from kalshi_router.sim import SimConfig
from kalshi_router.stats import RouterStats
from tests.fakes import TICKER, ScriptedClient, VirtualClock, cancel, gated, make_router, order
from tests.fakes import clock_fixture as clock_fixture
from tests.service.conftest import AUTH, MakeService, Running, eventually, resting

_results = msgspec.json.Decoder(ResultsBody)
BASIC = SimConfig(tier="basic")
SHORT_DEADLINES = Config(router=RouterConfig(deadline_s=2.5))
EACH = 40


async def post_all(
    session: aiohttp.ClientSession,
    running: Running,
    bot: str,
    headers: dict[str, str],
    count: int = EACH,
) -> list[str]:
    """``bot``'s creates in one request that does not wait for outcomes; their keys."""
    items = [resting(client_order_id=f"{bot}-{i}") for i in range(count)]
    body = msgspec.json.encode({"items": items, "wait": False})
    url = running.http.make_url("/v1/orders")
    async with session.post(url, data=body, headers=headers) as response:
        assert response.status == 202, await response.text()
        results = _results.decode(await response.read()).results
    keys = [result.key for result in results if result.key is not None]
    assert len(keys) == count
    return keys


def sent(running: Running) -> int:
    """Intents put into a request so far (answered or on the wire)."""
    return running.router.stats().items_sent + running.router.in_flight


async def outcomes(running: Running, keys: list[str]) -> Counter[str]:
    book = running.service.book

    def settled(key: str) -> bool:
        found = book.find(key)
        return found is not None and found.status == "settled"

    await eventually(lambda: all(settled(key) for key in keys), 20)
    tally: Counter[str] = Counter()
    for key in keys:
        found = book.find(key)
        assert found is not None
        assert found.outcome is not None
        tally[outcome_name(found.outcome)] += 1
    return tally


async def two_bots(
    running: Running, a_headers: dict[str, str], b_headers: dict[str, str]
) -> tuple[int, int]:
    """A's 40, then B's 40, each on a connection of its own; how many of each were accepted."""
    async with aiohttp.ClientSession() as bot_a, aiohttp.ClientSession() as bot_b:
        a_keys = await post_all(bot_a, running, "a", a_headers)
        b_keys = await post_all(bot_b, running, "b", b_headers)
        # All of A's intents sent by now went out before B's were queued (or with B's, which
        # only makes this larger).
        head_start = sent(running)
    a, b = await outcomes(running, a_keys), await outcomes(running, b_keys)
    for tally in (a, b):
        assert set(tally) <= {"accepted", "expired"}, tally
    batch = running.router.batch_limits["create"]
    assert batch == 7
    assert a["accepted"] - b["accepted"] <= head_start + 1, (a, b, head_start)
    assert b["accepted"] - a["accepted"] <= batch + 1, (a, b)
    return a["accepted"], b["accepted"]


async def test_two_named_bots_take_turns_and_neither_starves(make_service: MakeService) -> None:
    running = await make_service(sim=BASIC, config=SHORT_DEADLINES)
    a, b = await two_bots(
        running, AUTH | {"X-Client-Name": "bot-a"}, AUTH | {"X-Client-Name": "bot-b"}
    )
    async with running.http.get("/v1/stats", headers=AUTH) as response:
        clients = msgspec.json.decode(await response.read(), type=RouterStats).clients
    assert set(clients) == {"bot-a", "bot-b"}
    for name, accepted in (("bot-a", a), ("bot-b", b)):
        figures = clients[name]
        assert (figures.submitted, figures.queued) == (EACH, 0)
        assert figures.outcomes == {"accepted": accepted, "expired": EACH - accepted}


async def test_unnamed_bots_take_turns_by_connection(make_service: MakeService) -> None:
    running = await make_service(sim=BASIC, config=SHORT_DEADLINES)
    await two_bots(running, AUTH, AUTH)
    stats = running.service.stats()
    assert set(stats.clients) == {"unnamed"}
    assert stats.clients["unnamed"].submitted == 2 * EACH


def client_samples(text: str) -> dict[tuple[str, str], float]:
    return {
        (sample.name, ",".join(sample.labels.values())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("kalshi_router_client_")
    }


async def test_the_metrics_carry_each_clients_figures(make_service: MakeService) -> None:
    running = await make_service(sim=BASIC, config=SHORT_DEADLINES)
    async with aiohttp.ClientSession() as session:
        keys = await post_all(session, running, "m", AUTH | {"X-Client-Name": "bot-m"}, 10)
        # Read in the same turn of the loop as what it is compared to. (7 of the 10 went out
        # at once, the rest wait 0.7 s for tokens.)
        queued = running.router.queue_depth
        samples = client_samples(running.metrics.render().decode())
        assert samples[("kalshi_router_client_submitted_total", "bot-m")] == 10
        assert samples[("kalshi_router_client_queue_depth", "bot-m")] == queued
        assert await outcomes(running, keys) == {"accepted": 10}
        async with session.get(running.http.make_url("/metrics"), headers=AUTH) as response:
            samples = client_samples(await response.text())
    assert samples == {
        ("kalshi_router_client_submitted_total", "bot-m"): 10,
        ("kalshi_router_client_outcomes_total", "bot-m,accepted"): 10,
        ("kalshi_router_client_queue_depth", "bot-m"): 0,
        ("kalshi_router_client_disconnect_cancels_total", "bot-m"): 0,
    }


# The router's side: every way in names its client, and each lane takes turns.


def amend(order_id: str) -> AmendIntent:
    return AmendIntent(
        order_id=order_id, ticker=TICKER, side="bid", price=Decimal("0.4"), count=Decimal(2)
    )


async def test_every_way_in_names_its_client_and_each_lane_takes_turns(
    clock: VirtualClock,
) -> None:
    gate = asyncio.Event()
    client = ScriptedClient().then(gated(gate))
    config = RouterConfig(max_batch_size=4, max_in_flight=1)
    async with make_router(client, config) as router:
        futures: list[asyncio.Future[Any]] = [
            *router.submit_many([order("a0"), order("a1"), order("a2")], client="a"),
            router.submit(order("b0"), client="b"),
            await router.submit_wait(order("b1"), client="b"),
            *router.cancel_many([cancel("xa0"), cancel("xa1")], client="a"),
            router.cancel("xb0", TICKER, client="b"),
            router.amend(amend("sa0"), client="a"),
            router.amend(amend("sa1"), client="a"),
            router.decrease(
                DecreaseIntent(order_id="sb0", ticker=TICKER, reduce_by=Decimal(1)), client="b"
            ),
        ]
        assert router.queued_by_client() == {"a": 7, "b": 4}
        # The cancels' request is held open: what follows queues behind it.
        await asyncio.sleep(0.001)
        placed: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(router.place(order("c0"), client="c")),
            asyncio.ensure_future(router.place_many([order("c1")], client="c")),
        ]
        await asyncio.sleep(0.001)
        assert router.queued_by_client() == {"a": 5, "b": 3, "c": 2}
        gate.set()
        await asyncio.wait([*futures, *placed])
    assert client.sent("cancel") == [["xa0", "xb0", "xa1"]]
    assert client.sent("single") == [["sa0"], ["sb0"], ["sa1"]]
    # c arrived after a and b, so it joins the turns behind them.
    assert client.sent("create") == [["a0", "b0", "c0", "a1"], ["b1", "c1", "a2"]]
