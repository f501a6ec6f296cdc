"""Recovery against the simulator: what a dead process left open gets its outcome from the
exchange's books; and the journal of a live router holds no key material."""

from __future__ import annotations

import asyncio
import base64
import time
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from kalshi_router.config import JournalConfig, RouterConfig
from kalshi_router.intent import AmendIntent, CancelIntent, OrderIntent
from kalshi_router.journal import SqliteJournal
from kalshi_router.journal.recover import LOST, NEVER_SENT, recover
from kalshi_router.outcome import Accepted, Cancelled, Closed, Unknown
from kalshi_router.pending import Kind, Pending
from kalshi_router.router import OrderRouter
from kalshi_router.sim import FaultConfig, SimServer
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport
from tests.integration.conftest import PRIVATE_PEM, make_signer

TICKER = "KXRECOVER-26DEC31-T50"
SETTLED_NOW = JournalConfig(landing_grace_s=0.0, lookup_timeout_s=1.0)


@pytest.fixture
def journal(tmp_path: Path) -> SqliteJournal:
    return SqliteJournal.open(tmp_path / "journal.sqlite3", exchange="sim")


def intent(key: str) -> OrderIntent:
    return OrderIntent.bid(TICKER, "0.30", 1, client_order_id=key)


def left_open(
    journal: SqliteJournal,
    payload: OrderIntent | CancelIntent | AmendIntent,
    *,
    sent: bool,
) -> None:
    """Journal ``payload`` as the dead process did: taken, and (if ``sent``) sending."""
    loop = asyncio.get_running_loop()
    kind: Kind = "create"
    key = getattr(payload, "client_order_id", "")
    if isinstance(payload, CancelIntent):
        kind, key = "cancel", payload.order_id
    elif isinstance(payload, AmendIntent):
        kind, key = "single", payload.order_id
    pending = Pending(
        kind=kind,
        key=key,
        ticker=payload.ticker,
        payload=payload,
        future=loop.create_future(),
        submitted=loop.time(),
        deadline=loop.time() + 5,
        submitted_wall=time.time(),
        attempts=1,
    )
    journal.taken(pending)
    if sent:
        journal.sending([pending])
    journal.commit()


async def place(client: ExchangeClient, key: str) -> str:
    reply = await client.create_batch([intent(key)])
    outcome = reply.outcomes[key]
    assert isinstance(outcome, Accepted)
    return outcome.order_id


async def test_creates_never_sent_are_closed_and_sent_ones_looked_up(
    journal: SqliteJournal, client: ExchangeClient
) -> None:
    order_id = await place(client, "landed")
    left_open(journal, intent("queued"), sent=False)
    left_open(journal, intent("landed"), sent=True)
    left_open(journal, intent("lost"), sent=True)

    found = await recover(journal, client, SETTLED_NOW)

    assert found.counts == {"closed": 2, "accepted": 1}
    outcomes = {key: journal.find(key) for key in ("queued", "landed", "lost")}
    assert {key: (e.state if e else None) for key, e in outcomes.items()} == dict.fromkeys(
        outcomes, "settled"
    )
    assert outcomes["queued"].outcome == Closed(reason=NEVER_SENT, client_order_id="queued")  # type: ignore[union-attr]
    landed = outcomes["landed"].outcome  # type: ignore[union-attr]
    assert isinstance(landed, Accepted)
    assert landed.order_id == order_id
    assert outcomes["lost"].outcome == Closed(reason=LOST, client_order_id="lost")  # type: ignore[union-attr]
    assert journal.open_entries() == []


async def test_an_order_that_lands_within_the_grace_is_found(
    journal: SqliteJournal, client: ExchangeClient
) -> None:
    left_open(journal, intent("late"), sent=True)
    settings = JournalConfig(landing_grace_s=0.3, lookup_timeout_s=1.0)
    recovering = asyncio.create_task(recover(journal, client, settings))
    # The first lookup finds nothing; the request lands before the grace is over.
    await asyncio.sleep(0.1)
    assert not recovering.done()
    await place(client, "late")
    found = await recovering
    assert found.counts == {"accepted": 1}


async def test_lookups_that_keep_failing_settle_unknown(
    journal: SqliteJournal, client: ExchangeClient, sim: SimServer
) -> None:
    sim.state.faults.configure(FaultConfig(error_500_rate=1.0, paths=["GET /portfolio/orders"]))
    left_open(journal, intent("unsure"), sent=True)
    settings = JournalConfig(landing_grace_s=0.0, lookup_timeout_s=0.2)
    found = await recover(journal, client, settings)
    entry = journal.find("unsure")
    assert entry is not None
    assert isinstance(entry.outcome, Unknown)
    assert entry.outcome.reason.startswith("could not look it up at the exchange after restart")
    assert entry.unresolved
    assert found.counts == {"unknown": 1}


async def test_cancels_and_amends_that_were_sending(
    journal: SqliteJournal, client: ExchangeClient
) -> None:
    gone_id, resting_id, amended_id = [await place(client, key) for key in ("c1", "c2", "c3")]
    reply = await client.cancel_batch([CancelIntent(order_id=gone_id, ticker=TICKER)])
    assert isinstance(reply.outcomes[gone_id], Cancelled)
    left_open(journal, CancelIntent(order_id=gone_id, ticker=TICKER), sent=True)
    left_open(journal, CancelIntent(order_id=resting_id, ticker=TICKER), sent=True)
    left_open(journal, CancelIntent(order_id="no-such-order", ticker=TICKER), sent=True)
    amend = AmendIntent(
        order_id=amended_id, ticker=TICKER, side="bid", price=Decimal("0.31"), count=Decimal(2)
    )
    left_open(journal, amend, sent=True)

    await recover(journal, client, SETTLED_NOW)

    def outcome(key: str) -> object:
        entry = journal.find(key)
        assert entry is not None
        return entry.outcome

    cancelled = outcome(gone_id)
    assert isinstance(cancelled, Cancelled)
    assert (cancelled.order_id, cancelled.client_order_id) == (gone_id, "c1")
    still = outcome(resting_id)
    assert isinstance(still, Closed)
    assert "still resting" in still.reason
    missing = outcome("no-such-order")
    assert isinstance(missing, Closed)
    assert "no such order" in missing.reason
    unsure = outcome(amended_id)
    assert isinstance(unsure, Unknown)
    assert "the order is resting" in unsure.reason


def everything_in(directory: Path) -> bytes:
    """The journal's files (database, WAL, shared memory, lock), end to end."""
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


async def test_the_private_key_never_reaches_the_journal(
    tmp_path: Path, sim: SimServer, journal: SqliteJournal
) -> None:
    transport = HttpTransport(sim.url, make_signer(), timeout_s=5)
    client = ExchangeClient(transport, dialect_for("v2"))
    router = OrderRouter(client, RouterConfig(), journal=journal, owns_transport=True)
    async with router:
        outcomes = await asyncio.gather(*(router.place(intent(f"k{i}")) for i in range(30)))
    assert all(isinstance(o, Accepted) for o in outcomes)
    journal.close()
    stored = everything_in(tmp_path)
    assert b"k29" in stored  # the journal did record the intents
    key = serialization.load_pem_private_key(PRIVATE_PEM, password=None)
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    body = b"".join(PRIVATE_PEM.splitlines()[1:-1])
    for secret in (der, base64.b64encode(der), body, PRIVATE_PEM):
        assert secret not in stored
