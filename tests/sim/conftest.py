"""Fixtures for the simulator tests: keys and a test-only signer, a fake clock, a signed client
on loopback, and validators for Kalshi's published schemas."""

from __future__ import annotations

import base64
import copy
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from kalshi_router.sim import SimConfig, build_app
from kalshi_router.sim.app import PREFIX, SIM_STATE
from kalshi_router.sim.state import SimState

SPEC_PATH = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "spec"
    / "kalshi-openapi-3.31.0-orders.yaml"
)
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
            stack.callback(state.close)
            return Sim(client, state, clock, rsa_key)

        yield start


@pytest.fixture
async def sim(make_sim: MakeSim) -> Sim:
    """A Basic-tier sim with default settings."""
    return await make_sim()


# --- the published schemas -------------------------------------------------------------------


def _loadable(node: Any) -> Any:
    """The spec made checkable, and stricter where that catches our mistakes.

    OpenAPI 3.0 ignores keywords beside a ``$ref``, and a ``nullable`` beside ``allOf`` does
    not reach the referenced schema's ``type``; so "nullable reference" becomes "the reference,
    or null". Unknown properties are forbidden, so that a misspelt field fails.
    """
    if isinstance(node, list):
        return [_loadable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _loadable(v) for k, v in node.items()}
    if out.get("nullable") and ("$ref" in out or "allOf" in out):
        inner = {"$ref": out["$ref"]} if "$ref" in out else {"allOf": out["allOf"]}
        return {"anyOf": [inner, {"enum": [None]}]}
    if "$ref" in out and len(out) > 1:
        return {"$ref": out["$ref"]}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


class SpecChecker:
    """Validates bodies against components/schemas of the 3.31.0 extract."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.components = _loadable(copy.deepcopy(spec["components"]))

    def check(self, schema_name: str, body: Any) -> None:
        OAS30Validator(
            {"$ref": f"#/components/schemas/{schema_name}", "components": self.components},
            format_checker=oas30_format_checker,
        ).validate(body)

    def check_error(self, body: Any) -> None:
        """Kalshi's HTTP error envelope: ``{"error": ErrorResponse}``."""
        assert set(body) == {"error"}
        self.check("ErrorResponse", body["error"])
        assert set(body["error"]) == {"code", "message", "details"}


@pytest.fixture(scope="session")
def spec() -> SpecChecker:
    if not SPEC_PATH.is_file():
        reason = f"Kalshi's OpenAPI extract is missing at {SPEC_PATH}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return SpecChecker(yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")))
