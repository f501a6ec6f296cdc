"""Tokens paid for intents that leave the queue while their batch waits for the rest: given back,
and nothing is sent for a batch left empty. Virtual time at Basic (100 tokens/s, bucket 100,
headroom 5): a create costs 10, a cancel 2."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.fakes import (
    TICKER,
    ScriptedClient,
    VirtualClock,
    account_limits,
    kinds,
    make_router,
    orders,
    timeline,
)
from tests.fakes import clock_fixture as clock_fixture


@pytest.mark.parametrize("leaving", ["expire", "cancelled by caller"])
@pytest.mark.parametrize("left", [0, 2])
async def test_a_cancel_batch_waiting_for_tokens_gives_back_what_left_the_queue(
    clock: VirtualClock, leaving: str, left: int
) -> None:
    client = ScriptedClient(limits=account_limits(100, 100))
    async with make_router(client) as router:
        creates = [router.submit(intent) for intent in orders("a", 9)]  # 90 of 95 tokens
        await clock.sleep_until(0.001)
        # Three cancels cost 6 tokens; the bucket holds 5.1: they wait until 0.01 s.
        staying = [router.cancel(f"ord-{i}", TICKER) for i in range(left)]
        going: list[asyncio.Future[Any]] = [
            router.cancel(f"gone-{i}", TICKER, deadline_s=0.005) for i in range(3 - left)
        ]
        await clock.sleep_until(0.003)
        if leaving == "cancelled by caller":
            for future in going:
                future.cancel()
        await asyncio.gather(*creates, *staying, *going, return_exceptions=True)
        stats = router.stats()
    sent_cancels = [(keys, at) for kind, keys, at in timeline(client, clock) if kind == "cancel"]
    assert sent_cancels == ([([f"ord-{i}" for i in range(left)], 0.01)] if left else [])
    assert kinds(staying) == ["Cancelled"] * left
    if leaving == "expire":
        assert kinds(going) == ["Expired"] * (3 - left)
    else:
        assert all(future.cancelled() for future in going)
    # Only what went out is paid for: the tokens taken for the rest were given back.
    assert stats.tokens_spent == 90 + 2 * left
