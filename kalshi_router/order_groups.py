"""Kalshi's order groups, managed by the router: its own fill limiter on the exchange's side.

A group caps the contracts its orders match over a rolling 15 s; when the cap is reached the
exchange cancels the group's orders and refuses new ones until the group is reset. An order
joins a group through ``OrderIntent.order_group_id``; ``group_for`` gives each service client
a group of its own, so that one runaway client trips only its own.

Every call that changes something pays its tokens from the router's write budget before it is
sent (``WriteBudget.spend``), at the cost the account's ``GET /account/endpoint_costs`` gives
(``wire.groups.group_costs``; ``discover_budget`` reads them into ``Budget.group_costs``), so
group calls and batches share one bucket and neither earns the other a 429. The lane kind
says what a call does to risk: trigger, delete and cancel-all stop trading and spend as
``cancel`` (a budget that keeps a reserve for cancels lets them use it); create, reset and a
new limit (which may loosen the cap) let trading go on and spend as ``create``. The two reads
go to the read bucket, paced by ``reads`` when given.

Nothing is retried: a create sent twice makes two groups. A 429 tells the budget
(``rate_limited``); a request that certainly never left gets its tokens back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Literal, TypeVar

from aiolimiter import AsyncLimiter

from kalshi_router.budget.protocol import WriteBudget
from kalshi_router.errors import ExchangeError, IntentError, TransportError
from kalshi_router.wire.group_calls import OrderGroupCalls
from kalshi_router.wire.groups import (
    GetOrderGroupResponse,
    GroupCall,
    OrderGroup,
    group_costs,
    limit_fp,
)

__all__ = ["OrderGroups"]

T = TypeVar("T")
Lane = Literal["create", "cancel"]
# What each write does to risk, as the module docstring says.
LANES: Mapping[GroupCall, Lane] = MappingProxyType(
    {
        "create": "create",
        "reset": "create",
        "limit": "create",
        "trigger": "cancel",
        "delete": "cancel",
        "cancel_all": "cancel",
    }
)


def _group_id(order_group_id: str) -> str:
    if not isinstance(order_group_id, str) or not order_group_id:
        raise IntentError("order_group_id", "must be a non-empty str")
    return order_group_id


class OrderGroups:
    """The router's order-group calls: ``client``'s, paid from ``budget`` at ``costs``
    (tokens per call, ``Budget.group_costs``; missing calls cost the documented amounts)."""

    def __init__(
        self,
        client: OrderGroupCalls,
        budget: WriteBudget,
        costs: Mapping[GroupCall, int] | None = None,
        *,
        reads: AsyncLimiter | None = None,
    ) -> None:
        self._client = client
        self._budget = budget
        self._costs = group_costs(None) | dict(costs or {})
        self._reads = reads
        self._by_client: dict[str, str] = {}
        self._lock = asyncio.Lock()

    @property
    def costs(self) -> Mapping[GroupCall, int]:
        return MappingProxyType(self._costs)

    @property
    def by_client(self) -> Mapping[str, str]:
        """Each service client's group id (``group_for``)."""
        return MappingProxyType(self._by_client)

    # -- the exchange's calls ---------------------------------------------------------------

    async def create_order_group(
        self,
        contracts_limit: Decimal | int,
        *,
        subaccount: int | None = None,
        exchange_index: int | None = None,
    ) -> str:
        """A new group whose orders may match ``contracts_limit`` contracts per rolling 15 s;
        its id."""
        limit_fp(contracts_limit)  # refused before a token is spent
        return await self._write(
            "create",
            lambda: self._client.create_order_group(contracts_limit, subaccount, exchange_index),
        )

    async def get_order_group(
        self, order_group_id: str, *, subaccount: int | None = None
    ) -> GetOrderGroupResponse | None:
        """The group's limit and order ids; None if the exchange has no such group."""
        group_id = _group_id(order_group_id)
        await self._read("get")
        return await self._client.get_order_group(group_id, subaccount)

    async def list_order_groups(self, *, subaccount: int | None = None) -> list[OrderGroup]:
        await self._read("list")
        return await self._client.list_order_groups(subaccount)

    async def trigger_order_group(
        self,
        order_group_id: str,
        *,
        subaccount: int | None = None,
        exchange_index: int | None = None,
    ) -> None:
        """Cancel the group's orders and refuse new ones until it is reset."""
        group_id = _group_id(order_group_id)
        await self._write(
            "trigger",
            lambda: self._client.trigger_order_group(group_id, subaccount, exchange_index),
        )

    async def reset_order_group(
        self,
        order_group_id: str,
        *,
        subaccount: int | None = None,
        exchange_index: int | None = None,
    ) -> None:
        """Zero the group's matched count and let its orders in again."""
        group_id = _group_id(order_group_id)
        await self._write(
            "reset",
            lambda: self._client.reset_order_group(group_id, subaccount, exchange_index),
        )

    async def update_order_group_limit(
        self,
        order_group_id: str,
        contracts_limit: Decimal | int,
        *,
        subaccount: int | None = None,
        exchange_index: int | None = None,
    ) -> None:
        """A new limit; one the window has already reached triggers the group at once."""
        group_id = _group_id(order_group_id)
        limit_fp(contracts_limit)
        await self._write(
            "limit",
            lambda: self._client.update_order_group_limit(
                group_id, contracts_limit, subaccount, exchange_index
            ),
        )

    async def delete_order_group(
        self,
        order_group_id: str,
        *,
        subaccount: int | None = None,
        exchange_index: int | None = None,
    ) -> None:
        """Cancel the group's orders and remove it for good."""
        group_id = _group_id(order_group_id)
        await self._write(
            "delete",
            lambda: self._client.delete_order_group(group_id, subaccount, exchange_index),
        )
        self._by_client = {c: g for c, g in self._by_client.items() if g != group_id}

    async def cancel_all(self, *, subaccount: int | None = None) -> None:
        """Cancel every resting order (of ``subaccount`` if given). Kalshi: "Newly placed
        orders may also be cancelled during the minute after the request"."""
        await self._write("cancel_all", lambda: self._client.cancel_all(subaccount))

    # -- a group per service client ----------------------------------------------------------

    async def group_for(
        self, client: str, contracts_limit: Decimal | int, *, subaccount: int | None = None
    ) -> str:
        """``client``'s own group, created at ``contracts_limit`` on first use; later calls
        return the same id whatever limit they name (change it with
        ``update_order_group_limit``). Concurrent first calls make one group."""
        async with self._lock:
            found = self._by_client.get(client)
            if found is None:
                found = await self.create_order_group(contracts_limit, subaccount=subaccount)
                self._by_client[client] = found
            return found

    async def release(self, client: str, *, subaccount: int | None = None) -> None:
        """Delete ``client``'s group (cancelling its orders) and forget it; a group the
        exchange no longer has is forgotten all the same."""
        async with self._lock:
            group_id = self._by_client.get(client)
            if group_id is None:
                return
            try:
                await self.delete_order_group(group_id, subaccount=subaccount)
            except ExchangeError as exc:
                if exc.status != 404:
                    raise
            self._by_client.pop(client, None)

    # -- paying ------------------------------------------------------------------------------

    async def _write(self, call: GroupCall, send: Callable[[], Awaitable[T]]) -> T:
        kind, cost = LANES[call], self._costs[call]
        await self._budget.spend(kind, cost)
        try:
            return await send()
        except TransportError as exc:
            if not exc.sent:
                # Refused at connect: the exchange never saw it, nor charged it.
                self._budget.refund(kind, cost)
            raise
        except ExchangeError as exc:
            if exc.status == 429:
                self._budget.rate_limited()
            raise

    async def _read(self, call: GroupCall) -> None:
        if self._reads is not None:
            # A bucket smaller than the cost would refuse it outright: take what it holds.
            await self._reads.acquire(min(self._costs[call], self._reads.max_rate))
