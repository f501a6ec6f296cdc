"""Signature and timestamp checks, through HTTP."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from kalshi_router.sim.app import PREFIX

from .conftest import MakeSim, Sim, TestKey

LIMITS = "/account/limits"


def _details(reason: str) -> str:
    return f"rpc error: code = Unauthenticated desc = {reason}"


async def _send(sim: Sim, headers: dict[str, str], path: str = LIMITS) -> tuple[int, Any]:
    async with sim.client.get(PREFIX + path, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_rsa_signature_accepted(sim: Sim) -> None:
    status, body = await sim.call("GET", LIMITS)
    assert status == 200, body


async def test_ed25519_signature_accepted(sim: Sim, ed_key: TestKey) -> None:
    status, body = await sim.call("GET", LIMITS, key=ed_key)
    assert status == 200, body


async def test_the_key_acts_for_its_user(sim: Sim, ed_key: TestKey) -> None:
    await sim.create("mine")
    status, body = await sim.call("GET", "/portfolio/orders", key=ed_key)
    assert (status, body["orders"]) == (200, [])
    status, body = await sim.call("GET", "/portfolio/orders")
    assert [o["user_id"] for o in body["orders"]] == ["alice"]


# Each case turns (key, now_ms) into headers that must be refused, and the desc expected.
HeaderCase = Callable[[TestKey, int], dict[str, str]]


def _case_wrong_key(key: TestKey, now: int) -> dict[str, str]:
    other = TestKey(key.key_id, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return other.headers("GET", PREFIX + LIMITS, now)


def _case_unprefixed_path(key: TestKey, now: int) -> dict[str, str]:
    return key.headers("GET", LIMITS, now)


def _case_query_signed(key: TestKey, now: int) -> dict[str, str]:
    return key.headers("GET", PREFIX + LIMITS + "?limit=5", now)


def _case_wrong_method(key: TestKey, now: int) -> dict[str, str]:
    return key.headers("POST", PREFIX + LIMITS, now)


def _case_lowercase_method(key: TestKey, now: int) -> dict[str, str]:
    return key.headers("get", PREFIX + LIMITS, now)


def _case_max_length_salt(key: TestKey, now: int) -> dict[str, str]:
    assert isinstance(key.private, rsa.RSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    raw = key.private.sign(f"{now}GET{PREFIX}{LIMITS}".encode(), pss, hashes.SHA256())
    headers = key.headers("GET", PREFIX + LIMITS, now)
    headers["KALSHI-ACCESS-SIGNATURE"] = base64.b64encode(raw).decode()
    return headers


def _case_bad_base64(key: TestKey, now: int) -> dict[str, str]:
    headers = key.headers("GET", PREFIX + LIMITS, now)
    headers["KALSHI-ACCESS-SIGNATURE"] = "not base64!"
    return headers


def _case_urlsafe_base64(key: TestKey, now: int) -> dict[str, str]:
    headers = key.headers("GET", PREFIX + LIMITS, now)
    raw = base64.b64decode(headers["KALSHI-ACCESS-SIGNATURE"])
    headers["KALSHI-ACCESS-SIGNATURE"] = base64.urlsafe_b64encode(raw).decode()
    return headers


@pytest.mark.parametrize(
    "case",
    [
        _case_wrong_key,
        _case_unprefixed_path,
        _case_query_signed,
        _case_wrong_method,
        _case_lowercase_method,
        _case_max_length_salt,
        _case_bad_base64,
    ],
)
async def test_bad_signatures_are_refused(sim: Sim, case: HeaderCase) -> None:
    status, body = await _send(sim, case(sim.key, sim.clock()))
    assert status == 401
    assert body == {
        "error": {
            "code": "authentication_error",
            "message": "authentication_error",
            "details": _details("INCORRECT_API_KEY_SIGNATURE"),
        }
    }


async def test_urlsafe_base64_is_refused(sim: Sim) -> None:
    headers = _case_urlsafe_base64(sim.key, sim.clock())
    signature = headers["KALSHI-ACCESS-SIGNATURE"]
    # A 256-byte signature without "+" or "/" is a 1-in-50,000 event; it would then be valid.
    status, _ = await _send(sim, headers)
    assert status == (401 if "-" in signature or "_" in signature else 200)


async def test_signing_the_path_with_the_query_stripped_passes(sim: Sim) -> None:
    # The client signs the path alone and sends the query: that is the documented way.
    status, _ = await sim.call("GET", "/portfolio/orders", params={"limit": "5"})
    assert status == 200


@pytest.mark.parametrize(
    ("offset_ms", "ok"),
    [(-10_000, True), (10_000, True), (-10_001, False), (10_001, False), (-3_600_000, False)],
)
async def test_timestamp_window(sim: Sim, offset_ms: int, ok: bool) -> None:
    headers = sim.key.headers("GET", PREFIX + LIMITS, sim.clock() + offset_ms)
    status, body = await _send(sim, headers)
    if ok:
        assert status == 200
    else:
        assert (status, body) == (
            401,
            {
                "error": {
                    "code": "authentication_error",
                    "message": "authentication_error",
                    "details": _details("TIMESTAMP_OUT_OF_RANGE"),
                }
            },
        )


async def test_seconds_instead_of_milliseconds_is_refused(sim: Sim) -> None:
    seconds = sim.clock() // 1000
    status, body = await _send(sim, sim.key.headers("GET", PREFIX + LIMITS, seconds))
    assert status == 401
    assert body["error"]["details"] == _details("TIMESTAMP_OUT_OF_RANGE")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: h.pop("KALSHI-ACCESS-KEY"), "MISSING_AUTH_HEADERS"),
        (lambda h: h.pop("KALSHI-ACCESS-TIMESTAMP"), "MISSING_AUTH_HEADERS"),
        (lambda h: h.pop("KALSHI-ACCESS-SIGNATURE"), "MISSING_AUTH_HEADERS"),
        (lambda h: h.update({"KALSHI-ACCESS-KEY": "nobody"}), "INCORRECT_API_KEY"),
        (lambda h: h.update({"KALSHI-ACCESS-TIMESTAMP": "1.7e12"}), "INVALID_TIMESTAMP"),
        (lambda h: h.update({"KALSHI-ACCESS-TIMESTAMP": "-1"}), "INVALID_TIMESTAMP"),
    ],
)
async def test_header_problems(
    sim: Sim, mutate: Callable[[dict[str, str]], object], reason: str
) -> None:
    headers = sim.key.headers("GET", PREFIX + LIMITS, sim.clock())
    mutate(headers)
    status, body = await _send(sim, headers)
    assert status == 401
    assert body["error"]["details"] == _details(reason)


async def test_order_endpoints_need_auth(sim: Sim) -> None:
    status, body = await sim.call("POST", "/portfolio/events/orders/batched", json={}, signed=False)
    assert status == 401
    assert body["error"]["code"] == "authentication_error"
    assert sim.state.exchange.orders("alice") == []


async def test_public_endpoints_need_no_auth(sim: Sim) -> None:
    for path in ("/exchange/status", "/account/endpoint_costs"):
        status, _ = await sim.call("GET", path, signed=False)
        assert status == 200


async def test_keys_from_config_inline_and_from_file(make_sim: MakeSim, tmp_path: Path) -> None:
    rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # A PKCS#1 "RSA PUBLIC KEY" file, as some tooling writes.
    pkcs1 = rsa_private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    (tmp_path / "rsa.pem").write_bytes(pkcs1)
    ed = TestKey("file-ed", ed25519.Ed25519PrivateKey.generate())
    sim = await make_sim(
        api_keys=[
            {"key_id": "file-rsa", "public_key_path": str(tmp_path / "rsa.pem")},
            {"key_id": "file-ed", "public_key_pem": ed.public_pem(), "user_id": "carol"},
        ]
    )
    for key in (TestKey("file-rsa", rsa_private), ed):
        status, _ = await sim.call("GET", LIMITS, key=key)
        assert status == 200
