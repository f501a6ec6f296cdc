"""One bot, written against the ``Router`` protocol, run on the embedded ``OrderRouter`` and on
a ``RouterClient`` of a real ``kalshi-router serve``, both against ``kalshi-router sim``: the
same outcomes, and the same answers from every read-only member."""

from __future__ import annotations

from pathlib import Path

from kalshi_router.api import Router
from kalshi_router.config import Config
from kalshi_router.router import OrderRouter
from kalshi_router.service.client import RouterClient
from kalshi_router.wire.signer import Signer, load_private_key
from tests.integration.conftest import FAST_RETRIES
from tests.service.client.test_router_client import EXPECTED, scenario
from tests.service.test_serve_e2e import KEY_ID, PRIVATE_PEM, TOKEN, Sim, serve, serve_config


async def bot(router: Router) -> dict[str, object]:
    """The bot's session, and what it reads from the router at the end."""
    outcomes = await scenario(router)
    stats = router.stats()
    budget = router.budget
    return {
        "outcomes": outcomes,
        "stats.outcomes": stats.outcomes,
        "stats.rejected_codes": stats.rejected_codes,
        "stats.tokens_spent": stats.tokens_spent,
        "queue_depth": (router.queue_depth, stats.queue_depth),
        "in_flight": (router.in_flight, stats.in_flight),
        "crashed": router.crashed,
        "batch_limits": dict(router.batch_limits),
        "budget": (budget.capacity, budget.refill_rate, budget.headroom, dict(budget.costs)),
        "budget.spent": budget.spent,
        "budget.tokens": 0 < budget.tokens() <= budget.capacity,
    }


async def test_one_bot_on_the_embedded_router_and_through_serve(tmp_path: Path) -> None:
    async with Sim(tmp_path, "premier") as sim:
        signer = Signer(KEY_ID, load_private_key(PRIVATE_PEM))
        embedded: Router = OrderRouter.connect(Config(router=FAST_RETRIES), signer, sim.url)
        async with embedded:
            seen_embedded = await bot(embedded)
        async with serve(tmp_path, serve_config(tmp_path, sim)) as service:
            remote: Router = RouterClient(service.url, token=TOKEN)
            async with remote:
                seen_remote = await bot(remote)
            code, _ = await service.stop()
        assert code == 0, service.log()
    assert seen_embedded["outcomes"] == EXPECTED
    assert seen_remote == seen_embedded
