"""What the account allows, read at start: a refused key (401, 403) on either read is fatal and
says what to check; any other failed read falls back on the config or the default costs.
(Through the router, against the simulator: ``tests/integration/test_router_credentials``.)"""

from __future__ import annotations

import pytest

from kalshi_router.budget import discover_budget
from kalshi_router.config import LimitsConfig
from kalshi_router.errors import CredentialsRefused, ExchangeError
from kalshi_router.wire.models import GetAccountApiLimitsResponse, GetAccountEndpointCostsResponse
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
