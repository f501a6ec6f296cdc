"""Fixtures for the simulator tests: keys and a test-only signer, a fake clock, a signed client
on loopback, and validators for Kalshi's published schemas."""

from __future__ import annotations

import asyncio
import base64
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from kalshi_router.sim import SimConfig, build_app
from kalshi_router.sim.app import PREFIX, SIM_STATE
from kalshi_router.sim.state import SimState
from tests.spec_schema import GROUPS_FILE, SPEC_FILE, _components, _spec_paths, require_spec

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class FakeClock:
    """Epoch milliseconds that move only when told to."""

    def __init__(self, start_ms: int = START_MS) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += round(seconds * 1000)


@dataclass(frozen=True)
class TestKey:
    """A private key and its id; signs Kalshi's ``ts + METHOD + path`` text."""

    __test__ = False  # not a test class, despite the name

    key_id: str
    private: PrivateKey

    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, text: str) -> str:
        if isinstance(self.private, rsa.RSAPrivateKey):
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            raw = self.private.sign(text.encode(), pss, hashes.SHA256())
        else:
            raw = self.private.sign(text.encode())
        return base64.b64encode(raw).decode()

    def headers(self, method: str, path: str, ts_ms: int) -> dict[str, str]:
        return {
            "KALSHI-ACCESS-KEY": self.key_id,
            "KALSHI-ACCESS-TIMESTAMP": str(ts_ms),
            "KALSHI-ACCESS-SIGNATURE": self.sign(f"{ts_ms}{method}{path}"),
        }


@pytest.fixture(scope="session")
def rsa_key() -> TestKey:
    return TestKey("rsa-key", rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def ed_key() -> TestKey:
    return TestKey("ed-key", ed25519.Ed25519PrivateKey.generate())


class Sim:
    """A TestClient on the sim, signing as ``key`` with the fake clock's time."""

    def __init__(
        self, client: TestClient[Any, Any], state: SimState, clock: FakeClock, key: TestKey
    ) -> None:
        self.client = client
        self.state = state
        self.clock = clock
        self.key = key

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: bytes | None = None,
        params: dict[str, str] | None = None,
        key: TestKey | None = None,
        signed: bool = True,
    ) -> ClientResponse:
        """Send ``method PREFIX+path``; ``json`` is encoded with msgspec."""
        headers = (key or self.key).headers(method, PREFIX + path, self.clock()) if signed else {}
        data = msgspec.json.encode(json) if json is not None else body
        return await self.client.request(
            method,
            PREFIX + path,
            data=data,
            params=params,
            headers=headers,
        )

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """The status and the decoded JSON body (None when there is none)."""
        async with await self.request(method, path, **kwargs) as resp:
            raw = await resp.read()
            return resp.status, msgspec.json.decode(raw) if raw else None

    async def control(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        """Call a /_sim/ control route (unsigned, outside the API prefix)."""
        data = msgspec.json.encode(json) if json is not None else None
        async with self.client.request(method, path, data=data) as resp:
            return resp.status, msgspec.json.decode(await resp.read())

    async def create(self, coid: str | None = None, **fields: Any) -> tuple[int, Any]:
        """POST a single V2 create of ``order(coid, **fields)``."""
        return await self.call("POST", "/portfolio/events/orders", json=order(coid, **fields))

    async def batch(self, orders: list[dict[str, Any]]) -> tuple[int, Any]:
        return await self.call("POST", "/portfolio/events/orders/batched", json={"orders": orders})


def order(coid: str | None = None, **fields: Any) -> dict[str, Any]:
    """A V2 create body: a resting GTC bid at 0.30 for 1 contract unless overridden."""
    base: dict[str, Any] = {
        "ticker": "SIM-MKT",
        "side": "bid",
        "count": "1",
        "price": "0.30",
        "time_in_force": "good_till_canceled",
        "self_trade_prevention_type": "taker_at_cross",
    }
    if coid is not None:
        base["client_order_id"] = coid
    return base | fields


MakeSim = Callable[..., Awaitable[Sim]]


async def wait_until(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll ``predicate`` until it holds; fail after ``seconds``."""
    for _ in range(round(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    pytest.fail("condition not reached in time")


@pytest.fixture
async def make_sim(rsa_key: TestKey, ed_key: TestKey) -> AsyncIterator[MakeSim]:
    """Start sims on loopback: ``await make_sim(**SimConfig fields)``.

    The RSA key acts for user "alice", the Ed25519 key for "bob".
    """
    async with AsyncExitStack() as stack:

        async def start(*, clock: FakeClock | None = None, **config: Any) -> Sim:
            clock = clock or FakeClock()
            app = build_app(msgspec.convert(config, SimConfig), clock_ms=clock)
            state = app[SIM_STATE]
            state.keys.add(rsa_key.key_id, rsa_key.private.public_key(), "alice")
            state.keys.add(ed_key.key_id, ed_key.private.public_key(), "bob")
            client: TestClient[Any, Any] = TestClient(TestServer(app))
            await stack.enter_async_context(client)
            return Sim(client, state, clock, rsa_key)

        yield start


@pytest.fixture
async def sim(make_sim: MakeSim) -> Sim:
    """A Basic-tier sim with default settings."""
    return await make_sim()


# --- the published schemas -------------------------------------------------------------------


def _forbid_unknown(node: Any) -> Any:
    """Make every object schema refuse properties it does not name, so a misspelt or invented
    response field fails (the spec itself allows extras)."""
    if isinstance(node, list):
        return [_forbid_unknown(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _forbid_unknown(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


class SpecChecker:
    """A 3.31.0 extract (loaded by tests.spec_schema), strict about unknown fields."""

    def __init__(self, spec: Path = SPEC_FILE) -> None:
        self.components = _forbid_unknown(copy.deepcopy(_components(spec)))
        self.paths = _spec_paths(spec)

    def _validate(self, schema: dict[str, Any], body: Any) -> None:
        OAS30Validator(
            schema | {"components": self.components}, format_checker=oas30_format_checker
        ).validate(body)

    def check(self, schema_name: str, body: Any) -> None:
        """``body`` fits components/schemas/<schema_name>."""
        self._validate({"$ref": f"#/components/schemas/{schema_name}"}, body)

    def check_operation(self, path: str, method: str, status: int, body: Any) -> None:
        """``body`` fits what the spec declares for that operation's success answer."""
        response = self.paths[path][method.lower()]["responses"][str(status)]
        self._validate(response["content"]["application/json"]["schema"], body)

    def check_error(self, body: Any) -> None:
        """Kalshi's HTTP error envelope: ``{"error": ErrorResponse}`` with all three fields."""
        assert set(body) == {"error"}
        self.check("ErrorResponse", body["error"])
        assert set(body["error"]) == {"code", "message", "details"}

    def example(self, schema_name: str) -> Any:
        return self.components["schemas"][schema_name]["example"]


@pytest.fixture(scope="session")
def spec() -> SpecChecker:
    require_spec()
    return SpecChecker()


@pytest.fixture(scope="session")
def group_spec() -> SpecChecker:
    """The order-groups extract (``kalshi-openapi-3.31.0-order-groups.yaml``)."""
    require_spec(GROUPS_FILE)
    return SpecChecker(GROUPS_FILE)
