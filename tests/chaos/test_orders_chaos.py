"""The order tracker through WebSocket and REST faults: the router's final view of every order,
fill and position equals the simulator's books, embedded and through ``serve``
(``KALSHI_ROUTER_CHAOS_LONG=1`` runs it longer)."""

from __future__ import annotations

import pytest

from tests.chaos.orders_chaos import run
from tests.long import is_long

SECONDS = 20.0 if is_long("CHAOS") else 2.0


# The suite runs one seed each way (it must stay fast); the long mode adds a seed.
CASES = [(1, False), (2, False), (3, True)] if is_long("CHAOS") else [(1, False), (3, True)]


@pytest.mark.parametrize(("seed", "through_service"), CASES, ids=lambda v: str(v))
async def test_the_routers_view_of_its_orders_equals_the_exchanges(
    seed: int, through_service: bool
) -> None:
    record = await run(seed, SECONDS, through_service=through_service)
    print(record.line())
    assert record.mismatches == []
    # The run did what it is for: frames were lost, the socket dropped, fills happened.
    assert record.fills > 0
    assert record.ws.get("frames_dropped", 0) > 0
    assert record.reconnects > 0
    assert record.found_by_rest > 0
    assert record.unknown > 0
