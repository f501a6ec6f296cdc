"""The simulator and an exchange client on it, for the tests of recovery."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kalshi_router.sim import SimConfig, SimServer
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport
from tests.integration.conftest import make_signer, running_sim


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with running_sim(SimConfig(tier="premier")) as server:
        yield server


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[ExchangeClient]:
    async with HttpTransport(sim.url, make_signer(), timeout_s=5) as transport:
        yield ExchangeClient(transport, dialect_for("v2"))
