"""``service.metrics_port``: /metrics for Prometheus on a listener of its own, with no token on
loopback and the configured one beyond it; the intake's /metrics stays behind its token."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from kalshi_router.config import ServiceConfig
from kalshi_router.errors import ConfigError
from kalshi_router.service import Metrics
from kalshi_router.service.scrape import build_metrics_app
from kalshi_router.service.serve import _listen_metrics, check_bind
from tests.service.test_serve_e2e import TICKER, Command, base_env

SCRAPER = "scraper-token-not-a-secret"


def families(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


@pytest.mark.parametrize("value", [-1, 65536])
def test_the_port_is_checked(value: int) -> None:
    with pytest.raises(ConfigError, match=r"^service\.metrics_port: must be between"):
        ServiceConfig(metrics_port=value)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_on_loopback_it_needs_no_token(host: str) -> None:
    check_bind(ServiceConfig(metrics_port=9464, metrics_host=host), {})


def test_beyond_loopback_it_needs_a_configured_token() -> None:
    settings = ServiceConfig(metrics_port=9464, metrics_host="0.0.0.0")
    with pytest.raises(ConfigError, match=r"^service\.metrics_host: 0\.0\.0\.0 is not loopback"):
        check_bind(settings, {})
    check_bind(settings, {"KALSHI_ROUTER_TOKEN": SCRAPER})
    # Off unless asked for: a metrics_host alone opens nothing.
    check_bind(ServiceConfig(metrics_host="0.0.0.0"), {})


async def test_with_a_token_a_scrape_must_carry_it() -> None:
    async with TestClient(TestServer(build_metrics_app(Metrics(), SCRAPER))) as http:
        async with http.get("/metrics") as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert await response.json() == {"error": "unauthorized", "field": None}
        headers = {"Authorization": f"Bearer {SCRAPER}"}
        async with http.get("/metrics", headers=headers) as response:
            assert response.status == 200
            assert "kalshi_router_outcomes" in families(await response.text())
        # Nothing else is served there.
        async with http.get("/v1/stats", headers=headers) as response:
            assert response.status == 404


@pytest.mark.parametrize(("host", "needs_token"), [("127.0.0.1", False), ("0.0.0.0", True)])
async def test_the_listener_asks_for_the_token_beyond_loopback_only(
    host: str, needs_token: bool
) -> None:
    settings = ServiceConfig(metrics_port=0, metrics_host=host)
    environ = {"KALSHI_ROUTER_TOKEN": SCRAPER}
    async with AsyncExitStack() as stack, aiohttp.ClientSession() as session:
        url = await _listen_metrics(stack, Metrics(), settings, environ)
        port = int(url.removesuffix("/metrics").rpartition(":")[2])
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == (401 if needs_token else 200)
        headers = {"Authorization": f"Bearer {SCRAPER}"}
        async with session.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as response:
            assert response.status == 200


async def test_prometheus_scrapes_the_metrics_port_without_a_token(
    tmp_path: Path, unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KALSHI_ROUTER_TOKEN", raising=False)
    config = tmp_path / "serve.toml"
    config.write_text(
        f'[service]\nport = 0\nmetrics_port = {unused_tcp_port}\ntoken_file = "{tmp_path}/t"\n'
        "\n[journal]\nenabled = false\n"
    )
    command = Command(tmp_path, "serve", ["--config", str(config)], base_env(tmp_path))
    async with command as service, aiohttp.ClientSession() as session:
        assert f"kalshi-router metrics on http://127.0.0.1:{unused_tcp_port}/metrics" in (
            command.stdout.read_text()
        )
        headers = {"Authorization": f"Bearer {(tmp_path / 't').read_text()}"}
        body = {"items": [{"ticker": TICKER, "side": "bid", "price": "0.30", "count": "1"}]}
        async with session.post(f"{service.url}/v1/orders", json=body, headers=headers) as reply:
            assert reply.status == 200
        async with session.get(f"http://127.0.0.1:{unused_tcp_port}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await response.text()
        samples = {
            (sample.name, sample.labels.get("outcome")): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        assert samples[("kalshi_router_outcomes_total", "accepted")] == 1
        # The intake's own /metrics is still behind the intake's token.
        async with session.get(f"{service.url}/metrics") as response:
            assert response.status == 401
        async with session.get(f"{service.url}/metrics", headers=headers) as response:
            assert response.status == 200
        code, _ = await service.stop()
    assert code == 0, service.log()
