"""The router's order groups (kalshi_router.order_groups): every write pays its cost from the
write budget, in its lane, before its request goes out; reads pay the read bucket; refused
arguments cost nothing; a 429 and a request that never left reach the budget; and each service
client gets one group of its own. On a fake budget and a scripted transport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from aiolimiter import AsyncLimiter

from kalshi_router.errors import ExchangeError, IntentError, TransportError
from kalshi_router.order_groups import LANES, OrderGroups
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.groups import GroupCall, group_costs
from kalshi_router.wire.http import Response
from kalshi_router.wire.v2 import V2Dialect

Log = list[tuple[Any, ...]]


class FakeBudget:
    """Records every spend, refund and 429 into ``log``; a spend waits for ``open``."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.open = asyncio.Event()
        self.open.set()

    async def spend(self, kind: str, amount: int) -> None:
        await self.open.wait()
        self.log.append(("spend", kind, amount))

    def refund(self, kind: str, amount: int) -> None:
        self.log.append(("refund", kind, amount))

    def rate_limited(self) -> None:
        self.log.append(("rate_limited",))


class FakeTransport:
    """Answers each request with the next scripted (status, body) or exception."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.answers: list[tuple[int, Any] | Exception] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Response:
        self.log.append(("request", method, path, dict(params or {})))
        answer = self.answers.pop(0) if self.answers else (200, {})
        if isinstance(answer, Exception):
            raise answer
        status, payload = answer
        return Response(status, b"" if payload is None else msgspec.json.encode(payload), None)

    async def close(self) -> None:
        pass


class RecordingReads(AsyncLimiter):
    def __init__(self, log: Log) -> None:
        super().__init__(100, 1)
        self.log = log

    async def acquire(self, amount: float = 1) -> None:
        self.log.append(("read", amount))
        await super().acquire(amount)


def setup(
    costs: Mapping[GroupCall, int] | None = None, reads: bool = False
) -> tuple[OrderGroups, FakeBudget, FakeTransport, Log]:
    log: Log = []
    budget, transport = FakeBudget(log), FakeTransport(log)
    client = ExchangeClient(transport, V2Dialect())
    limiter = RecordingReads(log) if reads else None
    return OrderGroups(client, budget, costs, reads=limiter), budget, transport, log  # type: ignore[arg-type]


GROUP = "/portfolio/order_groups/g-1"
WRITES: list[
    tuple[GroupCall, Callable[[OrderGroups], Coroutine[Any, Any, object]], str, str, int]
] = [
    ("create", lambda g: g.create_order_group(5), "POST", "/portfolio/order_groups/create", 201),
    ("reset", lambda g: g.reset_order_group("g-1"), "PUT", f"{GROUP}/reset", 200),
    ("limit", lambda g: g.update_order_group_limit("g-1", 3), "PUT", f"{GROUP}/limit", 200),
    ("trigger", lambda g: g.trigger_order_group("g-1"), "PUT", f"{GROUP}/trigger", 200),
    ("delete", lambda g: g.delete_order_group("g-1"), "DELETE", GROUP, 200),
    ("cancel_all", lambda g: g.cancel_all(), "DELETE", "/portfolio/events/orders", 204),
]


@pytest.mark.parametrize(("call", "run", "method", "path", "status"), WRITES)
async def test_each_write_pays_its_lane_before_its_request(
    call: GroupCall,
    run: Callable[[OrderGroups], Coroutine[Any, Any, object]],
    method: str,
    path: str,
    status: int,
) -> None:
    groups, budget, transport, log = setup()
    transport.answers = [(status, {"order_group_id": "g-1"} if status == 201 else None)]
    budget.open.clear()
    task = asyncio.create_task(run(groups))
    await asyncio.sleep(0.01)
    # The budget has not paid yet: nothing has gone out.
    assert log == []
    budget.open.set()
    await task
    cost = group_costs(None)[call]
    assert log == [("spend", LANES[call], cost), ("request", method, path, {})]


def test_trigger_delete_and_cancel_all_are_cancels_the_rest_creates() -> None:
    assert {call for call, lane in LANES.items() if lane == "cancel"} == {
        "trigger",
        "delete",
        "cancel_all",
    }
    assert {call for call, lane in LANES.items() if lane == "create"} == {
        "create",
        "reset",
        "limit",
    }


async def test_costs_are_the_accounts() -> None:
    groups, _, transport, log = setup(costs={"create": 7, "cancel_all": 3})
    transport.answers = [(201, {"order_group_id": "g-9"}), (204, None)]
    assert await groups.create_order_group(Decimal("1.5"), subaccount=2) == "g-9"
    await groups.cancel_all(subaccount=2)
    assert [entry for entry in log if entry[0] == "spend"] == [
        ("spend", "create", 7),
        ("spend", "cancel", 3),
    ]
    # The calls left out of the account's table keep the documented cost.
    assert groups.costs["trigger"] == 10


async def test_reads_pay_the_read_bucket_not_the_write_budget() -> None:
    groups, _, transport, log = setup(costs={"get": 4}, reads=True)
    order_groups = {"order_groups": [{"id": "g-1", "is_auto_cancel_enabled": True}]}
    transport.answers = [(200, order_groups), (404, {"error": {"code": "not_found"}})]
    listed = await groups.list_order_groups(subaccount=1)
    assert [g.id for g in listed] == ["g-1"]
    assert await groups.get_order_group("g-1") is None
    assert log == [
        ("read", 10),
        ("request", "GET", "/portfolio/order_groups", {"subaccount": "1"}),
        ("read", 4),
        ("request", "GET", GROUP, {}),
    ]


@pytest.mark.parametrize(
    "run",
    [
        lambda g: g.create_order_group(Decimal("0.001")),
        lambda g: g.create_order_group(0),
        lambda g: g.update_order_group_limit("g-1", Decimal("-1")),
        lambda g: g.trigger_order_group(""),
        lambda g: g.get_order_group(""),
    ],
)
async def test_bad_arguments_cost_nothing(
    run: Callable[[OrderGroups], Coroutine[Any, Any, object]],
) -> None:
    groups, _, _, log = setup()
    with pytest.raises(IntentError):
        await run(groups)
    assert log == []


async def test_a_429_drains_the_budget_and_is_raised() -> None:
    groups, _, transport, log = setup()
    transport.answers = [(429, {"error": "too many requests"})]
    with pytest.raises(ExchangeError) as info:
        await groups.trigger_order_group("g-1")
    assert info.value.status == 429
    assert log[-1] == ("rate_limited",)


@pytest.mark.parametrize(("sent", "refunded"), [(False, True), (True, False)])
async def test_tokens_come_back_only_when_the_request_never_left(
    sent: bool, refunded: bool
) -> None:
    groups, _, transport, log = setup()
    transport.answers = [TransportError("no", sent=sent)]
    with pytest.raises(TransportError):
        await groups.delete_order_group("g-1")
    assert (("refund", "cancel", 10) in log) is refunded


async def test_each_client_gets_one_group_of_its_own() -> None:
    groups, _, transport, log = setup()
    transport.answers = [(201, {"order_group_id": "g-a"}), (201, {"order_group_id": "g-b"})]
    # Concurrent first calls for one client make one group.
    first = await asyncio.gather(*(groups.group_for("alice", 5) for _ in range(3)))
    assert first == ["g-a"] * 3
    assert await groups.group_for("bob", 2, subaccount=1) == "g-b"
    assert await groups.group_for("alice", 99) == "g-a"
    creates = [e for e in log if e[0] == "request" and e[2].endswith("/create")]
    assert len(creates) == 2
    assert dict(groups.by_client) == {"alice": "g-a", "bob": "g-b"}

    transport.answers = [(200, {}), (404, {"error": {"code": "not_found"}})]
    await groups.release("alice")
    await groups.release("bob", subaccount=1)
    await groups.release("nobody")
    deletes = [e for e in log if e[0] == "request" and e[1] == "DELETE"]
    assert [(e[2], e[3]) for e in deletes] == [
        ("/portfolio/order_groups/g-a", {}),
        ("/portfolio/order_groups/g-b", {"subaccount": "1"}),
    ]
    # Gone at the exchange (404) is forgotten all the same.
    assert dict(groups.by_client) == {}


async def test_a_failed_release_keeps_the_group() -> None:
    groups, _, transport, _ = setup()
    transport.answers = [(201, {"order_group_id": "g-a"}), (500, {"error": {"code": "oops"}})]
    await groups.group_for("alice", 5)
    with pytest.raises(ExchangeError):
        await groups.release("alice")
    assert dict(groups.by_client) == {"alice": "g-a"}


async def test_deleting_a_clients_group_directly_forgets_it() -> None:
    groups, _, transport, _ = setup()
    transport.answers = [(201, {"order_group_id": "g-a"}), (200, {})]
    await groups.group_for("alice", 5)
    await groups.delete_order_group("g-a")
    assert dict(groups.by_client) == {}
