"""What the account allows, read at start: a refused key (401, 403) on either read is fatal and
says what to check; any other failed read falls back on the config or the default costs.
(Through the router, against the simulator: ``tests/integration/test_router_credentials``.)"""

from __future__ import annotations

import pytest

from kalshi_router.budget import Budget, discover_budget
from kalshi_router.config import LimitsConfig
from kalshi_router.errors import CredentialsRefused, ExchangeError
from kalshi_router.wire.groups import ENDPOINTS
from kalshi_router.wire.models import (
    EndpointTokenCost,
    GetAccountApiLimitsResponse,
    GetAccountEndpointCostsResponse,
)
from tests.fakes import ScriptedClient, account_limits
from tests.integration.test_router_credentials import CONFIGURED, assert_says_what_to_check


@pytest.mark.parametrize(
    ("limits", "costs", "request_line"),
    [
        pytest.param(
            ExchangeError(403, "forbidden", "forbidden"),
            None,
            "GET /account/limits",
            id="limits-403",
        ),
        pytest.param(
            account_limits(100, 100),
            ExchangeError(403, "forbidden", "forbidden"),
            "GET /account/endpoint_costs",
            id="costs-403",
        ),
    ],
)
async def test_403_names_a_read_only_key(
    limits: GetAccountApiLimitsResponse | Exception,
    costs: GetAccountEndpointCostsResponse | Exception | None,
    request_line: str,
) -> None:
    client = ScriptedClient(limits=limits, costs=costs)
    with pytest.raises(CredentialsRefused) as raised:
        await discover_budget(client, CONFIGURED)  # type: ignore[arg-type]
    assert raised.value.status == 403
    assert str(raised.value).startswith(f"{request_line}: HTTP 403 (forbidden) from the exchange")
    assert "read-only key" in str(raised.value)
    assert_says_what_to_check(raised.value, values=[])


async def test_401_on_endpoint_costs_is_fatal_too() -> None:
    error = ExchangeError(
        401,
        "authentication_error",
        "authentication_error",
        "rpc error: code = Unauthenticated desc = INCORRECT_API_KEY_SIGNATURE",
    )
    client = ScriptedClient(costs=error)
    with pytest.raises(CredentialsRefused, match=r"^GET /account/endpoint_costs: HTTP 401 \("):
        await discover_budget(client, LimitsConfig())  # type: ignore[arg-type]


async def test_other_read_failures_keep_their_fallbacks() -> None:
    # Not a credentials problem: configured limits and default costs still start the router.
    unavailable = ExchangeError(503, "service_unavailable", "try later")
    client = ScriptedClient(limits=unavailable, costs=unavailable)
    budget = await discover_budget(client, CONFIGURED)  # type: ignore[arg-type]
    assert (budget.write_rate, budget.write_capacity, budget.costs["create"]) == (100, 100, 10)


async def test_order_group_costs_come_from_the_same_table() -> None:
    table = GetAccountEndpointCostsResponse(
        default_cost=12,
        endpoint_costs=[
            EndpointTokenCost("POST", "/trade-api/v2/portfolio/order_groups/create", 7),
            EndpointTokenCost("DELETE", "/portfolio/events/orders", 3),
        ],
    )
    budget = await discover_budget(ScriptedClient(costs=table), CONFIGURED)  # type: ignore[arg-type]
    costs = budget.group_costs
    assert (costs["create"], costs["cancel_all"], costs["trigger"], costs["get"]) == (7, 3, 12, 12)


async def test_order_group_costs_fall_back_on_the_documented_ones() -> None:
    unavailable = ExchangeError(503, "service_unavailable", "try later")
    budget = await discover_budget(ScriptedClient(costs=unavailable), CONFIGURED)  # type: ignore[arg-type]
    assert budget.group_costs == dict.fromkeys(ENDPOINTS, 10) | {"cancel_all": 2}
    # A Budget made by hand (the lead's tests, the service) has them too.
    assert Budget(1, 1, 1, {}).group_costs == budget.group_costs
