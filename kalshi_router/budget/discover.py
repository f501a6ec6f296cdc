"""What the account's buckets and costs are: read from the exchange at start, config wins.

``GET /account/limits`` gives the write bucket (refill rate, capacity) and the read rate,
``GET /account/endpoint_costs`` the tokens per order and per order-group call (and cancel-all);
a ``[limits]`` value that is set replaces what was read. A read that fails falls back on the
config (limits) or the dialect's and the spec's defaults (costs), except a 401 or 403, which no
fallback mends.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from kalshi_router.config import LimitsConfig
from kalshi_router.errors import WireError
from kalshi_router.wire.client import ExchangeClient, credentials_refused
from kalshi_router.wire.groups import GroupCall, group_costs

log = logging.getLogger("kalshi_router.budget")


class Budget:
    """What the router learned (or was told) about the account's buckets and costs:
    ``costs`` per created, cancelled and single order; ``group_costs`` per order-group call
    and cancel-all (``kalshi_router.order_groups``), the documented ones unless given."""

    def __init__(
        self,
        write_rate: int,
        write_capacity: int,
        read_rate: int,
        costs: dict[str, int],
        group_costs: Mapping[GroupCall, int] | None = None,
    ) -> None:
        self.write_rate = write_rate
        self.write_capacity = write_capacity
        self.read_rate = read_rate
        self.costs = costs
        self.group_costs: dict[GroupCall, int] = _documented() | dict(group_costs or {})


def _documented() -> dict[GroupCall, int]:
    return group_costs(None)


def _refused(client: ExchangeClient, request: str, exc: WireError) -> None:
    """A 401 or 403 is fatal: the configured limits could start the router, but every order
    would then be refused for the same reason."""
    refused = credentials_refused(exc, request, getattr(client.transport, "base_url", ""))
    if refused is not None:
        raise refused from None


async def discover_budget(client: ExchangeClient, limits: LimitsConfig) -> Budget:
    """Read the account's limits and costs; config values that are set win.

    Raises ``CredentialsRefused`` when either read is answered 401 or 403."""
    rate, capacity, read_rate = limits.write_refill_rate, limits.write_bucket_capacity, 0
    try:
        account = await client.get_limits()
        rate = rate or account.write.refill_rate
        capacity = capacity or account.write.bucket_capacity
        read_rate = account.read.refill_rate
    except WireError as exc:
        _refused(client, "GET /account/limits", exc)
        if not (rate and capacity):
            raise WireError(
                f"cannot read GET /account/limits ({exc}); set limits.write_refill_rate and "
                "limits.write_bucket_capacity in the config"
            ) from None
        log.warning("using configured write limits: GET /account/limits failed: %s", exc)
    try:
        table = await client.get_endpoint_costs()
        costs = client.dialect.costs(table)
        groups = group_costs(table)
    except WireError as exc:
        _refused(client, "GET /account/endpoint_costs", exc)
        log.warning("using default costs: GET /account/endpoint_costs failed: %s", exc)
        costs = client.dialect.costs(None)
        groups = group_costs(None)
    if limits.create_cost:
        costs["create"] = limits.create_cost
    if limits.cancel_cost:
        costs["cancel"] = limits.cancel_cost
    return Budget(rate, capacity, read_rate or rate, costs, groups)
