"""A key the exchange refuses (401 or 403) stops the router at start, with what to check.

Regression (issue 11): a wrong key was answered 401 on ``GET /account/limits`` and the router
said to set the limits in the config; doing so started a router whose every order was then
refused ``authentication_error``.
"""

from __future__ import annotations

import pytest

from kalshi_router.config import LimitsConfig
from kalshi_router.errors import CredentialsRefused
from kalshi_router.router import OrderRouter
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.signer import Signer, generate_key, load_private_key
from tests.integration.conftest import KEY_ID, PRIVATE_PEM, MakeSim

OTHER_PRIVATE_PEM = generate_key("ed25519")[0]
VARIABLES = ("KALSHI_API_KEY_ID", "KALSHI_PRIVATE_KEY", "KALSHI_PRIVATE_KEY_PATH")
# What a user was told to do before; it must not get a router started any more.
CONFIGURED = LimitsConfig(write_refill_rate=100, write_bucket_capacity=100)


def assert_says_what_to_check(error: CredentialsRefused, *, values: list[str]) -> None:
    message = str(error)
    assert "\n" not in message
    for name in VARIABLES:
        assert name in message
    assert "demo and production keys are not interchangeable" in message
    assert "limits.write_refill_rate" not in message
    for value in values:
        assert value not in message


@pytest.mark.parametrize(
    ("key_id", "pem", "cause"),
    [
        pytest.param("no-such-key", PRIVATE_PEM, "INCORRECT_API_KEY", id="unknown-key-id"),
        pytest.param(
            KEY_ID, OTHER_PRIVATE_PEM, "INCORRECT_API_KEY_SIGNATURE", id="right-id-wrong-key"
        ),
    ],
)
@pytest.mark.parametrize("limits", [LimitsConfig(), CONFIGURED], ids=["read", "configured"])
async def test_a_refused_key_stops_the_router_at_start(
    make_sim: MakeSim, key_id: str, pem: bytes, cause: str, limits: LimitsConfig
) -> None:
    sim = await make_sim()
    transport = HttpTransport(sim.url, Signer(key_id, load_private_key(pem)))
    router = OrderRouter(
        ExchangeClient(transport, dialect_for("v2")), limits=limits, owns_transport=True
    )
    with pytest.raises(CredentialsRefused) as raised:
        async with router:
            pass
    assert raised.value.status == 401
    assert raised.value.request == "GET /account/limits"
    message = str(raised.value)
    assert message.startswith(
        f"GET /account/limits: HTTP 401 (authentication_error: {cause}) from a simulator on "
        f"this machine ({sim.url})"
    )
    assert "does not accept this API key" in message
    assert_says_what_to_check(raised.value, values=[key_id, pem.decode().splitlines()[1]])
