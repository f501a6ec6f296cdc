"""The dispatcher spends the write budget only through ``WriteBudget``, and every spend names the
lane it pays for: what a shared budget needs to serve cancels before creates. Checked on the
local bucket, recording each call, with intents of every lane competing for a Basic bucket."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import pytest

from kalshi_router.budget import LocalBudget, opening
from kalshi_router.intent import AmendIntent, CancelIntent
from tests.fakes import TICKER, ScriptedClient, VirtualClock, account_limits, make_router, orders
from tests.fakes import clock_fixture as clock_fixture


def recording(charged: Counter[str]) -> type[LocalBudget]:
    """The local bucket, adding up in ``charged`` the tokens each lane pays (less refunds)."""

    class Recording(LocalBudget):
        async def spend_now(self, kind: str, amount: int) -> bool:
            taken = await super().spend_now(kind, amount)
            charged[kind] += amount if taken else 0
            return taken

        async def spend(self, kind: str, amount: int) -> None:
            await super().spend(kind, amount)
            charged[kind] += amount

        def refund(self, kind: str, amount: int) -> None:
            super().refund(kind, amount)
            charged[kind] -= amount

    return Recording


async def test_each_lane_is_charged_what_its_requests_cost(
    clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    charged: Counter[str] = Counter()
    monkeypatch.setattr(opening, "LocalBudget", recording(charged))
    client = ScriptedClient(limits=account_limits(100, 100))
    async with make_router(client) as router:
        creates = router.submit_many(orders("a", 30))
        await asyncio.sleep(0.15)  # creates are waiting for tokens: the rest overtakes them
        cancels = router.cancel_many(
            [CancelIntent(order_id=f"ord-{n}", ticker=TICKER) for n in range(3)]
        )
        amend = router.amend(
            AmendIntent(
                order_id="ord-x", ticker=TICKER, side="bid", price=Decimal("0.4"), count=Decimal(2)
            )
        )
        await asyncio.gather(*creates, *cancels, amend)
        costs = router.budget.costs
        assert router.budget.spent == sum(charged.values())
    sent = Counter(call.kind for call in client.calls for _ in call.payloads)
    assert sent == {"create": 30, "cancel": 3, "single": 1}
    assert charged == {kind: costs[kind] * n for kind, n in sent.items()}
