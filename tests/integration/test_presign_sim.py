"""Pre-made signatures (``[exchange] presign``) against the simulator's strict auth: batch creates
and cancels go out with them, counted in the router's stats; the thread lives exactly as long as
the router's client; off, nothing runs and nothing is counted."""

from __future__ import annotations

import asyncio
import threading

import pytest

from kalshi_router import Config
from kalshi_router.config import ExchangeConfig
from kalshi_router.errors import CredentialsRefused
from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.outcome import Accepted, Cancelled
from kalshi_router.router import OrderRouter
from kalshi_router.wire.dialect import DialectName
from kalshi_router.wire.presign import THREAD_NAME
from kalshi_router.wire.signer import KeyAlgorithm, Signer, generate_key, load_private_key
from tests.integration.conftest import FAST_RETRIES, MakeSim, make_signer, sim_config_for

TICKER = "KXPRESIGN-26DEC31-T50"
RSA_KEY_ID = "presign-rsa"
RSA_PRIVATE, RSA_PUBLIC = generate_key("rsa")


def presign_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


@pytest.mark.parametrize(("dialect", "key"), [("v2", "rsa"), ("v1", "ed25519")])
async def test_the_simulator_takes_pre_made_signatures_for_creates_and_cancels(
    make_sim: MakeSim, dialect: DialectName, key: KeyAlgorithm
) -> None:
    sim = await make_sim(sim_config_for(dialect))
    signer = make_signer()
    if key == "rsa":
        sim.register_key(RSA_KEY_ID, RSA_PUBLIC)
        signer = Signer(RSA_KEY_ID, load_private_key(RSA_PRIVATE))
    config = Config(exchange=ExchangeConfig(dialect=dialect), router=FAST_RETRIES)
    assert config.exchange.presign
    router = OrderRouter.connect(config, signer, sim.url)
    assert presign_threads() == []
    async with router:
        assert len(presign_threads()) == 1
        accepted = []
        for _ in range(4):
            # Low load: the thread has the next pair ready long before the next request.
            await asyncio.sleep(0.01)
            outcome = await router.place(OrderIntent.bid(TICKER, "0.30", 1))
            assert isinstance(outcome, Accepted), outcome
            accepted.append(outcome)
        for done in accepted:
            await asyncio.sleep(0.01)
            cancelled = await router.cancel(CancelIntent(order_id=done.order_id, ticker=TICKER))
            assert isinstance(cancelled, Cancelled), cancelled
        stats = router.stats()
    assert presign_threads() == []
    signatures = stats.signatures
    assert signatures is not None
    assert signatures.premade + signatures.inline == stats.batches_sent == 8
    # The first of each lane may find its pair still being made; the rest were ready.
    assert signatures.premade >= 6, signatures
    assert stats.outcomes == {"accepted": 4, "cancelled": 4}


async def test_off_no_thread_runs_and_nothing_is_counted(make_sim: MakeSim) -> None:
    sim = await make_sim(sim_config_for("v2"))
    config = Config(exchange=ExchangeConfig(presign=False), router=FAST_RETRIES)
    async with OrderRouter.connect(config, make_signer(), sim.url) as router:
        outcome = await router.place(OrderIntent.bid(TICKER, "0.30", 1))
        assert isinstance(outcome, Accepted), outcome
        assert presign_threads() == []
        assert router.signatures is None
        assert router.stats().signatures is None


async def test_a_router_that_fails_to_start_leaves_no_thread(make_sim: MakeSim) -> None:
    sim = await make_sim(sim_config_for("v2"))
    # Unknown to the simulator: the start-up reads are refused (401) after the thread started.
    stranger = Signer("not-registered", load_private_key(generate_key("ed25519")[0]))
    router = OrderRouter.connect(Config(router=FAST_RETRIES), stranger, sim.url)
    with pytest.raises(CredentialsRefused):
        async with router:
            pass
    assert presign_threads() == []
