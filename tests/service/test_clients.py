"""Who a service client is: the name a bot gives (X-Client-Name) or its connection; names
checked, labels bounded; per-client figures in /v1/stats and /metrics; RouterClient's name."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from aiohttp import WSServerHandshakeError
from prometheus_client.parser import text_string_to_metric_families

from kalshi_router.client_names import ClientNames, name_problem
from kalshi_router.config import Config, ExchangeConfig, ServiceConfig
from kalshi_router.errors import ConfigError, RouterCrashed
from kalshi_router.intent import OrderIntent
from kalshi_router.outcome import Accepted, Expired
from kalshi_router.service import Metrics
from kalshi_router.service.client import RouterClient, open_router
from kalshi_router.stats import ClientFigures, ClientTally, RouterStats
from tests.service.conftest import AUTH, TICKER, TOKEN, MakeService, Running, resting

NAMED = {**AUTH, "X-Client-Name": "bot-1"}


# --- names and labels (no loop) ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "bot-1", "mm.v2_east", "X" * 64, "9lives"])
def test_a_name_of_letters_digits_dots_dashes_and_underscores_is_good(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    "name", ["", "X" * 65, "-lead", ".hidden", "bot 1", "bot/1", 'bot"1', "bøt", "bot\n"]
)
def test_any_other_name_is_refused(name: str) -> None:
    assert name_problem(name) == (
        "a client name is 1 to 64 ASCII letters, digits, '.', '_' or '-', "
        "starting with a letter or digit"
    )


@pytest.mark.parametrize("name", ["other", "unnamed"])
def test_the_shared_labels_cannot_be_taken_as_names(name: str) -> None:
    assert name_problem(name) == f"{name!r} is reserved"


def test_a_named_client_is_its_name_on_every_connection_an_unnamed_one_its_connection() -> None:
    names = ClientNames()
    first, second = object(), object()
    assert names.key("bot-1", first) == names.key("bot-1", second) == "bot-1"
    assert names.key(None, first) == names.key(None, first)
    assert names.key(None, first) != names.key(None, second)
    assert names.label(names.key(None, first)) == "unnamed"
    assert names.label(None) == "unnamed"


def test_the_first_names_get_labels_of_their_own_and_later_ones_share_other() -> None:
    names = ClientNames(max_names=2)
    assert [names.label(key) for key in ("b", "a", "c", "b", "a", "d")] == [
        "b",
        "a",
        "other",
        "b",
        "a",
        "other",
    ]
    assert ClientNames(max_names=0).label("a") == "other"


def test_a_bad_client_name_or_limit_in_the_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"service\.client_name: a client name is 1 to 64"):
        ServiceConfig(client_name="bot 1")
    with pytest.raises(ConfigError, match=r"service\.max_client_names: must be >= 0"):
        ServiceConfig(max_client_names=-1)
    assert ServiceConfig(client_name="bot-1").client_name == "bot-1"


def test_a_client_with_a_bad_name_is_refused_before_it_connects() -> None:
    with pytest.raises(ConfigError, match=r"^name: 'other' is reserved$"):
        RouterClient("http://127.0.0.1:1", name="other")


# --- the tally and the metrics -----------------------------------------------------------------


async def test_the_tally_counts_each_labels_intents_and_outcomes_and_what_waits() -> None:
    loop = asyncio.get_running_loop()
    tally = ClientTally()
    futures = [loop.create_future() for _ in range(4)]
    for label, future in zip(["bot-1", "bot-1", "unnamed", "bot-1"], futures, strict=True):
        tally.track(label, future)
    accepted = Accepted(
        client_order_id="c", order_id="o", fill_count=Decimal(0), remaining_count=Decimal(1)
    )
    futures[0].set_result(accepted)
    futures[1].set_result(Expired(reason="late", client_order_id="d"))
    futures[2].set_exception(RouterCrashed("boom"))
    await asyncio.sleep(0)  # done callbacks run on the next turn
    names = ClientNames()
    queued = {"bot-1": 1, "#1": 2, None: 3}
    assert tally.snapshot(queued, names.label) == {
        "bot-1": ClientFigures(submitted=3, outcomes={"accepted": 1, "expired": 1}, queued=1),
        "unnamed": ClientFigures(submitted=1, outcomes={"failed": 1}, queued=5),
    }


def test_the_metrics_show_each_clients_figures_at_scrape_time() -> None:
    metrics = Metrics()
    figures = {"bot-1": ClientFigures(submitted=5, outcomes={"accepted": 4}, queued=1)}
    metrics.bind_clients(lambda: figures)
    samples = {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if sample.name.startswith("kalshi_router_client_")
    }
    assert samples == {
        ("kalshi_router_client_submitted_total", ("bot-1",)): 5,
        ("kalshi_router_client_outcomes_total", ("bot-1", "accepted")): 4,
        ("kalshi_router_client_queue_depth", ("bot-1",)): 1,
        ("kalshi_router_client_disconnect_cancels_total", ("bot-1",)): 0,
    }


# --- the service -------------------------------------------------------------------------------


async def stats_of(running: Running) -> RouterStats:
    async with running.http.get("/v1/stats", headers=AUTH) as response:
        assert response.status == 200
        return msgspec.json.decode(await response.read(), type=RouterStats)


async def test_a_bad_name_is_a_400_naming_the_header(running: Running) -> None:
    body = msgspec.json.encode({"items": [resting()]})
    headers = {**AUTH, "X-Client-Name": "bot 1"}
    async with running.http.post("/v1/orders", data=body, headers=headers) as response:
        assert response.status == 400
        answer = await response.json()
    assert answer == {
        "error": "X-Client-Name: a client name is 1 to 64 ASCII letters, digits, '.', '_' or "
        "'-', starting with a letter or digit",
        "field": "X-Client-Name",
    }
    with pytest.raises(WSServerHandshakeError) as refused:
        await running.http.ws_connect("/v1/stream", headers={**AUTH, "X-Client-Name": "other"})
    assert refused.value.status == 400
    assert (await stats_of(running)).clients == {}


async def test_stats_name_each_client_up_to_the_limit_then_other_and_unnamed(
    make_service: MakeService,
) -> None:
    running = await make_service(ServiceConfig(max_client_names=1))
    for name in ("bot-1", "bot-2", "bot-3", None):
        headers = AUTH if name is None else {**AUTH, "X-Client-Name": name}
        body = msgspec.json.encode({"items": [resting(), resting()]})
        async with running.http.post("/v1/orders", data=body, headers=headers) as response:
            assert response.status == 200
    clients = (await stats_of(running)).clients
    figures = {label: (f.submitted, f.outcomes, f.queued) for label, f in clients.items()}
    assert figures == {
        "bot-1": (2, {"accepted": 2}, 0),
        "other": (4, {"accepted": 4}, 0),
        "unnamed": (2, {"accepted": 2}, 0),
    }


async def test_a_client_names_itself_on_its_stream(running: Running) -> None:
    url = str(running.http.make_url(""))
    async with RouterClient(url, token=TOKEN, name="bot-ws") as client:
        assert isinstance(await client.place(OrderIntent.bid(TICKER, "0.30", 1)), Accepted)
        await client.flush()  # then stats() is exact, not up to one state frame old
        clients = client.stats().clients
    assert clients["bot-ws"] == ClientFigures(submitted=1, outcomes={"accepted": 1}, queued=0)


async def test_open_router_names_the_client_as_the_config_says(
    running: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALSHI_ROUTER_TOKEN", TOKEN)
    port = running.http.make_url("").port
    assert port is not None
    settings = ServiceConfig(port=port, client_name="from-config", token_file=str(tmp_path / "t"))
    client = open_router(Config(exchange=ExchangeConfig(target="service"), service=settings))
    assert isinstance(client, RouterClient)
    async with client:
        await client.place(OrderIntent.bid(TICKER, "0.30", 1))
    assert set((await stats_of(running)).clients) == {"from-config"}
