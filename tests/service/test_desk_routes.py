"""The desk's controls through the service (``service.desk_routes``, ``service.desk``): the kill
switch over HTTP clearing the simulator's books, the trading state over HTTP, on the stream and
through ``RouterClient``, both shown in ``/v1/stats`` and ``/metrics``; risk refusals through
the service, per-client rules by ``X-Client-Name``; one bot written against ``Router`` using the
controls on the embedded router and through the service alike."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kalshi_router.api import Router
from kalshi_router.config import Config, OrdersConfig
from kalshi_router.errors import ConfigError
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Rejected
from kalshi_router.risk import ClientLimits, RiskConfig
from kalshi_router.risk.config import TradingState
from kalshi_router.risk.kill import KillReport
from kalshi_router.router import OrderRouter
from kalshi_router.service.client import RouterClient
from kalshi_router.service.protocol import (
    ResultsBody,
    StreamAck,
    StreamError,
    StreamFrame,
    StreamOutcome,
    StreamState,
    TradingStateReply,
)
from kalshi_router.sim import SimServer
from kalshi_router.stats import RouterStats
from tests.integration.conftest import FAST_RETRIES, KEY_ID, make_signer
from tests.service.conftest import AUTH, TICKER, TOKEN, MakeService, Running, eventually, resting

_frames = msgspec.json.Decoder(StreamFrame)
TRACKED = Config(router=FAST_RETRIES, orders=OrdersConfig(track=True, reconcile_every_s=3600.0))


def ours_resting(sim: SimServer) -> list[str]:
    return [
        o.order_id
        for o in sim.state.exchange.orders()
        if o.user_id == KEY_ID and o.status == "resting"
    ]


def state(router: Router) -> TradingState:
    """Read anew (mypy would keep a property narrowed from an earlier comparison)."""
    return router.trading_state


def client(running: Running, name: str | None = None) -> RouterClient:
    return RouterClient(str(running.http.make_url("")), token=TOKEN, name=name)


async def post_orders(
    running: Running, items: list[dict[str, Any]], name: str | None = None
) -> ResultsBody:
    headers = AUTH if name is None else {**AUTH, "X-Client-Name": name}
    async with running.http.post("/v1/orders", json={"items": items}, headers=headers) as answer:
        assert answer.status == 200, await answer.text()
        return msgspec.json.decode(await answer.read(), type=ResultsBody)


async def put_state(running: Running, body: object) -> tuple[int, bytes]:
    async with running.http.put("/v1/trading_state", json=body, headers=AUTH) as answer:
        return answer.status, await answer.read()


async def samples(running: Running) -> dict[tuple[str, str], float]:
    async with running.http.get("/metrics", headers=AUTH) as answer:
        text = await answer.text()
    return {
        (sample.name, ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def stats(running: Running) -> RouterStats:
    async with running.http.get("/v1/stats", headers=AUTH) as answer:
        return msgspec.json.decode(await answer.read(), type=RouterStats)


# --- the kill switch over HTTP -----------------------------------------------------------------


async def test_kill_over_http_clears_the_books_and_answers_the_report(
    make_service: MakeService,
) -> None:
    running = await make_service(config=TRACKED)
    placed = await post_orders(running, [resting(price=f"0.{20 + n}") for n in range(5)])
    assert all(isinstance(r.outcome, Accepted) for r in placed.results)
    assert len(ours_resting(running.sim)) == 5
    async with running.http.post("/v1/kill", json={"reason": "desk test"}, headers=AUTH) as answer:
        assert answer.status == 200
        report = msgspec.json.decode(await answer.read(), type=KillReport)
    assert report.done, report
    assert (report.reason, report.cancel_all, report.still_resting) == ("desk test", "sent", [])
    assert ours_resting(running.sim) == []
    assert running.router.orders.open_orders() == []
    async with running.http.get("/v1/trading_state", headers=AUTH) as answer:
        assert msgspec.json.decode(await answer.read(), type=TradingStateReply).state == "halted"
    # Creates stay refused, before the wire, until a resume.
    refused = (await post_orders(running, [resting()])).results[0].outcome
    assert isinstance(refused, Rejected)
    assert (refused.code, refused.http_status) == ("risk.halted", 0)
    risk = (await stats(running)).risk
    assert risk is not None
    assert (risk.state, risk.refusals) == ("halted", {"risk.halted": 1})
    seen = await samples(running)
    assert seen[("kalshi_router_trading_state", "state=halted")] == 1
    assert seen[("kalshi_router_trading_state", "state=active")] == 0
    assert seen[("kalshi_router_risk_refusals_total", "code=risk.halted")] == 1
    assert seen[("kalshi_router_kills_total", "done=true")] == 1

    status, body = await put_state(running, {"state": "active"})
    assert status == 200
    assert msgspec.json.decode(body, type=TradingStateReply) == TradingStateReply(
        state="active", was="halted"
    )
    assert isinstance((await post_orders(running, [resting()])).results[0].outcome, Accepted)
    assert (await samples(running))[("kalshi_router_trading_state", "state=active")] == 1


async def test_kill_with_no_body_names_who_asked(running: Running) -> None:
    headers = {**AUTH, "X-Client-Name": "desk-1"}
    async with running.http.post("/v1/kill", headers=headers) as answer:
        assert answer.status == 200
        report = msgspec.json.decode(await answer.read(), type=KillReport)
    assert report.reason == "POST /v1/kill by client desk-1"
    assert (report.done, report.cancels_sent) == (True, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subaccount": 64}, "subaccount"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 601}, "timeout_s"),
        ({"reason": ""}, "reason"),
        ({"reason": "two\nlines"}, "reason"),
        ({"reason": 5}, "reason"),
        ({"why": "x"}, "why"),
    ],
)
async def test_a_bad_kill_body_is_refused_naming_the_field(
    running: Running, body: dict[str, Any], field: str
) -> None:
    async with running.http.post("/v1/kill", json=body, headers=AUTH) as answer:
        assert answer.status == 400
        assert (await answer.json())["field"] == field
    assert running.router.trading_state == "active"  # nothing was done


async def test_the_desk_routes_need_the_token(running: Running) -> None:
    for method, path in (("POST", "/v1/kill"), ("GET", "/v1/trading_state")):
        async with running.http.request(method, path) as answer:
            assert answer.status == 401
    async with running.http.put("/v1/trading_state", json={"state": "halted"}) as answer:
        assert answer.status == 401
    assert running.router.trading_state == "active"


# --- the trading state over HTTP -------------------------------------------------------------


async def test_trading_state_over_http(running: Running) -> None:
    status, body = await put_state(running, {"state": "reducing"})
    assert status == 200
    assert msgspec.json.decode(body, type=TradingStateReply).was == "active"
    assert running.router.trading_state == "reducing"
    refused = (await post_orders(running, [resting()])).results[0].outcome
    assert isinstance(refused, Rejected)
    assert refused.code == "risk.reducing"
    for bad, field in (({"state": "paused"}, "state"), ({}, "state"), ({"x": 1}, "x")):
        status, body = await put_state(running, bad)
        assert status == 400
        assert msgspec.json.decode(body)["field"] == field
    assert running.router.trading_state == "reducing"
    seen = await samples(running)
    assert seen[("kalshi_router_trading_state", "state=reducing")] == 1
    assert seen[("kalshi_router_risk_refusals_total", "code=risk.reducing")] == 1


# --- the trading state through the client ------------------------------------------------------


async def test_trading_state_through_the_client_is_taken_before_what_follows(
    running: Running,
) -> None:
    async with client(running, "bot-a") as a, client(running, "bot-b") as b:
        assert state(a) == "active"
        a.set_trading_state("halted")
        assert state(a) == "halted"  # at once, before the service answers
        # Sent right after on the same stream: taken in the new state.
        refused = await a.place(OrderIntent.bid(TICKER, "0.30", 1))
        assert isinstance(refused, Rejected)
        assert refused.code == "risk.halted"
        assert state(running.router) == "halted"
        await eventually(lambda: b.trading_state == "halted")  # pushed to every client
        with pytest.raises(ConfigError, match=r"^state: must be one of active, reducing"):
            a.set_trading_state("paused")  # type: ignore[arg-type]
        await b.resume("reducing")
        assert state(running.router) == "reducing"
        await b.resume()
        assert b.trading_state == "active"
        assert isinstance(await b.place(OrderIntent.bid(TICKER, "0.30", 1)), Accepted)
        await eventually(lambda: a.trading_state == "active")


async def test_the_client_kills_through_the_service(make_service: MakeService) -> None:
    running = await make_service(config=TRACKED)
    async with client(running, "desk") as desk, client(running, "quoter") as quoter:
        placed = await quoter.place_many(
            [OrderIntent.bid(TICKER, f"0.{20 + n}", 1) for n in range(3)]
        )
        assert all(isinstance(o, Accepted) for o in placed)
        report = await desk.kill("client test")
        assert report.done, report
        assert report.reason == "client test"
        assert ours_resting(running.sim) == []
        # Halted for every client of the service.
        refused = await quoter.place(OrderIntent.bid(TICKER, "0.30", 1))
        assert isinstance(refused, Rejected)
        assert refused.code == "risk.halted"
        await eventually(lambda: quoter.trading_state == "halted")
        with pytest.raises(ConfigError, match=r"^subaccount"):
            await desk.kill("bad", subaccount=64)


# --- risk refusals, per-client rules --------------------------------------------------------


async def test_a_refused_create_through_the_service_has_the_risk_code(
    make_service: MakeService,
) -> None:
    config = Config(router=FAST_RETRIES, risk=RiskConfig(max_contracts=Decimal(5)))
    running = await make_service(config=config)
    over = (await post_orders(running, [resting(count="6")])).results[0].outcome
    assert isinstance(over, Rejected)
    assert (over.code, over.http_status) == ("risk.max_contracts", 0)
    assert "max_contracts 5 for every ticker" in over.message
    async with client(running, "bot") as bot:
        also = await bot.place(OrderIntent.bid(TICKER, "0.30", 6))
    assert isinstance(also, Rejected)
    assert also.code == "risk.max_contracts"
    assert ours_resting(running.sim) == []
    assert (await samples(running))[
        ("kalshi_router_risk_refusals_total", "code=risk.max_contracts")
    ] == 2


async def test_a_per_client_rule_applies_to_the_named_client_only(
    make_service: MakeService,
) -> None:
    risk = RiskConfig(clients=[ClientLimits(name="small", max_contracts=Decimal(2))])
    running = await make_service(config=Config(router=FAST_RETRIES, risk=risk))
    three = resting(count="3")
    small = (await post_orders(running, [three], name="small")).results[0].outcome
    big = (await post_orders(running, [resting(count="3")], name="big")).results[0].outcome
    unnamed = (await post_orders(running, [resting(count="3")])).results[0].outcome
    async with client(running, "small") as bot:
        streamed = await bot.place(OrderIntent.bid(TICKER, "0.30", 3))
        fits = await bot.place(OrderIntent.bid(TICKER, "0.30", 2))
    assert isinstance(small, Rejected)
    assert small.code == "risk.max_contracts"
    assert "for client small" in small.message
    assert isinstance(streamed, Rejected)
    assert streamed.code == "risk.max_contracts"
    assert isinstance(big, Accepted)
    assert isinstance(unnamed, Accepted)
    assert isinstance(fits, Accepted)


# --- one bot, either router ---------------------------------------------------------------------


async def desk_bot(router: Router) -> list[str]:
    """A bot that halts, resumes and kills through the ``Router`` protocol."""
    seen: list[str] = []
    first = await router.place(OrderIntent.bid(TICKER, "0.30", 1))
    seen.append(type(first).__name__)
    router.set_trading_state("halted")
    seen.append(router.trading_state)
    refused = await router.place(OrderIntent.bid(TICKER, "0.30", 1))
    seen.append(refused.code if isinstance(refused, Rejected) else "passed")
    await router.resume("reducing")
    seen.append(router.trading_state)
    await router.resume()
    again = await router.place(OrderIntent.bid(TICKER, "0.31", 1))
    seen.append(type(again).__name__)
    report = await router.kill("protocol bot")
    seen.append(f"done={report.done} cancel_all={report.cancel_all}")
    seen.append(router.trading_state)
    return seen


async def test_one_bot_uses_the_controls_on_either_router(make_service: MakeService) -> None:
    running = await make_service(config=TRACKED)
    remote: Router = client(running, "protocol-bot")
    async with remote:
        through_service = await desk_bot(remote)
    assert ours_resting(running.sim) == []
    embedded: Router = OrderRouter.connect(TRACKED, make_signer(), running.sim.url)
    async with embedded:
        in_process = await desk_bot(embedded)
    assert ours_resting(running.sim) == []
    assert (
        through_service
        == in_process
        == [
            "Accepted",
            "halted",
            "risk.halted",
            "reducing",
            "Accepted",
            "done=True cancel_all=sent",
            "halted",
        ]
    )


async def test_a_state_request_on_a_raw_stream_is_answered_then_reported(running: Running) -> None:
    async with running.http.ws_connect("/v1/stream?state=1", headers=AUTH) as socket:
        first = _frames.decode((await socket.receive(timeout=5)).data)
        assert isinstance(first, StreamState)
        await socket.send_json({"type": "trading_state", "id": "s1", "item": {"state": "odd"}})
        await socket.send_json({"type": "trading_state", "id": "s2", "item": {"state": "halted"}})
        await socket.send_json({"type": "submit", "id": 3, "item": resting()})
        replies: list[StreamFrame] = []
        while not replies or not isinstance(replies[-1], StreamOutcome):
            replies.append(_frames.decode((await socket.receive(timeout=5)).data))
    refused = next(r for r in replies if isinstance(r, StreamError) and r.id == "s1")
    assert refused.field == "state"
    acked = replies.index(StreamAck("s2", "halted"))
    # The state frame right after the answer already shows the change.
    after = replies[acked + 1]
    assert isinstance(after, StreamState)
    assert after.stats.risk is not None
    assert after.stats.risk.state == "halted"
    outcome = next(r for r in replies if isinstance(r, StreamOutcome))
    assert isinstance(outcome.outcome, Rejected)
    assert outcome.outcome.code == "risk.halted"  # sent after the change: taken in it
