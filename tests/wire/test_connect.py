"""``wire.connect``, the one way to the exchange: every path (the router, the service's start-up
recovery, ``check``) gets the transport the configuration describes.

Regression (issue 12): the service's recovery built its own transport and left out
``exchange.max_clock_skew_s`` and the pool size, so a recovery read the exchange otherwise than
the router that followed it.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kalshi_router.config import Config, ExchangeConfig, RouterConfig
from kalshi_router.journal import SqliteJournal
from kalshi_router.router import OrderRouter
from kalshi_router.service.serve import _recover
from kalshi_router.wire import connect
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.v1 import V1Dialect
from kalshi_router.wire.v2 import V2Dialect
from tests.integration.conftest import make_signer

BASE_URL = "http://127.0.0.1:9/trade-api/v2"
# Every value unlike its default, so that a path that leaves one out shows.
CONFIG = Config(
    exchange=ExchangeConfig(
        target="url",
        base_url="https://exchange.example/trade-api/v2",
        dialect="v1",
        request_timeout_s=3.5,
        max_clock_skew_s=2.5,
    ),
    router=RouterConfig(max_in_flight=7),
)
AS_CONFIGURED = {
    "base_url": BASE_URL,
    "timeout_s": 3.5,
    "max_connections": 9,
    "verify_tls": True,
    "max_clock_skew_s": 2.5,
}


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The arguments of every ``HttpTransport`` made, defaults filled in (signer left out)."""
    made: list[dict[str, Any]] = []
    init = HttpTransport.__init__
    signature = inspect.signature(init)

    def recording(self: HttpTransport, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        made.append({k: v for k, v in bound.arguments.items() if k in AS_CONFIGURED})
        init(self, *args, **kwargs)

    monkeypatch.setattr(HttpTransport, "__init__", recording)
    return made


async def test_the_service_recovers_over_the_transport_its_router_uses(
    made: list[dict[str, Any]], tmp_path: Path
) -> None:
    journal = SqliteJournal.open(tmp_path / "journal.sqlite3", exchange=BASE_URL)
    try:
        await _recover(CONFIG, journal, make_signer(), BASE_URL)
    finally:
        journal.close()
    router = OrderRouter.connect(CONFIG, make_signer(), BASE_URL)
    await router.aclose()
    recovery, routing = made
    assert recovery == routing == AS_CONFIGURED


def test_connect_builds_the_configured_transport_and_dialect(made: list[dict[str, Any]]) -> None:
    transport, client = connect(CONFIG, make_signer())
    assert made == [AS_CONFIGURED | {"base_url": CONFIG.exchange.base_url}]
    assert client.transport is transport
    assert isinstance(client.dialect, V1Dialect)
    assert isinstance(connect(Config(), make_signer()).client.dialect, V2Dialect)


def test_connect_overrides_replace_the_configured_values(made: list[dict[str, Any]]) -> None:
    # As ``check`` connects: one connection, and the skew judged by itself rather than logged.
    connect(CONFIG, make_signer(), base_url=BASE_URL, max_connections=1, max_clock_skew_s=math.inf)
    assert made == [AS_CONFIGURED | {"max_connections": 1, "max_clock_skew_s": math.inf}]


@pytest.fixture
def presigned(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[tuple[str, str]], int]]:
    """What every ``HttpTransport`` made was asked to sign ahead, and the age limit."""
    made: list[tuple[list[tuple[str, str]], int]] = []
    init = HttpTransport.__init__

    def recording(self: HttpTransport, *args: Any, **kwargs: Any) -> None:
        made.append((list(kwargs.get("presign", ())), kwargs.get("presign_max_age_ms", 0)))
        init(self, *args, **kwargs)

    monkeypatch.setattr(HttpTransport, "__init__", recording)
    return made


async def test_only_the_router_connection_signs_its_batches_ahead(
    presigned: list[tuple[list[tuple[str, str]], int]], tmp_path: Path
) -> None:
    journal = SqliteJournal.open(tmp_path / "journal.sqlite3", exchange=BASE_URL)
    try:
        await _recover(CONFIG, journal, make_signer(), BASE_URL)
    finally:
        journal.close()
    router = OrderRouter.connect(CONFIG, make_signer(), BASE_URL)
    await router.aclose()
    v1_batches = [("POST", V1Dialect.create_path), ("DELETE", V1Dialect.cancel_path)]
    # Recovery only reads: a signing thread would only make signatures nobody sends.
    assert presigned == [([], 500), (v1_batches, 500)]


def test_presign_follows_the_config(presigned: list[tuple[list[tuple[str, str]], int]]) -> None:
    exchange = msgspec.structs.replace(CONFIG.exchange, presign_max_age_ms=250)
    connect(msgspec.structs.replace(CONFIG, exchange=exchange), make_signer(), writes=True)
    off = msgspec.structs.replace(CONFIG.exchange, presign=False)
    connect(msgspec.structs.replace(CONFIG, exchange=off), make_signer(), writes=True)
    v1_batches = [("POST", V1Dialect.create_path), ("DELETE", V1Dialect.cancel_path)]
    assert presigned == [(v1_batches, 250), ([], 500)]
