"""What the halt does to the creates the router holds (``controls.close_queued_creates``): the
queued ones are settled, those on the wire keep going, and the count it returns is what the
kill switch reports as ``creates_closed``; and how the kill switch waits for those on the wire
(``RouterKillTarget.creates_settled``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest

from kalshi_router.accumulator import Accumulator
from kalshi_router.controls import Live, RouterKillTarget, close_queued_creates
from kalshi_router.outcome import Closed, Outcome, Unknown
from kalshi_router.pending import Pending
from tests.fakes import TICKER
from tests.pendings import walked


def create(key: str) -> Pending:
    return Pending(
        kind="create",
        key=key,
        ticker=TICKER,
        payload=None,
        future=asyncio.get_running_loop().create_future(),
        submitted=0.0,
        deadline=100.0,
    )


def held() -> tuple[Accumulator, Live, Pending, Pending, Pending]:
    """Three creates: one queued, never sent; one sent, its answer lost, waiting for its
    resend; one on the wire."""
    queue = Accumulator(capacity=10)
    fresh = create("fresh")
    queue.push(fresh)
    resend = walked(create("resend"), "sending", maybe_placed=True)
    queue.push_retry(resend, not_before=1.0)
    wire = walked(create("wire"), "sending")
    live: Live = {("create", p.key): p for p in (fresh, resend, wire)}
    return queue, live, fresh, resend, wire


def settle_into(outcomes: dict[str, Outcome]) -> Callable[[Pending, Outcome], None]:
    def settle(pending: Pending, outcome: Outcome) -> None:
        pending.move("settled")
        outcomes[pending.key] = outcome

    return settle


async def test_queued_creates_are_settled_and_those_on_the_wire_keep_going() -> None:
    queue, live, _, _, wire = held()
    outcomes: dict[str, Outcome] = {}
    close_queued_creates(queue, live, settle_into(outcomes), "halted")
    assert isinstance(outcomes["fresh"], Closed)
    # Its first attempt may be at the exchange: not "closed, never sent".
    assert isinstance(outcomes["resend"], Unknown)
    assert "wire" not in outcomes
    assert wire.state == "sending"
    assert len(queue) == 0


async def test_the_count_is_of_creates_closed_never_sent() -> None:
    queue, live, *_ = held()
    outcomes: dict[str, Outcome] = {}
    closed = close_queued_creates(queue, live, settle_into(outcomes), "halted")
    # KillReport.creates_closed: "Queued creates settled closed, never sent".
    assert closed == sum(isinstance(o, Closed) for o in outcomes.values()) == 1


async def test_waiting_for_creates_on_the_wire_does_not_spin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wire = walked(create("wire"), "sending")
    live: Live = {("create", wire.key): wire}
    # Its caller gave up on it; the router keeps it live until its answer, 0.1 s from now.
    wire.future.cancel()
    asyncio.get_running_loop().call_later(0.1, live.clear)
    waits = 0
    wait = asyncio.wait

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal waits
        waits += 1
        return await wait(*args, **kwargs)

    monkeypatch.setattr(asyncio, "wait", counted)
    nothing = cast(Any, None)
    target = RouterKillTarget(nothing, nothing, nothing, live, nothing, None)
    await asyncio.wait_for(target.creates_settled(), 5)
    # A wait that returns at once, turn after turn, is a busy loop: a core for the duration.
    assert waits <= 5, f"{waits} waits in 0.1 s"
