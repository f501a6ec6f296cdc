"""An unknown create resolved later, end to end: the router settles it unknown through an
outage, the tracker proves it after, and the journal records the proof."""

from __future__ import annotations

from pathlib import Path

from kalshi_router import OrderIntent, OrderRouter
from kalshi_router.config import Config, OrdersConfig, RouterConfig
from kalshi_router.journal import SqliteJournal
from kalshi_router.orders.updates import OrderUpdate
from kalshi_router.outcome import Accepted, Unknown
from kalshi_router.sim import FaultConfig, SimConfig
from kalshi_router.sim.config import ORDER_WRITE_PATHS, WsFaultConfig
from tests.integration.conftest import make_signer, running_sim

# Every write lands but its answer is lost; every lookup and every frame fails.
OUTAGE = FaultConfig(
    reset_after_rate=1.0,
    ws=WsFaultConfig(drop_frame_rate=1.0),
    paths=[*ORDER_WRITE_PATHS, "GET /portfolio/orders"],
)


async def test_an_unknown_create_is_resolved_accepted_on_its_key_and_in_the_journal(
    tmp_path: Path,
) -> None:
    config = Config(
        router=RouterConfig(deadline_s=0.5, backoff_base_s=0.01, backoff_cap_s=0.05),
        orders=OrdersConfig(track=True, reconcile_every_s=3600.0, landing_grace_s=0.0),
    )
    intent = OrderIntent.bid("SIM-MKT", price="0.30", count=1)
    with SqliteJournal.open(tmp_path / "j.sqlite3", exchange="sim") as journal:
        async with running_sim(SimConfig(tier="premier", faults=OUTAGE)) as sim:
            router = OrderRouter.connect(config, make_signer(), sim.url, journal=journal)
            async with router:
                stream = router.orders.updates()
                outcome = await router.place(intent)
                assert isinstance(outcome, Unknown), outcome
                journal.commit()
                entry = journal.find(intent.client_order_id)
                assert entry is not None
                assert entry.result == "unknown"
                sim.state.faults.configure(FaultConfig())
                await router.reconcile_orders()
                resolved: OrderUpdate | None = None
                async for update in stream:
                    if update.resolved is not None:
                        resolved = update
                        break
                figures = router.stats().orders
        entry = journal.find(intent.client_order_id)
        assert entry is not None
        assert journal.resolved_later() == 1
    assert resolved is not None
    assert isinstance(resolved.resolved, Accepted)
    assert resolved.client_order_id == intent.client_order_id
    assert resolved.state == "resting"
    assert entry.result == "accepted"
    assert figures is not None
    assert (figures.resolved, figures.unresolved) == (1, 0)
