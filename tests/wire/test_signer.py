"""Signer: signatures checked independently with the public key; key loading never leaks."""

from __future__ import annotations

import base64
import copy
import logging
import os
import pickle
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.errors import KeyLoadError
from kalshi_router.wire.signer import (
    KeyFileWarning,
    Signer,
    generate_key,
    load_private_key,
)

KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"
TS = 1703123456789
PATH = "/trade-api/v2/portfolio/events/orders/batched"

# Ed25519 is deterministic, so a fixed seed gives a fixed signature (RFC 8032 test 1 key).
ED25519_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
ED25519_KNOWN_SIGNATURE = (
    "caolQIFa1fF7caKRpD82JbF1w9tsbGMzaRudHdnCIwVEkhfFIlzIy4HeCQTeFteU9o8UTOmEvwbutRb9MEJbAA=="
)


def _pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | dsa.DSAPrivateKey,
    fmt: serialization.PrivateFormat,
) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def _dsa_key() -> dsa.DSAPrivateKey:
    """A DSA key, made the one way cryptography still allows (it deprecates DSA). Only making it
    is excused from the warning: loading it must refuse it without any (the test runs with
    ``filterwarnings = error``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return dsa.generate_private_key(2048)


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[bytes, bytes]:
    return generate_key("rsa")


@pytest.fixture(scope="module")
def ed_pair() -> tuple[bytes, bytes]:
    return generate_key("ed25519")


@pytest.fixture(scope="module")
def ed_signer(ed_pair: tuple[bytes, bytes]) -> Signer:
    return Signer(KEY_ID, load_private_key(ed_pair[0]))


def _rsa_public(public_pem: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def _ed_public(public_pem: bytes) -> ed25519.Ed25519PublicKey:
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, ed25519.Ed25519PublicKey)
    return key


def _verify_rsa(public_pem: bytes, signature_b64: str, text: str) -> None:
    # Salt length pinned to 32 bytes (SHA-256 digest length), not AUTO: that is what Kalshi checks.
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = base64.b64decode(signature_b64, validate=True)
    _rsa_public(public_pem).verify(signature, text.encode(), pss, hashes.SHA256())


def _verify_ed(public_pem: bytes, signature_b64: str, text: str) -> None:
    _ed_public(public_pem).verify(base64.b64decode(signature_b64, validate=True), text.encode())


def _key_chunks(pem: bytes) -> list[str]:
    """Every aligned 16-character slice of the PEM body: any leak of a line would contain one."""
    lines = pem.decode().splitlines()
    body = "".join(line for line in lines if not line.startswith("-----"))
    return [body[i : i + 16] for i in range(0, len(body) - 15, 16)] + [
        line for line in lines if line and not line.startswith("-----")
    ]


def _assert_no_key_material(exc: BaseException, pem: bytes) -> None:
    shown = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for chunk in _key_chunks(pem):
        for text in shown:
            assert chunk not in text
    # Nothing chained: the original cryptography exception is not reachable either.
    assert exc.__cause__ is None
    assert exc.__suppress_context__ or exc.__context__ is None


# --- signing ----------------------------------------------------------------------------------


def test_rsa_signature_is_pss_sha256_salt_32(rsa_pair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = rsa_pair
    signer = Signer(KEY_ID, load_private_key(private_pem))
    assert signer.algorithm == "rsa"
    signature = signer.sign(TS, "POST", PATH)
    assert len(base64.b64decode(signature, validate=True)) == 256
    _verify_rsa(public_pem, signature, f"{TS}POST{PATH}")


def test_ed25519_signature_verifies(ed_pair: tuple[bytes, bytes], ed_signer: Signer) -> None:
    assert ed_signer.algorithm == "ed25519"
    _verify_ed(ed_pair[1], ed_signer.sign(TS, "DELETE", PATH), f"{TS}DELETE{PATH}")


def test_ed25519_known_answer() -> None:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(ED25519_SEED)
    text = b"1703123456789GET/trade-api/v2/portfolio/balance"
    independent = base64.b64encode(key.sign(text)).decode()
    signature = Signer(KEY_ID, key).sign(TS, "GET", "/trade-api/v2/portfolio/balance")
    assert signature == independent == ED25519_KNOWN_SIGNATURE


def test_query_is_not_signed(ed_pair: tuple[bytes, bytes], ed_signer: Signer) -> None:
    path = "/trade-api/v2/portfolio/orders"
    signature = ed_signer.sign(TS, "GET", path + "?limit=5&cursor=abc")
    assert signature == ed_signer.sign(TS, "GET", path)
    _verify_ed(ed_pair[1], signature, f"{TS}GET{path}")


def test_rsa_query_is_not_signed(rsa_pair: tuple[bytes, bytes]) -> None:
    signer = Signer(KEY_ID, load_private_key(rsa_pair[0]))
    path = "/trade-api/v2/portfolio/orders"
    _verify_rsa(rsa_pair[1], signer.sign(TS, "GET", path + "?limit=5"), f"{TS}GET{path}")


def test_method_is_uppercased(ed_signer: Signer) -> None:
    assert ed_signer.sign(TS, "delete", PATH) == ed_signer.sign(TS, "DELETE", PATH)


@given(
    method=st.sampled_from(["get", "Post", "DELETE", "put"]),
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz/_-0123456789", max_size=40),
    query=st.text(max_size=20),
    ts=st.integers(min_value=0, max_value=10**13 - 1),
)
def test_signed_text_is_ts_method_path(
    ed_pair: tuple[bytes, bytes], ed_signer: Signer, method: str, path: str, query: str, ts: int
) -> None:
    full = "/trade-api/v2/" + path
    signature = ed_signer.sign(ts, method, f"{full}?{query}")
    _verify_ed(ed_pair[1], signature, f"{ts}{method.upper()}{full}")


def test_headers_use_injected_clock(ed_pair: tuple[bytes, bytes]) -> None:
    signer = Signer(KEY_ID, load_private_key(ed_pair[0]), clock_ms=lambda: TS)
    headers = signer.headers("post", PATH + "?x=1")
    assert headers.keys() == {
        "KALSHI-ACCESS-KEY",
        "KALSHI-ACCESS-TIMESTAMP",
        "KALSHI-ACCESS-SIGNATURE",
    }
    assert headers["KALSHI-ACCESS-KEY"] == KEY_ID
    assert headers["KALSHI-ACCESS-TIMESTAMP"] == str(TS)
    _verify_ed(ed_pair[1], headers["KALSHI-ACCESS-SIGNATURE"], f"{TS}POST{PATH}")


def test_default_timestamp_is_wall_clock_milliseconds(
    ed_pair: tuple[bytes, bytes], ed_signer: Signer
) -> None:
    before = time.time_ns() // 1_000_000
    headers = ed_signer.headers("GET", "/trade-api/v2/portfolio/balance")
    after = time.time_ns() // 1_000_000
    timestamp = headers["KALSHI-ACCESS-TIMESTAMP"]
    assert timestamp.isdigit()
    assert len(timestamp) == 13
    assert before <= int(timestamp) <= after
    _verify_ed(
        ed_pair[1],
        headers["KALSHI-ACCESS-SIGNATURE"],
        f"{timestamp}GET/trade-api/v2/portfolio/balance",
    )


# --- key generation and loading -----------------------------------------------------------------


def test_generate_key_formats(rsa_pair: tuple[bytes, bytes], ed_pair: tuple[bytes, bytes]) -> None:
    assert rsa_pair[0].startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert ed_pair[0].startswith(b"-----BEGIN PRIVATE KEY-----")
    for _, public_pem in (rsa_pair, ed_pair):
        assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert _rsa_public(rsa_pair[1]).key_size == 2048


def test_generate_key_refuses_small_rsa() -> None:
    with pytest.raises(ValueError, match="rsa_bits"):
        generate_key("rsa", rsa_bits=1024)


def test_loads_pkcs1_and_pkcs8(rsa_pair: tuple[bytes, bytes], ed_pair: tuple[bytes, bytes]) -> None:
    pkcs1 = load_private_key(rsa_pair[0])
    assert isinstance(pkcs1, rsa.RSAPrivateKey)
    pkcs8 = _pem(pkcs1, serialization.PrivateFormat.PKCS8)
    assert pkcs8.startswith(b"-----BEGIN PRIVATE KEY-----")
    reloaded = load_private_key(pkcs8)
    assert isinstance(reloaded, rsa.RSAPrivateKey)
    assert reloaded.private_numbers() == pkcs1.private_numbers()
    assert isinstance(load_private_key(ed_pair[0]), ed25519.Ed25519PrivateKey)


def _encrypted_pkcs8(rsa_pem: bytes) -> bytes:
    key = load_private_key(rsa_pem)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"hunter2"),
    )


def _encrypted_pkcs1(rsa_pem: bytes) -> bytes:
    key = load_private_key(rsa_pem)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"hunter2"),
    )


def test_encrypted_keys_are_refused(rsa_pair: tuple[bytes, bytes]) -> None:
    for pem in (_encrypted_pkcs8(rsa_pair[0]), _encrypted_pkcs1(rsa_pair[0])):
        with pytest.raises(KeyLoadError, match="passphrase") as info:
            load_private_key(pem)
        _assert_no_key_material(info.value, pem)


@pytest.mark.parametrize(
    ("make_pem", "reason"),
    [
        pytest.param(
            lambda: _pem(
                ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8
            ),
            "type EC:",
            id="ec",
        ),
        pytest.param(
            lambda: _pem(_dsa_key(), serialization.PrivateFormat.PKCS8),
            "type DSA:",
            id="dsa",
        ),
        pytest.param(
            lambda: _pem(
                rsa.generate_private_key(public_exponent=65537, key_size=1024),
                serialization.PrivateFormat.TraditionalOpenSSL,
            ),
            "1024 bits",
            id="rsa-1024",
        ),
    ],
)
def test_unsupported_keys_are_refused(make_pem: Callable[[], bytes], reason: str) -> None:
    pem = make_pem()
    with pytest.raises(KeyLoadError, match=reason) as info:
        load_private_key(pem)
    _assert_no_key_material(info.value, pem)


def test_garbage_is_refused(rsa_pair: tuple[bytes, bytes]) -> None:
    not_pem = base64.b64encode(os.urandom(600))
    with pytest.raises(KeyLoadError, match="not a PEM") as info:
        load_private_key(not_pem)
    _assert_no_key_material(info.value, b"-----BEGIN X-----\n" + not_pem + b"\n-----END X-----")

    # A real key with its body damaged: parsing fails somewhere inside the DER.
    lines = rsa_pair[0].splitlines()
    damaged = b"\n".join([lines[0], *(line[::-1] for line in lines[1:-1]), lines[-1]])
    with pytest.raises(KeyLoadError, match="could not parse") as info:
        load_private_key(damaged)
    _assert_no_key_material(info.value, damaged)
    _assert_no_key_material(info.value, rsa_pair[0])


def test_signer_refuses_unsupported_key_objects() -> None:
    with pytest.raises(KeyLoadError, match="type EC:"):
        Signer(KEY_ID, ec.generate_private_key(ec.SECP256R1()))  # type: ignore[arg-type]


@pytest.mark.parametrize("key_id", ["", " padded ", "line\nbreak"])
def test_signer_refuses_bad_key_id(ed_pair: tuple[bytes, bytes], key_id: str) -> None:
    with pytest.raises(KeyLoadError, match="key id") as info:
        Signer(key_id, load_private_key(ed_pair[0]))
    if key_id.strip():
        assert key_id.strip() not in str(info.value)


@pytest.mark.parametrize("line", [1, -2])
def test_signer_refuses_a_piece_of_its_key_as_key_id(
    rsa_pair: tuple[bytes, bytes], line: int
) -> None:
    # The key id is sent on every request and shown in reprs and logs.
    piece = rsa_pair[0].decode().splitlines()[line]
    with pytest.raises(KeyLoadError, match="piece of the private key") as info:
        Signer(piece, load_private_key(rsa_pair[0]))
    assert piece not in str(info.value)


def test_half_built_signer_still_has_a_repr() -> None:
    # Error trackers repr the locals of a traceback, a Signer whose __init__ failed included.
    assert repr(Signer.__new__(Signer)) == "Signer(key_id=None, algorithm=None)"


# --- no leaks -----------------------------------------------------------------------------------


def test_repr_has_no_key_material(rsa_pair: tuple[bytes, bytes]) -> None:
    signer = Signer(KEY_ID, load_private_key(rsa_pair[0]))
    assert repr(signer) == f"Signer(key_id='{KEY_ID}', algorithm='rsa')"
    assert str(signer) == repr(signer)
    for chunk in _key_chunks(rsa_pair[0]):
        assert chunk not in repr(signer)


def test_signer_cannot_be_pickled_and_copies_are_itself(ed_signer: Signer) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(ed_signer)
    assert copy.copy(ed_signer) is ed_signer
    assert copy.deepcopy({"s": ed_signer})["s"] is ed_signer


def test_signer_is_read_only(ed_signer: Signer) -> None:
    with pytest.raises(AttributeError):
        ed_signer.extra = 1  # type: ignore[attr-defined]


# --- files and environment ----------------------------------------------------------------------


def _write_key(tmp_path: Path, pem: bytes, mode: int) -> Path:
    path = tmp_path / "kalshi.key"
    path.write_bytes(pem)
    path.chmod(mode)
    return path


def test_from_file_private_mode_is_silent(tmp_path: Path, rsa_pair: tuple[bytes, bytes]) -> None:
    path = _write_key(tmp_path, rsa_pair[0], 0o600)
    signer = Signer.from_file(KEY_ID, path)
    assert signer.algorithm == "rsa"
    assert signer.key_id == KEY_ID


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_from_file_readable_by_others_warns(
    tmp_path: Path, ed_pair: tuple[bytes, bytes], caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    path = _write_key(tmp_path, ed_pair[0], mode)
    with (
        caplog.at_level(logging.WARNING),
        pytest.warns(KeyFileWarning, match="chmod 600") as warned,
    ):
        signer = Signer.from_file(KEY_ID, path)
    assert signer.algorithm == "ed25519"
    # Once: a log line as well printed it twice.
    assert (len(warned), caplog.records) == (1, [])
    text = str(warned[0].message)
    assert str(path) in text
    for chunk in _key_chunks(ed_pair[0]):
        assert chunk not in text


def test_from_file_missing_names_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.pem"
    with pytest.raises(KeyLoadError, match="not found") as info:
        Signer.from_file(KEY_ID, path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("as_path", ["pem", "line"])
def test_key_material_given_as_a_path_is_not_echoed(
    rsa_pair: tuple[bytes, bytes], as_path: str
) -> None:
    pem = rsa_pair[0].decode()
    value = pem if as_path == "pem" else pem.splitlines()[2]
    environ = {"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY_PATH": value}
    with pytest.raises(KeyLoadError, match="KALSHI_PRIVATE_KEY_PATH") as info:
        Signer.from_env(environ=environ)
    assert "looks like key material" in str(info.value)
    _assert_no_key_material(info.value, rsa_pair[0])


def test_from_file_bad_key_names_path(tmp_path: Path, rsa_pair: tuple[bytes, bytes]) -> None:
    pem = _encrypted_pkcs8(rsa_pair[0])
    path = _write_key(tmp_path, pem, 0o600)
    with pytest.raises(KeyLoadError, match="passphrase") as info:
        Signer.from_file(KEY_ID, path)
    assert str(path) in str(info.value)
    _assert_no_key_material(info.value, pem)


def test_from_env_with_pem(ed_pair: tuple[bytes, bytes]) -> None:
    environ = {"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY": ed_pair[0].decode()}
    signer = Signer.from_env(environ=environ, clock_ms=lambda: TS)
    assert signer.key_id == KEY_ID
    _verify_ed(ed_pair[1], signer.headers("GET", PATH)["KALSHI-ACCESS-SIGNATURE"], f"{TS}GET{PATH}")


def test_from_env_with_escaped_newlines(ed_pair: tuple[bytes, bytes]) -> None:
    one_line = ed_pair[0].decode().strip().replace("\n", "\\n")
    environ = {"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY": one_line}
    assert Signer.from_env(environ=environ).algorithm == "ed25519"


def test_from_env_with_path(tmp_path: Path, rsa_pair: tuple[bytes, bytes]) -> None:
    path = _write_key(tmp_path, rsa_pair[0], 0o600)
    environ = {"MY_ID": KEY_ID, "MY_PATH": str(path)}
    signer = Signer.from_env("MY_ID", "MY_PEM", "MY_PATH", environ=environ)
    assert signer.algorithm == "rsa"


def test_from_env_pem_wins_over_path(ed_pair: tuple[bytes, bytes], tmp_path: Path) -> None:
    environ = {
        "KALSHI_API_KEY_ID": KEY_ID,
        "KALSHI_PRIVATE_KEY": ed_pair[0].decode(),
        "KALSHI_PRIVATE_KEY_PATH": str(tmp_path / "absent.pem"),
    }
    assert Signer.from_env(environ=environ).algorithm == "ed25519"


def test_from_env_missing_key_id_names_variable(ed_pair: tuple[bytes, bytes]) -> None:
    with pytest.raises(KeyLoadError, match="KALSHI_API_KEY_ID"):
        Signer.from_env(environ={"KALSHI_PRIVATE_KEY": ed_pair[0].decode()})


def test_from_env_missing_key_names_both_variables() -> None:
    with pytest.raises(KeyLoadError) as info:
        Signer.from_env(environ={"KALSHI_API_KEY_ID": KEY_ID})
    assert "KALSHI_PRIVATE_KEY " in str(info.value)
    assert "KALSHI_PRIVATE_KEY_PATH" in str(info.value)


def test_from_env_bad_pem_names_variable_not_value(rsa_pair: tuple[bytes, bytes]) -> None:
    pem = _encrypted_pkcs8(rsa_pair[0])
    environ = {"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY": pem.decode()}
    with pytest.raises(KeyLoadError, match="KALSHI_PRIVATE_KEY") as info:
        Signer.from_env(environ=environ)
    _assert_no_key_material(info.value, pem)


def test_from_env_missing_file_names_variable(tmp_path: Path) -> None:
    environ = {"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY_PATH": str(tmp_path / "x.pem")}
    with pytest.raises(KeyLoadError, match=r"KALSHI_PRIVATE_KEY_PATH.*not found"):
        Signer.from_env(environ=environ)
