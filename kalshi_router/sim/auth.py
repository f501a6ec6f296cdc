"""Kalshi request authentication: the three KALSHI-ACCESS-* headers, verified strictly.

The signed text is ``timestamp_ms + METHOD + path``, where the path runs from the root (it
includes /trade-api/v2) and stops before the query. RSA keys sign with RSA-PSS, SHA-256, MGF1
SHA-256 and a salt exactly as long as the digest; Ed25519 keys sign the same text.

Sim assumptions: every key has both the read and the write scope and no subaccount lock; the
timestamp window (Kalshi documents none) is symmetric, ``max_clock_skew_ms`` either way.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from kalshi_router.sim.config import ApiKeyConfig

PublicKey = RSAPublicKey | Ed25519PublicKey

HEADER_KEY = "KALSHI-ACCESS-KEY"
HEADER_TIMESTAMP = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIGNATURE = "KALSHI-ACCESS-SIGNATURE"

# Salt length = digest length, not AUTO: a signature made with a MAX_LENGTH salt must fail.
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
_SHA256 = hashes.SHA256()

# Details strings: only INCORRECT_API_KEY_SIGNATURE is observed live; the others are
# sim assumption: same envelope, a desc naming the cause.
MISSING_HEADERS = "MISSING_AUTH_HEADERS"
UNKNOWN_KEY = "INCORRECT_API_KEY"
BAD_SIGNATURE = "INCORRECT_API_KEY_SIGNATURE"
BAD_TIMESTAMP = "INVALID_TIMESTAMP"
TIMESTAMP_OUT_OF_RANGE = "TIMESTAMP_OUT_OF_RANGE"


class AuthError(Exception):
    """Authentication failed; ``reason`` is the desc that goes into the 401's details."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def details(self) -> str:
        """The 401 body's details string, in Kalshi's gRPC-flavoured form."""
        return f"rpc error: code = Unauthenticated desc = {self.reason}"


@dataclass(frozen=True, slots=True)
class _Key:
    public_key: PublicKey
    user_id: str


def load_public_key(pem: str | bytes) -> PublicKey:
    """Parse a PEM public key (SubjectPublicKeyInfo or PKCS#1 RSA); only RSA and Ed25519."""
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, RSAPublicKey | Ed25519PublicKey):
        raise ValueError(f"unsupported public key type {type(key).__name__}")
    return key


class KeyRing:
    """Known API keys, loaded once; verifies a request's headers against them."""

    def __init__(self, max_clock_skew_ms: int, clock_ms: Callable[[], int]) -> None:
        self._keys: dict[str, _Key] = {}
        self._skew = max_clock_skew_ms
        self._clock_ms = clock_ms

    def add(self, key_id: str, public_key: PublicKey | str | bytes, user_id: str) -> None:
        """Register (or replace) a key acting for ``user_id``."""
        if not isinstance(public_key, RSAPublicKey | Ed25519PublicKey):
            public_key = load_public_key(public_key)
        self._keys[key_id] = _Key(public_key, user_id)

    def add_configured(self, keys: Iterable[ApiKeyConfig]) -> None:
        """Register the keys from the config, reading key files now rather than per request."""
        for cfg in keys:
            pem = cfg.public_key_pem
            if pem is None:
                assert cfg.public_key_path is not None  # ApiKeyConfig guarantees one of the two
                pem = Path(cfg.public_key_path).read_text(encoding="utf-8")
            self.add(cfg.key_id, pem, cfg.owner)

    def verify(
        self,
        key_id: str | None,
        timestamp: str | None,
        signature: str | None,
        method: str,
        path: str,
    ) -> str:
        """Return the user id the request acts for, or raise AuthError."""
        if not key_id or not timestamp or not signature:
            raise AuthError(MISSING_HEADERS)
        key = self._keys.get(key_id)
        if key is None:
            raise AuthError(UNKNOWN_KEY)
        # Digits only; 19 of them already pass any int64 millisecond time.
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 19):
            raise AuthError(BAD_TIMESTAMP)
        if abs(self._clock_ms() - int(timestamp)) > self._skew:
            raise AuthError(TIMESTAMP_OUT_OF_RANGE)
        try:
            raw = b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise AuthError(BAD_SIGNATURE) from None
        message = f"{timestamp}{method}{path}".encode()
        try:
            if isinstance(key.public_key, RSAPublicKey):
                key.public_key.verify(raw, message, _PSS, _SHA256)
            else:
                key.public_key.verify(raw, message)
        except InvalidSignature:
            raise AuthError(BAD_SIGNATURE) from None
        return key.user_id
